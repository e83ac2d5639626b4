package installer

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// fileStepEnv is a temporary HOME with a Runtime pointing into it.
type fileStepEnv struct {
	home string
	rt   *Runtime
	out  []string
}

func newFileStepEnv(t *testing.T) *fileStepEnv {
	t.Helper()
	home := t.TempDir()
	e := &fileStepEnv{home: home}
	getenv := func(k string) string {
		if k == "HOME" {
			return home
		}
		return ""
	}
	e.rt = &Runtime{Paths: PathsFromEnv(getenv, home), Output: func(l string) { e.out = append(e.out, l) }, Now: time.Now}
	return e
}

// tree lists every path under the HOME with its mode and content, to prove a step left nothing
// behind (or changed nothing).
func (e *fileStepEnv) tree(t *testing.T) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(e.home, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		line := strings.TrimPrefix(p, e.home) + " " + fi.Mode().String()
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			line += " " + string(b)
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func (e *fileStepEnv) said(sub string) bool {
	for _, l := range e.out {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}

func constRender(content string) func([]byte, bool) ([]byte, error) {
	return func([]byte, bool) ([]byte, error) { return []byte(content), nil }
}

func TestFileStepCreateAndUndo(t *testing.T) {
	e := newFileStepEnv(t)
	ctx := context.Background()
	path := filepath.Join(e.rt.Paths.ConfigHome, "nerdctl", "nerdctl.toml")
	step := NewFileStep("file:nerdctl.toml", "Set the snapshotter", path, 0o600, func(cur []byte, exists bool) ([]byte, error) {
		return SetNerdctlSnapshotter(cur, "native")
	})
	before := e.tree(t)

	info := step.Info()
	if info.ID != "file:nerdctl.toml" || info.Kind != KindFile || len(info.Files) != 1 {
		t.Fatalf("Info = %+v", info)
	}
	fc := info.Files[0]
	if fc.Path != path || !fc.Create || !strings.Contains(fc.Diff, "--- /dev/null") || !strings.Contains(fc.Diff, `+snapshotter = "native"`) {
		t.Errorf("file change = %+v", fc)
	}
	if e.tree(t) != before {
		t.Fatal("Info wrote to the HOME")
	}
	if done, err := step.Check(ctx, e.rt); err != nil || done {
		t.Fatalf("Check before Apply = %v, %v", done, err)
	}

	var rec Record
	if err := step.Apply(ctx, e.rt, &rec); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != "snapshotter = \"native\"\n" {
		t.Fatalf("file = %q, %v", got, err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("new file mode = %v, want 0600", fi.Mode().Perm())
	}
	if len(rec.Files) != 1 {
		t.Fatalf("record = %+v", rec)
	}
	fr := rec.Files[0]
	wantDirs := []string{filepath.Join(e.home, ".config"), filepath.Join(e.home, ".config", "nerdctl")}
	if fr.Path != path || fr.Existed || fr.Backup != "" || strings.Join(fr.CreatedDirs, "|") != strings.Join(wantDirs, "|") {
		t.Errorf("record = %+v, want created dirs %v", fr, wantDirs)
	}
	if !e.said("wrote " + path) {
		t.Errorf("output %q does not report the write", e.out)
	}
	if done, err := step.Check(ctx, e.rt); err != nil || !done {
		t.Errorf("Check after Apply = %v, %v; want done", done, err)
	}
	if d := step.Info().Files[0].Diff; d != "" {
		t.Errorf("diff after Apply = %q, want none", d)
	}

	if err := step.Undo(ctx, e.rt, rec); err != nil {
		t.Fatal(err)
	}
	// The backups directory is virt-setup's own state and may stay; nothing else may.
	if after := e.tree(t); after != before {
		t.Errorf("HOME after undo differs:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if !e.said("removed " + path) {
		t.Errorf("output %q does not report the removal", e.out)
	}
}

func TestFileStepReplaceAndUndo(t *testing.T) {
	e := newFileStepEnv(t)
	ctx := context.Background()
	path := filepath.Join(e.rt.Paths.ConfigHome, "containerd", "config.toml")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	original := []byte("# my containerd settings\nversion = 2\n\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = \"pause\" # keep\n")
	if err := os.WriteFile(path, original, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	plugins := ContainerdPlugins{FuseOverlayfs: true, RuntimeDir: "/run/user/1001", DataHome: e.rt.Paths.DataHome}
	// 0644 asked for, but the existing file's 0640 must be kept.
	step := NewFileStep("file:containerd-config", "Register plugins", path, 0o644, func(cur []byte, _ bool) ([]byte, error) {
		return MergeContainerdConfig(cur, plugins, 2)
	})
	fc := step.Info().Files[0]
	if fc.Create || !strings.HasPrefix(fc.Diff, "--- a"+path+"\n+++ b"+path+"\n") || !strings.Contains(fc.Diff, "+[proxy_plugins.\"fuse-overlayfs\"]") {
		t.Errorf("file change = %+v", fc)
	}

	var rec Record
	if err := step.Apply(ctx, e.rt, &rec); err != nil {
		t.Fatal(err)
	}
	fr := rec.Files[0]
	backups := filepath.Join(e.rt.Paths.StateHome, "virt-setup", "backups")
	if !fr.Existed || filepath.Dir(fr.Backup) != backups || os.FileMode(fr.Mode) != 0o640 || len(fr.CreatedDirs) != 0 {
		t.Errorf("record = %+v", fr)
	}
	if b, err := os.ReadFile(fr.Backup); err != nil || !bytes.Equal(b, original) {
		t.Errorf("backup = %q, %v", b, err)
	}
	got, _ := os.ReadFile(path)
	if !bytes.HasPrefix(got, original) || !bytes.Contains(got, []byte("containerd-fuse-overlayfs.sock")) {
		t.Errorf("merged file = %q", got)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode after Apply = %v, want the file's own 0640", fi.Mode().Perm())
	}
	if !e.said("backed up "+path+" to "+fr.Backup) || !e.said("wrote "+path) {
		t.Errorf("output = %q", e.out)
	}
	if done, _ := step.Check(ctx, e.rt); !done {
		t.Error("Check after Apply is not done")
	}
	// Applying again changes nothing and makes no second backup.
	var rec2 Record
	if err := step.Apply(ctx, e.rt, &rec2); err != nil || len(rec2.Files) != 0 {
		t.Errorf("second Apply = %v, record %+v", err, rec2)
	}

	if err := step.Undo(ctx, e.rt, rec); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, original) {
		t.Errorf("after undo = %q, want the original", got)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode after undo = %v, want 0640", fi.Mode().Perm())
	}
	if !e.said("restored " + path + " from " + fr.Backup) {
		t.Errorf("output = %q", e.out)
	}
}

func TestFileStepUndoKeepsLaterEdits(t *testing.T) {
	e := newFileStepEnv(t)
	ctx := context.Background()
	path := filepath.Join(e.home, "f.conf")
	if err := os.WriteFile(path, []byte("original\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	step := NewFileStep("file:f", "f", path, 0, constRender("ours\n"))
	var rec Record
	if err := step.Apply(ctx, e.rt, &rec); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("ours\nplus the user's edit\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := step.Undo(ctx, e.rt, rec); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != "original\n" {
		t.Errorf("after undo = %q", got)
	}
	var kept string
	for _, l := range e.out {
		if strings.HasPrefix(l, "kept a copy of your later changes to "+path+" in ") {
			kept = strings.TrimPrefix(l, "kept a copy of your later changes to "+path+" in ")
		}
	}
	if b, err := os.ReadFile(kept); err != nil || string(b) != "ours\nplus the user's edit\n" {
		t.Errorf("the user's edit was not kept (output %q): %q, %v", e.out, b, err)
	}
}

func TestFileStepRenderErrors(t *testing.T) {
	e := newFileStepEnv(t)
	ctx := context.Background()
	path := filepath.Join(e.home, ".config", "nerdctl", "nerdctl.toml")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	// A containerd config pasted into nerdctl.toml: nerdctl would refuse it, so must the step.
	pasted := []byte("version = 2\n[plugins]\n")
	if err := os.WriteFile(path, pasted, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		render func([]byte, bool) ([]byte, error)
		want   string
	}{
		{"refused file", func(cur []byte, _ bool) ([]byte, error) { return SetNerdctlSnapshotter(cur, "native") }, "keys nerdctl rejects: plugins, version"},
		{"panicking renderer", func([]byte, bool) ([]byte, error) { panic("boom") }, "internal error: boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.tree(t)
			step := NewFileStep("file:nerdctl.toml", "Set the snapshotter", path, 0, tt.render)
			info := step.Info()
			if !strings.Contains(info.Error, tt.want) {
				t.Errorf("title = %q, want the render error", info.Title)
			}
			if _, err := step.Check(ctx, e.rt); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Check err = %v", err)
			}
			var rec Record
			if err := step.Apply(ctx, e.rt, &rec); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Apply err = %v", err)
			}
			if len(rec.Files) != 0 {
				t.Errorf("record = %+v after a render error", rec)
			}
			if e.tree(t) != before {
				t.Error("a failed render changed the HOME")
			}
		})
	}
	var ce *ConfigError
	_, err := NewFileStep("x", "x", path, 0, func(cur []byte, _ bool) ([]byte, error) { return SetNerdctlSnapshotter(cur, "native") }).
		Check(ctx, e.rt)
	if !errors.As(err, &ce) || ce.UserFix() == "" {
		t.Errorf("the ConfigError and its fix are lost in %v", err)
	}
}

// TestFileStepFileChangedMeanwhile edits the file between the plan and the backup: the step must
// notice and write nothing, rather than drop the user's edit.
func TestFileStepFileChangedMeanwhile(t *testing.T) {
	e := newFileStepEnv(t)
	path := filepath.Join(e.home, "f.conf")
	if err := os.WriteFile(path, []byte("v1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	step := NewFileStep("file:f", "f", path, 0, func(cur []byte, _ bool) ([]byte, error) {
		// The user saves the file in their editor right after virt-setup read it.
		if err := os.WriteFile(path, []byte("v2 from the user\n"), 0o644); err != nil {
			return nil, err
		}
		return append(cur, "ours\n"...), nil
	})
	var rec Record
	err := step.Apply(context.Background(), e.rt, &rec)
	if err == nil || !strings.Contains(err.Error(), "changed while virt-setup was working on it") {
		t.Fatalf("Apply err = %v", err)
	}
	if got, _ := os.ReadFile(path); string(got) != "v2 from the user\n" {
		t.Errorf("file = %q, want the user's edit", got)
	}
	// Undo from that record leaves the user's edit alone too.
	if err := step.Undo(context.Background(), e.rt, rec); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != "v2 from the user\n" {
		t.Errorf("file after undo = %q, want the user's edit", got)
	}
}

func TestFileStepNeedsStateDir(t *testing.T) {
	e := newFileStepEnv(t)
	e.rt.Paths.StateHome = ""
	step := NewFileStep("file:f", "f", filepath.Join(e.home, "f"), 0, constRender("x\n"))
	var rec Record
	if err := step.Apply(context.Background(), e.rt, &rec); err == nil || !strings.Contains(err.Error(), "backups") {
		t.Errorf("Apply without a state directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.home, "f")); !errors.Is(err, fs.ErrNotExist) {
		t.Error("wrote the file without anywhere to keep a backup")
	}
}

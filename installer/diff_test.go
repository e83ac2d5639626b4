package installer

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/virt-setup/virt-setup/internal/testenv"
)

func TestUnifiedDiffHeadersAndContext(t *testing.T) {
	var old, new strings.Builder
	for i := 1; i <= 20; i++ {
		line := "line " + strings.Repeat("x", i%3) + string(rune('a'+i)) + "\n"
		old.WriteString(line)
		if i == 10 {
			line = "changed\n"
		}
		new.WriteString(line)
	}
	d := UnifiedDiff("/home/u/.config/nerdctl/nerdctl.toml", []byte(old.String()), []byte(new.String()))
	lines := strings.Split(strings.TrimSuffix(d, "\n"), "\n")
	if lines[0] != "--- a/home/u/.config/nerdctl/nerdctl.toml" || lines[1] != "+++ b/home/u/.config/nerdctl/nerdctl.toml" {
		t.Fatalf("headers = %q, %q", lines[0], lines[1])
	}
	// One changed line with 3 lines of context either side: 7 old lines from line 7.
	if lines[2] != "@@ -7,7 +7,7 @@" {
		t.Errorf("hunk header = %q, want @@ -7,7 +7,7 @@", lines[2])
	}
	var ctx, del, add int
	for _, l := range lines[3:] {
		switch l[0] {
		case ' ':
			ctx++
		case '-':
			del++
		case '+':
			add++
		}
	}
	if ctx != 6 || del != 1 || add != 1 {
		t.Errorf("hunk has %d context, %d removed, %d added lines; want 6, 1, 1:\n%s", ctx, del, add, d)
	}
}

func TestUnifiedDiffCases(t *testing.T) {
	tests := []struct {
		name     string
		path     string
		old, new []byte
		want     []string // lines that must be in the diff, in order
		empty    bool
	}{
		{name: "creation", path: "/etc/x.conf", old: nil, new: []byte("a\nb\n"),
			want: []string{"--- /dev/null", "+++ b/etc/x.conf", "@@ -0,0 +1,2 @@", "+a", "+b"}},
		{name: "empty existing file", path: "/x", old: []byte{}, new: []byte("a\n"),
			want: []string{"--- a/x", "+++ b/x", "+a"}},
		{name: "new empty file", path: "/x", old: nil, new: []byte{},
			want: []string{"--- /dev/null", "+++ b/x"}},
		{name: "unchanged", path: "/x", old: []byte("same\n"), new: []byte("same\n"), empty: true},
		{name: "missing final newline", path: "/x", old: []byte("a\nb"), new: []byte("a\nb\n"),
			want: []string{"-b", `\ No newline at end of file`, "+b"}},
		{name: "hostile path", path: "/tmp/x\n+++ b/etc/passwd", old: []byte("a\n"), new: []byte("b\n"),
			want: []string{`--- "a/tmp/x\n+++ b/etc/passwd"`, `+++ "b/tmp/x\n+++ b/etc/passwd"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := UnifiedDiff(tt.path, tt.old, tt.new)
			if tt.empty {
				if d != "" {
					t.Fatalf("diff of equal contents = %q, want empty", d)
				}
				return
			}
			lines := strings.Split(d, "\n")
			i := 0
			for _, l := range lines {
				if i < len(tt.want) && l == tt.want[i] {
					i++
				}
			}
			if i < len(tt.want) {
				t.Errorf("diff lacks %q (in order):\n%s", tt.want[i], d)
			}
		})
	}
}

// TestUnifiedDiffAppliesWithGit checks the diffs against an independent reader: git apply, run
// outside any repository (where it behaves as patch -p1), must turn the old files into the new ones.
func TestUnifiedDiffAppliesWithGit(t *testing.T) {
	gitPath, err := exec.LookPath("git")
	testenv.Require(t, err == nil, "git is not installed (apt-get install git)")
	dir := t.TempDir()
	type change struct {
		path     string
		old, new []byte
	}
	changes := []change{
		{"/home/u/.config/containerd/config.toml", []byte("# mine\nversion = 2\n\n[plugins]\n  x = 1\n"),
			[]byte("# mine\nversion = 2\n\n[plugins]\n  x = 1\n\n# BEGIN\n[proxy_plugins.\"a\"]\n# END\n")},
		{"/home/u/.config/nerdctl/nerdctl.toml", nil, []byte("snapshotter = \"native\"\n")},
		{"/home/u/with space/override.conf", []byte("[Service]\nA=1\nB=2\nC=3\nD=4\nE=5\nF=6\nG=7\nH=8\n"),
			[]byte("[Service]\nA=1\nB=two\nC=3\nD=4\nE=5\nF=6\nG=7\nH=eight\nI=9")},
	}
	var patch bytes.Buffer
	for _, c := range changes {
		if c.old != nil {
			p := filepath.Join(dir, c.path)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, c.old, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		patch.WriteString(UnifiedDiff(c.path, c.old, c.new))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, gitPath, "apply", "--unidiff-zero", "-")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CEILING_DIRECTORIES="+filepath.Dir(dir))
	cmd.Stdin = &patch
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git apply: %v\n%s\npatch:\n%s", err, out, patch.String())
	}
	for _, c := range changes {
		got, err := os.ReadFile(filepath.Join(dir, c.path))
		if err != nil || !bytes.Equal(got, c.new) {
			t.Errorf("%s after git apply = %q, %v; want %q", c.path, got, err, c.new)
		}
	}
}

package probe

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/virt-setup/virt-setup/internal/sys"
)

// fakeRootDir is a directory laid out like "/" for one test: the fake host the probes read under
// --root.
type fakeRootDir struct {
	t    *testing.T
	root string
}

func newFakeRootDir(t *testing.T) *fakeRootDir {
	t.Helper()
	return &fakeRootDir{t: t, root: t.TempDir()}
}

func (h *fakeRootDir) path(p string) string { return filepath.Join(h.root, filepath.Clean("/"+p)) }

// file writes a file below the root, creating its parents.
func (h *fakeRootDir) file(p, content string, mode os.FileMode) {
	h.t.Helper()
	full := h.path(p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(content), mode); err != nil {
		h.t.Fatal(err)
	}
	// WriteFile's mode is filtered by the umask; the tests need the exact bits.
	if err := os.Chmod(full, mode); err != nil {
		h.t.Fatal(err)
	}
}

// big writes a file twice the size sys.Root will read.
func (h *fakeRootDir) big(p string) {
	h.t.Helper()
	h.file(p, strings.Repeat("x", 2*sys.MaxFileSize), 0o644)
}

func (h *fakeRootDir) mkdir(p string) {
	h.t.Helper()
	if err := os.MkdirAll(h.path(p), 0o755); err != nil {
		h.t.Fatal(err)
	}
}

func (h *fakeRootDir) symlink(target, p string) {
	h.t.Helper()
	h.mkdir(filepath.Dir(p))
	if err := os.Symlink(target, h.path(p)); err != nil {
		h.t.Fatal(err)
	}
}

// env is the probe environment for the fake host; the strict stub fails the test on any command.
func (h *fakeRootDir) env(u User, environ ...string) *Env {
	return &Env{
		Root:       sys.Root{Dir: h.root},
		Runner:     sys.NewStub(h.t),
		Environ:    environ,
		User:       u,
		Now:        time.Now,
		LookupDirs: []string{"/usr/local/bin", "/usr/bin", "/bin"},
	}
}

// sampleUser is the desktop user of most fake hosts.
func sampleUser() User {
	return User{Name: "alice", UID: 1000, GID: 1000, Home: "/home/alice", Shell: "/bin/bash", Known: true}
}

func applyProbe(t *testing.T, e *Env, p func(context.Context, *Env) func(*Facts)) *Facts {
	t.Helper()
	f := &Facts{}
	p(context.Background(), e)(f)
	return f
}

func mustUnknown[T any](t *testing.T, name string, f Fact[T], errContains string) {
	t.Helper()
	if f.Known {
		t.Fatalf("%s: known %v, want unknown (%s)", name, f.Value, errContains)
	}
	if !strings.Contains(f.Error, errContains) {
		t.Fatalf("%s: error %q, want it to mention %q", name, f.Error, errContains)
	}
}

func mustKnown[T any](t *testing.T, name string, f Fact[T]) T {
	t.Helper()
	if !f.Known {
		t.Fatalf("%s: unknown (%s), want known", name, f.Error)
	}
	return f.Value
}

const fuseOverlayfsStanza = `version = 2

[proxy_plugins]
  [proxy_plugins."fuse-overlayfs"]
    type = "snapshot"
    address = "/run/user/1000/containerd-fuse-overlayfs.sock"
  [proxy_plugins."fuse-overlayfs".exports]
    root = "/home/alice/.local/share/containerd-fuse-overlayfs/"
    enable_remote_snapshot_annotations = "true"
  [proxy_plugins.stargz]
    type = "snapshot"
    address = "/run/user/1000/containerd-stargz-grpc/containerd-stargz-grpc.sock"

[[plugins."io.containerd.transfer.v1.local".unpack_config]]
  platform = "linux"
  snapshotter = "fuse-overlayfs"
`

func TestParseContainerdConfig(t *testing.T) {
	tests := []struct {
		name       string
		in         string
		valid      bool
		version    int
		plugins    []string
		errContain string
	}{
		{name: "empty file", in: "", valid: true},
		{name: "setuptool stanzas", in: fuseOverlayfsStanza, valid: true, version: 2, plugins: []string{"fuse-overlayfs", "stargz"}},
		{name: "version 3 no plugins", in: "version = 3\n[plugins]\n", valid: true, version: 3},
		// rootless.md §3.1: appending both printed blocks defines [proxy_plugins] twice.
		{name: "two proxy_plugins headers", in: "version = 2\n[proxy_plugins]\n[proxy_plugins.a]\ntype = \"snapshot\"\n[proxy_plugins]\n[proxy_plugins.b]\n", errContain: "line 5"},
		{name: "syntax error", in: "version = 2\n[plugins\n", errContain: "line 2, column"},
		{name: "version is a string", in: "version = \"2\"\n", errContain: "not a config version"},
		{name: "version is negative", in: "version = -1\n", errContain: "not a config version"},
		{name: "proxy_plugins is a string", in: "proxy_plugins = \"x\"\n", errContain: "not a table"},
		{name: "binary garbage", in: "\x00\xff\xfe=\x01", errContain: "line 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ParseContainerdConfig([]byte(tt.in))
			if c.Valid != tt.valid {
				t.Fatalf("Valid = %v, want %v (ParseError %q)", c.Valid, tt.valid, c.ParseError)
			}
			if !tt.valid {
				if !strings.Contains(c.ParseError, tt.errContain) {
					t.Fatalf("ParseError %q, want it to mention %q", c.ParseError, tt.errContain)
				}
				return
			}
			if c.Version != tt.version || !reflect.DeepEqual(c.ProxyPlugins, tt.plugins) {
				t.Fatalf("got version %d plugins %q, want %d %q", c.Version, c.ProxyPlugins, tt.version, tt.plugins)
			}
		})
	}
}

func TestParseNerdctlConfig(t *testing.T) {
	all := make([]string, 0, len(NerdctlConfigKeys))
	for _, k := range NerdctlConfigKeys {
		// The types do not matter to the key check; a string is enough for most.
		all = append(all, k+` = "x"`)
	}
	tests := []struct {
		name        string
		in          string
		valid       bool
		snapshotter string
		unknown     []string
		errContain  string
	}{
		{name: "empty", in: "", valid: true},
		{name: "snapshotter", in: "snapshotter = \"fuse-overlayfs\"\nnamespace = \"default\"\n", valid: true, snapshotter: "fuse-overlayfs"},
		{name: "every accepted key", in: strings.Join(all, "\n"), valid: true, snapshotter: "x"},
		{name: "pasted containerd config", in: fuseOverlayfsStanza, unknown: []string{"plugins", "proxy_plugins", "version"}, errContain: "keys nerdctl rejects: plugins, proxy_plugins, version"},
		{name: "misspelt key", in: "snapshoter = \"native\"\n", unknown: []string{"snapshoter"}, errContain: "snapshoter"},
		{name: "snapshotter not a string", in: "snapshotter = 3\n", errContain: "not a string"},
		{name: "syntax error", in: "snapshotter = \n", errContain: "line 1, column"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ParseNerdctlConfig([]byte(tt.in))
			if c.Valid != tt.valid {
				t.Fatalf("Valid = %v, want %v (ParseError %q)", c.Valid, tt.valid, c.ParseError)
			}
			if !strings.Contains(c.ParseError, tt.errContain) {
				t.Fatalf("ParseError %q, want it to mention %q", c.ParseError, tt.errContain)
			}
			if c.Snapshotter != tt.snapshotter || !reflect.DeepEqual(c.UnknownKeys, tt.unknown) {
				t.Fatalf("got snapshotter %q unknown %q, want %q %q", c.Snapshotter, c.UnknownKeys, tt.snapshotter, tt.unknown)
			}
		})
	}
}

func TestParseUnitEnvironment(t *testing.T) {
	tests := []struct {
		name       string
		in         string
		want       map[string]string
		errContain string
	}{
		{name: "empty", in: "", want: map[string]string{}},
		{
			name: "setuptool override",
			in:   "[Service]\nEnvironment=CONTAINERD_ROOTLESS_ROOTLESSKIT_NET=pasta\nEnvironment=CONTAINERD_SNAPSHOTTER=fuse-overlayfs\n",
			want: map[string]string{"CONTAINERD_ROOTLESS_ROOTLESSKIT_NET": "pasta", "CONTAINERD_SNAPSHOTTER": "fuse-overlayfs"},
		},
		{
			name: "several on a line, quoted with spaces",
			in:   "[Service]\nEnvironment=A=1 \"B=two words\" C='single q' D=x\"y z\"w\n",
			want: map[string]string{"A": "1", "B": "two words", "C": "single q", "D": "xy zw"},
		},
		{
			name: "spaces around the key and equals",
			in:   "[Service]\n  Environment = PATH=/usr/bin:/bin  \n",
			want: map[string]string{"PATH": "/usr/bin:/bin"},
		},
		{
			name: "escapes",
			in:   `[Service]` + "\n" + `Environment="A=a\"b" B=c\sd C=\x41\101\u00e9 D="tab\there"` + "\n",
			want: map[string]string{"A": `a"b`, "B": "c d", "C": "AAé", "D": "tab\there"},
		},
		{
			name: "later wins",
			in:   "[Service]\nEnvironment=A=1\nEnvironment=A=2\n",
			want: map[string]string{"A": "2"},
		},
		{
			name: "empty assignment resets",
			in:   "[Service]\nEnvironment=A=1\nEnvironment=\nEnvironment=B=2\n",
			want: map[string]string{"B": "2"},
		},
		{
			name: "continuation with a comment inside",
			in:   "[Service]\nEnvironment=A=1 \\\n# comment\n  B=2\nEnvironment=C=3\\\\\n",
			want: map[string]string{"A": "1", "B": "2", "C": `3\`},
		},
		{
			name: "other sections and comments ignored",
			in:   "[Unit]\nEnvironment=NO=1\n# Environment=NO=2\n; Environment=NO=3\n[Service]\nEnvironment=YES=1\n[Install]\nEnvironment=NO=4\n",
			want: map[string]string{"YES": "1"},
		},
		{name: "specifiers kept", in: "[Service]\nEnvironment=H=%h/x\n", want: map[string]string{"H": "%h/x"}},
		{
			name:       "unbalanced quote keeps earlier words",
			in:         "[Service]\nEnvironment=A=1 \"B=2\nEnvironment=C=3\n",
			want:       map[string]string{"A": "1", "C": "3"},
			errContain: "line 2: Environment=A=1 \"B=2: unbalanced \" quote",
		},
		{
			name:       "invalid name skipped",
			in:         "[Service]\nEnvironment=1A=x B-C=y NOEQUALS D=ok\n",
			want:       map[string]string{"D": "ok"},
			errContain: `"1A=x" is not a valid environment assignment`,
		},
		{name: "unknown escape", in: "[Service]\nEnvironment=A=\\q\n", want: map[string]string{}, errContain: `unknown escape \q`},
		{name: "NUL escape", in: "[Service]\nEnvironment=A=\\x00\n", want: map[string]string{}, errContain: `invalid \x00 escape`},
		{name: "garbage line", in: "[Service]\nwhat is this\nEnvironment=A=1\n", want: map[string]string{"A": "1"}, errContain: "line 2"},
		{name: "broken header", in: "[Service\nEnvironment=A=1\n", want: map[string]string{}, errContain: "malformed section header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseUnitEnvironment([]byte(tt.in))
			if tt.errContain == "" && err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if tt.errContain != "" && (err == nil || !strings.Contains(err.Error(), tt.errContain)) {
				t.Fatalf("error %v, want it to mention %q", err, tt.errContain)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func FuzzParseUnitEnvironment(f *testing.F) {
	for _, s := range []string{
		"[Service]\nEnvironment=A=1 \"B=two words\"\n",
		"[Service]\nEnvironment=A=1 \\\n B=2\\",
		"[Service]\nEnvironment=\"A=\\x41\\u00e9\\U0001F600\\101\"\n",
		"[Service]\nEnvironment='unterminated\n",
		"[Service]\nEnvironment=\n[Unit]\n",
		"[Service]\nEnvironment=A=\\",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		env, _ := ParseUnitEnvironment(b)
		for k, v := range env {
			if !validEnvName(k) || !validEnvValue(v) {
				t.Fatalf("invalid assignment %q=%q accepted", k, v)
			}
		}
	})
}

func FuzzParseContainerdConfig(f *testing.F) {
	for _, s := range []string{fuseOverlayfsStanza, "version = 2\n", "[proxy_plugins]\n[proxy_plugins]\n", "version = 1e9", "a = [1, {b = 2}]"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, c := range []ConfigFile{ParseContainerdConfig(b), ParseNerdctlConfig(b)} {
			if c.Valid != (c.ParseError == "") {
				t.Fatalf("Valid %v with ParseError %q", c.Valid, c.ParseError)
			}
			if len(c.ParseError) > maxExcerpt+len("…") {
				t.Fatalf("ParseError of %d bytes", len(c.ParseError))
			}
		}
		nerdctlCNIPath(b)
	})
}

func TestStateConfigFiles(t *testing.T) {
	u := sampleUser()
	h := newFakeRootDir(t)
	h.file("/home/alice/.config/containerd/config.toml", fuseOverlayfsStanza, 0o644)
	h.file("/home/alice/.config/nerdctl/nerdctl.toml", "snapshotter = \"fuse-overlayfs\"\n", 0o644)
	h.file("/home/alice/.config/systemd/user/containerd.service", "[Unit]\nDescription=containerd (Rootless)\n[Service]\nEnvironment=PATH=/home/alice/bin:/sbin:/usr/sbin:/home/alice/.local/bin:/usr/local/bin:/usr/bin:/bin\nExecStart=/home/alice/.local/bin/containerd-rootless.sh\n", 0o644)
	h.file("/home/alice/.config/systemd/user/containerd.service.d/override.conf", "[Service]\nEnvironment=CONTAINERD_ROOTLESS_ROOTLESSKIT_DETACH_NETNS=true \"X=a b\n", 0o644)
	s := applyProbe(t, h.env(u), probeState).State

	cc := mustKnown(t, "containerd config", s.ContainerdConfig)
	if !cc.Exists || !cc.Valid || cc.Version != 2 || !reflect.DeepEqual(cc.ProxyPlugins, []string{"fuse-overlayfs", "stargz"}) {
		t.Errorf("containerd config = %+v", cc)
	}
	if cc.Path != "/home/alice/.config/containerd/config.toml" {
		t.Errorf("path %q is not the host path", cc.Path)
	}
	nc := mustKnown(t, "nerdctl config", s.NerdctlConfig)
	if !nc.Exists || !nc.Valid || nc.Snapshotter != "fuse-overlayfs" {
		t.Errorf("nerdctl config = %+v", nc)
	}
	unit := mustKnown(t, "unit", s.ContainerdUnit)
	if !unit.Valid || !strings.HasPrefix(unit.Environment["PATH"], "/home/alice/bin:") {
		t.Errorf("unit = %+v", unit)
	}
	ov := mustKnown(t, "override", s.ContainerdOverride)
	if ov.Valid || ov.Environment["CONTAINERD_ROOTLESS_ROOTLESSKIT_DETACH_NETNS"] != "true" || !strings.Contains(ov.ParseError, "unbalanced") {
		t.Errorf("override = %+v, want the first assignment kept and the quote error", ov)
	}
}

func TestStateConfigFilesBroken(t *testing.T) {
	u := sampleUser()
	const cfgPath = "/home/alice/.config/containerd/config.toml"
	tests := []struct {
		name  string
		setup func(h *fakeRootDir)
		check func(t *testing.T, f Fact[ConfigFile])
	}{
		{"missing", func(h *fakeRootDir) {}, func(t *testing.T, f Fact[ConfigFile]) {
			c := mustKnown(t, "config", f)
			if c.Exists || c.Valid || c.Path != cfgPath {
				t.Errorf("got %+v, want a known missing file", c)
			}
		}},
		{"empty", func(h *fakeRootDir) { h.file(cfgPath, "", 0o644) }, func(t *testing.T, f Fact[ConfigFile]) {
			c := mustKnown(t, "config", f)
			if !c.Exists || !c.Valid || c.Version != 0 {
				t.Errorf("got %+v, want an existing valid file without version", c)
			}
		}},
		{"garbled", func(h *fakeRootDir) { h.file(cfgPath, "version = 2\n[[[\n", 0o644) }, func(t *testing.T, f Fact[ConfigFile]) {
			c := mustKnown(t, "config", f)
			if !c.Exists || c.Valid || !strings.Contains(c.ParseError, "line 2") {
				t.Errorf("got %+v, want invalid at line 2", c)
			}
		}},
		{"enormous", func(h *fakeRootDir) { h.big(cfgPath) }, func(t *testing.T, f Fact[ConfigFile]) {
			mustUnknown(t, "config", f, "larger than 1 MiB")
		}},
		{"directory", func(h *fakeRootDir) { h.mkdir(cfgPath) }, func(t *testing.T, f Fact[ConfigFile]) {
			mustUnknown(t, "config", f, "is a directory")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newFakeRootDir(t)
			tt.setup(h)
			tt.check(t, applyProbe(t, h.env(u), probeState).State.ContainerdConfig)
		})
	}
}

func TestStateConfigPathsFromEnvironment(t *testing.T) {
	u := sampleUser()
	h := newFakeRootDir(t)
	h.file("/etc/xdg-alice/containerd/config.toml", "version = 3\n", 0o644)
	h.file("/srv/nerdctl.toml", "plugins = 1\n", 0o644)
	h.file("/etc/xdg-alice/systemd/user/containerd.service", "[Service]\nEnvironment=A=1\n", 0o644)
	s := applyProbe(t, h.env(u, "XDG_CONFIG_HOME=/etc/xdg-alice", "NERDCTL_TOML=/srv/nerdctl.toml"), probeState).State
	if c := mustKnown(t, "containerd config", s.ContainerdConfig); c.Version != 3 {
		t.Errorf("XDG_CONFIG_HOME not honoured: %+v", c)
	}
	if c := mustKnown(t, "nerdctl config", s.NerdctlConfig); c.Path != "/srv/nerdctl.toml" || c.Valid || !reflect.DeepEqual(c.UnknownKeys, []string{"plugins"}) {
		t.Errorf("NERDCTL_TOML not honoured: %+v", c)
	}
	if c := mustKnown(t, "unit", s.ContainerdUnit); c.Environment["A"] != "1" {
		t.Errorf("unit below XDG_CONFIG_HOME not read: %+v", c)
	}

	s = applyProbe(t, h.env(u, "NERDCTL_TOML=relative.toml"), probeState).State
	mustUnknown(t, "nerdctl config", s.NerdctlConfig, "relative path")

	noHome := u
	noHome.Home = ""
	s = applyProbe(t, h.env(noHome), probeState).State
	mustUnknown(t, "containerd config", s.ContainerdConfig, "home directory is unknown")
}

func TestStateRootlessKit(t *testing.T) {
	u := sampleUser()
	const stateDir = "/run/user/1000/containerd-rootless"
	tests := []struct {
		name       string
		environ    []string
		setup      func(h *fakeRootDir)
		want       RootlessKitState
		errContain string
	}{
		{name: "missing", want: RootlessKitState{StateDir: stateDir}},
		{
			name: "running, detached netns",
			setup: func(h *fakeRootDir) {
				h.file(stateDir+"/child_pid", "4242\n", 0o644)
				h.file(stateDir+"/netns", "", 0o644)
				h.file("/proc/4242/comm", "containerd\n", 0o644)
			},
			want: RootlessKitState{StateDir: stateDir, Exists: true, ChildPID: 4242, Running: true, DetachedNetns: true},
		},
		{
			name:  "stale pid",
			setup: func(h *fakeRootDir) { h.file(stateDir+"/child_pid", "4242", 0o644) },
			want:  RootlessKitState{StateDir: stateDir, Exists: true, ChildPID: 4242},
		},
		{
			name:  "no child_pid yet",
			setup: func(h *fakeRootDir) { h.mkdir(stateDir) },
			want:  RootlessKitState{StateDir: stateDir, Exists: true},
		},
		{
			name:    "XDG_RUNTIME_DIR elsewhere",
			environ: []string{"XDG_RUNTIME_DIR=/tmp/rt"},
			setup:   func(h *fakeRootDir) { h.file("/tmp/rt/containerd-rootless/child_pid", "7", 0o644) },
			want:    RootlessKitState{StateDir: "/tmp/rt/containerd-rootless", Exists: true, ChildPID: 7},
		},
		{name: "garbled child_pid", setup: func(h *fakeRootDir) { h.file(stateDir+"/child_pid", "\x00\x01pid", 0o644) }, errContain: "is not a pid"},
		{name: "empty child_pid", setup: func(h *fakeRootDir) { h.file(stateDir+"/child_pid", "", 0o644) }, errContain: "is not a pid"},
		{name: "huge pid", setup: func(h *fakeRootDir) { h.file(stateDir+"/child_pid", "99999999999", 0o644) }, errContain: "is not a pid"},
		{name: "enormous child_pid", setup: func(h *fakeRootDir) { h.big(stateDir + "/child_pid") }, errContain: "larger than 1 MiB"},
		{name: "child_pid is a directory", setup: func(h *fakeRootDir) { h.mkdir(stateDir + "/child_pid") }, errContain: "is a directory"},
		{name: "state dir is a file", setup: func(h *fakeRootDir) { h.file(stateDir, "", 0o644) }, errContain: "not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newFakeRootDir(t)
			if tt.setup != nil {
				tt.setup(h)
			}
			f := applyProbe(t, h.env(u, tt.environ...), probeState).State.RootlessKit
			if tt.errContain != "" {
				mustUnknown(t, "rootlesskit", f, tt.errContain)
				return
			}
			if got := mustKnown(t, "rootlesskit", f); got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestStateRootlessKitLivePid checks the live rule against real processes: this one, and one that
// has exited and been reaped.
func TestStateRootlessKitLivePid(t *testing.T) {
	e := &Env{Root: sys.Root{Dir: "/"}, Live: true}
	if ok, ev := pidRunning(e, os.Getpid()); !ok {
		t.Fatalf("own pid not running: %+v", ev)
	}
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := cmd.Process.Pid
	if ok, ev := pidRunning(e, dead); ok {
		t.Fatalf("reaped pid %d running: %+v", dead, ev)
	}
	if ok, _ := pidRunning(e, 1); !ok {
		t.Fatal("pid 1 not running: kill(1, 0) gives EPERM to an unprivileged user, which still means alive")
	}
}

func TestStateEnvAndNRI(t *testing.T) {
	u := sampleUser()
	h := newFakeRootDir(t)
	s := applyProbe(t, h.env(u), probeState).State
	if v := mustKnown(t, "snapshotter env", s.SnapshotterEnv); v != "" || s.SnapshotterEnv.Evidence[0].Excerpt != "(unset)" {
		t.Errorf("unset CONTAINERD_SNAPSHOTTER = %q %+v", v, s.SnapshotterEnv.Evidence)
	}
	if mustKnown(t, "run nri", s.RunNRI) {
		t.Error("/run/nri reported on an empty host")
	}

	h.mkdir("/run/nri")
	s = applyProbe(t, h.env(u, "CONTAINERD_SNAPSHOTTER=native"), probeState).State
	if v := mustKnown(t, "snapshotter env", s.SnapshotterEnv); v != "native" {
		t.Errorf("CONTAINERD_SNAPSHOTTER = %q", v)
	}
	if !mustKnown(t, "run nri", s.RunNRI) {
		t.Error("/run/nri directory not seen")
	}

	// The copy-up of /run leaves a symlink whose target does not exist on the host.
	h2 := newFakeRootDir(t)
	h2.symlink("/nonexistent/nri", "/run/nri")
	s = applyProbe(t, h2.env(u), probeState).State
	if !mustKnown(t, "run nri", s.RunNRI) || !strings.Contains(s.RunNRI.Evidence[0].Excerpt, "symlink") {
		t.Errorf("dangling /run/nri symlink: %+v", s.RunNRI)
	}
}

// TestStateLive runs the probe on this host; nothing is installed for root here, so everything must
// be known and the paths must be below $HOME.
func TestStateLive(t *testing.T) {
	e, err := NewEnv(Options{})
	if err != nil {
		t.Fatal(err)
	}
	resolveIdentity(e, "")
	s := applyProbe(t, e, probeState).State
	home, _ := os.UserHomeDir()
	for name, f := range map[string]Fact[ConfigFile]{"containerd": s.ContainerdConfig, "unit": s.ContainerdUnit, "override": s.ContainerdOverride} {
		c := mustKnown(t, name, f)
		_, statErr := os.Stat(c.Path)
		if c.Exists != (statErr == nil) {
			t.Errorf("%s: Exists %v but stat says %v", name, c.Exists, statErr)
		}
		if os.Getenv("XDG_CONFIG_HOME") == "" && !strings.HasPrefix(c.Path, home+"/") {
			t.Errorf("%s: %s is not below %s", name, c.Path, home)
		}
	}
	rk := mustKnown(t, "rootlesskit", s.RootlessKit)
	if _, err := os.Stat(rk.StateDir); (err == nil) != rk.Exists {
		t.Errorf("rootlesskit state dir %s: Exists %v, stat %v", rk.StateDir, rk.Exists, err)
	}
	_, nriErr := os.Lstat("/run/nri")
	if mustKnown(t, "run nri", s.RunNRI) != (nriErr == nil) {
		t.Errorf("RunNRI %v, lstat %v", s.RunNRI.Value, nriErr)
	}
	if want := os.Getenv("CONTAINERD_SNAPSHOTTER"); mustKnown(t, "snapshotter env", s.SnapshotterEnv) != want {
		t.Errorf("SnapshotterEnv %q, want %q", s.SnapshotterEnv.Value, want)
	}
}

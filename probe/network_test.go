package probe

import (
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/virt-setup/virt-setup/internal/sys"
)

const portStartPath = "/proc/sys/net/ipv4/ip_unprivileged_port_start"

func TestNetworkUnprivilegedPortStart(t *testing.T) {
	tests := []struct {
		name       string
		setup      func(h *fakeRootDir)
		want       int
		errContain string
	}{
		{"default", func(h *fakeRootDir) { h.file(portStartPath, "1024\n", 0o644) }, 1024, ""},
		{"opened up", func(h *fakeRootDir) { h.file(portStartPath, "0\n", 0o644) }, 0, ""},
		{"kernel before 4.11: no sysctl, every port below 1024 privileged", func(h *fakeRootDir) {}, 1024, ""},
		{"empty", func(h *fakeRootDir) { h.file(portStartPath, "", 0o644) }, 0, "is not a port number"},
		{"garbled", func(h *fakeRootDir) { h.file(portStartPath, "\xff\x00", 0o644) }, 0, "is not a port number"},
		{"out of range", func(h *fakeRootDir) { h.file(portStartPath, "70000", 0o644) }, 0, "is not a port number"},
		{"enormous", func(h *fakeRootDir) { h.big(portStartPath) }, 0, "larger than 1 MiB"},
		{"directory", func(h *fakeRootDir) { h.mkdir(portStartPath) }, 0, "is a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newFakeRootDir(t)
			tt.setup(h)
			f := applyProbe(t, h.env(sampleUser()), probeNetwork).Network.UnprivilegedPortStart
			if tt.errContain != "" {
				mustUnknown(t, "port start", f, tt.errContain)
				return
			}
			if got := mustKnown(t, "port start", f); got != tt.want {
				t.Fatalf("got %d, want %d", got, tt.want)
			}
		})
	}
}

// cniPluginSet installs the named executables in dir of a fake host.
func cniPluginSet(h *fakeRootDir, dir string, names ...string) {
	for _, n := range names {
		h.file(dir+"/"+n, "#!/bin/sh\nexit 1\n", 0o755)
	}
}

func TestNetworkCNIDirectory(t *testing.T) {
	all := CNIRequiredPlugins
	tests := []struct {
		name     string
		environ  []string
		setup    func(h *fakeRootDir)
		wantDir  string
		plugins  []string
		missing  []string
		errMatch string
	}{
		{
			name:    "nothing installed",
			setup:   func(h *fakeRootDir) {},
			plugins: []string{}, missing: all,
		},
		{
			name:    "/opt/cni/bin",
			setup:   func(h *fakeRootDir) { cniPluginSet(h, "/opt/cni/bin", "loopback", "host-local") },
			wantDir: "/opt/cni/bin", plugins: []string{"host-local", "loopback"}, missing: []string{"bridge", "portmap", "firewall", "tuning"},
		},
		{
			// nerdctl-full unpacked into ~/.local puts the plugins in ~/.local/libexec/cni, which wins
			// over a system directory.
			name: "home candidate first",
			setup: func(h *fakeRootDir) {
				cniPluginSet(h, "/home/alice/.local/libexec/cni", "tuning")
				cniPluginSet(h, "/usr/lib/cni", "loopback")
			},
			wantDir: "/home/alice/.local/libexec/cni", plugins: []string{"tuning"}, missing: []string{"bridge", "host-local", "loopback", "portmap", "firewall"},
		},
		{
			// rootless.md §5 #9: unpacked into ~/.local/bin, the plugins land in a directory nerdctl
			// never looks at.
			name:    "nerdctl-full in the wrong prefix",
			setup:   func(h *fakeRootDir) { cniPluginSet(h, "/home/alice/.local/bin/libexec/cni", all...) },
			plugins: []string{}, missing: all,
		},
		{
			name:    "CNI_PATH wins",
			environ: []string{"CNI_PATH=/srv/cni:/opt/cni/bin"},
			setup: func(h *fakeRootDir) {
				cniPluginSet(h, "/srv/cni", "firewall", "portmap", "loopback", "host-local", "tuning")
				cniPluginSet(h, "/opt/cni/bin", "bridge")
			},
			wantDir: "/srv/cni", plugins: []string{"firewall", "host-local", "loopback", "portmap", "tuning"}, missing: []string{"bridge"},
		},
		{
			name:     "relative CNI_PATH",
			environ:  []string{"CNI_PATH=cni/bin"},
			setup:    func(h *fakeRootDir) {},
			errMatch: "absolute",
		},
		{
			name: "cni_path in nerdctl.toml",
			setup: func(h *fakeRootDir) {
				h.file("/home/alice/.config/nerdctl/nerdctl.toml", "cni_path = \"/srv/cni\"\n", 0o644)
				cniPluginSet(h, "/srv/cni", "loopback")
				cniPluginSet(h, "/opt/cni/bin", "loopback", "tuning")
			},
			wantDir: "/srv/cni", plugins: []string{"loopback"}, missing: []string{"bridge", "host-local", "portmap", "firewall", "tuning"},
		},
		{
			name: "only executables count",
			setup: func(h *fakeRootDir) {
				cniPluginSet(h, "/usr/lib/cni", "loopback")
				h.file("/usr/lib/cni/README", "not a plugin", 0o644)
				h.mkdir("/usr/lib/cni/bridge")
				h.symlink("loopback", "/usr/lib/cni/lo-link")
				h.symlink("nowhere", "/usr/lib/cni/dangling")
			},
			wantDir: "/usr/lib/cni", plugins: []string{"lo-link", "loopback"}, missing: []string{"bridge", "host-local", "portmap", "firewall", "tuning"},
		},
		{
			name:    "candidate is a file",
			setup:   func(h *fakeRootDir) { h.file("/opt/cni/bin", "oops", 0o644) },
			wantDir: "/opt/cni/bin", plugins: []string{}, missing: all,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newFakeRootDir(t)
			tt.setup(h)
			f := applyProbe(t, h.env(sampleUser(), tt.environ...), probeNetwork).Network.CNI
			if tt.errMatch != "" {
				mustUnknown(t, "cni", f, tt.errMatch)
				return
			}
			c := mustKnown(t, "cni", f)
			if c.Dir != tt.wantDir || !reflect.DeepEqual(c.Plugins, tt.plugins) || !reflect.DeepEqual(c.Missing, tt.missing) {
				t.Fatalf("got %+v, want dir %q plugins %q missing %q", c, tt.wantDir, tt.plugins, tt.missing)
			}
			if c.Dir == "" {
				// The evidence must say where nerdctl would have looked.
				ex := f.Evidence[0].Excerpt
				for _, want := range []string{"/home/alice/opt/cni/bin", "/opt/cni/bin", "/usr/lib/cni"} {
					if !strings.Contains(ex, want) {
						t.Errorf("evidence %q does not list %s", ex, want)
					}
				}
			}
		})
	}
}

func TestNetworkCNIBridgeVersion(t *testing.T) {
	tests := []struct {
		name    string
		out     string
		code    int
		want    string
		excerpt string
	}{
		{"stamped", "CNI bridge plugin v1.10.0\nCNI protocol versions supported: 0.1.0, 0.2.0, 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0\n", 0, "1.10.0", "CNI bridge plugin v1.10.0"},
		{"exits non-zero", "CNI bridge plugin v1.4.1\n", 1, "1.4.1", "CNI bridge plugin v1.4.1"},
		{"built without version", "CNI bridge plugin version unknown\nCNI protocol versions supported: 1.0.0\n", 0, "", "version unknown"},
		{"not a CNI plugin", "Segmentation fault\n", 139, "", "exit status 139"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newFakeRootDir(t)
			cniPluginSet(h, "/opt/cni/bin", CNIRequiredPlugins...)
			e := h.env(sampleUser())
			stub := sys.NewStub(t)
			stub.Register(`.*/opt/cni/bin/bridge`, tt.out, tt.code)
			e.Runner = stub
			f := applyProbe(t, e, probeNetwork).Network.CNI
			c := mustKnown(t, "cni", f)
			if c.Version != tt.want || len(c.Missing) != 0 {
				t.Fatalf("got %+v, want version %q", c, tt.want)
			}
			if ev := f.Evidence[len(f.Evidence)-1]; ev.Kind != "command" || !strings.Contains(ev.Excerpt, tt.excerpt) {
				t.Errorf("evidence %+v, want %q", ev, tt.excerpt)
			}
		})
	}
}

// TestNetworkCNIBridgeScript runs a fake bridge plugin for real: it must see no CNI_COMMAND even when
// the caller's environment has one, or it would act on stdin.
func TestNetworkCNIBridgeScript(t *testing.T) {
	t.Setenv("CNI_COMMAND", "ADD")
	h := newFakeRootDir(t)
	cniPluginSet(h, "/opt/cni/bin", "loopback")
	h.file("/opt/cni/bin/bridge", "#!/bin/sh\nif [ -n \"$CNI_COMMAND\" ]; then echo \"acted on $CNI_COMMAND\" >&2; exit 3; fi\necho 'CNI bridge plugin v1.10.0' >&2\nexit 1\n", 0o755)
	e := h.env(sampleUser())
	e.Runner = sys.Exec{}
	c := mustKnown(t, "cni", applyProbe(t, e, probeNetwork).Network.CNI)
	if c.Version != "1.10.0" {
		t.Fatalf("version %q", c.Version)
	}
}

func TestParseCNIPluginVersion(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{"CNI bridge plugin v1.10.0\nCNI protocol versions supported: 1.0.0\n", "1.10.0", false},
		{"CNI portmap plugin v1.4.0-rc.1", "1.4.0-rc.1", false},
		{"warning: something\nCNI bridge plugin v1.5.1+dirty\n", "1.5.1+dirty", false},
		{"CNI bridge plugin 1.1.1", "1.1.1", false},
		{"CNI bridge plugin version unknown", "", true},
		{"CNI bridge plugin vX", "", true},
		{"CNI bridge plugin v1", "", true},
		{"CNI bridge plugin v1..2", "", true},
		{"", "", true},
		{"bridge: command not found", "", true},
	}
	for _, tt := range tests {
		got, err := ParseCNIPluginVersion(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseCNIPluginVersion(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func FuzzParseCNIPluginVersion(f *testing.F) {
	for _, s := range []string{"CNI bridge plugin v1.10.0\n", "CNI bridge plugin version unknown", "CNI x plugin v-", "CNI a plugin v1.2.3-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseCNIPluginVersion(s)
		if err == nil && (v == "" || strings.HasPrefix(v, "v") || strings.ContainsAny(v, " \t\n")) {
			t.Fatalf("version %q from %q", v, s)
		}
	})
}

// TestNetworkLive compares the probe with this host's sysctl and CNI directories.
func TestNetworkLive(t *testing.T) {
	e, err := NewEnv(Options{})
	if err != nil {
		t.Fatal(err)
	}
	resolveIdentity(e, "")
	n := applyProbe(t, e, probeNetwork).Network
	if b, err := os.ReadFile(portStartPath); err == nil {
		want, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if got := mustKnown(t, "port start", n.UnprivilegedPortStart); got != want {
			t.Errorf("port start %d, want %d", got, want)
		}
	}
	c := mustKnown(t, "cni", n.CNI)
	if c.Dir != "" {
		if _, err := os.Stat(c.Dir); err != nil {
			t.Errorf("CNI dir %s: %v", c.Dir, err)
		}
	}
	if len(c.Missing)+len(intersect(c.Plugins, CNIRequiredPlugins)) != len(CNIRequiredPlugins) {
		t.Errorf("plugins %q and missing %q do not add up", c.Plugins, c.Missing)
	}
}

func intersect(a, b []string) []string {
	var out []string
	for _, x := range a {
		for _, y := range b {
			if x == y {
				out = append(out, x)
			}
		}
	}
	return out
}

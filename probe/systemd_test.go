package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/virt-setup/virt-setup/internal/sys"
	"github.com/virt-setup/virt-setup/internal/testenv"
)

func TestParseSystemdVersion(t *testing.T) {
	tests := []struct {
		in      string
		want    int
		wantErr bool
	}{
		{"systemd 252 (252.39-1~deb12u1)\n+PAM +AUDIT +SELINUX\n", 252, false},
		{"systemd 255 (255.4-1ubuntu8.4)\n", 255, false},
		{"systemd 219\n+PAM +AUDIT +SELINUX +IMA\n", 219, false},
		{"systemd 256~rc3 (256~rc3-1)\n", 256, false},
		{"systemd 257 (257.7-1.fc42)", 257, false},
		{"  systemd 239 (239-78.el8)\n", 239, false},
		{"", 0, true},
		{"\n", 0, true},
		{"systemd\n", 0, true},
		{"systemd abc\n", 0, true},
		{"systemd 0\n", 0, true},
		{"systemd 99999999999999999999\n", 0, true},
		{"elogind 252.9\n", 0, true},
		{"systemctl: command not found\nsystemd 252\n", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseSystemdVersion(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseSystemdVersion(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func FuzzParseSystemdVersion(f *testing.F) {
	for _, s := range []string{"systemd 252 (252.39-1~deb12u1)\n+PAM", "systemd 219", "systemd 256~rc3", "systemd", "systemd -1", "systemd 1e9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseSystemdVersion(s)
		if err == nil && (v <= 0 || v > 999999) {
			t.Fatalf("version %d accepted from %q", v, s)
		}
		if err != nil && v != 0 {
			t.Fatalf("version %d returned with error %v", v, err)
		}
	})
}

func TestSystemdFakeHost(t *testing.T) {
	u := sampleUser()
	tests := []struct {
		name        string
		environ     []string
		setup       func(h *fakeRootDir)
		pid1        bool
		userManager bool
		linger      bool
		userBus     bool
	}{
		{name: "no systemd", setup: func(h *fakeRootDir) { h.mkdir("/run/systemd/sessions") }},
		{name: "/run/systemd/system is a file", setup: func(h *fakeRootDir) { h.file("/run/systemd/system", "", 0o644) }},
		{name: "systemd without user manager", setup: func(h *fakeRootDir) { h.mkdir("/run/systemd/system") }, pid1: true},
		{
			name: "full session",
			setup: func(h *fakeRootDir) {
				h.mkdir("/run/systemd/system")
				h.file("/run/user/1000/systemd/private", "", 0o600)
				h.file("/run/user/1000/bus", "", 0o600)
				h.file("/var/lib/systemd/linger/alice", "", 0o644)
			},
			pid1: true, userManager: true, linger: true, userBus: true,
		},
		{
			name:    "bus under XDG_RUNTIME_DIR",
			environ: []string{"XDG_RUNTIME_DIR=/tmp/xdg"},
			setup: func(h *fakeRootDir) {
				h.mkdir("/run/systemd/system")
				h.file("/tmp/xdg/bus", "", 0o600)
				h.file("/var/lib/systemd/linger/bob", "", 0o644)
			},
			pid1: true, userBus: true,
		},
		{
			name:    "XDG_RUNTIME_DIR set elsewhere hides /run/user",
			environ: []string{"XDG_RUNTIME_DIR=/tmp/xdg"},
			setup:   func(h *fakeRootDir) { h.file("/run/user/1000/bus", "", 0o600) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newFakeRootDir(t)
			tt.setup(h)
			s := applyProbe(t, h.env(u, tt.environ...), probeSystemd).Systemd
			for _, c := range []struct {
				name string
				f    Fact[bool]
				want bool
			}{{"pid1", s.PID1, tt.pid1}, {"user manager", s.UserManager, tt.userManager}, {"linger", s.Linger, tt.linger}, {"user bus", s.UserBus, tt.userBus}} {
				if got := mustKnown(t, c.name, c.f); got != c.want {
					t.Errorf("%s = %v, want %v (evidence %+v)", c.name, got, c.want, c.f.Evidence)
				}
			}
			// No systemctl on these hosts: the version cannot be asked.
			mustUnknown(t, "version", s.Version, "systemctl not found")
		})
	}
}

func TestSystemdUnknowns(t *testing.T) {
	h := newFakeRootDir(t)
	h.mkdir("/run/systemd/system")
	s := applyProbe(t, h.env(User{}), probeSystemd).Systemd
	if !mustKnown(t, "pid1", s.PID1) {
		t.Fatal("pid1 false")
	}
	mustUnknown(t, "user manager", s.UserManager, "user is unknown")
	mustUnknown(t, "linger", s.Linger, "user name is unknown")
	mustUnknown(t, "user bus", s.UserBus, "uid is unknown")

	// A name with a slash must not walk out of the linger directory.
	evil := sampleUser()
	evil.Name = "../../../etc"
	s = applyProbe(t, h.env(evil), probeSystemd).Systemd
	mustUnknown(t, "linger", s.Linger, "cannot name a file")
}

// TestSystemdUserBusLive checks the live rule (a socket, nothing else) on a fake root.
func TestSystemdUserBusLive(t *testing.T) {
	h := newFakeRootDir(t)
	e := h.env(sampleUser(), "XDG_RUNTIME_DIR=/b")
	e.Live = true
	h.file("/b/bus", "", 0o600)
	if v := mustKnown(t, "user bus", systemdUserBus(e)); v {
		t.Error("a regular file counted as the bus socket on the live host")
	}
	if err := os.Remove(h.path("/b/bus")); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", h.path("/b/bus"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if v := mustKnown(t, "user bus", systemdUserBus(e)); !v {
		t.Error("a socket was not taken for the bus")
	}
}

// recordingRunner passes commands to a Stub and remembers them, so a test can look at the
// environment a command got.
type recordingRunner struct {
	sys.Runner
	mu   sync.Mutex
	cmds []sys.Command
}

func (r *recordingRunner) Run(ctx context.Context, c sys.Command) (sys.Result, error) {
	r.mu.Lock()
	r.cmds = append(r.cmds, c)
	r.mu.Unlock()
	return r.Runner.Run(ctx, c)
}

func TestSystemdCommands(t *testing.T) {
	const version = "systemd 252 (252.39-1~deb12u1)\n+PAM +AUDIT +SELINUX +APPARMOR\n"
	tests := []struct {
		name        string
		live        bool
		register    func(s *sys.Stub)
		wantVersion int
		versionErr  string
		wantManager bool
		managerErr  string
		excerpt     string
	}{
		{
			name: "reachable user manager",
			live: true,
			register: func(s *sys.Stub) {
				s.Register(`.*/usr/bin/systemctl --version`, version, 0)
				s.Register(`.*/usr/bin/systemctl --user show-environment`, "HOME=/home/alice\nLANG=C.UTF-8\n", 0)
			},
			wantVersion: 252, wantManager: true, excerpt: "exit status 0",
		},
		{
			name: "su without a session",
			live: true,
			register: func(s *sys.Stub) {
				s.Register(`.*/usr/bin/systemctl --version`, version, 0)
				s.Register(`.*/usr/bin/systemctl --user show-environment`, "Failed to connect to bus: $DBUS_SESSION_BUS_ADDRESS and $XDG_RUNTIME_DIR not defined (consider using --machine=<user>@.host --user to connect to bus of other user)\n", 1)
			},
			wantVersion: 252, excerpt: "Failed to connect to bus",
		},
		{
			name: "systemctl cannot start",
			live: true,
			register: func(s *sys.Stub) {
				s.RegisterError(`.*/usr/bin/systemctl --version`, errors.New("exec format error"))
				s.RegisterError(`.*/usr/bin/systemctl --user show-environment`, errors.New("exec format error"))
			},
			versionErr: "exec format error", managerErr: "exec format error",
		},
		{
			name: "garbled version",
			register: func(s *sys.Stub) {
				s.Register(`.*/usr/bin/systemctl --version`, "\x00\x01\x02", 0)
			},
			versionErr: "parse systemd version",
			// Under --root the private socket decides, and this host has none.
			wantManager: false, excerpt: "does not exist",
		},
		{
			name: "version exits non-zero",
			register: func(s *sys.Stub) {
				s.Register(`.*/usr/bin/systemctl --version`, "", 127)
			},
			versionErr: "exit status 127", excerpt: "does not exist",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newFakeRootDir(t)
			h.mkdir("/run/systemd/system")
			h.file("/usr/bin/systemctl", "#!/bin/sh\nexit 99\n", 0o755)
			e := h.env(sampleUser(), "XDG_RUNTIME_DIR=/run/user/1000", "DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/1000/bus")
			e.Live = tt.live
			stub := sys.NewStub(t)
			tt.register(stub)
			rec := &recordingRunner{Runner: stub}
			e.Runner = rec
			s := applyProbe(t, e, probeSystemd).Systemd
			if tt.versionErr != "" {
				mustUnknown(t, "version", s.Version, tt.versionErr)
			} else if v := mustKnown(t, "version", s.Version); v != tt.wantVersion {
				t.Errorf("version %d, want %d", v, tt.wantVersion)
			}
			if tt.managerErr != "" {
				mustUnknown(t, "user manager", s.UserManager, tt.managerErr)
			} else {
				if v := mustKnown(t, "user manager", s.UserManager); v != tt.wantManager {
					t.Errorf("user manager %v, want %v", v, tt.wantManager)
				}
				if ex := s.UserManager.Evidence[0].Excerpt; !strings.Contains(ex, tt.excerpt) {
					t.Errorf("user manager evidence %q, want %q", ex, tt.excerpt)
				}
			}
			for _, c := range rec.cmds {
				want := systemctlTimeout
				if strings.Contains(c.String(), "--user") {
					want = userManagerTimeout
				}
				if c.Timeout != want || c.Timeout >= DefaultTimeout {
					t.Errorf("%s: timeout %v, want %v, within the probe's %v", c, c.Timeout, want, DefaultTimeout)
				}
				if strings.Contains(c.String(), "--user") && strings.Join(c.Env, "\n") != strings.Join(e.Environ, "\n") {
					// systemctl --user finds the bus through XDG_RUNTIME_DIR and DBUS_SESSION_BUS_ADDRESS.
					t.Errorf("%s ran with env %q, want the user's %q", c, c.Env, e.Environ)
				}
			}
		})
	}
}

// TestSystemdFakeExecutable runs the fake root's systemctl for real, as --root does.
func TestSystemdFakeExecutable(t *testing.T) {
	h := newFakeRootDir(t)
	h.file("/usr/bin/systemctl", "#!/bin/sh\n[ \"$1\" = --version ] || exit 2\necho 'systemd 255 (255.4-1ubuntu8)'\necho '+PAM +AUDIT'\n", 0o755)
	e := h.env(sampleUser())
	e.Runner = sys.Exec{}
	s := applyProbe(t, e, probeSystemd).Systemd
	if v := mustKnown(t, "version", s.Version); v != 255 {
		t.Errorf("version %d, want 255", v)
	}
	if ev := s.Version.Evidence[0]; ev.Source != "/usr/bin/systemctl --version" || ev.Excerpt != "systemd 255 (255.4-1ubuntu8)" {
		t.Errorf("evidence %+v", ev)
	}
}

// TestSystemdLive compares the probe with this host: systemd is PID 1 exactly when /proc/1/comm says
// so (on the project's VM it is not, so there is no user manager either).
func TestSystemdLive(t *testing.T) {
	comm, err := os.ReadFile("/proc/1/comm")
	testenv.Require(t, err == nil, fmt.Sprintf("reading /proc/1/comm (%v): mount /proc", err))
	wantPID1 := strings.TrimSpace(string(comm)) == "systemd"
	e, err := NewEnv(Options{})
	if err != nil {
		t.Fatal(err)
	}
	resolveIdentity(e, "")
	e.LookupDirs = e.lookupDirs()
	s := applyProbe(t, e, probeSystemd).Systemd
	if got := mustKnown(t, "pid1", s.PID1); got != wantPID1 {
		t.Fatalf("pid1 %v, /proc/1/comm says %q", got, comm)
	}
	if !wantPID1 {
		if mustKnown(t, "user manager", s.UserManager) {
			t.Error("user manager reachable without systemd as init")
		}
	}
	if path, err := exec.LookPath("systemctl"); err == nil {
		out, err := exec.Command(path, "--version").Output()
		if err != nil {
			t.Fatal(err)
		}
		want, err := ParseSystemdVersion(string(out))
		if err != nil {
			t.Fatal(err)
		}
		if got := mustKnown(t, "version", s.Version); got != want {
			t.Errorf("version %d, systemctl says %d", got, want)
		}
	}
	_, lingerErr := os.Stat("/var/lib/systemd/linger/" + e.User.Name)
	if got := mustKnown(t, "linger", s.Linger); got != (lingerErr == nil) {
		t.Errorf("linger %v, stat %v", got, lingerErr)
	}
}

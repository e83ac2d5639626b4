package probe

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestCheckUserManager(t *testing.T) {
	runCheckCases(t, "VS-SYSTEMD-001", []checkCase{
		{name: "running", want: StatusOK},
		// A warning, not a failure: virt-setup can run containerd-rootless.sh without systemd.
		{name: "not running", want: StatusWarn, title: "No systemd user manager for alice", mod: func(f *Facts) {
			f.Systemd.UserManager = Known(false, Evidence{Kind: "command", Source: "systemctl --user show-environment", Excerpt: "Failed to connect to bus"})
		}},
		{name: "no systemd", want: StatusWarn, title: "systemd is not the init system", mod: func(f *Facts) {
			f.Systemd.PID1 = Known(false)
			f.Systemd.UserManager = Known(false)
		}},
		{name: "unknown", want: StatusSkip, mod: func(f *Facts) { f.Systemd.UserManager = Unknown[bool](errors.New("timed out")) }},
	})
	f := healthyFacts()
	f.Systemd.PID1, f.Systemd.UserManager = Known(false), Known(false)
	if x := runCheck(t, "VS-SYSTEMD-001", f).Fix; len(x.Root) != 0 || !strings.Contains(x.Summary, "containerd-rootless.sh") {
		t.Errorf("without systemd nothing needs root: %+v", x)
	}
}

func TestCheckLinger(t *testing.T) {
	runCheckCases(t, "VS-LINGER-001", []checkCase{
		{name: "on", want: StatusOK},
		{name: "off", want: StatusWarn, title: "Lingering is off for alice", mod: func(f *Facts) { f.Systemd.Linger = Known(false) }},
		{name: "no systemd", want: StatusSkip, title: "lingering is a systemd-logind feature", mod: func(f *Facts) {
			f.Systemd.PID1, f.Systemd.Linger = Known(false), Known(false)
		}},
		{name: "unknown", want: StatusSkip, mod: func(f *Facts) { f.Systemd.Linger = Unknown[bool](errors.New("the user name is unknown")) }},
	})
}

func TestCheckUserBus(t *testing.T) {
	noBus := func(f *Facts) {
		f.Systemd.UserBus = Known(false, Evidence{Kind: "file", Source: "/run/user/1000/bus", Excerpt: "does not exist"})
	}
	runCheckCases(t, "VS-DBUS-001", []checkCase{
		{name: "present", want: StatusOK},
		{name: "missing on cgroup v2", want: StatusFail, title: "systemd cgroup driver", mod: noBus},
		{name: "missing on v1 with nerdctl 2", want: StatusFail, title: "Requires=dbus.socket", mod: func(f *Facts) {
			noBus(f)
			f.Cgroup.Version = Known("hybrid")
		}},
		{name: "missing on v1 with old nerdctl", want: StatusWarn, mod: func(f *Facts) {
			noBus(f)
			f.Cgroup.Version = Known("v1")
			setBin(f, "nerdctl", "1.7.7")
		}},
		{name: "no systemd", want: StatusSkip, title: "no dbus user session is needed", mod: func(f *Facts) {
			noBus(f)
			f.Systemd.PID1 = Known(false)
		}},
		{name: "unknown", want: StatusSkip, mod: func(f *Facts) { f.Systemd.UserBus = Unknown[bool](errors.New("uid unknown")) }},
	})
	f := healthyFacts()
	noBus(f)
	if x := runCheck(t, "VS-DBUS-001", f).Fix; !slices.Contains(x.User, "systemctl --user enable --now dbus") {
		t.Errorf("fix = %+v", x)
	}
}

func TestCheckWSL(t *testing.T) {
	runCheckCases(t, "VS-WSL-001", []checkCase{
		{name: "not WSL", want: StatusSkip, title: "Not running under WSL"},
		{name: "WSL with systemd", want: StatusOK, mod: func(f *Facts) { f.OS.WSL = Known(true) }},
		{name: "WSL without systemd", want: StatusWarn, title: "WSL without systemd", mod: func(f *Facts) {
			f.OS.WSL, f.Systemd.PID1 = Known(true), Known(false)
		}},
		{name: "unknown", want: StatusSkip, title: "unknown", mod: func(f *Facts) { f.OS.WSL = Unknown[bool](errors.New("unreadable")) }},
	})
	f := healthyFacts()
	f.OS.WSL, f.Systemd.PID1 = Known(true), Known(false)
	if x := runCheck(t, "VS-WSL-001", f).Fix; len(x.Root) != 1 || !strings.Contains(x.Root[0], "systemd=true") || !strings.Contains(x.Root[0], "/etc/wsl.conf") {
		t.Errorf("fix = %+v", x)
	}
}

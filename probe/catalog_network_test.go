package probe

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckTunDevice(t *testing.T) {
	set := func(d Device) func(*Facts) {
		return func(f *Facts) {
			f.Devices.Tun = Known(d, Evidence{Kind: "file", Source: "/dev/net/tun", Excerpt: "mode " + d.Mode})
		}
	}
	runCheckCases(t, "VS-TUN-001", []checkCase{
		{name: "usable", want: StatusOK},
		{name: "0600 root (this project's VM)", want: StatusFail, title: "open: Permission denied", mod: set(Device{Path: "/dev/net/tun", Exists: true, CharDev: true, Mode: "0600", How: DeviceHowModeBits})},
		{name: "missing", want: StatusFail, title: "does not exist", mod: set(Device{Path: "/dev/net/tun"})},
		{name: "unknown", want: StatusSkip, mod: func(f *Facts) { f.Devices.Tun = Unknown[Device](errors.New("the user is unknown")) }},
	})
	f := healthyFacts()
	set(Device{Path: "/dev/net/tun", Exists: true, CharDev: true, Mode: "0600"})(f)
	if x := runCheck(t, "VS-TUN-001", f).Fix; strings.Join(x.Root, ";") != "chmod 0666 /dev/net/tun" {
		t.Errorf("fix = %+v", x.Root)
	}
}

func TestCheckNetworkDriver(t *testing.T) {
	runCheckCases(t, "VS-NET-001", []checkCase{
		{name: "slirp4netns", want: StatusOK, title: "can use slirp4netns"},
		{name: "RootlessKit 3 alone", want: StatusOK, title: "can use gvisor-tap-vsock", mod: func(f *Facts) {
			dropBin(f, "slirp4netns")
			setBin(f, "rootlesskit", "3.0.1", "detach-netns", "pasta", "gvisor-tap-vsock")
		}},
		{name: "nothing", want: StatusFail, title: "slirp4netns is not installed; vpnkit is not installed; pasta is not installed", mod: func(f *Facts) {
			dropBin(f, "slirp4netns")
		}},
		{name: "old slirp4netns", want: StatusFail, title: "older than 0.4.0", mod: func(f *Facts) {
			setBin(f, "slirp4netns", "0.3.0")
		}},
		{name: "unknown", want: StatusSkip, mod: func(f *Facts) {
			unknownBin(f, "slirp4netns")
			unknownBin(f, "rootlesskit")
		}},
	})
}

func TestCheckNetworkFallback(t *testing.T) {
	noSlirp := func(f *Facts) { dropBin(f, "slirp4netns") }
	runCheckCases(t, "VS-NET-002", []checkCase{
		{name: "slirp4netns present", want: StatusOK, title: "picks slirp4netns"},
		{name: "vpnkit present", want: StatusOK, title: "picks vpnkit", mod: func(f *Facts) {
			noSlirp(f)
			setBin(f, "vpnkit", "0.5.0")
		}},
		// The trap: nerdctl ≥ 2.3 falls back to gvisor-tap-vsock, RootlessKit 2.x does not know it.
		{name: "nerdctl 2.3 + RootlessKit 2.x", want: StatusFail, title: "RootlessKit 2.3.5 (before 3.0) rejects", mod: func(f *Facts) {
			noSlirp(f)
			setBin(f, "nerdctl", "2.3.0")
		}},
		{name: "told by the script", want: StatusFail, title: "unknown network mode", mod: func(f *Facts) {
			noSlirp(f)
			setBin(f, "nerdctl", "")
			setBin(f, "containerd-rootless.sh", "", "detach-netns", "gvisor-fallback")
		}},
		{name: "nerdctl 2.3 + RootlessKit 3", want: StatusOK, title: "falls back to gvisor-tap-vsock, which RootlessKit 3.0.1 supports", mod: func(f *Facts) {
			noSlirp(f)
			setBin(f, "nerdctl", "2.3.5")
			setBin(f, "rootlesskit", "3.0.1", "gvisor-tap-vsock")
		}},
		{name: "nerdctl 2.2 without slirp4netns", want: StatusFail, title: "Either slirp4netns (>= v0.4.0) or vpnkit needs to be installed", mod: func(f *Facts) {
			noSlirp(f)
			setBin(f, "nerdctl", "2.2.0")
			setBin(f, "rootlesskit", "3.0.1", "gvisor-tap-vsock")
		}},
		{name: "unit sets gvisor with RootlessKit 2", want: StatusFail, title: "CONTAINERD_ROOTLESS_ROOTLESSKIT_NET=gvisor-tap-vsock", mod: func(f *Facts) {
			f.State.ContainerdOverride = Known(ConfigFile{Path: "override.conf", Exists: true, Valid: true, Environment: map[string]string{"CONTAINERD_ROOTLESS_ROOTLESSKIT_NET": "gvisor-tap-vsock"}})
		}},
		{name: "unit sets pasta with RootlessKit 2", want: StatusOK, title: "no fallback applies", mod: func(f *Facts) {
			noSlirp(f)
			f.State.ContainerdUnit = Known(ConfigFile{Path: "containerd.service", Exists: true, Valid: true, Environment: map[string]string{"CONTAINERD_ROOTLESS_ROOTLESSKIT_NET": "pasta"}})
		}},
		{name: "nerdctl version unknown", want: StatusSkip, title: "unknown", mod: func(f *Facts) {
			noSlirp(f)
			setBin(f, "nerdctl", "")
		}},
		{name: "nerdctl not installed", want: StatusSkip, title: "nerdctl is not installed", mod: func(f *Facts) { dropBin(f, "nerdctl") }},
		{name: "unknown", want: StatusSkip, mod: func(f *Facts) { unknownBin(f, "nerdctl") }},
	})
}

func TestCheckCNI(t *testing.T) {
	set := func(c CNI) func(*Facts) {
		return func(f *Facts) { f.Network.CNI = Known(c, Evidence{Kind: "file", Source: c.Dir}) }
	}
	runCheckCases(t, "VS-CNI-001", []checkCase{
		{name: "present", want: StatusOK, title: "(version 1.6.2)"},
		{name: "no directory (#9)", want: StatusFail, title: "No CNI plugin directory", mod: set(CNI{Missing: []string{"bridge", "portmap"}})},
		{name: "empty directory", want: StatusFail, title: "No CNI plugins in /opt/cni/bin", mod: set(CNI{Dir: "/opt/cni/bin", Missing: []string{"bridge"}})},
		{name: "some missing", want: StatusFail, title: "missing from /opt/cni/bin: portmap, firewall", mod: set(CNI{Dir: "/opt/cni/bin", Plugins: []string{"bridge"}, Missing: []string{"portmap", "firewall"}})},
		{name: "unknown", want: StatusSkip, mod: func(f *Facts) { f.Network.CNI = Unknown[CNI](errors.New("unreadable")) }},
	})
}

func TestCheckIptables(t *testing.T) {
	runCheckCases(t, "VS-IPTABLES-001", []checkCase{
		{name: "present", want: StatusOK, title: "iptables 1.8.9"},
		{name: "missing", want: StatusFail, title: "not installed", mod: func(f *Facts) { dropBin(f, "iptables") }},
		{name: "unknown", want: StatusSkip, mod: func(f *Facts) { unknownBin(f, "iptables") }},
	})
}

func TestCheckPrivilegedPorts(t *testing.T) {
	runCheckCases(t, "VS-PORTS-001", []checkCase{
		{name: "0", want: StatusOK},
		{name: "1024, the default", want: StatusOK, title: "Ports from 1024 up can be published", mod: func(f *Facts) { f.Network.UnprivilegedPortStart = Known(1024) }},
		{name: "raised to 2000", want: StatusWarn, title: "Ports below 2000 cannot be published", mod: func(f *Facts) { f.Network.UnprivilegedPortStart = Known(2000) }},
		{name: "unknown", want: StatusSkip, mod: func(f *Facts) { f.Network.UnprivilegedPortStart = Unknown[int](errors.New("garbled")) }},
	})
	f := healthyFacts()
	f.Network.UnprivilegedPortStart = Known(2000)
	x := runCheck(t, "VS-PORTS-001", f).Fix
	if !strings.Contains(strings.Join(x.Root, "\n"), "net.ipv4.ip_unprivileged_port_start=0") {
		t.Errorf("fix lacks the sysctl: %+v", x.Root)
	}
	if !strings.Contains(strings.Join(x.Notes, "\n"), "setcap cap_net_bind_service=ep /home/alice/.local/bin/rootlesskit") {
		t.Errorf("fix lacks the setcap alternative: %+v", x.Notes)
	}
}

func TestCheckKernelBypass(t *testing.T) {
	runCheckCases(t, "VS-KERNEL-002", []checkCase{
		{name: "6.1", want: StatusOK},
		{name: "5.9", want: StatusOK, mod: func(f *Facts) { setKernel(f, 5, 9) }},
		{name: "5.8", want: StatusWarn, title: "older than 5.9", mod: func(f *Facts) { setKernel(f, 5, 8) }},
		{name: "no user_notif", want: StatusWarn, title: "no seccomp user_notif", mod: func(f *Facts) {
			f.Security.SeccompActions = Known([]string{"kill_process", "errno", "allow"})
		}},
		{name: "unknown", want: StatusSkip, mod: func(f *Facts) { f.OS.Kernel = Unknown[Kernel](errors.New("garbled")) }},
	})
}

func TestCheckIptablesOnPath(t *testing.T) {
	at := func(path string, userPath ...string) func(*Facts) {
		return func(f *Facts) {
			b := f.Binaries["iptables"]
			b.Value.Path = path
			f.Binaries["iptables"] = b
			f.Identity.Path = Known(userPath)
		}
	}
	runCheckCases(t, "VS-IPTABLES-002", []checkCase{
		{name: "on PATH", want: StatusOK, title: "/usr/sbin is on your PATH", mod: at("/usr/sbin/iptables", "/usr/local/bin", "/usr/sbin", "/usr/bin")},
		{name: "Debian user PATH", want: StatusWarn, title: "iptables is in /usr/sbin, which is not on your PATH", mod: at("/usr/sbin/iptables", "/usr/local/bin", "/usr/bin", "/bin", "/usr/games")},
		{name: "PATH unknown", want: StatusSkip, mod: func(f *Facts) { f.Identity.Path = Unknown[[]string](errors.New("garbled")) }},
		{name: "no iptables", want: StatusSkip, title: "VS-IPTABLES-001", mod: func(f *Facts) { dropBin(f, "iptables") }},
	})
	f := healthyFacts()
	at("/usr/sbin/iptables", "/usr/bin")(f)
	x := runCheck(t, "VS-IPTABLES-002", f).Fix
	if got := strings.Join(x.User, "\n"); !strings.Contains(got, `export PATH="$PATH:/usr/sbin:/sbin"`) || !strings.Contains(got, "~/.profile") {
		t.Errorf("fix = %q", got)
	}
}

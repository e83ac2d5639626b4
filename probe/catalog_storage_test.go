package probe

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckOverlay(t *testing.T) {
	noLive := func(f *Facts) {
		f.Live.OverlayUserns = Known(LiveTest{Status: LiveSkipped, Detail: "live tests run only on the real host"})
	}
	runCheckCases(t, "VS-OVERLAY-001", []checkCase{
		{name: "live test passed", want: StatusOK, title: "live overlay mount test passed"},
		{name: "live test failed", want: StatusWarn, title: "use fuse-overlayfs instead", mod: func(f *Facts) {
			f.Live.OverlayUserns = Known(LiveTest{Status: LiveFailed, Detail: "mount: operation not permitted"})
		}},
		{name: "rule: 6.1", want: StatusOK, title: "5.13 or newer", mod: noLive},
		{name: "rule: RHEL 8's 4.18", want: StatusWarn, title: "older than 5.11", mod: func(f *Facts) {
			noLive(f)
			withFamily(f, "rhel", "fedora")
			setKernel(f, 4, 18)
		}},
		{name: "rule: old kernel, no fuse either", want: StatusWarn, title: "use native instead", mod: func(f *Facts) {
			noLive(f)
			f.Live.FuseOverlayfs = Known(LiveTest{Status: LiveSkipped})
			setKernel(f, 4, 15)
		}},
		{name: "unknown kernel", want: StatusSkip, title: "kernel version is unknown", mod: func(f *Facts) {
			noLive(f)
			f.OS.Kernel = Unknown[Kernel](errors.New("garbled"))
		}},
	})
	f := healthyFacts()
	noLive(f)
	f.Live.FuseOverlayfs = Known(LiveTest{Status: LiveSkipped})
	setKernel(f, 4, 15)
	if x := runCheck(t, "VS-OVERLAY-001", f).Fix; !strings.Contains(strings.Join(x.User, " "), "CONTAINERD_SNAPSHOTTER=native") || len(x.Root) != 0 {
		t.Errorf("kernel too old for FUSE: the fix is native, with nothing to install: %+v", x)
	}
}

func TestCheckFuseDevice(t *testing.T) {
	set := func(d Device) func(*Facts) {
		return func(f *Facts) {
			f.Devices.Fuse = Known(d, Evidence{Kind: "file", Source: "/dev/fuse", Excerpt: "mode " + d.Mode})
		}
	}
	runCheckCases(t, "VS-FUSE-001", []checkCase{
		{name: "usable", want: StatusOK, title: "alice can open /dev/fuse (opened read-write)"},
		{name: "0600 root (this project's VM)", want: StatusWarn, title: "mode 0600, owner 0:0", mod: set(Device{Path: "/dev/fuse", Exists: true, CharDev: true, Mode: "0600", How: DeviceHowOpened})},
		{name: "missing", want: StatusWarn, title: "does not exist", mod: set(Device{Path: "/dev/fuse"})},
		{name: "not a device", want: StatusWarn, title: "not a character device", mod: set(Device{Path: "/dev/fuse", Exists: true, Mode: "0644"})},
		{name: "unknown", want: StatusSkip, mod: func(f *Facts) { f.Devices.Fuse = Unknown[Device](errors.New("the user is unknown")) }},
	})
	f := healthyFacts()
	set(Device{Path: "/dev/fuse", Exists: true, CharDev: true, Mode: "0600"})(f)
	if x := runCheck(t, "VS-FUSE-001", f).Fix; strings.Join(x.Root, ";") != "chmod 0666 /dev/fuse" {
		t.Errorf("fix = %+v", x.Root)
	}
	set(Device{Path: "/dev/fuse"})(f)
	if x := runCheck(t, "VS-FUSE-001", f).Fix; strings.Join(x.Root, ";") != "modprobe fuse" {
		t.Errorf("fix for a missing node = %+v", x.Root)
	}
}

func TestCheckKernelFuse(t *testing.T) {
	runCheckCases(t, "VS-KERNEL-001", []checkCase{
		{name: "6.1", want: StatusOK},
		{name: "4.18", want: StatusOK, mod: func(f *Facts) { setKernel(f, 4, 18) }},
		{name: "4.17", want: StatusWarn, title: "older than 4.18", mod: func(f *Facts) { setKernel(f, 4, 17) }},
		{name: "3.10 (CentOS 7)", want: StatusWarn, mod: func(f *Facts) { setKernel(f, 3, 10) }},
		{name: "unknown", want: StatusSkip, mod: func(f *Facts) { f.OS.Kernel = Unknown[Kernel](errors.New("garbled")) }},
	})
}

func TestCheckSnapshotterSetting(t *testing.T) {
	env := func(v string) func(*Facts) {
		return func(f *Facts) {
			f.State.SnapshotterEnv = Known(v, Evidence{Kind: "env", Source: "CONTAINERD_SNAPSHOTTER", Excerpt: v})
		}
	}
	runCheckCases(t, "VS-SNAP-001", []checkCase{
		{name: "unset", want: StatusOK, title: "nerdctl uses overlayfs"},
		{name: "native", want: StatusOK, title: "CONTAINERD_SNAPSHOTTER selects native", mod: env("native")},
		{name: "fuse-overlayfs, all set up", want: StatusOK, mod: env("fuse-overlayfs")},
		{name: "fuse-overlayfs without proxy plugin", want: StatusFail, title: "no [proxy_plugins.\"fuse-overlayfs\"]", mod: func(f *Facts) {
			env("fuse-overlayfs")(f)
			c := f.State.ContainerdConfig.Value
			c.ProxyPlugins = []string{"stargz"}
			f.State.ContainerdConfig = Known(c)
		}},
		{name: "fuse-overlayfs without grpc", want: StatusFail, title: "containerd-fuse-overlayfs-grpc is not installed", mod: func(f *Facts) {
			env("fuse-overlayfs")(f)
			dropBin(f, "containerd-fuse-overlayfs-grpc")
		}},
		{name: "fuse-overlayfs with unusable /dev/fuse", want: StatusFail, title: "cannot open /dev/fuse", mod: func(f *Facts) {
			env("fuse-overlayfs")(f)
			f.Live.FuseOverlayfs = Known(LiveTest{Status: LiveSkipped})
			f.Devices.Fuse = Known(Device{Path: "/dev/fuse", Exists: true, CharDev: true, Mode: "0600"})
		}},
		{name: "overlayfs where it fails", want: StatusFail, title: "live overlay mount test failed", mod: func(f *Facts) {
			env("overlayfs")(f)
			f.Live.OverlayUserns = Known(LiveTest{Status: LiveFailed, Detail: "EPERM"})
		}},
		{name: "btrfs", want: StatusFail, title: "fails in rootless mode", mod: env("btrfs")},
		{name: "devmapper", want: StatusFail, title: "needs root", mod: env("devmapper")},
		{name: "stargz", want: StatusOK, mod: env("stargz")},
		{name: "unknown proxy", want: StatusFail, title: "no [proxy_plugins.\"nydus\"]", mod: env("nydus")},
		{name: "from nerdctl.toml", want: StatusFail, title: "snapshotter in /home/alice/.config/nerdctl/nerdctl.toml selects btrfs", mod: func(f *Facts) {
			f.State.NerdctlConfig = Known(ConfigFile{Path: "/home/alice/.config/nerdctl/nerdctl.toml", Exists: true, Valid: true, Snapshotter: "btrfs"})
		}},
		{name: "env wins over nerdctl.toml", want: StatusOK, mod: func(f *Facts) {
			f.State.NerdctlConfig = Known(ConfigFile{Path: "/home/alice/.config/nerdctl/nerdctl.toml", Exists: true, Valid: true, Snapshotter: "btrfs"})
			env("native")(f)
		}},
		{name: "proxy with unknown config", want: StatusSkip, mod: func(f *Facts) {
			env("nydus")(f)
			f.State.ContainerdConfig = Unknown[ConfigFile](errors.New("unreadable"))
		}},
		{name: "unknown", want: StatusSkip, mod: func(f *Facts) { f.State.SnapshotterEnv = Unknown[string](errors.New("no environ")) }},
	})
	f := healthyFacts()
	env("btrfs")(f)
	if x := runCheck(t, "VS-SNAP-001", f).Fix; strings.Join(x.User, ";") != "export CONTAINERD_SNAPSHOTTER=overlayfs" {
		t.Errorf("fix names the recommended snapshotter: %+v", x.User)
	}
}

package probe

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// ruleFacts is the healthy host with no live tests run (as under --root), so the kernel rule decides.
func ruleFacts() *Facts {
	f := healthyFacts()
	skipped := Known(LiveTest{Status: LiveSkipped, Detail: "live tests run only on the real host"})
	f.Live = Live{OverlayUserns: skipped, FuseOverlayfs: skipped}
	return f
}

func snapOption(t *testing.T, r Recommendation, name string) SnapshotterOption {
	t.Helper()
	for _, o := range r.Options {
		if o.Name == name {
			return o
		}
	}
	t.Fatalf("no option %s in %+v", name, r.Options)
	return SnapshotterOption{}
}

func reasonsText(rs []Reason) string {
	var s []string
	for _, r := range rs {
		s = append(s, r.Text)
	}
	return strings.Join(s, " | ")
}

func TestRecommendSnapshotter(t *testing.T) {
	selinux := func(on bool) func(*Facts) {
		return func(f *Facts) {
			mode := "disabled"
			if on {
				mode = "enforcing"
			}
			f.Security.SELinux = Known(SELinux{Enabled: on, Mode: mode})
		}
	}
	kernel := func(major, minor int, more ...func(*Facts)) func(*Facts) {
		return func(f *Facts) {
			withFamily(f, "fedora", "fedora")
			setKernel(f, major, minor)
			for _, m := range more {
				m(f)
			}
		}
	}
	for _, tc := range []struct {
		name    string
		mod     func(*Facts)
		want    string
		because string // a substring of the reasons
	}{
		{"5.13 with SELinux", kernel(5, 13, selinux(true)), SnapshotterOverlayfs, "5.13 or newer"},
		{"5.12 with SELinux", kernel(5, 12, selinux(true)), SnapshotterFuseOverlayfs, "not overlayfs: kernel 5.12.0 with SELinux enabled (enforcing)"},
		{"5.12 without SELinux", kernel(5, 12, selinux(false)), SnapshotterOverlayfs, "SELinux is not enabled"},
		{"5.11 without SELinux", kernel(5, 11, selinux(false)), SnapshotterOverlayfs, "5.11 or newer"},
		{"5.11 with SELinux", kernel(5, 11, selinux(true)), SnapshotterFuseOverlayfs, "needs kernel 5.13"},
		{"5.10 without SELinux", kernel(5, 10, selinux(false)), SnapshotterFuseOverlayfs, "older than 5.11"},
		{"5.11, SELinux unknown", kernel(5, 11, func(f *Facts) { f.Security.SELinux = Unknown[SELinux](errors.New("unreadable")) }), SnapshotterFuseOverlayfs, "whether SELinux is enabled is unknown"},
		{"4.18", kernel(4, 18), SnapshotterFuseOverlayfs, "4.18 or newer"},
		{"4.17", kernel(4, 17), SnapshotterNative, "not fuse-overlayfs: kernel 4.17.0 is older than 4.18"},
		{"Ubuntu 5.4", func(f *Facts) {
			withFamily(f, "ubuntu", "debian")
			setKernel(f, 5, 4)
		}, SnapshotterOverlayfs, "Ubuntu's kernels"},
		{"Debian 4.19 explains its module option", func(f *Facts) {
			withFamily(f, "debian", "debian")
			setKernel(f, 4, 19)
		}, SnapshotterFuseOverlayfs, "permit_mounts_in_userns"},
		{"live test passed beats an old kernel", func(f *Facts) {
			kernel(5, 10)(f)
			f.Live.OverlayUserns = Known(LiveTest{Status: LivePassed, Detail: "mounted"})
		}, SnapshotterOverlayfs, "the live overlay mount test passed: mounted | the live test wins over the kernel-version rule"},
		{"live test failed beats a new kernel", func(f *Facts) {
			f.Live.OverlayUserns = Known(LiveTest{Status: LiveFailed, Detail: "mount: operation not permitted"})
		}, SnapshotterFuseOverlayfs, "not overlayfs: the live overlay mount test failed: mount: operation not permitted"},
		{"live test that timed out leaves the kernel rule", func(f *Facts) {
			f.Live.OverlayUserns = Unknown[LiveTest](errors.New("the live test did not finish; killed after 2s"))
		}, SnapshotterOverlayfs, "the live overlay mount test gave no answer (the live test did not finish; killed after 2s), so the kernel rule decides"},
		{"live test failed under AppArmor's userns restriction is set aside", func(f *Facts) {
			withFamily(f, "ubuntu", "debian")
			setKernel(f, 6, 8)
			f.Security.AppArmor = Known(AppArmor{Enabled: true, RestrictUnprivilegedUserns: 1})
			f.Live.OverlayUserns = Known(LiveTest{Status: LiveFailed, Detail: "mount overlay: operation not permitted"})
			f.Live.FuseOverlayfs = Known(LiveTest{Status: LiveFailed, Detail: "open /dev/fuse: operation not permitted"})
		}, SnapshotterOverlayfs, "AppArmor restricts unprivileged user namespaces"},
		{"live test failed with AppArmor not restricting still counts", func(f *Facts) {
			f.Security.AppArmor = Known(AppArmor{Enabled: true, RestrictUnprivilegedUserns: 0})
			f.Live.OverlayUserns = Known(LiveTest{Status: LiveFailed, Detail: "mount: operation not permitted"})
		}, SnapshotterFuseOverlayfs, "not overlayfs: the live overlay mount test failed"},
		{"no fuse-overlayfs binary", func(f *Facts) {
			kernel(5, 10)(f)
			dropBin(f, "fuse-overlayfs")
		}, SnapshotterNative, "fuse-overlayfs is not installed (package fuse-overlayfs)"},
		{"unusable /dev/fuse", func(f *Facts) {
			kernel(5, 10)(f)
			f.Devices.Fuse = Known(Device{Path: "/dev/fuse", Exists: true, CharDev: true, Mode: "0600"})
		}, SnapshotterNative, "you cannot open /dev/fuse (mode 0600, owner 0:0)"},
		{"missing /dev/fuse", func(f *Facts) {
			kernel(5, 10)(f)
			f.Devices.Fuse = Known(Device{Path: "/dev/fuse"})
		}, SnapshotterNative, "/dev/fuse does not exist"},
		{"live fuse test failed", func(f *Facts) {
			kernel(5, 10)(f)
			f.Live.FuseOverlayfs = Known(LiveTest{Status: LiveFailed, Detail: "fuse: device not found"})
		}, SnapshotterNative, "live fuse-overlayfs mount test failed"},
		{"native says what it costs", func(f *Facts) { kernel(4, 17)(f) }, SnapshotterNative, "copies every layer in full"},
		{"unknown kernel", func(f *Facts) { f.OS.Kernel = Unknown[Kernel](errors.New("garbled")) }, SnapshotterNative, "cannot tell"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := ruleFacts()
			tc.mod(f)
			r := Recommend(f)
			if r.Snapshotter != tc.want {
				t.Fatalf("snapshotter = %s, want %s; reasons: %s", r.Snapshotter, tc.want, reasonsText(r.Reasons))
			}
			if got := reasonsText(r.Reasons); !strings.Contains(got, tc.because) {
				t.Errorf("reasons %q lack %q", got, tc.because)
			}
			for _, o := range r.Options {
				if !o.Possible && len(o.Against) == 0 {
					t.Errorf("%s is impossible without a reason", o.Name)
				}
			}
			if o := snapOption(t, r, r.Snapshotter); !o.Possible {
				t.Errorf("the chosen %s is not possible", o.Name)
			}
			if !snapOption(t, r, SnapshotterNative).Possible {
				t.Error("native is always possible")
			}
		})
	}
}

func TestRecommendOptions(t *testing.T) {
	f := ruleFacts()
	withFamily(f, "rhel", "fedora")
	setKernel(f, 4, 18)
	dropBin(f, "containerd-fuse-overlayfs-grpc")
	f.State.ContainerdConfig = Known(ConfigFile{Path: "config.toml"})
	r := Recommend(f)
	ov, fu := snapOption(t, r, SnapshotterOverlayfs), snapOption(t, r, SnapshotterFuseOverlayfs)
	if ov.Possible || !strings.Contains(reasonsText(ov.Against), "older than 5.11") {
		t.Errorf("overlayfs on 4.18: %+v", ov)
	}
	if !fu.Possible || !strings.Contains(reasonsText(fu.Requires), "containerd-fuse-overlayfs-grpc") || !strings.Contains(reasonsText(fu.Requires), "proxy_plugins") {
		t.Errorf("fuse-overlayfs must list the grpc daemon and config as requirements: %+v", fu)
	}
	if !strings.Contains(reasonsText(fu.Against), "slower") {
		t.Errorf("fuse-overlayfs lists its cost: %+v", fu.Against)
	}
	if !strings.Contains(reasonsText(r.Reasons), "needs: containerd-fuse-overlayfs-grpc") {
		t.Errorf("the choice names the requirement: %s", reasonsText(r.Reasons))
	}

	// Facts that can neither confirm nor rule out keep an option open, with the doubt.
	f = ruleFacts()
	unknownBin(f, "fuse-overlayfs")
	setKernel(f, 5, 4)
	fu = snapOption(t, Recommend(f), SnapshotterFuseOverlayfs)
	if !fu.Possible || !strings.Contains(reasonsText(fu.Against), "cannot tell whether fuse-overlayfs is installed") {
		t.Errorf("unknown binary: %+v", fu)
	}
	if got := Recommend(f).Snapshotter; got != SnapshotterNative {
		t.Errorf("an unconfirmed fuse-overlayfs is not chosen: got %s", got)
	}
}

func TestRecommendNetwork(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mod     func(*Facts)
		want    string
		mtu     int
		because string
	}{
		{"slirp4netns with netns-type", nil, NetSlirp4netns, 65520, "supports --netns-type"},
		{"slirp4netns told by version alone", func(f *Facts) { setBin(f, "slirp4netns", "0.4.0") }, NetSlirp4netns, 65520, "0.4.0 or newer"},
		{"slirp4netns too old, vpnkit", func(f *Facts) {
			setBin(f, "slirp4netns", "0.3.2")
			setBin(f, "vpnkit", "0.5.0")
		}, NetVPNKit, 1500, "older than 0.4.0"},
		{"pasta with RootlessKit 2", func(f *Facts) {
			dropBin(f, "slirp4netns")
			setBin(f, "pasta", "2024_05_10.7288448")
		}, NetPasta, 65520, "never picks pasta by itself"},
		{"pasta with RootlessKit 1.1 (Debian)", func(f *Facts) {
			dropBin(f, "slirp4netns")
			setBin(f, "pasta", "2023_03_29.b10b983")
			setBin(f, "rootlesskit", "1.1.0")
		}, "", 0, "older than 2.0, which --net=pasta needs"},
		{"RootlessKit 3 alone", func(f *Facts) {
			dropBin(f, "slirp4netns")
			setBin(f, "rootlesskit", "3.0.1")
		}, NetGvisorTapVsock, 65520, "has gvisor-tap-vsock built in"},
		{"RootlessKit 3 by feature", func(f *Facts) {
			dropBin(f, "slirp4netns")
			setBin(f, "rootlesskit", "", "gvisor-tap-vsock")
		}, NetGvisorTapVsock, 65520, "built in"},
		{"RootlessKit 2 alone", func(f *Facts) { dropBin(f, "slirp4netns") }, "", 0, "RootlessKit 2.3.5 is not known to be 3.0 or newer"},
		{"nothing at all", func(f *Facts) {
			dropBin(f, "slirp4netns")
			dropBin(f, "rootlesskit")
		}, "", 0, "RootlessKit is not installed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := healthyFacts()
			if tc.mod != nil {
				tc.mod(f)
			}
			a := Recommend(f).RootlessKit
			if a.NetworkDriver != tc.want || a.MTU != tc.mtu {
				t.Fatalf("driver %q MTU %d, want %q %d; reasons: %s", a.NetworkDriver, a.MTU, tc.want, tc.mtu, reasonsText(a.NetworkReasons))
			}
			if got := reasonsText(a.NetworkReasons); !strings.Contains(got, tc.because) {
				t.Errorf("reasons %q lack %q", got, tc.because)
			}
			if tc.want == "" {
				if _, set := a.Env["CONTAINERD_ROOTLESS_ROOTLESSKIT_NET"]; set {
					t.Errorf("no driver, yet the env pins one: %v", a.Env)
				}
				return
			}
			// containerd-rootless.sh gives an explicit driver MTU 1500 unless the MTU is set too.
			if a.Env["CONTAINERD_ROOTLESS_ROOTLESSKIT_NET"] != tc.want || a.Env["CONTAINERD_ROOTLESS_ROOTLESSKIT_MTU"] == "" {
				t.Errorf("env = %v", a.Env)
			}
			if !strings.Contains(reasonsText(a.MTUReasons), "unless CONTAINERD_ROOTLESS_ROOTLESSKIT_MTU is set too") {
				t.Errorf("MTU reasons lack the quirk: %s", reasonsText(a.MTUReasons))
			}
		})
	}
}

func TestRecommendRootlessKitFlags(t *testing.T) {
	f := healthyFacts()
	a := Recommend(f).RootlessKit
	if a.PortDriver != "builtin" || !a.DetachNetns || a.Env["CONTAINERD_ROOTLESS_ROOTLESSKIT_DETACH_NETNS"] != "true" {
		t.Errorf("RootlessKit 2.3.5: %+v", a)
	}
	if !strings.Contains(reasonsText(a.PortReasons), "hides the client's address") {
		t.Errorf("before 3.0 the source address is lost: %s", reasonsText(a.PortReasons))
	}
	if len(a.Warnings) != 0 {
		t.Errorf("no warnings on a healthy host: %+v", a.Warnings)
	}

	setBin(f, "rootlesskit", "3.0.1", "detach-netns", "gvisor-tap-vsock")
	if a := Recommend(f).RootlessKit; !strings.Contains(reasonsText(a.PortReasons), "passes the client's source address") {
		t.Errorf("3.0 keeps the source address: %s", reasonsText(a.PortReasons))
	}

	setBin(f, "rootlesskit", "1.1.0")
	if a := Recommend(f).RootlessKit; a.DetachNetns || a.Env["CONTAINERD_ROOTLESS_ROOTLESSKIT_DETACH_NETNS"] != "false" {
		t.Errorf("RootlessKit 1.1 has no --detach-netns: %+v", a)
	}

	f = healthyFacts()
	setBin(f, "buildkitd", "0.12.5")
	if a := Recommend(f).RootlessKit; !a.DetachNetns || !strings.Contains(reasonsText(a.Warnings), "BuildKit 0.12.5 is older than 0.13") {
		t.Errorf("detach-netns with an old BuildKit warns: %+v", a.Warnings)
	}

	f = healthyFacts()
	f.Devices.Tun = Known(Device{Path: "/dev/net/tun", Exists: true, CharDev: true, Mode: "0600"})
	if a := Recommend(f).RootlessKit; !strings.Contains(reasonsText(a.Warnings), "slirp4netns creates its tap device through /dev/net/tun") {
		t.Errorf("unusable tun warns: %+v", a.Warnings)
	}
}

func TestRecommendBypass4netns(t *testing.T) {
	for _, tc := range []struct {
		name      string
		mod       func(*Facts)
		available bool
		form      string
		because   string
	}{
		{"nerdctl 2.x: annotation", nil, true, "annotation", "--annotation nerdctl/bypass4netns=true"},
		{"nerdctl 2.0.0: annotation", func(f *Facts) { setBin(f, "nerdctl", "2.0.0") }, true, "annotation", "2.0 or newer"},
		{"nerdctl 1.7: label", func(f *Facts) { setBin(f, "nerdctl", "1.7.7") }, true, "label", "--label nerdctl/bypass4netns=true"},
		{"nerdctl 0.17: label", func(f *Facts) { setBin(f, "nerdctl", "0.17.0") }, true, "label", "older than 2.0"},
		{"nerdctl 0.16", func(f *Facts) { setBin(f, "nerdctl", "0.16.1") }, false, "", "older than 0.17"},
		{"kernel 5.8", func(f *Facts) { setKernel(f, 5, 8) }, false, "annotation", "older than 5.9"},
		{"no user_notif", func(f *Facts) { f.Security.SeccompActions = Known([]string{"allow", "errno"}) }, false, "annotation", "no user_notif"},
		{"no bypass4netnsd", func(f *Facts) { dropBin(f, "bypass4netnsd") }, false, "annotation", "bypass4netnsd is not installed"},
		{"old runc", func(f *Facts) { setBin(f, "runc", "1.0.2") }, false, "annotation", "runc 1.0.2 is older than 1.1"},
		{"old runc, new crun", func(f *Facts) {
			setBin(f, "runc", "1.0.2")
			setBin(f, "crun", "1.8")
		}, true, "annotation", "bypass4netns 0.4.2"},
		{"no network driver", func(f *Facts) { dropBin(f, "slirp4netns") }, false, "annotation", "no usable network driver"},
		{"seccomp unknown", func(f *Facts) { f.Security.SeccompActions = Unknown[[]string](errors.New("unreadable")) }, false, "annotation", "cannot tell whether seccomp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := healthyFacts()
			if tc.mod != nil {
				tc.mod(f)
			}
			b := Recommend(f).AddOns.Bypass4netns
			if b.Available != tc.available || b.Form != tc.form {
				t.Fatalf("available %v form %q, want %v %q; reasons: %s", b.Available, b.Form, tc.available, tc.form, reasonsText(b.Reasons))
			}
			if got := reasonsText(b.Reasons); !strings.Contains(got, tc.because) {
				t.Errorf("reasons %q lack %q", got, tc.because)
			}
			if b.Form != "" && !strings.HasPrefix(b.Flag, "--"+b.Form+" ") {
				t.Errorf("flag %q does not match form %q", b.Flag, b.Form)
			}
		})
	}
}

func TestRecommendBuildKitAndStargz(t *testing.T) {
	f := healthyFacts()
	r := Recommend(f).AddOns
	if !r.BuildKit.Available || !strings.Contains(reasonsText(r.BuildKit.Reasons), "--oci-worker-net=bridge") {
		t.Errorf("BuildKit 0.23: %+v", r.BuildKit)
	}
	if !r.Stargz.Available {
		t.Errorf("stargz: %+v", r.Stargz)
	}
	setBin(f, "buildkitd", "0.12.5")
	dropBin(f, "buildctl")
	if b := Recommend(f).AddOns.BuildKit; !b.Available || !strings.Contains(reasonsText(b.Reasons), "older than 0.13") || !strings.Contains(reasonsText(b.Reasons), "buildctl is not installed") {
		t.Errorf("old BuildKit without buildctl: %+v", b)
	}
	dropBin(f, "buildkitd")
	if b := Recommend(f).AddOns.BuildKit; b.Available {
		t.Errorf("no buildkitd: %+v", b)
	}
	f.Devices.Fuse = Known(Device{Path: "/dev/fuse", Exists: true, CharDev: true, Mode: "0600"})
	if s := Recommend(f).AddOns.Stargz; s.Available || !strings.Contains(reasonsText(s.Reasons), "the stargz snapshotter needs it") {
		t.Errorf("stargz without /dev/fuse: %+v", s)
	}
	f = healthyFacts()
	dropBin(f, "containerd-stargz-grpc")
	if s := Recommend(f).AddOns.Stargz; s.Available {
		t.Errorf("stargz without containerd-stargz-grpc: %+v", s)
	}
}

func TestRecommendZeroFacts(t *testing.T) {
	for name, f := range map[string]*Facts{"zero": {}, "nil": nil} {
		t.Run(name, func(t *testing.T) {
			r := Recommend(f)
			if r.Snapshotter != SnapshotterNative {
				t.Errorf("with nothing known only native is sure: %s", r.Snapshotter)
			}
			if r.RootlessKit.NetworkDriver != "" || r.AddOns.Bypass4netns.Available || r.AddOns.BuildKit.Available || r.AddOns.Stargz.Available {
				t.Errorf("nothing is known, so nothing is available: %+v", r)
			}
			for _, o := range r.Options {
				if !o.Possible {
					t.Errorf("%s is ruled out on no facts", o.Name)
				}
			}
		})
	}
}

func TestRecommendationJSON(t *testing.T) {
	b, err := json.Marshal(Recommend(healthyFacts()))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"snapshotter", "reasons", "options", "rootlesskit", "addons"} {
		if _, ok := m[k]; !ok {
			t.Errorf("recommendation JSON lacks %q", k)
		}
	}
	if s, _ := m["snapshotter"].(string); s != SnapshotterOverlayfs {
		t.Errorf("snapshotter = %v", m["snapshotter"])
	}
	addons, _ := m["addons"].(map[string]any)
	b4n, _ := addons["bypass4netns"].(map[string]any)
	if b4n["available"] != true || b4n["form"] != "annotation" {
		t.Errorf("bypass4netns JSON = %v", b4n)
	}
}

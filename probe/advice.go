package probe

import (
	"fmt"
	"slices"
	"strconv"
)

// Snapshotters the recommendation chooses between, best first.
const (
	SnapshotterOverlayfs     = "overlayfs"
	SnapshotterFuseOverlayfs = "fuse-overlayfs"
	SnapshotterNative        = "native"
)

// Network drivers of RootlessKit the recommendation chooses between, in order of preference.
const (
	NetSlirp4netns    = "slirp4netns"
	NetVPNKit         = "vpnkit"
	NetPasta          = "pasta"
	NetGvisorTapVsock = "gvisor-tap-vsock"
)

const (
	defaultPortDriver = "builtin"
	// mtuLarge is what containerd-rootless.sh uses for slirp4netns and gvisor-tap-vsock when it picks
	// them itself; mtuEthernet is its default for a driver set explicitly.
	mtuLarge    = 65520
	mtuEthernet = 1500
	// bypass4netnsKV is the annotation (nerdctl ≥ 2.0) or label (before) that turns bypass4netns on.
	bypass4netnsKV = "nerdctl/bypass4netns=true"
)

// Recommendation is the setup virt-setup suggests for this host, with the evidence for each choice.
type Recommendation struct {
	// Snapshotter is "overlayfs", "fuse-overlayfs" or "native".
	Snapshotter string `json:"snapshotter"`
	// Reasons say why this snapshotter and not a better one.
	Reasons []Reason `json:"reasons"`
	// Options weighs each of the three snapshotters, for a screen that shows why or why not.
	Options     []SnapshotterOption `json:"options"`
	RootlessKit RootlessKitAdvice   `json:"rootlesskit"`
	AddOns      AddOns              `json:"addons"`
}

// Reason is one argument for or against a choice, with the values it rests on.
type Reason struct {
	Text     string   `json:"text"`
	Evidence []string `json:"evidence,omitempty"`
}

// SnapshotterOption weighs one snapshotter on this host.
type SnapshotterOption struct {
	Name string `json:"name"`
	// Possible is false when the facts rule the snapshotter out. One the facts can neither confirm
	// nor rule out stays possible, with the doubt listed under Against.
	Possible bool     `json:"possible"`
	For      []Reason `json:"for,omitempty"`
	Against  []Reason `json:"against,omitempty"`
	// Requires lists what the installer must set up for the snapshotter to work.
	Requires []Reason `json:"requires,omitempty"`
}

// RootlessKitAdvice is how containerd-rootless.sh should start RootlessKit.
type RootlessKitAdvice struct {
	// NetworkDriver is "slirp4netns", "vpnkit", "pasta", "gvisor-tap-vsock", or "" when none is usable.
	NetworkDriver  string   `json:"network_driver"`
	NetworkReasons []Reason `json:"network_reasons,omitempty"`
	// MTU is 0 when there is no network driver.
	MTU        int      `json:"mtu"`
	MTUReasons []Reason `json:"mtu_reasons,omitempty"`
	PortDriver string   `json:"port_driver"`
	// PortReasons include what the port driver does with the client's source address.
	PortReasons        []Reason `json:"port_reasons,omitempty"`
	DetachNetns        bool     `json:"detach_netns"`
	DetachNetnsReasons []Reason `json:"detach_netns_reasons,omitempty"`
	// Warnings are problems the choices bring with them on this host.
	Warnings []Reason `json:"warnings,omitempty"`
	// Env is the containerd-rootless.sh environment that pins these choices; the installer writes it
	// into the unit's override.conf.
	Env map[string]string `json:"env,omitempty"`
}

// AddOns says which optional components can work on this host.
type AddOns struct {
	BuildKit     AddOn             `json:"buildkit"`
	Stargz       AddOn             `json:"stargz"`
	Bypass4netns Bypass4netnsAddOn `json:"bypass4netns"`
}

// AddOn is whether an optional component can be used, and why or why not.
type AddOn struct {
	Available bool     `json:"available"`
	Reasons   []Reason `json:"reasons"`
}

// Bypass4netnsAddOn is the bypass4netns accelerator, which containers opt into with a flag whose
// form depends on the nerdctl version.
type Bypass4netnsAddOn struct {
	AddOn
	// Form is "annotation" (nerdctl ≥ 2.0), "label" (0.17 to 1.x), or "" when nerdctl's version is
	// unknown or too old.
	Form string `json:"form,omitempty"`
	// Flag is what to pass to `nerdctl run`, e.g. "--annotation nerdctl/bypass4netns=true".
	Flag string `json:"flag,omitempty"`
}

// Recommend chooses a snapshotter, the RootlessKit settings and the usable add-ons for the host.
func Recommend(f *Facts) Recommendation {
	if f == nil {
		f = &Facts{}
	}
	h := newCheckHost(f)
	ov, fu, na := assessOverlay(f), assessFuseOverlayfs(h), assessNative()
	rec := Recommendation{
		Options: []SnapshotterOption{
			ov.option(SnapshotterOverlayfs),
			fu.option(SnapshotterFuseOverlayfs),
			na.option(SnapshotterNative),
		},
	}
	switch {
	case ov.v == verdictYes:
		rec.Snapshotter = SnapshotterOverlayfs
		rec.Reasons = slices.Concat(ov.pro, ov.note)
	case fu.v == verdictYes:
		rec.Snapshotter = SnapshotterFuseOverlayfs
		rec.Reasons = slices.Concat(prefixed("not overlayfs: ", ov.con), ov.note, fu.pro, prefixed("needs: ", fu.req), fu.cost)
	default:
		rec.Snapshotter = SnapshotterNative
		rec.Reasons = slices.Concat(prefixed("not overlayfs: ", ov.con), ov.note, prefixed("not fuse-overlayfs: ", fu.con), na.cost)
	}
	rec.RootlessKit = adviseRootlessKit(h)
	rec.AddOns = AddOns{
		BuildKit:     adviseBuildKit(h),
		Stargz:       adviseStargz(h),
		Bypass4netns: adviseBypass4netns(h, rec.RootlessKit.NetworkDriver),
	}
	return rec
}

// verdict is what the facts say about whether something works: yes, no, or they cannot tell.
type verdict int

const (
	verdictUnknown verdict = iota
	verdictYes
	verdictNo
)

// assessment collects the arguments about one option. It starts at yes; one "no" makes it no, and
// otherwise one "cannot tell" makes it unknown.
type assessment struct {
	v             verdict
	pro, con, req []Reason
	// cost is what the option costs even where it works; it does not change the verdict.
	cost []Reason
	// note says how the verdict was reached (e.g. that a live test did not run), for or against.
	note []Reason
}

func newAssessment() assessment { return assessment{v: verdictYes} }

// need records one condition and its outcome.
func (a *assessment) need(v verdict, r Reason) {
	if v == verdictYes {
		a.pro = append(a.pro, r)
		return
	}
	a.con = append(a.con, r)
	if v == verdictNo || a.v == verdictYes {
		a.v = v
	}
}

func (a assessment) option(name string) SnapshotterOption {
	o := SnapshotterOption{Name: name, Possible: a.v != verdictNo, For: a.pro, Against: slices.Concat(a.con, a.cost), Requires: a.req}
	if a.v == verdictYes {
		o.For = append(o.For, a.note...)
	} else {
		o.Against = append(o.Against, a.note...)
	}
	return o
}

func prefixed(p string, rs []Reason) []Reason {
	out := make([]Reason, 0, len(rs))
	for _, r := range rs {
		out = append(out, Reason{Text: p + r.Text, Evidence: r.Evidence})
	}
	return out
}

func kernelLabel(k Kernel) string {
	if k.Release != "" {
		return k.Release
	}
	return fmt.Sprintf("%d.%d.%d", k.Major, k.Minor, k.Patch)
}

// assessOverlay decides whether the kernel's overlayfs can be mounted in a user namespace. A live
// mount test that ran is the best evidence and wins; otherwise the rule from nerdctl's docs decides:
// kernel ≥ 5.13 anywhere, ≥ 5.11 without SELinux, and any Ubuntu kernel (patched since 2015).
func assessOverlay(f *Facts) assessment {
	rule := overlayKernelRule(f)
	live := f.Live.OverlayUserns
	if !live.Known || !live.Value.Ran() {
		switch {
		case live.Known && live.Value.Detail != "":
			rule.note = append(rule.note, Reason{Text: "the live overlay mount test did not run (" + live.Value.Detail + "), so the kernel rule decides", Evidence: factLines(live)})
		case !live.Known && live.Error != "":
			rule.note = append(rule.note, Reason{Text: "the live overlay mount test gave no answer (" + live.Error + "), so the kernel rule decides", Evidence: factLines(live)})
		}
		return rule
	}
	if r, ok := liveInconclusive(f, live, "overlay"); ok {
		rule.note = append(rule.note, r)
		return rule
	}
	a := assessment{}
	text := "the live overlay mount test " + live.Value.Status
	if live.Value.Detail != "" {
		text += ": " + live.Value.Detail
	}
	r := Reason{Text: text, Evidence: factLines(live)}
	ruleSaid := func(rs []Reason) Reason {
		t, ev := "", []string(nil)
		if len(rs) > 0 {
			t, ev = rs[0].Text, rs[0].Evidence
		}
		return Reason{Text: "the live test wins over the kernel-version rule, which said otherwise (" + t + ")", Evidence: ev}
	}
	if live.Value.Status == LivePassed {
		a.v = verdictYes
		a.pro = append(a.pro, r)
		if rule.v == verdictNo {
			a.pro = append(a.pro, ruleSaid(rule.con))
		}
	} else {
		a.v = verdictNo
		a.con = append(a.con, r)
		if rule.v == verdictYes {
			a.con = append(a.con, ruleSaid(rule.pro))
		}
	}
	return a
}

func overlayKernelRule(f *Facts) assessment {
	a := newAssessment()
	d, k := f.OS.Distro, f.OS.Kernel
	if d.Known && isUbuntu(d.Value) {
		a.need(verdictYes, Reason{Text: "Ubuntu's kernels allow overlayfs in user namespaces (Ubuntu has patched this since 2015)", Evidence: slices.Concat(factLines(d), factLines(k))})
		return a
	}
	if !k.Known {
		a.need(verdictUnknown, Reason{Text: "cannot tell: the kernel version is unknown, and overlayfs in user namespaces needs 5.11 (5.13 with SELinux)", Evidence: factLines(k)})
		return a
	}
	kv, ev := k.Value, factLines(k)
	rel := kernelLabel(kv)
	switch {
	case kv.AtLeast(5, 13):
		a.need(verdictYes, Reason{Text: fmt.Sprintf("kernel %s is 5.13 or newer, which allows overlayfs in user namespaces on any distribution", rel), Evidence: ev})
	case kv.AtLeast(5, 11):
		se := f.Security.SELinux
		ev = append(ev, factLines(se)...)
		switch {
		case !se.Known:
			a.need(verdictUnknown, Reason{Text: fmt.Sprintf("cannot tell: kernel %s allows overlayfs in user namespaces only without SELinux, and whether SELinux is enabled is unknown", rel), Evidence: ev})
		case se.Value.Enabled:
			a.need(verdictNo, Reason{Text: fmt.Sprintf("kernel %s with SELinux enabled (%s): overlayfs in user namespaces needs kernel 5.13 when SELinux is on", rel, se.Value.Mode), Evidence: ev})
		default:
			a.need(verdictYes, Reason{Text: fmt.Sprintf("kernel %s is 5.11 or newer and SELinux is not enabled, which allows overlayfs in user namespaces", rel), Evidence: ev})
		}
	default:
		text := fmt.Sprintf("kernel %s is older than 5.11: outside Ubuntu's kernels, overlayfs cannot be mounted in a user namespace", rel)
		if d.Known && d.Value.Family == "debian" {
			// moby#42302: the option Debian kernels before 5.11 offered does not work for this.
			text += " (Debian's permit_mounts_in_userns module option is known to be broken)"
		}
		a.need(verdictNo, Reason{Text: text, Evidence: ev})
	}
	return a
}

// assessFuseOverlayfs decides whether fuse-overlayfs can be used: FUSE in a user namespace needs
// kernel 4.18 (rootlesscontaine.rs glossary), the fuse-overlayfs binary and a /dev/fuse the user can
// open. containerd talks to it through containerd-fuse-overlayfs-grpc, which the installer provides.
func assessFuseOverlayfs(h checkHost) assessment {
	f := h.f
	a := newAssessment()
	live := f.Live.FuseOverlayfs
	if r, ok := liveInconclusive(f, live, "fuse-overlayfs"); ok {
		a.note = append(a.note, r)
	} else if live.Known && live.Value.Ran() {
		text := "the live fuse-overlayfs mount test " + live.Value.Status
		if live.Value.Detail != "" {
			text += ": " + live.Value.Detail
		}
		v := verdictYes
		if live.Value.Status != LivePassed {
			v = verdictNo
		}
		a.need(v, Reason{Text: text, Evidence: factLines(live)})
	} else {
		if !live.Known && live.Error != "" {
			a.note = append(a.note, Reason{Text: "the live fuse-overlayfs mount test gave no answer (" + live.Error + "), so the kernel rule decides", Evidence: factLines(live)})
		}
		k := f.OS.Kernel
		switch {
		case !k.Known:
			a.need(verdictUnknown, Reason{Text: "cannot tell: the kernel version is unknown, and FUSE in user namespaces needs 4.18", Evidence: factLines(k)})
		case !k.Value.AtLeast(4, 18):
			a.need(verdictNo, Reason{Text: fmt.Sprintf("kernel %s is older than 4.18, which FUSE in user namespaces needs", kernelLabel(k.Value)), Evidence: factLines(k)})
		default:
			a.need(verdictYes, Reason{Text: fmt.Sprintf("kernel %s is 4.18 or newer, which mounts FUSE in user namespaces", kernelLabel(k.Value)), Evidence: factLines(k)})
		}
		b := h.bin("fuse-overlayfs")
		switch {
		case !b.Known:
			a.need(verdictUnknown, Reason{Text: "cannot tell whether fuse-overlayfs is installed", Evidence: factLines(b)})
		case !b.Value.Found:
			a.need(verdictNo, Reason{Text: fmt.Sprintf("fuse-overlayfs is not installed (package %s)", h.pkgName("fuse-overlayfs", "fuse-overlayfs")), Evidence: factLines(b)})
		default:
			a.need(verdictYes, Reason{Text: binaryLabel(b.Value) + " is installed", Evidence: factLines(b)})
		}
		a.needDevice(f.Devices.Fuse, "fuse-overlayfs")
	}
	if g := h.bin("containerd-fuse-overlayfs-grpc"); g.Known && g.Value.Found {
		a.pro = append(a.pro, Reason{Text: binaryLabel(g.Value) + ", the proxy snapshotter containerd talks to, is installed", Evidence: factLines(g)})
	} else {
		a.req = append(a.req, Reason{Text: "containerd-fuse-overlayfs-grpc, the proxy snapshotter containerd talks to (nerdctl-full ships it): the installer installs it", Evidence: factLines(g)})
	}
	if c := f.State.ContainerdConfig; c.Known && slices.Contains(c.Value.ProxyPlugins, SnapshotterFuseOverlayfs) {
		a.pro = append(a.pro, Reason{Text: "containerd's config.toml already has [proxy_plugins.\"fuse-overlayfs\"]", Evidence: factLines(c)})
	} else {
		a.req = append(a.req, Reason{Text: "a [proxy_plugins.\"fuse-overlayfs\"] entry in ~/.config/containerd/config.toml: the installer adds it"})
	}
	a.cost = append(a.cost, Reason{Text: "slower than the kernel's overlayfs: every file operation goes through the fuse-overlayfs process in user space"})
	return a
}

// needDevice records whether the user can open a device node (/dev/fuse) that what needs.
func (a *assessment) needDevice(d Fact[Device], what string) {
	ev := factLines(d)
	switch {
	case !d.Known:
		a.need(verdictUnknown, Reason{Text: "cannot tell whether you can open the FUSE device", Evidence: ev})
	case !d.Value.Exists:
		a.need(verdictNo, Reason{Text: fmt.Sprintf("%s does not exist, and %s needs it", d.Value.Path, what), Evidence: ev})
	case !d.Value.Usable:
		a.need(verdictNo, Reason{Text: fmt.Sprintf("you cannot open %s (mode %s, owner %d:%d), and %s needs it", d.Value.Path, d.Value.Mode, d.Value.OwnerUID, d.Value.OwnerGID, what), Evidence: ev})
	default:
		a.need(verdictYes, Reason{Text: fmt.Sprintf("you can open %s (%s)", d.Value.Path, d.Value.How), Evidence: ev})
	}
}

func assessNative() assessment {
	a := newAssessment()
	a.pro = append(a.pro, Reason{Text: "works on every host: it needs neither overlayfs nor FUSE in user namespaces"})
	a.cost = append(a.cost, Reason{Text: "native copies every layer in full: each layer is unpacked as a complete copy of the one below it, so pulls and unpacking are slow and every image takes several times the disk space it would with overlayfs"})
	return a
}

// rootlesskitLevels says which RootlessKit generation is installed, from its version or, when that
// is unknown, from the flags its --help shows: --detach-netns and pasta came with 2.0,
// gvisor-tap-vsock with 3.0.
func rootlesskitLevels(h checkHost) (v2, v3 bool) {
	v2 = h.atLeast("rootlesskit", "2.0.0") || h.feature("rootlesskit", "detach-netns") || h.feature("rootlesskit", "pasta")
	v3 = h.atLeast("rootlesskit", "3.0.0") || h.feature("rootlesskit", "gvisor-tap-vsock")
	return v2 || v3, v3
}

func rootlesskitLabel(h checkHost) string {
	if b := h.bin("rootlesskit"); b.Known && b.Value.Found && b.Value.Version != "" {
		return "RootlessKit " + b.Value.Version
	}
	return "RootlessKit"
}

// slirp4netnsUsable is containerd-rootless.sh's test: slirp4netns whose --help mentions
// --netns-type, i.e. 0.4.0 or newer.
func slirp4netnsUsable(h checkHost) bool {
	return h.feature("slirp4netns", "netns-type") || h.atLeast("slirp4netns", "0.4.0")
}

// chooseNetwork picks RootlessKit's network driver in containerd-rootless.sh's order (slirp4netns,
// then vpnkit), then pasta and gvisor-tap-vsock when RootlessKit is new enough for them.
func chooseNetwork(h checkHost) (string, []Reason) {
	var rs []Reason
	v2, v3 := rootlesskitLevels(h)
	rk := rootlesskitLabel(h)
	rkEv := factLines(h.bin("rootlesskit"))
	slirp := h.bin("slirp4netns")
	switch {
	case slirp4netnsUsable(h):
		return NetSlirp4netns, append(rs, Reason{Text: binaryLabel(slirp.Value) + " supports --netns-type (0.4.0 or newer): containerd-rootless.sh's first choice", Evidence: factLines(slirp)})
	case slirp.Known && slirp.Value.Found:
		rs = append(rs, Reason{Text: binaryLabel(slirp.Value) + " is older than 0.4.0 (no --netns-type), so containerd-rootless.sh skips it", Evidence: factLines(slirp)})
	default:
		rs = append(rs, Reason{Text: "slirp4netns is not installed", Evidence: factLines(slirp)})
	}
	vpnkit := h.bin("vpnkit")
	if vpnkit.Known && vpnkit.Value.Found {
		return NetVPNKit, append(rs, Reason{Text: binaryLabel(vpnkit.Value) + " is installed: containerd-rootless.sh's second choice, though the slowest driver (about 0.1 Gbps in RootlessKit's benchmark)", Evidence: factLines(vpnkit)})
	}
	rs = append(rs, Reason{Text: "vpnkit is not installed", Evidence: factLines(vpnkit)})
	pasta := h.bin("pasta")
	pastaFound := pasta.Known && pasta.Value.Found
	switch {
	case pastaFound && v2:
		return NetPasta, append(rs, Reason{Text: fmt.Sprintf("%s is installed and %s supports --net=pasta (2.0 or newer; experimental); containerd-rootless.sh never picks pasta by itself, so it is set explicitly", binaryLabel(pasta.Value), rk), Evidence: slices.Concat(factLines(pasta), rkEv)})
	case pastaFound:
		rs = append(rs, Reason{Text: fmt.Sprintf("pasta is installed, but %s is older than 2.0, which --net=pasta needs", rk), Evidence: slices.Concat(factLines(pasta), rkEv)})
	default:
		rs = append(rs, Reason{Text: "pasta is not installed", Evidence: factLines(pasta)})
	}
	if v3 {
		return NetGvisorTapVsock, append(rs, Reason{Text: rk + " is 3.0 or newer and has gvisor-tap-vsock built in: no separate network program is needed", Evidence: rkEv})
	}
	if rkb := h.bin("rootlesskit"); rkb.Known && !rkb.Value.Found {
		rs = append(rs, Reason{Text: "RootlessKit is not installed; RootlessKit 3.0 or newer (nerdctl-full 2.3 and later bundle it) has gvisor-tap-vsock built in", Evidence: rkEv})
	} else {
		rs = append(rs, Reason{Text: rk + " is not known to be 3.0 or newer, which gvisor-tap-vsock needs", Evidence: rkEv})
	}
	rs = append(rs, Reason{Text: fmt.Sprintf("no usable network driver: install slirp4netns (package %s) or RootlessKit 3.0 or newer", h.pkgName("slirp4netns", "slirp4netns"))})
	return "", rs
}

func adviseRootlessKit(h checkHost) RootlessKitAdvice {
	f := h.f
	v2, v3 := rootlesskitLevels(h)
	rk := rootlesskitLabel(h)
	rkEv := factLines(h.bin("rootlesskit"))
	var a RootlessKitAdvice
	a.NetworkDriver, a.NetworkReasons = chooseNetwork(h)

	switch a.NetworkDriver {
	case NetSlirp4netns, NetPasta, NetGvisorTapVsock:
		a.MTU = mtuLarge
		a.MTUReasons = []Reason{{Text: "MTU 65520 is several times faster than 1500 for this driver (RootlessKit's benchmark, child to parent: slirp4netns 0.84 → 6.17 Gbps, pasta 0.87 → 6.48, gvisor-tap-vsock 1.55 → 5.40)"}}
	case NetVPNKit:
		a.MTU = mtuEthernet
		a.MTUReasons = []Reason{{Text: "vpnkit does not support MTU 65520"}}
	}
	if a.NetworkDriver != "" {
		a.MTUReasons = append(a.MTUReasons, Reason{Text: "containerd-rootless.sh gives an explicitly chosen driver MTU 1500 unless CONTAINERD_ROOTLESS_ROOTLESSKIT_MTU is set too, so both are set"})
		if d := f.Devices.Tun; d.Known && !d.Value.Usable {
			a.Warnings = append(a.Warnings, Reason{Text: fmt.Sprintf("%s creates its tap device through /dev/net/tun, which you cannot open: it fails with \"open: Permission denied\" until that is fixed (VS-TUN-001)", a.NetworkDriver), Evidence: factLines(d)})
		}
	}

	a.PortDriver = defaultPortDriver
	a.PortReasons = []Reason{{Text: "the builtin port driver works with every network driver and is the fastest general one (RootlessKit's benchmark, parent to child: 29.9 Gbps, against 8.03 for slirp4netns's)"}}
	if v3 {
		a.PortReasons = append(a.PortReasons, Reason{Text: rk + " is 3.0 or newer: the builtin driver passes the client's source address to the container (TCP)", Evidence: rkEv})
	} else {
		a.PortReasons = append(a.PortReasons, Reason{Text: "before RootlessKit 3.0 the builtin driver hides the client's address: containers see connections to published ports coming from RootlessKit; use RootlessKit 3.0, or the slirp4netns port driver, where the source address matters", Evidence: rkEv})
	}
	if a.NetworkDriver == NetPasta {
		a.PortReasons = append(a.PortReasons, Reason{Text: "pasta's own \"implicit\" port driver is faster still (37.6 Gbps) but works only with pasta networking"})
	}

	a.DetachNetns = v2
	if v2 {
		a.DetachNetnsReasons = []Reason{{Text: rk + " supports --detach-netns (2.0 or newer): containerd stays in the host's network namespace, which speeds up pull, push and build and allows `nerdctl run --net=host`", Evidence: rkEv}}
		if bk := h.bin("buildkitd"); h.below("buildkitd", "0.13.0") {
			a.Warnings = append(a.Warnings, Reason{Text: fmt.Sprintf("BuildKit %s is older than 0.13: with detach-netns, RUN steps of `nerdctl build` can reach the host's 127.0.0.1 and abstract sockets. Upgrade BuildKit, then run `containerd-rootless-setuptool.sh uninstall-buildkit && rm -f ~/.config/buildkit/buildkitd.toml` and install it again", bk.Value.Version), Evidence: factLines(bk)})
		}
	} else {
		a.DetachNetnsReasons = []Reason{{Text: rk + " is not known to be 2.0 or newer, which --detach-netns needs", Evidence: rkEv}}
	}

	a.Env = map[string]string{
		"CONTAINERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER":  a.PortDriver,
		"CONTAINERD_ROOTLESS_ROOTLESSKIT_DETACH_NETNS": strconv.FormatBool(a.DetachNetns),
	}
	if a.NetworkDriver != "" {
		a.Env["CONTAINERD_ROOTLESS_ROOTLESSKIT_NET"] = a.NetworkDriver
		a.Env["CONTAINERD_ROOTLESS_ROOTLESSKIT_MTU"] = strconv.Itoa(a.MTU)
	}
	return a
}

func adviseBuildKit(h checkHost) AddOn {
	b := h.bin("buildkitd")
	ev := factLines(b)
	switch {
	case !b.Known:
		return AddOn{Reasons: []Reason{{Text: "cannot tell whether buildkitd is installed", Evidence: ev}}}
	case !b.Value.Found:
		return AddOn{Reasons: []Reason{{Text: "buildkitd is not installed (nerdctl-full ships it); `nerdctl build` needs it", Evidence: ev}}}
	}
	a := AddOn{Available: true, Reasons: []Reason{{Text: binaryLabel(b.Value) + " is installed", Evidence: ev}}}
	switch {
	case h.atLeast("buildkitd", "0.13.0"):
		a.Reasons = append(a.Reasons, Reason{Text: "BuildKit 0.13 or newer: build steps get their own bridged network (--oci-worker-net=bridge)"})
	case h.below("buildkitd", "0.13.0"):
		a.Reasons = append(a.Reasons, Reason{Text: "BuildKit is older than 0.13: no --oci-worker-net=bridge, so build steps share the network namespace of buildkitd"})
	}
	if c := h.bin("buildctl"); c.Known && !c.Value.Found {
		a.Reasons = append(a.Reasons, Reason{Text: "buildctl is not installed, and `nerdctl build` runs it", Evidence: factLines(c)})
	}
	return a
}

func adviseStargz(h checkHost) AddOn {
	f := h.f
	a := newAssessment()
	b := h.bin("containerd-stargz-grpc")
	switch {
	case !b.Known:
		a.need(verdictUnknown, Reason{Text: "cannot tell whether containerd-stargz-grpc is installed", Evidence: factLines(b)})
	case !b.Value.Found:
		a.need(verdictNo, Reason{Text: "containerd-stargz-grpc is not installed (nerdctl-full ships it)", Evidence: factLines(b)})
	default:
		a.need(verdictYes, Reason{Text: binaryLabel(b.Value) + " is installed", Evidence: factLines(b)})
	}
	a.needDevice(f.Devices.Fuse, "the stargz snapshotter")
	if k := f.OS.Kernel; k.Known && !k.Value.AtLeast(4, 18) {
		a.need(verdictNo, Reason{Text: fmt.Sprintf("kernel %s is older than 4.18, which FUSE in user namespaces needs", kernelLabel(k.Value)), Evidence: factLines(k)})
	}
	return AddOn{Available: a.v == verdictYes, Reasons: slices.Concat(a.pro, a.con)}
}

// adviseBypass4netns checks bypass4netns's requirements: both binaries, kernel 5.9
// (SECCOMP_IOCTL_NOTIF_ADDFD), the seccomp "user_notif" action, nerdctl 0.17, runc 1.1 or crun 1.6,
// and a RootlessKit network driver (nerdctl takes the child's address from it).
func adviseBypass4netns(h checkHost, network string) Bypass4netnsAddOn {
	f := h.f
	a := newAssessment()
	for _, name := range []string{"bypass4netns", "bypass4netnsd"} {
		b := h.bin(name)
		switch {
		case !b.Known:
			a.need(verdictUnknown, Reason{Text: "cannot tell whether " + name + " is installed", Evidence: factLines(b)})
		case !b.Value.Found:
			a.need(verdictNo, Reason{Text: name + " is not installed (nerdctl-full ships it)", Evidence: factLines(b)})
		default:
			a.need(verdictYes, Reason{Text: binaryLabel(b.Value) + " is installed", Evidence: factLines(b)})
		}
	}
	switch k := f.OS.Kernel; {
	case !k.Known:
		a.need(verdictUnknown, Reason{Text: "cannot tell: the kernel version is unknown, and bypass4netns needs 5.9", Evidence: factLines(k)})
	case !k.Value.AtLeast(5, 9):
		a.need(verdictNo, Reason{Text: fmt.Sprintf("kernel %s is older than 5.9, which bypass4netns needs (SECCOMP_IOCTL_NOTIF_ADDFD)", kernelLabel(k.Value)), Evidence: factLines(k)})
	default:
		a.need(verdictYes, Reason{Text: fmt.Sprintf("kernel %s is 5.9 or newer", kernelLabel(k.Value)), Evidence: factLines(k)})
	}
	switch s := f.Security.SeccompActions; {
	case !s.Known:
		a.need(verdictUnknown, Reason{Text: "cannot tell whether seccomp offers the user_notif action bypass4netns needs", Evidence: factLines(s)})
	case !slices.Contains(s.Value, "user_notif"):
		a.need(verdictNo, Reason{Text: "seccomp has no user_notif action, which bypass4netns needs", Evidence: factLines(s)})
	default:
		a.need(verdictYes, Reason{Text: "seccomp offers the user_notif action", Evidence: factLines(s)})
	}
	out := Bypass4netnsAddOn{}
	n := h.bin("nerdctl")
	switch {
	case !n.Known:
		a.need(verdictUnknown, Reason{Text: "cannot tell whether nerdctl is installed, and bypass4netns needs nerdctl 0.17 or newer", Evidence: factLines(n)})
	case !n.Value.Found:
		a.need(verdictNo, Reason{Text: "nerdctl is not installed, and bypass4netns needs nerdctl 0.17 or newer", Evidence: factLines(n)})
	case h.atLeast("nerdctl", "2.0.0"):
		out.Form, out.Flag = "annotation", "--annotation "+bypass4netnsKV
		a.need(verdictYes, Reason{Text: "nerdctl " + n.Value.Version + " is 2.0 or newer: containers opt in with --annotation " + bypass4netnsKV, Evidence: factLines(n)})
	case h.atLeast("nerdctl", "0.17.0"):
		out.Form, out.Flag = "label", "--label "+bypass4netnsKV
		a.need(verdictYes, Reason{Text: "nerdctl " + n.Value.Version + " is older than 2.0: containers opt in with --label " + bypass4netnsKV, Evidence: factLines(n)})
	case h.below("nerdctl", "0.17.0"):
		a.need(verdictNo, Reason{Text: "nerdctl " + n.Value.Version + " is older than 0.17, which bypass4netns needs", Evidence: factLines(n)})
	default:
		a.need(verdictUnknown, Reason{Text: "nerdctl's version is unknown, and bypass4netns needs 0.17 (the annotation form 2.0)", Evidence: factLines(n)})
	}
	if h.below("runc", "1.1.0") && !h.atLeast("crun", "1.6.0") {
		a.need(verdictNo, Reason{Text: "runc " + h.bin("runc").Value.Version + " is older than 1.1 and there is no crun 1.6 or newer: bypass4netns needs one of them", Evidence: factLines(h.bin("runc"))})
	}
	if network == "" {
		a.need(verdictNo, Reason{Text: "RootlessKit has no usable network driver, and nerdctl takes the address bypass4netns must not touch from it"})
	}
	out.Available = a.v == verdictYes
	out.Reasons = slices.Concat(a.pro, a.con)
	return out
}

// liveInconclusive reports whether a failed live mount test says nothing about the host: with
// Ubuntu's kernel.apparmor_restrict_unprivileged_userns=1, the namespace virt-setup's own (unprofiled)
// binary creates has no capabilities, so every mount in it fails, while rootlesskit, once its
// AppArmor profile allows userns (VS-APPARMOR-001), gets a full one.
func liveInconclusive(f *Facts, live Fact[LiveTest], name string) (Reason, bool) {
	aa := f.Security.AppArmor
	if !live.Known || live.Value.Status != LiveFailed || !aa.Known || !aa.Value.Enabled || aa.Value.RestrictUnprivilegedUserns != 1 {
		return Reason{}, false
	}
	return Reason{
		Text: "the live " + name + " mount test failed, but AppArmor restricts unprivileged user namespaces, which also strips virt-setup's " +
			"own test namespace; rootlesskit with its AppArmor profile is not affected, so the result is set aside and the rules decide",
		Evidence: slices.Concat(factLines(live), factLines(aa)),
	}, true
}

package probe

import (
	"fmt"
	"slices"
	"strings"
)

// storageChecks are about the snapshotter that unpacks images: kernel overlayfs, FUSE, and what the
// user asked for.
var storageChecks = []Check{
	{
		ID:    "VS-OVERLAY-001",
		Title: "overlayfs can be mounted in a user namespace",
		Why: "nerdctl's default snapshotter is overlayfs; where the kernel refuses it inside a user namespace, containers fail with " +
			"\"failed to mount rootfs component ... operation not permitted\" unless another snapshotter is set.",
		Doc: docOverlayfs,
		run: checkOverlay,
		fix: fixOverlay,
	},
	{
		ID:    "VS-FUSE-001",
		Title: "/dev/fuse exists and you can open it",
		Why:   "fuse-overlayfs and the stargz snapshotter mount FUSE filesystems; without a /dev/fuse the user can open they cannot work.",
		Doc:   docGlossary,
		run:   checkFuseDevice,
		fix:   fixFuseDevice,
	},
	{
		ID:    "VS-KERNEL-001",
		Title: "The kernel mounts FUSE in user namespaces (4.18 or newer)",
		Why:   "FUSE filesystems can be mounted inside a user namespace only since kernel 4.18; older kernels rule out fuse-overlayfs and stargz.",
		Doc:   docGlossary,
		run:   checkKernelFuse,
		fix:   fixKernelUpgrade("4.18", "fuse-overlayfs and the stargz snapshotter"),
	},
	{
		ID:    "VS-SNAP-001",
		Title: "The configured snapshotter can run on this host",
		Why: "$CONTAINERD_SNAPSHOTTER (or snapshotter in nerdctl.toml) overrides the default for every nerdctl command; a snapshotter " +
			"the host cannot run makes every pull and run fail.",
		Doc: docNerdctlRL,
		run: checkSnapshotterSetting,
		fix: fixSnapshotterSetting,
	},
}

// reasonsEvidence gathers the evidence of reasons, without repeats.
func reasonsEvidence(rs ...[]Reason) []string {
	var out []string
	for _, list := range rs {
		for _, r := range list {
			for _, e := range r.Evidence {
				if !slices.Contains(out, e) {
					out = append(out, e)
				}
			}
		}
	}
	return out
}

func firstText(rs []Reason) string {
	if len(rs) == 0 {
		return ""
	}
	return rs[0].Text
}

func checkOverlay(f *Facts, h checkHost) Result {
	a := assessOverlay(f)
	ev := reasonsEvidence(a.pro, a.con)
	switch a.v {
	case verdictYes:
		return Result{Status: StatusOK, Title: "overlayfs works in a user namespace: " + firstText(a.pro), Evidence: ev}
	case verdictNo:
		alt := Recommend(f).Snapshotter
		return Result{Status: StatusWarn, Title: fmt.Sprintf("overlayfs cannot be mounted in a user namespace (%s); use %s instead", firstText(a.con), alt), Evidence: ev}
	}
	return Result{Status: StatusSkip, Title: "Whether overlayfs works in a user namespace is unknown: " + strings.TrimPrefix(firstText(a.con), "cannot tell: "), Evidence: ev}
}

func fixOverlay(h checkHost) Fix {
	if k := h.f.OS.Kernel; k.Known && !k.Value.AtLeast(4, 18) {
		return Fix{
			Summary: fmt.Sprintf("Use the native snapshotter: kernel %s is too old for fuse-overlayfs as well. It is slow, since it copies every layer in full.", kernelLabel(k.Value)),
			User:    []string{"export CONTAINERD_SNAPSHOTTER=native"},
			Notes:   []string{"A kernel of 5.11 or newer (5.13 with SELinux) would allow overlayfs; 4.18 or newer would allow fuse-overlayfs."},
		}
	}
	x := Fix{
		Summary: "Use the fuse-overlayfs snapshotter instead; native works everywhere too, but copies every layer in full.",
		Root:    h.install("fuse-overlayfs", "fuse-overlayfs"),
		User:    []string{"export CONTAINERD_SNAPSHOTTER=fuse-overlayfs"},
		Notes: []string{
			"containerd reaches fuse-overlayfs through containerd-fuse-overlayfs-grpc (nerdctl-full ships it) and a [proxy_plugins.\"fuse-overlayfs\"] entry in ~/.config/containerd/config.toml; virt-setup's installer sets up both, as `containerd-rootless-setuptool.sh install-fuse-overlayfs` would.",
			"fuse-overlayfs needs a /dev/fuse you can open (VS-FUSE-001). If it cannot work: export CONTAINERD_SNAPSHOTTER=native.",
			"To keep the choice, set snapshotter in ~/.config/nerdctl/nerdctl.toml rather than in one shell.",
			"A newer kernel also fixes it: 5.11 or newer without SELinux, 5.13 or newer with it.",
		},
	}
	switch h.family {
	case "fedora":
		x.Notes = append(x.Notes, "On Fedora and RHEL with SELinux enabled, overlayfs in user namespaces needs kernel 5.13; RHEL 8's 4.18 kernel needs fuse-overlayfs.")
	case "debian":
		x.Notes = append(x.Notes, "Do not use Debian's permit_mounts_in_userns module option of older kernels: it is known to be broken (moby#42302).")
	}
	return x
}

func checkFuseDevice(f *Facts, h checkHost) Result {
	const breaks = "fuse-overlayfs and the stargz snapshotter cannot work"
	return checkDevice(f.Devices.Fuse, "/dev/fuse", StatusWarn, breaks, breaks, h)
}

func fixFuseDevice(h checkHost) Fix {
	d := h.f.Devices.Fuse
	if d.Known && !d.Value.Exists {
		return Fix{
			Summary: "Load the fuse module, which creates /dev/fuse.",
			Root:    []string{"modprobe fuse"},
			Notes: []string{
				"If /dev/fuse is still missing (no devtmpfs or udev): mknod -m 0666 /dev/fuse c 10 229.",
				"Only fuse-overlayfs and stargz need it; overlayfs and native do not.",
			},
		}
	}
	return Fix{
		Summary: "Let every user open /dev/fuse, as distributions do through udev (mode 0666).",
		Root:    []string{"chmod 0666 /dev/fuse"},
		Notes: []string{
			"On a host without udev the mode resets at boot: repeat the chmod from a boot script.",
			"Only fuse-overlayfs and stargz need it; overlayfs and native do not.",
		},
	}
}

func checkKernelFuse(f *Facts, h checkHost) Result {
	k := f.OS.Kernel
	if !k.Known {
		return unknownResult("The kernel version", k)
	}
	rel := kernelLabel(k.Value)
	if !k.Value.AtLeast(4, 18) {
		return Result{Status: StatusWarn, Title: fmt.Sprintf("Kernel %s is older than 4.18: FUSE cannot be mounted in a user namespace, so fuse-overlayfs and stargz are out", rel), Evidence: factLines(k)}
	}
	return Result{Status: StatusOK, Title: fmt.Sprintf("Kernel %s mounts FUSE in user namespaces (4.18 or newer)", rel), Evidence: factLines(k)}
}

func fixKernelUpgrade(min, what string) func(checkHost) Fix {
	return func(h checkHost) Fix {
		return Fix{
			Summary: fmt.Sprintf("Boot a kernel of %s or newer to use %s; nothing else needs it.", min, what),
			Notes:   []string{"Install your distribution's current kernel package and reboot."},
		}
	}
}

// configuredSnapshotter is the snapshotter nerdctl will use when no --snapshotter flag is given:
// $CONTAINERD_SNAPSHOTTER first, then the snapshotter key of nerdctl.toml (nerdctl's precedence).
func configuredSnapshotter(f *Facts) (name, from string, ev []string, known bool) {
	env := f.State.SnapshotterEnv
	if env.Known && env.Value != "" {
		return env.Value, "CONTAINERD_SNAPSHOTTER", factLines(env), true
	}
	if c := f.State.NerdctlConfig; c.Known && c.Value.Snapshotter != "" {
		return c.Value.Snapshotter, "snapshotter in " + c.Value.Path, factLines(c), true
	}
	return "", "", factLines(env), env.Known
}

// snapshotterVerdict says whether the named snapshotter can run on the host as it is now set up.
func snapshotterVerdict(h checkHost, name string) (verdict, []Reason) {
	f := h.f
	proxy := func(plugin string) (verdict, Reason) {
		c := f.State.ContainerdConfig
		switch {
		case !c.Known:
			return verdictUnknown, Reason{Text: "cannot tell whether containerd's config.toml defines the " + plugin + " proxy plugin", Evidence: factLines(c)}
		case slices.Contains(c.Value.ProxyPlugins, plugin):
			return verdictYes, Reason{Text: "containerd's config.toml defines [proxy_plugins.\"" + plugin + "\"]", Evidence: factLines(c)}
		}
		return verdictNo, Reason{Text: "containerd's config.toml has no [proxy_plugins.\"" + plugin + "\"], so containerd does not know this snapshotter", Evidence: factLines(c)}
	}
	switch name {
	case SnapshotterNative:
		return verdictYes, []Reason{{Text: "native works on every host"}}
	case SnapshotterOverlayfs:
		a := assessOverlay(f)
		return a.v, slices.Concat(a.con, a.pro)
	case SnapshotterFuseOverlayfs:
		a := assessFuseOverlayfs(h)
		if a.v == verdictYes && !h.found("containerd-fuse-overlayfs-grpc") {
			a.need(verdictNo, Reason{Text: "containerd-fuse-overlayfs-grpc is not installed", Evidence: factLines(h.bin("containerd-fuse-overlayfs-grpc"))})
		}
		v, r := proxy(SnapshotterFuseOverlayfs)
		a.need(v, r)
		return a.v, slices.Concat(a.con, a.pro)
	case "stargz":
		s := adviseStargz(h)
		v := verdictNo
		if s.Available {
			v = verdictYes
		}
		a := assessment{v: v}
		a.pro = s.Reasons
		pv, r := proxy("stargz")
		a.need(pv, r)
		return a.v, slices.Concat(a.con, a.pro)
	case "btrfs":
		return verdictNo, []Reason{{Text: "the btrfs snapshotter fails in rootless mode (\"failed to extract layer: operation not permitted\")"}}
	case "zfs", "devmapper", "aufs":
		return verdictNo, []Reason{{Text: "the " + name + " snapshotter needs root"}}
	}
	v, r := proxy(name)
	return v, []Reason{r}
}

func checkSnapshotterSetting(f *Facts, h checkHost) Result {
	name, from, ev, known := configuredSnapshotter(f)
	if !known {
		return unknownResult("$CONTAINERD_SNAPSHOTTER", f.State.SnapshotterEnv)
	}
	if name == "" {
		return Result{Status: StatusOK, Title: "No snapshotter is configured: nerdctl uses overlayfs (see VS-OVERLAY-001)", Evidence: ev}
	}
	v, rs := snapshotterVerdict(h, name)
	ev = append(ev, reasonsEvidence(rs)...)
	switch v {
	case verdictYes:
		return Result{Status: StatusOK, Title: fmt.Sprintf("%s selects %s, which can run here", from, name), Evidence: ev}
	case verdictNo:
		// snapshotterVerdict lists the reasons against first.
		return Result{Status: StatusFail, Title: fmt.Sprintf("%s selects %s, which cannot run here: %s", from, name, firstText(rs)), Evidence: ev}
	}
	return Result{Status: StatusSkip, Title: fmt.Sprintf("%s selects %s, and whether it can run here is unknown: %s", from, name, strings.TrimPrefix(firstText(rs), "cannot tell ")), Evidence: ev}
}

func fixSnapshotterSetting(h checkHost) Fix {
	rec := Recommend(h.f).Snapshotter
	if !h.f.OS.Kernel.Known {
		// Nothing is known about the host (as in `virt-setup explain`): native, the only sure choice,
		// would be a poor suggestion.
		rec = "<overlayfs, fuse-overlayfs or native>"
	}
	return Fix{
		Summary: fmt.Sprintf("Select a snapshotter this host can run (virt-setup recommends %s), or unset the setting to get overlayfs.", rec),
		User:    []string{"export CONTAINERD_SNAPSHOTTER=" + rec},
		Notes: []string{
			"Change it where it is set: your shell profile, ~/.config/environment.d, or the snapshotter key of ~/.config/nerdctl/nerdctl.toml (the environment variable wins over the file).",
			"fuse-overlayfs and stargz also need their proxy snapshotter running and a [proxy_plugins] entry in ~/.config/containerd/config.toml; virt-setup's installer sets these up.",
		},
	}
}

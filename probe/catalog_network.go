package probe

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// networkChecks are about networking of rootless containers: RootlessKit's driver and what it
// needs, the CNI plugins, published ports and the bypass4netns accelerator.
var networkChecks = []Check{
	{
		ID:    "VS-TUN-001",
		Title: "/dev/net/tun exists and you can open it",
		Why: "slirp4netns and RootlessKit's other tap-based network drivers create the namespace's network device through /dev/net/tun; " +
			"when the user cannot open it, slirp4netns fails with \"open: Permission denied\" and containerd does not start.",
		Doc: docNetns,
		run: checkTunDevice,
		fix: fixTunDevice,
	},
	{
		ID:    "VS-NET-001",
		Title: "RootlessKit has a usable network driver",
		Why: "RootlessKit connects the namespace containerd runs in to the host's network through slirp4netns (0.4.0+), vpnkit, " +
			"pasta (RootlessKit 2.0+) or its built-in gvisor-tap-vsock (RootlessKit 3.0+); with none of them containerd cannot start.",
		Doc: docRootlessKitN,
		run: checkNetworkDriver,
		fix: fixNetworkDriver,
	},
	{
		ID:    "VS-NET-002",
		Title: "containerd-rootless.sh's network fallback works with the installed RootlessKit",
		Why: "Without slirp4netns or vpnkit, containerd-rootless.sh of nerdctl 2.3 and later falls back to gvisor-tap-vsock, which " +
			"RootlessKit 2.x rejects (\"unknown network mode\"); before 2.3 it exits asking for slirp4netns or vpnkit.",
		Doc: docRootlessKitN,
		run: checkNetworkFallback,
		fix: fixNetworkDriver,
	},
	{
		ID:    "VS-CNI-001",
		Title: "The CNI plugins nerdctl needs are installed",
		Why: "nerdctl wires containers to its default bridge network with the CNI plugins; without them every `nerdctl run` fails with " +
			"\"needs CNI plugin \\\"bridge\\\" to be installed in CNI_PATH\".",
		Doc: docNerdctlFAQ,
		run: checkCNI,
		fix: fixCNI,
	},
	{
		ID:    "VS-IPTABLES-001",
		Title: "iptables is installed",
		Why:   "The CNI bridge and portmap plugins set up NAT and port forwarding with iptables inside RootlessKit's namespace; without it containers get no network.",
		Doc:   docNerdctlFAQ,
		run:   checkIptables,
		fix:   fixIptables,
	},
	{
		ID:    "VS-IPTABLES-002",
		Title: "iptables is on your PATH",
		Why: "nerdctl and the CNI plugins it runs look iptables up on your $PATH; Debian leaves /usr/sbin and /sbin off an ordinary " +
			"user's PATH, and `nerdctl run` then fails with \"failed to locate iptables\" although iptables is installed.",
		Doc: docNerdctlFAQ,
		run: checkIptablesOnPath,
		fix: fixIptablesOnPath,
	},
	{
		ID:    "VS-PORTS-001",
		Title: "Ports below 1024 can be published",
		Why: "RootlessKit binds published ports as you, so a port below net.ipv4.ip_unprivileged_port_start fails with \"cannot expose " +
			"privileged port\"; this only matters if you publish such ports.",
		Doc: docSysctl,
		run: checkPrivilegedPorts,
		fix: fixPrivilegedPorts,
	},
	{
		ID:    "VS-KERNEL-002",
		Title: "The kernel can run bypass4netns (5.9 or newer, seccomp user_notif)",
		Why: "bypass4netns, the optional accelerator that gives containers host-speed networking, swaps sockets into containers with " +
			"SECCOMP_IOCTL_NOTIF_ADDFD, which came with kernel 5.9.",
		Doc: docNerdctlRL,
		run: checkKernelBypass,
		fix: fixKernelUpgrade("5.9", "bypass4netns"),
	},
}

func checkTunDevice(f *Facts, h checkHost) Result {
	return checkDevice(f.Devices.Tun, "/dev/net/tun", StatusFail, "slirp4netns cannot create the network device", "slirp4netns fails with \"open: Permission denied\"", h)
}

// checkDevice is the rule shared by the device checks: the device must exist, be a character device
// and open for the user. bad is the status when it does not; missing and denied say what breaks.
func checkDevice(d Fact[Device], defPath string, bad Status, missing, denied string, h checkHost) Result {
	if !d.Known {
		return unknownResult("Whether you can open "+defPath, d)
	}
	v, ev := d.Value, factLines(d)
	p := v.Path
	if p == "" {
		p = defPath
	}
	switch {
	case !v.Exists:
		return Result{Status: bad, Title: p + " does not exist: " + missing, Evidence: ev}
	case !v.CharDev:
		return Result{Status: bad, Title: p + " is not a character device: " + missing, Evidence: ev}
	case !v.Usable:
		return Result{Status: bad, Title: fmt.Sprintf("%s is mode %s, owner %d:%d, and %s cannot open it: %s", p, v.Mode, v.OwnerUID, v.OwnerGID, h.user, denied), Evidence: ev}
	}
	return Result{Status: StatusOK, Title: fmt.Sprintf("%s can open %s (%s)", h.user, p, v.How), Evidence: ev}
}

func fixTunDevice(h checkHost) Fix {
	d := h.f.Devices.Tun
	if d.Known && !d.Value.Exists {
		return Fix{
			Summary: "Load the tun module, which creates /dev/net/tun.",
			Root:    []string{"modprobe tun"},
			Notes:   []string{"If /dev/net/tun is still missing (no devtmpfs or udev): mkdir -p /dev/net && mknod -m 0666 /dev/net/tun c 10 200."},
		}
	}
	return Fix{
		Summary: "Let every user open /dev/net/tun, as distributions do through udev (mode 0666).",
		Root:    []string{"chmod 0666 /dev/net/tun"},
		Notes:   []string{"On a host without udev the mode resets at boot: repeat the chmod from a boot script."},
	}
}

func checkNetworkDriver(f *Facts, h checkHost) Result {
	rk, slirp := h.bin("rootlesskit"), h.bin("slirp4netns")
	if !rk.Known && !slirp.Known {
		return unknownResult("Which network programs are installed", slirp)
	}
	driver, rs := chooseNetwork(h)
	ev := reasonsEvidence(rs)
	if driver == "" {
		var why []string
		for _, r := range rs[:len(rs)-1] {
			why = append(why, r.Text)
		}
		return Result{Status: StatusFail, Title: "RootlessKit has no usable network driver: " + strings.Join(why, "; "), Evidence: ev}
	}
	return Result{Status: StatusOK, Title: fmt.Sprintf("RootlessKit can use %s: %s", driver, rs[len(rs)-1].Text), Evidence: ev}
}

func fixNetworkDriver(h checkHost) Fix {
	return Fix{
		Summary: fmt.Sprintf("Install slirp4netns (package %s), the network driver containerd-rootless.sh picks first.", h.pkgName("slirp4netns", "slirp4netns")),
		Root:    h.install("slirp4netns", "slirp4netns"),
		Notes: []string{
			"Or install RootlessKit 3.0 or newer (nerdctl-full 2.3 and later bundle it), which has the gvisor-tap-vsock driver built in.",
			fmt.Sprintf("Or, with RootlessKit 2.0 or newer, use pasta (package %s): set CONTAINERD_ROOTLESS_ROOTLESSKIT_NET=pasta and CONTAINERD_ROOTLESS_ROOTLESSKIT_MTU=65520 in the containerd unit's override.conf; containerd-rootless.sh never picks pasta by itself.", h.pkgName("passt", "passt")),
		},
	}
}

// unitEnv finds a variable the containerd user unit sets, the override.conf drop-in winning over
// the unit as systemd applies them.
func unitEnv(f *Facts, key string) (value string, ev []string, ok bool) {
	for _, c := range []Fact[ConfigFile]{f.State.ContainerdOverride, f.State.ContainerdUnit} {
		if !c.Known {
			continue
		}
		if v, set := c.Value.Environment[key]; set {
			return v, append(factLines(c), fmt.Sprintf("%s: %s=%s", c.Value.Path, key, v)), true
		}
	}
	return "", nil, false
}

func checkNetworkFallback(f *Facts, h checkHost) Result {
	n, rk := h.bin("nerdctl"), h.bin("rootlesskit")
	switch {
	case !n.Known:
		return unknownResult("Whether nerdctl is installed", n)
	case !rk.Known:
		return unknownResult("Whether rootlesskit is installed", rk)
	case !n.Value.Found:
		return Result{Status: StatusSkip, Title: "nerdctl is not installed; the fallback of its containerd-rootless.sh depends on its version", Evidence: factLines(n)}
	case !rk.Value.Found:
		return Result{Status: StatusSkip, Title: "rootlesskit is not installed (see VS-BIN-002)", Evidence: factLines(rk)}
	}
	ev := slices.Concat(factLines(n), factLines(rk))
	v2, v3 := rootlesskitLevels(h)
	rkName := rootlesskitLabel(h)
	if net, uev, ok := unitEnv(f, "CONTAINERD_ROOTLESS_ROOTLESSKIT_NET"); ok {
		ev = append(ev, uev...)
		switch {
		case net == NetGvisorTapVsock && !v3:
			return Result{Status: StatusFail, Title: fmt.Sprintf("The containerd unit sets CONTAINERD_ROOTLESS_ROOTLESSKIT_NET=%s, which %s (before 3.0) rejects with \"unknown network mode\"", net, rkName), Evidence: ev}
		case net == NetPasta && !v2:
			return Result{Status: StatusFail, Title: fmt.Sprintf("The containerd unit sets CONTAINERD_ROOTLESS_ROOTLESSKIT_NET=%s, which %s (before 2.0) rejects with \"unknown network mode\"", net, rkName), Evidence: ev}
		}
		return Result{Status: StatusOK, Title: fmt.Sprintf("The containerd unit sets CONTAINERD_ROOTLESS_ROOTLESSKIT_NET=%s, so no fallback applies", net), Evidence: ev}
	}
	if slirp4netnsUsable(h) {
		return Result{Status: StatusOK, Title: "containerd-rootless.sh picks slirp4netns (0.4.0 or newer), so no fallback applies", Evidence: append(ev, factLines(h.bin("slirp4netns"))...)}
	}
	if h.found("vpnkit") {
		return Result{Status: StatusOK, Title: "containerd-rootless.sh picks vpnkit, so no fallback applies", Evidence: append(ev, factLines(h.bin("vpnkit"))...)}
	}
	ev = append(ev, factLines(h.bin("slirp4netns"))...)
	nv := n.Value.Version
	// The script itself says best whether it falls back to gvisor-tap-vsock (nerdctl 2.3 and later);
	// without it, nerdctl's version stands in for the script that ships with it.
	script := h.bin("containerd-rootless.sh")
	fallback, told := script.Value.Features["gvisor-fallback"]
	if told && script.Known && script.Value.Found {
		ev = append(ev, factLines(script)...)
	} else if nv != "" {
		fallback, told = h.atLeast("nerdctl", "2.3.0"), true
	}
	rkKnown := rk.Value.Version != "" || len(rk.Value.Features) > 0
	switch {
	case !told:
		return Result{Status: StatusSkip, Title: "Neither slirp4netns nor vpnkit is installed, and which fallback containerd-rootless.sh takes is unknown (nerdctl's version is unknown)", Evidence: ev}
	case fallback && v3:
		return Result{Status: StatusOK, Title: fmt.Sprintf("Without slirp4netns or vpnkit, containerd-rootless.sh falls back to gvisor-tap-vsock, which %s supports", rkName), Evidence: ev}
	case fallback && !rkKnown:
		return Result{Status: StatusSkip, Title: "Without slirp4netns or vpnkit, containerd-rootless.sh falls back to gvisor-tap-vsock, and whether RootlessKit is 3.0 or newer, as that needs, is unknown", Evidence: ev}
	case fallback:
		return Result{Status: StatusFail, Title: fmt.Sprintf("Without slirp4netns or vpnkit, containerd-rootless.sh (nerdctl 2.3 and later) falls back to gvisor-tap-vsock, which %s (before 3.0) rejects with \"unknown network mode: gvisor-tap-vsock\"", rkName), Evidence: ev}
	}
	return Result{Status: StatusFail, Title: "containerd-rootless.sh (nerdctl before 2.3) needs slirp4netns (0.4.0+) or vpnkit and exits with \"Either slirp4netns (>= v0.4.0) or vpnkit needs to be installed\"", Evidence: ev}
}

func checkCNI(f *Facts, h checkHost) Result {
	c := f.Network.CNI
	if !c.Known {
		return unknownResult("Where the CNI plugins are", c)
	}
	v, ev := c.Value, factLines(c)
	switch {
	case len(v.Plugins) == 0 && v.Dir == "":
		return Result{Status: StatusFail, Title: "No CNI plugin directory exists: nerdctl cannot create its default network", Evidence: ev}
	case len(v.Plugins) == 0:
		return Result{Status: StatusFail, Title: fmt.Sprintf("No CNI plugins in %s: nerdctl cannot create its default network", v.Dir), Evidence: ev}
	case len(v.Missing) > 0:
		return Result{Status: StatusFail, Title: fmt.Sprintf("CNI plugins missing from %s: %s", v.Dir, strings.Join(v.Missing, ", ")), Evidence: ev}
	}
	title := fmt.Sprintf("CNI plugins in %s: %s", v.Dir, strings.Join(v.Plugins, ", "))
	if v.Version != "" {
		title += " (version " + v.Version + ")"
	}
	return Result{Status: StatusOK, Title: title, Evidence: ev}
}

func fixCNI(h checkHost) Fix {
	return Fix{
		Summary: "Install the CNI plugins where nerdctl looks for them.",
		Root:    h.install("containernetworking-plugins", "containernetworking-plugins"),
		Notes: []string{
			"nerdctl-full ships them in libexec/cni: extract the tarball into ~/.local or /usr/local, not into a bin directory (~/.local/bin/libexec/cni is not searched).",
			"Or point nerdctl at them: cni_path in ~/.config/nerdctl/nerdctl.toml, or $CNI_PATH.",
			"nerdctl searches ~/opt/cni/bin, ~/.local/libexec/cni, ~/.local/lib/cni, /opt/cni/bin, /usr/local/libexec/cni, /usr/local/lib/cni, /usr/libexec/cni and /usr/lib/cni, and uses the first that exists.",
		},
	}
}

func checkIptables(f *Facts, h checkHost) Result {
	b := h.bin("iptables")
	if !b.Known {
		return unknownResult("Whether iptables is installed", b)
	}
	if !b.Value.Found {
		return Result{Status: StatusFail, Title: "iptables is not installed: the CNI bridge and portmap plugins cannot set up NAT and published ports", Evidence: factLines(b)}
	}
	return Result{Status: StatusOK, Title: binaryLabel(b.Value) + " is installed", Evidence: factLines(b)}
}

func fixIptables(h checkHost) Fix {
	return Fix{
		Summary: fmt.Sprintf("Install iptables (package %s).", h.pkgName("iptables", "iptables-nft")),
		Root:    h.install("iptables", "iptables-nft"),
	}
}

func checkIptablesOnPath(f *Facts, h checkHost) Result {
	b, p := h.bin("iptables"), f.Identity.Path
	switch {
	case !b.Known || !b.Value.Found:
		return Result{Status: StatusSkip, Title: "iptables is not installed (see VS-IPTABLES-001)"}
	case !p.Known:
		return unknownResult("Your $PATH", p)
	}
	ev := append(factLines(p), factLines(b)...)
	dir := filepath.Dir(b.Value.Path)
	if slices.Contains(p.Value, dir) {
		return Result{Status: StatusOK, Title: fmt.Sprintf("%s is on your PATH", dir), Evidence: ev}
	}
	return Result{Status: StatusWarn, Title: fmt.Sprintf("iptables is in %s, which is not on your PATH: `nerdctl run` fails with \"failed to locate iptables\"", dir), Evidence: ev}
}

func fixIptablesOnPath(h checkHost) Fix {
	dir := "/usr/sbin"
	if b := h.bin("iptables"); b.Known && b.Value.Found {
		dir = filepath.Dir(b.Value.Path)
	}
	add := dir
	if dir != "/sbin" {
		add += ":/sbin"
	}
	return Fix{
		Summary: "Add the sbin directories to your PATH, in this shell and in every login shell.",
		User: []string{
			fmt.Sprintf(`export PATH="$PATH:%s"`, add),
			fmt.Sprintf(`echo 'export PATH="$PATH:%s"' >> ~/.profile`, add),
		},
		Notes: []string{"Rootless containerd started by virt-setup or its systemd unit has them on its own PATH already; it is your shell's nerdctl that needs them."},
	}
}

func checkPrivilegedPorts(f *Facts, h checkHost) Result {
	p := f.Network.UnprivilegedPortStart
	if !p.Known {
		return unknownResult("net.ipv4.ip_unprivileged_port_start", p)
	}
	if p.Value <= 0 {
		return Result{Status: StatusOK, Title: "net.ipv4.ip_unprivileged_port_start is 0: any port can be published", Evidence: factLines(p)}
	}
	if p.Value <= 1024 {
		// 1024 is every distribution's default: warning about it would make the doctor warn on every
		// healthy host. The fix stays one `virt-setup explain VS-PORTS-001` away.
		return Result{Status: StatusOK, Title: fmt.Sprintf("Ports from %d up can be published; lower ones need a sysctl or a capability (virt-setup explain VS-PORTS-001)", p.Value), Evidence: factLines(p)}
	}
	return Result{Status: StatusWarn, Title: fmt.Sprintf("Ports below %d cannot be published (net.ipv4.ip_unprivileged_port_start=%d, above the usual 1024); higher ports work", p.Value, p.Value), Evidence: factLines(p)}
}

func fixPrivilegedPorts(h checkHost) Fix {
	rk := "$(command -v rootlesskit)"
	if b := h.bin("rootlesskit"); b.Known && b.Value.Found && b.Value.Path != "" {
		rk = b.Value.Path
	}
	return Fix{
		Summary: "Only if you publish ports below 1024: let unprivileged users bind them.",
		Root:    sysctlDropIn("net.ipv4.ip_unprivileged_port_start", "0", "99-virt-setup-ports.conf"),
		Notes: []string{
			fmt.Sprintf("Instead of the sysctl, give RootlessKit alone the capability: setcap cap_net_bind_service=ep %s (the builtin port driver binds in RootlessKit; the capability is lost when the binary is replaced).", rk),
			"Or publish a port of 1024 or above, e.g. -p 8080:80.",
		},
	}
}

func checkKernelBypass(f *Facts, h checkHost) Result {
	k := f.OS.Kernel
	if !k.Known {
		return unknownResult("The kernel version", k)
	}
	rel := kernelLabel(k.Value)
	if !k.Value.AtLeast(5, 9) {
		return Result{Status: StatusWarn, Title: fmt.Sprintf("Kernel %s is older than 5.9: bypass4netns cannot run (it needs SECCOMP_IOCTL_NOTIF_ADDFD)", rel), Evidence: factLines(k)}
	}
	s := f.Security.SeccompActions
	ev := slices.Concat(factLines(k), factLines(s))
	if s.Known && !slices.Contains(s.Value, "user_notif") {
		return Result{Status: StatusWarn, Title: fmt.Sprintf("Kernel %s has no seccomp user_notif action: bypass4netns cannot run", rel), Evidence: ev}
	}
	return Result{Status: StatusOK, Title: fmt.Sprintf("Kernel %s can run bypass4netns (5.9 or newer)", rel), Evidence: ev}
}

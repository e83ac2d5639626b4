package probetest

import (
	"fmt"
	"strings"
)

// The pieces hosts are made of: accounts, environments, package sets. Versions and outputs are those
// of the named distribution releases; where a release offered several, the one a user following the
// distribution's or nerdctl's instructions would have got is used.

// Alice is the ordinary desktop or cloud-image user every shipped profile describes.
func Alice(shell string) User {
	return User{Name: "alice", UID: 1000, GID: 1000, Home: "/home/alice", Shell: shell}
}

// SessionEnv is the environment of a user logged in over ssh with a pam_systemd session: the runtime
// dir and session bus are set when the host provides them.
func SessionEnv(u User, path string, runtimeDir, bus bool, extra ...string) []string {
	env := []string{
		"HOME=" + u.Home,
		"LANG=C.UTF-8",
		"LOGNAME=" + u.Name,
		"PATH=" + path,
		"SHELL=" + u.Shell,
		"USER=" + u.Name,
		"TERM=xterm-256color",
		"SSH_CONNECTION=192.0.2.10 50522 192.0.2.20 22",
	}
	if runtimeDir {
		env = append(env, fmt.Sprintf("XDG_RUNTIME_DIR=/run/user/%d", u.UID), "XDG_SESSION_TYPE=tty", "XDG_SESSION_CLASS=user")
	}
	if bus {
		env = append(env, fmt.Sprintf("DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/%d/bus", u.UID))
	}
	return append(env, extra...)
}

// SubIDs is the /etc/subuid (or subgid) line useradd writes for the user.
func SubIDs(u User, start int) []string {
	return []string{fmt.Sprintf("%s:%d:65536", u.Name, start)}
}

// UIDMapSetuid is newuidmap/newgidmap as Debian's and Ubuntu's uidmap (and Alpine's shadow-uidmap)
// ship them: setuid root.
func UIDMapSetuid(dir string) []Binary {
	return []Binary{
		{Name: "newuidmap", Dir: dir, VersionFlags: []string{}, Setuid: true},
		{Name: "newgidmap", Dir: dir, VersionFlags: []string{}, Setuid: true},
	}
}

// UIDMapCaps is newuidmap/newgidmap as Fedora's and RHEL's shadow-utils ship them: mode 0755 with a
// file capability instead of the setuid bit.
func UIDMapCaps() []Binary {
	return []Binary{
		{Name: "newuidmap", VersionFlags: []string{}, Caps: "cap_setuid=ep"},
		{Name: "newgidmap", VersionFlags: []string{}, Caps: "cap_setgid=ep"},
	}
}

// The device nodes, with the numbers of Documentation/admin-guide/devices.txt (misc major 10).
// udev makes both world read-write on every mainstream distribution; without udev (this project's
// VM, minimal containers) they stay 0600 root.
var (
	FuseWorldRW  = &Device{Mode: 0o666, Major: 10, Minor: 229}
	TunWorldRW   = &Device{Mode: 0o666, Major: 10, Minor: 200}
	FuseRootOnly = &Device{Mode: 0o600, Major: 10, Minor: 229}
	TunRootOnly  = &Device{Mode: 0o600, Major: 10, Minor: 200}
)

// Controller lists as the kernel prints them in cgroup.controllers; "misc" appeared in 5.13.
var (
	cgroupV2Controllers    = []string{"cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc"}
	cgroupV2Controllers511 = []string{"cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma"}
	// cgroupV1Controllers are the hierarchies RHEL/CentOS mount; comma-joined names are co-mounted,
	// with a symlink per controller.
	cgroupV1Controllers = []string{"blkio", "cpu,cpuacct", "cpuset", "devices", "freezer", "hugetlb", "memory", "net_cls,net_prio", "perf_event", "pids", "rdma"}
	// Delegation of systemd's user@.service: memory and pids by default, cpu too since systemd 252
	// (rootless.md §4, rootlesscontaine.rs#78).
	delegatedBefore252 = []string{"memory", "pids"}
	delegatedSince252  = []string{"cpu", "memory", "pids"}
)

// Seccomp actions by kernel: user_notif since 5.0, none of the file before 4.14.
var (
	seccompModern = []string{"kill_process", "kill_thread", "trap", "errno", "user_notif", "trace", "log", "allow"}
	seccomp418    = []string{"kill_process", "kill_thread", "trap", "errno", "trace", "log", "allow"}
)

// Filesystems a modern distribution kernel lists (the nodev ones that matter here, and the disks').
var modernFilesystems = []string{
	"nodev\tsysfs", "nodev\ttmpfs", "nodev\tproc", "nodev\tcgroup", "nodev\tcgroup2", "nodev\tdevpts",
	"nodev\tmqueue", "nodev\tbpf", "nodev\toverlay", "nodev\tfuse", "\tfuseblk", "nodev\tfusectl", "\text4", "\txfs",
}

// CNI plugin sets of containernetworking/plugins releases.
var (
	cniPlugins09 = []string{"bandwidth", "bridge", "dhcp", "firewall", "flannel", "host-device", "host-local", "ipvlan", "loopback", "macvlan", "portmap", "ptp", "sbr", "static", "tuning", "vlan", "vrf"}
	cniPlugins1x = []string{"bandwidth", "bridge", "dhcp", "dummy", "firewall", "host-device", "host-local", "ipvlan", "loopback", "macvlan", "portmap", "ptp", "sbr", "static", "tap", "tuning", "vlan", "vrf"}
)

// Help texts: only the parts the setup scripts grep for matter, the rest is there to look real.
const (
	// slirp4netns ≥ 0.4.0 lists --netns-type, which is how containerd-rootless.sh tells it is new enough.
	slirpHelp = `Usage: slirp4netns [OPTION]... PID|PATH [TAPNAME]
User-mode networking for unprivileged network namespaces.

-c, --configure          bring up the interface
-e, --exit-fd=FD         specify the FD for terminating slirp4netns
-r, --ready-fd=FD        specify the FD to write to when the network is configured
-m, --mtu=MTU            specify MTU (default=1500, max=65521)
-6, --enable-ipv6        enable IPv6 (experimental)
-a, --api-socket=PATH    specify API socket path
--cidr=CIDR              specify network address CIDR (default=10.0.2.0/24)
--disable-host-loopback  prohibit connecting to 127.0.0.1:* on the host namespace
--netns-type=TYPE        specify network namespace type ([path|pid], default=pid)
--userns-path=PATH       specify user namespace path
--enable-sandbox         create a new mount namespace (and drop all caps except CAP_NET_BIND_SERVICE if running as the root)
--enable-seccomp         enable seccomp to limit syscalls (experimental)
-h, --help               show this help and exit
-v, --version            show version and exit
`
	rootlesskitHelpV1 = `NAME:
   rootlesskit - Linux-native fakeroot using user namespaces

USAGE:
   rootlesskit [global options] command [command options] [arguments...]

OPTIONS:
   --debug                         debug mode (default: false)
   --state-dir value               state directory
   --net value                     network driver [host, pasta(experimental), slirp4netns, vpnkit, lxc-user-nic(experimental)] (default: "host")
   --mtu value                     MTU for non-host network (default: 65520 for pasta and slirp4netns, 1500 for others) (default: 0)
   --copy-up value                 mount a filesystem and copy-up the contents. e.g. "--copy-up=/etc"
   --port-driver value             port driver for non-host network. [none, implicit (for pasta), builtin, slirp4netns] (default: "none")
   --propagation value             mount propagation [rprivate, rslave] (default: "rprivate")
   --help, -h                      show help
   --version, -v                   print the version
`
	// RootlessKit ≥ 2.0 has --detach-netns, which containerd-rootless.sh greps for.
	rootlesskitHelpV2 = `NAME:
   rootlesskit - Linux-native fakeroot using user namespaces

USAGE:
   rootlesskit [global options] command [command options] [arguments...]

OPTIONS:
   --debug                         debug mode (default: false)
   --state-dir value               state directory
   --net value                     network driver [host, pasta(experimental), slirp4netns, vpnkit, lxc-user-nic(experimental)] (default: "host")
   --mtu value                     MTU for non-host network (default: 65520 for pasta and slirp4netns, 1500 for others) (default: 0)
   --detach-netns                  detach network namespaces (default: false)
   --copy-up value                 mount a filesystem and copy-up the contents. e.g. "--copy-up=/etc"
   --port-driver value             port driver for non-host network. [none, implicit (for pasta), builtin, slirp4netns] (default: "none")
   --propagation value             mount propagation [rprivate, rslave] (default: "rprivate")
   --help, -h                      show help
   --version, -v                   print the version
`
)

// NerdctlFull describes one release of the nerdctl-full bundle: the component versions its README
// lists.
type NerdctlFull struct {
	Nerdctl, Containerd, ContainerdCommit, Runc, RootlessKit, Slirp4netns, BuildKit, CNI, Bypass4netns, FuseOverlayfsSnapshotter string
}

// Binaries returns the bundle's programs unpacked into prefix (bin/ and libexec/cni/), as
// `tar -C PREFIX -xzf nerdctl-full-*.tar.gz` leaves them.
func (n NerdctlFull) Binaries(prefix string) ([]Binary, *CNI) {
	bin := prefix + "/bin"
	rkHelp := rootlesskitHelpV1
	if !strings.HasPrefix(n.RootlessKit, "0.") && !strings.HasPrefix(n.RootlessKit, "1.") {
		rkHelp = rootlesskitHelpV2
	}
	bins := []Binary{
		{Name: "nerdctl", Dir: bin, Version: "nerdctl version " + n.Nerdctl},
		{Name: "containerd", Dir: bin, Version: containerdVersion(n.Containerd, n.ContainerdCommit)},
		{Name: "containerd-shim-runc-v2", Dir: bin, Version: containerdShimVersion(n.Containerd, n.ContainerdCommit), VersionFlags: shimVersionFlags(n.Containerd)},
		{Name: "runc", Dir: bin, Version: "runc version " + n.Runc + "\ncommit: v" + n.Runc + "-0-g" + fakeSHA("runc" + n.Runc)[:8] + "\nspec: 1.2.0\ngo: go1.23.4\nlibseccomp: 2.5.5"},
		{Name: "rootlesskit", Dir: bin, Version: "rootlesskit version " + n.RootlessKit, Help: rkHelp},
		{Name: "rootlessctl", Dir: bin, Version: "rootlessctl version " + n.RootlessKit},
		{Name: "buildkitd", Dir: bin, Version: "buildkitd github.com/moby/buildkit v" + n.BuildKit + " " + fakeSHA("buildkit"+n.BuildKit)},
		{Name: "buildctl", Dir: bin, Version: "buildctl github.com/moby/buildkit v" + n.BuildKit + " " + fakeSHA("buildkit"+n.BuildKit)},
		{Name: "containerd-rootless.sh", Dir: bin, Text: RootlessScript(n.Nerdctl)},
		{Name: "containerd-rootless-setuptool.sh", Dir: bin, Text: SetuptoolScript(n.Nerdctl)},
	}
	if n.Slirp4netns != "" {
		bins = append(bins, Slirp4netns(bin, n.Slirp4netns, "4.7.0"))
	}
	if n.Bypass4netns != "" {
		bins = append(bins,
			Binary{Name: "bypass4netns", Dir: bin, Version: "bypass4netns version v" + n.Bypass4netns},
			Binary{Name: "bypass4netnsd", Dir: bin, Version: "bypass4netnsd version v" + n.Bypass4netns})
	}
	if n.FuseOverlayfsSnapshotter != "" {
		bins = append(bins, Binary{Name: "containerd-fuse-overlayfs-grpc", Dir: bin, Version: "containerd-fuse-overlayfs-grpc github.com/containerd/fuse-overlayfs-snapshotter/v2 v" + n.FuseOverlayfsSnapshotter})
	}
	return bins, &CNI{Dir: prefix + "/libexec/cni", Version: "v" + n.CNI, Plugins: cniPlugins1x}
}

func containerdVersion(v, commit string) string {
	mod := "github.com/containerd/containerd"
	if strings.HasPrefix(v, "2.") {
		mod += "/v2"
	}
	return strings.TrimSpace("containerd " + mod + " v" + v + " " + commit)
}

// shimVersionFlags: the runc shim has always answered -v; the containerd 2 shim also takes --version.
func shimVersionFlags(containerd string) []string {
	if major, _ := majorMinor(containerd); major >= 2 {
		return []string{"-v", "--version", "-version"}
	}
	return []string{"-v"}
}

func containerdShimVersion(v, commit string) string {
	return fmt.Sprintf("containerd-shim-runc-v2:\n  Version:  v%s\n  Revision: %s\n  Go version: go1.23.4", v, commit)
}

// Slirp4netns is slirp4netns with its multi-line version banner and a help that lists --netns-type.
func Slirp4netns(dir, version, libslirp string) Binary {
	return Binary{Name: "slirp4netns", Dir: dir, Help: slirpHelp,
		Version: "slirp4netns version " + version + "\ncommit: " + fakeSHA("slirp4netns"+version) + "\nlibslirp: " + libslirp + "\nSLIRP_CONFIG_VERSION_MAX: 4\nlibseccomp: 2.5.4"}
}

// FuseOverlayfs is the fuse-overlayfs program (the overlay filesystem itself, from the distribution).
func FuseOverlayfs(version, libfuse string) Binary {
	return Binary{Name: "fuse-overlayfs", Version: "fuse-overlayfs: version " + version + "\nfusermount3 version: " + libfuse + "\nFUSE library version " + libfuse + "\nusing FUSE kernel interface version 7.31"}
}

// Fusermount3 is fuse3's setuid mount helper.
func Fusermount3(version string) Binary {
	return Binary{Name: "fusermount3", Version: "fusermount3 version: " + version, VersionFlags: []string{"-V", "--version"}, Setuid: true}
}

// Iptables is iptables with its backend, "nf_tables" or "legacy", in the version line.
func Iptables(version, backend string) Binary {
	return Binary{Name: "iptables", Dir: "/usr/sbin", Version: "iptables v" + version + " (" + backend + ")", VersionFlags: []string{"--version", "-V"}}
}

// Nsenter is util-linux's nsenter, which nerdctl re-execs itself through.
func Nsenter(utilLinux string) Binary {
	return Binary{Name: "nsenter", Version: "nsenter from util-linux " + utilLinux, VersionFlags: []string{"--version", "-V"}}
}

// Systemctl answers --version with the first line systemd prints, which carries the package version.
func Systemctl(first string) Binary {
	return Binary{Name: "systemctl", Version: first + "\n+PAM +AUDIT +SELINUX +APPARMOR +IMA +SMACK +SECCOMP +GCRYPT -GNUTLS +OPENSSL +ACL +BLKID +CURL +ELFUTILS +FIDO2 +IDN2 -IDN +IPTC +KMOD +LIBCRYPTSETUP +LIBFDISK +PCRE2 -PWQUALITY +P11KIT +QRENCODE +TPM2 +BZIP2 +LZ4 +XZ +ZLIB +ZSTD -BPF_FRAMEWORK -XKBCOMMON +UTMP +SYSVINIT"}
}

// DBusDaemon is the reference D-Bus daemon; Fedora and RHEL 9 run dbus-broker instead.
func DBusDaemon(version string) Binary {
	return Binary{Name: "dbus-daemon", Version: "D-Bus Message Bus Daemon " + version + "\nCopyright (C) 2002, 2003 Red Hat, Inc., CodeFactory AB, and others\nThis is free software; see the source for copying conditions.\nThere is NO warranty; not even for MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE."}
}

// Iperf3 prints its version for -v as well as --version.
func Iperf3(version, cjson string) Binary {
	return Binary{Name: "iperf3", Version: "iperf " + version + " (cJSON " + cjson + ")\nLinux localhost 6.1.0 #1 SMP x86_64\nOptional features available: CPU affinity setting, IPv6 flow label, TCP congestion algorithm setting, sendfile / zerocopy, socket pacing, authentication, bind to device, support IPv4 don't fragment", VersionFlags: []string{"-v", "--version"}}
}

// fakeSHA makes a stable 40-hex-digit commit id from a seed, so outputs look like real builds and
// the profiles stay byte-identical between generations.
func fakeSHA(seed string) string {
	var h uint64 = 14695981039346656037
	out := make([]byte, 0, 40)
	for len(out) < 40 {
		for i := 0; i < len(seed); i++ {
			h ^= uint64(seed[i])
			h *= 1099511628211
		}
		h ^= uint64(len(out))
		h *= 1099511628211
		out = fmt.Appendf(out, "%016x", h)
	}
	return string(out[:40])
}

// RootlessScript is a stand-in for the containerd-rootless.sh a nerdctl release ships. It is read,
// never run: it keeps the lines that tell releases apart (the detach-netns switch of v2.0, the
// gvisor-tap-vsock fallback of v2.3, the /run/nri removal after v2.3.5) and refuses to run.
func RootlessScript(nerdctlVersion string) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, `#!/bin/sh
# containerd-rootless.sh: run containerd as an unprivileged user (from nerdctl %s).
# probetest stand-in: only the lines that differ between releases are kept; it refuses to run.
echo "containerd-rootless.sh: probetest stand-in, not runnable" >&2
exit 1
# Requires: newuidmap, newgidmap, /etc/subuid and /etc/subgid, RootlessKit.
: "${CONTAINERD_ROOTLESS_ROOTLESSKIT_STATE_DIR:=$XDG_RUNTIME_DIR/containerd-rootless}"
: "${CONTAINERD_ROOTLESS_ROOTLESSKIT_NET:=}"
: "${CONTAINERD_ROOTLESS_ROOTLESSKIT_MTU:=}"
: "${CONTAINERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER:=builtin}"
: "${CONTAINERD_ROOTLESS_ROOTLESSKIT_SLIRP4NETNS_SANDBOX:=auto}"
: "${CONTAINERD_ROOTLESS_ROOTLESSKIT_SLIRP4NETNS_SECCOMP:=auto}"
`, nerdctlVersion)
	major, minor := majorMinor(nerdctlVersion)
	if major >= 2 {
		sb.WriteString(`: "${CONTAINERD_ROOTLESS_ROOTLESSKIT_DETACH_NETNS:=auto}"
# auto: pass --detach-netns when rootlesskit --help lists it (RootlessKit >= 2.0)
`)
	}
	if major > 2 || major == 2 && minor >= 3 {
		sb.WriteString(`# no slirp4netns and no vpnkit: net=gvisor-tap-vsock (RootlessKit >= 3.0)
`)
	} else {
		sb.WriteString(`# no slirp4netns and no vpnkit: "Either slirp4netns (>= v0.4.0) or vpnkit needs to be installed"
`)
	}
	sb.WriteString(`# child: remove the copied-up symlinks /run/containerd /run/xtables.lock /var/lib/containerd /var/lib/cni /etc/containerd
`)
	return sb.String()
}

// SetuptoolScript is a stand-in for containerd-rootless-setuptool.sh; like RootlessScript it is read,
// never run.
func SetuptoolScript(nerdctlVersion string) string {
	return fmt.Sprintf(`#!/bin/sh
# containerd-rootless-setuptool.sh: install or uninstall rootless containerd (from nerdctl %s).
# probetest stand-in: it refuses to run.
echo "containerd-rootless-setuptool.sh: probetest stand-in, not runnable" >&2
exit 1
# commands: check install uninstall install-buildkit install-buildkit-containerd install-bypass4netnsd
#           install-fuse-overlayfs install-stargz install-ipfs nsenter (and their uninstall-* forms)
`, nerdctlVersion)
}

func majorMinor(v string) (int, int) {
	var major, minor int
	fmt.Sscanf(strings.TrimPrefix(v, "v"), "%d.%d", &major, &minor)
	return major, minor
}

// UbuntuRootlesskitProfile is the AppArmor profile Ubuntu's apparmor package (4.0, Ubuntu 24.04)
// installs as /etc/apparmor.d/rootlesskit. It covers /usr/bin/rootlesskit only, which is why a
// rootlesskit unpacked into /usr/local/bin still meets apparmor_restrict_unprivileged_userns.
const UbuntuRootlesskitProfile = `# This profile allows everything and only exists to give the
# application a name instead of having the label "unconfined"

abi <abi/4.0>,
include <tunables/global>

profile rootlesskit /usr/bin/rootlesskit flags=(unconfined) {
  userns,

  # Site-specific additions and overrides. See local/README for details.
  include if exists <local/rootlesskit>
}
`

// ContainerdUnit is the user unit containerd-rootless-setuptool.sh install writes, for hosts where an
// install was attempted.
func ContainerdUnit(bin string) string {
	return fmt.Sprintf(`[Unit]
Description=containerd (Rootless)
Requires=dbus.socket

[Service]
Environment=PATH=%s:/sbin:/usr/sbin:%s
ExecStart=%s/containerd-rootless.sh
ExecReload=/bin/kill -s HUP $MAINPID
TimeoutSec=0
RestartSec=2
Restart=always
StartLimitBurst=3
StartLimitInterval=60s
LimitNOFILE=infinity
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
Delegate=yes
Type=simple
KillMode=mixed

[Install]
WantedBy=default.target
`, bin, "/usr/local/bin:/usr/bin:/bin", bin)
}

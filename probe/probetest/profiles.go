package probetest

import "sort"

// Profiles returns the hosts shipped as profiles in assets/hosts, by name. Each stands for a machine
// people really run rootless containerd on, in the state a user asking for help typically has it:
// the distribution's defaults plus what they installed. Distribution facts follow rootless.md §4:
// which releases default to cgroup v2, what user@.service delegates, and how newuidmap gets its
// privilege (file caps from Fedora's shadow-utils, setuid from Debian's uidmap).
func Profiles() map[string]Host {
	return map[string]Host{
		"fedora-34-selinux":         fedora34(),
		"fedora-41":                 fedora41(),
		"rhel-8":                    rhel8(),
		"rhel-9":                    rhel9(),
		"ubuntu-22.04":              ubuntu2204(),
		"ubuntu-24.04":              ubuntu2404(),
		"debian-11":                 debian11(),
		"debian-12":                 debian12(),
		"old-kernel-no-fuse-userns": centos7(),
		"no-systemd":                alpineOpenRC(),
	}
}

// Recorded live results. A profile recorded on a real host carries the live tests' outcomes, which a
// --root probe cannot produce, so the specs record them where the outcome is certain:
//   - passed on fedora-41, rhel-9 and debian-12: kernels past 5.13, where overlayfs mounts in a user
//     namespace on any distribution;
//   - on rhel-8, overlay failed with EPERM at the mount (4.18 < 5.11) and fuse-overlayfs passed (FUSE in
//     user namespaces since 4.18; it is what rootless podman uses there);
//   - on the CentOS 7 host both failed before mounting: user.max_user_namespaces=0 makes the clone of
//     the user namespace fail with ENOSPC, which the live test reports as
//     "create user namespace: no space left on device" (not the "operation not permitted" of a
//     kernel that creates the namespace but refuses the mount, as on rhel-8).
//
// They stay skipped, so the replay goes through the kernel rules, where the outcome is not certain or
// is not the snapshotter's to judge:
//   - fedora-34-selinux: 5.11 with SELinux, where whether the test's mount, or only later use, fails is
//     not documented;
//   - ubuntu-24.04: with apparmor_restrict_unprivileged_userns=1 the test binary (unconfined, without a
//     profile of its own) gets a user namespace without capabilities, so the test would fail at its
//     first mount for AppArmor's sake, not overlayfs's; recording that would rule overlayfs out on a
//     host where it works once rootlesskit has its profile;
//   - ubuntu-22.04, debian-11 and no-systemd: known from the kernel alone, left to the rules so that
//     the replays exercise them (Ubuntu's patched kernels, Debian's pre-5.11 kernel, 6.6 without SELinux).

// ProfileNames lists Profiles' names in order.
func ProfileNames() []string {
	return sortedKeys(Profiles())
}

// Machines the profiles run on.
var (
	kvmGuest    = DMI{SysVendor: "QEMU", ProductName: "Standard PC (Q35 + ICH9, 2009)", Clocksources: "kvm-clock tsc acpi_pm"}
	vmwareGuest = DMI{SysVendor: "VMware, Inc.", ProductName: "VMware Virtual Platform", Clocksources: "tsc hpet acpi_pm"}
	laptop      = DMI{SysVendor: "LENOVO", ProductName: "21CB0077US", Clocksources: "tsc hpet acpi_pm"}
)

const (
	fedoraPath = "/home/alice/.local/bin:/home/alice/bin:/usr/local/bin:/usr/bin:/usr/local/sbin:/usr/sbin"
	debianPath = "/usr/local/bin:/usr/bin:/bin:/usr/local/games:/usr/games"
	ubuntuPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/games:/usr/local/games:/snap/bin"
)

// withBins appends binary lists.
func withBins(lists ...[]Binary) []Binary {
	var out []Binary
	for _, l := range lists {
		out = append(out, l...)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// fedora34 is Fedora 34 Server with SELinux enforcing on 5.11: overlayfs works in a user namespace
// from 5.11, but with SELinux only from 5.13 (rootless.md §4), so this is the host fuse-overlayfs is
// for. The user followed nerdctl's rootless docs of the day: the minimal nerdctl tarball in
// /usr/local/bin, Fedora's containerd, rootlesskit and fuse-overlayfs, and the fuse-overlayfs
// snapshotter configured.
func fedora34() Host {
	u := Alice("/bin/bash")
	return Host{
		OSRelease: OSRelease{ID: "fedora", Name: "Fedora", Version: "34 (Server Edition)", VersionID: "34",
			PrettyName: "Fedora 34 (Server Edition)", Extra: []string{"VARIANT_ID=server", "PLATFORM_ID=\"platform:f34\""}},
		Kernel:                  "5.11.12-300.fc34.x86_64",
		KernelBuild:             "#1 SMP Wed Apr 7 14:29:45 UTC 2021",
		Compiler:                "(mockbuild@bkernel01.iad2.fedoraproject.org) (gcc (GCC) 11.0.1 20210324 (Red Hat 11.0.1-0), GNU ld version 2.35.2-1.fc34)",
		Arch:                    "x86_64",
		DMI:                     kvmGuest,
		SELinux:                 "enforcing",
		SeccompActions:          seccompModern,
		MaxUserNamespaces:       15231,
		UnprivilegedUsernsClone: Absent,
		SubUID:                  SubIDs(u, 100000),
		SubGID:                  SubIDs(u, 100000),
		Cgroup:                  Cgroup{Version: "v2", Controllers: cgroupV2Controllers511, Delegated: delegatedBefore252},
		Systemd:                 &Systemd{UserManager: true, UserBus: true},
		User:                    u,
		RuntimeDir:              true,
		Env:                     SessionEnv(u, fedoraPath, true, true, "CONTAINERD_SNAPSHOTTER=fuse-overlayfs"),
		Fuse:                    FuseWorldRW,
		Tun:                     TunWorldRW,
		UnprivilegedPortStart:   1024,
		Filesystems:             modernFilesystems,
		CNI:                     &CNI{Dir: "/usr/libexec/cni", Version: "v0.9.1", Plugins: cniPlugins09},
		Binaries: withBins(UIDMapCaps(), []Binary{
			{Name: "nerdctl", Dir: "/usr/local/bin", Version: "nerdctl version 0.8.3"},
			{Name: "containerd-rootless.sh", Dir: "/usr/local/bin", Text: RootlessScript("0.8.3")},
			{Name: "containerd-rootless-setuptool.sh", Dir: "/usr/local/bin", Text: SetuptoolScript("0.8.3")},
			{Name: "containerd-fuse-overlayfs-grpc", Dir: "/usr/local/bin", Version: "containerd-fuse-overlayfs-grpc github.com/containerd/fuse-overlayfs-snapshotter v1.0.2"},
			{Name: "containerd", Version: containerdVersion("1.5.0", "")},
			{Name: "rootlesskit", Version: "rootlesskit version 0.14.2", Help: rootlesskitHelpV1},
			{Name: "crun", Version: "crun version 0.19.1\ncommit: 1535fedf0b83fb898d449f9680000f729ba719f5\nspec: 1.0.0\n+SYSTEMD +SELINUX +APPARMOR +CAP +SECCOMP +EBPF +CRIU +YAJL"},
			Slirp4netns("/usr/bin", "1.1.9", "4.4.0"),
			FuseOverlayfs("1.5", "3.10.2"),
			Fusermount3("3.10.2"),
			Iptables("1.8.7", "nf_tables"),
			Nsenter("2.36.2"),
			Systemctl("systemd 248 (v248-2.fc34)"),
		}),
		Files: map[string]File{
			"/home/alice/.config/containerd/config.toml": {Text: `version = 2

[proxy_plugins]
  [proxy_plugins."fuse-overlayfs"]
    type = "snapshot"
    address = "/run/user/1000/containerd-fuse-overlayfs.sock"
`},
		},
	}
}

// fedora41 is Fedora 41 Workstation on a laptop: SELinux enforcing on 6.11, so overlayfs works in a
// user namespace. systemd 256 delegates cpu, memory and pids. Fedora's login.defs starts sub-IDs at
// 524288, clear of systemd-homed's range. nerdctl-full 2.0 is unpacked in /usr/local.
func fedora41() Host {
	u := Alice("/bin/bash")
	full := NerdctlFull{Nerdctl: "2.0.3", Containerd: "2.0.2", ContainerdCommit: "c507a0257ea6462fbd6f5ba4f5c74facb04021f4",
		Runc: "1.2.4", RootlessKit: "2.3.2", Slirp4netns: "1.3.1", BuildKit: "0.19.0", CNI: "1.6.2", Bypass4netns: "0.4.2", FuseOverlayfsSnapshotter: "2.1.1"}
	fullBins, cni := full.Binaries("/usr/local")
	return Host{
		OSRelease: OSRelease{ID: "fedora", Name: "Fedora Linux", Version: "41 (Workstation Edition)", VersionID: "41",
			PrettyName: "Fedora Linux 41 (Workstation Edition)", Extra: []string{"VARIANT_ID=workstation", "PLATFORM_ID=\"platform:f41\""}},
		Kernel:                  "6.11.4-301.fc41.x86_64",
		KernelBuild:             "#1 SMP PREEMPT_DYNAMIC Sun Oct 20 15:02:33 UTC 2024",
		Compiler:                "(mockbuild@a0d8d5e1e4a54c0a9ac1e7a3b6f1b0b0) (gcc (GCC) 14.2.1 20240912 (Red Hat 14.2.1-3), GNU ld version 2.43.1-2.fc41)",
		Arch:                    "x86_64",
		DMI:                     laptop,
		SELinux:                 "enforcing",
		SeccompActions:          seccompModern,
		MaxUserNamespaces:       127264,
		UnprivilegedUsernsClone: Absent,
		SubUID:                  SubIDs(u, 524288),
		SubGID:                  SubIDs(u, 524288),
		Cgroup:                  Cgroup{Version: "v2", Controllers: cgroupV2Controllers, Delegated: delegatedSince252},
		Systemd:                 &Systemd{UserManager: true, UserBus: true},
		User:                    u,
		RuntimeDir:              true,
		Env:                     SessionEnv(u, fedoraPath, true, true),
		Fuse:                    FuseWorldRW,
		Tun:                     TunWorldRW,
		UnprivilegedPortStart:   1024,
		Filesystems:             modernFilesystems,
		CNI:                     cni,
		Recorded:                Recorded{OverlayUserns: &LiveResult{Status: "passed", Note: "kernel 6.11 is past 5.13, from which overlayfs mounts in a user namespace with SELinux enforcing"}},
		Binaries: withBins(UIDMapCaps(), fullBins, []Binary{
			FuseOverlayfs("1.13-dev", "3.16.2"),
			Fusermount3("3.16.2"),
			{Name: "pasta", Version: "pasta 0^20241030.gee7d0b6-1.fc41\nCopyright Red Hat\nGNU General Public License, version 2 or later\n  <https://www.gnu.org/licenses/old-licenses/gpl-2.0.html>\nThis is free software: you are free to change and redistribute it.\nThere is NO WARRANTY, to the extent permitted by law."},
			Iptables("1.8.10", "nf_tables"),
			Nsenter("2.40.2"),
			Systemctl("systemd 256 (256.7-1.fc41)"),
		}),
	}
}

// rhel8 is RHEL 8.9 on VMware: kernel 4.18, SELinux enforcing, cgroup v1 (RHEL 8's default). FUSE
// works in a user namespace from 4.18, overlayfs does not (it needs 5.11), which is why podman on
// RHEL 8 uses fuse-overlayfs. nerdctl-full 1.7 is unpacked in /usr/local.
func rhel8() Host {
	u := Alice("/bin/bash")
	full := NerdctlFull{Nerdctl: "1.7.6", Containerd: "1.7.16", ContainerdCommit: "83031836b2cf55637d7abf847b17134c51b38e53",
		Runc: "1.1.12", RootlessKit: "2.1.0", Slirp4netns: "1.3.0", BuildKit: "0.13.2", CNI: "1.4.1", Bypass4netns: "0.4.1", FuseOverlayfsSnapshotter: "1.0.8"}
	fullBins, cni := full.Binaries("/usr/local")
	return Host{
		OSRelease: OSRelease{ID: "rhel", IDLike: "fedora", Name: "Red Hat Enterprise Linux", Version: "8.9 (Ootpa)", VersionID: "8.9",
			PrettyName: "Red Hat Enterprise Linux 8.9 (Ootpa)", Extra: []string{"PLATFORM_ID=\"platform:el8\""}},
		Kernel:                  "4.18.0-513.5.1.el8_9.x86_64",
		KernelBuild:             "#1 SMP Fri Sep 29 05:21:10 EDT 2023",
		Compiler:                "(mockbuild@x86-vm-08.build.eng.bos.redhat.com) (gcc version 8.5.0 20210514 (Red Hat 8.5.0-20) (GCC))",
		Arch:                    "x86_64",
		DMI:                     vmwareGuest,
		SELinux:                 "enforcing",
		SeccompActions:          seccomp418,
		MaxUserNamespaces:       31207,
		UnprivilegedUsernsClone: Absent,
		SubUID:                  SubIDs(u, 100000),
		SubGID:                  SubIDs(u, 100000),
		Cgroup:                  Cgroup{Version: "v1", Controllers: cgroupV1Controllers},
		Systemd:                 &Systemd{UserManager: true, UserBus: true},
		User:                    u,
		RuntimeDir:              true,
		Env:                     SessionEnv(u, fedoraPath, true, true),
		Fuse:                    FuseWorldRW,
		Tun:                     TunWorldRW,
		UnprivilegedPortStart:   1024,
		Filesystems:             modernFilesystems,
		CNI:                     cni,
		Recorded: Recorded{
			OverlayUserns: &LiveResult{Status: "failed", Detail: "mount overlay: operation not permitted", Note: "kernel 4.18 predates overlayfs in user namespaces (5.11)"},
			FuseOverlayfs: &LiveResult{Status: "passed", Note: "FUSE mounts in user namespaces since 4.18; rootless podman on RHEL 8 uses fuse-overlayfs"},
		},
		Binaries: withBins(UIDMapCaps(), fullBins, []Binary{
			FuseOverlayfs("1.12", "3.3.0"),
			Fusermount3("3.3.0"),
			Iptables("1.8.5", "nf_tables"),
			DBusDaemon("1.12.8"),
			Nsenter("2.32.1"),
			Systemctl("systemd 239 (239-78.el8)"),
		}),
	}
}

// rhel9 is RHEL 9.3 in a KVM guest: kernel 5.14 with SELinux, past the 5.13 that overlayfs in a user
// namespace needs under SELinux, cgroup v2 (RHEL 9's default), systemd 252 delegating cpu.
// The user unpacked nerdctl-full into ~/.local, which puts the CNI plugins in ~/.local/libexec/cni,
// one of nerdctl's candidates.
func rhel9() Host {
	u := Alice("/bin/bash")
	full := NerdctlFull{Nerdctl: "2.0.2", Containerd: "2.0.1", ContainerdCommit: "88aa2f531d6c2922003cc7929e51daf1c14caa0a",
		Runc: "1.2.3", RootlessKit: "2.3.1", Slirp4netns: "1.3.1", BuildKit: "0.18.1", CNI: "1.6.1", Bypass4netns: "0.4.2", FuseOverlayfsSnapshotter: "2.1.0"}
	fullBins, cni := full.Binaries("/home/alice/.local")
	return Host{
		OSRelease: OSRelease{ID: "rhel", IDLike: "fedora", Name: "Red Hat Enterprise Linux", Version: "9.3 (Plow)", VersionID: "9.3",
			PrettyName: "Red Hat Enterprise Linux 9.3 (Plow)", Extra: []string{"PLATFORM_ID=\"platform:el9\""}},
		Kernel:                  "5.14.0-362.8.1.el9_3.x86_64",
		KernelBuild:             "#1 SMP PREEMPT_DYNAMIC Tue Oct 3 11:12:36 EDT 2023",
		Compiler:                "(mockbuild@x86-vm-07.build.eng.bos.redhat.com) (gcc (GCC) 11.4.1 20230605 (Red Hat 11.4.1-2), GNU ld version 2.35.2-42.el9)",
		Arch:                    "x86_64",
		DMI:                     kvmGuest,
		SELinux:                 "enforcing",
		SeccompActions:          seccompModern,
		MaxUserNamespaces:       62844,
		UnprivilegedUsernsClone: Absent,
		SubUID:                  SubIDs(u, 100000),
		SubGID:                  SubIDs(u, 100000),
		Cgroup:                  Cgroup{Version: "v2", Controllers: cgroupV2Controllers, Delegated: delegatedSince252},
		Systemd:                 &Systemd{UserManager: true, UserBus: true, Linger: true},
		User:                    u,
		RuntimeDir:              true,
		Env:                     SessionEnv(u, fedoraPath, true, true),
		Fuse:                    FuseWorldRW,
		Tun:                     TunWorldRW,
		UnprivilegedPortStart:   1024,
		Filesystems:             modernFilesystems,
		CNI:                     cni,
		Recorded:                Recorded{OverlayUserns: &LiveResult{Status: "passed", Note: "kernel 5.14 is past 5.13; rootless podman on RHEL 9 uses native overlay"}},
		Binaries: withBins(UIDMapCaps(), fullBins, []Binary{
			FuseOverlayfs("1.12", "3.10.2"),
			Fusermount3("3.10.2"),
			Iptables("1.8.8", "nf_tables"),
			Nsenter("2.37.4"),
			Systemctl("systemd 252 (252-18.el9)"),
		}),
	}
}

// ubuntu2204 is Ubuntu 22.04 LTS in a cloud VM: 5.15, AppArmor without the userns restriction (that
// sysctl arrived in 23.10), cgroup v2 with systemd 249's default delegation (memory, pids). Ubuntu's
// containerd, rootlesskit, slirp4netns and uidmap, and the minimal nerdctl tarball in /usr/local/bin.
func ubuntu2204() Host {
	u := Alice("/bin/bash")
	return Host{
		OSRelease: OSRelease{ID: "ubuntu", IDLike: "debian", Name: "Ubuntu", Version: "22.04.3 LTS (Jammy Jellyfish)", VersionID: "22.04",
			VersionCodename: "jammy", PrettyName: "Ubuntu 22.04.3 LTS", Extra: []string{"UBUNTU_CODENAME=jammy"}},
		Kernel:                  "5.15.0-91-generic",
		KernelBuild:             "#101-Ubuntu SMP Tue Nov 14 13:30:08 UTC 2023",
		Compiler:                "(buildd@lcy02-amd64-045) (gcc (Ubuntu 11.4.0-1ubuntu1~22.04) 11.4.0, GNU ld (GNU Binutils for Ubuntu) 2.38)",
		Arch:                    "x86_64",
		DMI:                     kvmGuest,
		AppArmor:                &AppArmor{RestrictUnprivilegedUserns: Absent},
		SeccompActions:          seccompModern,
		MaxUserNamespaces:       63422,
		UnprivilegedUsernsClone: 1,
		SubUID:                  SubIDs(u, 100000),
		SubGID:                  SubIDs(u, 100000),
		Cgroup:                  Cgroup{Version: "v2", Controllers: cgroupV2Controllers, Delegated: delegatedBefore252},
		Systemd:                 &Systemd{UserManager: true, UserBus: true},
		User:                    u,
		RuntimeDir:              true,
		Env:                     SessionEnv(u, ubuntuPath, true, true),
		Fuse:                    FuseWorldRW,
		Tun:                     TunWorldRW,
		UnprivilegedPortStart:   1024,
		Filesystems:             modernFilesystems,
		CNI:                     &CNI{Dir: "/usr/lib/cni", Version: "v0.9.1", Plugins: cniPlugins09},
		Binaries: withBins(UIDMapSetuid("/usr/bin"), []Binary{
			{Name: "nerdctl", Dir: "/usr/local/bin", Version: "nerdctl version 1.7.7"},
			{Name: "containerd-rootless.sh", Dir: "/usr/local/bin", Text: RootlessScript("1.7.7")},
			{Name: "containerd-rootless-setuptool.sh", Dir: "/usr/local/bin", Text: SetuptoolScript("1.7.7")},
			{Name: "containerd", Version: containerdVersion("1.7.2", "")},
			{Name: "rootlesskit", Version: "rootlesskit version 0.14.6", Help: rootlesskitHelpV1},
			{Name: "runc", Version: "runc version 1.1.7-0ubuntu1~22.04.2\nspec: 1.0.2-dev\ngo: go1.18.1\nlibseccomp: 2.5.3"},
			Slirp4netns("/usr/bin", "1.0.1", "4.6.1"),
			FuseOverlayfs("1.7.1", "3.10.5"),
			Fusermount3("3.10.5"),
			Iptables("1.8.7", "nf_tables"),
			DBusDaemon("1.12.20"),
			Nsenter("2.37.2"),
			Iperf3("3.9", "1.7.13"),
			Systemctl("systemd 249 (249.11-0ubuntu3.11)"),
		}),
	}
}

// ubuntu2404 is Ubuntu 24.04 LTS: 6.8 with apparmor_restrict_unprivileged_userns=1. Ubuntu's apparmor
// package ships a rootlesskit profile, but for /usr/bin/rootlesskit only; this user unpacked
// nerdctl-full in /usr/local, so the restriction bites (rootless.md §5 #1, nerdctl#3063) and the
// setuptool's install left a unit behind whose service never started.
func ubuntu2404() Host {
	u := Alice("/bin/bash")
	full := NerdctlFull{Nerdctl: "2.0.4", Containerd: "2.0.4", ContainerdCommit: "1a43cb6a1035441f9aca8f5666a9b3ef9e70ab20",
		Runc: "1.2.6", RootlessKit: "2.3.4", Slirp4netns: "1.3.2", BuildKit: "0.20.1", CNI: "1.6.2", Bypass4netns: "0.4.2", FuseOverlayfsSnapshotter: "2.1.1"}
	fullBins, cni := full.Binaries("/usr/local")
	return Host{
		OSRelease: OSRelease{ID: "ubuntu", IDLike: "debian", Name: "Ubuntu", Version: "24.04 LTS (Noble Numbat)", VersionID: "24.04",
			VersionCodename: "noble", PrettyName: "Ubuntu 24.04 LTS", Extra: []string{"UBUNTU_CODENAME=noble"}},
		Kernel:      "6.8.0-31-generic",
		KernelBuild: "#31-Ubuntu SMP PREEMPT_DYNAMIC Sat Apr 20 00:40:06 UTC 2024",
		Compiler:    "(buildd@lcy02-amd64-080) (x86_64-linux-gnu-gcc-13 (Ubuntu 13.2.0-23ubuntu4) 13.2.0, GNU ld (GNU Binutils for Ubuntu) 2.42)",
		Arch:        "x86_64",
		DMI:         kvmGuest,
		AppArmor: &AppArmor{RestrictUnprivilegedUserns: 1, Profiles: map[string]string{
			"rootlesskit": UbuntuRootlesskitProfile,
		}},
		SeccompActions:          seccompModern,
		MaxUserNamespaces:       63250,
		UnprivilegedUsernsClone: 1,
		SubUID:                  SubIDs(u, 100000),
		SubGID:                  SubIDs(u, 100000),
		Cgroup:                  Cgroup{Version: "v2", Controllers: cgroupV2Controllers, Delegated: delegatedSince252},
		Systemd:                 &Systemd{UserManager: true, UserBus: true},
		User:                    u,
		RuntimeDir:              true,
		Env:                     SessionEnv(u, ubuntuPath, true, true),
		Fuse:                    FuseWorldRW,
		Tun:                     TunWorldRW,
		UnprivilegedPortStart:   1024,
		Filesystems:             modernFilesystems,
		CNI:                     cni,
		Binaries: withBins(UIDMapSetuid("/usr/bin"), fullBins, []Binary{
			Iptables("1.8.10", "nf_tables"),
			DBusDaemon("1.14.10"),
			Nsenter("2.39.3"),
			Systemctl("systemd 255 (255.4-1ubuntu8)"),
		}),
		Files: map[string]File{
			"/home/alice/.config/systemd/user/containerd.service": {Text: ContainerdUnit("/usr/local/bin")},
		},
	}
}

// debian11 is Debian 11 (bullseye) in a KVM guest: 5.10, below the 5.11 that overlayfs in a user
// namespace needs. Debian's kernel carries the permit_mounts_in_userns module parameter, off by
// default and called broken (moby#42302), so fuse-overlayfs it is. cgroup v2 (Debian 11's default),
// systemd 247 delegating memory and pids. Debian's packages plus the minimal nerdctl tarball in ~/bin.
func debian11() Host {
	u := Alice("/bin/bash")
	return Host{
		OSRelease: OSRelease{ID: "debian", Name: "Debian GNU/Linux", Version: "11 (bullseye)", VersionID: "11",
			VersionCodename: "bullseye", PrettyName: "Debian GNU/Linux 11 (bullseye)"},
		Kernel:                  "5.10.0-28-amd64",
		KernelBuild:             "#1 SMP Debian 5.10.209-2 (2024-01-31)",
		Compiler:                "(debian-kernel@lists.debian.org) (gcc-10 (Debian 10.2.1-6) 10.2.1 20210110, GNU ld (GNU Binutils for Debian) 2.35.2)",
		Arch:                    "x86_64",
		DMI:                     kvmGuest,
		AppArmor:                &AppArmor{RestrictUnprivilegedUserns: Absent},
		SeccompActions:          seccompModern,
		MaxUserNamespaces:       15650,
		UnprivilegedUsernsClone: 1,
		SubUID:                  SubIDs(u, 100000),
		SubGID:                  SubIDs(u, 100000),
		Cgroup:                  Cgroup{Version: "v2", Controllers: cgroupV2Controllers511, Delegated: delegatedBefore252},
		Systemd:                 &Systemd{UserManager: true, UserBus: true},
		User:                    u,
		RuntimeDir:              true,
		Env:                     SessionEnv(u, debianPath, true, true),
		Fuse:                    FuseWorldRW,
		Tun:                     TunWorldRW,
		UnprivilegedPortStart:   1024,
		Filesystems:             modernFilesystems,
		CNI:                     &CNI{Dir: "/usr/lib/cni", Version: "v0.9.0", Plugins: cniPlugins09},
		Binaries: withBins(UIDMapSetuid("/usr/bin"), []Binary{
			{Name: "nerdctl", Dir: "/home/alice/bin", Version: "nerdctl version 1.7.6"},
			{Name: "containerd-rootless.sh", Dir: "/home/alice/bin", Text: RootlessScript("1.7.6")},
			{Name: "containerd-rootless-setuptool.sh", Dir: "/home/alice/bin", Text: SetuptoolScript("1.7.6")},
			{Name: "containerd", Version: "containerd github.com/containerd/containerd 1.4.13~ds1 1.4.13~ds1-1~deb11u4"},
			{Name: "rootlesskit", Version: "rootlesskit version 0.14.2", Help: rootlesskitHelpV1},
			{Name: "runc", Dir: "/usr/sbin", Version: "runc version 1.0.0~rc93+ds1\nspec: 1.0.2-dev\ngo: go1.15.15\nlibseccomp: 2.5.1"},
			Slirp4netns("/usr/bin", "1.0.1", "4.4.0"),
			FuseOverlayfs("1.4", "3.10.3"),
			Fusermount3("3.10.3"),
			Iptables("1.8.7", "nf_tables"),
			DBusDaemon("1.12.28"),
			Nsenter("2.36.1"),
			Systemctl("systemd 247 (247.3-7+deb11u4)"),
		}),
		Files: map[string]File{
			"/sys/module/overlay/parameters/permit_mounts_in_userns": {Text: "N\n", Mode: 0o644},
		},
	}
}

// debian12 is Debian 12 (bookworm): 6.1, cgroup v2, systemd 252 delegating cpu, linger on. It has the
// stack this project tests against (test-lab.md): Debian's uidmap, slirp4netns, fuse-overlayfs, runc,
// iptables and iperf3, with containerd 2.4, RootlessKit 2.3.6, nerdctl 2.0.5 and CNI plugins 1.10 built
// from source into /usr/local/bin and /opt/cni/bin.
func debian12() Host {
	u := Alice("/bin/bash")
	return Host{
		OSRelease: OSRelease{ID: "debian", Name: "Debian GNU/Linux", Version: "12 (bookworm)", VersionID: "12",
			VersionCodename: "bookworm", PrettyName: "Debian GNU/Linux 12 (bookworm)"},
		Kernel:                  "6.1.0-18-amd64",
		KernelBuild:             "#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)",
		Compiler:                "(debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40)",
		Arch:                    "x86_64",
		DMI:                     kvmGuest,
		AppArmor:                &AppArmor{RestrictUnprivilegedUserns: Absent},
		SeccompActions:          seccompModern,
		MaxUserNamespaces:       31546,
		UnprivilegedUsernsClone: 1,
		SubUID:                  SubIDs(u, 100000),
		SubGID:                  SubIDs(u, 100000),
		Cgroup:                  Cgroup{Version: "v2", Controllers: cgroupV2Controllers, Delegated: delegatedSince252},
		Systemd:                 &Systemd{UserManager: true, UserBus: true, Linger: true},
		User:                    u,
		RuntimeDir:              true,
		Env:                     SessionEnv(u, debianPath, true, true),
		Fuse:                    FuseWorldRW,
		Tun:                     TunWorldRW,
		UnprivilegedPortStart:   1024,
		Filesystems:             modernFilesystems,
		CNI:                     &CNI{Dir: "/opt/cni/bin", Version: "v1.10.0", Plugins: cniPlugins1x},
		Recorded:                Recorded{OverlayUserns: &LiveResult{Status: "passed", Note: "kernel 6.1 is past 5.11 and there is no SELinux"}},
		Binaries: withBins(UIDMapSetuid("/usr/bin"), []Binary{
			{Name: "containerd", Dir: "/usr/local/bin", Version: containerdVersion("2.4.2", "a1c05cbfd1c3fd36b0541f0e2b1f6b8e9c3c1f5e")},
			{Name: "containerd-shim-runc-v2", Dir: "/usr/local/bin", Version: containerdShimVersion("2.4.2", "a1c05cbfd1c3fd36b0541f0e2b1f6b8e9c3c1f5e"), VersionFlags: shimVersionFlags("2.4.2")},
			{Name: "nerdctl", Dir: "/usr/local/bin", Version: "nerdctl version 2.0.5"},
			{Name: "containerd-rootless.sh", Dir: "/usr/local/bin", Text: RootlessScript("2.0.5")},
			{Name: "containerd-rootless-setuptool.sh", Dir: "/usr/local/bin", Text: SetuptoolScript("2.0.5")},
			{Name: "rootlesskit", Dir: "/usr/local/bin", Version: "rootlesskit version 2.3.6", Help: rootlesskitHelpV2},
			{Name: "rootlessctl", Dir: "/usr/local/bin", Version: "rootlessctl version 2.3.6"},
			{Name: "bypass4netns", Dir: "/usr/local/bin", Version: "bypass4netns version v0.4.2"},
			{Name: "bypass4netnsd", Dir: "/usr/local/bin", Version: "bypass4netnsd version v0.4.2"},
			{Name: "runc", Dir: "/usr/sbin", Version: "runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1+deb12u1\nspec: 1.0.2-dev\ngo: go1.19.8\nlibseccomp: 2.5.4"},
			Slirp4netns("/usr/bin", "1.2.0", "4.7.0"),
			FuseOverlayfs("1.10", "3.14.0"),
			Fusermount3("3.14.0"),
			Iptables("1.8.9", "nf_tables"),
			DBusDaemon("1.14.10"),
			Nsenter("2.38.1"),
			Iperf3("3.12", "1.7.15"),
			Systemctl("systemd 252 (252.39-1~deb12u1)"),
		}),
		Files: map[string]File{
			"/home/alice/.config/nerdctl/nerdctl.toml": {Text: "# written by hand, see docs/config.md\nsnapshotter = \"overlayfs\"\n"},
		},
	}
}

// centos7 is CentOS 7.9: kernel 3.10, where user namespaces exist but user.max_user_namespaces is 0
// by default, FUSE in a user namespace is missing (it needs 4.18) and so is overlayfs (5.11): only the
// native snapshotter is left, after raising the sysctl. cgroup v1, systemd 219, whose `systemctl
// --user` fails for lack of a user bus (nerdctl#686). The user unpacked an old nerdctl-full.
func centos7() Host {
	u := Alice("/bin/bash")
	full := NerdctlFull{Nerdctl: "0.22.2", Containerd: "1.6.8", ContainerdCommit: "9cd3357b7fd7218e4aec3eae239db1f68a5a6ec6",
		Runc: "1.1.4", RootlessKit: "1.0.1", Slirp4netns: "1.2.0", BuildKit: "0.10.4", CNI: "1.1.1", Bypass4netns: "0.3.0", FuseOverlayfsSnapshotter: "1.0.4"}
	fullBins, cni := full.Binaries("/usr/local")
	return Host{
		OSRelease: OSRelease{ID: "centos", IDLike: "rhel fedora", Name: "CentOS Linux", Version: "7 (Core)", VersionID: "7",
			PrettyName: "CentOS Linux 7 (Core)", Extra: []string{"CPE_NAME=\"cpe:/o:centos:centos:7\""}},
		Kernel:      "3.10.0-1160.el7.x86_64",
		KernelBuild: "#1 SMP Mon Oct 19 16:18:59 UTC 2020",
		Compiler:    "(mockbuild@kbuilder.bsys.centos.org) (gcc version 4.8.5 20150623 (Red Hat 4.8.5-44) (GCC) )",
		Arch:        "x86_64",
		DMI:         vmwareGuest,
		SELinux:     "enforcing",
		// No seccomp actions_avail (4.14) and no ip_unprivileged_port_start (4.11) on 3.10.
		MaxUserNamespaces:       0,
		UnprivilegedUsernsClone: Absent,
		SubUID:                  SubIDs(u, 100000),
		SubGID:                  SubIDs(u, 100000),
		Cgroup:                  Cgroup{Version: "v1", Controllers: cgroupV1Controllers[:len(cgroupV1Controllers)-1]},
		Systemd:                 &Systemd{},
		User:                    u,
		RuntimeDir:              true,
		Env:                     SessionEnv(u, "/usr/local/bin:/usr/bin:/usr/local/sbin:/usr/sbin:/home/alice/.local/bin:/home/alice/bin", true, false),
		Fuse:                    FuseWorldRW,
		Tun:                     TunWorldRW,
		UnprivilegedPortStart:   Absent,
		Filesystems: []string{"nodev\tsysfs", "nodev\trootfs", "nodev\ttmpfs", "nodev\tproc", "nodev\tcgroup", "nodev\tdevpts",
			"nodev\tmqueue", "nodev\toverlay", "\tfuseblk", "nodev\tfuse", "nodev\tfusectl", "\txfs"},
		CNI: cni,
		Recorded: Recorded{
			OverlayUserns: &LiveResult{Status: "failed", Detail: "create user namespace: no space left on device", Note: "user.max_user_namespaces=0 makes clone(CLONE_NEWUSER) fail with ENOSPC"},
			FuseOverlayfs: &LiveResult{Status: "failed", Detail: "create user namespace: no space left on device", Note: "user.max_user_namespaces=0 makes clone(CLONE_NEWUSER) fail with ENOSPC"},
		},
		Binaries: withBins(UIDMapCaps(), fullBins, []Binary{
			FuseOverlayfs("0.7.2", "3.6.1"),
			Iptables("1.4.21", "legacy"),
			DBusDaemon("1.10.24"),
			Nsenter("2.23.2"),
			{Name: "systemctl", Version: "systemd 219\n+PAM +AUDIT +SELINUX +IMA -APPARMOR +SMACK +SYSVINIT +UTMP +LIBCRYPTSETUP +GCRYPT +GNUTLS +ACL +XZ +LZ4 -SECCOMP +BLKID +ELFUTILS +KMOD +IDN"},
		}),
	}
}

// alpineOpenRC is Alpine Linux 3.20 with OpenRC, set to cgroup v2 (rc_cgroup_mode="unified"): no
// systemd as PID 1 and no user manager, so containerd-rootless-setuptool.sh refuses ("Needs systemd
// (systemctl --user)", rootless.md §5 #2) and containerd-rootless.sh must be run directly. The runtime
// dir comes from pam_rundir; there is no session bus. Alpine's community packages.
func alpineOpenRC() Host {
	u := Alice("/bin/ash")
	return Host{
		OSRelease: OSRelease{ID: "alpine", Name: "Alpine Linux", VersionID: "3.20.0", PrettyName: "Alpine Linux v3.20",
			Extra: []string{"HOME_URL=\"https://alpinelinux.org/\""}},
		Kernel:                  "6.6.31-0-lts",
		KernelBuild:             "#1-Alpine SMP PREEMPT_DYNAMIC 2024-05-20 10:00:22",
		Compiler:                "(buildozer@build-3-20-x86_64) (gcc (Alpine 13.2.1_git20240309) 13.2.1 20240309, GNU ld (GNU Binutils) 2.42)",
		Arch:                    "x86_64",
		DMI:                     kvmGuest,
		SeccompActions:          seccompModern,
		MaxUserNamespaces:       15715,
		UnprivilegedUsernsClone: Absent,
		SubUID:                  SubIDs(u, 100000),
		SubGID:                  SubIDs(u, 100000),
		Cgroup:                  Cgroup{Version: "v2", Controllers: cgroupV2Controllers},
		Init:                    "init",
		User:                    u,
		RuntimeDir:              true,
		Env:                     SessionEnv(u, "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", true, false),
		Fuse:                    FuseWorldRW,
		Tun:                     TunWorldRW,
		UnprivilegedPortStart:   1024,
		Filesystems:             modernFilesystems,
		CNI:                     &CNI{Dir: "/usr/libexec/cni", Version: "v1.4.1", Plugins: cniPlugins1x},
		Binaries: withBins(UIDMapSetuid("/usr/bin"), []Binary{
			{Name: "nerdctl", Version: "nerdctl version 1.7.6"},
			{Name: "containerd-rootless.sh", Text: RootlessScript("1.7.6")},
			{Name: "containerd-rootless-setuptool.sh", Text: SetuptoolScript("1.7.6")},
			{Name: "containerd", Version: containerdVersion("1.7.17", "")},
			{Name: "rootlesskit", Version: "rootlesskit version 2.1.0", Help: rootlesskitHelpV2},
			{Name: "runc", Dir: "/usr/sbin", Version: "runc version 1.1.14\nspec: 1.0.2-dev\ngo: go1.22.5\nlibseccomp: 2.5.5"},
			Slirp4netns("/usr/bin", "1.3.0", "4.7.0"),
			FuseOverlayfs("1.13", "3.16.2"),
			Fusermount3("3.16.2"),
			Iptables("1.8.10", "nf_tables"),
			DBusDaemon("1.14.10"),
			Nsenter("2.40.1"),
		}),
		Files: map[string]File{
			"/etc/rc.conf": {Text: "# Global OpenRC configuration settings\nrc_cgroup_mode=\"unified\"\n"},
		},
	}
}

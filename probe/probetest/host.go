// Package probetest builds fake hosts: a directory laid out like "/" with the files, sysctls, devices
// and executables a real distribution has, for the probe to read under --root.
//
// It deliberately does not import package probe, so the probe's own (internal) tests can use it. The
// shipped host profiles (assets/hosts) are these specs, built and probed by internal/tools/genprofiles.
package probetest

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Absent marks an integer sysctl that the host's kernel does not have.
const Absent = -1

// Host describes a fake host. The zero value is a bare directory with nothing in it; fields left empty
// write nothing, so a test can build exactly the host it needs.
type Host struct {
	// OSRelease is written to /usr/lib/os-release (with /etc/os-release a relative symlink to it,
	// as on systemd distributions).
	OSRelease OSRelease
	// Kernel is the release as uname -r prints it, e.g. "6.1.0-18-amd64".
	Kernel string
	// KernelBuild is the build string (uname -v), e.g. "#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)";
	// it ends up in /proc/version together with Compiler.
	KernelBuild string
	// Compiler is the "(gcc …)" part of /proc/version.
	Compiler string
	// Arch is the machine (uname -m), e.g. "x86_64". It is written to /proc/sys/kernel/arch only for
	// kernels from 6.1, which added that sysctl; uname in the fake root answers it for any kernel.
	Arch string
	// DMI is the firmware's vendor and product, written below /sys/class/dmi/id; VMs name their hypervisor here.
	DMI DMI

	// SELinux is "enforcing", "permissive" or "" (not enabled: no /sys/fs/selinux).
	SELinux string
	// AppArmor is nil when AppArmor is not enabled.
	AppArmor *AppArmor
	// SeccompActions is /proc/sys/kernel/seccomp/actions_avail; nil writes no file (kernels before 4.14).
	SeccompActions []string

	// MaxUserNamespaces is user.max_user_namespaces; Absent writes no file.
	MaxUserNamespaces int
	// UnprivilegedUsernsClone is kernel.unprivileged_userns_clone (a Debian patch); Absent writes no file.
	UnprivilegedUsernsClone int
	// SubUID and SubGID are the lines of /etc/subuid and /etc/subgid; nil writes no file.
	SubUID, SubGID []string

	// Cgroup is the cgroup hierarchy.
	Cgroup Cgroup
	// Systemd is nil on a host whose init is not systemd.
	Systemd *Systemd
	// Init is /proc/1/comm when Systemd is nil, e.g. "init" for OpenRC or BusyBox.
	Init string

	// User is the account the setup is for; it is written to /etc/passwd and /etc/group after the
	// system accounts, and gets a home directory and (with RuntimeDir) /run/user/UID.
	User User
	// RuntimeDir creates /run/user/UID owned by the user, mode 0700, as pam_systemd (or pam_rundir) does.
	RuntimeDir bool
	// Env is the user's environment, written NUL-separated to /proc/self/environ, which is where the
	// probe reads the environment from under --root.
	Env []string

	// Fuse and Tun are /dev/fuse and /dev/net/tun; nil means the node does not exist.
	Fuse, Tun *Device
	// UnprivilegedPortStart is net.ipv4.ip_unprivileged_port_start; Absent writes no file (kernels before 4.11).
	UnprivilegedPortStart int
	// Filesystems are the lines of /proc/filesystems, e.g. "nodev\toverlay"; nil writes no file.
	Filesystems []string

	// CNI is a CNI plugin directory; nil writes none.
	CNI *CNI
	// Binaries become executables that answer their version and help flags.
	Binaries []Binary
	// Files are any further files, keyed by absolute path (config files, units, module parameters).
	Files map[string]File

	// Recorded holds the results of live tests as a real run on this host would have shown them. The
	// builder ignores it; the profile generator copies it into the facts, since live tests never run
	// under --root.
	Recorded Recorded
}

// OSRelease holds the os-release(5) fields a probe looks at.
type OSRelease struct {
	ID, IDLike, Name, PrettyName, Version, VersionID, VersionCodename string
	// Extra are further KEY=value lines, written verbatim.
	Extra []string
}

// DMI is what /sys/class/dmi/id says about the machine.
type DMI struct {
	SysVendor, ProductName string
	// Clocksources is clocksource0's available_clocksource, e.g. "kvm-clock tsc acpi_pm" in a KVM guest.
	Clocksources string
}

// AppArmor describes an enabled AppArmor.
type AppArmor struct {
	// RestrictUnprivilegedUserns is kernel.apparmor_restrict_unprivileged_userns (Ubuntu ≥ 23.10);
	// Absent writes no file.
	RestrictUnprivilegedUserns int
	// Profiles are files below /etc/apparmor.d, keyed by file name, e.g. "rootlesskit".
	Profiles map[string]string
}

// Cgroup describes the cgroup hierarchy.
type Cgroup struct {
	// Version is "v2" (unified), "hybrid" (v1 controllers plus an empty v2 tree at /sys/fs/cgroup/unified)
	// or "v1"; "" writes nothing.
	Version string
	// Controllers are the controllers: at the v2 root, or the v1 hierarchies mounted below /sys/fs/cgroup.
	Controllers []string
	// Delegated are the controllers in user@UID.service's cgroup.controllers (v2 only); nil means the
	// user's service cgroup does not exist (no systemd user manager).
	Delegated []string
}

// Systemd describes systemd as PID 1.
type Systemd struct {
	// UserManager means user@UID.service runs: /run/user/UID/systemd/private exists.
	UserManager bool
	// Linger creates /var/lib/systemd/linger/USER.
	Linger bool
	// UserBus creates the user's D-Bus socket /run/user/UID/bus (a plain file).
	UserBus bool
}

// User is an account in /etc/passwd.
type User struct {
	Name  string
	UID   int
	GID   int
	Home  string
	Shell string
}

// Device is a device node with the given mode and owner. With Major and Minor set it is a real
// character device (mknod, which needs CAP_MKNOD), as on a real host; otherwise a plain file, which
// the probe reports as "not a character device".
type Device struct {
	Mode         fs.FileMode
	UID, GID     int
	Major, Minor uint32
}

// CNI is a directory of CNI plugins.
type CNI struct {
	Dir string
	// Version is the plugins' release, e.g. "v1.1.1"; each plugin prints it like the real ones do when
	// run without CNI_COMMAND.
	Version string
	Plugins []string
}

// File is one file with its content, mode and owner.
type File struct {
	Text string
	// Mode defaults to 0644.
	Mode fs.FileMode
	// Owner, when non-nil, is the file's uid and gid; files below the user's home default to the user.
	Owner *[2]int
}

// Binary is an executable. Unless Text is set it becomes a #!/bin/sh script that prints Version for
// any of its version flags and Help for --help, the way the real program would.
type Binary struct {
	Name string
	// Dir defaults to /usr/bin.
	Dir string
	// Version is printed for each of VersionFlags.
	Version string
	// VersionFlags default to --version, -version and version; newuidmap and friends have none.
	VersionFlags []string
	// Help is printed for --help and -h.
	Help string
	// Responses map an argument line ("$*") to what the program prints on stdout; the exit status is 0.
	Responses map[string]string
	// Text, when set, is the whole file: a script that is read, never run (containerd-rootless.sh).
	Text string
	// Setuid makes the file root-owned with mode 04755, as uidmap ships newuidmap on Debian.
	Setuid bool
	// Caps is a file capability set in the security.capability xattr, e.g. "cap_setuid=ep", as
	// shadow-utils ships newuidmap on Fedora.
	Caps string
}

// Recorded holds live-test results from a real run on the host a profile describes.
type Recorded struct {
	OverlayUserns, FuseOverlayfs *LiveResult
}

// LiveResult is one recorded live test.
type LiveResult struct {
	// Status is "passed" or "failed".
	Status string
	// Detail is the error a failed test reported.
	Detail string
	// Note says where the result comes from, e.g. the documentation or issue that reports it.
	Note string
}

// Build writes the host below dir, which must exist (usually a t.TempDir()). Building needs root for
// the owners of files (the user's home and runtime dir, root-owned setuid programs) and for file
// capabilities; as another user those steps are skipped, so the probe sees the builder as the owner.
// Device nodes (a Device with Major/Minor) need CAP_MKNOD and make Build fail without it.
func (h Host) Build(dir string) error {
	b := &builder{dir: dir, user: h.User}
	b.osRelease(h.OSRelease)
	b.kernel(h)
	b.security(h)
	b.userns(h)
	b.cgroup(h.Cgroup, h.User)
	b.account(h)
	b.init(h)
	b.devices(h)
	b.network(h)
	for _, bin := range h.Binaries {
		b.binary(bin)
	}
	if h.CNI != nil {
		b.cni(*h.CNI)
	}
	paths := make([]string, 0, len(h.Files))
	for p := range h.Files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		f := h.Files[p]
		b.file(p, f.Text, f.Mode, f.Owner)
	}
	return b.err
}

// builder carries the first error so the layout code reads as a list of files.
type builder struct {
	dir  string
	user User
	err  error
}

func (b *builder) fail(err error) {
	if b.err == nil {
		b.err = err
	}
}

func (b *builder) path(p string) string { return filepath.Join(b.dir, filepath.Clean("/"+p)) }

// mkdir creates a directory with an exact mode (independent of the umask) and owner.
func (b *builder) mkdir(p string, mode fs.FileMode, owner *[2]int) {
	if b.err != nil {
		return
	}
	full := b.path(p)
	if err := os.MkdirAll(full, 0o755); err != nil {
		b.fail(fmt.Errorf("create %s: %w", full, err))
		return
	}
	if err := os.Chmod(full, mode); err != nil {
		b.fail(fmt.Errorf("chmod %s: %w", full, err))
		return
	}
	b.chown(full, owner)
}

// file writes a file, creating its parents; mode 0 means 0644. Files below the user's home belong to
// the user unless owner says otherwise.
func (b *builder) file(p, text string, mode fs.FileMode, owner *[2]int) {
	if b.err != nil {
		return
	}
	if mode == 0 {
		mode = 0o644
	}
	if owner == nil && b.inHome(p) {
		owner = &[2]int{b.user.UID, b.user.GID}
	}
	full := b.path(p)
	b.parents(p)
	if err := os.WriteFile(full, []byte(text), 0o600); err != nil {
		b.fail(fmt.Errorf("write %s: %w", full, err))
		return
	}
	b.chown(full, owner)
	// chmod after chown: chown clears the setuid bit.
	if err := os.Chmod(full, mode); err != nil {
		b.fail(fmt.Errorf("chmod %s: %w", full, err))
	}
}

// parents creates the missing parents of p; those inside the user's home belong to the user.
func (b *builder) parents(p string) {
	dir := filepath.Dir(filepath.Clean("/" + p))
	var missing []string
	for d := dir; d != "/"; d = filepath.Dir(d) {
		if _, err := os.Lstat(b.path(d)); err == nil {
			break
		}
		missing = append(missing, d)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		var owner *[2]int
		mode := fs.FileMode(0o755)
		if b.inHome(missing[i]) {
			owner = &[2]int{b.user.UID, b.user.GID}
			if missing[i] == filepath.Clean(b.user.Home) {
				mode = 0o700
			}
		}
		b.mkdir(missing[i], mode, owner)
	}
}

func (b *builder) inHome(p string) bool {
	if b.user.Home == "" || b.user.Home == "/" {
		return false
	}
	home := filepath.Clean(b.user.Home)
	p = filepath.Clean("/" + p)
	return p == home || strings.HasPrefix(p, home+"/")
}

func (b *builder) symlink(target, p string) {
	if b.err != nil {
		return
	}
	b.parents(p)
	if err := os.Symlink(target, b.path(p)); err != nil {
		b.fail(fmt.Errorf("symlink %s: %w", b.path(p), err))
	}
}

// chown sets the owner when running as root. As another user it is skipped: the probe then sees the
// builder as the owner, which tests that care can require against (see CanSetOwners).
func (b *builder) chown(full string, owner *[2]int) {
	if owner == nil || !CanSetOwners() {
		return
	}
	if err := os.Lchown(full, owner[0], owner[1]); err != nil {
		b.fail(fmt.Errorf("chown %s: %w", full, err))
	}
}

// CanSetOwners reports whether Build can give files their real owners and file capabilities, which
// needs root. Without it the layout is the same but owned by the caller.
func CanSetOwners() bool { return os.Geteuid() == 0 }

func (b *builder) osRelease(r OSRelease) {
	if r.ID == "" && r.Name == "" {
		return
	}
	var sb strings.Builder
	kv := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&sb, "%s=%s\n", k, strconv.Quote(v))
		}
	}
	kv("NAME", r.Name)
	kv("VERSION", r.Version)
	if r.ID != "" {
		// os-release writes simple IDs unquoted; quoting them too would hide a parser that only
		// handles one form.
		fmt.Fprintf(&sb, "ID=%s\n", r.ID)
	}
	kv("ID_LIKE", r.IDLike)
	kv("VERSION_ID", r.VersionID)
	kv("VERSION_CODENAME", r.VersionCodename)
	kv("PRETTY_NAME", r.PrettyName)
	for _, l := range r.Extra {
		sb.WriteString(l + "\n")
	}
	b.file("/usr/lib/os-release", sb.String(), 0, nil)
	b.symlink("../usr/lib/os-release", "/etc/os-release")
}

func (b *builder) kernel(h Host) {
	if h.Kernel == "" {
		return
	}
	b.file("/proc/sys/kernel/osrelease", h.Kernel+"\n", 0o444, nil)
	b.file("/proc/sys/kernel/ostype", "Linux\n", 0o444, nil)
	version := "Linux version " + h.Kernel
	if h.Compiler != "" {
		version += " " + h.Compiler
	}
	if h.KernelBuild != "" {
		b.file("/proc/sys/kernel/version", h.KernelBuild+"\n", 0o444, nil)
		version += " " + h.KernelBuild
	}
	b.file("/proc/version", version+"\n", 0o444, nil)
	if h.Arch != "" && kernelAtLeast(h.Kernel, 6, 1) {
		b.file("/proc/sys/kernel/arch", h.Arch+"\n", 0o444, nil)
	}
	// A uname in the fake root answers for the fake kernel, so nothing under --root asks the real one.
	b.binary(Binary{Name: "uname", Responses: map[string]string{
		"-r": h.Kernel, "-m": h.Arch, "-s": "Linux", "-v": h.KernelBuild, "-p": h.Arch,
		"-a": strings.Join([]string{"Linux", "localhost", h.Kernel, h.KernelBuild, h.Arch, h.Arch, h.Arch, "GNU/Linux"}, " "),
	}})
	if h.DMI.SysVendor != "" {
		b.file("/sys/class/dmi/id/sys_vendor", h.DMI.SysVendor+"\n", 0o444, nil)
		b.file("/sys/class/dmi/id/product_name", h.DMI.ProductName+"\n", 0o444, nil)
	}
	if h.DMI.Clocksources != "" {
		b.file("/sys/devices/system/clocksource/clocksource0/available_clocksource", h.DMI.Clocksources+"\n", 0o444, nil)
	}
	if h.Filesystems != nil {
		b.file("/proc/filesystems", strings.Join(h.Filesystems, "\n")+"\n", 0o444, nil)
	}
}

func (b *builder) security(h Host) {
	switch h.SELinux {
	case "":
	case "enforcing", "permissive":
		enforce := "1"
		if h.SELinux == "permissive" {
			enforce = "0"
		}
		b.file("/sys/fs/selinux/enforce", enforce, 0o644, nil)
		b.file("/sys/fs/selinux/status", "", 0o444, nil)
		b.file("/etc/selinux/config", "SELINUX="+h.SELinux+"\nSELINUXTYPE=targeted\n", 0, nil)
		// libselinux-utils: selinuxenabled says it by exit status, getenforce in words.
		b.binary(Binary{Name: "getenforce", Dir: "/usr/sbin", Responses: map[string]string{"": strings.ToUpper(h.SELinux[:1]) + h.SELinux[1:]}})
		b.binary(Binary{Name: "selinuxenabled", Dir: "/usr/sbin", Responses: map[string]string{"": ""}})
	default:
		b.fail(fmt.Errorf("selinux mode %q: want enforcing, permissive or empty", h.SELinux))
	}
	if a := h.AppArmor; a != nil {
		b.file("/sys/module/apparmor/parameters/enabled", "Y\n", 0o444, nil)
		b.file("/sys/kernel/security/apparmor/profiles", "", 0o444, nil)
		if a.RestrictUnprivilegedUserns != Absent {
			b.file("/proc/sys/kernel/apparmor_restrict_unprivileged_userns", strconv.Itoa(a.RestrictUnprivilegedUserns)+"\n", 0o644, nil)
		}
		b.mkdir("/etc/apparmor.d", 0o755, nil)
		names := sortedKeys(a.Profiles)
		for _, n := range names {
			b.file("/etc/apparmor.d/"+n, a.Profiles[n], 0, nil)
		}
	}
	if h.SeccompActions != nil {
		b.file("/proc/sys/kernel/seccomp/actions_avail", strings.Join(h.SeccompActions, " ")+"\n", 0o444, nil)
	}
}

func (b *builder) userns(h Host) {
	if h.MaxUserNamespaces != Absent {
		b.file("/proc/sys/user/max_user_namespaces", strconv.Itoa(h.MaxUserNamespaces)+"\n", 0o644, nil)
	}
	if h.UnprivilegedUsernsClone != Absent {
		b.file("/proc/sys/kernel/unprivileged_userns_clone", strconv.Itoa(h.UnprivilegedUsernsClone)+"\n", 0o644, nil)
	}
	if h.SubUID != nil {
		b.file("/etc/subuid", lines(h.SubUID), 0, nil)
	}
	if h.SubGID != nil {
		b.file("/etc/subgid", lines(h.SubGID), 0, nil)
	}
}

func (b *builder) cgroup(c Cgroup, u User) {
	const root = "/sys/fs/cgroup"
	switch c.Version {
	case "":
		return
	case "v2":
		b.mkdir(root, 0o755, nil)
		b.file(root+"/cgroup.controllers", strings.Join(c.Controllers, " ")+"\n", 0o444, nil)
		b.file(root+"/cgroup.subtree_control", strings.Join(c.Controllers, " ")+"\n", 0o644, nil)
		b.file(root+"/cgroup.procs", "", 0o644, nil)
		b.file("/proc/self/cgroup", "0::/user.slice/user-"+strconv.Itoa(u.UID)+".slice/session-2.scope\n", 0o444, nil)
		b.file("/proc/self/mountinfo", "35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n", 0o444, nil)
		if c.Delegated != nil {
			svc := fmt.Sprintf("%s/user.slice/user-%d.slice/user@%d.service", root, u.UID, u.UID)
			b.file(svc+"/cgroup.controllers", strings.Join(c.Delegated, " ")+"\n", 0o444, nil)
			b.file(svc+"/cgroup.subtree_control", strings.Join(c.Delegated, " ")+"\n", 0o644, nil)
		}
	case "v1", "hybrid":
		b.mkdir(root, 0o755, nil)
		var mi, pc strings.Builder
		id := 30
		for i, ctl := range c.Controllers {
			b.file(root+"/"+ctl+"/cgroup.procs", "", 0o644, nil)
			b.file(root+"/"+ctl+"/tasks", "", 0o644, nil)
			if strings.Contains(ctl, ",") {
				// Co-mounted controllers ("cpu,cpuacct") get a symlink per name, as systemd makes them.
				for _, part := range strings.Split(ctl, ",") {
					b.symlink(ctl, root+"/"+part)
				}
			}
			fmt.Fprintf(&mi, "%d 25 0:%d / /sys/fs/cgroup/%s rw,nosuid,nodev,noexec,relatime shared:%d - cgroup cgroup rw,%s\n", id+i, id+i, ctl, 10+i, ctl)
			fmt.Fprintf(&pc, "%d:%s:/user.slice\n", len(c.Controllers)-i, ctl)
		}
		// systemd's own named hierarchy exists in both layouts.
		b.file(root+"/systemd/cgroup.procs", "", 0o644, nil)
		fmt.Fprintf(&mi, "29 25 0:29 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:9 - cgroup cgroup rw,xattr,name=systemd\n")
		fmt.Fprintf(&pc, "1:name=systemd:/user.slice/user-%d.slice/session-2.scope\n", u.UID)
		if c.Version == "hybrid" {
			// In hybrid mode every controller is bound to v1, so the v2 tree lists none.
			b.file(root+"/unified/cgroup.controllers", "\n", 0o444, nil)
			b.file(root+"/unified/cgroup.procs", "", 0o644, nil)
			fmt.Fprintf(&mi, "28 25 0:28 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:8 - cgroup2 cgroup2 rw,nsdelegate\n")
			fmt.Fprintf(&pc, "0::/user.slice/user-%d.slice/session-2.scope\n", u.UID)
		}
		b.file("/proc/self/mountinfo", "25 21 0:24 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:7 - tmpfs tmpfs ro,mode=755\n"+mi.String(), 0o444, nil)
		b.file("/proc/self/cgroup", pc.String(), 0o444, nil)
	default:
		b.fail(fmt.Errorf("cgroup version %q: want v1, hybrid, v2 or empty", c.Version))
	}
}

func (b *builder) init(h Host) {
	if h.Systemd == nil {
		if h.Init != "" {
			b.file("/proc/1/comm", h.Init+"\n", 0o444, nil)
		}
		return
	}
	s := h.Systemd
	u := h.User
	b.file("/proc/1/comm", "systemd\n", 0o444, nil)
	// sd_booted(3): systemd is PID 1 when /run/systemd/system/ is a directory.
	b.mkdir("/run/systemd/system", 0o755, nil)
	b.mkdir("/var/lib/systemd/linger", 0o755, nil)
	if s.Linger {
		b.file("/var/lib/systemd/linger/"+u.Name, "", 0, nil)
	}
	runDir := fmt.Sprintf("/run/user/%d", u.UID)
	owner := &[2]int{u.UID, u.GID}
	if s.UserManager {
		b.parents(runDir + "/systemd/private")
		b.file(runDir+"/systemd/private", "", 0o777, owner)
		b.file(runDir+"/systemd/notify", "", 0o777, owner)
	}
	if s.UserBus {
		b.file(runDir+"/bus", "", 0o666, owner)
	}
}

func (b *builder) account(h Host) {
	u := h.User
	if u.Name == "" {
		return
	}
	shell := u.Shell
	if shell == "" {
		shell = "/bin/bash"
	}
	passwd := []string{
		"root:x:0:0:root:/root:/bin/bash",
		"daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin",
		"bin:x:2:2:bin:/bin:/usr/sbin/nologin",
		"nobody:x:65534:65534:Kernel Overflow User:/:/usr/sbin/nologin",
		fmt.Sprintf("%s:x:%d:%d:%s:%s:%s", u.Name, u.UID, u.GID, u.Name, u.Home, shell),
	}
	group := []string{
		"root:x:0:",
		"daemon:x:1:",
		"bin:x:2:",
		"nogroup:x:65534:",
		fmt.Sprintf("%s:x:%d:", u.Name, u.GID),
	}
	b.file("/etc/passwd", lines(passwd), 0o644, nil)
	b.file("/etc/group", lines(group), 0o644, nil)
	owner := &[2]int{u.UID, u.GID}
	if u.Home != "" {
		b.parents(u.Home)
		b.mkdir(u.Home, 0o700, owner)
	}
	if h.RuntimeDir {
		b.mkdir("/run/user", 0o755, nil)
		b.mkdir(fmt.Sprintf("/run/user/%d", u.UID), 0o700, owner)
	}
	if h.Env != nil {
		b.file("/proc/self/environ", strings.Join(h.Env, "\x00")+"\x00", 0o400, nil)
	}
}

func (b *builder) devices(h Host) {
	dev := func(p string, d *Device) {
		switch {
		case d == nil:
		case d.Major == 0 && d.Minor == 0:
			b.file(p, "", d.Mode, &[2]int{d.UID, d.GID})
		default:
			b.node(p, d)
		}
	}
	dev("/dev/fuse", h.Fuse)
	dev("/dev/net/tun", h.Tun)
}

// node makes a character device. The probe only stats it under --root, and a fake root below /tmp
// may be mounted nodev anyway, so it is never opened.
func (b *builder) node(p string, d *Device) {
	if b.err != nil {
		return
	}
	b.parents(p)
	full := b.path(p)
	if err := unix.Mknod(full, unix.S_IFCHR|0o600, int(unix.Mkdev(d.Major, d.Minor))); err != nil {
		b.fail(fmt.Errorf("mknod %s (needs CAP_MKNOD; use a Device without Major/Minor for a plain file): %w", full, err))
		return
	}
	b.chown(full, &[2]int{d.UID, d.GID})
	if err := os.Chmod(full, d.Mode); err != nil {
		b.fail(fmt.Errorf("chmod %s: %w", full, err))
	}
}

func (b *builder) network(h Host) {
	if h.UnprivilegedPortStart != Absent {
		b.file("/proc/sys/net/ipv4/ip_unprivileged_port_start", strconv.Itoa(h.UnprivilegedPortStart)+"\n", 0o644, nil)
	}
}

func (b *builder) cni(c CNI) {
	b.mkdir(c.Dir, 0o755, nil)
	for _, p := range c.Plugins {
		// Run without CNI_COMMAND, a plugin built with the skel package prints this "about" text.
		about := fmt.Sprintf("CNI %s plugin %s\nCNI protocol versions supported: 0.1.0, 0.2.0, 0.3.0, 0.3.1, 0.4.0, 1.0.0", p, c.Version)
		b.binary(Binary{Name: p, Dir: c.Dir, Version: about, Responses: map[string]string{"": about}})
	}
}

func (b *builder) binary(bin Binary) {
	dir := bin.Dir
	if dir == "" {
		dir = "/usr/bin"
	}
	p := filepath.Join(dir, bin.Name)
	text := bin.Text
	if text == "" {
		s, err := Script(bin)
		if err != nil {
			b.fail(err)
			return
		}
		text = s
	}
	mode := fs.FileMode(0o755)
	var owner *[2]int
	if bin.Setuid {
		mode = 0o755 | fs.ModeSetuid
		owner = &[2]int{0, 0}
	}
	b.file(p, text, mode, owner)
	if bin.Caps != "" && b.err == nil {
		if err := setFileCaps(b.path(p), bin.Caps); err != nil {
			b.fail(err)
		}
	}
}

// DefaultVersionFlags are the flags a fake binary answers with its version.
var DefaultVersionFlags = []string{"--version", "-version", "version"}

// Script returns the #!/bin/sh text of a fake binary: a case over "$*" that prints the version, the
// help or a registered response, and fails like an unknown option otherwise.
func Script(bin Binary) (string, error) {
	var sb strings.Builder
	sb.WriteString("#!/bin/sh\n# Fake " + bin.Name + " written by probetest: it prints what the real program would.\n")
	sb.WriteString("case \"$*\" in\n")
	seen := map[string]bool{}
	arm := func(arg, out string) error {
		if seen[arg] {
			return nil
		}
		seen[arg] = true
		h, err := heredoc(out)
		if err != nil {
			return fmt.Errorf("fake %s %q: %w", bin.Name, arg, err)
		}
		fmt.Fprintf(&sb, "%s)\n%s\texit 0 ;;\n", shellQuote(arg), h)
		return nil
	}
	for _, arg := range sortedKeys(bin.Responses) {
		if err := arm(arg, bin.Responses[arg]); err != nil {
			return "", err
		}
	}
	if bin.Version != "" {
		flags := bin.VersionFlags
		if flags == nil {
			flags = DefaultVersionFlags
		}
		for _, f := range flags {
			if err := arm(f, bin.Version); err != nil {
				return "", err
			}
		}
	}
	if bin.Help != "" {
		for _, f := range []string{"--help", "-h"} {
			if err := arm(f, bin.Help); err != nil {
				return "", err
			}
		}
	}
	fmt.Fprintf(&sb, "esac\necho %s >&2\nexit 2\n", shellQuote(bin.Name+": unrecognized option (probetest fake)"))
	return sb.String(), nil
}

const heredocEnd = "PROBETEST_EOF"

// heredoc prints out verbatim (no expansion) with a final newline; an empty out prints nothing.
func heredoc(out string) (string, error) {
	if out == "" {
		return "", nil
	}
	if !strings.HasSuffix(out, "\n") {
		out += "\n"
	}
	for _, l := range strings.Split(out, "\n") {
		if l == heredocEnd {
			return "", fmt.Errorf("output contains the line %q", heredocEnd)
		}
	}
	return "\tcat <<'" + heredocEnd + "'\n" + out + heredocEnd + "\n", nil
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// kernelAtLeast compares a release's leading MAJOR.MINOR; an unparsable release is not at least anything.
func kernelAtLeast(release string, major, minor int) bool {
	var ma, mi int
	if n, _ := fmt.Sscanf(release, "%d.%d", &ma, &mi); n != 2 {
		return false
	}
	return ma > major || ma == major && mi >= minor
}

func lines(ls []string) string {
	if len(ls) == 0 {
		return ""
	}
	return strings.Join(ls, "\n") + "\n"
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

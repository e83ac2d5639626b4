// Package probe gathers the facts a rootless containerd setup depends on, checks them against the
// known failure modes (the doctor's catalog), and recommends a setup with the evidence behind it.
//
// Everything the probe learns is a Fact: a value, whether it is known, the evidence it came from and
// the error that kept it unknown. A missing or garbled source gives an unknown fact, never a crash.
// Facts serialise to JSON (schema in docs/schema.md), which is what --host-profile replays.
package probe

import (
	"encoding/json"
	"fmt"
	"time"
)

// SchemaVersion is the version of the JSON document written by probe --json and doctor --json.
// Bump it on any incompatible change to Facts.
const SchemaVersion = 1

// Evidence is where a fact came from: a file, a command and its output, an environment variable,
// a system call or a live test.
type Evidence struct {
	// Kind is one of "file", "command", "env", "syscall", "live", "derived".
	Kind string `json:"kind"`
	// Source names the file path, the command line, the variable or the call.
	Source string `json:"source"`
	// Excerpt is the relevant part of what was seen, trimmed to a few hundred bytes.
	Excerpt string `json:"excerpt,omitempty"`
}

// Fact is one thing the probe learned, or tried to.
type Fact[T any] struct {
	// Value is meaningful only when Known is true.
	Value T `json:"value"`
	// Known is false when the source was missing, unreadable or garbled; Error says why.
	Known    bool       `json:"known"`
	Evidence []Evidence `json:"evidence,omitempty"`
	Error    string     `json:"error,omitempty"`
}

// Known returns a known fact.
func Known[T any](v T, ev ...Evidence) Fact[T] {
	return Fact[T]{Value: v, Known: true, Evidence: ev}
}

// Unknown returns a fact that could not be learned, with the reason.
func Unknown[T any](err error, ev ...Evidence) Fact[T] {
	f := Fact[T]{Evidence: ev}
	if err != nil {
		f.Error = err.Error()
	}
	return f
}

// Facts is everything the probe learned about one host and one user.
type Facts struct {
	Meta     Meta                    `json:"meta"`
	Identity Identity                `json:"identity"`
	OS       OS                      `json:"os"`
	Security Security                `json:"security"`
	UserNS   UserNS                  `json:"userns"`
	Cgroup   Cgroup                  `json:"cgroup"`
	Systemd  Systemd                 `json:"systemd"`
	Devices  Devices                 `json:"devices"`
	Network  Network                 `json:"network"`
	Binaries map[string]Fact[Binary] `json:"binaries"`
	State    State                   `json:"state"`
	Live     Live                    `json:"live"`
}

// Meta says how and when the facts were gathered.
type Meta struct {
	SchemaVersion int `json:"schema_version"`
	// Tool is the virt-setup version that wrote the facts.
	Tool string `json:"tool"`
	// Mode is "live" (this host), "root" (a directory laid out like /) or "profile" (a replay).
	Mode     string    `json:"mode"`
	Root     string    `json:"root,omitempty"`
	Profile  string    `json:"profile,omitempty"`
	ProbedAt time.Time `json:"probed_at"`
	// Duration is the wall time of the whole probe.
	Duration Duration `json:"duration"`
	// Probes lists each probe with its own time and error, slowest first.
	Probes []ProbeRun `json:"probes"`
}

// ProbeRun is the record of one probe.
type ProbeRun struct {
	Name     string   `json:"name"`
	Duration Duration `json:"duration"`
	Error    string   `json:"error,omitempty"`
}

// Identity is who the setup is for.
type Identity struct {
	User Fact[string] `json:"user"`
	UID  Fact[int]    `json:"uid"`
	GID  Fact[int]    `json:"gid"`
	// Root is true when the user is uid 0; a rootless install refuses root.
	Root Fact[bool]   `json:"root"`
	Home Fact[string] `json:"home"`
	// SudoUser is $SUDO_USER: set when the shell came from sudo, which loses the login session.
	SudoUser      Fact[string]     `json:"sudo_user"`
	XDGRuntimeDir Fact[RuntimeDir] `json:"xdg_runtime_dir"`
	// Path is the directories of the user's $PATH, in order: nerdctl and the CNI plugins find
	// iptables through it, and Debian leaves the sbin directories off an ordinary user's PATH.
	Path           Fact[[]string] `json:"path"`
	DBusSessionBus Fact[string]   `json:"dbus_session_bus_address"`
}

// RuntimeDir describes $XDG_RUNTIME_DIR as the user sees it.
type RuntimeDir struct {
	Path     string `json:"path"`
	Set      bool   `json:"set"`
	Exists   bool   `json:"exists"`
	Owned    bool   `json:"owned"`
	Writable bool   `json:"writable"`
	Mode     string `json:"mode,omitempty"`
}

// OS is the distribution, kernel and machine.
type OS struct {
	Distro Fact[Distro] `json:"distro"`
	Kernel Fact[Kernel] `json:"kernel"`
	Arch   Fact[string] `json:"arch"`
	WSL    Fact[bool]   `json:"wsl"`
	// Container names the container runtime the probe runs in ("docker", "podman", "lxc", …), or "".
	Container Fact[string] `json:"container"`
	// VM names the hypervisor the host runs on ("kvm", "qemu", "vmware", …), or "".
	VM Fact[string] `json:"vm"`
}

// Distro is what os-release says.
type Distro struct {
	ID        string   `json:"id"`
	IDLike    []string `json:"id_like,omitempty"`
	VersionID string   `json:"version_id"`
	Name      string   `json:"name"`
	// Family is the package world: "debian" (Debian, Ubuntu), "fedora" (Fedora, RHEL, CentOS), "suse",
	// "arch", "alpine" or "" when unknown.
	Family string `json:"family"`
}

// Kernel is the running kernel's release.
type Kernel struct {
	Release string `json:"release"`
	Major   int    `json:"major"`
	Minor   int    `json:"minor"`
	Patch   int    `json:"patch"`
}

// AtLeast reports whether the kernel is at least major.minor.
func (k Kernel) AtLeast(major, minor int) bool {
	return k.Major > major || k.Major == major && k.Minor >= minor
}

// Security is the host's mandatory access control and seccomp.
type Security struct {
	SELinux  Fact[SELinux]  `json:"selinux"`
	AppArmor Fact[AppArmor] `json:"apparmor"`
	// SeccompActions lists /proc/sys/kernel/seccomp/actions_avail; bypass4netns needs "user_notif".
	SeccompActions Fact[[]string] `json:"seccomp_actions"`
}

// SELinux state from /sys/fs/selinux.
type SELinux struct {
	Enabled bool `json:"enabled"`
	// Mode is "enforcing", "permissive" or "disabled".
	Mode string `json:"mode"`
}

// AppArmor state, including Ubuntu's restriction on unprivileged user namespaces.
type AppArmor struct {
	Enabled bool `json:"enabled"`
	// RestrictUnprivilegedUserns is kernel.apparmor_restrict_unprivileged_userns; -1 when the
	// sysctl does not exist (kernels without Ubuntu's patch).
	RestrictUnprivilegedUserns int `json:"restrict_unprivileged_userns"`
	// RootlesskitProfiles lists profiles under /etc/apparmor.d that grant "userns" to a rootlesskit path.
	RootlesskitProfiles []string `json:"rootlesskit_profiles,omitempty"`
}

// UserNS is what unprivileged user namespaces need.
type UserNS struct {
	MaxUserNamespaces Fact[int] `json:"max_user_namespaces"`
	// UnprivilegedClone is kernel.unprivileged_userns_clone (Debian/Arch patch); -1 when absent.
	UnprivilegedClone Fact[int]       `json:"unprivileged_userns_clone"`
	SubUID            Fact[[]IDRange] `json:"subuid"`
	SubGID            Fact[[]IDRange] `json:"subgid"`
	NewUIDMap         Fact[IDMapper]  `json:"newuidmap"`
	NewGIDMap         Fact[IDMapper]  `json:"newgidmap"`
}

// IDRange is one line of /etc/subuid or /etc/subgid that applies to the user.
type IDRange struct {
	Start int64 `json:"start"`
	Count int64 `json:"count"`
}

// IDMapper is newuidmap or newgidmap, which need setuid root or a file capability to work.
type IDMapper struct {
	Path  string `json:"path"`
	Found bool   `json:"found"`
	// Setuid is true when the binary is owned by root with the setuid bit.
	Setuid bool `json:"setuid"`
	// Caps is the decoded security.capability xattr, e.g. "cap_setuid=ep", or "".
	Caps string `json:"caps,omitempty"`
}

// Cgroup is the cgroup hierarchy and what is delegated to the user.
type Cgroup struct {
	// Version is "v2" (unified), "hybrid" or "v1".
	Version Fact[string] `json:"version"`
	// Controllers are the controllers available at the v2 root.
	Controllers Fact[[]string] `json:"controllers"`
	// Delegated are the controllers in user@UID.service's cgroup.controllers.
	Delegated Fact[[]string] `json:"delegated"`
}

// Systemd is the init system and the user's service manager.
type Systemd struct {
	// PID1 is true when systemd is the init system (/run/systemd/system exists, as sd_booted checks).
	PID1        Fact[bool] `json:"pid1"`
	Version     Fact[int]  `json:"version"`
	UserManager Fact[bool] `json:"user_manager"`
	Linger      Fact[bool] `json:"linger"`
	// UserBus is true when the user's dbus socket ($XDG_RUNTIME_DIR/bus) exists.
	UserBus Fact[bool] `json:"user_bus"`
}

// Devices are the character devices rootless networking and FUSE need.
type Devices struct {
	Fuse Fact[Device] `json:"fuse"`
	Tun  Fact[Device] `json:"tun"`
}

// Device is one device node and whether the user can use it.
type Device struct {
	Path     string `json:"path"`
	Exists   bool   `json:"exists"`
	CharDev  bool   `json:"char_device"`
	Mode     string `json:"mode"`
	OwnerUID int    `json:"owner_uid"`
	OwnerGID int    `json:"owner_gid"`
	Usable   bool   `json:"usable"`
	// How says how usability was decided: "opened read-write" or "mode bits".
	How string `json:"how"`
}

// Network holds host network settings that affect rootless containers.
type Network struct {
	// UnprivilegedPortStart is net.ipv4.ip_unprivileged_port_start: ports below it need privilege.
	UnprivilegedPortStart Fact[int] `json:"ip_unprivileged_port_start"`
	// CNI is the first CNI plugin directory nerdctl would use, and the plugins in it.
	CNI Fact[CNI] `json:"cni"`
}

// CNI is a CNI plugin directory.
type CNI struct {
	Dir     string   `json:"dir"`
	Plugins []string `json:"plugins"`
	// Missing lists the plugins nerdctl's default network needs that are not there.
	Missing []string `json:"missing,omitempty"`
	Version string   `json:"version,omitempty"`
}

// Binary is one program the setup uses.
type Binary struct {
	Name  string `json:"name"`
	Found bool   `json:"found"`
	Path  string `json:"path,omitempty"`
	// Version is the normalised version ("2.4.2"), "" when it could not be told.
	Version string `json:"version,omitempty"`
	// Features are capabilities learned from --help or the file itself (e.g. "netns-type" for slirp4netns).
	Features map[string]bool `json:"features,omitempty"`
}

// State is what an earlier setup left on the host.
type State struct {
	ContainerdConfig   Fact[ConfigFile]       `json:"containerd_config"`
	NerdctlConfig      Fact[ConfigFile]       `json:"nerdctl_config"`
	ContainerdUnit     Fact[ConfigFile]       `json:"containerd_unit"`
	ContainerdOverride Fact[ConfigFile]       `json:"containerd_override"`
	RootlessKit        Fact[RootlessKitState] `json:"rootlesskit"`
	// SnapshotterEnv is $CONTAINERD_SNAPSHOTTER.
	SnapshotterEnv Fact[string] `json:"containerd_snapshotter_env"`
	// RunNRI is true when /run/nri exists: a rootful containerd v2 made it, and older
	// containerd-rootless.sh turns it into a root-owned symlink (nerdctl#4287).
	RunNRI Fact[bool] `json:"run_nri"`
}

// ConfigFile is a config file the setup reads or writes.
type ConfigFile struct {
	Path   string `json:"path"`
	Exists bool   `json:"exists"`
	// Valid is false when the file does not parse; ParseError says where.
	Valid      bool   `json:"valid"`
	ParseError string `json:"parse_error,omitempty"`
	// Version is containerd's config "version" key (0 when absent).
	Version int `json:"version,omitempty"`
	// ProxyPlugins are the names under [proxy_plugins] in containerd's config.
	ProxyPlugins []string `json:"proxy_plugins,omitempty"`
	// Snapshotter is the snapshotter key of nerdctl.toml.
	Snapshotter string `json:"snapshotter,omitempty"`
	// UnknownKeys are nerdctl.toml keys no nerdctl accepts (it decodes strictly).
	UnknownKeys []string `json:"unknown_keys,omitempty"`
	// NewerKeys are nerdctl.toml keys that only nerdctl releases after 2.0 accept.
	NewerKeys []string `json:"newer_keys,omitempty"`
	// Environment holds Environment= settings of a systemd unit or drop-in.
	Environment map[string]string `json:"environment,omitempty"`
}

// RootlessKitState describes a running (or stale) rootless containerd.
type RootlessKitState struct {
	StateDir string `json:"state_dir"`
	Exists   bool   `json:"exists"`
	ChildPID int    `json:"child_pid,omitempty"`
	// Running is true when child_pid names a live process.
	Running bool `json:"running"`
	// DetachedNetns is true when the state dir has a netns file (--detach-netns).
	DetachedNetns bool `json:"detached_netns"`
}

// Live holds the results of tests that really try something on the host.
type Live struct {
	OverlayUserns Fact[LiveTest] `json:"overlay_userns"`
	FuseOverlayfs Fact[LiveTest] `json:"fuse_overlayfs_userns"`
}

// LiveTest is the outcome of one live test.
type LiveTest struct {
	// Status is "passed", "failed" or "skipped".
	Status string `json:"status"`
	// Detail says what failed, or why the test was skipped.
	Detail   string   `json:"detail,omitempty"`
	Duration Duration `json:"duration"`
}

// Live test statuses.
const (
	LivePassed  = "passed"
	LiveFailed  = "failed"
	LiveSkipped = "skipped"
)

// Ran reports whether the live test ran (passed or failed) rather than being skipped.
func (t LiveTest) Ran() bool { return t.Status == LivePassed || t.Status == LiveFailed }

// Duration is a time.Duration that reads and writes JSON as a string such as "12.5ms".
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	*d = Duration(v)
	return nil
}

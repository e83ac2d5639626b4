package probetest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/virt-setup/virt-setup/internal/testenv"
)

// run executes a fake binary of the built host and returns its stdout and exit status.
func run(t *testing.T, dir, p string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(dir, p), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return stdout.String(), 0
	case errors.As(err, &ee):
		return stdout.String(), ee.ExitCode()
	}
	t.Fatalf("run %s %v: %v (stderr %q)", p, args, err, stderr.String())
	return "", -1
}

func read(t *testing.T, dir, p string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, p))
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	return string(b)
}

func stat(t *testing.T, dir, p string) (fs.FileInfo, *syscall.Stat_t) {
	t.Helper()
	fi, err := os.Lstat(filepath.Join(dir, p))
	if err != nil {
		t.Fatalf("stat %s: %v", p, err)
	}
	return fi, fi.Sys().(*syscall.Stat_t)
}

func absent(t *testing.T, dir string, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Lstat(filepath.Join(dir, p)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: want absent, got err=%v", p, err)
		}
	}
}

func TestBinaryScripts(t *testing.T) {
	dir := t.TempDir()
	h := Host{Binaries: []Binary{
		{Name: "nerdctl", Dir: "/usr/local/bin", Version: "nerdctl version 2.0.5"},
		{Name: "slirp4netns", Version: "slirp4netns version 1.2.0\ncommit: abc", Help: slirpHelp},
		{Name: "iperf3", Version: "iperf 3.12 (cJSON 1.7.15)", VersionFlags: []string{"-v"}},
		{Name: "systemctl", Version: "systemd 252 (252.39-1~deb12u1)", Responses: map[string]string{"--user show-environment": "HOME=/home/alice"}},
		{Name: "quoting", Version: "it's \"$HOME\" `id` \\n\nPROBETEST_EOF-not-alone"},
		{Name: "containerd-rootless.sh", Text: "#!/bin/sh\nexit 7\n# CONTAINERD_ROOTLESS_ROOTLESSKIT_DETACH_NETNS\n"},
	}}
	if err := h.Build(dir); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path     string
		args     []string
		want     string
		wantExit int
	}{
		{"/usr/local/bin/nerdctl", []string{"--version"}, "nerdctl version 2.0.5\n", 0},
		{"/usr/local/bin/nerdctl", []string{"-version"}, "nerdctl version 2.0.5\n", 0},
		{"/usr/local/bin/nerdctl", []string{"--help"}, "", 2},
		{"/usr/local/bin/nerdctl", []string{"run", "--rm"}, "", 2},
		{"/usr/bin/slirp4netns", []string{"--version"}, "slirp4netns version 1.2.0\ncommit: abc\n", 0},
		{"/usr/bin/slirp4netns", []string{"--help"}, slirpHelp, 0},
		{"/usr/bin/slirp4netns", []string{"-h"}, slirpHelp, 0},
		{"/usr/bin/iperf3", []string{"-v"}, "iperf 3.12 (cJSON 1.7.15)\n", 0},
		{"/usr/bin/iperf3", []string{"--version"}, "", 2},
		{"/usr/bin/systemctl", []string{"--user", "show-environment"}, "HOME=/home/alice\n", 0},
		{"/usr/bin/systemctl", []string{"--version"}, "systemd 252 (252.39-1~deb12u1)\n", 0},
		{"/usr/bin/systemctl", []string{"--user"}, "", 2},
		{"/usr/bin/quoting", []string{"--version"}, "it's \"$HOME\" `id` \\n\nPROBETEST_EOF-not-alone\n", 0},
		{"/usr/bin/containerd-rootless.sh", nil, "", 7},
	}
	for _, tt := range tests {
		got, code := run(t, dir, tt.path, tt.args...)
		if got != tt.want || code != tt.wantExit {
			t.Errorf("%s %q = %q, exit %d; want %q, exit %d", tt.path, tt.args, got, code, tt.want, tt.wantExit)
		}
	}
	if got := read(t, dir, "/usr/bin/containerd-rootless.sh"); got != h.Binaries[5].Text {
		t.Errorf("never-run script text = %q, want it verbatim", got)
	}
	for _, b := range h.Binaries {
		dirOf := b.Dir
		if dirOf == "" {
			dirOf = "/usr/bin"
		}
		if fi, _ := stat(t, dir, dirOf+"/"+b.Name); fi.Mode().Perm() != 0o755 {
			t.Errorf("%s mode %v, want 0755", b.Name, fi.Mode())
		}
	}
}

func TestScriptRefusesHeredocTerminator(t *testing.T) {
	_, err := Script(Binary{Name: "x", Version: "a\n" + heredocEnd + "\nb"})
	if err == nil || !strings.Contains(err.Error(), heredocEnd) {
		t.Fatalf("Script with a terminator line: err = %v, want one naming %s", err, heredocEnd)
	}
	h := Host{Binaries: []Binary{{Name: "x", Version: heredocEnd}}}
	if err := h.Build(t.TempDir()); err == nil {
		t.Fatal("Build accepted a version output that would end the here-document early")
	}
}

func TestBuildLayout(t *testing.T) {
	testenv.Require(t, CanSetOwners(), "building a host with owners, setuid and device nodes needs root; run the tests as root")
	dir := t.TempDir()
	u := Alice("/bin/bash")
	h := Host{
		OSRelease:               OSRelease{ID: "debian", Name: "Debian GNU/Linux", VersionID: "12", PrettyName: "Debian GNU/Linux 12 (bookworm)"},
		Kernel:                  "5.15.0-91-generic",
		KernelBuild:             "#101-Ubuntu SMP",
		Arch:                    "x86_64",
		AppArmor:                &AppArmor{RestrictUnprivilegedUserns: 1, Profiles: map[string]string{"rootlesskit": UbuntuRootlesskitProfile}},
		SELinux:                 "",
		SeccompActions:          []string{"errno", "user_notif"},
		MaxUserNamespaces:       0,
		UnprivilegedUsernsClone: Absent,
		SubUID:                  SubIDs(u, 100000),
		Cgroup:                  Cgroup{Version: "v2", Controllers: []string{"cpu", "memory"}, Delegated: []string{"memory"}},
		Systemd:                 &Systemd{UserManager: true, Linger: true, UserBus: true},
		User:                    u,
		RuntimeDir:              true,
		Env:                     []string{"HOME=/home/alice", "XDG_RUNTIME_DIR=/run/user/1000"},
		Fuse:                    FuseWorldRW,
		Tun:                     &Device{Mode: 0o600},
		UnprivilegedPortStart:   Absent,
		CNI:                     &CNI{Dir: "/opt/cni/bin", Version: "v1.4.0", Plugins: []string{"bridge"}},
		Binaries:                append(UIDMapSetuid("/usr/bin"), Binary{Name: "newcaps", VersionFlags: []string{}, Caps: "cap_setuid=ep"}),
		Files:                   map[string]File{"/home/alice/.config/nerdctl/nerdctl.toml": {Text: "snapshotter = \"native\"\n"}},
	}
	if err := h.Build(dir); err != nil {
		t.Fatal(err)
	}

	if got := read(t, dir, "/etc/os-release"); !strings.Contains(got, "ID=debian\n") || !strings.Contains(got, `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"`) {
		t.Errorf("os-release = %q", got)
	}
	if target, err := os.Readlink(filepath.Join(dir, "/etc/os-release")); err != nil || target != "../usr/lib/os-release" {
		t.Errorf("/etc/os-release link = %q, %v; want the relative link systemd distributions have", target, err)
	}
	for p, want := range map[string]string{
		"/proc/sys/kernel/osrelease":                                                     "5.15.0-91-generic\n",
		"/proc/sys/kernel/apparmor_restrict_unprivileged_userns":                         "1\n",
		"/sys/module/apparmor/parameters/enabled":                                        "Y\n",
		"/etc/apparmor.d/rootlesskit":                                                    UbuntuRootlesskitProfile,
		"/proc/sys/kernel/seccomp/actions_avail":                                         "errno user_notif\n",
		"/proc/sys/user/max_user_namespaces":                                             "0\n",
		"/etc/subuid":                                                                    "alice:100000:65536\n",
		"/sys/fs/cgroup/cgroup.controllers":                                              "cpu memory\n",
		"/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/cgroup.controllers": "memory\n",
		"/proc/self/environ":                                                             "HOME=/home/alice\x00XDG_RUNTIME_DIR=/run/user/1000\x00",
	} {
		if got := read(t, dir, p); got != want {
			t.Errorf("%s = %q, want %q", p, got, want)
		}
	}
	// 5.15 has no kernel.arch sysctl (6.1); the fake uname answers instead.
	absent(t, dir, "/proc/sys/kernel/arch", "/proc/sys/kernel/unprivileged_userns_clone", "/etc/subgid",
		"/proc/sys/net/ipv4/ip_unprivileged_port_start", "/sys/fs/selinux")
	if got, _ := run(t, dir, "/usr/bin/uname", "-m"); got != "x86_64\n" {
		t.Errorf("uname -m = %q", got)
	}
	if !strings.Contains(read(t, dir, "/etc/passwd"), "alice:x:1000:1000:alice:/home/alice:/bin/bash\n") {
		t.Errorf("passwd lacks the user:\n%s", read(t, dir, "/etc/passwd"))
	}

	owned := func(p string, uid int, mode fs.FileMode) {
		t.Helper()
		fi, st := stat(t, dir, p)
		if int(st.Uid) != uid || fi.Mode() != mode {
			t.Errorf("%s: owner %d mode %v, want %d %v", p, st.Uid, fi.Mode(), uid, mode)
		}
	}
	owned("/home/alice", 1000, fs.ModeDir|0o700)
	owned("/home/alice/.config", 1000, fs.ModeDir|0o755)
	owned("/home/alice/.config/nerdctl/nerdctl.toml", 1000, 0o644)
	owned("/run/user/1000", 1000, fs.ModeDir|0o700)
	owned("/run/user/1000/systemd/private", 1000, 0o777)
	owned("/run/user/1000/bus", 1000, 0o666)
	owned("/var/lib/systemd/linger/alice", 0, 0o644)
	owned("/usr/bin/newuidmap", 0, fs.ModeSetuid|0o755)
	owned("/dev/net/tun", 0, 0o600)
	if fi, _ := stat(t, dir, "/run/systemd/system"); !fi.IsDir() {
		t.Error("/run/systemd/system is not a directory: sd_booted would say systemd is not PID 1")
	}

	fi, st := stat(t, dir, "/dev/fuse")
	if fi.Mode()&fs.ModeCharDevice == 0 || fi.Mode().Perm() != 0o666 || unix.Major(st.Rdev) != 10 || unix.Minor(st.Rdev) != 229 {
		t.Errorf("/dev/fuse: mode %v rdev %d,%d; want character device 10,229 mode 0666", fi.Mode(), unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}

	buf := make([]byte, 64)
	n, err := unix.Getxattr(filepath.Join(dir, "/usr/bin/newcaps"), "security.capability", buf)
	if err != nil {
		t.Fatalf("getxattr: %v", err)
	}
	want, _ := EncodeFileCaps("cap_setuid=ep")
	if !bytes.Equal(buf[:n], want) {
		t.Errorf("security.capability = %x, want %x", buf[:n], want)
	}
	if getcap, err := exec.LookPath("getcap"); err == nil {
		// libcap's own reading of the xattr, as an outside check of the encoding.
		out, err := exec.Command(getcap, filepath.Join(dir, "/usr/bin/newcaps")).Output()
		if err != nil || !strings.Contains(string(out), "cap_setuid=ep") {
			t.Errorf("getcap says %q (%v), want cap_setuid=ep", out, err)
		}
	}

	if got, code := run(t, dir, "/opt/cni/bin/bridge"); code != 0 || !strings.HasPrefix(got, "CNI bridge plugin v1.4.0\n") {
		t.Errorf("bridge without CNI_COMMAND printed %q (exit %d), want its about banner", got, code)
	}
}

func TestBuildCgroupV1(t *testing.T) {
	dir := t.TempDir()
	h := Host{User: Alice(""), Cgroup: Cgroup{Version: "hybrid", Controllers: []string{"cpu,cpuacct", "memory"}}}
	if err := h.Build(dir); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"cpu", "cpuacct", "cpu,cpuacct", "memory", "systemd", "unified"} {
		fi, err := os.Stat(filepath.Join(dir, "/sys/fs/cgroup", d))
		if err != nil || !fi.IsDir() {
			t.Errorf("/sys/fs/cgroup/%s: %v; want a directory", d, err)
		}
	}
	absent(t, dir, "/sys/fs/cgroup/cgroup.controllers")
	if got := read(t, dir, "/proc/self/mountinfo"); !strings.Contains(got, " - cgroup2 cgroup2 ") || !strings.Contains(got, "/sys/fs/cgroup/memory") {
		t.Errorf("mountinfo = %q", got)
	}
}

func TestBuildRejectsUnknownModes(t *testing.T) {
	for _, h := range []Host{{SELinux: "on"}, {Cgroup: Cgroup{Version: "v3"}}} {
		if err := h.Build(t.TempDir()); err == nil {
			t.Errorf("Build(%+v) succeeded", h)
		}
	}
}

func TestEncodeFileCaps(t *testing.T) {
	tests := []struct {
		text              string
		magic             uint32
		permLo, inhLo     uint32
		permHi, inheritHi uint32
		wantErr           bool
	}{
		{text: "cap_setuid=ep", magic: 0x02000001, permLo: 1 << 7},
		{text: "cap_setgid+ep", magic: 0x02000001, permLo: 1 << 6},
		{text: "cap_setuid,cap_setgid=p", magic: 0x02000000, permLo: 1<<7 | 1<<6},
		{text: "CAP_NET_BIND_SERVICE=eip", magic: 0x02000001, permLo: 1 << 10, inhLo: 1 << 10},
		{text: "cap_checkpoint_restore=ep", magic: 0x02000001, permHi: 1 << (40 - 32)},
		{text: "cap_setuid", wantErr: true},
		{text: "cap_bogus=ep", wantErr: true},
		{text: "cap_setuid=x", wantErr: true},
		{text: "=ep", wantErr: true},
	}
	for _, tt := range tests {
		b, err := EncodeFileCaps(tt.text)
		if tt.wantErr {
			if err == nil {
				t.Errorf("EncodeFileCaps(%q) = %x, want an error", tt.text, b)
			}
			continue
		}
		if err != nil || len(b) != 20 {
			t.Errorf("EncodeFileCaps(%q) = %x, %v", tt.text, b, err)
			continue
		}
		got := [5]uint32{}
		for i := range got {
			got[i] = binary.LittleEndian.Uint32(b[4*i:])
		}
		if want := [5]uint32{tt.magic, tt.permLo, tt.inhLo, tt.permHi, tt.inheritHi}; got != want {
			t.Errorf("EncodeFileCaps(%q) words = %#x, want %#x", tt.text, got, want)
		}
	}
}

// TestProfilesBuild builds every shipped host, so a spec mistake (a duplicate path, a terminator in
// an output) shows here rather than in the generator.
func TestProfilesBuild(t *testing.T) {
	testenv.Require(t, CanSetOwners(), "the shipped hosts have device nodes and root-owned setuid files; run the tests as root")
	for _, name := range ProfileNames() {
		t.Run(name, func(t *testing.T) {
			h := Profiles()[name]
			dir := t.TempDir()
			if err := h.Build(dir); err != nil {
				t.Fatal(err)
			}
			if h.User.Name == "" || h.Kernel == "" || h.OSRelease.ID == "" || h.Cgroup.Version == "" {
				t.Errorf("spec lacks basics: user %q kernel %q id %q cgroup %q", h.User.Name, h.Kernel, h.OSRelease.ID, h.Cgroup.Version)
			}
			for _, b := range h.Binaries {
				if b.Version == "" || b.Text != "" {
					continue
				}
				bdir := b.Dir
				if bdir == "" {
					bdir = "/usr/bin"
				}
				flags := b.VersionFlags
				if flags == nil {
					flags = DefaultVersionFlags
				}
				for _, f := range flags {
					if got, code := run(t, dir, bdir+"/"+b.Name, f); code != 0 || strings.TrimSpace(got) != strings.TrimSpace(b.Version) {
						t.Errorf("%s %s = %q (exit %d)", b.Name, f, got, code)
					}
				}
			}
		})
	}
}

func TestRootlessScriptReleases(t *testing.T) {
	tests := []struct {
		version                 string
		detachNetns, gvisorNote bool
	}{
		{"1.7.6", false, false},
		{"2.0.5", true, false},
		{"2.3.0", true, true},
		{"v3.1.0", true, true},
	}
	for _, tt := range tests {
		s := RootlessScript(tt.version)
		if got := strings.Contains(s, "CONTAINERD_ROOTLESS_ROOTLESSKIT_DETACH_NETNS"); got != tt.detachNetns {
			t.Errorf("nerdctl %s: mentions DETACH_NETNS = %v, want %v", tt.version, got, tt.detachNetns)
		}
		if got := strings.Contains(s, "net=gvisor-tap-vsock"); got != tt.gvisorNote {
			t.Errorf("nerdctl %s: gvisor-tap-vsock fallback = %v, want %v", tt.version, got, tt.gvisorNote)
		}
	}
}

package probe

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/virt-setup/virt-setup/internal/sys"
	"github.com/virt-setup/virt-setup/internal/testenv"
	"github.com/virt-setup/virt-setup/probe/probetest"
)

// fakeOSHost is a directory laid out like "/" for the os, security and userns probe tests.
type fakeOSHost struct {
	t   *testing.T
	dir string
}

func newFakeOSHost(t *testing.T) *fakeOSHost {
	t.Helper()
	return &fakeOSHost{t: t, dir: t.TempDir()}
}

func (h *fakeOSHost) path(p string) string { return sys.Root{Dir: h.dir}.Path(p) }

func (h *fakeOSHost) write(p, content string) {
	h.t.Helper()
	full := h.path(p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

func (h *fakeOSHost) mkdir(p string) {
	h.t.Helper()
	if err := os.MkdirAll(h.path(p), 0o755); err != nil {
		h.t.Fatal(err)
	}
}

func (h *fakeOSHost) symlink(target, p string) {
	h.t.Helper()
	full := h.path(p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		h.t.Fatal(err)
	}
	if err := os.Symlink(target, full); err != nil {
		h.t.Fatal(err)
	}
}

// place lays out p in one of the ways a source can be broken or fine. content is used by "file"
// and "unreadable".
func (h *fakeOSHost) place(kind, p, content string) {
	h.t.Helper()
	switch kind {
	case "missing":
	case "file":
		h.write(p, content)
	case "empty":
		h.write(p, "")
	case "binary":
		h.write(p, "\x00\xff\xfe garbage \x00")
	case "dir":
		h.mkdir(p)
	case "loop":
		// A symlink loop fails to open even for root, unlike a mode-000 file.
		h.symlink(filepath.Base(p), p)
	case "unreadable":
		h.write(p, content)
		if err := os.Chmod(h.path(p), 0); err != nil {
			h.t.Fatal(err)
		}
	default:
		h.t.Fatalf("unknown kind %q", kind)
	}
}

// env is a --root environment over the fake host for user vstest (uid 1001).
func (h *fakeOSHost) env() *Env {
	e := &Env{
		Root:   sys.Root{Dir: h.dir},
		Runner: sys.NewStub(h.t),
		User:   User{Name: "vstest", UID: 1001, GID: 1001, Home: "/home/vstest", Known: true},
		Now:    time.Now,
	}
	e.LookupDirs = e.lookupDirs()
	return e
}

// rootReads reports whether this test process reads mode-000 files anyway (root has
// CAP_DAC_OVERRIDE), which turns the "unreadable" case into a readable one.
func rootReads() bool { return os.Geteuid() == 0 }

func runOS(t *testing.T, e *Env) OS {
	t.Helper()
	var f Facts
	probeOS(context.Background(), e)(&f)
	return f.OS
}

func TestParseOSRelease(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want map[string]string
	}{
		{"debian 12", `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
`, map[string]string{"PRETTY_NAME": "Debian GNU/Linux 12 (bookworm)", "NAME": "Debian GNU/Linux", "VERSION_ID": "12",
			"VERSION": "12 (bookworm)", "VERSION_CODENAME": "bookworm", "ID": "debian", "HOME_URL": "https://www.debian.org/"}},
		{"ubuntu 24.04", `PRETTY_NAME="Ubuntu 24.04.1 LTS"
NAME="Ubuntu"
VERSION_ID="24.04"
ID=ubuntu
ID_LIKE=debian
UBUNTU_CODENAME=noble
LOGO=ubuntu-logo
`, map[string]string{"PRETTY_NAME": "Ubuntu 24.04.1 LTS", "NAME": "Ubuntu", "VERSION_ID": "24.04", "ID": "ubuntu",
			"ID_LIKE": "debian", "UBUNTU_CODENAME": "noble", "LOGO": "ubuntu-logo"}},
		{"rhel 9 with quoted ID_LIKE", `NAME="Red Hat Enterprise Linux"
VERSION="9.3 (Plow)"
ID="rhel"
ID_LIKE="fedora"
VERSION_ID="9.3"
PLATFORM_ID="platform:el9"
`, map[string]string{"NAME": "Red Hat Enterprise Linux", "VERSION": "9.3 (Plow)", "ID": "rhel", "ID_LIKE": "fedora",
			"VERSION_ID": "9.3", "PLATFORM_ID": "platform:el9"}},
		{"single quotes keep backslashes", `NAME='Foo \"Linux\"'` + "\nID='foo'\n",
			map[string]string{"NAME": `Foo \"Linux\"`, "ID": "foo"}},
		{"double-quote escapes", `PRETTY_NAME="A \"quoted\" \$HOME \\ \` + "`x`" + `\n"`,
			map[string]string{"PRETTY_NAME": "A \"quoted\" $HOME \\ `x`\\n"}},
		{"comments, blanks, garbage, CRLF", "# comment\r\n\r\n   \nID=arch\r\nthis is not an assignment\n=novalue\n1BAD=x\nBAD-KEY=y\nNAME=\"Arch Linux\" # trailing comment\n",
			map[string]string{"ID": "arch", "NAME": "Arch Linux"}},
		{"unterminated quote drops that line only", "ID=alpine\nNAME=\"Alpine Linux\nVERSION_ID=3.19.1\n",
			map[string]string{"ID": "alpine", "VERSION_ID": "3.19.1"}},
		{"unquoted value with spaces kept as systemd does", "NAME=Foo Linux\n",
			map[string]string{"NAME": "Foo Linux"}},
		{"concatenated quoting", `VERSION="1"'.2'.3` + "\n",
			map[string]string{"VERSION": "1.2.3"}},
		{"empty value", "VARIANT=\nID=x\n", map[string]string{"VARIANT": "", "ID": "x"}},
		{"later assignment wins", "ID=a\nID=b\n", map[string]string{"ID": "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseOSRelease([]byte(tt.in))
			if err != nil {
				t.Fatalf("ParseOSRelease: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
	for _, bad := range []string{"", "\n\n# only comments\n", "garbage\x00\xff", "NAME=\"unterminated\n"} {
		if got, err := ParseOSRelease([]byte(bad)); err == nil {
			t.Errorf("ParseOSRelease(%q) = %q, want an error", bad, got)
		}
	}
}

func TestDistroFamily(t *testing.T) {
	tests := []struct {
		id, like, want string
	}{
		{"debian", "", "debian"},
		{"ubuntu", "debian", "debian"},
		{"linuxmint", "ubuntu debian", "debian"},
		{"pop", "ubuntu debian", "debian"},
		{"raspbian", "debian", "debian"},
		{"kali", "debian", "debian"},
		{"fedora", "", "fedora"},
		{"rhel", "fedora", "fedora"},
		{"centos", "rhel fedora", "fedora"},
		{"rocky", "rhel centos fedora", "fedora"},
		{"almalinux", "rhel centos fedora", "fedora"},
		{"ol", "fedora", "fedora"},
		{"amzn", "centos rhel fedora", "fedora"},
		{"opensuse-tumbleweed", "opensuse suse", "suse"},
		{"opensuse-leap", "suse opensuse", "suse"},
		{"sles", "suse", "suse"},
		{"arch", "", "arch"},
		{"manjaro", "arch", "arch"},
		{"endeavouros", "arch", "arch"},
		{"alpine", "", "alpine"},
		{"postmarketos", "alpine", "alpine"},
		{"Ubuntu", "", "debian"},
		{"nixos", "", ""},
		{"gentoo", "", ""},
		{"linux", "", ""},
	}
	for _, tt := range tests {
		if got := distroFamily(tt.id, strings.Fields(tt.like)); got != tt.want {
			t.Errorf("distroFamily(%q, %q) = %q, want %q", tt.id, tt.like, got, tt.want)
		}
	}
}

func TestParseKernelRelease(t *testing.T) {
	tests := []struct {
		in                  string
		major, minor, patch int
	}{
		{"6.18.44-fc-v657", 6, 18, 44},
		{"5.14.0-362.8.1.el9_3.x86_64", 5, 14, 0},
		{"4.18.0-513.5.1.el8_9.x86_64", 4, 18, 0},
		{"5.15.0-91-generic", 5, 15, 0},
		{"6.8.0-1010-azure", 6, 8, 0},
		{"3.10.0-1160.el7.x86_64", 3, 10, 0},
		{"5.10.0-28-amd64", 5, 10, 0},
		{"6.1.0-18-amd64", 6, 1, 0},
		{"5.11.12-300.fc34.x86_64", 5, 11, 12},
		{"6.6.87.2-microsoft-standard-WSL2", 6, 6, 87},
		{"6.0", 6, 0, 0},
		{"6.9.0-rc1", 6, 9, 0},
		{"6.10-rc7+", 6, 10, 0},
		{"5.4.x", 5, 4, 0},
		{"  6.1.0-18-amd64\n", 6, 1, 0},
		{"4.4.0-19041-Microsoft", 4, 4, 0},
	}
	for _, tt := range tests {
		k, err := ParseKernelRelease(tt.in)
		if err != nil {
			t.Errorf("ParseKernelRelease(%q): %v", tt.in, err)
			continue
		}
		if k.Major != tt.major || k.Minor != tt.minor || k.Patch != tt.patch {
			t.Errorf("ParseKernelRelease(%q) = %d.%d.%d, want %d.%d.%d", tt.in, k.Major, k.Minor, k.Patch, tt.major, tt.minor, tt.patch)
		}
		if k.Release != strings.TrimSpace(tt.in) {
			t.Errorf("ParseKernelRelease(%q).Release = %q", tt.in, k.Release)
		}
	}
	for _, bad := range []string{"", "   ", "6", "6.", "6-generic", ".6.1", "v6.1.0", "Linux 6.1", "-1.2.3", "99999999999.1.0", "\x00\xff"} {
		if k, err := ParseKernelRelease(bad); err == nil {
			t.Errorf("ParseKernelRelease(%q) = %+v, want an error", bad, k)
		}
	}
}

const debianOSRelease = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n"

func TestProbeOSDistro(t *testing.T) {
	t.Run("relative symlink to /usr/lib/os-release", func(t *testing.T) {
		h := newFakeOSHost(t)
		h.write("/usr/lib/os-release", debianOSRelease)
		h.symlink("../usr/lib/os-release", "/etc/os-release")
		got := runOS(t, h.env()).Distro
		want := Distro{ID: "debian", VersionID: "12", Name: "Debian GNU/Linux", Family: "debian"}
		if !got.Known || !reflect.DeepEqual(got.Value, want) {
			t.Fatalf("distro = %+v, want known %+v", got, want)
		}
		if len(got.Evidence) == 0 || got.Evidence[len(got.Evidence)-1].Source != "/etc/os-release" {
			t.Errorf("evidence %+v does not name /etc/os-release", got.Evidence)
		}
	})
	t.Run("falls back to /usr/lib/os-release when /etc has none", func(t *testing.T) {
		h := newFakeOSHost(t)
		h.write("/usr/lib/os-release", "ID=fedora\nVERSION_ID=40\nNAME=\"Fedora Linux\"\n")
		got := runOS(t, h.env()).Distro
		if !got.Known || got.Value.ID != "fedora" || got.Value.Family != "fedora" {
			t.Fatalf("distro = %+v, want fedora", got)
		}
		if got.Evidence[len(got.Evidence)-1].Source != "/usr/lib/os-release" {
			t.Errorf("evidence %+v does not name /usr/lib/os-release", got.Evidence)
		}
	})
	t.Run("no ID gets os-release's default", func(t *testing.T) {
		h := newFakeOSHost(t)
		h.write("/etc/os-release", "VERSION_ID=1\n")
		got := runOS(t, h.env()).Distro
		if !got.Known || got.Value.ID != "linux" || got.Value.Name != "Linux" || got.Value.Family != "" {
			t.Fatalf("distro = %+v, want ID linux", got)
		}
	})
	t.Run("ID_LIKE decides the family of a derivative", func(t *testing.T) {
		h := newFakeOSHost(t)
		h.write("/etc/os-release", "ID=amzn\nID_LIKE=\"centos rhel fedora\"\nVERSION_ID=\"2023\"\n")
		got := runOS(t, h.env()).Distro
		if !got.Known || got.Value.Family != "fedora" || !reflect.DeepEqual(got.Value.IDLike, []string{"centos", "rhel", "fedora"}) {
			t.Fatalf("distro = %+v", got)
		}
	})
	for _, kind := range []string{"missing", "empty", "binary", "dir", "loop", "unreadable"} {
		t.Run(kind, func(t *testing.T) {
			h := newFakeOSHost(t)
			h.place(kind, "/etc/os-release", debianOSRelease)
			got := runOS(t, h.env()).Distro
			if kind == "unreadable" && rootReads() {
				if !got.Known || got.Value.ID != "debian" {
					t.Fatalf("as root a mode-000 file is readable: distro = %+v", got)
				}
				return
			}
			if got.Known || got.Error == "" {
				t.Fatalf("distro = %+v, want unknown with an error", got)
			}
		})
	}
	t.Run("an unreadable /etc/os-release does not fall back", func(t *testing.T) {
		h := newFakeOSHost(t)
		h.mkdir("/etc/os-release")
		h.write("/usr/lib/os-release", debianOSRelease)
		if got := runOS(t, h.env()).Distro; got.Known {
			t.Fatalf("distro = %+v, want unknown (os-release(5): /usr/lib is only for a missing /etc file)", got)
		}
	})
}

func TestProbeOSKernelAndArch(t *testing.T) {
	for _, kind := range []string{"file", "missing", "empty", "binary", "dir", "loop", "unreadable"} {
		t.Run(kind, func(t *testing.T) {
			h := newFakeOSHost(t)
			h.place(kind, "/proc/sys/kernel/osrelease", "5.14.0-362.8.1.el9_3.x86_64\n")
			h.place(kind, "/proc/sys/kernel/arch", "aarch64\n")
			got := runOS(t, h.env())
			if kind == "file" || kind == "unreadable" && rootReads() {
				if !got.Kernel.Known || got.Kernel.Value != (Kernel{Release: "5.14.0-362.8.1.el9_3.x86_64", Major: 5, Minor: 14}) {
					t.Errorf("kernel = %+v", got.Kernel)
				}
				if !got.Arch.Known || got.Arch.Value != "aarch64" {
					t.Errorf("arch = %+v", got.Arch)
				}
				return
			}
			// Under --root nothing else may answer for the fake kernel: uname(2) describes this machine.
			if got.Kernel.Known || got.Kernel.Error == "" {
				t.Errorf("kernel = %+v, want unknown with an error", got.Kernel)
			}
			if got.Arch.Known || got.Arch.Error == "" {
				t.Errorf("arch = %+v, want unknown with an error", got.Arch)
			}
		})
	}
}

func TestProbeOSWSL(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(h *fakeOSHost)
		want    bool
		unknown bool
	}{
		{"WSL2 kernel", func(h *fakeOSHost) {
			h.write("/proc/sys/kernel/osrelease", "6.6.87.2-microsoft-standard-WSL2\n")
		}, true, false},
		{"WSL1 kernel", func(h *fakeOSHost) {
			h.write("/proc/sys/kernel/osrelease", "4.4.0-19041-Microsoft\n")
		}, true, false},
		{"custom kernel, interop handler", func(h *fakeOSHost) {
			h.write("/proc/sys/kernel/osrelease", "6.9.0-custom\n")
			h.write("/proc/sys/fs/binfmt_misc/WSLInterop", "enabled\n")
		}, true, false},
		{"interop-late handler", func(h *fakeOSHost) {
			h.write("/proc/sys/kernel/osrelease", "6.9.0-custom\n")
			h.write("/proc/sys/fs/binfmt_misc/WSLInterop-late", "enabled\n")
		}, true, false},
		{"ordinary kernel", func(h *fakeOSHost) {
			h.write("/proc/sys/kernel/osrelease", "6.1.0-18-amd64\n")
		}, false, false},
		{"kernel unreadable and no interop: cannot rule WSL out", func(h *fakeOSHost) {
			h.mkdir("/proc/sys/kernel/osrelease")
		}, false, true},
		{"kernel unreadable but interop present", func(h *fakeOSHost) {
			h.mkdir("/proc/sys/kernel/osrelease")
			h.write("/proc/sys/fs/binfmt_misc/WSLInterop", "enabled\n")
		}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newFakeOSHost(t)
			tt.setup(h)
			got := runOS(t, h.env()).WSL
			if tt.unknown {
				if got.Known || got.Error == "" {
					t.Fatalf("wsl = %+v, want unknown with an error", got)
				}
				return
			}
			if !got.Known || got.Value != tt.want {
				t.Fatalf("wsl = %+v, want known %v", got, tt.want)
			}
		})
	}
}

func TestProbeOSContainer(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(h *fakeOSHost)
		want    string
		unknown bool
	}{
		{"none", func(h *fakeOSHost) {}, "", false},
		{"podman", func(h *fakeOSHost) { h.write("/run/.containerenv", "engine=\"podman-4.9.3\"\n") }, "podman", false},
		{"docker", func(h *fakeOSHost) { h.write("/.dockerenv", "") }, "docker", false},
		{"podman wins over docker's marker", func(h *fakeOSHost) {
			h.write("/run/.containerenv", "")
			h.write("/.dockerenv", "")
		}, "podman", false},
		{"systemd-nspawn", func(h *fakeOSHost) { h.write("/run/systemd/container", "systemd-nspawn\n") }, "systemd-nspawn", false},
		{"lxc", func(h *fakeOSHost) { h.write("/run/systemd/container", "lxc") }, "lxc", false},
		{"empty systemd marker", func(h *fakeOSHost) { h.write("/run/systemd/container", "") }, "", false},
		{"garbled systemd marker", func(h *fakeOSHost) { h.write("/run/systemd/container", "\x00\x01binary") }, "", true},
		{"spaces in systemd marker", func(h *fakeOSHost) { h.write("/run/systemd/container", "not a name\n") }, "", true},
		{"systemd marker is a directory", func(h *fakeOSHost) { h.mkdir("/run/systemd/container") }, "", true},
		{"systemd marker loops", func(h *fakeOSHost) { h.place("loop", "/run/systemd/container", "") }, "", true},
		{"/run is a file", func(h *fakeOSHost) { h.write("/run", "oops") }, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newFakeOSHost(t)
			tt.setup(h)
			got := runOS(t, h.env()).Container
			if tt.unknown {
				if got.Known || got.Error == "" {
					t.Fatalf("container = %+v, want unknown with an error", got)
				}
				return
			}
			if !got.Known || got.Value != tt.want {
				t.Fatalf("container = %+v, want known %q", got, tt.want)
			}
			if len(got.Evidence) == 0 {
				t.Errorf("container fact has no evidence of what was checked")
			}
		})
	}
}

func TestProbeOSVM(t *testing.T) {
	const dmi = "/sys/class/dmi/id/"
	const clock = "/sys/devices/system/clocksource/clocksource0/available_clocksource"
	tests := []struct {
		name    string
		setup   func(h *fakeOSHost)
		want    string
		unknown bool
	}{
		{"bare metal", func(h *fakeOSHost) {
			h.write(dmi+"sys_vendor", "Dell Inc.\n")
			h.write(dmi+"product_name", "PowerEdge R650\n")
			h.write("/proc/cpuinfo", "processor\t: 0\nflags\t\t: fpu vme de pse tsc msr\n")
		}, "", false},
		{"no sources at all", func(h *fakeOSHost) {}, "", false},
		{"QEMU with KVM", func(h *fakeOSHost) {
			h.write(dmi+"sys_vendor", "QEMU\n")
			h.write(dmi+"product_name", "Standard PC (Q35 + ICH9, 2009)\n")
			h.write(clock, "kvm-clock tsc acpi_pm \n")
		}, "kvm", false},
		{"QEMU without KVM (TCG)", func(h *fakeOSHost) {
			h.write(dmi+"sys_vendor", "QEMU\n")
			h.write(clock, "tsc acpi_pm\n")
		}, "qemu", false},
		{"VMware", func(h *fakeOSHost) {
			h.write(dmi+"sys_vendor", "VMware, Inc.\n")
			h.write(dmi+"product_name", "VMware Virtual Platform\n")
		}, "vmware", false},
		{"Hyper-V", func(h *fakeOSHost) {
			h.write(dmi+"sys_vendor", "Microsoft Corporation\n")
			h.write(dmi+"product_name", "Virtual Machine\n")
		}, "hyperv", false},
		{"Surface hardware is not Hyper-V", func(h *fakeOSHost) {
			h.write(dmi+"sys_vendor", "Microsoft Corporation\n")
			h.write(dmi+"product_name", "Surface Laptop 5\n")
		}, "", false},
		{"VirtualBox", func(h *fakeOSHost) {
			h.write(dmi+"sys_vendor", "innotek GmbH\n")
			h.write(dmi+"product_name", "VirtualBox\n")
		}, "oracle", false},
		{"Xen by hypervisor type", func(h *fakeOSHost) { h.write("/sys/hypervisor/type", "xen\n") }, "xen", false},
		{"Firecracker: no DMI, kvm-clock", func(h *fakeOSHost) {
			h.write(clock, "tsc kvm-clock \n")
			h.write("/proc/cpuinfo", "flags\t\t: fpu hypervisor\n")
		}, "kvm", false},
		{"Hyper-V clock (WSL2)", func(h *fakeOSHost) { h.write(clock, "tsc hyperv_clocksource_tsc_page acpi_pm\n") }, "hyperv", false},
		{"only the CPU flag", func(h *fakeOSHost) {
			h.write("/proc/cpuinfo", "processor\t: 0\nflags\t\t: fpu vme hypervisor lahf_lm\n\nprocessor\t: 1\n")
		}, "vm-other", false},
		{"DMI unreadable but kvm-clock names it", func(h *fakeOSHost) {
			h.mkdir(dmi + "sys_vendor")
			h.write(clock, "kvm-clock\n")
		}, "kvm", false},
		{"DMI unreadable and nothing else", func(h *fakeOSHost) {
			h.mkdir(dmi + "sys_vendor")
			h.write("/proc/cpuinfo", "flags\t\t: fpu\n")
		}, "", true},
		{"cpuinfo is a directory", func(h *fakeOSHost) { h.mkdir("/proc/cpuinfo") }, "", true},
		{"binary DMI and nothing else", func(h *fakeOSHost) { h.place("binary", dmi+"sys_vendor", "") }, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newFakeOSHost(t)
			tt.setup(h)
			got := runOS(t, h.env()).VM
			if tt.unknown {
				if got.Known || got.Error == "" {
					t.Fatalf("vm = %+v, want unknown with an error", got)
				}
				return
			}
			if !got.Known || got.Value != tt.want {
				t.Fatalf("vm = %+v, want known %q", got, tt.want)
			}
		})
	}
}

func TestVMFromGopsutil(t *testing.T) {
	tests := []struct{ system, role, want string }{
		{"kvm", "guest", "kvm"},
		{"kvm", "host", ""}, // the kvm module is loaded: this machine runs VMs, it is not one
		{"hyperv", "guest", "hyperv"},
		{"vbox", "guest", "oracle"},
		{"vbox", "host", ""},
		{"docker", "guest", ""}, // a container, reported by the container fact
		{"lxc", "guest", ""},
		{"", "guest", ""},
		{"", "", ""},
	}
	for _, tt := range tests {
		if got := vmFromGopsutil(tt.system, tt.role); got != tt.want {
			t.Errorf("vmFromGopsutil(%q, %q) = %q, want %q", tt.system, tt.role, got, tt.want)
		}
	}
}

func TestReadHeadRefusesFIFO(t *testing.T) {
	h := newFakeOSHost(t)
	h.mkdir("/proc")
	if err := unix.Mkfifo(h.path("/proc/cpuinfo"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(h.path("/proc/sys_osrelease_fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := readHead(h.env(), "/proc/cpuinfo", 10); err == nil {
			t.Error("readHead on a FIFO succeeded, want an error")
		}
		if _, _, err := readKnob(h.env(), "/proc/sys_osrelease_fifo"); err == nil {
			t.Error("readKnob on a FIFO succeeded, want an error")
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("reading a FIFO blocked")
	}
}

// liveEnv is the real host as the probe runs on it, for the user running the test.
func liveEnv(t *testing.T) *Env {
	t.Helper()
	e, err := NewEnv(Options{})
	if err != nil {
		t.Fatal(err)
	}
	resolveIdentity(e, "")
	e.LookupDirs = e.lookupDirs()
	return e
}

func TestProbeOSLive(t *testing.T) {
	_, err := os.Stat("/proc/sys/kernel/osrelease")
	testenv.Require(t, err == nil, "/proc must be mounted for the live probe test")
	got := runOS(t, liveEnv(t))

	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	release := unix.ByteSliceToString(u.Release[:])
	if !got.Kernel.Known || got.Kernel.Value.Release != release {
		t.Errorf("kernel = %+v, want release %q from uname(2)", got.Kernel, release)
	}
	majorMinor := strconv.Itoa(got.Kernel.Value.Major) + "." + strconv.Itoa(got.Kernel.Value.Minor) + "."
	if !strings.HasPrefix(release, majorMinor) {
		t.Errorf("kernel %d.%d does not match release %q", got.Kernel.Value.Major, got.Kernel.Value.Minor, release)
	}
	machine := unix.ByteSliceToString(u.Machine[:])
	if !got.Arch.Known || got.Arch.Value != machine {
		t.Errorf("arch = %+v, want %q from uname(2)", got.Arch, machine)
	}
	for name, f := range map[string]Fact[string]{"container": got.Container, "vm": got.VM} {
		if !f.Known {
			t.Errorf("%s unknown on the live host: %s", name, f.Error)
		}
	}
	if !got.Distro.Known || got.Distro.Value.ID == "" {
		t.Errorf("distro = %+v, want known", got.Distro)
	}
	if !got.WSL.Known {
		t.Errorf("wsl unknown on the live host: %s", got.WSL.Error)
	}
}

// TestProbeOSLiveMatchesSystemdDetectVirt checks the VM and container answers against systemd's
// own detection, which reads CPUID and more sources than the probe does.
func TestProbeOSLiveMatchesSystemdDetectVirt(t *testing.T) {
	sdv, err := exec.LookPath("systemd-detect-virt")
	testenv.Require(t, err == nil, "systemd-detect-virt (package systemd) is needed to cross-check VM detection")
	detect := func(flag string) string {
		out, _ := exec.Command(sdv, flag).Output() // exits 1 and prints "none" when there is none
		v := strings.TrimSpace(string(out))
		switch v {
		case "none":
			return ""
		case "microsoft":
			return "hyperv"
		}
		return v
	}
	got := runOS(t, liveEnv(t))
	if want := detect("--vm"); got.VM.Value != want {
		t.Errorf("vm = %q (evidence %+v), systemd-detect-virt --vm says %q", got.VM.Value, got.VM.Evidence, want)
	}
	if want := detect("--container"); want != "" && want != "wsl" && got.Container.Value != want {
		t.Errorf("container = %q, systemd-detect-virt --container says %q", got.Container.Value, want)
	}
}

func FuzzParseOSRelease(f *testing.F) {
	f.Add([]byte(debianOSRelease))
	f.Add([]byte("ID=\"rhel\"\nID_LIKE=\"fedora\"\n"))
	f.Add([]byte(`NAME='x' "y" \z` + "\n# c\nA=\"\\\"\"\n"))
	f.Add([]byte("ID=\"unterminated\n=x\n"))
	f.Add([]byte{0, 0xff, '=', '"'})
	f.Fuzz(func(t *testing.T, b []byte) {
		kv, err := ParseOSRelease(b)
		if err != nil {
			if kv != nil {
				t.Fatalf("error %v with a non-nil map", err)
			}
			return
		}
		if len(kv) == 0 {
			t.Fatal("no error and no assignments")
		}
		for k := range kv {
			if !isShellName(k) {
				t.Fatalf("key %q is not a shell name", k)
			}
		}
		again, err := ParseOSRelease(b)
		if err != nil || !reflect.DeepEqual(kv, again) {
			t.Fatalf("parsing twice differs: %q vs %q (%v)", kv, again, err)
		}
	})
}

func FuzzParseKernelRelease(f *testing.F) {
	for _, s := range []string{"6.18.44-fc-v657", "5.14.0-362.8.1.el9_3.x86_64", "6.6.87.2-microsoft-standard-WSL2", "6.0", "6", "", "1.2.3.4.5", "999999999.9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseKernelRelease(s)
		if err != nil {
			return
		}
		if k.Major < 0 || k.Minor < 0 || k.Patch < 0 {
			t.Fatalf("negative version in %+v", k)
		}
		if k.Release != strings.TrimSpace(s) {
			t.Fatalf("release %q, want %q", k.Release, strings.TrimSpace(s))
		}
		canon := strconv.Itoa(k.Major) + "." + strconv.Itoa(k.Minor) + "." + strconv.Itoa(k.Patch)
		if again, err := ParseKernelRelease(canon); err != nil || again.Major != k.Major || again.Minor != k.Minor || again.Patch != k.Patch {
			t.Fatalf("%q parsed as %s, which parses as %+v (%v)", s, canon, again, err)
		}
		if !k.AtLeast(k.Major, k.Minor) || k.AtLeast(k.Major, k.Minor+1) {
			t.Fatalf("AtLeast disagrees with %+v", k)
		}
	})
}

// TestProbesOnBuiltHosts runs the os, security and userns probes over hosts laid out by probetest,
// the builder the shipped host profiles come from, so the two agree on where things live.
func TestProbesOnBuiltHosts(t *testing.T) {
	user := probetest.User{Name: "ann", UID: 1000, GID: 1000, Home: "/home/ann", Shell: "/bin/bash"}
	tests := []struct {
		name  string
		host  probetest.Host
		check func(t *testing.T, f *Facts)
	}{
		{"Ubuntu 24.04 on QEMU", probetest.Host{
			OSRelease: probetest.OSRelease{ID: "ubuntu", IDLike: "debian", Name: "Ubuntu", VersionID: "24.04"},
			Kernel:    "6.8.0-1010-azure", Arch: "x86_64",
			DMI: probetest.DMI{SysVendor: "QEMU", ProductName: "Standard PC (Q35 + ICH9, 2009)"},
			AppArmor: &probetest.AppArmor{RestrictUnprivilegedUserns: 1, Profiles: map[string]string{
				"rootlesskit": ubuntuRootlesskitProfile,
			}},
			SeccompActions:    []string{"kill_process", "errno", "user_notif", "allow"},
			MaxUserNamespaces: 63412, UnprivilegedUsernsClone: probetest.Absent,
			SubUID: []string{"ann:100000:65536"}, SubGID: []string{"ann:100000:65536"},
			User: user,
			Binaries: []probetest.Binary{
				{Name: "newuidmap", Setuid: true, VersionFlags: []string{}},
				{Name: "newgidmap", Setuid: true, VersionFlags: []string{}},
			},
		}, func(t *testing.T, f *Facts) {
			if d := f.OS.Distro; !d.Known || d.Value.ID != "ubuntu" || d.Value.Family != "debian" || d.Value.VersionID != "24.04" {
				t.Errorf("distro = %+v", d)
			}
			if k := f.OS.Kernel; !k.Known || k.Value.Major != 6 || k.Value.Minor != 8 {
				t.Errorf("kernel = %+v", k)
			}
			if f.OS.VM.Value != "qemu" || f.OS.Arch.Value != "x86_64" || f.OS.WSL.Value || f.OS.Container.Value != "" {
				t.Errorf("os = %+v", f.OS)
			}
			want := AppArmor{Enabled: true, RestrictUnprivilegedUserns: 1, RootlesskitProfiles: []string{"rootlesskit: /usr/bin/rootlesskit"}}
			if a := f.Security.AppArmor; !a.Known || !reflect.DeepEqual(a.Value, want) {
				t.Errorf("apparmor = %+v, want %+v", a, want)
			}
			if s := f.Security.SELinux; !s.Known || s.Value.Enabled {
				t.Errorf("selinux = %+v", s)
			}
			if u := f.UserNS; u.MaxUserNamespaces.Value != 63412 || u.UnprivilegedClone.Value != -1 ||
				!reflect.DeepEqual(u.SubUID.Value, []IDRange{{100000, 65536}}) || !u.NewUIDMap.Value.Found {
				t.Errorf("userns = %+v", u)
			}
			if probetest.CanSetOwners() && !f.UserNS.NewUIDMap.Value.Setuid {
				t.Errorf("newuidmap = %+v, want setuid", f.UserNS.NewUIDMap)
			}
		}},
		{"Fedora 40 with SELinux and file caps", probetest.Host{
			OSRelease: probetest.OSRelease{ID: "fedora", Name: "Fedora Linux", VersionID: "40"},
			Kernel:    "6.8.5-301.fc40.x86_64", Arch: "x86_64",
			SELinux:           "enforcing",
			SeccompActions:    []string{"kill_process", "user_notif", "allow"},
			MaxUserNamespaces: 127431, UnprivilegedUsernsClone: probetest.Absent,
			SubUID: []string{"ann:524288:65536"}, SubGID: []string{"ann:524288:65536"},
			User: user,
			Binaries: []probetest.Binary{
				{Name: "newuidmap", Caps: "cap_setuid=ep", VersionFlags: []string{}},
				{Name: "newgidmap", Caps: "cap_setgid=ep", VersionFlags: []string{}},
			},
		}, func(t *testing.T, f *Facts) {
			if d := f.OS.Distro; d.Value.Family != "fedora" {
				t.Errorf("distro = %+v", d)
			}
			if s := f.Security.SELinux; !s.Known || s.Value != (SELinux{Enabled: true, Mode: "enforcing"}) {
				t.Errorf("selinux = %+v", s)
			}
			if a := f.Security.AppArmor; !a.Known || a.Value.Enabled || a.Value.RestrictUnprivilegedUserns != -1 {
				t.Errorf("apparmor = %+v", a)
			}
			if f.OS.VM.Value != "" {
				t.Errorf("vm = %+v, want bare metal", f.OS.VM)
			}
			if probetest.CanSetOwners() && canSetFileCaps(os.TempDir()) {
				if m := f.UserNS.NewUIDMap; !m.Known || m.Value.Setuid || m.Value.Caps != "cap_setuid=ep" {
					t.Errorf("newuidmap = %+v, want file caps", m)
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := tt.host.Build(dir); err != nil {
				t.Fatal(err)
			}
			e := &Env{Root: sys.Root{Dir: dir}, Runner: sys.NewStub(t), Now: time.Now}
			resolveIdentity(e, "ann")
			e.LookupDirs = e.lookupDirs()
			var f Facts
			for _, p := range []func(context.Context, *Env) func(*Facts){probeOS, probeSecurity, probeUserNS} {
				p(context.Background(), e)(&f)
			}
			tt.check(t, &f)
		})
	}
}

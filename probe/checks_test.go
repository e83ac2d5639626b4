package probe

import (
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// healthyFacts is a host on which every check passes: Debian 12 with cgroup v2, systemd, a logged-in
// user alice (uid 1000) and the nerdctl-full stack in ~/.local. Tests change one thing at a time.
func healthyFacts() *Facts {
	fileEv := func(src, ex string) Evidence { return Evidence{Kind: "file", Source: src, Excerpt: ex} }
	dev := func(p string) Fact[Device] {
		return Known(Device{Path: p, Exists: true, CharDev: true, Mode: "0666", Usable: true, How: DeviceHowOpened},
			Evidence{Kind: "syscall", Source: "open(" + p + ", O_RDWR|O_NONBLOCK)", Excerpt: "ok"})
	}
	f := &Facts{Binaries: map[string]Fact[Binary]{}}
	f.Identity = Identity{
		User: Known("alice"), UID: Known(1000), GID: Known(1000), Root: Known(false, Evidence{Kind: "syscall", Source: "getuid()", Excerpt: "1000"}),
		Home: Known("/home/alice"), SudoUser: Known("", Evidence{Kind: "env", Source: "SUDO_USER", Excerpt: "(unset)"}),
		XDGRuntimeDir:  Known(RuntimeDir{Path: "/run/user/1000", Set: true, Exists: true, Owned: true, Writable: true, Mode: "0700"}, Evidence{Kind: "env", Source: "XDG_RUNTIME_DIR", Excerpt: "/run/user/1000"}),
		DBusSessionBus: Known("unix:path=/run/user/1000/bus"),
		Path:           Known([]string{"/home/alice/.local/bin", "/usr/local/bin", "/usr/bin", "/bin", "/usr/local/sbin", "/usr/sbin", "/sbin"}, Evidence{Kind: "env", Source: "PATH"}),
	}
	f.OS = OS{
		Distro: Known(Distro{ID: "debian", VersionID: "12", Name: "Debian GNU/Linux 12 (bookworm)", Family: "debian"}, fileEv("/etc/os-release", "ID=debian VERSION_ID=12")),
		Kernel: Known(Kernel{Release: "6.1.0-18-amd64", Major: 6, Minor: 1}, fileEv("/proc/sys/kernel/osrelease", "6.1.0-18-amd64")),
		Arch:   Known("x86_64"), WSL: Known(false), Container: Known(""), VM: Known(""),
	}
	f.Security = Security{
		SELinux:        Known(SELinux{Mode: "disabled"}, fileEv("/sys/fs/selinux", "does not exist")),
		AppArmor:       Known(AppArmor{Enabled: true, RestrictUnprivilegedUserns: -1}, fileEv("/proc/sys/kernel/apparmor_restrict_unprivileged_userns", "does not exist")),
		SeccompActions: Known([]string{"kill_process", "kill_thread", "trap", "errno", "user_notif", "trace", "log", "allow"}, fileEv("/proc/sys/kernel/seccomp/actions_avail", "… user_notif …")),
	}
	f.UserNS = UserNS{
		MaxUserNamespaces: Known(63331, fileEv("/proc/sys/user/max_user_namespaces", "63331")),
		UnprivilegedClone: Known(1, fileEv("/proc/sys/kernel/unprivileged_userns_clone", "1")),
		SubUID:            Known([]IDRange{{Start: 100000, Count: 65536}}, fileEv("/etc/subuid", "alice:100000:65536")),
		SubGID:            Known([]IDRange{{Start: 100000, Count: 65536}}, fileEv("/etc/subgid", "alice:100000:65536")),
		NewUIDMap:         Known(IDMapper{Path: "/usr/bin/newuidmap", Found: true, Setuid: true}, fileEv("/usr/bin/newuidmap", "mode 4755 owner 0")),
		NewGIDMap:         Known(IDMapper{Path: "/usr/bin/newgidmap", Found: true, Setuid: true}, fileEv("/usr/bin/newgidmap", "mode 4755 owner 0")),
	}
	f.Cgroup = Cgroup{
		Version:     Known("v2", fileEv("/sys/fs/cgroup/cgroup.controllers", "exists")),
		Controllers: Known([]string{"cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc"}),
		Delegated:   Known([]string{"cpuset", "cpu", "io", "memory", "pids"}, fileEv("/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/cgroup.controllers", "cpuset cpu io memory pids")),
	}
	f.Systemd = Systemd{
		PID1: Known(true, fileEv("/run/systemd/system", "exists")), Version: Known(252),
		UserManager: Known(true), Linger: Known(true, fileEv("/var/lib/systemd/linger/alice", "exists")),
		UserBus: Known(true, fileEv("/run/user/1000/bus", "socket")),
	}
	f.Devices = Devices{Fuse: dev("/dev/fuse"), Tun: dev("/dev/net/tun")}
	f.Network = Network{
		UnprivilegedPortStart: Known(0, fileEv("/proc/sys/net/ipv4/ip_unprivileged_port_start", "0")),
		CNI:                   Known(CNI{Dir: "/home/alice/.local/libexec/cni", Plugins: []string{"bridge", "firewall", "host-local", "loopback", "portmap", "tuning"}, Version: "1.6.2"}),
	}
	for _, b := range []struct {
		name, version string
		features      []string
	}{
		{"containerd", "2.1.4", nil},
		{"nerdctl", "2.1.6", nil},
		{"rootlesskit", "2.3.5", []string{"detach-netns", "pasta"}},
		{"slirp4netns", "1.2.0", []string{"netns-type"}},
		{"runc", "1.3.0", nil},
		{"containerd-rootless.sh", "", []string{"detach-netns"}},
		{"containerd-rootless-setuptool.sh", "", nil},
		{"nsenter", "2.38.1", nil},
		{"iptables", "1.8.9", []string{"nft"}},
		{"fuse-overlayfs", "1.10", nil},
		{"containerd-fuse-overlayfs-grpc", "", nil},
		{"containerd-stargz-grpc", "0.16.3", nil},
		{"buildkitd", "0.23.2", nil},
		{"buildctl", "0.23.2", nil},
		{"bypass4netns", "0.4.2", nil},
		{"bypass4netnsd", "0.4.2", nil},
		{"systemctl", "252", nil},
	} {
		setBin(f, b.name, b.version, b.features...)
	}
	for _, name := range []string{"vpnkit", "pasta", "crun"} {
		dropBin(f, name)
	}
	f.State = State{
		ContainerdConfig:   Known(ConfigFile{Path: "/home/alice/.config/containerd/config.toml", Exists: true, Valid: true, Version: 3, ProxyPlugins: []string{"fuse-overlayfs", "stargz"}}),
		NerdctlConfig:      Known(ConfigFile{Path: "/home/alice/.config/nerdctl/nerdctl.toml"}),
		ContainerdUnit:     Known(ConfigFile{Path: "/home/alice/.config/systemd/user/containerd.service", Exists: true, Valid: true}),
		ContainerdOverride: Known(ConfigFile{Path: "/home/alice/.config/systemd/user/containerd.service.d/override.conf"}),
		RootlessKit:        Known(RootlessKitState{StateDir: "/run/user/1000/containerd-rootless", Exists: true, ChildPID: 4242, Running: true, DetachedNetns: true}),
		SnapshotterEnv:     Known("", Evidence{Kind: "env", Source: "CONTAINERD_SNAPSHOTTER", Excerpt: "(unset)"}),
		RunNRI:             Known(false, fileEv("/run/nri", "does not exist")),
	}
	f.Live = Live{
		OverlayUserns: Known(LiveTest{Status: LivePassed, Detail: "mounted overlay in a user namespace"}),
		FuseOverlayfs: Known(LiveTest{Status: LivePassed}),
	}
	return f
}

// setBin records an installed program with its version and features.
func setBin(f *Facts, name, version string, features ...string) {
	b := Binary{Name: name, Found: true, Path: "/home/alice/.local/bin/" + name, Version: version}
	for _, ft := range features {
		if b.Features == nil {
			b.Features = map[string]bool{}
		}
		b.Features[ft] = true
	}
	f.Binaries[name] = Known(b, Evidence{Kind: "command", Source: b.Path + " --version", Excerpt: name + " " + version})
}

// setBinAt is setBin at a given path.
func setBinAt(f *Facts, name, path, version string, features ...string) {
	setBin(f, name, version, features...)
	b := f.Binaries[name]
	b.Value.Path = path
	f.Binaries[name] = b
}

// dropBin records a program the probe looked for and did not find.
func dropBin(f *Facts, name string) {
	f.Binaries[name] = Known(Binary{Name: name}, Evidence{Kind: "file", Source: "/usr/local/bin:/usr/bin:/bin", Excerpt: name + " not found in these directories"})
}

// unknownBin records a program the probe could not look for.
func unknownBin(f *Facts, name string) {
	f.Binaries[name] = Unknown[Binary](errors.New("probe timed out"))
}

func withFamily(f *Facts, id, family string) *Facts {
	f.OS.Distro = Known(Distro{ID: id, Family: family})
	return f
}

func setKernel(f *Facts, major, minor int) {
	f.OS.Kernel = Known(Kernel{Major: major, Minor: minor, Release: kernelLabel(Kernel{Major: major, Minor: minor})})
}

func runCheck(t *testing.T, id string, f *Facts) Result {
	t.Helper()
	c, ok := CheckByID(id)
	if !ok {
		t.Fatalf("no check %s", id)
	}
	return c.Run(f)
}

// checkCase is one row of a check's table: a change to the healthy host and what the check says.
type checkCase struct {
	name  string
	mod   func(f *Facts)
	want  Status
	title string // a substring the title must contain
}

func runCheckCases(t *testing.T, id string, cases []checkCase) {
	t.Helper()
	seen := map[Status]bool{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := healthyFacts()
			if tc.mod != nil {
				tc.mod(f)
			}
			r := runCheck(t, id, f)
			if r.Status != tc.want {
				t.Fatalf("status = %s, want %s (title %q)", r.Status, tc.want, r.Title)
			}
			if !strings.Contains(r.Title, tc.title) {
				t.Errorf("title = %q, want it to contain %q", r.Title, tc.title)
			}
			assertResultShape(t, r)
		})
		seen[tc.want] = true
	}
	if !seen[StatusSkip] {
		t.Errorf("%s: the table has no skip case (unknown facts)", id)
	}
	if !seen[StatusOK] {
		t.Errorf("%s: the table has no ok case", id)
	}
}

// assertResultShape checks what every result must have whatever its status.
func assertResultShape(t *testing.T, r Result) {
	t.Helper()
	if r.ID == "" || r.Why == "" || r.Doc == "" || r.Title == "" {
		t.Errorf("result lacks id, title, why or doc: %+v", r)
	}
	if strings.Contains(r.Title, "internal error") {
		t.Errorf("check crashed: %s", r.Title)
	}
	switch r.Status {
	case StatusWarn, StatusFail:
		if r.Fix.Summary == "" {
			t.Errorf("%s: a %s result has no fix summary", r.ID, r.Status)
		}
		if len(r.Evidence) == 0 {
			t.Errorf("%s: a %s result shows no evidence", r.ID, r.Status)
		}
	case StatusOK, StatusSkip:
		if !r.Fix.IsZero() {
			t.Errorf("%s: a %s result carries a fix: %+v", r.ID, r.Status, r.Fix)
		}
	default:
		t.Errorf("%s: unknown status %q", r.ID, r.Status)
	}
}

func TestCatalogShape(t *testing.T) {
	idRE := regexp.MustCompile(`^VS-[A-Z0-9]+-[0-9]{3}$`)
	seen := map[string]bool{}
	cat := Catalog()
	if len(cat) < 30 {
		t.Errorf("catalog has %d checks, want the 30+ failure modes covered", len(cat))
	}
	for _, c := range cat {
		if !idRE.MatchString(c.ID) {
			t.Errorf("ID %q does not match %s", c.ID, idRE)
		}
		if seen[c.ID] {
			t.Errorf("ID %s is used twice", c.ID)
		}
		seen[c.ID] = true
		if c.Title == "" || c.Why == "" || c.Doc == "" {
			t.Errorf("%s lacks title, why or doc", c.ID)
		}
		if !strings.HasPrefix(c.Doc, "https://") {
			t.Errorf("%s: doc %q is not a link", c.ID, c.Doc)
		}
		if c.run == nil || c.fix == nil {
			t.Errorf("%s has no run or fix function", c.ID)
		}
		for _, fam := range []string{"debian", "fedora", ""} {
			if c.FixFor(fam).Summary == "" {
				t.Errorf("%s: FixFor(%q) has no summary", c.ID, fam)
			}
		}
	}
}

func TestDiagnoseZeroFacts(t *testing.T) {
	for name, f := range map[string]*Facts{"zero": {}, "nil": nil} {
		t.Run(name, func(t *testing.T) {
			rs := Diagnose(f)
			if len(rs) != len(Catalog()) {
				t.Fatalf("%d results for %d checks", len(rs), len(Catalog()))
			}
			for i, r := range rs {
				if r.ID != Catalog()[i].ID {
					t.Errorf("result %d is %s, want catalog order (%s)", i, r.ID, Catalog()[i].ID)
				}
				if r.Status != StatusSkip {
					t.Errorf("%s on unknown facts: %s %q, want skip", r.ID, r.Status, r.Title)
				}
				assertResultShape(t, r)
			}
			if got := ExitCode(rs); got != ExitOK {
				t.Errorf("exit code on unknown facts = %d, want %d", got, ExitOK)
			}
		})
	}
}

func TestDiagnoseHealthy(t *testing.T) {
	rs := Diagnose(healthyFacts())
	skips := map[string]bool{"VS-APPARMOR-001": true, "VS-WSL-001": true}
	for _, r := range rs {
		want := StatusOK
		if skips[r.ID] {
			want = StatusSkip
		}
		if r.Status != want {
			t.Errorf("%s: %s %q, want %s", r.ID, r.Status, r.Title, want)
		}
		assertResultShape(t, r)
	}
	if got := ExitCode(rs); got != ExitOK {
		t.Errorf("exit code = %d, want %d", got, ExitOK)
	}
}

func TestExitCode(t *testing.T) {
	r := func(ss ...Status) []Result {
		var out []Result
		for _, s := range ss {
			out = append(out, Result{Status: s})
		}
		return out
	}
	for _, tc := range []struct {
		in   []Result
		want int
	}{
		{nil, 0},
		{r(StatusOK, StatusSkip), 0},
		{r(StatusOK, StatusWarn), 4},
		{r(StatusWarn, StatusFail, StatusOK), 3},
		{r(StatusFail, StatusWarn), 3},
	} {
		if got := ExitCode(tc.in); got != tc.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestCheckByID(t *testing.T) {
	c, ok := CheckByID("vs-subid-001")
	if !ok || c.ID != "VS-SUBID-001" {
		t.Errorf("CheckByID is case-insensitive: got %q, %v", c.ID, ok)
	}
	if _, ok := CheckByID("VS-NOPE-999"); ok {
		t.Error("CheckByID found a check that does not exist")
	}
}

// TestFixPerDistro pins the places where Debian/Ubuntu and Fedora/RHEL differ: package names, tools
// and topics that exist on only one of them.
func TestFixPerDistro(t *testing.T) {
	for _, tc := range []struct {
		id             string
		debian, fedora string // a substring of the joined root commands or summary
	}{
		{"VS-IDMAP-001", "apt-get install -y uidmap", "dnf install -y shadow-utils"},
		{"VS-IDMAP-002", "apt-get install -y uidmap", "dnf install -y shadow-utils"},
		{"VS-DBUS-001", "apt-get install -y dbus-user-session", "dnf install -y dbus-daemon"},
		{"VS-OVERLAY-001", "apt-get install -y fuse-overlayfs", "dnf install -y fuse-overlayfs"},
		{"VS-IPTABLES-001", "apt-get install -y iptables", "dnf install -y iptables-nft"},
		{"VS-NET-001", "apt-get install -y slirp4netns", "dnf install -y slirp4netns"},
		{"VS-CGROUP-001", "update-grub", "grubby --update-kernel=ALL"},
		{"VS-APPARMOR-001", "/etc/apparmor.d/usr.local.bin.rootlesskit", "Does not apply"},
		{"VS-USERNS-002", "kernel.unprivileged_userns_clone=1", "Does not apply"},
	} {
		t.Run(tc.id, func(t *testing.T) {
			c, _ := CheckByID(tc.id)
			deb, fed, both := fixText(c.FixFor("debian")), fixText(c.FixFor("fedora")), fixText(c.FixFor(""))
			if !strings.Contains(deb, tc.debian) {
				t.Errorf("Debian fix lacks %q:\n%s", tc.debian, deb)
			}
			if !strings.Contains(fed, tc.fedora) {
				t.Errorf("Fedora fix lacks %q:\n%s", tc.fedora, fed)
			}
			if strings.Contains(deb, tc.fedora) || strings.Contains(fed, tc.debian) {
				t.Errorf("a distro's fix mentions the other's:\nDebian: %s\nFedora: %s", deb, fed)
			}
			if strings.Contains(deb, "dnf ") || strings.Contains(fed, "apt-get") {
				t.Errorf("wrong package manager:\nDebian: %s\nFedora: %s", deb, fed)
			}
			if strings.Contains(tc.debian, "install") && (!strings.Contains(both, "apt-get") || !strings.Contains(both, "dnf")) {
				t.Errorf("the fix for an unknown distro must cover both: %s", both)
			}
		})
	}
}

func TestFixNotesPerDistro(t *testing.T) {
	c, _ := CheckByID("VS-OVERLAY-001")
	if fed := fixText(c.FixFor("fedora")); !strings.Contains(fed, "SELinux") {
		t.Errorf("Fedora's overlay fix says nothing about SELinux: %s", fed)
	}
	if deb := fixText(c.FixFor("debian")); strings.Contains(deb, "SELinux enabled") || !strings.Contains(deb, "permit_mounts_in_userns") {
		t.Errorf("Debian's overlay fix: %s", deb)
	}
}

func fixText(x Fix) string {
	return strings.Join(slices.Concat([]string{x.Summary}, x.Root, x.User, x.Notes), "\n")
}

// TestFixUsesHostUser checks that fixes name the user the doctor ran for, and the sudo caller when
// it ran as root.
func TestFixUsesHostUser(t *testing.T) {
	f := healthyFacts()
	f.Systemd.Linger = Known(false)
	if r := runCheck(t, "VS-LINGER-001", f); !slices.Contains(r.Fix.Root, "loginctl enable-linger alice") {
		t.Errorf("linger fix = %q", r.Fix.Root)
	}
	f = healthyFacts()
	f.Identity.Root = Known(true)
	f.Identity.UID = Known(0)
	f.Identity.User = Known("root")
	f.Identity.SudoUser = Known("bob")
	f.Systemd.Linger = Known(false)
	if r := runCheck(t, "VS-LINGER-001", f); !slices.Contains(r.Fix.Root, "loginctl enable-linger bob") {
		t.Errorf("linger fix as root via sudo = %q, want it for bob", r.Fix.Root)
	}
}

func TestResultJSON(t *testing.T) {
	f := healthyFacts()
	f.Systemd.Linger = Known(false)
	b, err := json.Marshal(runCheck(t, "VS-LINGER-001", f))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "status", "title", "evidence", "why", "fix", "doc"} {
		if _, ok := m[k]; !ok {
			t.Errorf("result JSON lacks %q: %s", k, b)
		}
	}
	fix, _ := m["fix"].(map[string]any)
	for _, k := range []string{"summary", "root", "notes"} {
		if _, ok := fix[k]; !ok {
			t.Errorf("fix JSON lacks %q: %s", k, b)
		}
	}
}

func TestCheckRecoversFromPanic(t *testing.T) {
	c := Check{ID: "VS-TEST-001", Title: "t", Why: "w", Doc: "https://x", run: func(*Facts, checkHost) Result { panic("boom") }}
	r := c.Run(&Facts{})
	if r.Status != StatusSkip || !strings.Contains(r.Title, "boom") {
		t.Errorf("panicking check gave %+v", r)
	}
}

func TestEvidenceLines(t *testing.T) {
	x := Unknown[int](errors.New("read /proc/x: permission denied"), Evidence{Kind: "file", Source: "/proc/x"})
	got := factLines(x)
	want := []string{"file /proc/x", "error: read /proc/x: permission denied"}
	if !slices.Equal(got, want) {
		t.Errorf("factLines = %q, want %q", got, want)
	}
	if got := evidenceLines([]Evidence{{Kind: "env", Source: "SUDO_USER", Excerpt: "bob"}}); !slices.Equal(got, []string{"env SUDO_USER: bob"}) {
		t.Errorf("evidenceLines = %q", got)
	}
}

func TestResultEvidenceIsUnique(t *testing.T) {
	if got := uniqueLines([]string{"a", "b", "a", "c", "b"}); strings.Join(got, ",") != "a,b,c" {
		t.Errorf("uniqueLines = %q", got)
	}
	// On a host without systemd, several facts cite the same missing /run/systemd/system.
	f := &Facts{}
	missing := Evidence{Kind: "file", Source: "/run/systemd/system", Excerpt: "does not exist"}
	f.Systemd.PID1 = Known(false, missing)
	f.Systemd.UserManager = Known(false, missing)
	for _, r := range Diagnose(f) {
		seen := map[string]bool{}
		for _, e := range r.Evidence {
			if seen[e] {
				t.Errorf("%s repeats evidence %q", r.ID, e)
			}
			seen[e] = true
		}
	}
}

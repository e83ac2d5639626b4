package probe

import (
	"bufio"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/virt-setup/virt-setup/internal/testenv"
)

const delegatedPath1000 = "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/cgroup.controllers"

func TestCgroupVersion(t *testing.T) {
	tests := []struct {
		name  string
		setup func(h *fakeRootDir)
		want  string // "" means unknown
	}{
		{"unified", func(h *fakeRootDir) { h.file("/sys/fs/cgroup/cgroup.controllers", "cpu memory pids\n", 0o444) }, CgroupV2},
		{"hybrid", func(h *fakeRootDir) {
			for _, d := range []string{"cpu,cpuacct", "memory", "pids", "systemd", "unified"} {
				h.mkdir("/sys/fs/cgroup/" + d)
			}
			h.symlink("cpu,cpuacct", "/sys/fs/cgroup/cpu")
		}, CgroupHybrid},
		{"hybrid, unified holds cgroup.controllers", func(h *fakeRootDir) {
			h.mkdir("/sys/fs/cgroup/memory")
			h.file("/sys/fs/cgroup/unified/cgroup.controllers", "", 0o444)
		}, CgroupHybrid},
		{"legacy v1", func(h *fakeRootDir) {
			h.mkdir("/sys/fs/cgroup/memory")
			h.mkdir("/sys/fs/cgroup/pids")
		}, CgroupV1},
		{"v1 names as files are not hierarchies", func(h *fakeRootDir) { h.file("/sys/fs/cgroup/memory", "", 0o644) }, ""},
		{"unified alone", func(h *fakeRootDir) { h.mkdir("/sys/fs/cgroup/unified") }, ""},
		{"nothing mounted", func(h *fakeRootDir) { h.mkdir("/sys/fs/cgroup") }, ""},
		{"no /sys", func(h *fakeRootDir) {}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newFakeRootDir(t)
			tt.setup(h)
			c := applyProbe(t, h.env(sampleUser()), probeCgroup).Cgroup
			if tt.want == "" {
				mustUnknown(t, "version", c.Version, "no cgroup filesystem recognised")
				mustUnknown(t, "controllers", c.Controllers, "cgroup version is unknown")
				mustUnknown(t, "delegated", c.Delegated, "cgroup version is unknown")
				return
			}
			if got := mustKnown(t, "version", c.Version); got != tt.want {
				t.Fatalf("version %q, want %q (evidence %+v)", got, tt.want, c.Version.Evidence)
			}
			if tt.want != CgroupV2 {
				// Nothing is available to rootless cgroup management off the unified hierarchy.
				if got := mustKnown(t, "controllers", c.Controllers); len(got) != 0 {
					t.Errorf("controllers %q on %s", got, tt.want)
				}
				if got := mustKnown(t, "delegated", c.Delegated); len(got) != 0 {
					t.Errorf("delegated %q on %s", got, tt.want)
				}
			}
		})
	}
}

func TestCgroupControllers(t *testing.T) {
	tests := []struct {
		name            string
		root, deleg     func(h *fakeRootDir, p string)
		noUser          bool
		wantRoot        []string
		wantDelegated   []string
		rootErr, delErr string
	}{
		{
			name:          "systemd 252 default delegation",
			root:          func(h *fakeRootDir, p string) { h.file(p, "cpuset cpu io memory hugetlb pids rdma misc\n", 0o444) },
			deleg:         func(h *fakeRootDir, p string) { h.file(p, "cpu memory pids\n", 0o444) },
			wantRoot:      []string{"cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc"},
			wantDelegated: []string{"cpu", "memory", "pids"},
		},
		{
			name:          "nothing delegated",
			root:          func(h *fakeRootDir, p string) { h.file(p, "memory pids", 0o444) },
			deleg:         func(h *fakeRootDir, p string) { h.file(p, "", 0o444) },
			wantRoot:      []string{"memory", "pids"},
			wantDelegated: []string{},
		},
		{
			name:     "no user manager",
			root:     func(h *fakeRootDir, p string) { h.file(p, "memory pids", 0o444) },
			deleg:    func(h *fakeRootDir, p string) {},
			wantRoot: []string{"memory", "pids"},
			delErr:   "no systemd user manager (user@1000.service)",
		},
		{
			name:    "garbled",
			root:    func(h *fakeRootDir, p string) { h.file(p, "memory \x00\xff\n", 0o444) },
			deleg:   func(h *fakeRootDir, p string) { h.file(p, "Memory", 0o444) },
			rootErr: "is not a controller name",
			delErr:  `"Memory" is not a controller name`,
		},
		{
			name:    "enormous",
			root:    func(h *fakeRootDir, p string) { h.big(p) },
			deleg:   func(h *fakeRootDir, p string) { h.big(p) },
			rootErr: "larger than 1 MiB",
			delErr:  "larger than 1 MiB",
		},
		{
			name:    "directories instead of files",
			root:    func(h *fakeRootDir, p string) { h.mkdir(p) },
			deleg:   func(h *fakeRootDir, p string) { h.mkdir(p) },
			rootErr: "is a directory",
			delErr:  "is a directory",
		},
		{
			name:     "user unknown",
			root:     func(h *fakeRootDir, p string) { h.file(p, "memory", 0o444) },
			deleg:    func(h *fakeRootDir, p string) { h.file(p, "memory", 0o444) },
			noUser:   true,
			wantRoot: []string{"memory"},
			delErr:   "the user is unknown",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newFakeRootDir(t)
			tt.root(h, "/sys/fs/cgroup/cgroup.controllers")
			tt.deleg(h, delegatedPath1000)
			u := sampleUser()
			if tt.noUser {
				u = User{}
			}
			c := applyProbe(t, h.env(u), probeCgroup).Cgroup
			if v := mustKnown(t, "version", c.Version); v != CgroupV2 {
				t.Fatalf("version %q", v)
			}
			if tt.rootErr != "" {
				mustUnknown(t, "controllers", c.Controllers, tt.rootErr)
			} else if got := mustKnown(t, "controllers", c.Controllers); !reflect.DeepEqual(got, tt.wantRoot) {
				t.Errorf("controllers %q, want %q", got, tt.wantRoot)
			}
			if tt.delErr != "" {
				mustUnknown(t, "delegated", c.Delegated, tt.delErr)
			} else if got := mustKnown(t, "delegated", c.Delegated); !reflect.DeepEqual(got, tt.wantDelegated) {
				t.Errorf("delegated %q, want %q", got, tt.wantDelegated)
			}
		})
	}
}

func TestParseCgroupControllers(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{"cpuset cpu io memory hugetlb pids rdma misc\n", []string{"cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc"}, false},
		{"", []string{}, false},
		{"\n", []string{}, false},
		{"net_cls perf_event", []string{"net_cls", "perf_event"}, false},
		{"memory\tpids", []string{"memory", "pids"}, false},
		{"memory,pids", nil, true},
		{"<html>", nil, true},
		{"mémoire", nil, true},
	}
	for _, tt := range tests {
		got, err := ParseCgroupControllers([]byte(tt.in))
		if (err != nil) != tt.wantErr || !tt.wantErr && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseCgroupControllers(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func FuzzParseCgroupControllers(f *testing.F) {
	f.Add([]byte("cpuset cpu io memory hugetlb pids rdma misc\n"))
	f.Add([]byte(""))
	f.Add([]byte("\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		words, err := ParseCgroupControllers(b)
		if err != nil {
			return
		}
		for _, w := range words {
			if w == "" || strings.ContainsAny(w, " \t\n") {
				t.Fatalf("bad word %q", w)
			}
		}
	})
}

// mountedCgroupVersion tells the cgroup layout from /proc/self/mountinfo, independently of the
// probe: what is mounted at /sys/fs/cgroup and whether a cgroup2 sits at /sys/fs/cgroup/unified.
func mountedCgroupVersion(t *testing.T) string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fsAt := map[string]string{}
	v1 := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "36 35 98:0 / /mnt rw,noatime master:1 - ext3 /dev/root rw": the mount point is field 5,
		// the type is the first field after " - ".
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields, postFields := strings.Fields(pre), strings.Fields(post)
		if !ok || len(fields) < 5 || len(postFields) < 1 {
			continue
		}
		fsAt[fields[4]] = postFields[0]
		if postFields[0] == "cgroup" && strings.HasPrefix(fields[4], "/sys/fs/cgroup/") {
			v1 = true
		}
	}
	switch {
	case fsAt["/sys/fs/cgroup"] == "cgroup2":
		return CgroupV2
	case v1 && fsAt["/sys/fs/cgroup/unified"] == "cgroup2":
		return CgroupHybrid
	case v1:
		return CgroupV1
	}
	return ""
}

// TestCgroupLive compares the probe with the mount table of this host (on the project's VM: hybrid,
// so nothing is delegated).
func TestCgroupLive(t *testing.T) {
	want := mountedCgroupVersion(t)
	testenv.Require(t, want != "", "a cgroup filesystem mounted at /sys/fs/cgroup (run the tests on a Linux host or VM, not a bare chroot)")
	e, err := NewEnv(Options{})
	if err != nil {
		t.Fatal(err)
	}
	resolveIdentity(e, "")
	c := applyProbe(t, e, probeCgroup).Cgroup
	if got := mustKnown(t, "version", c.Version); got != want {
		t.Fatalf("version %q, mountinfo says %q", got, want)
	}
	if c.Version.Evidence[0].Kind != "syscall" {
		t.Errorf("live probe did not use statfs: %+v", c.Version.Evidence)
	}
	if want != CgroupV2 {
		if got := mustKnown(t, "delegated", c.Delegated); len(got) != 0 {
			t.Errorf("delegated %q on %s", got, want)
		}
		return
	}
	b, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers")
	if err != nil {
		t.Fatal(err)
	}
	if got := mustKnown(t, "controllers", c.Controllers); !reflect.DeepEqual(got, strings.Fields(string(b))) {
		t.Errorf("controllers %q, file says %q", got, b)
	}
}

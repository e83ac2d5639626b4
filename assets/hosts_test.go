package assets_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/virt-setup/virt-setup/assets"
	"github.com/virt-setup/virt-setup/internal/testenv"
	"github.com/virt-setup/virt-setup/probe"
	"github.com/virt-setup/virt-setup/probe/probetest"
)

const regenerate = "regenerate them as root with `go generate ./assets` and review the diff"

func TestShippedProfilesLoad(t *testing.T) {
	names := assets.HostProfileNames()
	if want := probetest.ProfileNames(); !slices.Equal(names, want) {
		t.Fatalf("shipped profiles %v, but probetest.Profiles has %v: %s", names, want, regenerate)
	}
	for _, name := range names {
		f, err := probe.LoadProfile(name)
		if err != nil {
			t.Errorf("LoadProfile(%q): %v", name, err)
			continue
		}
		if f.Meta.SchemaVersion != probe.SchemaVersion || f.Meta.Mode != "profile" || f.Meta.Profile != name {
			t.Errorf("%s: meta %+v", name, f.Meta)
		}
		if !f.Identity.User.Known || !f.OS.Kernel.Known || !f.OS.Distro.Known || !f.OS.Arch.Known {
			t.Errorf("%s: user, kernel, distro or arch unknown: the spec or the probe lost them", name)
		}
		b, err := assets.HostProfile(name)
		if err != nil {
			t.Fatal(err)
		}
		// The build directory must not leak into what ships.
		for _, leak := range []string{"genprofiles-", os.TempDir() + "/"} {
			if bytes.Contains(b, []byte(leak)) {
				t.Errorf("%s names %q: the build directory leaked into the profile", name, leak)
			}
		}
	}
	if _, err := assets.HostProfile("../assets"); err == nil {
		t.Error("HostProfile accepted a path")
	}
}

// TestProfilesUpToDate regenerates every profile from the fake hosts and the current probe and
// compares bytes, so a change in the probe or the specs cannot leave stale profiles shipping.
func TestProfilesUpToDate(t *testing.T) {
	testenv.Require(t, probetest.CanSetOwners(), "the fake hosts need root-owned setuid files, file capabilities and device nodes; run the tests as root")
	goTool, err := exec.LookPath("go")
	testenv.Require(t, err == nil, "the go command is not on PATH; it builds internal/tools/genprofiles")
	root := testenv.ModuleRoot(t)
	tmp := t.TempDir()
	gen := filepath.Join(tmp, "genprofiles")
	build := exec.Command(goTool, "build", "-o", gen, "./internal/tools/genprofiles")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./internal/tools/genprofiles: %v\n%s", err, out)
	}
	out := filepath.Join(tmp, "hosts")
	if b, err := exec.Command(gen, "-out", out).CombinedOutput(); err != nil {
		t.Fatalf("genprofiles: %v\n%s", err, b)
	}
	fresh, err := filepath.Glob(filepath.Join(out, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var freshNames []string
	for _, p := range fresh {
		freshNames = append(freshNames, strings.TrimSuffix(filepath.Base(p), ".json"))
	}
	if shipped := assets.HostProfileNames(); !slices.Equal(freshNames, shipped) {
		t.Errorf("generated profiles %v, shipped %v: %s", freshNames, shipped, regenerate)
	}
	for _, p := range fresh {
		name := strings.TrimSuffix(filepath.Base(p), ".json")
		want, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := assets.HostProfile(name)
		if err != nil {
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("assets/hosts/%s.json differs from what the probe records now (first difference at line %d): %s",
				name, firstDiffLine(got, want), regenerate)
		}
	}
}

func firstDiffLine(a, b []byte) int {
	la, lb := bytes.Split(a, []byte("\n")), bytes.Split(b, []byte("\n"))
	for i := range min(len(la), len(lb)) {
		if !bytes.Equal(la[i], lb[i]) {
			return i + 1
		}
	}
	return min(len(la), len(lb)) + 1
}

// TestProfileRecommendations replays every shipped host through the doctor and the recommendation.
// The expectations come from rootless.md §4 and §5, not from running the code: overlayfs in a user
// namespace needs 5.11 (5.13 with SELinux) or an Ubuntu kernel, FUSE in one needs 4.18, and a live
// test result wins over the kernel rule.
func TestProfileRecommendations(t *testing.T) {
	type check struct {
		id     string
		status probe.Status
	}
	tests := []struct {
		name        string
		snapshotter string
		// impossible are snapshotters the facts must rule out.
		impossible []string
		checks     []check
	}{
		// 5.11 with SELinux enforcing: overlayfs needs 5.13 there.
		{name: "fedora-34-selinux", snapshotter: probe.SnapshotterFuseOverlayfs, impossible: []string{probe.SnapshotterOverlayfs}},
		{name: "fedora-41", snapshotter: probe.SnapshotterOverlayfs},
		// The recorded live test failed at the overlay mount (4.18), and the fuse-overlayfs one passed.
		{name: "rhel-8", snapshotter: probe.SnapshotterFuseOverlayfs, impossible: []string{probe.SnapshotterOverlayfs},
			checks: []check{{"VS-CGROUP-001", probe.StatusWarn}}},
		{name: "rhel-9", snapshotter: probe.SnapshotterOverlayfs},
		// Ubuntu's kernels allow overlayfs in user namespaces.
		{name: "ubuntu-22.04", snapshotter: probe.SnapshotterOverlayfs, checks: []check{{"VS-APPARMOR-001", probe.StatusSkip}}},
		// The kernel allows overlayfs; what blocks rootlesskit in /usr/local/bin is AppArmor.
		{name: "ubuntu-24.04", snapshotter: probe.SnapshotterOverlayfs, checks: []check{{"VS-APPARMOR-001", probe.StatusFail}}},
		// 5.10 < 5.11, and Debian's permit_mounts_in_userns is broken (moby#42302).
		{name: "debian-11", snapshotter: probe.SnapshotterFuseOverlayfs, impossible: []string{probe.SnapshotterOverlayfs}},
		{name: "debian-12", snapshotter: probe.SnapshotterOverlayfs, checks: []check{{"VS-SYSTEMD-001", probe.StatusOK}, {"VS-LINGER-001", probe.StatusOK}}},
		// 3.10 with user.max_user_namespaces=0: neither overlayfs (5.11) nor FUSE (4.18) in a user namespace.
		{name: "old-kernel-no-fuse-userns", snapshotter: probe.SnapshotterNative,
			impossible: []string{probe.SnapshotterOverlayfs, probe.SnapshotterFuseOverlayfs},
			checks:     []check{{"VS-USERNS-001", probe.StatusFail}, {"VS-CGROUP-001", probe.StatusWarn}}},
		// No systemd as PID 1: the setuptool's `systemctl --user` cannot work.
		{name: "no-systemd", snapshotter: probe.SnapshotterOverlayfs, checks: []check{{"VS-SYSTEMD-001", probe.StatusWarn}}},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		seen[tt.name] = true
		t.Run(tt.name, func(t *testing.T) {
			f, err := probe.LoadProfile(tt.name)
			if err != nil {
				t.Fatal(err)
			}
			r := probe.NewReport(f)
			if got := r.Recommendation.Snapshotter; got != tt.snapshotter {
				t.Errorf("snapshotter = %s, want %s; reasons:\n%s", got, tt.snapshotter, reasons(r.Recommendation.Reasons))
			}
			for _, o := range r.Recommendation.Options {
				// Other options may be ruled out too (a missing fuse-overlayfs binary); only the
				// recommended one must be possible and the listed ones impossible.
				switch {
				case o.Name == tt.snapshotter && !o.Possible:
					t.Errorf("the recommended %s is marked impossible; against:\n%s", o.Name, reasons(o.Against))
				case slices.Contains(tt.impossible, o.Name) && o.Possible:
					t.Errorf("option %s is marked possible, want it ruled out; for:\n%s", o.Name, reasons(o.For))
				}
			}
			for _, c := range tt.checks {
				if _, ok := probe.CheckByID(c.id); !ok {
					t.Fatalf("no check %s in the catalog", c.id)
				}
				i := slices.IndexFunc(r.Checks, func(res probe.Result) bool { return res.ID == c.id })
				if i < 0 {
					t.Errorf("%s: no result", c.id)
					continue
				}
				if got := r.Checks[i]; got.Status != c.status {
					t.Errorf("%s = %s (%s), want %s", c.id, got.Status, got.Title, c.status)
				}
			}
		})
	}
	for _, name := range assets.HostProfileNames() {
		if !seen[name] {
			t.Errorf("shipped profile %s has no expected recommendation here", name)
		}
	}
}

func reasons(rs []probe.Reason) string {
	var b strings.Builder
	for _, r := range rs {
		b.WriteString("  - " + r.Text + "\n")
	}
	return b.String()
}

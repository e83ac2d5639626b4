package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/virt-setup/virt-setup/internal/testenv"
	"github.com/virt-setup/virt-setup/probe"
)

// TestProbeAsUnprivilegedUser is the acceptance test of `virt-setup probe --json` on this host: the
// real binary, run as an unprivileged user the test setup created, must report what independent
// oracles (the kernel's own answers, util-linux's unshare, a shell opening the device) say.
func TestProbeAsUnprivilegedUser(t *testing.T) {
	u := testenv.RequireTestUser(t)
	bin := testenv.BuildBinary(t)
	out := u.Run(t, bin, []string{"probe", "--json"})
	var rep probe.Report
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("probe --json is not one JSON document: %v\n%s", err, out)
	}
	f := rep.Facts

	t.Run("identity", func(t *testing.T) {
		if !f.Identity.UID.Known || f.Identity.UID.Value != u.UID {
			t.Errorf("uid = %+v, want %d", f.Identity.UID, u.UID)
		}
		if f.Identity.Root.Value {
			t.Errorf("identity.root = true for uid %d", u.UID)
		}
		if f.Identity.User.Value != u.Name {
			t.Errorf("user = %q, want %q", f.Identity.User.Value, u.Name)
		}
	})

	t.Run("kernel", func(t *testing.T) {
		var uts unix.Utsname
		if err := unix.Uname(&uts); err != nil {
			t.Fatal(err)
		}
		want := unix.ByteSliceToString(uts.Release[:])
		if got := f.OS.Kernel.Value.Release; !f.OS.Kernel.Known || got != want {
			t.Errorf("kernel = %+v, want release %q", f.OS.Kernel, want)
		}
	})

	t.Run("cgroup", func(t *testing.T) {
		want := cgroupOracle(t)
		if got := f.Cgroup.Version; !got.Known || got.Value != want {
			t.Errorf("cgroup version = %+v, want %q (from statfs)", got, want)
		}
	})

	t.Run("systemd user manager", func(t *testing.T) {
		fi, err := os.Stat("/run/systemd/system")
		booted := err == nil && fi.IsDir()
		if f.Systemd.PID1.Value != booted {
			t.Errorf("systemd.pid1 = %+v, want %v", f.Systemd.PID1, booted)
		}
		if !booted && (!f.Systemd.UserManager.Known || f.Systemd.UserManager.Value) {
			t.Errorf("user_manager = %+v on a host without systemd, want known false", f.Systemd.UserManager)
		}
	})

	t.Run("live overlay", func(t *testing.T) {
		want := overlayOracle(t, u)
		got := f.Live.OverlayUserns.Value
		if wantStatus := map[bool]string{true: probe.LivePassed, false: probe.LiveFailed}[want]; got.Status != wantStatus {
			t.Errorf("live overlay = %+v, but unshare+mount as %s says works=%v", got, u.Name, want)
		}
		if want && rep.Recommendation.Snapshotter != "overlayfs" {
			t.Errorf("recommended %q although overlay works in a user namespace", rep.Recommendation.Snapshotter)
		}
	})

	t.Run("devices", func(t *testing.T) {
		for _, d := range []struct {
			path string
			fact probe.Fact[probe.Device]
		}{{"/dev/net/tun", f.Devices.Tun}, {"/dev/fuse", f.Devices.Fuse}} {
			want := canOpenOracle(t, u, d.path)
			if !d.fact.Known || d.fact.Value.Usable != want {
				t.Errorf("%s usable = %+v, but opening it as %s gives %v", d.path, d.fact, u.Name, want)
			}
		}
	})

	t.Run("checks and recommendation present", func(t *testing.T) {
		if len(rep.Checks) == 0 {
			t.Fatal("no checks in the report")
		}
		switch rep.Recommendation.Snapshotter {
		case "overlayfs", "fuse-overlayfs", "native":
		default:
			t.Errorf("recommendation.snapshotter = %q", rep.Recommendation.Snapshotter)
		}
		if len(rep.Recommendation.Reasons) == 0 {
			t.Error("recommendation has no reasons")
		}
	})
}

// cgroupOracle tells the cgroup layout from the filesystem types, not from the files the probe reads.
func cgroupOracle(t *testing.T) string {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
		t.Fatalf("statfs /sys/fs/cgroup: %v", err)
	}
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		return "v2"
	}
	if err := unix.Statfs("/sys/fs/cgroup/unified", &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return "hybrid"
	}
	return "v1"
}

// overlayOracle mounts overlayfs in a user namespace as u with util-linux's unshare.
func overlayOracle(t *testing.T, u testenv.TestUser) bool {
	t.Helper()
	dir := testenv.SharedDir(t)
	for _, d := range []string{"l", "u", "w", "m"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(filepath.Join(dir, d), u.UID, u.GID); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	opts := "lowerdir=" + dir + "/l,upperdir=" + dir + "/u,workdir=" + dir + "/w"
	cmd := u.Command(ctx, "unshare", []string{"--user", "--map-root-user", "--mount", "mount", "-t", "overlay", "overlay", "-o", opts, dir + "/m"})
	out, err := cmd.CombinedOutput()
	t.Logf("oracle: unshare mount overlay as %s: err=%v %s", u.Name, err, strings.TrimSpace(string(out)))
	return err == nil
}

// canOpenOracle opens path read-write from a shell running as u.
func canOpenOracle(t *testing.T, u testenv.TestUser, path string) bool {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := u.Command(ctx, "sh", []string{"-c", `exec 3<>"$1"`, "sh", path}).Run()
	var ee *exec.ExitError
	if err != nil && !isExit(err, &ee) {
		t.Fatalf("oracle sh: %v", err)
	}
	return err == nil
}

func isExit(err error, target **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	if ok {
		*target = e
	}
	return ok
}

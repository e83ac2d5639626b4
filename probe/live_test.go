package probe

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/virt-setup/virt-setup/internal/sys"
	"github.com/virt-setup/virt-setup/internal/testenv"
)

// liveChildEnv makes TestLiveChild run the live probes and print their result.
const liveChildEnv = "VIRT_SETUP_TEST_LIVE_CHILD"

// liveResultMarker starts the line TestLiveChild prints its result on, so the parent can find it
// among the test framework's own output.
const liveResultMarker = "LIVE-RESULT "

// liveTestEnv is a live-host Env for the process running the test.
func liveTestEnv(t testing.TB, environ []string, selfExe string) *Env {
	t.Helper()
	e := &Env{Root: sys.Root{Dir: "/"}, Runner: sys.Exec{}, Live: true, Environ: environ, Now: time.Now, SelfExe: selfExe}
	e.User = User{UID: os.Getuid(), GID: os.Getgid(), Home: e.Getenv("HOME"), Known: true}
	e.LookupDirs = e.lookupDirs()
	return e
}

// TestLiveChild is not a test of its own: run by TestLiveOverlayAsTestUser and
// TestLiveFuseOverlayfsAsTestUser as the unprivileged user, it runs the live probes there and
// prints the result. Without liveChildEnv it does nothing.
func TestLiveChild(t *testing.T) {
	if os.Getenv(liveChildEnv) != "1" {
		return
	}
	e := liveTestEnv(t, os.Environ(), "/proc/self/exe")
	var f Facts
	probeLiveOverlay(context.Background(), e)(&f)
	probeLiveFuseOverlayfs(context.Background(), e)(&f)
	b, err := json.Marshal(f.Live)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("%s%s\n", liveResultMarker, b)
}

// liveRunChildAsUser copies the test binary where the test user can run it and runs TestLiveChild
// as that user, with $XDG_RUNTIME_DIR set to a fresh directory of theirs. It returns the live facts
// and that directory, which must be empty afterwards.
func liveRunChildAsUser(t *testing.T, u testenv.TestUser) (Live, string) {
	t.Helper()
	shared := testenv.SharedDir(t)
	bin := testenv.CopyTestBinary(t, shared, "probe.test")
	runDir := filepath.Join(shared, "run")
	if err := os.Mkdir(runDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(runDir, u.UID, u.GID); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := u.Command(ctx, bin, []string{"-test.run=^TestLiveChild$", "-test.count=1"}, liveChildEnv+"=1", "XDG_RUNTIME_DIR="+runDir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("run TestLiveChild as %s: %v\nstdout:\n%s\nstderr:\n%s", u.Name, err, out, stderr.String())
	}
	var live Live
	found := false
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), liveResultMarker); ok {
			if err := json.Unmarshal([]byte(rest), &live); err != nil {
				t.Fatalf("parse live result %q: %v", rest, err)
			}
			found = true
		}
	}
	if !found {
		t.Fatalf("TestLiveChild printed no %q line:\n%s", liveResultMarker, out)
	}
	return live, runDir
}

// liveOverlayOracle mounts overlayfs the way a person would check it by hand, with util-linux's
// unshare instead of our own namespace code, and reports whether it worked.
func liveOverlayOracle(t *testing.T, run func(name string, args ...string) ([]byte, error), dir string) (bool, string) {
	t.Helper()
	l, u, w, m := filepath.Join(dir, "l"), filepath.Join(dir, "u"), filepath.Join(dir, "w"), filepath.Join(dir, "m")
	script := fmt.Sprintf(`set -e
mount -t overlay overlay -o lowerdir=%s,upperdir=%s,workdir=%s %s
test "$(cat %s/f)" = lower
echo new > %s/g
test "$(cat %s/g)" = new
umount %s`, l, u, w, m, m, m, u, m)
	out, err := run("unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script)
	return err == nil, strings.TrimSpace(string(out))
}

func liveMakeOracleDirs(t *testing.T, parent string, uid, gid int) string {
	t.Helper()
	dir := filepath.Join(parent, "oracle")
	for _, d := range []string{"", "l", "u", "w", "m"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "l", "f"), []byte("lower\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func liveRequireEmptyDir(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if len(names) > 0 {
		t.Errorf("%s still holds %v after the live test; the work directory must be removed", dir, names)
	}
}

func liveCheckEvidence(t *testing.T, f Fact[LiveTest], source string) {
	t.Helper()
	if !f.Known {
		t.Fatalf("live test fact unknown: %s", f.Error)
	}
	if len(f.Evidence) == 0 || f.Evidence[0].Kind != "live" || f.Evidence[0].Source != source {
		t.Errorf("evidence = %+v, want kind live, source %q", f.Evidence, source)
	}
	if f.Value.Ran() && f.Value.Duration <= 0 {
		t.Errorf("duration %v, want > 0", time.Duration(f.Value.Duration))
	}
	if f.Value.Status == LiveFailed && f.Value.Detail == "" {
		t.Error("a failed live test must say why in Detail")
	}
}

func TestLiveOverlayAsTestUser(t *testing.T) {
	u := testenv.RequireTestUser(t)
	live, runDir := liveRunChildAsUser(t, u)
	got := live.OverlayUserns
	liveCheckEvidence(t, got, liveOverlaySource)

	oracleDir := liveMakeOracleDirs(t, testenv.SharedDir(t), u.UID, u.GID)
	want, oracleOut := liveOverlayOracle(t, func(name string, args ...string) ([]byte, error) {
		return u.Command(context.Background(), name, args).CombinedOutput()
	}, oracleDir)
	t.Logf("overlay live test as %s: %s %q in %v (oracle: passed=%v %s)", u.Name, got.Value.Status, got.Value.Detail, time.Duration(got.Value.Duration), want, oracleOut)
	if (got.Value.Status == LivePassed) != want {
		t.Errorf("live overlay status %q (%s), but the unshare oracle says passed=%v (%s)", got.Value.Status, got.Value.Detail, want, oracleOut)
	}
	liveRequireEmptyDir(t, runDir)
}

func TestLiveFuseOverlayfsAsTestUser(t *testing.T) {
	u := testenv.RequireTestUser(t)
	_, err := exec.LookPath("fuse-overlayfs")
	testenv.Require(t, err == nil, "fuse-overlayfs is not installed: run scripts/setup-test-host.sh (apt-get install fuse-overlayfs)")
	_, err = os.Stat("/dev/fuse")
	testenv.Require(t, err == nil, "/dev/fuse does not exist: load the fuse module (modprobe fuse)")

	live, runDir := liveRunChildAsUser(t, u)
	got := live.FuseOverlayfs
	liveCheckEvidence(t, got, liveFuseSource)

	// The oracle: can the user open /dev/fuse read-write at all?
	openErr := u.Command(context.Background(), "sh", []string{"-c", "exec 3<>/dev/fuse"}).Run()
	canOpen := openErr == nil
	t.Logf("fuse-overlayfs live test as %s: %s %q in %v (user can open /dev/fuse: %v)", u.Name, got.Value.Status, got.Value.Detail, time.Duration(got.Value.Duration), canOpen)
	if (got.Value.Status == LivePassed) != canOpen {
		t.Errorf("fuse-overlayfs status %q (%s), but the user can open /dev/fuse: %v", got.Value.Status, got.Value.Detail, canOpen)
	}
	if !canOpen && !strings.Contains(got.Value.Detail, "/dev/fuse") {
		t.Errorf("detail %q should name /dev/fuse as what failed", got.Value.Detail)
	}
	if pids := liveFuseProcesses(t, u.UID); len(pids) > 0 {
		t.Errorf("fuse-overlayfs processes of uid %d left behind: %v", u.UID, pids)
	}
	liveRequireEmptyDir(t, runDir)
}

// liveFuseProcesses lists fuse-overlayfs processes of uid that a live test started (their
// command line names a virt-setup-live- directory).
func liveFuseProcesses(t *testing.T, uid int) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat("/proc/"+e.Name(), &st) != nil || int(st.Uid) != uid {
			continue
		}
		comm, _ := os.ReadFile("/proc/" + e.Name() + "/comm")
		cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if strings.TrimSpace(string(comm)) == "fuse-overlayfs" && bytes.Contains(cmdline, []byte("virt-setup-live-")) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestLiveOverlayInProcess runs the overlay live test as whoever runs the tests (root in `make
// test`), with the test binary as the helper, against the same oracle.
func TestLiveOverlayInProcess(t *testing.T) {
	_, err := exec.LookPath("unshare")
	testenv.Require(t, err == nil, "unshare (util-linux) is needed as the oracle")
	runDir := t.TempDir()
	e := liveTestEnv(t, []string{"XDG_RUNTIME_DIR=" + runDir, "PATH=" + os.Getenv("PATH")}, "/proc/self/exe")
	var f Facts
	start := time.Now()
	probeLiveOverlay(context.Background(), e)(&f)
	wall := time.Since(start)
	got := f.Live.OverlayUserns
	liveCheckEvidence(t, got, liveOverlaySource)

	want, oracleOut := liveOverlayOracle(t, func(name string, args ...string) ([]byte, error) {
		return exec.Command(name, args...).CombinedOutput()
	}, liveMakeOracleDirs(t, t.TempDir(), os.Getuid(), os.Getgid()))
	t.Logf("overlay live test as uid %d: %s %q, probe duration %v, wall %v (oracle passed=%v %s)", os.Getuid(), got.Value.Status, got.Value.Detail, time.Duration(got.Value.Duration), wall, want, oracleOut)
	if (got.Value.Status == LivePassed) != want {
		t.Errorf("live overlay status %q (%s), but the unshare oracle says passed=%v (%s)", got.Value.Status, got.Value.Detail, want, oracleOut)
	}
	liveRequireEmptyDir(t, runDir)
}

// TestLiveFuseOverlayfsInProcess runs the fuse-overlayfs live test as whoever runs the tests. As
// root /dev/fuse opens, so this is where a real fuse-overlayfs mount, unmount and exit is checked.
func TestLiveFuseOverlayfsInProcess(t *testing.T) {
	_, err := exec.LookPath("fuse-overlayfs")
	testenv.Require(t, err == nil, "fuse-overlayfs is not installed: run scripts/setup-test-host.sh (apt-get install fuse-overlayfs)")
	_, err = os.Stat("/dev/fuse")
	testenv.Require(t, err == nil, "/dev/fuse does not exist: load the fuse module (modprobe fuse)")
	runDir := t.TempDir()
	e := liveTestEnv(t, []string{"XDG_RUNTIME_DIR=" + runDir, "PATH=" + os.Getenv("PATH")}, "/proc/self/exe")
	var f Facts
	probeLiveFuseOverlayfs(context.Background(), e)(&f)
	got := f.Live.FuseOverlayfs
	liveCheckEvidence(t, got, liveFuseSource)

	fd, openErr := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if openErr == nil {
		fd.Close()
	}
	t.Logf("fuse-overlayfs live test as uid %d: %s %q in %v; evidence %q", os.Getuid(), got.Value.Status, got.Value.Detail, time.Duration(got.Value.Duration), got.Evidence[0].Excerpt)
	if (got.Value.Status == LivePassed) != (openErr == nil) {
		t.Errorf("fuse-overlayfs status %q (%s), but opening /dev/fuse here gives %v", got.Value.Status, got.Value.Detail, openErr)
	}
	if pids := liveFuseProcesses(t, os.Getuid()); len(pids) > 0 {
		t.Errorf("fuse-overlayfs processes left behind: %v", pids)
	}
	liveRequireEmptyDir(t, runDir)
}

func TestLiveFuseOverlayfsSkipped(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		lay        func(root string)
	}{
		{"no binary", "fuse-overlayfs is not installed", func(root string) {
			binRootFile(t, root, "/dev/fuse", "", 0o600)
		}},
		{"no /dev/fuse", "/dev/fuse does not exist", func(root string) {
			binRootFile(t, root, "/usr/bin/fuse-overlayfs", "#!/bin/sh\n", 0o755)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			tc.lay(root)
			// A fake root with Live forced on: the skip decisions read below e.Root, so no helper
			// is started (SelfExe does not exist, which would fail the test if it were).
			e := &Env{Root: sys.Root{Dir: root}, Runner: sys.NewStub(t), Live: true, SelfExe: "/nonexistent", Now: time.Now}
			e.LookupDirs = e.lookupDirs()
			got := liveFuse(context.Background(), e)
			if !got.Known || got.Value.Status != LiveSkipped || !strings.Contains(got.Value.Detail, tc.want) {
				t.Errorf("got %+v, want skipped with %q", got, tc.want)
			}
		})
	}
}

// liveRequireUserns stops the test when this process cannot create a user namespace, which the fake
// helpers below need to start at all.
func liveRequireUserns(t *testing.T) {
	t.Helper()
	err := exec.Command("unshare", "--user", "--map-root-user", "true").Run()
	testenv.Require(t, err == nil, fmt.Sprintf("cannot create a user namespace here (%v); the live tests need one", err))
}

func liveWriteScript(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fake-virt-setup")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLiveHelperMisbehaves runs the parent side against fake helpers that hang, print garbage,
// crash or report a failure: each must end as a failed test with a reason (a hang: an unknown
// result, since a slow machine is no evidence against the kernel), never a panic, and the work
// directory must be gone afterwards.
func TestLiveHelperMisbehaves(t *testing.T) {
	liveRequireUserns(t)
	for _, tc := range []struct {
		name    string
		script  string
		timeout time.Duration
		detail  []string
	}{
		{"hangs", "sleep 31.7 &\nsleep 31.8", 300 * time.Millisecond, []string{"did not finish", "killed after", "unknown"}},
		{"garbage", "printf 'not json {\\001'", 0, []string{"printed no result", "not json"}},
		{"empty object", "echo '{}'", 0, []string{"printed no result"}},
		{"crashes", "echo 'panic: boom' >&2\nexit 3", 0, []string{"exit status 3", "panic: boom"}},
		{"reports failure", `echo '{"passed":false,"step":"mount overlay","error":"operation not permitted","done":["make / rprivate"]}'`, 0, []string{"mount overlay: operation not permitted"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runDir := t.TempDir()
			e := liveTestEnv(t, []string{"XDG_RUNTIME_DIR=" + runDir, "PATH=" + os.Getenv("PATH")}, liveWriteScript(t, tc.script))
			ctx := context.Background()
			if tc.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.timeout)
				defer cancel()
			}
			start := time.Now()
			var f Facts
			probeLiveOverlay(ctx, e)(&f)
			got := f.Live.OverlayUserns
			detail := got.Value.Detail
			if tc.timeout > 0 {
				if got.Known || len(got.Evidence) == 0 || got.Evidence[0].Source != liveOverlaySource {
					t.Errorf("a helper killed at the deadline gave %+v, want an unknown result with its evidence", got)
				}
				detail = got.Error
			} else {
				liveCheckEvidence(t, got, liveOverlaySource)
				if got.Value.Status != LiveFailed {
					t.Errorf("status %q, want failed", got.Value.Status)
				}
			}
			for _, d := range tc.detail {
				if !strings.Contains(detail, d) {
					t.Errorf("detail %q lacks %q", detail, d)
				}
			}
			if tc.timeout > 0 && time.Since(start) > tc.timeout+time.Second {
				t.Errorf("took %v for a %v deadline", time.Since(start), tc.timeout)
			}
			liveRequireEmptyDir(t, runDir)
			if pids := liveProcessesWithArgs(t, "sleep", "31.7", "31.8"); len(pids) > 0 {
				t.Errorf("the hanging helper's processes survive: %v", pids)
			}
		})
	}
}

// TestLiveHelperLeavesProcess: a helper that leaves a process behind in a session of its own (out
// of reach of the process-group kill) still has it killed, and the cleanup says so.
func TestLiveHelperLeavesProcess(t *testing.T) {
	liveRequireUserns(t)
	runDir := t.TempDir()
	script := `setsid sh -c 'echo > "$0/ready"; exec tail -f "$0/lower/from-lower.txt"' "$1" >/dev/null 2>&1 </dev/null &
while [ ! -f "$1/ready" ]; do sleep 0.01; done
echo '{"passed":true,"done":["mount overlay"]}'`
	e := liveTestEnv(t, []string{"XDG_RUNTIME_DIR=" + runDir, "PATH=" + os.Getenv("PATH")}, liveWriteScript(t, script))
	var f Facts
	probeLiveOverlay(context.Background(), e)(&f)
	got := f.Live.OverlayUserns
	if got.Value.Status != LivePassed || !strings.Contains(got.Error, "killed 1 leftover process") {
		t.Errorf("got %+v, error %q; want the helper's result with the killed leftover in the error", got.Value, got.Error)
	}
	liveRequireEmptyDir(t, runDir)
	// SIGKILL is delivered asynchronously; give the kernel a moment to reap the process.
	deadline := time.Now().Add(2 * time.Second)
	for {
		pids := liveProcessesWithArgs(t, "tail", "-f")
		var ours []int
		for _, pid := range pids {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			if bytes.Contains(b, []byte(runDir)) {
				ours = append(ours, pid)
			}
		}
		if len(ours) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("leftover tail processes survive: %v", ours)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestLiveHelperNoSelfExe(t *testing.T) {
	runDir := t.TempDir()
	e := liveTestEnv(t, []string{"XDG_RUNTIME_DIR=" + runDir}, filepath.Join(t.TempDir(), "missing"))
	var f Facts
	probeLiveOverlay(context.Background(), e)(&f)
	got := f.Live.OverlayUserns
	if got.Value.Status != LiveFailed || !strings.Contains(got.Value.Detail, "start live helper") {
		t.Errorf("got %+v, want failed to start", got.Value)
	}
	liveRequireEmptyDir(t, runDir)
}

// liveProcessesWithArgs lists processes running prog with one of the given first arguments.
func liveProcessesWithArgs(t *testing.T, prog string, args ...string) []int {
	t.Helper()
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		f := strings.Split(string(b), "\x00")
		if len(f) < 2 || filepath.Base(f[0]) != prog {
			continue
		}
		for _, a := range args {
			if f[1] == a {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// TestLiveHelperRefusesOutsideNamespace: a helper started by hand, in the host's namespaces, must
// refuse before it mounts anything.
func TestLiveHelperRefusesOutsideNamespace(t *testing.T) {
	own, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	for _, parent := range []string{"", own} {
		t.Setenv(liveParentMntNSEnv, parent)
		res, code := runLiveHelper(liveTestOverlay, []string{t.TempDir()})
		if code != 2 || res.Passed || res.Step != "check namespaces" || len(res.Done) != 0 {
			t.Errorf("parent ns %q: got %+v, exit %d; want a refusal before any step", parent, res, code)
		}
	}
	res, code := runLiveHelper(liveTestOverlay, nil)
	if code != 2 || res.Step != "start live helper" {
		t.Errorf("no work dir: got %+v, exit %d", res, code)
	}
	res, code = runLiveHelper("format-disk", []string{t.TempDir()})
	if code != 2 || res.Step != "start live helper" || !strings.Contains(res.Error, "unknown live test") {
		t.Errorf("unknown test: got %+v, exit %d", res, code)
	}
}

func TestRunLiveHelperNotAHelper(t *testing.T) {
	// An exported but empty variable (VIRT_SETUP_LIVE_HELPER= in a shell profile) is not a request.
	t.Setenv(LiveHelperEnv, "")
	if _, ran := RunLiveHelper(); ran {
		t.Error("RunLiveHelper ran with an empty " + LiveHelperEnv)
	}
	os.Unsetenv(LiveHelperEnv)
	if _, ran := RunLiveHelper(); ran {
		t.Error("RunLiveHelper ran without " + LiveHelperEnv)
	}
}

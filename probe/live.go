package probe

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// liveChildTimeout bounds one live test's child. The test takes tens of milliseconds; the bound
// leaves room for cleanup inside the probe's own 3 s timeout. Tests built with -race raise it:
// a race-enabled child needs about a second just to start.
var liveChildTimeout = 2 * time.Second

// Evidence sources of the live tests.
const (
	liveOverlaySource = "overlay mount in a new user+mount namespace"
	liveFuseSource    = "fuse-overlayfs mount in a new user+mount namespace"
)

// probeLiveOverlay mounts a real overlayfs inside a new user and mount namespace, the way the
// rootless overlayfs snapshotter will (kernel ≥ 5.11, or Ubuntu's patched kernels).
func probeLiveOverlay(ctx context.Context, e *Env) func(*Facts) {
	t := runLiveTest(ctx, e, liveTestOverlay, liveOverlaySource, nil)
	return func(f *Facts) { f.Live.OverlayUserns = t }
}

// probeLiveFuseOverlayfs mounts fuse-overlayfs inside a new user and mount namespace, the way the
// fuse-overlayfs snapshotter will (kernel ≥ 4.18 and a /dev/fuse the user can open).
func probeLiveFuseOverlayfs(ctx context.Context, e *Env) func(*Facts) {
	t := liveFuse(ctx, e)
	return func(f *Facts) { f.Live.FuseOverlayfs = t }
}

func liveFuse(ctx context.Context, e *Env) Fact[LiveTest] {
	bin, ok := e.LookPath("fuse-overlayfs")
	if !ok {
		return Known(LiveTest{Status: LiveSkipped, Detail: "fuse-overlayfs is not installed"},
			Evidence{Kind: "file", Source: strings.Join(e.LookupDirs, ":"), Excerpt: "fuse-overlayfs not found in these directories"})
	}
	if _, err := e.Root.Stat("/dev/fuse"); err != nil {
		detail := "/dev/fuse does not exist (the fuse kernel module is not loaded)"
		if !errors.Is(err, fs.ErrNotExist) {
			detail = fmt.Sprintf("stat /dev/fuse: %v", err)
		}
		return Known(LiveTest{Status: LiveSkipped, Detail: detail}, Evidence{Kind: "file", Source: "/dev/fuse", Excerpt: detail})
	}
	args := []string{e.Root.Path(bin)}
	if fm, ok := e.LookPath("fusermount3"); ok {
		args = append(args, e.Root.Path(fm))
	}
	return runLiveTest(ctx, e, liveTestFuse, liveFuseSource, args)
}

// runLiveTest prepares a work directory as the user, re-executes this program in a new user and
// mount namespace to run the named test, and removes everything afterwards, also on failure.
func runLiveTest(ctx context.Context, e *Env, test, source string, extraArgs []string) Fact[LiveTest] {
	ev := Evidence{Kind: "live", Source: source}
	if !e.Live {
		// The runner skips live tests off the live host; this guards against a caller that does not.
		return Known(LiveTest{Status: LiveSkipped, Detail: "live tests run only on the real host"}, ev)
	}
	start := time.Now()
	dir, err := liveWorkDir(e)
	if err != nil {
		return Unknown[LiveTest](err, ev)
	}
	t, excerptText, runErr := liveRunChild(ctx, e, test, dir, extraArgs)
	cleanupErr := liveCleanup(dir)
	t.Duration = Duration(time.Since(start))
	ev.Excerpt = verExcerpt(excerptText, 300)
	f := Known(t, ev)
	if runErr != nil {
		f = Unknown[LiveTest](runErr, ev)
	}
	if cleanupErr != nil {
		// The result stands; a leftover process or directory is still worth reporting.
		f.Error = "cleanup: " + cleanupErr.Error()
	}
	return f
}

// liveBaseDir is where the work directory goes: $XDG_RUNTIME_DIR when the user can write there (a
// per-user tmpfs, cleaned at logout), else the temp directory. Paths with ',' or ':' are avoided
// because they separate overlay mount options.
func liveBaseDir(e *Env) string {
	if d := e.Getenv("XDG_RUNTIME_DIR"); d != "" && filepath.IsAbs(d) && !strings.ContainsAny(d, ",:\\") {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() && unix.Access(d, unix.W_OK|unix.X_OK) == nil {
			return d
		}
	}
	return os.TempDir()
}

func liveWorkDir(e *Env) (string, error) {
	base := liveBaseDir(e)
	if strings.ContainsAny(base, ",:\\") {
		return "", fmt.Errorf("temp directory %q holds a character overlay options cannot carry (',', ':' or '\\')", base)
	}
	dir, err := os.MkdirTemp(base, "virt-setup-live-")
	if err != nil {
		return "", fmt.Errorf("make live test directory: %w", err)
	}
	for _, d := range []string{liveLower, liveUpper, liveWork, liveMerged} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			os.RemoveAll(dir)
			return "", fmt.Errorf("make live test directory: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, liveLower, liveLowerFile), liveLowerContent, 0o644); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("write live test file: %w", err)
	}
	return dir, nil
}

// liveCleanup removes the work directory: it first kills any process still naming the directory
// (a fuse-overlayfs the child could not stop), then removes the tree. overlayfs leaves
// workdir/work with mode 0, so directories are made accessible before a retry.
func liveCleanup(dir string) error {
	killed := liveKillLeftovers(dir)
	err := os.RemoveAll(dir)
	if err != nil {
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, werr error) error {
			if d != nil && d.IsDir() {
				_ = os.Chmod(p, 0o700)
			}
			return nil
		})
		err = os.RemoveAll(dir)
	}
	if err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	if killed > 0 {
		return fmt.Errorf("killed %d leftover process(es) using %s", killed, dir)
	}
	return nil
}

// liveKillLeftovers kills processes of this user whose command line names dir. Only processes
// the live test started can name its freshly made, uniquely named directory.
func liveKillLeftovers(dir string) int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	uid := os.Getuid()
	self := os.Getpid()
	killed := 0
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil || pid == self {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat("/proc/"+ent.Name(), &st) != nil || int(st.Uid) != uid {
			continue
		}
		b, err := os.ReadFile("/proc/" + ent.Name() + "/cmdline")
		if err != nil || !bytes.Contains(b, []byte(dir)) {
			continue
		}
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			killed++
		}
	}
	return killed
}

// liveRunChild re-executes e.SelfExe in a new user and mount namespace, mapping the user to root
// there (one id, no newuidmap needed: exactly what an unprivileged process may do by itself). A
// helper that does not finish in time is killed and gives an error, not a failed test: on a busy
// machine a mount that works can take longer than the bound (seen in internal/vmtest's guests), so
// the outcome is unknown and the kernel rules decide.
func liveRunChild(ctx context.Context, e *Env, test, dir string, extraArgs []string) (LiveTest, string, error) {
	ctx, cancel := context.WithTimeout(ctx, liveChildTimeout)
	defer cancel()
	ownNS, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		return LiveTest{Status: LiveFailed, Detail: fmt.Sprintf("read mount namespace: %v", err)}, "", nil
	}
	// Pdeathsig fires when the thread that started the child exits; keep the thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	cmd := exec.CommandContext(ctx, e.SelfExe, append([]string{dir}, extraArgs...)...)
	cmd.Env = []string{LiveHelperEnv + "=" + test, liveParentMntNSEnv + "=" + ownNS, "LC_ALL=C", "PATH=" + e.Getenv("PATH")}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:                 syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS,
		UidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
		GidMappingsEnableSetgroups: false,
		// Its own process group, so a timeout kills fuse-overlayfs along with the helper.
		Setpgid:   true,
		Pdeathsig: syscall.SIGKILL,
	}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 200 * time.Millisecond
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &liveCappedWriter{buf: &stdout, max: 64 << 10}
	cmd.Stderr = &liveCappedWriter{buf: &stderr, max: 16 << 10}
	started := time.Now()
	runErr := cmd.Run()
	if cmd.Process != nil {
		// Whatever the helper left in its process group goes with it.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}

	if ctx.Err() != nil {
		return LiveTest{}, verExcerpt(stderr.String(), 200),
			fmt.Errorf("the live test did not finish; killed after %s, so its result is unknown (a busy machine is slow too)", time.Since(started).Round(time.Millisecond))
	}
	var res liveResult
	out := bytes.TrimSpace(stdout.Bytes())
	if jerr := json.Unmarshal(out, &res); jerr != nil || (!res.Passed && res.Step == "") {
		detail := liveStartFailure(runErr, stderr.String())
		if detail == "" {
			detail = fmt.Sprintf("live helper printed no result: %q", verExcerpt(string(out), 80))
		}
		return LiveTest{Status: LiveFailed, Detail: detail}, verExcerpt(string(out)+" "+stderr.String(), 200), nil
	}
	steps := strings.Join(res.Done, ", ")
	if res.Passed {
		return LiveTest{Status: LivePassed}, steps, nil
	}
	detail := res.Step + ": " + res.Error
	if steps != "" {
		steps += "; "
	}
	return LiveTest{Status: LiveFailed, Detail: detail}, steps + "failed: " + detail, nil
}

// liveStartFailure explains a helper that produced no result. The commonest cause is that the
// kernel refused the new user namespace (user.max_user_namespaces=0, Debian's
// kernel.unprivileged_userns_clone=0, Ubuntu's AppArmor restriction), which makes clone fail.
func liveStartFailure(runErr error, stderr string) string {
	if runErr == nil {
		return ""
	}
	var ee *exec.ExitError
	if errors.As(runErr, &ee) {
		if s := strings.TrimSpace(stderr); s != "" {
			return fmt.Sprintf("live helper %s: %s", ee.ProcessState, liveLastLine(s))
		}
		return fmt.Sprintf("live helper %s", ee.ProcessState)
	}
	var errno syscall.Errno
	if errors.As(runErr, &errno) && (errno == syscall.EPERM || errno == syscall.EACCES || errno == syscall.ENOSPC || errno == syscall.EINVAL) {
		// ENOSPC is what clone returns when user.max_user_namespaces is 0.
		return "create user namespace: " + errno.Error()
	}
	return fmt.Sprintf("start live helper: %v", runErr)
}

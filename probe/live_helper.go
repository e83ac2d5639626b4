package probe

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// LiveHelperEnv names, in the environment of a re-executed virt-setup, the live test the child
// must run inside its new user and mount namespace ("overlay" or "fuse-overlayfs").
const LiveHelperEnv = "VIRT_SETUP_LIVE_HELPER"

// liveParentMntNSEnv carries the parent's mount namespace ("mnt:[4026531841]") so the child can
// refuse to mount anything unless it really is in a namespace of its own.
const liveParentMntNSEnv = "VIRT_SETUP_LIVE_PARENT_MNTNS"

// Names of the live tests, as passed in LiveHelperEnv.
const (
	liveTestOverlay = "overlay"
	liveTestFuse    = "fuse-overlayfs"
)

// Layout of a live test's work directory, made by the parent as the user.
const (
	liveLower     = "lower"
	liveUpper     = "upper"
	liveWork      = "work"
	liveMerged    = "merged"
	liveLowerFile = "from-lower.txt"
	liveNewFile   = "written.txt"
)

// liveLowerContent and liveNewContent are what the test reads and writes through the mount.
var (
	liveLowerContent = []byte("virt-setup live test: lower layer\n")
	liveNewContent   = []byte("virt-setup live test: written through the mount\n")
)

// liveResult is what the child prints on stdout as one JSON object.
type liveResult struct {
	Passed bool `json:"passed"`
	// Step names what failed ("mount overlay"); Error is the failure ("operation not permitted").
	Step  string `json:"step,omitempty"`
	Error string `json:"error,omitempty"`
	// Done lists the steps that succeeded, in order, for the evidence.
	Done []string `json:"done,omitempty"`
}

func (r *liveResult) fail(step string, err error) liveResult {
	r.Passed, r.Step, r.Error = false, step, liveErrText(err)
	return *r
}

func (r *liveResult) ok(step string) { r.Done = append(r.Done, step) }

// liveErrText drops the "mount"/"open" wrapper of syscall errors: the step already says what was
// tried, and "mount overlay: operation not permitted" reads better than the full chain.
func liveErrText(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		var pe *os.PathError
		if !errors.As(err, &pe) || strings.HasPrefix(pe.Path, "/dev/") {
			return errno.Error()
		}
	}
	return err.Error()
}

// RunLiveHelper runs the child side of a live test when this process was re-executed for one
// (LiveHelperEnv is set); ran is false otherwise. main() and TestMain call it first thing and exit
// with exitCode when ran is true. The child prints its result as JSON on stdout.
func RunLiveHelper() (exitCode int, ran bool) {
	test := os.Getenv(LiveHelperEnv)
	if test == "" {
		return 0, false
	}
	res, code := runLiveHelper(test, os.Args[1:])
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		fmt.Fprintf(os.Stderr, "virt-setup live helper: write result: %v\n", err)
		return 1, true
	}
	return code, true
}

func runLiveHelper(test string, args []string) (liveResult, int) {
	var r liveResult
	if len(args) < 1 || !filepath.IsAbs(args[0]) {
		return r.fail("start live helper", errors.New("usage: VIRT_SETUP_LIVE_HELPER=TEST virt-setup WORKDIR [FUSE-OVERLAYFS [FUSERMOUNT3]]")), 2
	}
	if test != liveTestOverlay && test != liveTestFuse {
		return r.fail("start live helper", fmt.Errorf("unknown live test %q", test)), 2
	}
	if err := liveCheckNamespaces(); err != nil {
		return r.fail("check namespaces", err), 2
	}
	// Mounts made below must never reach the host, whatever the propagation of "/" is there
	// (systemd makes it shared).
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return r.fail("make / rprivate", err), 0
	}
	r.ok("make / rprivate")
	dir := args[0]
	switch test {
	case liveTestOverlay:
		return liveOverlayChild(&r, dir), 0
	case liveTestFuse:
		var fuseBin, fusermount string
		if len(args) > 1 {
			fuseBin = args[1]
		}
		if len(args) > 2 {
			fusermount = args[2]
		}
		return liveFuseChild(&r, dir, fuseBin, fusermount), 0
	}
	return r.fail("start live helper", fmt.Errorf("unknown live test %q", test)), 2
}

// liveCheckNamespaces refuses to go on unless this process is in a user namespace of its own and
// a mount namespace other than its parent's: the helper must never mount on the host, even when
// someone runs virt-setup with LiveHelperEnv set by hand.
func liveCheckNamespaces() error {
	m, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return fmt.Errorf("read /proc/self/uid_map: %w", err)
	}
	if f := strings.Fields(string(m)); len(f) == 3 && f[0] == "0" && f[1] == "0" && f[2] == "4294967295" {
		return errors.New("not in a new user namespace (uid_map is the initial one)")
	}
	own, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		return fmt.Errorf("read mount namespace: %w", err)
	}
	parent := os.Getenv(liveParentMntNSEnv)
	if parent == "" || parent == own {
		return fmt.Errorf("not in a new mount namespace (own %s, parent %q)", own, parent)
	}
	return nil
}

func liveOverlayChild(r *liveResult, dir string) liveResult {
	merged := filepath.Join(dir, liveMerged)
	if err := unix.Mount("overlay", merged, "overlay", 0, liveOverlayOptions(dir)); err != nil {
		return r.fail("mount overlay", err)
	}
	r.ok("mount overlay")
	if step, err := liveCheckMerged(r, dir); err != nil {
		_ = unix.Unmount(merged, unix.MNT_DETACH)
		return r.fail(step, err)
	}
	if err := unix.Unmount(merged, 0); err != nil {
		return r.fail("unmount overlay", err)
	}
	r.ok("unmount")
	r.Passed = true
	return *r
}

// liveOverlayOptions are the options overlayfs and fuse-overlayfs both take. The parent makes
// sure the paths hold no ',' or ':' (the option separators).
func liveOverlayOptions(dir string) string {
	return fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s",
		filepath.Join(dir, liveLower), filepath.Join(dir, liveUpper), filepath.Join(dir, liveWork))
}

// liveCheckMerged does what a snapshotter needs from the mount: read a lower file through it,
// write a new file through it and find that file in the upper layer (and not in the lower).
func liveCheckMerged(r *liveResult, dir string) (string, error) {
	merged := filepath.Join(dir, liveMerged)
	b, err := os.ReadFile(filepath.Join(merged, liveLowerFile))
	if err != nil {
		return "read a lower file through the mount", err
	}
	if !bytes.Equal(b, liveLowerContent) {
		return "read a lower file through the mount", fmt.Errorf("got %q, want %q", verExcerpt(string(b), 60), liveLowerContent)
	}
	r.ok("read lower file through the mount")
	if err := os.WriteFile(filepath.Join(merged, liveNewFile), liveNewContent, 0o644); err != nil {
		return "write a file through the mount", err
	}
	r.ok("write through the mount")
	b, err = os.ReadFile(filepath.Join(dir, liveUpper, liveNewFile))
	if err != nil {
		return "find the written file in upperdir", err
	}
	if !bytes.Equal(b, liveNewContent) {
		return "find the written file in upperdir", fmt.Errorf("upperdir has %q", verExcerpt(string(b), 60))
	}
	if _, err := os.Stat(filepath.Join(dir, liveLower, liveNewFile)); err == nil {
		return "keep lowerdir unchanged", errors.New("the written file appeared in lowerdir")
	}
	r.ok("written file landed in upperdir")
	return "", nil
}

// liveFuseMountWait bounds how long fuse-overlayfs may take to mount; it takes a few milliseconds.
const liveFuseMountWait = 1500 * time.Millisecond

func liveFuseChild(r *liveResult, dir, fuseBin, fusermount string) liveResult {
	if fuseBin == "" {
		return r.fail("start fuse-overlayfs", errors.New("no fuse-overlayfs path given"))
	}
	// FUSE needs read-write access to /dev/fuse; opening it first turns the commonest failure
	// (a 0600 root device on hosts without udev rules) into a clear message.
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		return r.fail("open /dev/fuse", err)
	}
	f.Close()
	r.ok("open /dev/fuse")

	merged := filepath.Join(dir, liveMerged)
	// The kernel delivers Pdeathsig when the thread that started the child exits, so stay on
	// this thread until fuse-overlayfs is gone.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var stderr bytes.Buffer
	// -f keeps fuse-overlayfs in the foreground as our child, so we know its pid and it cannot
	// outlive us.
	cmd := exec.Command(fuseBin, "-f", "-o", liveOverlayOptions(dir), merged)
	cmd.Dir = dir
	cmd.Stderr = &liveCappedWriter{buf: &stderr, max: 4096}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return r.fail("start fuse-overlayfs", err)
	}
	p := &liveProc{cmd: cmd, exited: make(chan error, 1)}
	go func() { p.exited <- cmd.Wait() }()
	defer p.stop()

	if err := liveWaitMounted(dir, merged, p); err != nil {
		p.stop()
		if s := strings.TrimSpace(stderr.String()); s != "" {
			err = fmt.Errorf("%w: %s", err, liveLastLine(s))
		}
		return r.fail("mount fuse-overlayfs", err)
	}
	r.ok("mount fuse-overlayfs")

	if step, err := liveCheckMerged(r, dir); err != nil {
		_ = unix.Unmount(merged, unix.MNT_DETACH)
		return r.fail(step, err)
	}
	// As root of the namespace umount2 works on a FUSE mount; fusermount3 -u is the way an
	// ordinary user would do it, kept as the fallback.
	if err := unix.Unmount(merged, 0); err != nil {
		umountErr := err
		if fusermount != "" {
			if out, err := exec.Command(fusermount, "-u", merged).CombinedOutput(); err == nil {
				umountErr = nil
			} else {
				umountErr = fmt.Errorf("umount2: %v; fusermount3 -u: %v: %s", umountErr, err, liveLastLine(string(out)))
			}
		}
		if umountErr != nil {
			_ = unix.Unmount(merged, unix.MNT_DETACH)
			return r.fail("unmount fuse-overlayfs", umountErr)
		}
	}
	r.ok("unmount")
	// fuse-overlayfs exits by itself once unmounted; make sure it did.
	if !p.waitFor(time.Second) {
		return r.fail("stop fuse-overlayfs", errors.New("still running a second after unmount; killed"))
	}
	r.ok("fuse-overlayfs exited")
	r.Passed = true
	return *r
}

// liveProc is the fuse-overlayfs process of a live test.
type liveProc struct {
	cmd    *exec.Cmd
	exited chan error
	done   bool
	err    error
}

// waitFor waits up to d for the process to exit and reports whether it has.
func (p *liveProc) waitFor(d time.Duration) bool {
	if p.done {
		return true
	}
	if d <= 0 {
		select {
		case p.err = <-p.exited:
			p.done = true
		default:
		}
		return p.done
	}
	select {
	case p.err = <-p.exited:
		p.done = true
	case <-time.After(d):
	}
	return p.done
}

// stop kills the process unless it has exited, and reaps it.
func (p *liveProc) stop() {
	if p.done {
		return
	}
	_ = p.cmd.Process.Kill()
	p.err = <-p.exited
	p.done = true
}

// liveWaitMounted polls until merged is a mount point (its device differs from its parent's);
// it fails when fuse-overlayfs exits first or the wait runs out.
func liveWaitMounted(dir, merged string, p *liveProc) error {
	var parent unix.Stat_t
	if err := unix.Stat(dir, &parent); err != nil {
		return fmt.Errorf("stat %s: %w", dir, err)
	}
	deadline := time.Now().Add(liveFuseMountWait)
	for time.Now().Before(deadline) {
		if p.waitFor(0) {
			if p.err == nil {
				return errors.New("fuse-overlayfs exited before mounting")
			}
			return fmt.Errorf("fuse-overlayfs: %w", p.err)
		}
		var st unix.Stat_t
		if err := unix.Stat(merged, &st); err == nil && st.Dev != parent.Dev {
			return nil
		}
		time.Sleep(2 * time.Millisecond)
	}
	return fmt.Errorf("not mounted after %s", liveFuseMountWait)
}

func liveLastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return verExcerpt(s, 200)
}

// liveCappedWriter keeps the first max bytes written to it and drops the rest.
type liveCappedWriter struct {
	buf *bytes.Buffer
	max int
}

// Write implements io.Writer.
func (w *liveCappedWriter) Write(p []byte) (int, error) {
	if room := w.max - w.buf.Len(); room > 0 {
		w.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

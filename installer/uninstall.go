package installer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/virt-setup/virt-setup/internal/fsutil"
	"github.com/virt-setup/virt-setup/internal/sys"
)

// DefaultStopTimeout is how long a stopped process gets between SIGTERM and SIGKILL. containerd
// shuts down its shims and RootlessKit its namespaces in well under this on a sane host.
const DefaultStopTimeout = 5 * time.Second

// DataStepID is the ID of uninstall's last pseudo-step, which keeps or purges the data directories.
const DataStepID = "data"

// Skip reasons uninstall reports.
const (
	ReasonDryRun          = "dry run: nothing changed"
	ReasonNothingRecorded = "nothing recorded to undo"
	ReasonDataKept        = "kept (uninstall --purge removes them)"
	ReasonNoData          = "no data directory present"
)

// UninstallOptions configure Uninstall.
type UninstallOptions struct {
	// DryRun reports what would be undone and changes nothing.
	DryRun bool
	// Purge also removes the data directories (images, containers, build cache).
	Purge bool
	// Emit receives the events, as in RunOptions.
	Emit func(Event)
	// Undoer returns the step that made a journal entry, when the current planner can still build
	// it; its Undo is then used. Without one, the entry's record is undone generically.
	Undoer func(stepID string) (Step, bool)
	// DataDirs are the data directories to keep or purge; nil means DataDirs(rt.Paths).
	DataDirs []string
	// StopTimeout is how long a recorded process gets to exit after SIGTERM; zero means
	// DefaultStopTimeout.
	StopTimeout time.Duration
}

// DataDirs are the directories where the rootless stack keeps images, containers and caches. Their
// files belong to sub-UIDs, and removing them destroys the user's images, so uninstall keeps them
// unless asked to purge.
func DataDirs(p Paths) []string {
	var out []string
	for _, d := range []string{"containerd", "nerdctl", "buildkit", "containerd-stargz-grpc", "containerd-fuse-overlayfs", "cni"} {
		out = append(out, filepath.Join(p.DataHome, d))
	}
	return out
}

// Uninstall undoes every step the journal says virt-setup applied, in reverse order: with the
// step's own Undo when opts.Undoer can still build the step, else generically from its record
// (files restored byte for byte or removed, processes stopped, user units removed). It goes on past
// a failed undo, so one stuck step does not leave everything else in place, and the journal keeps
// the failed entries for a later retry. When everything is undone the journal is archived next to
// itself. j nil means the journal at JournalPath(rt.Paths).
func Uninstall(ctx context.Context, rt *Runtime, j *Journal, opts UninstallOptions) error {
	if j == nil {
		var err error
		if j, err = LoadJournal(JournalPath(rt.Paths)); err != nil {
			return err
		}
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = DefaultStopTimeout
	}
	if opts.DataDirs == nil {
		opts.DataDirs = DataDirs(rt.Paths)
	}

	e := newEmitter(opts.Emit, rt)
	entries := j.Applied()
	slices.Reverse(entries)
	total := len(entries) + 1
	start := e.now()
	// A journal that never recorded anything has no file to archive; writing one just for this
	// run would leave a journal behind on a host virt-setup never touched.
	record := !opts.DryRun && (len(j.Runs) > 0 || len(j.Steps) > 0)
	run := -1
	if record {
		unlock, err := lockJournal(j)
		if err != nil {
			return err
		}
		defer unlock()
		j.closeInterrupted(start)
		run = j.beginRun(RunEntry{Kind: RunUninstall, Started: start})
		if err := j.Save(); err != nil {
			return err
		}
	}
	e.emit(Event{Kind: EventPlanStarted, Total: total})

	u := &undoer{rt: rt, opts: opts, e: e}
	var errs []error
	for i, ent := range entries {
		if err := ctx.Err(); err != nil {
			errs = append(errs, fmt.Errorf("uninstall cancelled: %w", err))
			break
		}
		err := u.undoEntry(ctx, j, ent, i+1, total)
		if err != nil {
			errs = append(errs, err)
		}
		if isCancel(err) && ctx.Err() != nil {
			break
		}
	}
	if ctx.Err() == nil {
		if err := u.data(ctx, total, len(errs) > 0); err != nil {
			errs = append(errs, err)
		}
	}
	runErr := errors.Join(errs...)
	end := e.now()
	if record {
		j.endRun(run, end, runErr)
		if err := j.Save(); err != nil {
			runErr = errors.Join(runErr, err)
		}
	}
	if record && runErr == nil {
		to, err := j.Archive(end)
		if err != nil {
			runErr = err
		} else if to != "" {
			e.emit(Event{Kind: EventOutput, Total: total, Line: "journal archived as " + to})
		}
	}
	ev := Event{Kind: EventFinished, Total: total, Duration: end.Sub(start)}
	if runErr != nil {
		ev.Err = runErr.Error()
		ev.Fix = FixFor(runErr)
		if ev.Fix == "" {
			ev.Fix = "fix the cause and run uninstall again: what is undone already is not undone twice"
		}
	}
	e.emit(ev)
	return runErr
}

// undoer undoes journal entries.
type undoer struct {
	rt   *Runtime
	opts UninstallOptions
	e    *emitter
}

// undoEntry undoes one entry and keeps the journal.
func (u *undoer) undoEntry(ctx context.Context, j *Journal, ent Entry, index, total int) error {
	start := u.e.now()
	base := Event{Step: ent.ID, Title: "Undo: " + firstSet(ent.Title, ent.ID), Index: index, Total: total}
	at := func(kind EventKind) Event { ev := base; ev.Kind = kind; return ev }
	u.e.emit(at(EventStepStarted))
	out := u.e.outputFor(at(EventOutput))
	defer out.close()
	rt := *u.rt
	rt.Output = out.line

	var step Step
	if u.opts.Undoer != nil {
		step, _ = u.opts.Undoer(ent.ID)
	}
	if u.opts.DryRun {
		if step != nil {
			out.line("would run the step's own undo, which covers:")
		}
		empty := describeRecord(ent.Record, rt.Paths, out.line)
		ev := at(EventStepSkipped)
		ev.Reason, ev.Duration = ReasonDryRun, u.e.now().Sub(start)
		if empty && step == nil {
			ev.Reason = ReasonNothingRecorded
		}
		u.e.emit(ev)
		return nil
	}

	var err error
	skipped := false
	if step != nil {
		timeout := step.Info().Timeout
		if timeout <= 0 {
			timeout = DefaultStepTimeout
		}
		sctx, cancel := context.WithTimeout(ctx, timeout)
		_, err = guardStep(sctx, ent.ID, out.line, func() error { return step.Undo(sctx, &rt, ent.Record) })
		cancel()
	} else if isEmptyRecord(ent.Record) {
		skipped = true
	} else {
		err = u.generic(ctx, &rt, ent.Record)
	}

	je := j.entry(StepInfo{ID: ent.ID, Title: ent.Title, Kind: ent.Kind})
	je.Ended = u.e.now()
	if err != nil {
		err = fmt.Errorf("undo %s: %w", ent.ID, err)
		je.Error, je.Fix = err.Error(), FixFor(err)
	} else {
		// The record is kept for the archived journal; Applied false means nothing is left to undo
		// and a later install starts a fresh record.
		je.Status, je.Applied, je.Error, je.Fix, je.Reason = StatusUndone, false, "", "", ""
	}
	saveErr := j.Save()
	switch {
	case err != nil:
		ev := at(EventStepFailed)
		ev.Err, ev.Fix, ev.Duration = err.Error(), je.Fix, je.Ended.Sub(start)
		u.e.emit(ev)
	case skipped:
		ev := at(EventStepSkipped)
		ev.Reason, ev.Duration = ReasonNothingRecorded, je.Ended.Sub(start)
		u.e.emit(ev)
	default:
		ev := at(EventStepDone)
		ev.Duration = je.Ended.Sub(start)
		u.e.emit(ev)
	}
	return errors.Join(err, saveErr)
}

func isEmptyRecord(r Record) bool {
	return len(r.Files) == 0 && len(r.Processes) == 0 && len(r.Units) == 0
}

// describeRecord tells what undoing r would do, as output lines. It reports whether r is empty.
func describeRecord(r Record, p Paths, out func(string)) bool {
	if isEmptyRecord(r) && len(r.Data) == 0 {
		out("nothing recorded")
		return true
	}
	for _, pr := range r.Processes {
		out(describeProcess(pr))
	}
	for _, unit := range slices.Backward(r.Units) {
		out(fmt.Sprintf("would stop and disable the user unit %s and remove %s", unit, userUnitPath(p, unit)))
	}
	for _, f := range slices.Backward(r.Files) {
		if f.Existed {
			out(fmt.Sprintf("would restore %s from %s (mode %v)", f.Path, f.Backup, fs.FileMode(f.Mode)&restoreModeBits))
		} else {
			out("would remove " + f.Path)
		}
		for _, d := range shallowFirst(f.CreatedDirs) {
			out("would remove the directory " + d + " if empty")
		}
	}
	if len(r.Data) > 0 {
		out(fmt.Sprintf("the step also recorded %s, which only its own undo uses", strings.Join(slices.Sorted(maps.Keys(r.Data)), ", ")))
	}
	return false
}

// restoreModeBits are the bits of a FileRecord.Mode a restore puts back.
const restoreModeBits = fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky

// generic undoes a record without its step: processes first (they use the files), then units,
// then files, last written first.
func (u *undoer) generic(ctx context.Context, rt *Runtime, r Record) error {
	var errs []error
	for _, p := range r.Processes {
		if err := stopRecordedProcess(p, u.opts.StopTimeout, rt.Output); err != nil {
			errs = append(errs, err)
		}
	}
	if len(r.Units) > 0 {
		if err := u.removeUnits(ctx, rt, r); err != nil {
			errs = append(errs, err)
		}
	}
	for _, f := range slices.Backward(r.Files) {
		if err := undoFileRecord(f, rt.Output); err != nil {
			errs = append(errs, err)
		}
	}
	if len(r.Data) > 0 {
		rt.Output(fmt.Sprintf("note: the step also recorded %s, which only its own undo can use", strings.Join(slices.Sorted(maps.Keys(r.Data)), ", ")))
	}
	return errors.Join(errs...)
}

// undoFileRecord restores a replaced file from its backup, byte for byte and with its mode, or
// removes a created one, then removes the directories created for it that are empty. The backup
// is kept: the archived journal still names it, and it is the user's only other copy.
func undoFileRecord(f FileRecord, out func(string)) error {
	if !filepath.IsAbs(f.Path) {
		return fmt.Errorf("undo file %q: not an absolute path; the journal is damaged", f.Path)
	}
	switch {
	case f.Existed && f.Backup == "":
		// Recorded before the backup was made: the step stopped before writing anything.
		out(f.Path + " was never written")
	case f.Existed:
		want, err := os.ReadFile(f.Backup)
		if err != nil {
			return &StepError{Err: fmt.Errorf("restore %s: read backup: %w", f.Path, err),
				Fix: "without the backup the original content cannot be restored; check " + f.Path + " by hand"}
		}
		if _, err := fsutil.MkdirAllRecord(filepath.Dir(f.Path), 0o755); err != nil {
			return fmt.Errorf("restore %s: %w", f.Path, err)
		}
		// Mode 0 (none recorded) makes the write keep the current file's mode.
		if err := fsutil.WriteFileAtomic(f.Path, want, fs.FileMode(f.Mode)&restoreModeBits); err != nil {
			return fmt.Errorf("restore %s from %s: %w", f.Path, f.Backup, err)
		}
		if got, err := os.ReadFile(f.Path); err != nil || !bytes.Equal(got, want) {
			return fmt.Errorf("restore %s: the file does not match its backup %s after the write (%v)", f.Path, f.Backup, err)
		}
		out(fmt.Sprintf("restored %s from %s", f.Path, f.Backup))
	default:
		switch err := os.Remove(f.Path); {
		case err == nil:
			out("removed " + f.Path)
		case errors.Is(err, fs.ErrNotExist):
			out(f.Path + " is already gone")
		default:
			return fmt.Errorf("remove %s: %w", f.Path, err)
		}
	}
	dirs := shallowFirst(f.CreatedDirs)
	if err := fsutil.RemoveEmptyDirs(dirs); err != nil {
		return err
	}
	for _, d := range slices.Backward(dirs) {
		if exists, _ := lexists(d); exists {
			out("kept the directory " + d + ": it is not empty")
		} else {
			out("removed the directory " + d)
		}
	}
	return nil
}

func lexists(p string) (bool, error) {
	_, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// sortDirs orders directories shallowest first, as fsutil.RemoveEmptyDirs expects; records merged
// from several runs may list them in any order.
func shallowFirst(dirs []string) []string {
	out := slices.Clone(dirs)
	slices.SortStableFunc(out, func(a, b string) int {
		return strings.Count(filepath.Clean(a), "/") - strings.Count(filepath.Clean(b), "/")
	})
	return out
}

// unitPath is where a user unit file lives.
func userUnitPath(p Paths, unit string) string {
	return filepath.Join(p.ConfigHome, "systemd", "user", unit)
}

// removeUnits stops, disables and removes user units the way containerd-rootless-setuptool.sh
// uninstall does (stop and disable failures only reported: the unit may be gone already), then
// reloads the user manager, which the setuptool forgets.
func (u *undoer) removeUnits(ctx context.Context, rt *Runtime, r Record) error {
	var errs []error
	systemctl := func(args ...string) error {
		cmd := sys.Command{Path: "systemctl", Args: append([]string{"--user"}, args...), Env: rt.Env, Timeout: 30 * time.Second}
		rt.Output("$ " + cmd.String())
		res, err := rt.Runner.Run(ctx, cmd)
		for l := range strings.SplitSeq(strings.TrimSpace(res.Combined()), "\n") {
			if l != "" {
				rt.Output(l)
			}
		}
		return err
	}
	for _, unit := range slices.Backward(r.Units) {
		if unit == "" || strings.ContainsRune(unit, '/') || unit == "." || unit == ".." {
			errs = append(errs, fmt.Errorf("remove unit %q: not a unit name; the journal is damaged", unit))
			continue
		}
		for _, verb := range []string{"stop", "disable"} {
			if err := systemctl(verb, unit); err != nil {
				rt.Output(fmt.Sprintf("%s %s failed (%v); going on", verb, unit, err))
			}
		}
		path := userUnitPath(rt.Paths, unit)
		// A unit file the step wrote itself is restored or removed with the step's files.
		if slices.ContainsFunc(r.Files, func(f FileRecord) bool { return f.Path == path }) {
			continue
		}
		switch err := os.Remove(path); {
		case err == nil:
			rt.Output("removed " + path)
		case errors.Is(err, fs.ErrNotExist):
		default:
			errs = append(errs, fmt.Errorf("remove unit file %s: %w", path, err))
		}
	}
	if err := systemctl("daemon-reload"); err != nil {
		rt.Output(fmt.Sprintf("daemon-reload failed (%v); the user manager still lists the removed units until it reloads", err))
	}
	return errors.Join(errs...)
}

// describeProcess says what stopProcess would do, without signalling anything.
func describeProcess(p ProcessRecord) string {
	pid, err := readPIDFile(p.PIDFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Sprintf("%s: no pid file %s; nothing to stop", p.Name, p.PIDFile)
	case err != nil:
		return fmt.Sprintf("%s: %v; nothing would be stopped", p.Name, err)
	}
	ok, cmdline := cmdlineNames(pid, p.Name)
	if !ok {
		if cmdline == "" {
			return fmt.Sprintf("%s: pid %d from %s is not running; would remove the pid file", p.Name, pid, p.PIDFile)
		}
		return fmt.Sprintf("%s: pid %d is now %q, not %s; would leave it alone and remove the pid file", p.Name, pid, cmdline, p.Name)
	}
	return fmt.Sprintf("would stop %s (pid %d from %s)", p.Name, pid, p.PIDFile)
}

// readPIDFile reads the pid a pid file holds. Pid 1 (init) is never a process virt-setup started, so
// a file naming it (or 0, or a negative number) is refused as garbled.
func readPIDFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0, fmt.Errorf("pid file %s holds no pid (%q)", path, strings.TrimSpace(string(b)))
	}
	return pid, nil
}

// cmdlineNames reports whether pid is a process of this user running the program name, judged
// from /proc/PID/cmdline (also returned, for messages; "" when the process is gone or a zombie).
// Any argument counts, not just argv[0]: containerd-rootless.sh runs as "sh containerd-rootless.sh"
// and then as "rootlesskit … containerd-rootless.sh", so a script keeps its name only as an argument.
func cmdlineNames(pid int, name string) (bool, string) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(b) == 0 {
		return false, ""
	}
	args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	cmdline := strings.Join(args, " ")
	if uid, ok := procRealUID(pid); !ok || uid != os.Getuid() {
		return false, cmdline
	}
	for _, a := range args {
		if a == name || filepath.Base(a) == name {
			return true, cmdline
		}
	}
	return false, cmdline
}

// procRealUID reads the real uid of pid from /proc/PID/status.
func procRealUID(pid int) (int, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, false
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Uid:"); ok {
			f := strings.Fields(v)
			if len(f) == 0 {
				return 0, false
			}
			uid, err := strconv.Atoi(f[0])
			return uid, err == nil
		}
	}
	return 0, false
}

// stopRecordedProcess stops the process a pid file names: SIGTERM, up to timeout to exit, then SIGKILL.
// The pid is signalled through a pidfd opened before its cmdline is checked, so a pid reused by
// another program between the check and the signal is never hit: the pidfd keeps naming the
// process that was checked.
func stopRecordedProcess(p ProcessRecord, timeout time.Duration, out func(string)) error {
	pid, err := readPIDFile(p.PIDFile)
	if errors.Is(err, fs.ErrNotExist) {
		out(fmt.Sprintf("%s: no pid file %s; nothing to stop", p.Name, p.PIDFile))
		return nil
	}
	if err != nil {
		out(fmt.Sprintf("%s: %v; nothing stopped", p.Name, err))
		return dropPIDFile(p.PIDFile, out)
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		out(fmt.Sprintf("%s (pid %d) is not running", p.Name, pid))
		return dropPIDFile(p.PIDFile, out)
	}
	if err != nil {
		return fmt.Errorf("stop %s: open pid %d: %w", p.Name, pid, err)
	}
	defer unix.Close(fd)
	if pidfdExited(fd, 0) {
		out(fmt.Sprintf("%s (pid %d) has exited", p.Name, pid))
		return dropPIDFile(p.PIDFile, out)
	}
	if ok, cmdline := cmdlineNames(pid, p.Name); !ok {
		out(fmt.Sprintf("%s: pid %d is now %q, another program or another user's; left alone", p.Name, pid, cmdline))
		return dropPIDFile(p.PIDFile, out)
	}
	out(fmt.Sprintf("stopping %s (pid %d)", p.Name, pid))
	if err := unix.PidfdSendSignal(fd, unix.SIGTERM, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("stop %s: signal pid %d: %w", p.Name, pid, err)
	}
	if !pidfdExited(fd, timeout) {
		out(fmt.Sprintf("%s (pid %d) did not exit within %s of SIGTERM; sending SIGKILL", p.Name, pid, timeout))
		if err := unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("stop %s: kill pid %d: %w", p.Name, pid, err)
		}
		if !pidfdExited(fd, 5*time.Second) {
			return &StepError{Err: fmt.Errorf("stop %s: pid %d is still running after SIGKILL", p.Name, pid),
				Fix: fmt.Sprintf("it is probably stuck in the kernel (state D); look at /proc/%d/stack as root, or reboot", pid)}
		}
	}
	out(fmt.Sprintf("stopped %s (pid %d)", p.Name, pid))
	return dropPIDFile(p.PIDFile, out)
}

// pidfdExited waits up to timeout for the pidfd's process to exit. A pidfd polls readable once the
// process has exited, zombie or reaped, so an unreaped child counts as stopped.
func pidfdExited(fd int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		ms := max(int(time.Until(deadline).Milliseconds()), 0)
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, ms)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		return err == nil && n > 0
	}
}

func dropPIDFile(path string, out func(string)) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove pid file %s: %w", path, err)
	}
	return nil
}

// data keeps or purges the data directories, as uninstall's last step. It refuses to purge when an
// undo failed: a containerd that could not be stopped may still be writing there.
func (u *undoer) data(ctx context.Context, total int, undoFailed bool) error {
	start := u.e.now()
	base := Event{Step: DataStepID, Title: "Data directories", Index: total, Total: total}
	at := func(kind EventKind) Event { ev := base; ev.Kind = kind; return ev }
	u.e.emit(at(EventStepStarted))
	out := u.e.outputFor(at(EventOutput))
	defer out.close()
	var present []string
	for _, d := range u.opts.DataDirs {
		if fi, err := os.Lstat(d); err == nil && fi.IsDir() {
			present = append(present, d)
		}
	}
	skip := func(reason string) error {
		ev := at(EventStepSkipped)
		ev.Reason, ev.Duration = reason, u.e.now().Sub(start)
		u.e.emit(ev)
		return nil
	}
	if len(present) == 0 {
		return skip(ReasonNoData)
	}
	if !u.opts.Purge {
		for _, d := range present {
			out.line("kept " + d)
		}
		return skip(ReasonDataKept)
	}
	if u.opts.DryRun {
		for _, d := range present {
			out.line(fmt.Sprintf("would remove %s with `rootlesskit rm -rf %s`", d, d))
		}
		return skip(ReasonDryRun)
	}
	fail := func(err error) error {
		ev := at(EventStepFailed)
		ev.Err, ev.Fix, ev.Duration = err.Error(), FixFor(err), u.e.now().Sub(start)
		u.e.emit(ev)
		return err
	}
	if undoFailed {
		return fail(&StepError{Err: errors.New("purge: data directories not removed because an undo above failed"),
			Fix: "fix what failed and run `virt-setup uninstall --purge` again"})
	}
	var errs []error
	for _, d := range present {
		cmd := sys.Command{Path: "rootlesskit", Args: []string{"rm", "-rf", d}, Env: u.rt.Env, Timeout: 10 * time.Minute}
		// The files belong to sub-UIDs (container users), which the user cannot remove directly;
		// RootlessKit runs rm inside a user namespace that maps them, as the setuptool advises.
		out.line(fmt.Sprintf("removing %s inside a user namespace ($ %s): its files belong to sub-UIDs", d, cmd))
		res, err := u.rt.Runner.Run(ctx, cmd)
		for l := range strings.SplitSeq(strings.TrimSpace(res.Combined()), "\n") {
			if l != "" {
				out.line(l)
			}
		}
		if err == nil {
			if _, serr := os.Lstat(d); serr == nil {
				err = errors.New("it still exists after rootlesskit rm -rf")
			}
		}
		if err != nil {
			errs = append(errs, &StepError{Err: fmt.Errorf("purge %s: %w", d, err),
				Fix: fmt.Sprintf("run `rootlesskit rm -rf %s` yourself (it needs newuidmap and your subuid range)", d)})
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fail(err)
	}
	ev := at(EventStepDone)
	ev.Duration = u.e.now().Sub(start)
	u.e.emit(ev)
	return nil
}

package installer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Skip reasons the engine reports.
const (
	ReasonInPlace    = "already in place"
	ReasonEarlierRun = "done in an earlier run"
)

// abandonAfter is how long the engine waits for a step to return once its context is done. A step
// that ignores its context would otherwise hold Ctrl-C hostage; after this the run ends without it.
// A variable so that tests need not wait this long.
var abandonAfter = 5 * time.Second

// ErrInterrupted is returned by Run when the journal's last install run never ended and
// RunOptions.Resume is false.
var ErrInterrupted = errors.New("the previous install run did not finish")

// StepError is an error a step returns to give the user a fix apart from the error text.
type StepError struct {
	Err error
	// Fix is what the user can do, e.g. a command to run.
	Fix string
}

// Error implements error.
func (e *StepError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *StepError) Unwrap() error { return e.Err }

// UserFix returns what the user can do about the error.
func (e *StepError) UserFix() string { return e.Fix }

// FixFor returns the fix the first error in err's chain carries (StepError, JournalError), or "".
func FixFor(err error) string {
	var f interface{ UserFix() string }
	if errors.As(err, &f) {
		return f.UserFix()
	}
	return ""
}

// RunOptions configure Run.
type RunOptions struct {
	// Journal is the journal to keep; when nil, the one at JournalPath is loaded (by default
	// JournalPath(rt.Paths)).
	Journal     *Journal
	JournalPath string
	// Emit receives the events. It is called synchronously from the engine's goroutine, never
	// concurrently, and must not block for long: a front end that needs a channel (the wizard)
	// wraps it, e.g. func(ev Event) { ch <- ev }. A nil Emit drops the events.
	Emit func(Event)
	// Resume continues after a run that never ended (the process died). Without it such a journal
	// makes Run fail with ErrInterrupted, so that a crash is never passed over silently. Either way
	// every step is checked again, so resuming is always safe.
	Resume bool
	// StepTimeout bounds a step that sets no timeout of its own; zero means DefaultStepTimeout.
	StepTimeout time.Duration
}

// Run runs the plan: each step is checked and, when its effect is not in place, applied. It stops
// at the first failure. The journal is saved on every step transition, so a process killed at any
// moment leaves a journal that says which step was in flight, and a run that is repeated skips
// every step that is done. A cancelled ctx stops the run between steps or inside one (the step's
// Apply gets the context); the error then wraps context.Canceled.
func Run(ctx context.Context, plan *Plan, rt *Runtime, opts RunOptions) error {
	if err := checkPlan(plan); err != nil {
		return err
	}
	j := opts.Journal
	if j == nil {
		path := opts.JournalPath
		if path == "" {
			path = JournalPath(rt.Paths)
		}
		var err error
		if j, err = LoadJournal(path); err != nil {
			return err
		}
	}
	unlock, err := lockJournal(j)
	if err != nil {
		return err
	}
	defer unlock()

	resumed := false
	if last, ok := j.Interrupted(); ok && last.Kind == RunInstall {
		if !opts.Resume {
			return &StepError{Err: fmt.Errorf("%w (started %s; the journal %s says which step was in flight)",
				ErrInterrupted, last.Started.Format(time.RFC3339), j.Path()),
				Fix: "resume it (every step is checked again and what is done is skipped), or undo it with `virt-setup uninstall`"}
		}
		j.closeInterrupted(clockNow(rt))
		resumed = true
	}

	e := newEmitter(opts.Emit, rt)
	total := len(plan.Steps)
	start := e.now()
	answers := plan.Answers
	run := j.beginRun(RunEntry{Kind: RunInstall, Answers: &answers, Started: start, Resumed: resumed})
	if err := j.Save(); err != nil {
		return err
	}
	e.emit(Event{Kind: EventPlanStarted, Total: total})
	finished := 0

	finish := func(runErr error) error {
		end := e.now()
		j.endRun(run, end, runErr)
		if err := j.Save(); err != nil {
			runErr = errors.Join(runErr, err)
		}
		ev := Event{Kind: EventFinished, Total: total, Duration: end.Sub(start), Progress: float64(finished) / float64(max(total, 1))}
		if runErr != nil {
			ev.Err = runErr.Error()
			ev.Fix = FixFor(runErr)
			switch {
			case ev.Fix != "":
			case isCancel(runErr):
				ev.Fix = "run the install again to go on: steps that are done are skipped"
			default:
				ev.Fix = "fix the cause and run the install again: steps that are done are skipped"
			}
		}
		e.emit(ev)
		return runErr
	}

	for i, step := range plan.Steps {
		if err := ctx.Err(); err != nil {
			return finish(fmt.Errorf("install cancelled before step %d of %d: %w", i+1, total, err))
		}
		r := stepRunner{e: e, j: j, runIdx: run, rt: rt, info: step.Info(), index: i + 1, total: total, defTimeout: opts.StepTimeout}
		if err := r.run(ctx, step); err != nil {
			return finish(err)
		}
		finished++
		e.emit(Event{Kind: EventProgress, Index: i + 1, Total: total, Progress: float64(finished) / float64(total)})
	}
	return finish(nil)
}

// checkPlan refuses a plan the journal cannot key: every step needs a unique ID.
func checkPlan(plan *Plan) error {
	if plan == nil {
		return errors.New("run plan: no plan")
	}
	seen := map[string]bool{}
	for i, s := range plan.Steps {
		id := s.Info().ID
		if id == "" {
			return fmt.Errorf("run plan: step %d has no ID", i+1)
		}
		if seen[id] {
			return fmt.Errorf("run plan: step ID %q appears twice", id)
		}
		seen[id] = true
	}
	return nil
}

// stepRunner runs one step of a plan.
type stepRunner struct {
	e            *emitter
	j            *Journal
	runIdx       int
	rt           *Runtime
	info         StepInfo
	index, total int
	defTimeout   time.Duration
	timeout      time.Duration
}

func (r *stepRunner) event(kind EventKind) Event {
	return Event{Kind: kind, Step: r.info.ID, Title: r.info.Title, Index: r.index, Total: r.total}
}

// run checks and, when needed, applies the step, keeping the journal and emitting events. The
// error it returns ends the run.
func (r *stepRunner) run(ctx context.Context, step Step) error {
	id := r.info.ID
	start := r.e.now()
	r.e.emit(r.event(EventStepStarted))
	prev, hadPrev := r.j.Lookup(id)
	r.timeout = r.info.Timeout
	if r.timeout <= 0 {
		r.timeout = r.defTimeout
	}
	if r.timeout <= 0 {
		r.timeout = DefaultStepTimeout
	}
	sctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	out := r.e.outputFor(r.event(EventOutput))
	defer out.close()
	rt := *r.rt
	rt.Output = out.line

	var done bool
	abandoned, err := guardStep(sctx, id, out.line, func() (err error) {
		done, err = step.Check(sctx, &rt)
		return err
	})
	if err != nil {
		if !abandoned {
			err = fmt.Errorf("check: %w", err)
		}
		return r.fail(ctx, sctx, start, err)
	}
	ent := r.j.entry(r.info)
	ent.Run, ent.Started, ent.Ended, ent.Error, ent.Fix = r.runIdx, start, time.Time{}, "", ""
	if done {
		reason := ReasonInPlace
		if hadPrev && prev.Applied && (prev.Status == StatusDone || prev.Status == StatusSkipped) {
			reason = ReasonEarlierRun
		}
		ent.Status, ent.Reason, ent.Ended = StatusSkipped, reason, r.e.now()
		if err := r.j.Save(); err != nil {
			return err
		}
		ev := r.event(EventStepSkipped)
		ev.Reason, ev.Duration, ev.Progress = reason, ent.Ended.Sub(start), r.share(r.index)
		r.e.emit(ev)
		return nil
	}

	// Marking the step applied before Apply runs keeps a step that dies half-way on uninstall's
	// list, with whatever record earlier runs left.
	ent.Status, ent.Reason = StatusStarted, ""
	if !ent.Applied {
		ent.Record = Record{}
	}
	ent.Applied = true
	if err := r.j.Save(); err != nil {
		return err
	}
	// Apply starts from what earlier runs recorded, so that a step applied again can see its
	// first backup and keep it; the merge below keeps it in any case.
	prior := cloneRecord(ent.Record)
	rec := &prior
	var cpMu sync.Mutex
	cpClosed := false
	rt.Checkpoint = func(cur *Record) error {
		cpMu.Lock()
		defer cpMu.Unlock()
		if cpClosed { // the step was abandoned: the engine owns the journal again
			return errors.New("checkpoint after the step was abandoned")
		}
		r.j.entry(r.info).addRecord(cloneRecord(*cur))
		return r.j.Save()
	}
	abandoned, err = guardStep(sctx, id, out.line, func() error { return step.Apply(sctx, &rt, rec) })
	cpMu.Lock()
	cpClosed = true
	cpMu.Unlock()
	ent = r.j.entry(r.info)
	if !abandoned {
		// Saved also when Apply failed: a step records before each change, so a half-done step
		// is undone as far as it went.
		ent.addRecord(*rec)
	}
	if err != nil {
		return r.fail(ctx, sctx, start, err)
	}
	ent.Status, ent.Ended = StatusDone, r.e.now()
	if err := r.j.Save(); err != nil {
		return err
	}
	ev := r.event(EventStepDone)
	ev.Duration, ev.Progress = ent.Ended.Sub(start), r.share(r.index)
	r.e.emit(ev)
	return nil
}

// share is the part of the plan done once n steps are.
func (r *stepRunner) share(n int) float64 { return float64(n) / float64(r.total) }

// guard calls fn, turning a panic into an error. When ctx is done and fn does not return within
// abandonAfter, guard gives up on it (abandoned): fn's goroutine may still run, so the caller must
// not read what fn writes.
func guardStep(ctx context.Context, id string, out func(string), fn func() error) (abandoned bool, err error) {
	ch := make(chan error, 1)
	go func() {
		var err error
		defer func() {
			if p := recover(); p != nil {
				// The stack goes to the output (and so to a log), not into the error the user reads.
				for l := range strings.SplitSeq(strings.TrimSpace(string(debug.Stack())), "\n") {
					out(l)
				}
				err = fmt.Errorf("step %s panicked: %v (a bug in virt-setup; the stack is in the output above)", id, p)
			}
			ch <- err
		}()
		err = fn()
	}()
	select {
	case err := <-ch:
		return false, err
	case <-ctx.Done():
	}
	select {
	case err := <-ch:
		return false, err
	case <-time.After(abandonAfter):
		return true, fmt.Errorf("did not stop within %s of being told to (%w); what it did is not recorded", abandonAfter, ctx.Err())
	}
}

// fail records a failed step and returns the error that ends the run: one that wraps the parent
// context's error when the run was cancelled.
func (r *stepRunner) fail(ctx, sctx context.Context, start time.Time, err error) error {
	ent := r.j.entry(r.info)
	ent.Run, ent.Started = r.runIdx, start
	var runErr error
	switch {
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		runErr = fmt.Errorf("step %s cancelled: %w", r.info.ID, err)
	case ctx.Err() != nil:
		runErr = fmt.Errorf("step %s cancelled: %w: %w", r.info.ID, ctx.Err(), err)
	case errors.Is(sctx.Err(), context.DeadlineExceeded):
		runErr = &StepError{Err: fmt.Errorf("step %s timed out after %s: %w", r.info.ID, r.timeout, err),
			Fix: firstSet(FixFor(err), "look at the step's output for what it was waiting for, then run the install again")}
	default:
		runErr = fmt.Errorf("step %s: %w", r.info.ID, err)
	}
	ent.Status, ent.Reason, ent.Ended, ent.Error, ent.Fix = StatusFailed, "", r.e.now(), err.Error(), FixFor(runErr)
	saveErr := r.j.Save()
	ev := r.event(EventStepFailed)
	ev.Err, ev.Fix, ev.Duration, ev.Progress = err.Error(), ent.Fix, ent.Ended.Sub(start), r.share(r.index-1)
	r.e.emit(ev)
	if saveErr != nil {
		return errors.Join(runErr, saveErr)
	}
	return runErr
}

func firstSet(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// isCancel reports whether err is a cancellation or a deadline.
func isCancel(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// emitter serialises events: a step may report output from its own goroutines, and front ends are
// promised calls that never overlap.
type emitter struct {
	mu    sync.Mutex
	fn    func(Event)
	clock func() time.Time
}

func newEmitter(fn func(Event), rt *Runtime) *emitter {
	return &emitter{fn: fn, clock: func() time.Time { return clockNow(rt) }}
}

// clockNow reads the runtime's clock (tests fix it), or the real one.
func clockNow(rt *Runtime) time.Time {
	if rt != nil && rt.Now != nil {
		return rt.Now()
	}
	return time.Now()
}

func (e *emitter) now() time.Time { return e.clock() }

func (e *emitter) emit(ev Event) {
	if ev.Time.IsZero() {
		ev.Time = e.now()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.fn != nil {
		e.fn(ev)
	}
}

// stepOutput turns a step's output lines into events until it is closed; lines after that (from
// a goroutine the step left running) are dropped rather than attributed to a later step.
type stepOutput struct {
	e      *emitter
	mu     sync.Mutex
	closed bool
	base   Event
}

func (e *emitter) outputFor(base Event) *stepOutput {
	return &stepOutput{e: e, base: base}
}

func (o *stepOutput) line(s string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return
	}
	// One event per line, so renderers can indent and prefix each.
	for l := range strings.SplitSeq(strings.TrimRight(s, "\n"), "\n") {
		ev := o.base
		ev.Line = strings.TrimRight(l, "\r")
		o.e.emit(ev)
	}
}

func (o *stepOutput) close() {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
}

// lockJournal takes an exclusive lock next to the journal, so that two virt-setup processes never
// run steps (or undo them) at once. The kernel drops the lock when the process dies, so a crash
// never leaves it stuck.
func lockJournal(j *Journal) (func(), error) {
	if j.Path() == "" {
		return func() {}, nil
	}
	dir := filepath.Dir(j.Path())
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, &JournalError{Path: j.Path(), Err: fmt.Errorf("create directory: %w", err), Fix: "make " + dir + " writable by you"}
	}
	lockPath := j.Path() + ".lock"
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, &JournalError{Path: j.Path(), Err: fmt.Errorf("open lock %s: %w", lockPath, err), Fix: "make " + dir + " writable by you"}
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, &JournalError{Path: j.Path(), Err: errors.New("another virt-setup is installing or uninstalling right now"),
				Fix: "wait for it to finish (or stop it), then run this again"}
		}
		return nil, &JournalError{Path: j.Path(), Err: fmt.Errorf("lock %s: %w", lockPath, err)}
	}
	return func() { f.Close() }, nil
}

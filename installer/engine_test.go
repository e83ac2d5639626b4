package installer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/virt-setup/virt-setup/internal/fsutil"
	"github.com/virt-setup/virt-setup/internal/sys"
)

// fakeClock advances a fixed step on every reading, so durations in events are predictable.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(10 * time.Millisecond)
	return c.t
}

// testPaths lays out a user's directories below home.
func testPaths(home string) Paths {
	return Paths{Home: home, ConfigHome: home + "/.config", DataHome: home + "/.local/share",
		StateHome: home + "/.local/state", RuntimeDir: home + "/run"}
}

// newTestRuntime returns a runtime with a temporary HOME and a strict runner stub: a step that runs
// a command nobody expected fails the test.
func newTestRuntime(t *testing.T) *Runtime {
	t.Helper()
	clock := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	return &Runtime{Runner: sys.NewStub(t), Paths: testPaths(t.TempDir()), Now: clock.Now}
}

// callLog records the calls fake steps see, across steps, in order.
type callLog struct {
	mu    sync.Mutex
	calls []string
}

func (l *callLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, s)
}

func (l *callLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.calls)
}

// fakeStep is a step whose behaviour a test sets: in place or not, failing, printing, recording,
// or doing what apply says.
type fakeStep struct {
	info     StepInfo
	log      *callLog
	mu       sync.Mutex
	inPlace  bool
	checkErr error
	applyErr error
	lines    []string
	rec      Record
	apply    func(ctx context.Context, rt *Runtime, rec *Record) error
	undoRec  []Record
}

func newFake(log *callLog, id string) *fakeStep {
	return &fakeStep{info: StepInfo{ID: id, Title: "Step " + id, Kind: KindCommand}, log: log}
}

func (s *fakeStep) Info() StepInfo { return s.info }

func (s *fakeStep) Check(ctx context.Context, rt *Runtime) (bool, error) {
	s.log.add("check:" + s.info.ID)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inPlace, s.checkErr
}

func (s *fakeStep) Apply(ctx context.Context, rt *Runtime, rec *Record) error {
	s.log.add("apply:" + s.info.ID)
	for _, l := range s.lines {
		rt.Output(l)
	}
	*rec = mergeRecord(*rec, s.rec)
	if s.apply != nil {
		if err := s.apply(ctx, rt, rec); err != nil {
			return err
		}
	}
	if s.applyErr != nil {
		return s.applyErr
	}
	s.mu.Lock()
	s.inPlace = true
	s.mu.Unlock()
	return nil
}

func (s *fakeStep) Undo(ctx context.Context, rt *Runtime, rec Record) error {
	s.log.add("undo:" + s.info.ID)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.undoRec = append(s.undoRec, rec)
	s.inPlace = false
	return nil
}

// tempFileStep writes one file in the temporary HOME the way a real file step does: it records the
// directories it creates and a backup of the file it replaces before changing anything.
type tempFileStep struct {
	id, path, content string
	mode              fs.FileMode
	log               *callLog
	// beforeWrite, when set, runs after the record is made and before the file is written.
	beforeWrite func(ctx context.Context) error
}

func (s *tempFileStep) Info() StepInfo {
	return StepInfo{ID: s.id, Title: "Write " + filepath.Base(s.path), Kind: KindFile}
}

func (s *tempFileStep) Check(ctx context.Context, rt *Runtime) (bool, error) {
	s.log.add("check:" + s.id)
	b, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil && string(b) == s.content, err
}

func (s *tempFileStep) Apply(ctx context.Context, rt *Runtime, rec *Record) error {
	s.log.add("apply:" + s.id)
	created, err := fsutil.MkdirAllRecord(filepath.Dir(s.path), 0o755)
	fr := FileRecord{Path: s.path, CreatedDirs: created}
	rec.Files = append(rec.Files, fr)
	if err != nil {
		return err
	}
	backup, existed, mode, err := fsutil.Backup(s.path, filepath.Join(rt.Paths.VirtSetupState(), "backups"))
	if err != nil {
		return err
	}
	fr.Existed, fr.Backup, fr.Mode = existed, backup, uint32(mode)
	rec.Files[len(rec.Files)-1] = fr
	if s.beforeWrite != nil {
		if err := s.beforeWrite(ctx); err != nil {
			return err
		}
	}
	rt.Output("writing " + s.path)
	return fsutil.WriteFileAtomic(s.path, []byte(s.content), s.mode)
}

func (s *tempFileStep) Undo(ctx context.Context, rt *Runtime, rec Record) error {
	s.log.add("undo:" + s.id)
	for _, f := range slices.Backward(rec.Files) {
		if err := undoFileRecord(f, rt.Output); err != nil {
			return err
		}
	}
	return nil
}

// recorder collects events and, at each step transition, what the journal on disk says about
// the step, so tests can check that every transition was saved before it was reported.
type recorder struct {
	mu     sync.Mutex
	events []Event
	disk   []string
	path   string
	t      *testing.T
}

func (r *recorder) emit(ev Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
	if r.path == "" || ev.Step == "" || ev.Kind == EventOutput || ev.Kind == EventStepStarted {
		return
	}
	j, err := LoadJournal(r.path)
	if err != nil {
		r.t.Errorf("load journal at %s: %v", ev.Kind, err)
		return
	}
	e, _ := j.Lookup(ev.Step)
	r.disk = append(r.disk, fmt.Sprintf("%s %s: %s", ev.Kind, ev.Step, e.Status))
}

func (r *recorder) kinds() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, ev := range r.events {
		s := string(ev.Kind)
		if ev.Step != "" {
			s += " " + ev.Step
		}
		switch ev.Kind {
		case EventOutput:
			s += ": " + ev.Line
		case EventStepSkipped:
			s += " (" + ev.Reason + ")"
		}
		out = append(out, s)
	}
	return out
}

func (r *recorder) last() Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.events[len(r.events)-1]
}

func diffLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\ngot:\n  %s\nwant:\n  %s", what, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func TestRunEventsAndJournal(t *testing.T) {
	rt := newTestRuntime(t)
	log := &callLog{}
	path := JournalPath(rt.Paths)
	a, b, c := newFake(log, "a"), newFake(log, "b"), newFake(log, "c")
	a.lines = []string{"one", "two\nthree"}
	a.rec = Record{Units: []string{"a.service"}}
	b.inPlace = true
	var inFlight string
	c.apply = func(ctx context.Context, rt *Runtime, rec *Record) error {
		// While Apply runs, the journal on disk must already say the step is in flight.
		j, err := LoadJournal(path)
		if err != nil {
			return err
		}
		e, _ := j.Lookup("c")
		inFlight = e.Status
		return nil
	}
	rec := &recorder{path: path, t: t}
	plan := &Plan{Answers: Answers{Snapshotter: "native"}, Steps: []Step{a, b, c}}
	if err := Run(context.Background(), plan, rt, RunOptions{Emit: rec.emit}); err != nil {
		t.Fatal(err)
	}
	diffLines(t, "events", rec.kinds(), []string{
		"plan-started",
		"step-started a", "output a: one", "output a: two", "output a: three", "step-done a", "progress",
		"step-started b", "step-skipped b (already in place)", "progress",
		"step-started c", "step-done c", "progress",
		"finished",
	})
	diffLines(t, "journal on disk at each transition", rec.disk, []string{
		"step-done a: done", "step-skipped b: skipped", "step-done c: done",
	})
	if inFlight != StatusStarted {
		t.Errorf("journal said %q about step c while it ran, want %q", inFlight, StatusStarted)
	}
	diffLines(t, "calls", log.get(), []string{"check:a", "apply:a", "check:b", "check:c", "apply:c"})

	var progress []float64
	for _, ev := range rec.events {
		if ev.Kind == EventProgress {
			progress = append(progress, ev.Progress)
		}
		if ev.Kind != EventPlanStarted && ev.Kind != EventFinished && ev.Kind != EventProgress && (ev.Index < 1 || ev.Total != 3) {
			t.Errorf("event %+v: want a 1-based index in a plan of 3", ev)
		}
	}
	if !slices.Equal(progress, []float64{1.0 / 3, 2.0 / 3, 1}) {
		t.Errorf("progress = %v", progress)
	}
	fin := rec.last()
	if fin.Kind != EventFinished || fin.Err != "" || fin.Duration <= 0 {
		t.Errorf("finished event = %+v, want no error and a duration", fin)
	}

	j, err := LoadJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(j.Runs) != 1 || j.Runs[0].Result != ResultOK || j.Runs[0].Ended.IsZero() || j.Runs[0].Answers.Snapshotter != "native" {
		t.Errorf("runs = %+v", j.Runs)
	}
	var ids []string
	for _, e := range j.Applied() {
		ids = append(ids, e.ID)
	}
	diffLines(t, "applied steps", ids, []string{"a", "c"})
	if e, _ := j.Lookup("a"); !slices.Equal(e.Record.Units, []string{"a.service"}) {
		t.Errorf("record of a = %+v", e.Record)
	}
	if !j.Done("b") || j.Done("nope") {
		t.Error("Done is wrong")
	}
}

func TestRunTwiceChangesNothing(t *testing.T) {
	rt := newTestRuntime(t)
	log := &callLog{}
	conf := filepath.Join(rt.Paths.ConfigHome, "app.conf")
	writeTestFile(t, conf, "original\n", 0o640)
	plan := &Plan{Steps: []Step{
		&tempFileStep{id: "file:app", path: conf, content: "managed\n", mode: 0o600, log: log},
		&tempFileStep{id: "file:new", path: filepath.Join(rt.Paths.ConfigHome, "x/y/new.conf"), content: "new\n", log: log},
	}}
	if err := Run(context.Background(), plan, rt, RunOptions{}); err != nil {
		t.Fatal(err)
	}
	before := hashTree(t, rt.Paths.Home, rt.Paths.VirtSetupState())
	rec := &recorder{}
	if err := Run(context.Background(), plan, rt, RunOptions{Emit: rec.emit}); err != nil {
		t.Fatal(err)
	}
	if after := hashTree(t, rt.Paths.Home, rt.Paths.VirtSetupState()); after != before {
		t.Errorf("the second run changed the home directory")
	}
	diffLines(t, "second run", rec.kinds(), []string{
		"plan-started",
		"step-started file:app", "step-skipped file:app (done in an earlier run)", "progress",
		"step-started file:new", "step-skipped file:new (done in an earlier run)", "progress",
		"finished",
	})
	if n := strings.Count(strings.Join(log.get(), " "), "apply:"); n != 2 {
		t.Errorf("%d applies over two runs, want 2: %v", n, log.get())
	}
}

func TestRunStopsAtFailureAndKeepsRecord(t *testing.T) {
	rt := newTestRuntime(t)
	log := &callLog{}
	a, b, c := newFake(log, "a"), newFake(log, "b"), newFake(log, "c")
	b.rec = Record{Files: []FileRecord{{Path: "/x/half-written"}}}
	b.applyErr = &StepError{Err: errors.New("port 8080 in use"), Fix: "stop whatever listens on 8080"}
	rec := &recorder{}
	err := Run(context.Background(), &Plan{Steps: []Step{a, b, c}}, rt, RunOptions{Emit: rec.emit})
	var se *StepError
	if !errors.As(err, &se) || se.Fix != "stop whatever listens on 8080" {
		t.Fatalf("err = %v, want it to carry the step's StepError", err)
	}
	if errors.Is(err, context.Canceled) {
		t.Error("a failure is not a cancellation")
	}
	diffLines(t, "events", rec.kinds(), []string{
		"plan-started", "step-started a", "step-done a", "progress", "step-started b", "step-failed b", "finished",
	})
	failed := rec.events[5]
	if failed.Err != "port 8080 in use" || failed.Fix != "stop whatever listens on 8080" || failed.Progress != 1.0/3 {
		t.Errorf("step-failed event = %+v", failed)
	}
	if fin := rec.last(); !strings.Contains(fin.Err, "port 8080 in use") || fin.Fix != "stop whatever listens on 8080" {
		t.Errorf("finished event = %+v", fin)
	}
	if slices.Contains(log.get(), "check:c") {
		t.Error("the step after the failure was checked")
	}
	j, _ := LoadJournal(JournalPath(rt.Paths))
	e, _ := j.Lookup("b")
	if e.Status != StatusFailed || !e.Applied || len(e.Record.Files) != 1 || e.Error != "port 8080 in use" || e.Fix == "" {
		t.Errorf("journal entry of the failed step = %+v; want failed, applied, with its record, error and fix", e)
	}
	if _, ok := j.Lookup("c"); ok {
		t.Error("the journal has an entry for a step that never ran")
	}
	if r := j.Runs[0]; r.Result != ResultFailed || !strings.Contains(r.Error, "port 8080") {
		t.Errorf("run = %+v", r)
	}
}

func TestRunCheckFailure(t *testing.T) {
	rt := newTestRuntime(t)
	log := &callLog{}
	a := newFake(log, "a")
	a.checkErr = errors.New("cannot read config")
	err := Run(context.Background(), &Plan{Steps: []Step{a}}, rt, RunOptions{})
	if err == nil || !strings.Contains(err.Error(), "check: cannot read config") {
		t.Fatalf("err = %v", err)
	}
	j, _ := LoadJournal(JournalPath(rt.Paths))
	if e, _ := j.Lookup("a"); e.Status != StatusFailed || e.Applied {
		t.Errorf("entry = %+v: a step that failed its check was never applied", e)
	}
}

func TestRunPanickingStepIsAFailure(t *testing.T) {
	rt := newTestRuntime(t)
	a := newFake(&callLog{}, "a")
	a.apply = func(context.Context, *Runtime, *Record) error { panic("boom") }
	rec := &recorder{}
	err := Run(context.Background(), &Plan{Steps: []Step{a}}, rt, RunOptions{Emit: rec.emit})
	if err == nil || !strings.Contains(err.Error(), "panicked: boom") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("err = %q, want one line saying the step panicked", err)
	}
	if !slices.ContainsFunc(rec.kinds(), func(s string) bool { return strings.HasPrefix(s, "output a: goroutine ") }) {
		t.Errorf("the stack is not in the step's output: %v", rec.kinds())
	}
	j, _ := LoadJournal(JournalPath(rt.Paths))
	if e, _ := j.Lookup("a"); e.Status != StatusFailed {
		t.Errorf("entry = %+v", e)
	}
}

func TestRunCancelInsideStep(t *testing.T) {
	rt := newTestRuntime(t)
	log := &callLog{}
	a, b := newFake(log, "a"), newFake(log, "b")
	inside := make(chan struct{})
	sawDone := make(chan struct{})
	a.rec = Record{Units: []string{"half.service"}}
	a.apply = func(ctx context.Context, rt *Runtime, rec *Record) error {
		close(inside)
		<-ctx.Done()
		close(sawDone)
		return fmt.Errorf("wait for socket: %w", ctx.Err())
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-inside; cancel() }()
	rec := &recorder{}
	start := time.Now()
	err := Run(ctx, &Plan{Steps: []Step{a, b}}, rt, RunOptions{Emit: rec.emit})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the cancelled run took %s to return", d)
	}
	select {
	case <-sawDone:
	default:
		t.Error("the step never saw its context end")
	}
	diffLines(t, "events", rec.kinds(), []string{"plan-started", "step-started a", "step-failed a", "finished"})
	if fin := rec.last(); !strings.Contains(fin.Err, "cancel") {
		t.Errorf("finished = %+v", fin)
	}
	j, _ := LoadJournal(JournalPath(rt.Paths))
	e, _ := j.Lookup("a")
	if e.Status != StatusFailed || !strings.Contains(e.Error, "context canceled") || !slices.Equal(e.Record.Units, []string{"half.service"}) {
		t.Errorf("entry = %+v; want failed by cancellation with the record kept", e)
	}
	if r := j.Runs[0]; r.Result != ResultCancelled {
		t.Errorf("run = %+v", r)
	}
	if slices.Contains(log.get(), "check:b") {
		t.Error("a step after the cancellation ran")
	}
}

func TestRunCancelBetweenSteps(t *testing.T) {
	rt := newTestRuntime(t)
	log := &callLog{}
	a, b := newFake(log, "a"), newFake(log, "b")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a.apply = func(context.Context, *Runtime, *Record) error { cancel(); return nil }
	err := Run(ctx, &Plan{Steps: []Step{a, b}}, rt, RunOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	diffLines(t, "calls", log.get(), []string{"check:a", "apply:a"})
	j, _ := LoadJournal(JournalPath(rt.Paths))
	if !j.Done("a") || j.Runs[0].Result != ResultCancelled {
		t.Errorf("journal = %+v", j)
	}
}

func TestRunStepTimeout(t *testing.T) {
	rt := newTestRuntime(t)
	a := newFake(&callLog{}, "a")
	a.info.Timeout = 50 * time.Millisecond
	a.apply = func(ctx context.Context, rt *Runtime, rec *Record) error {
		<-ctx.Done()
		return ctx.Err()
	}
	err := Run(context.Background(), &Plan{Steps: []Step{a}}, rt, RunOptions{})
	var se *StepError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "timed out after 50ms") || se.Fix == "" {
		t.Fatalf("err = %v, want a timeout with a fix", err)
	}
	if errors.Is(err, context.Canceled) {
		t.Error("a timeout is not a cancellation by the user")
	}
}

func TestRunAbandonsAStepThatIgnoresCancellation(t *testing.T) {
	old := abandonAfter
	abandonAfter = 100 * time.Millisecond
	t.Cleanup(func() { abandonAfter = old })
	rt := newTestRuntime(t)
	a := newFake(&callLog{}, "a")
	release := make(chan struct{})
	defer close(release)
	inside := make(chan struct{})
	a.apply = func(ctx context.Context, rt *Runtime, rec *Record) error {
		close(inside)
		<-release // ignores ctx, as a buggy step would
		rt.Output("late line")
		rec.Units = append(rec.Units, "late.service")
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-inside; cancel() }()
	rec := &recorder{}
	err := Run(ctx, &Plan{Steps: []Step{a}}, rt, RunOptions{Emit: rec.emit})
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "did not stop") {
		t.Fatalf("err = %v", err)
	}
	n := len(rec.kinds())
	release <- struct{}{}
	time.Sleep(50 * time.Millisecond)
	if got := rec.kinds(); len(got) != n {
		t.Errorf("events after the run ended: %v", got[n:])
	}
}

func TestRunRefusesAnInterruptedJournalWithoutResume(t *testing.T) {
	rt := newTestRuntime(t)
	log := &callLog{}
	j := interruptedJournal(t, rt)
	a, b, c := newFake(log, "a"), newFake(log, "b"), newFake(log, "c")
	a.inPlace = true
	plan := &Plan{Steps: []Step{a, b, c}}
	err := Run(context.Background(), plan, rt, RunOptions{Journal: j})
	if !errors.Is(err, ErrInterrupted) || !strings.Contains(FixFor(err), "resume it") || !strings.Contains(FixFor(err), "uninstall") {
		t.Fatalf("err = %v (fix %q), want ErrInterrupted with a fix to resume or uninstall", err, FixFor(err))
	}
	if len(log.get()) != 0 {
		t.Errorf("steps ran: %v", log.get())
	}

	rec := &recorder{}
	if err := Run(context.Background(), plan, rt, RunOptions{Journal: j, Resume: true, Emit: rec.emit}); err != nil {
		t.Fatal(err)
	}
	diffLines(t, "resumed run", rec.kinds(), []string{
		"plan-started",
		"step-started a", "step-skipped a (done in an earlier run)", "progress",
		"step-started b", "step-done b", "progress",
		"step-started c", "step-done c", "progress",
		"finished",
	})
	diffLines(t, "calls", log.get(), []string{"check:a", "check:b", "apply:b", "check:c", "apply:c"})
	j2, _ := LoadJournal(j.Path())
	if len(j2.Runs) != 2 || j2.Runs[0].Result != ResultInterrupted || !j2.Runs[1].Resumed || j2.Runs[1].Result != ResultOK {
		t.Errorf("runs = %+v", j2.Runs)
	}
	// The record of the interrupted attempt at b is kept and the new one added to it.
	if e, _ := j2.Lookup("b"); !slices.Equal(e.Record.Units, []string{"from-first-attempt.service"}) || e.Status != StatusDone {
		t.Errorf("entry b = %+v", e)
	}
}

// interruptedJournal saves a journal as a killed process leaves it: the run has no end, step a is
// done and step b is in flight.
func interruptedJournal(t *testing.T, rt *Runtime) *Journal {
	t.Helper()
	j := NewJournal(JournalPath(rt.Paths))
	j.beginRun(RunEntry{Kind: RunInstall, Started: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
	j.Steps = []Entry{
		{ID: "a", Status: StatusDone, Applied: true},
		{ID: "b", Status: StatusStarted, Applied: true, Record: Record{Units: []string{"from-first-attempt.service"}}},
	}
	if err := j.Save(); err != nil {
		t.Fatal(err)
	}
	return j
}

func TestRunRefusesConcurrentRuns(t *testing.T) {
	rt := newTestRuntime(t)
	j := NewJournal(JournalPath(rt.Paths))
	unlock, err := lockJournal(j)
	if err != nil {
		t.Fatal(err)
	}
	err = Run(context.Background(), &Plan{Steps: []Step{newFake(&callLog{}, "a")}}, rt, RunOptions{Journal: j})
	if err == nil || !strings.Contains(err.Error(), "another virt-setup") {
		t.Errorf("err = %v", err)
	}
	unlock()
	if err := Run(context.Background(), &Plan{Steps: []Step{newFake(&callLog{}, "a")}}, rt, RunOptions{Journal: j}); err != nil {
		t.Errorf("after unlock: %v", err)
	}
}

func TestRunRefusesBadPlans(t *testing.T) {
	rt := newTestRuntime(t)
	log := &callLog{}
	for name, plan := range map[string]*Plan{
		"duplicate": {Steps: []Step{newFake(log, "a"), newFake(log, "a")}},
		"no id":     {Steps: []Step{newFake(log, "")}},
	} {
		if err := Run(context.Background(), plan, rt, RunOptions{}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if len(log.get()) != 0 {
		t.Errorf("steps ran: %v", log.get())
	}
}

func TestRunKeepsTheOriginalBackupAcrossRuns(t *testing.T) {
	rt := newTestRuntime(t)
	log := &callLog{}
	conf := filepath.Join(rt.Paths.ConfigHome, "containerd/config.toml")
	writeTestFile(t, conf, "# the user's own\n", 0o640)
	original := hashTree(t, rt.Paths.Home, rt.Paths.VirtSetupState())
	step := &tempFileStep{id: "file:config", path: conf, content: "version 1\n", mode: 0o644, log: log}
	if err := Run(context.Background(), &Plan{Steps: []Step{step}}, rt, RunOptions{}); err != nil {
		t.Fatal(err)
	}
	// A newer plan writes different content: the step applies again and backs up version 1.
	step.content = "version 2\n"
	if err := Run(context.Background(), &Plan{Steps: []Step{step}}, rt, RunOptions{}); err != nil {
		t.Fatal(err)
	}
	j, _ := LoadJournal(JournalPath(rt.Paths))
	e, _ := j.Lookup("file:config")
	if len(e.Record.Files) != 1 {
		t.Fatalf("record = %+v, want one file", e.Record)
	}
	if b, _ := os.ReadFile(e.Record.Files[0].Backup); string(b) != "# the user's own\n" {
		t.Errorf("the journal's backup holds %q, want the original content", b)
	}
	if err := Uninstall(context.Background(), rt, nil, UninstallOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := hashTree(t, rt.Paths.Home, rt.Paths.VirtSetupState()); got != original {
		t.Error("uninstall did not restore the original file byte for byte with its mode")
	}
}

// runKilledChild is the child half of TestRunResumesAfterKill, which runs the test binary again
// with VIRT_SETUP_ENGINE_CHILD_HOME set: a run that blocks inside a step until the parent kills
// the process.
func runKilledChild(t *testing.T, home string) {
	rt := &Runtime{Paths: testPaths(home), Runner: sys.Exec{}}
	err := Run(context.Background(), killPlan(rt, &callLog{}, true), rt, RunOptions{})
	t.Fatalf("the run was not killed: %v", err)
}

// killPlan is the plan the resume-after-kill test runs; with block, its second step makes its
// record, announces it is in flight and waits forever.
func killPlan(rt *Runtime, log *callLog, block bool) *Plan {
	cfg := rt.Paths.ConfigHome
	second := &tempFileStep{id: "file:b", path: cfg + "/b.conf", content: "b\n", log: log}
	if block {
		second.beforeWrite = func(ctx context.Context) error {
			if err := os.WriteFile(rt.Paths.VirtSetupState()+"/in-flight", nil, 0o600); err != nil {
				return err
			}
			select {}
		}
	}
	return &Plan{Steps: []Step{
		&tempFileStep{id: "file:a", path: cfg + "/a.conf", content: "a\n", log: log},
		second,
		&tempFileStep{id: "file:c", path: cfg + "/new/dir/c.conf", content: "c\n", log: log},
	}}
}

func TestRunResumesAfterKill(t *testing.T) {
	if home := os.Getenv("VIRT_SETUP_ENGINE_CHILD_HOME"); home != "" {
		runKilledChild(t, home)
		return
	}
	home := t.TempDir()
	rt := &Runtime{Paths: testPaths(home), Runner: sys.NewStub(t)}
	writeTestFile(t, rt.Paths.ConfigHome+"/a.conf", "user a\n", 0o600)
	writeTestFile(t, rt.Paths.ConfigHome+"/b.conf", "user b\n", 0o644)
	original := hashTree(t, home, rt.Paths.VirtSetupState())

	cmd := exec.Command(os.Args[0], "-test.run=^TestRunResumesAfterKill$", "-test.v")
	cmd.Env = append(os.Environ(), "VIRT_SETUP_ENGINE_CHILD_HOME="+home)
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !onDisk(rt.Paths.VirtSetupState() + "/in-flight") {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("the child never reached the blocking step:\n%s", out)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	j, err := LoadJournal(JournalPath(rt.Paths))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := j.Interrupted(); !ok {
		t.Errorf("the killed run looks finished: %+v", j.Runs)
	}
	var states []string
	for _, e := range j.Steps {
		states = append(states, e.ID+" "+e.Status)
	}
	diffLines(t, "journal left by the killed process", states, []string{"file:a done", "file:b started"})

	log := &callLog{}
	rec := &recorder{}
	if err := Run(context.Background(), killPlan(rt, log, false), rt, RunOptions{Resume: true, Emit: rec.emit}); err != nil {
		t.Fatal(err)
	}
	diffLines(t, "resumed run", rec.kinds(), []string{
		"plan-started",
		"step-started file:a", "step-skipped file:a (done in an earlier run)", "progress",
		"step-started file:b", "output file:b: writing " + rt.Paths.ConfigHome + "/b.conf", "step-done file:b", "progress",
		"step-started file:c", "output file:c: writing " + rt.Paths.ConfigHome + "/new/dir/c.conf", "step-done file:c", "progress",
		"finished",
	})
	if err := Run(context.Background(), killPlan(rt, log, false), rt, RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(strings.Join(log.get(), " "), "apply:"); n != 2 {
		t.Errorf("after resuming, a further run applied something: %v", log.get())
	}
	if err := Uninstall(context.Background(), rt, nil, UninstallOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := hashTree(t, home, rt.Paths.VirtSetupState()); got != original {
		t.Error("uninstall after a resumed run did not bring the home directory back to its original state")
	}
}

func writeTestFile(t *testing.T, path, content string, mode fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func onDisk(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// hashTree hashes every path, mode and content below root, except skip and the directories that
// lead to it ("" skips nothing).
func hashTree(t *testing.T, root, skip string) string {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if skip != "" && p == skip {
			return filepath.SkipDir
		}
		// The directories holding skip (~/.local/state) are virt-setup's state too.
		if skip != "" && d.IsDir() && strings.HasPrefix(skip, p+"/") && p != root {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s %v\n", p, fi.Mode())
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			h.Write(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func TestCheckpointSavesTheRecordMidStep(t *testing.T) {
	rt := newTestRuntime(t)
	log := &callLog{}
	s := newFake(log, "file:x")
	var onDisk *Journal
	s.apply = func(ctx context.Context, rt *Runtime, rec *Record) error {
		rec.Files = append(rec.Files, FileRecord{Path: "/home/u/x", Existed: true, Backup: "/backups/x"})
		if err := rt.Checkpoint(rec); err != nil {
			return err
		}
		// What a process killed right now would leave behind:
		j, err := LoadJournal(JournalPath(rt.Paths))
		if err != nil {
			return err
		}
		onDisk = j
		return nil
	}
	if err := Run(context.Background(), &Plan{Steps: []Step{s}}, rt, RunOptions{}); err != nil {
		t.Fatal(err)
	}
	e, ok := onDisk.Lookup("file:x")
	if !ok || e.Status != StatusStarted || len(e.Record.Files) != 1 || e.Record.Files[0].Backup != "/backups/x" {
		t.Fatalf("journal on disk during Apply = %+v, want the step started with its backup recorded", e)
	}
	if rt.Checkpoint != nil {
		t.Error("the caller's Runtime was changed: Checkpoint must live only in the engine's copy")
	}
}

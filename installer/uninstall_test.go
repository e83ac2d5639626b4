package installer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/virt-setup/virt-setup/internal/sys"
	"github.com/virt-setup/virt-setup/internal/testenv"
)

// installFiles runs a plan of three file steps where the first and the last change the same file,
// so that only an undo in reverse order brings back its original content.
func installFiles(t *testing.T, rt *Runtime, log *callLog) (conf, created string, steps []Step) {
	t.Helper()
	conf = filepath.Join(rt.Paths.ConfigHome, "nerdctl/nerdctl.toml")
	created = filepath.Join(rt.Paths.ConfigHome, "containerd/conf.d/virt-setup.toml")
	writeTestFile(t, conf, "# mine\nnamespace = \"x\"\n", 0o640)
	steps = []Step{
		&tempFileStep{id: "file:nerdctl-1", path: conf, content: "first\n", mode: 0o644, log: log},
		&tempFileStep{id: "file:dropin", path: created, content: "[plugins]\n", log: log},
		&tempFileStep{id: "file:nerdctl-2", path: conf, content: "second\n", mode: 0o600, log: log},
	}
	if err := Run(context.Background(), &Plan{Steps: steps}, rt, RunOptions{}); err != nil {
		t.Fatal(err)
	}
	return conf, created, steps
}

func TestUninstallRestoresFilesInReverseOrder(t *testing.T) {
	rt := newTestRuntime(t)
	home := rt.Paths.Home
	// The original state, before any install.
	writeTestFile(t, filepath.Join(rt.Paths.ConfigHome, "nerdctl/nerdctl.toml"), "# mine\nnamespace = \"x\"\n", 0o640)
	original := hashTree(t, home, rt.Paths.VirtSetupState())
	conf, created, _ := installFiles(t, rt, &callLog{})
	if b, _ := os.ReadFile(conf); string(b) != "second\n" {
		t.Fatalf("install wrote %q", b)
	}

	rec := &recorder{}
	if err := Uninstall(context.Background(), rt, nil, UninstallOptions{Emit: rec.emit}); err != nil {
		t.Fatal(err)
	}
	if got := hashTree(t, home, rt.Paths.VirtSetupState()); got != original {
		b, _ := os.ReadFile(conf)
		t.Errorf("home differs from before the install; %s holds %q", conf, b)
	}
	if onDisk(filepath.Dir(created)) || onDisk(filepath.Join(rt.Paths.ConfigHome, "containerd")) {
		t.Error("the directories the install created are still there")
	}
	var order []string
	for _, ev := range rec.events {
		if ev.Kind == EventStepDone || ev.Kind == EventStepSkipped {
			order = append(order, ev.Step)
		}
	}
	diffLines(t, "undo order", order, []string{"file:nerdctl-2", "file:dropin", "file:nerdctl-1", DataStepID})

	// The journal is archived, not deleted, and a fresh one starts empty.
	if onDisk(JournalPath(rt.Paths)) {
		t.Error("the journal is still in place")
	}
	archived, _ := filepath.Glob(filepath.Join(rt.Paths.VirtSetupState(), "journal-*.json"))
	if len(archived) != 1 {
		t.Fatalf("archived journals: %v", archived)
	}
	old, err := LoadJournal(archived[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(old.Applied()) != 0 || len(old.Runs) != 2 || old.Runs[1].Kind != RunUninstall || old.Runs[1].Result != ResultOK {
		t.Errorf("archived journal: runs %+v, applied %v", old.Runs, old.Applied())
	}
	for _, e := range old.Steps {
		if e.Status != StatusUndone {
			t.Errorf("archived entry %s is %s", e.ID, e.Status)
		}
	}
	if fresh, err := LoadJournal(JournalPath(rt.Paths)); err != nil || len(fresh.Steps) != 0 {
		t.Errorf("fresh journal = %+v, %v", fresh, err)
	}
}

func TestUninstallUsesTheStepsOwnUndo(t *testing.T) {
	rt := newTestRuntime(t)
	log := &callLog{}
	a, b, c := newFake(log, "a"), newFake(log, "b"), newFake(log, "c")
	a.rec = Record{Data: map[string]string{"linger": "was off"}}
	b.inPlace = true // found in place: not virt-setup's to undo
	c.rec = Record{Units: []string{"c.service"}}
	if err := Run(context.Background(), &Plan{Steps: []Step{a, b, c}}, rt, RunOptions{}); err != nil {
		t.Fatal(err)
	}
	byID := map[string]Step{"a": a, "b": b, "c": c}
	undoer := func(id string) (Step, bool) { s, ok := byID[id]; return s, ok }
	if err := Uninstall(context.Background(), rt, nil, UninstallOptions{Undoer: undoer}); err != nil {
		t.Fatal(err)
	}
	var undos []string
	for _, call := range log.get() {
		if strings.HasPrefix(call, "undo:") {
			undos = append(undos, call)
		}
	}
	diffLines(t, "undo calls", undos, []string{"undo:c", "undo:a"})
	if len(a.undoRec) != 1 || a.undoRec[0].Data["linger"] != "was off" {
		t.Errorf("a was undone with %+v, want its record", a.undoRec)
	}
	if len(c.undoRec) != 1 || !slices.Equal(c.undoRec[0].Units, []string{"c.service"}) {
		t.Errorf("c was undone with %+v", c.undoRec)
	}
}

func TestUninstallGoesOnPastAFailureAndRetries(t *testing.T) {
	rt := newTestRuntime(t)
	conf, created, _ := installFiles(t, rt, &callLog{})
	j, _ := LoadJournal(JournalPath(rt.Paths))
	e, _ := j.Lookup("file:nerdctl-1")
	backup := e.Record.Files[0].Backup
	saved, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(backup)

	rec := &recorder{}
	err = Uninstall(context.Background(), rt, nil, UninstallOptions{Emit: rec.emit, Purge: true})
	if err == nil || !strings.Contains(err.Error(), "read backup") || FixFor(err) == "" {
		t.Fatalf("err = %v (fix %q), want the missing backup reported with a fix", err, FixFor(err))
	}
	if onDisk(created) {
		t.Error("the other steps were not undone after one failed")
	}
	for _, ev := range rec.events {
		if ev.Step == DataStepID && ev.Kind == EventStepStarted {
			continue
		}
		if ev.Step == DataStepID && ev.Kind != EventStepSkipped {
			t.Errorf("data step: %+v (no data directory exists, so nothing to refuse)", ev)
		}
	}
	j, _ = LoadJournal(JournalPath(rt.Paths))
	var left []string
	for _, e := range j.Applied() {
		left = append(left, e.ID)
	}
	diffLines(t, "entries left to undo", left, []string{"file:nerdctl-1"})

	// With the backup back, a second uninstall undoes only what is left.
	writeTestFile(t, backup, string(saved), 0o600)
	rec = &recorder{}
	if err := Uninstall(context.Background(), rt, nil, UninstallOptions{Emit: rec.emit}); err != nil {
		t.Fatal(err)
	}
	var started []string
	for _, ev := range rec.events {
		if ev.Kind == EventStepStarted {
			started = append(started, ev.Step)
		}
	}
	diffLines(t, "second uninstall", started, []string{"file:nerdctl-1", DataStepID})
	if b, _ := os.ReadFile(conf); string(b) != "# mine\nnamespace = \"x\"\n" {
		t.Errorf("%s = %q after the retry", conf, b)
	}
}

func TestUninstallDryRunChangesNothing(t *testing.T) {
	rt := newTestRuntime(t)
	installFiles(t, rt, &callLog{})
	sleep := startSleep(t)
	pidFile := filepath.Join(rt.Paths.VirtSetupState(), "sleep.pid")
	writeTestFile(t, pidFile, strconv.Itoa(sleep.Process.Pid)+"\n", 0o600)
	addEntry(t, rt, "service:sleep", Record{Processes: []ProcessRecord{{Name: "sleep", PIDFile: pidFile}}})
	writeTestFile(t, filepath.Join(rt.Paths.DataHome, "containerd/blob"), "data", 0o600)

	before := hashTree(t, rt.Paths.Home, "")
	rec := &recorder{}
	if err := Uninstall(context.Background(), rt, nil, UninstallOptions{DryRun: true, Purge: true, Emit: rec.emit}); err != nil {
		t.Fatal(err)
	}
	if after := hashTree(t, rt.Paths.Home, ""); after != before {
		t.Error("a dry run changed the home directory (journal included)")
	}
	if !procRunning(sleep.Process.Pid) {
		t.Error("a dry run stopped the process")
	}
	var lines, reasons []string
	for _, ev := range rec.events {
		switch ev.Kind {
		case EventOutput:
			lines = append(lines, ev.Line)
		case EventStepSkipped:
			reasons = append(reasons, ev.Reason)
		case EventStepDone, EventStepFailed:
			t.Errorf("dry run event %+v", ev)
		}
	}
	all := strings.Join(lines, "\n")
	for _, want := range []string{
		fmt.Sprintf("would stop sleep (pid %d from %s)", sleep.Process.Pid, pidFile),
		"would restore " + filepath.Join(rt.Paths.ConfigHome, "nerdctl/nerdctl.toml"),
		"would remove " + filepath.Join(rt.Paths.ConfigHome, "containerd/conf.d/virt-setup.toml"),
		"would remove " + filepath.Join(rt.Paths.DataHome, "containerd") + " with `rootlesskit rm -rf",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("dry-run output lacks %q:\n%s", want, all)
		}
	}
	if len(reasons) != 5 || slices.ContainsFunc(reasons, func(r string) bool { return r != ReasonDryRun }) {
		t.Errorf("skip reasons = %v", reasons)
	}
}

// addEntry adds an applied entry to the journal, as a step with this record would have.
func addEntry(t *testing.T, rt *Runtime, id string, r Record) {
	t.Helper()
	j, err := LoadJournal(JournalPath(rt.Paths))
	if err != nil {
		t.Fatal(err)
	}
	if len(j.Runs) == 0 {
		j.beginRun(RunEntry{Kind: RunInstall, Started: rt.Now(), Ended: rt.Now(), Result: ResultOK})
	}
	e := j.entry(StepInfo{ID: id, Title: "Start " + id})
	e.Status = StatusDone
	e.addRecord(r)
	if err := j.Save(); err != nil {
		t.Fatal(err)
	}
}

// startSleep starts a sleep this test owns and kills it by its PID when the test ends.
func startSleep(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	if len(args) == 0 {
		args = []string{"sleep", "1000"}
	}
	cmd := exec.Command(args[0], args[1:]...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan struct{})
	go func() { cmd.Wait(); close(waited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-waited
	})
	// Wait until the exec is done, so /proc/PID/cmdline names the program, not the test binary.
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", cmd.Process.Pid))
		if strings.HasPrefix(string(b), args[0]+"\x00") || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	return cmd
}

// waitIgnoresTERM waits until pid has set SIGTERM to be ignored, so the test does not race the
// shell's trap.
func waitIgnoresTERM(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		for l := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "SigIgn:"); ok {
				if mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64); err == nil && mask&(1<<(syscall.SIGTERM-1)) != 0 {
					return
				}
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("pid %d never ignored SIGTERM", pid)
}

// alive reports whether pid runs and is not a zombie.
func procRunning(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && len(s) > i+2 && s[i+2] != 'Z'
}

func TestUninstallStopsExactlyTheRecordedProcess(t *testing.T) {
	rt := newTestRuntime(t)
	ours := startSleep(t)
	other := startSleep(t)
	stubborn := startSleep(t, "sh", "-c", `trap "" TERM; while :; do sleep 0.05; done`)
	waitIgnoresTERM(t, stubborn.Process.Pid)
	state := rt.Paths.VirtSetupState()
	pid := func(c *exec.Cmd) string { return strconv.Itoa(c.Process.Pid) + "\n" }
	writeTestFile(t, state+"/ours.pid", pid(ours), 0o600)
	// The pid of a process that exited long ago, now reused by an unrelated program.
	writeTestFile(t, state+"/reused.pid", pid(other), 0o600)
	writeTestFile(t, state+"/stubborn.pid", pid(stubborn), 0o600)
	writeTestFile(t, state+"/garbled.pid", "not a pid", 0o600)
	addEntry(t, rt, "service:ours", Record{Processes: []ProcessRecord{{Name: "sleep", PIDFile: state + "/ours.pid"}}})
	addEntry(t, rt, "service:reused", Record{Processes: []ProcessRecord{{Name: "containerd-rootless.sh", PIDFile: state + "/reused.pid"}}})
	addEntry(t, rt, "service:stubborn", Record{Processes: []ProcessRecord{{Name: "sh", PIDFile: state + "/stubborn.pid"}}})
	addEntry(t, rt, "service:garbled", Record{Processes: []ProcessRecord{{Name: "buildkitd", PIDFile: state + "/garbled.pid"}}})
	addEntry(t, rt, "service:gone", Record{Processes: []ProcessRecord{{Name: "bypass4netnsd", PIDFile: state + "/gone.pid"}}})

	rec := &recorder{}
	start := time.Now()
	err := Uninstall(context.Background(), rt, nil, UninstallOptions{Emit: rec.emit, StopTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("uninstall took %s", d)
	}
	if procRunning(ours.Process.Pid) {
		t.Error("the recorded sleep is still running")
	}
	if procRunning(stubborn.Process.Pid) {
		t.Error("the process that ignores SIGTERM is still running")
	}
	if !procRunning(other.Process.Pid) {
		t.Error("a process whose cmdline does not match the record was signalled")
	}
	for _, f := range []string{"ours", "reused", "stubborn", "garbled"} {
		if onDisk(state + "/" + f + ".pid") {
			t.Errorf("pid file %s.pid left behind", f)
		}
	}
	var lines []string
	for _, ev := range rec.events {
		if ev.Kind == EventOutput {
			lines = append(lines, ev.Line)
		}
	}
	all := strings.Join(lines, "\n")
	for _, want := range []string{
		fmt.Sprintf("stopped sleep (pid %d)", ours.Process.Pid),
		fmt.Sprintf("containerd-rootless.sh: pid %d is now \"sleep 1000\", another program or another user's; left alone", other.Process.Pid),
		"did not exit within 300ms of SIGTERM; sending SIGKILL",
		"holds no pid",
		"bypass4netnsd: no pid file",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("output lacks %q:\n%s", want, all)
		}
	}
}

func TestUninstallRemovesUnitsGenerically(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	stub := sys.NewStub(t)
	rt := &Runtime{Runner: stub, Paths: testPaths(t.TempDir()), Now: clock.Now}
	unit := filepath.Join(rt.Paths.ConfigHome, "systemd/user/containerd.service")
	writeTestFile(t, unit, "[Service]\n", 0o644)
	addEntry(t, rt, "service:containerd", Record{Units: []string{"containerd.service"}})
	stub.Register(`systemctl --user stop containerd.service`, "", 0)
	stub.Register(`systemctl --user disable containerd.service`, "Removed '/x/default.target.wants/containerd.service'.\n", 0)
	stub.Register(`systemctl --user daemon-reload`, "", 0)
	rec := &recorder{}
	if err := Uninstall(context.Background(), rt, nil, UninstallOptions{Emit: rec.emit}); err != nil {
		t.Fatal(err)
	}
	if onDisk(unit) {
		t.Error("the unit file is still there")
	}
	var lines []string
	for _, ev := range rec.events {
		if ev.Kind == EventOutput && ev.Step == "service:containerd" {
			lines = append(lines, ev.Line)
		}
	}
	diffLines(t, "output", lines, []string{
		"$ systemctl --user stop containerd.service",
		"$ systemctl --user disable containerd.service",
		"Removed '/x/default.target.wants/containerd.service'.",
		"removed " + unit,
		"$ systemctl --user daemon-reload",
	})
}

func TestUninstallRefusesADamagedUnitName(t *testing.T) {
	rt := newTestRuntime(t)
	rt.Runner.(*sys.Stub).Register(`systemctl --user daemon-reload`, "", 0)
	addEntry(t, rt, "service:evil", Record{Units: []string{"../../../.bashrc"}})
	err := Uninstall(context.Background(), rt, nil, UninstallOptions{})
	if err == nil || !strings.Contains(err.Error(), "not a unit name") {
		t.Errorf("err = %v", err)
	}
}

func TestUninstallKeepsDataUnlessPurge(t *testing.T) {
	rt := newTestRuntime(t)
	blob := filepath.Join(rt.Paths.DataHome, "containerd/io.containerd.content.v1.content/blob")
	writeTestFile(t, blob, "layer", 0o600)
	rec := &recorder{}
	if err := Uninstall(context.Background(), rt, nil, UninstallOptions{Emit: rec.emit}); err != nil {
		t.Fatal(err)
	}
	if !onDisk(blob) {
		t.Fatal("data removed without --purge")
	}
	if !slices.Contains(rec.kinds(), "output data: kept "+filepath.Join(rt.Paths.DataHome, "containerd")) {
		t.Errorf("events %v do not say the data was kept", rec.kinds())
	}
	// A journal that never existed is not created just to be archived.
	if onDisk(rt.Paths.VirtSetupState()) {
		t.Error("uninstall created a journal on a host virt-setup never touched")
	}

	// Purge through a rootlesskit that fails: the error carries the command to run by hand.
	rt.Runner.(*sys.Stub).Register(`rootlesskit rm -rf .*/containerd`, "", 1)
	err := Uninstall(context.Background(), rt, nil, UninstallOptions{Purge: true})
	if err == nil || !strings.Contains(FixFor(err), "rootlesskit rm -rf "+filepath.Join(rt.Paths.DataHome, "containerd")) {
		t.Errorf("err = %v, fix %q", err, FixFor(err))
	}
}

func TestUninstallPurgeRefusedAfterAFailedUndo(t *testing.T) {
	rt := newTestRuntime(t)
	writeTestFile(t, filepath.Join(rt.Paths.DataHome, "containerd/x"), "x", 0o600)
	addEntry(t, rt, "file:lost", Record{Files: []FileRecord{{Path: rt.Paths.Home + "/f", Existed: true, Backup: rt.Paths.Home + "/missing"}}})
	// The strict stub fails the test if rootlesskit is run.
	err := Uninstall(context.Background(), rt, nil, UninstallOptions{Purge: true})
	if err == nil || !strings.Contains(err.Error(), "an undo above failed") {
		t.Errorf("err = %v", err)
	}
	if !onDisk(filepath.Join(rt.Paths.DataHome, "containerd/x")) {
		t.Error("data purged although an undo failed")
	}
}

func TestUninstallCancelled(t *testing.T) {
	rt := newTestRuntime(t)
	installFiles(t, rt, &callLog{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Uninstall(ctx, rt, nil, UninstallOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	j, _ := LoadJournal(JournalPath(rt.Paths))
	if len(j.Applied()) != 3 || j.Runs[len(j.Runs)-1].Result != ResultCancelled {
		t.Errorf("journal after a cancelled uninstall: runs %+v", j.Runs)
	}
}

// userRunner runs commands as the test user, the way virt-setup runs as the user it sets up.
type userRunner struct {
	u   testenv.TestUser
	env []string
}

func (r userRunner) Run(ctx context.Context, c sys.Command) (sys.Result, error) {
	cmd := r.u.Command(ctx, c.Path, c.Args, r.env...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := sys.Result{Stdout: []byte(stdout.String()), Stderr: []byte(stderr.String())}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		res.ExitCode = ee.ExitCode()
		return res, &sys.ExitError{Command: c.String(), ExitCode: ee.ExitCode(), Stderr: stderr.String()}
	}
	return res, err
}

func TestUninstallPurgeRemovesSubUIDFilesWithRootlessKit(t *testing.T) {
	u := testenv.RequireTestUser(t)
	_, err := exec.LookPath("rootlesskit")
	testenv.Require(t, err == nil, "rootlesskit is not on PATH: run scripts/install-components.sh")
	home := testenv.SharedDir(t)
	if err := os.Chown(home, u.UID, u.GID); err != nil {
		t.Fatal(err)
	}
	paths := testPaths(home)
	data := filepath.Join(paths.DataHome, "containerd")
	r := userRunner{u: u}
	// Files owned by a sub-UID, as containerd's snapshots are: the user cannot remove them directly.
	u.Run(t, "mkdir", []string{"-p", paths.DataHome})
	u.Run(t, "rootlesskit", []string{"sh", "-c", "mkdir -p " + data + "/snapshots/1/fs/etc && echo x > " + data + "/snapshots/1/fs/etc/passwd && chown -R 100:100 " + data + "/snapshots"})
	if _, err := r.Run(context.Background(), sys.Command{Path: "rm", Args: []string{"-rf", data}}); err == nil {
		t.Fatal("plain rm removed sub-UID files: the test does not test what it means to")
	}
	rt := &Runtime{Runner: r, Paths: paths}
	rec := &recorder{}
	if err := Uninstall(context.Background(), rt, nil, UninstallOptions{Purge: true, Emit: rec.emit}); err != nil {
		t.Fatal(err)
	}
	if onDisk(data) {
		t.Error("the data directory is still there")
	}
	if !slices.ContainsFunc(rec.kinds(), func(s string) bool {
		return strings.Contains(s, "inside a user namespace ($ rootlesskit rm -rf "+data+")")
	}) {
		t.Errorf("the output does not say how the data was removed: %v", rec.kinds())
	}
}

func TestUninstallLeavesAnotherUsersProcessAlone(t *testing.T) {
	u := testenv.RequireTestUser(t)
	rt := newTestRuntime(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := u.Command(ctx, "sleep", []string{"1000"})
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan struct{})
	go func() { cmd.Wait(); close(waited) }()
	defer func() { cmd.Process.Kill(); <-waited }()
	// setpriv execs sleep in the same process; wait until it has.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", cmd.Process.Pid)); strings.HasPrefix(string(b), "sleep\x00") {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	pidFile := rt.Paths.VirtSetupState() + "/sleep.pid"
	writeTestFile(t, pidFile, strconv.Itoa(cmd.Process.Pid), 0o600)
	addEntry(t, rt, "service:sleep", Record{Processes: []ProcessRecord{{Name: "sleep", PIDFile: pidFile}}})
	if err := Uninstall(context.Background(), rt, nil, UninstallOptions{StopTimeout: 100 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if !procRunning(cmd.Process.Pid) {
		t.Errorf("uninstall running as uid %d signalled a process of uid %d", os.Getuid(), u.UID)
	}
}

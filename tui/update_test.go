package tui

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"github.com/virt-setup/virt-setup/installer"
	"github.com/virt-setup/virt-setup/probe"
)

func TestProbeScreen(t *testing.T) {
	m, _ := newModel(t, "ubuntu-24.04", 80, 24)
	if !m.probe.running || m.screen != screenProbe {
		t.Fatalf("a new wizard shows the probe running; screen %v running %v", m.screen, m.probe.running)
	}
	if got := navTo(func() tea.Cmd { _, c := stepCmd(t, m, press("enter")); return c }()); got != -1 {
		t.Errorf("enter while probing navigated to %v", got)
	}

	m = step(t, m, probeEventMsg{probe.Event{Probe: "os"}})
	if r := m.probe.rows[m.probe.row("os")]; r.state != probeRunning {
		t.Errorf("os after its start event: %v", r.state)
	}
	m = step(t, m, probeEventMsg{probe.Event{Probe: "os", Done: true, Duration: time.Millisecond}},
		probeEventMsg{probe.Event{Probe: "network", Done: true, Err: errors.New("ip: not found")}})
	if r := m.probe.rows[m.probe.row("os")]; r.state != probeFinished || r.took != time.Millisecond {
		t.Errorf("os after its done event: %+v", r)
	}
	if v := m.View(); !strings.Contains(v, "! error") || !strings.Contains(v, "ip: not found") {
		t.Errorf("a probe's error is shown with a glyph and a word:\n%s", v)
	}

	f, _ := probe.LoadProfile("fedora-34-selinux")
	m = step(t, m, probeDoneMsg{facts: f})
	if m.c.facts != f || m.c.answers.Snapshotter != "fuse-overlayfs" {
		t.Errorf("facts %p answers %+v after the probe", m.c.facts, m.c.answers)
	}
	if len(m.c.report.Checks) == 0 {
		t.Error("no findings after the probe")
	}
	if got := navTo(func() tea.Cmd { _, c := stepCmd(t, m, press("enter")); return c }()); got != screenFindings {
		t.Errorf("enter after the probe navigates to %v, want findings", got)
	}
}

func TestProbeFailureOffersRetry(t *testing.T) {
	m, _ := newModel(t, "debian-12", 80, 24)
	m = step(t, m, probeDoneMsg{err: errors.New("probe root /x: not a directory")})
	v := m.View()
	if !strings.Contains(v, "✗ failed") || !strings.Contains(v, "not a directory") {
		t.Errorf("the probe's failure is not shown:\n%s", v)
	}
	if got := navTo(func() tea.Cmd { _, c := stepCmd(t, m, press("enter")); return c }()); got != -1 {
		t.Errorf("enter after a failed probe navigated to %v", got)
	}
	m, cmd := stepCmd(t, m, press("r"))
	if !m.probe.running || cmd == nil {
		t.Errorf("r after a failed probe does not start it again (running %v)", m.probe.running)
	}
}

func TestFindingsScreen(t *testing.T) {
	m, _ := probed(t, "ubuntu-24.04", 80, 24)
	m = at(t, m, screenFindings)
	v := m.findings.visible()
	if len(v) != 3 || v[0].Status != probe.StatusFail || v[0].ID != "VS-APPARMOR-001" {
		t.Fatalf("the list starts with the failure, then the warnings; got %d checks, first %s %s", len(v), v[0].Status, v[0].ID)
	}
	for _, r := range v[1:] {
		if r.Status != probe.StatusWarn {
			t.Errorf("passed check %s listed before 'a'", r.ID)
		}
	}
	m = step(t, m, press("up"))
	if m.findings.cursor != 0 {
		t.Errorf("up at the top moved the cursor to %d", m.findings.cursor)
	}
	m = step(t, m, press("down"), press("down"), press("down"), press("down"))
	if m.findings.cursor != 2 {
		t.Errorf("the cursor went past the last check: %d", m.findings.cursor)
	}

	// 'a' shows the passed checks and keeps the selection on the same check.
	sel := v[2].ID
	m = step(t, m, press("a"))
	if all := m.findings.visible(); len(all) != len(m.c.report.Checks) || all[m.findings.cursor].ID != sel {
		t.Errorf("after a: %d of %d checks, cursor on %s, want %s", len(all), len(m.c.report.Checks), all[m.findings.cursor].ID, sel)
	}

	// The detail of the failure shows the evidence, why and the root fix, command by command.
	m = step(t, m, press("a"))
	m.findings.cursor = 0
	m = step(t, m, press("enter"))
	if !m.findings.detail {
		t.Fatal("enter did not open the check")
	}
	// Compared word by word: the detail wraps long text to the screen.
	words := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	body := words(ansi.Strip(strings.Join(checkDetail(m.c.styles, v[0], 200), "\n")))
	for _, want := range append([]string{"What was seen", "Why it matters", v[0].Why}, v[0].Fix.Root...) {
		for _, l := range strings.Split(want, "\n") {
			if !strings.Contains(body, words(l)) {
				t.Errorf("the detail lacks %q", l)
			}
		}
	}
	m = step(t, m, press("esc"))
	if m.findings.detail {
		t.Error("esc did not close the check")
	}
	if got := navTo(func() tea.Cmd { _, c := stepCmd(t, m, press("c")); return c }()); got != screenSnapshotter {
		t.Errorf("c navigates to %v, want snapshotter", got)
	}
	if got := navTo(func() tea.Cmd { _, c := stepCmd(t, m, press("r")); return c }()); got != screenProbe {
		t.Errorf("r navigates to %v, want the probe again", got)
	}
}

func TestFindingsWithNothingToFixShowsWhatPassed(t *testing.T) {
	m, _ := probed(t, "rhel-9", 80, 24)
	m.c.report.Checks = []probe.Result{{ID: "VS-A-001", Status: probe.StatusOK, Title: "fine"}}
	m = at(t, m, screenFindings)
	if !m.findings.showAll || len(m.findings.visible()) != 1 {
		t.Errorf("with no failure or warning the list shows the passed checks (showAll %v)", m.findings.showAll)
	}
}

func TestSnapshotterScreenOverlayImpossible(t *testing.T) {
	m, _ := probed(t, "fedora-34-selinux", 80, 24)
	m = at(t, m, screenSnapshotter)
	opts := m.snap.options()
	if opts[m.snap.cursor].Name != "fuse-overlayfs" || m.c.answers.Snapshotter != "fuse-overlayfs" {
		t.Fatalf("preselected %s (answer %s), want fuse-overlayfs", opts[m.snap.cursor].Name, m.c.answers.Snapshotter)
	}
	if opts[0].Name != "overlayfs" || opts[0].Possible {
		t.Fatalf("overlayfs is possible on Fedora 34 with SELinux: %+v", opts[0])
	}
	v := m.View()
	if !strings.Contains(v, "(×) overlayfs") || !strings.Contains(v, "✗ cannot run") {
		t.Errorf("overlayfs is not shown disabled:\n%s", v)
	}
	m = step(t, m, press("up"))
	m, cmd := stepCmd(t, m, press("enter"))
	if navTo(cmd) != -1 || m.c.answers.Snapshotter != "fuse-overlayfs" {
		t.Errorf("overlayfs could be chosen (answer %s)", m.c.answers.Snapshotter)
	}
	if !strings.Contains(m.snap.notice, "cannot run on this host") || !strings.Contains(m.snap.notice, "5.13") {
		t.Errorf("the notice does not give the reason: %q", m.snap.notice)
	}
	if !strings.Contains(m.View(), m.snap.notice[:40]) {
		t.Error("the notice is not on the screen")
	}
	m = step(t, m, press("down"), press("down"))
	m, cmd = stepCmd(t, m, press("enter"))
	if m.c.answers.Snapshotter != "native" || navTo(cmd) != screenAddOns {
		t.Errorf("choosing native: answer %s", m.c.answers.Snapshotter)
	}
}

func TestAddOnsScreen(t *testing.T) {
	m, _ := probed(t, "ubuntu-24.04", 80, 24)
	m = at(t, m, screenAddOns)
	if !m.c.answers.AddOns.BuildKit || m.c.answers.AddOns.Stargz || !m.c.answers.AddOns.Bypass4netns {
		t.Fatalf("defaults: %+v", m.c.answers.AddOns)
	}
	m = step(t, m, press("space"))
	if m.c.answers.AddOns.BuildKit {
		t.Error("space did not turn BuildKit off")
	}
	// stargz is unavailable on this host: it cannot be turned on, and the screen says why.
	m = step(t, m, press("down"), press("space"))
	if m.c.answers.AddOns.Stargz || !strings.Contains(m.addons.notice, "stargz cannot be used here") {
		t.Errorf("stargz: on %v, notice %q", m.c.answers.AddOns.Stargz, m.addons.notice)
	}

	// The advanced panel cycles values; an invalid combination stops the wizard with the reason.
	m = step(t, m, press("a"))
	if !m.addons.advanced || m.addons.cursor != 3 {
		t.Fatalf("a did not open the panel on its first row (cursor %d)", m.addons.cursor)
	}
	m = step(t, m, press("down"), press("right"))
	if got := m.c.answers.RootlessKit.NetworkDriver; got != "pasta" {
		t.Errorf("right on the network driver: %s, want pasta", got)
	}
	m = step(t, m, press("down"), press("down"), press("right"))
	if got := m.c.answers.RootlessKit.PortDriver; got != "slirp4netns" {
		t.Errorf("right on the port driver: %s, want slirp4netns", got)
	}
	m, cmd := stepCmd(t, m, press("enter"))
	if navTo(cmd) != -1 || len(m.addons.problems) == 0 || !strings.Contains(strings.Join(m.addons.problems, "\n"), `needs network_driver = "slirp4netns"`) {
		t.Errorf("invalid answers went on; problems %q", m.addons.problems)
	}
	m = step(t, m, press("left"))
	m, cmd = stepCmd(t, m, press("enter"))
	if navTo(cmd) != screenReview {
		t.Errorf("valid answers do not go on to the review; problems %q", m.addons.problems)
	}
}

func TestReviewScreen(t *testing.T) {
	m, _ := probed(t, "ubuntu-24.04", 80, 24)
	m = at(t, m, screenReview)
	if m.review.building || m.review.err != nil || len(m.review.infos) == 0 {
		t.Fatalf("plan: building %v err %v steps %d", m.review.building, m.review.err, len(m.review.infos))
	}
	if _, ok := m.review.privileged(); !ok {
		t.Fatal("the Ubuntu 24.04 plan has no root script (AppArmor profile, linger)")
	}
	plan := ansi.Strip(strings.Join(planLines(m.c.styles, m.review.infos, 100), "\n"))
	if !strings.Contains(plan, `+snapshotter = "overlayfs"`) || strings.Contains(plan, "loginctl enable-linger") {
		t.Errorf("the plan tab shows the nerdctl.toml diff and keeps root commands to the script tab:\n%s", plan)
	}
	script := ansi.Strip(strings.Join(scriptLines(m.c.styles, m.review.infos, 100), "\n"))
	if !strings.Contains(script, "loginctl enable-linger alice") || !strings.Contains(script, "set -eu") {
		t.Errorf("the root script tab:\n%s", script)
	}
	m = step(t, m, press("tab"))
	if m.review.tab != tabScript || !strings.Contains(m.View(), "enable-linger") {
		t.Error("tab does not show the root script")
	}

	// Confirmation is explicit: enter asks, n takes it back, y goes.
	m = step(t, m, press("enter"))
	if !m.review.confirming || !strings.Contains(m.View(), "Install now?") {
		t.Fatal("enter does not ask")
	}
	if m.canQuit() {
		t.Error("q would quit while the question is open")
	}
	m = step(t, m, press("n"))
	if m.review.confirming {
		t.Error("n does not take the question back")
	}
	m = step(t, m, press("enter"))
	if got := navTo(func() tea.Cmd { _, c := stepCmd(t, m, press("y")); return c }()); got != screenInstall {
		t.Errorf("y navigates to %v, want install", got)
	}

	// Save: a prompt with a default, then the backend saves (the demo writes nothing).
	m = step(t, m, press("n"), press("s"))
	if !m.review.saving || m.review.input.Value() != defaultAnswersFile {
		t.Fatalf("s: saving %v value %q", m.review.saving, m.review.input.Value())
	}
	m = step(t, m, press("q"))
	if m.review.input.Value() != defaultAnswersFile+"q" {
		t.Errorf("typing in the prompt: %q (q must type, not quit)", m.review.input.Value())
	}
	m, cmd := stepCmd(t, m, press("enter"))
	var saved []tea.Msg
	for _, msg := range msgsOf(cmd) {
		if _, ok := msg.(savedMsg); ok {
			saved = append(saved, msg)
		}
	}
	if len(saved) != 1 {
		t.Fatalf("enter in the prompt did not save: %v", msgsOf(cmd))
	}
	m = step(t, m, saved[0])
	if !strings.HasSuffix(m.c.answersPath, defaultAnswersFile+"q") || !strings.Contains(m.review.notice, "DEMO") {
		t.Errorf("after saving: path %q notice %q", m.c.answersPath, m.review.notice)
	}
}

func TestReviewScreenPlanError(t *testing.T) {
	m, _ := probed(t, "ubuntu-24.04", 80, 24)
	m = step(t, m, navMsg{screenReview}, planMsg{err: &installer.PlanError{Problems: []string{"containerd-stargz-grpc is not installed; addons.stargz needs it"}}})
	v := m.View()
	if !strings.Contains(v, "cannot be built") || !strings.Contains(v, "containerd-stargz-grpc is not installed") {
		t.Errorf("the plan error is not shown:\n%s", v)
	}
	m = step(t, m, press("enter"))
	if m.review.confirming {
		t.Error("a plan that cannot be built can be confirmed")
	}
}

// reviewed is the model with the plan of profile built, ready to install.
func reviewed(t testing.TB, profile string, w, h int) (Model, *clock) {
	m, c := probed(t, profile, w, h)
	m = at(t, m, screenReview)
	if m.c.plan == nil {
		t.Fatalf("no plan for %s: %v", profile, m.review.err)
	}
	return m, c
}

func ev(kind installer.EventKind, step string, f ...func(*installer.Event)) installer.Event {
	e := installer.Event{Kind: kind, Step: step}
	for _, fn := range f {
		fn(&e)
	}
	return e
}

func TestInstallScreenEvents(t *testing.T) {
	m, clk := reviewed(t, "ubuntu-24.04", 80, 24)
	ids := make([]string, len(m.c.infos))
	for i, in := range m.c.infos {
		ids[i] = in.ID
	}
	m = installing(t, m,
		ev(installer.EventStepStarted, ids[0]),
		ev(installer.EventOutput, ids[0], func(e *installer.Event) { e.Line = "saved the root steps" }),
		ev(installer.EventStepDone, ids[0], func(e *installer.Event) { e.Duration = 2 * time.Second }),
		ev(installer.EventStepStarted, ids[1]),
		ev(installer.EventStepSkipped, ids[1], func(e *installer.Event) { e.Reason = installer.ReasonInPlace }),
		ev(installer.EventStepStarted, ids[2]),
		ev(installer.EventOutput, ids[2], func(e *installer.Event) { e.Line = "[INFO] Checking cgroup v2" }),
	)
	s := m.install
	if s.rows[0].state != stepDone || s.rows[1].state != stepSkipped || s.rows[2].state != stepRunning || s.current != 2 {
		t.Fatalf("states %v %v %v current %d", s.rows[0].state, s.rows[1].state, s.rows[2].state, s.current)
	}
	if got := s.progressShare(); got != 2/float64(len(ids)) {
		t.Errorf("progress %v", got)
	}
	clk.t = testStart.Add(75 * time.Second)
	m = step(t, m, tickMsg(clk.t))
	v := m.View()
	for _, want := range []string{"elapsed 01:15", "[INFO] Checking cgroup v2", "✓ done", "↷ skipped", "· pending", "[root]"} {
		if !strings.Contains(v, want) {
			t.Errorf("the install screen lacks %q:\n%s", want, v)
		}
	}
	// Nothing quits while a step runs: q is ignored, Ctrl-C asks.
	if m.canQuit() {
		t.Error("q would quit while a step runs")
	}
	cancelled := false
	m.install.cancel = func() { cancelled = true }
	m = step(t, m, press("ctrl+c"))
	if !m.install.askStop || !strings.Contains(m.View(), "Stop the install?") {
		t.Fatal("Ctrl-C does not ask")
	}
	m = step(t, m, press("n"))
	if m.install.askStop || cancelled {
		t.Error("n did not take the question back")
	}
	m = step(t, m, press("ctrl+c"), press("y"))
	if !cancelled || !m.install.stopping {
		t.Error("y did not stop the install")
	}
}

func TestInstallScreenFailureRetryAndSkip(t *testing.T) {
	m, _ := reviewed(t, "ubuntu-24.04", 80, 24)
	var core, verify string
	for _, in := range m.c.infos {
		switch {
		case in.ID == "setuptool:install":
			core = in.ID
		case in.Kind == installer.KindVerify:
			verify = in.ID
		}
	}
	failAt := func(m Model, id string) Model {
		return installing(t, m,
			ev(installer.EventStepStarted, id),
			ev(installer.EventStepFailed, id, func(e *installer.Event) { e.Err, e.Fix = "exit status 1", "run journalctl --user -u containerd" }),
			ev(installer.EventFinished, "", func(e *installer.Event) { e.Err = "step " + id + ": exit status 1" }),
		)
	}
	m = failAt(m, core)
	m = step(t, m, installDoneMsg{err: errors.New("step failed")})
	v := m.View()
	for _, want := range []string{"✗ Failed", "exit status 1", "run journalctl --user -u containerd", "r: retry"} {
		if !strings.Contains(v, want) {
			t.Errorf("the failure view lacks %q:\n%s", want, v)
		}
	}
	if strings.Contains(v, "s: skip") {
		t.Error("the core service step is offered for skipping")
	}
	m, cmd := stepCmd(t, m, press("s"))
	if cmd != nil || m.install.running {
		t.Error("s started a run after a step that must not be skipped")
	}
	o := m.Outcome()
	if !o.Failed || o.Installed {
		t.Errorf("outcome after a failure: %+v", o)
	}

	// A verify failure may be skipped: the run starts again without it.
	m = failAt(m, verify)
	m.install.running = false
	if !strings.Contains(m.View(), "s: skip this step") {
		t.Errorf("verify is not offered for skipping:\n%s", m.View())
	}
	m, cmd = stepCmd(t, m, press("s"))
	if cmd == nil || !m.install.running || len(m.install.skip) != 1 || m.install.skip[0] != verify {
		t.Errorf("skip: running %v skip %v", m.install.running, m.install.skip)
	}
	m.install.cancel()

	// Retry runs again; the step that failed is pending again.
	m = failAt(m, core)
	m.install.running = false
	m, cmd = stepCmd(t, m, press("r"))
	if cmd == nil || !m.install.running || m.install.attempt != 2 || m.install.rows[m.install.row(core)].state != stepPending {
		t.Errorf("retry: running %v attempt %d", m.install.running, m.install.attempt)
	}
	m.install.cancel()
}

func TestInstallScreenKeepsDoneStepsDoneOnRetry(t *testing.T) {
	m, _ := reviewed(t, "debian-12", 80, 24)
	id := m.c.infos[0].ID
	m = installing(t, m, ev(installer.EventStepStarted, id), ev(installer.EventStepDone, id))
	m = step(t, m, engineMsg{ev(installer.EventStepStarted, id)},
		engineMsg{ev(installer.EventStepSkipped, id, func(e *installer.Event) { e.Reason = installer.ReasonEarlierRun })})
	if m.install.rows[0].state != stepDone {
		t.Errorf("a step done a moment ago shows %v on the retry", m.install.rows[0].state)
	}
}

func TestInstallRunsThePlanThroughTheBackend(t *testing.T) {
	m, _ := reviewed(t, "debian-12", 80, 24)
	m, cmd := stepCmd(t, m, navMsg{screenInstall})
	if !m.install.running || cmd == nil {
		t.Fatal("the install screen does not start the run")
	}
	// Drain the stream as the program would, until the run ends.
	deadline := time.Now().Add(10 * time.Second)
	var st *stream
	for _, msg := range msgsOf(cmd) {
		if b, ok := msg.(batchMsg); ok {
			st = b.s
			m = step(t, m, msg)
		}
	}
	for m.install.running && st != nil && time.Now().Before(deadline) {
		m = step(t, m, listen(st)())
	}
	if m.install.running || !m.install.finished || m.install.runErr != "" {
		t.Fatalf("run: running %v finished %v err %q", m.install.running, m.install.finished, m.install.runErr)
	}
	for _, r := range m.install.rows {
		if r.state != stepDone {
			t.Errorf("step %s is %v after a full run", r.info.ID, r.state)
		}
	}
	if got := navTo(func() tea.Cmd { _, c := stepCmd(t, m, press("enter")); return c }()); got != screenBench {
		t.Errorf("enter after the install navigates to %v", got)
	}
}

func TestBenchScreen(t *testing.T) {
	m, _ := reviewed(t, "ubuntu-24.04", 80, 24)
	m.screen = screenBench
	m.bench.scenarios = BenchScenarios(m.c.answers)
	m.bench.samples, m.bench.results, m.bench.running = map[string][]BenchSample{}, map[string]BenchResult{}, true
	m = step(t, m,
		benchMsg{BenchEvent{Kind: BenchScenarioStarted, Scenario: "container-to-host"}},
		benchMsg{BenchEvent{Kind: BenchSampled, Sample: BenchSample{Scenario: "container-to-host", BitsPerSecond: 0.4e9}}},
		benchMsg{BenchEvent{Kind: BenchSampled, Sample: BenchSample{Scenario: "container-to-host", BitsPerSecond: 0.5e9}}})
	if r, ok := m.bench.rate("container-to-host"); !ok || r != 0.45e9 {
		t.Errorf("the rate so far is the mean of the intervals: %v", r)
	}
	if got := navTo(func() tea.Cmd { _, c := stepCmd(t, m, press("enter")); return c }()); got != -1 {
		t.Error("enter leaves the benchmark while it runs")
	}
	for _, r := range []BenchResult{{"container-to-host", 0.43e9, ""}, {"host-to-container", 9.8e9, ""}, {"container-to-host-bypass4netns", 16.34e9, ""}, {"host-to-container-bypass4netns", 0, "iperf3: connection refused"}} {
		m = step(t, m, benchMsg{BenchEvent{Kind: BenchScenarioDone, Result: r}})
	}
	m = step(t, m, benchMsg{BenchEvent{Kind: BenchFinished}}, benchDoneMsg{})
	v := m.View()
	for _, want := range []string{"38.0×", "16.34", "✗ failed", "connection refused"} {
		if !strings.Contains(v, want) {
			t.Errorf("the bench screen lacks %q:\n%s", want, v)
		}
	}
	if got := navTo(func() tea.Cmd { _, c := stepCmd(t, m, press("enter")); return c }()); got != screenDone {
		t.Errorf("enter after the benchmark navigates to %v", got)
	}
}

func TestBenchScreenLeftOutWithoutEngine(t *testing.T) {
	m, _ := reviewed(t, "debian-12", 80, 24)
	m.screen = screenBench
	m, cmd := stepCmd(t, m, benchDoneMsg{err: ErrNoBenchmark})
	if navTo(cmd) != screenDone {
		t.Error("without a benchmark engine the wizard does not go on to done")
	}
}

func TestDoneScreenQuits(t *testing.T) {
	m, _ := reviewed(t, "debian-12", 80, 24)
	m = at(t, m, screenDone)
	_, cmd := stepCmd(t, m, press("enter"))
	if msgs := msgsOf(cmd); len(msgs) != 1 || msgs[0] != tea.Quit() {
		t.Errorf("enter on the done screen: %v", msgs)
	}
}

func TestRootKeys(t *testing.T) {
	m, _ := probed(t, "debian-12", 80, 24)
	m = at(t, m, screenFindings)
	h := m.bodyHeight()
	m = step(t, m, press("?"))
	if !m.help.ShowAll || m.bodyHeight() >= h {
		t.Errorf("? shows the full help and the body gives it room (%d → %d)", h, m.bodyHeight())
	}
	m, cmd := stepCmd(t, m, press("q"))
	if msgs := msgsOf(cmd); len(msgs) != 1 || msgs[0] != tea.Quit() {
		t.Errorf("q on the findings: %v", msgs)
	}
	m, cmd = stepCmd(t, m, press("ctrl+c"))
	if msgs := msgsOf(cmd); len(msgs) != 1 || msgs[0] != tea.Quit() || !m.Outcome().Interrupted {
		t.Errorf("ctrl+c: %v, interrupted %v", msgs, m.Outcome().Interrupted)
	}
}

// TestHelpFitsAndOnlyListsWorkingKeys checks every screen state's footer: it fits on an 80-column
// line, and only lists keys the screen handles (each listed key changes the model or returns a
// command).
func TestHelpFitsAndOnlyListsWorkingKeys(t *testing.T) {
	states := goldenStates(t, 80, 24)
	for _, st := range states {
		t.Run(st.name, func(t *testing.T) {
			line := ansi.Strip(st.m.help.View(st.m.keys()))
			if strings.Contains(line, "…") || ansi.StringWidth(line) > 80 {
				t.Errorf("the help does not fit in 80 columns: %q", line)
			}
			for _, b := range st.m.keys().ShortHelp() {
				if !b.Enabled() || b.Help().Key == "?" {
					continue
				}
				// "↑/↓" stands for two keys; at the top of a list only the second does something.
				keys := []string{b.Keys()[0]}
				if strings.Contains(b.Help().Key, "↓") {
					keys = append(keys, "down")
				}
				if strings.Contains(b.Help().Key, "→") {
					keys = append(keys, "right")
				}
				works := false
				before := st.m.View()
				for _, k := range keys {
					m2, cmd := stepCmd(t, st.m, press(k))
					works = works || cmd != nil || m2.View() != before
					if m2.install.cancel != nil && m2.install.running && !st.m.install.running {
						m2.install.cancel()
					}
				}
				if !works {
					t.Errorf("key %q (%s) is listed but does nothing", b.Keys()[0], b.Help().Desc)
				}
			}
		})
	}
}

func TestStreamDeliversInOrderAndStops(t *testing.T) {
	s := newStream()
	go func() {
		for i := range 600 {
			s.send(i)
		}
		s.close()
		s.send("late") // dropped, no panic
	}()
	var got []tea.Msg
	for {
		b := listen(s)().(batchMsg)
		got = append(got, b.msgs...)
		if !b.more {
			break
		}
	}
	if len(got) != 600 {
		t.Fatalf("got %d messages, want 600", len(got))
	}
	for i, m := range got {
		if m != i {
			t.Fatalf("message %d is %v", i, m)
		}
	}
}

var _ = context.Background

func TestSanitizeKeepsTheTerminalSafe(t *testing.T) {
	for in, want := range map[string]string{
		"\x1b[104m\x1b[97m[INFO]\x1b[49m\x1b[39m Checking cgroup v2": "[INFO] Checking cgroup v2",
		"progress 10%\rprogress 20%":                                 "progress 10%progress 20%",
		"a\tb\x07c\x1b[2Jd":                                          "a bcd",
		"plain ✓ ok":                                                 "plain ✓ ok",
	} {
		if got := sanitize(in); got != want {
			t.Errorf("sanitize(%q) = %q, want %q", in, got, want)
		}
	}
}

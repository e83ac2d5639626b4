package tui

import (
	"fmt"
	"testing"
	"time"

	"github.com/charmbracelet/x/exp/golden"

	"github.com/virt-setup/virt-setup/installer"
	"github.com/virt-setup/virt-setup/probe"
)

// namedState is one screen in one state, for the golden files and the help checks. The view is
// drawn when the state is reached: the screens share state by pointer, so a model kept for later
// would show what later steps changed.
type namedState struct {
	name string
	m    Model
	view string
}

// goldenStates walks the wizard over recorded hosts into every screen and the states that
// matter, feeding messages as the program would but starting no background work.
func goldenStates(t testing.TB, w, h int) []namedState {
	t.Helper()
	var out []namedState
	add := func(name string, m Model) { out = append(out, namedState{name, m, m.View()}) }

	m, _ := newModel(t, "fedora-34-selinux", w, h)
	for i, n := range probe.ProbeNames() {
		m = step(t, m, probeEventMsg{probe.Event{Probe: n}})
		if i%3 != 1 {
			m = step(t, m, probeEventMsg{probe.Event{Probe: n, Done: true, Duration: probeTimings[n]}})
		}
	}
	add("probe_running", m)

	m, _ = probed(t, "fedora-34-selinux", w, h)
	add("probe_done", m)
	add("snapshotter_overlay_impossible", at(t, m, screenSnapshotter))

	m, _ = probed(t, "ubuntu-24.04", w, h)
	m = at(t, m, screenFindings)
	add("findings", m)
	add("findings_detail", step(t, m, press("enter")))
	add("findings_all", step(t, m, press("a")))
	add("snapshotter", at(t, m, screenSnapshotter))
	m = at(t, m, screenAddOns)
	add("addons", m)
	add("addons_advanced", step(t, m, press("a"), press("down")))
	m = at(t, m, screenReview)
	add("review_plan", m)
	add("review_script", step(t, m, press("tab")))
	add("review_confirm", step(t, m, press("enter")))

	ids := make([]string, len(m.c.infos))
	for i, in := range m.c.infos {
		ids[i] = in.ID
	}
	var evs []installer.Event
	for i, id := range ids[:3] {
		evs = append(evs, ev(installer.EventStepStarted, id))
		for j := range 12 {
			evs = append(evs, ev(installer.EventOutput, id, func(e *installer.Event) { e.Line = fmt.Sprintf("output line %d of step %d", j+1, i+1) }))
		}
		if i < 2 {
			evs = append(evs, ev(installer.EventStepDone, id, func(e *installer.Event) { e.Duration = time.Duration(i+1) * 1300 * time.Millisecond }))
		}
	}
	inst := installing(t, m, evs...)
	inst.c.now = func() time.Time { return testStart.Add(42 * time.Second) }
	inst = step(t, inst, tickMsg(testStart))
	add("install_running", inst)
	failed := installing(t, m, append(evs,
		ev(installer.EventStepFailed, ids[2], func(e *installer.Event) {
			e.Err, e.Fix, e.Duration = "containerd.service did not start: exit status 1", "journalctl --user -u containerd.service shows why; fix it, then retry", 4*time.Second
		}),
		ev(installer.EventFinished, "", func(e *installer.Event) { e.Err, e.Duration = "step setuptool:install: exit status 1", 9*time.Second }))...)
	failed = step(t, failed, installDoneMsg{})
	add("install_failed", failed)

	var all []installer.Event
	for _, id := range ids {
		all = append(all, ev(installer.EventStepStarted, id), ev(installer.EventOutput, id, func(e *installer.Event) { e.Line = "all good" }),
			ev(installer.EventStepDone, id, func(e *installer.Event) { e.Duration = 800 * time.Millisecond }))
	}
	all = append(all, ev(installer.EventFinished, "", func(e *installer.Event) { e.Duration = 14 * time.Second }))
	done := step(t, installing(t, m, all...), installDoneMsg{})
	add("install_done", done)

	b := done
	b.screen = screenBench
	b.bench.scenarios = BenchScenarios(b.c.answers)
	b.bench.samples, b.bench.results, b.bench.running = map[string][]BenchSample{}, map[string]BenchResult{}, true
	var bevs []BenchEvent
	for si, sc := range b.bench.scenarios {
		bevs = append(bevs, BenchEvent{Kind: BenchScenarioStarted, Scenario: sc.ID})
		n := benchIntervals
		if si == 1 {
			n = 3
		}
		sum := 0.0
		for i := range n {
			bps := benchProfiles[sc.ID].mean * (0.95 + 0.01*float64(i%4))
			sum += bps
			bevs = append(bevs, BenchEvent{Kind: BenchSampled, Sample: BenchSample{Scenario: sc.ID, BitsPerSecond: bps}})
		}
		if si == 1 {
			break
		}
		bevs = append(bevs, BenchEvent{Kind: BenchScenarioDone, Result: BenchResult{Scenario: sc.ID, BitsPerSecond: sum / float64(n)}})
	}
	for _, e := range bevs {
		b = step(t, b, benchMsg{e})
	}
	add("bench_running", b)
	for _, sc := range b.bench.scenarios[1:] {
		b = step(t, b, benchMsg{BenchEvent{Kind: BenchScenarioDone, Result: BenchResult{Scenario: sc.ID, BitsPerSecond: benchProfiles[sc.ID].mean}}})
	}
	b = step(t, b, benchMsg{BenchEvent{Kind: BenchFinished}}, benchDoneMsg{})
	add("bench_done", b)
	add("done", at(t, b, screenDone))
	return out
}

// TestGolden compares every screen with its golden file at 80×24 (the smallest supported
// terminal: nothing that matters may be cut) and 120×40. Run `go test ./tui -update` to rewrite.
func TestGolden(t *testing.T) {
	for _, size := range [][2]int{{80, 24}, {120, 40}} {
		for _, st := range goldenStates(t, size[0], size[1]) {
			t.Run(fmt.Sprintf("%s_%dx%d", st.name, size[0], size[1]), func(t *testing.T) {
				v := st.view
				golden.RequireEqual(t, []byte(v))
				lines := 0
				for _, c := range v {
					if c == '\n' {
						lines++
					}
				}
				if lines+1 != size[1] {
					t.Errorf("the view has %d lines, want exactly the terminal's %d", lines+1, size[1])
				}
			})
		}
	}
}

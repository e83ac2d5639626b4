package tui

import (
	"fmt"
	"testing"
	"time"

	"github.com/virt-setup/virt-setup/installer"
)

// installWithLog is the install screen at 120×40 with a step that has printed 1,000 lines.
func installWithLog(b *testing.B) Model {
	m, _ := reviewed(b, "ubuntu-24.04", 120, 40)
	id := m.c.infos[2].ID
	evs := []installer.Event{ev(installer.EventStepStarted, id)}
	for i := range 1000 {
		evs = append(evs, ev(installer.EventOutput, id, func(e *installer.Event) {
			e.Line = fmt.Sprintf(`time="2026-11-29T18:53:28.%06dZ" level=info msg="loading plugin" id=io.containerd.snapshotter.v1.overlayfs type=io.containerd.snapshotter.v1 n=%d`, i, i)
		}))
	}
	return installing(b, m, evs...)
}

// BenchmarkInstallView is the cost of one frame of the install screen while a step with a
// 1,000-line log runs (target: well under a millisecond).
func BenchmarkInstallView(b *testing.B) {
	m := installWithLog(b)
	if n := len(m.install.rows[2].lines); n != 1000 {
		b.Fatalf("%d lines", n)
	}
	b.ResetTimer()
	for b.Loop() {
		_ = m.View()
	}
}

// BenchmarkInstallUpdateOutput is the cost of taking one more output line.
func BenchmarkInstallUpdateOutput(b *testing.B) {
	m := installWithLog(b)
	msg := engineMsg{ev(installer.EventOutput, m.c.infos[2].ID, func(e *installer.Event) { e.Line = "one more line" })}
	b.ResetTimer()
	for b.Loop() {
		next, _ := m.Update(msg)
		m = next.(Model)
	}
}

// BenchmarkBenchView is the cost of one frame of the benchmark panel with every scenario's
// intervals in (and the install's 1,000-line log still held).
func BenchmarkBenchView(b *testing.B) {
	m := installWithLog(b)
	m.screen = screenBench
	m.bench.scenarios = BenchScenarios(m.c.answers)
	m.bench.samples, m.bench.results, m.bench.running = map[string][]BenchSample{}, map[string]BenchResult{}, true
	for _, sc := range m.bench.scenarios {
		for i := range benchIntervals {
			m = step(b, m, benchMsg{BenchEvent{Kind: BenchSampled, Sample: BenchSample{Scenario: sc.ID,
				Start: time.Duration(i) * benchInterval, BitsPerSecond: benchProfiles[sc.ID].mean}}})
		}
		m = step(b, m, benchMsg{BenchEvent{Kind: BenchScenarioDone, Result: BenchResult{Scenario: sc.ID, BitsPerSecond: benchProfiles[sc.ID].mean}}})
	}
	m = step(b, m, benchDoneMsg{})
	b.ResetTimer()
	for b.Loop() {
		_ = m.View()
	}
}

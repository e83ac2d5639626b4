package main

import (
	"context"
	"strings"
	"time"

	"github.com/virt-setup/virt-setup/installer"
	"github.com/virt-setup/virt-setup/installer/bench"
	"github.com/virt-setup/virt-setup/probe"
	"github.com/virt-setup/virt-setup/tui"
)

// wizardBench runs the iperf3 benchmark for the wizard's live panel: the scenarios of the chosen
// setup (bypass4netns only when it was installed), with the engine's events turned into the
// wizard's. Host loopback, the machine's ceiling, is left to `virt-setup bench`.
func wizardBench(rt *installer.Runtime) func(ctx context.Context, a installer.Answers, emit func(tui.BenchEvent)) error {
	return func(ctx context.Context, a installer.Answers, emit func(tui.BenchEvent)) error {
		scenarios := tui.BenchScenarios(a)
		var chosen []bench.Scenario
		for _, s := range scenarios {
			if sc, ok := bench.ScenarioByID(bench.ScenarioID(s.ID)); ok {
				chosen = append(chosen, sc)
			}
		}
		opts := bench.Options{
			Runner: rt.Runner, Env: rt.Env, RuntimeDir: rt.Paths.RuntimeDir,
			Scenarios: chosen, Chosen: true, Seconds: 4,
			Emit: func(ev bench.Event) {
				if out, ok := toWizardEvent(ev, scenarios); ok {
					emit(out)
				}
			},
		}
		if a.AddOns.Bypass4netns {
			if f, err := probeForInstaller(ctx); err == nil {
				opts.Bypass4netnsFlags = strings.Fields(probe.Recommend(f).AddOns.Bypass4netns.Flag)
			}
		}
		_, err := bench.Run(ctx, opts)
		return err
	}
}

// toWizardEvent maps one engine event onto the wizard's contract (same scenario IDs).
func toWizardEvent(ev bench.Event, scenarios []tui.BenchScenario) (tui.BenchEvent, bool) {
	seconds := func(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
	switch ev.Kind {
	case bench.EventStarted:
		return tui.BenchEvent{Kind: tui.BenchStarted, Scenarios: scenarios}, true
	case bench.EventScenarioStarted:
		return tui.BenchEvent{Kind: tui.BenchScenarioStarted, Scenario: string(ev.Scenario)}, true
	case bench.EventSample:
		if ev.Sample == nil || ev.Sample.Warmup {
			return tui.BenchEvent{}, false
		}
		s := ev.Sample
		return tui.BenchEvent{Kind: tui.BenchSampled, Scenario: string(s.Scenario), Sample: tui.BenchSample{
			Scenario: string(s.Scenario), Start: seconds(s.Start), End: seconds(s.End), BitsPerSecond: s.BitsPerSecond}}, true
	case bench.EventScenarioDone:
		if ev.Result == nil {
			return tui.BenchEvent{}, false
		}
		r := ev.Result
		res := tui.BenchResult{Scenario: string(r.ID), BitsPerSecond: r.BitsPerSecond, Err: r.Err}
		if res.Err == "" && r.Status == bench.StatusSkipped {
			res.Err = "skipped: " + r.Reason
		}
		return tui.BenchEvent{Kind: tui.BenchScenarioDone, Scenario: string(r.ID), Result: res}, true
	case bench.EventFinished:
		return tui.BenchEvent{Kind: tui.BenchFinished, Err: ev.Err}, true
	}
	return tui.BenchEvent{}, false
}

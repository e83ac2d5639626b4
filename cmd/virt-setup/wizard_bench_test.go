package main

import (
	"testing"
	"time"

	"github.com/virt-setup/virt-setup/installer"
	"github.com/virt-setup/virt-setup/installer/bench"
	"github.com/virt-setup/virt-setup/tui"
)

func TestToWizardEvent(t *testing.T) {
	a := installer.Answers{AddOns: installer.AddOnAnswers{Bypass4netns: true}}
	a.RootlessKit.NetworkDriver, a.RootlessKit.PortDriver = "slirp4netns", "builtin"
	scs := tui.BenchScenarios(a)
	for _, s := range scs {
		if _, ok := bench.ScenarioByID(bench.ScenarioID(s.ID)); !ok {
			t.Errorf("the wizard's scenario %q is unknown to the engine", s.ID)
		}
	}
	c2h := bench.Scenario{ID: bench.ContainerToHost}
	tests := []struct {
		in     bench.Event
		want   tui.BenchEvent
		wantOK bool
	}{
		{bench.Event{Kind: bench.EventStarted}, tui.BenchEvent{Kind: tui.BenchStarted, Scenarios: scs}, true},
		{bench.Event{Kind: bench.EventSample, Sample: &bench.Sample{Scenario: bench.ContainerToHost, Start: 1, End: 2, BitsPerSecond: 4e8}},
			tui.BenchEvent{Kind: tui.BenchSampled, Scenario: "container-to-host", Sample: tui.BenchSample{Scenario: "container-to-host", Start: time.Second, End: 2 * time.Second, BitsPerSecond: 4e8}}, true},
		{bench.Event{Kind: bench.EventSample, Sample: &bench.Sample{Scenario: bench.ContainerToHost, Warmup: true}}, tui.BenchEvent{}, false},
		{bench.Event{Kind: bench.EventScenarioDone, Result: &bench.Result{Scenario: c2h, Status: bench.StatusSkipped, Reason: "bypass4netnsd is not running"}},
			tui.BenchEvent{Kind: tui.BenchScenarioDone, Scenario: "container-to-host", Result: tui.BenchResult{Scenario: "container-to-host", Err: "skipped: bypass4netnsd is not running"}}, true},
		{bench.Event{Kind: bench.EventOutput, Line: "building the image"}, tui.BenchEvent{}, false},
		{bench.Event{Kind: bench.EventFinished, Err: "boom"}, tui.BenchEvent{Kind: tui.BenchFinished, Err: "boom"}, true},
	}
	for _, tt := range tests {
		got, ok := toWizardEvent(tt.in, scs)
		if ok != tt.wantOK || got.Kind != tt.want.Kind || got.Scenario != tt.want.Scenario || got.Sample != tt.want.Sample ||
			got.Result != tt.want.Result || got.Err != tt.want.Err || len(got.Scenarios) != len(tt.want.Scenarios) {
			t.Errorf("toWizardEvent(%s) = %+v, %v; want %+v, %v", tt.in.Kind, got, ok, tt.want, tt.wantOK)
		}
	}
}

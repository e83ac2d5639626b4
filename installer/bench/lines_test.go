package bench

import (
	"strings"
	"testing"
	"time"
)

func TestLinePrinter(t *testing.T) {
	var out strings.Builder
	base := nerdctlsTable()
	p := &LinePrinter{W: &out, Baseline: base}
	c2h, c2hb, h2cb := Scenarios[0], Scenarios[1], Scenarios[3]
	ok := result(ContainerToHost, StatusOK, 0.43e9, 1)
	ok.Retransmits, ok.Command, ok.ServerCommand = 3, "nerdctl run --rm IMG -c 192.0.2.2", "iperf3 -s -B 192.0.2.2"
	skipped := Result{Scenario: c2hb, Status: StatusSkipped, Reason: "bypass4netnsd is not running", Fix: "virt-setup start"}
	failed := Result{Scenario: h2cb, Status: StatusFailed, Err: "port in use", Fix: "choose another --port"}
	for _, ev := range []Event{
		{Kind: EventStarted, Total: 10},
		{Kind: EventOutput, Line: "building the image"},
		{Kind: EventScenarioStarted, Scenario: c2h.ID, Title: c2h.Title, Index: 1, Total: 10},
		{Kind: EventSample, Scenario: c2h.ID, Index: 1, Total: 10, Sample: &Sample{Start: 0, End: 1, BitsPerSecond: 0.41e9, Warmup: true}},
		{Kind: EventSample, Scenario: c2h.ID, Index: 1, Total: 10, Sample: &Sample{Start: 10, End: 11.02, BitsPerSecond: 0.44e9}},
		{Kind: EventScenarioDone, Scenario: c2h.ID, Title: c2h.Title, Index: 1, Total: 10, Result: &ok},
		{Kind: EventScenarioDone, Scenario: c2hb.ID, Title: c2hb.Title, Index: 2, Total: 10, Result: &skipped},
		{Kind: EventScenarioDone, Scenario: h2cb.ID, Title: h2cb.Title, Index: 4, Total: 10, Result: &failed},
		{Kind: EventFinished, Time: time.Now(), Err: "port in use", Fix: "choose another --port"},
	} {
		p.Emit(ev)
	}
	want := `10 scenarios
· building the image
[ 1/10] ▸ container → host
          0.00-1.00 s  0.410 Gbit/s  (warm-up, not counted)
        10.00-11.02 s  0.440 Gbit/s
[ 1/10] ✓ container → host: 0.430 Gbit/s (3 retransmits), +8% against the baseline's 0.398 Gbit/s
        by hand: iperf3 -s -B 192.0.2.2
           then: nerdctl run --rm IMG -c 192.0.2.2
[ 2/10] ↷ skipped container → host, bypass4netns: bypass4netnsd is not running
        fix: virt-setup start
[ 4/10] ✗ failed host → container, bypass4netns: port in use
        fix: choose another --port
✗ port in use
  fix: choose another --port
`
	if out.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestWriteTable(t *testing.T) {
	r := nerdctlsTable()
	r.Compare(nerdctlsTable(), "/home/u/.local/state/virt-setup/bench-baseline.json")
	r.BaselineFrom.Started = time.Date(2026, 11, 29, 18, 5, 0, 0, time.Local)
	var out strings.Builder
	if err := WriteTable(&out, r); err != nil {
		t.Fatal(err)
	}
	want := `iperf3                    without bypass4netns   with bypass4netns   bypass4netns gain
container → host          0.398 Gbit/s (+0%)     42.2 Gbit/s (+0%)   106×
host → container          20.6 Gbit/s (+0%)      47.4 Gbit/s (+0%)   2.30×
host loopback (ceiling)   51.0 Gbit/s (+0%)                          
(changes against the baseline of 2026-11-29 18:05, /home/u/.local/state/virt-setup/bench-baseline.json)
`
	if out.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", out.String(), want)
	}
}

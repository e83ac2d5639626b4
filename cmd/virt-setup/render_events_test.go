package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/virt-setup/virt-setup/installer"
)

// failingRun is a fixed event sequence: a step done with output, one skipped, one failed with a
// fix, and the run's end.
func failingRun() []installer.Event {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ev := func(kind installer.EventKind, idx int, step, title string) installer.Event {
		return installer.Event{Kind: kind, Time: at, Index: idx, Total: 12, Step: step, Title: title}
	}
	done := ev(installer.EventStepDone, 1, "file:nerdctl", "Write nerdctl.toml")
	done.Duration, done.Progress = 230*time.Millisecond, 1.0/12
	out1 := ev(installer.EventOutput, 1, "file:nerdctl", "Write nerdctl.toml")
	out1.Line = "backed up /home/u/.config/nerdctl/nerdctl.toml"
	out2 := out1
	out2.Line = "wrote /home/u/.config/nerdctl/nerdctl.toml (120 bytes)"
	skipped := ev(installer.EventStepSkipped, 2, "linger", "Enable lingering")
	skipped.Reason = installer.ReasonEarlierRun
	failed := ev(installer.EventStepFailed, 10, "service:containerd", "Start containerd")
	failed.Duration = 2340 * time.Millisecond
	failed.Err = "containerd did not answer on its socket\nlast log line: permission denied"
	failed.Fix = "chmod 0666 /dev/net/tun (as root)"
	fin := installer.Event{Kind: installer.EventFinished, Time: at, Total: 12, Duration: 3*time.Second + 40*time.Millisecond,
		Err: "step service:containerd: containerd did not answer", Fix: failed.Fix}
	return []installer.Event{
		{Kind: installer.EventPlanStarted, Time: at, Total: 12},
		ev(installer.EventStepStarted, 1, "file:nerdctl", "Write nerdctl.toml"),
		out1, out2, done,
		{Kind: installer.EventProgress, Time: at, Index: 1, Total: 12, Progress: 1.0 / 12},
		ev(installer.EventStepStarted, 2, "linger", "Enable lingering"),
		skipped,
		ev(installer.EventStepStarted, 10, "service:containerd", "Start containerd"),
		failed,
		fin,
	}
}

func TestEventPrinterFailingRun(t *testing.T) {
	var buf bytes.Buffer
	p := newEventPrinter(&buf, newStyles(&buf))
	for _, ev := range failingRun() {
		p.Emit(ev)
	}
	want := `12 steps
[ 1/12] ▸ start    Write nerdctl.toml
        │ backed up /home/u/.config/nerdctl/nerdctl.toml
        │ wrote /home/u/.config/nerdctl/nerdctl.toml (120 bytes)
[ 1/12] ✓ done     Write nerdctl.toml (230ms)
[ 2/12] ▸ start    Enable lingering
[ 2/12] ↷ skipped  Enable lingering: done in an earlier run
[10/12] ▸ start    Start containerd
[10/12] ✗ failed   Start containerd (2.3s)
        error: containerd did not answer on its socket
               last log line: permission denied
        fix: chmod 0666 /dev/net/tun (as root)
✗ failed: 1 done, 1 skipped, 1 failed, 9 not run in 3s
`
	if got := buf.String(); got != want {
		t.Errorf("plain rendering:\n%s\nwant:\n%s", got, want)
	}
}

func TestEventPrinterSummaries(t *testing.T) {
	tests := []struct {
		name   string
		events []installer.Event
		want   string
	}{
		{
			name: "everything skipped",
			events: []installer.Event{
				{Kind: installer.EventPlanStarted, Total: 1},
				{Kind: installer.EventStepStarted, Index: 1, Total: 1, Title: "Write x"},
				{Kind: installer.EventStepSkipped, Index: 1, Total: 1, Title: "Write x", Reason: installer.ReasonInPlace},
				{Kind: installer.EventFinished, Total: 1, Duration: 1500 * time.Millisecond},
			},
			want: "1 step\n[1/1] ▸ start    Write x\n[1/1] ↷ skipped  Write x: already in place\n" +
				"✓ finished: 0 done, 1 skipped, 0 failed, 0 not run in 1.5s\n",
		},
		{
			name: "cancelled between steps",
			events: []installer.Event{
				{Kind: installer.EventPlanStarted, Total: 2},
				{Kind: installer.EventStepStarted, Index: 1, Total: 2, Title: "A"},
				{Kind: installer.EventStepDone, Index: 1, Total: 2, Title: "A", Duration: time.Millisecond},
				{Kind: installer.EventFinished, Total: 2, Duration: time.Second,
					Err: "install cancelled before step 2 of 2: context canceled", Fix: "run the install again"},
			},
			want: "2 steps\n[1/2] ▸ start    A\n[1/2] ✓ done     A (1ms)\n" +
				"✗ cancelled: 1 done, 0 skipped, 0 failed, 1 not run in 1s\n" +
				"  error: install cancelled before step 2 of 2: context canceled\n" +
				"  fix: run the install again\n",
		},
		{
			name: "a line without a step",
			events: []installer.Event{
				{Kind: installer.EventOutput, Line: "journal archived as /s/journal-1.json"},
			},
			want: "journal archived as /s/journal-1.json\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			p := newEventPrinter(&buf, newStyles(&buf))
			for _, ev := range tt.events {
				p.Emit(ev)
			}
			if got := buf.String(); got != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestJSONEventWriter(t *testing.T) {
	var buf bytes.Buffer
	w := newJSONEventWriter(&buf)
	events := failingRun()
	for _, ev := range events {
		w.Emit(ev)
	}
	if err := w.Err(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(&buf)
	var got []installer.Event
	for sc.Scan() {
		var ev installer.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("line %q is not one JSON event: %v", sc.Text(), err)
		}
		got = append(got, ev)
	}
	if len(got) != len(events) {
		t.Fatalf("%d lines for %d events", len(got), len(events))
	}
	for i := range events {
		if got[i] != events[i] {
			t.Errorf("line %d = %+v, want %+v", i+1, got[i], events[i])
		}
	}
}

type brokenWriter struct{}

func (brokenWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestJSONEventWriterKeepsTheFirstError(t *testing.T) {
	w := newJSONEventWriter(brokenWriter{})
	w.Emit(installer.Event{Kind: installer.EventPlanStarted})
	w.Emit(installer.Event{Kind: installer.EventFinished})
	if err := w.Err(); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Err() = %v", err)
	}
}

func TestEventRendererChoosesTheFormat(t *testing.T) {
	ev := installer.Event{Kind: installer.EventPlanStarted, Total: 3}
	var plain, jsonl bytes.Buffer
	eventRenderer(&plain, newStyles(&plain), false)(ev)
	eventRenderer(&jsonl, newStyles(&jsonl), true)(ev)
	if plain.String() != "3 steps\n" {
		t.Errorf("plain = %q", plain.String())
	}
	var got installer.Event
	if err := json.Unmarshal(jsonl.Bytes(), &got); err != nil || got.Kind != installer.EventPlanStarted || got.Total != 3 {
		t.Errorf("jsonl = %q (%v)", jsonl.String(), err)
	}
}

package tui

import (
	"bytes"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/golden"
	"github.com/charmbracelet/x/exp/teatest"
)

// flow drives the real program (teatest runs tea.NewProgram) over a demo backend that does not
// wait: the whole wizard, with its background work, streams and re-arming listeners.
type flow struct {
	t  *testing.T
	tm *teatest.TestModel
}

func startFlow(t *testing.T, b Backend, w, h int) *flow {
	t.Helper()
	clk := &clock{t: testStart}
	m := New(Options{Backend: b, Now: clk.now, Start: testStart})
	return &flow{t: t, tm: teatest.NewTestModel(t, m, teatest.WithInitialTermSize(w, h))}
}

// waitFor waits until the screen shows all of want. The renderer writes only what changed, so the
// output is searched with escape codes removed, across everything drawn so far.
func (f *flow) waitFor(want ...string) {
	f.t.Helper()
	var seen bytes.Buffer
	teatest.WaitFor(f.t, f.tm.Output(), func(b []byte) bool {
		seen.Write(b)
		text := ansi.Strip(seen.String())
		for _, w := range want {
			if !strings.Contains(text, w) {
				return false
			}
		}
		return true
	}, teatest.WithDuration(10*time.Second), teatest.WithCheckInterval(20*time.Millisecond))
}

func (f *flow) press(keys ...string) {
	for _, k := range keys {
		f.tm.Send(press(k))
	}
}

func (f *flow) final() Model {
	f.t.Helper()
	return f.tm.FinalModel(f.t, teatest.WithFinalTimeout(10*time.Second)).(Model)
}

// TestFlowRecommendedPathToDone takes every default, from the probe to the done screen.
func TestFlowRecommendedPathToDone(t *testing.T) {
	f := startFlow(t, testBackend(t, "ubuntu-24.04"), 100, 30)
	f.waitFor("see the findings")
	f.press("enter")
	f.waitFor("VS-APPARMOR-001")
	f.press("c")
	f.waitFor("choose a snapshotter")
	f.press("enter")
	f.waitFor("Add-ons")
	f.press("enter")
	f.waitFor("Plan: 8 steps")
	f.press("enter")
	f.waitFor("Install now?")
	f.press("y")
	f.waitFor("Installed", "Every step is in place")
	f.press("enter")
	f.waitFor("ratio", "enter finish")
	f.press("enter")
	f.waitFor("Demo finished")
	f.press("enter")
	m := f.final()
	o := m.Outcome()
	if !o.Installed || o.Failed || o.Interrupted || o.Screen != "Done" || !o.Demo {
		t.Errorf("outcome %+v", o)
	}
	if o.Answers.Snapshotter != "overlayfs" || !o.Answers.AddOns.Bypass4netns {
		t.Errorf("answers %+v, want the recommendation", o.Answers)
	}
	for _, r := range m.install.rows {
		if r.state != stepDone {
			t.Errorf("step %s ended %v", r.info.ID, r.state)
		}
	}
	if r := m.bench.results["container-to-host-bypass4netns"].BitsPerSecond / m.bench.results["container-to-host"].BitsPerSecond; r < 20 {
		t.Errorf("bypass4netns / slirp4netns = %.1f, the recorded runs say about 38", r)
	}
	golden.RequireEqual(t, []byte(m.View()))
}

// TestFlowFailingStepWithRetry fails containerd's start once; retry runs again, skipping what is
// done, and the install finishes.
func TestFlowFailingStepWithRetry(t *testing.T) {
	f := startFlow(t, testBackend(t, "ubuntu-24.04", "setuptool:install"), 100, 30)
	f.waitFor("see the findings")
	f.press("enter")
	f.waitFor("VS-APPARMOR-001")
	f.press("c")
	f.waitFor("choose a snapshotter")
	f.press("enter")
	f.waitFor("Add-ons")
	f.press("enter")
	f.waitFor("Plan: 8 steps")
	f.press("enter", "y")
	f.waitFor("Step 3 failed", "/dev/net/tun", "r retry")
	f.press("s") // not offered: containerd's own setup cannot be skipped
	f.press("r")
	f.waitFor("✓ Installed")
	f.press("q")
	m := f.final()
	if m.install.attempt != 2 || !m.Outcome().Installed {
		t.Errorf("attempts %d, outcome %+v", m.install.attempt, m.Outcome())
	}
	for _, r := range m.install.rows {
		if r.state != stepDone {
			t.Errorf("step %s ended %v", r.info.ID, r.state)
		}
	}
	if len(m.install.skip) != 0 {
		t.Errorf("skipped %v", m.install.skip)
	}
}

// TestFlowOverlayImpossible runs on Fedora 34 with SELinux (kernel 5.11): fuse-overlayfs is
// preselected, overlayfs is shown disabled with the kernel rule, and cannot be chosen.
func TestFlowOverlayImpossible(t *testing.T) {
	f := startFlow(t, testBackend(t, "fedora-34-selinux"), 120, 40)
	f.waitFor("see the findings")
	f.press("enter")
	f.waitFor("VS-OVERLAY-001")
	f.press("c")
	f.waitFor("(•) fuse-overlayfs", "(×) overlayfs", "✗ cannot run", "recommended")
	f.press("up")
	f.waitFor("− against", "5.13 when SELinux is on")
	f.press("enter")
	f.waitFor("overlayfs cannot run on this host")
	f.press("down", "enter")
	f.waitFor("Add-ons")
	f.press("q")
	m := f.final()
	if got := m.Answers().Snapshotter; got != "fuse-overlayfs" {
		t.Errorf("snapshotter %q, want fuse-overlayfs", got)
	}
	if m.Outcome().Installed {
		t.Error("installed although the user quit on the add-ons")
	}
}

// TestFlowCtrlCAsksDuringInstall checks that Ctrl-C during a step asks, and that stopping
// leaves the install stopped (not done).
func TestFlowCtrlCAsksDuringInstall(t *testing.T) {
	b, err := NewDemoBackend(DemoOptions{Profile: "debian-12", Pace: 1})
	if err != nil {
		t.Fatal(err)
	}
	f := startFlow(t, b, 100, 30)
	f.waitFor("see the findings")
	f.press("enter")
	f.waitFor("Warnings")
	f.press("c")
	f.waitFor("choose a snapshotter")
	f.press("enter")
	f.waitFor("Add-ons")
	f.press("enter")
	f.waitFor("Plan:")
	f.press("enter", "y")
	f.waitFor("running")
	f.tm.Send(tea.KeyMsg{Type: tea.KeyCtrlC})
	f.waitFor("Stop the install?")
	f.press("y")
	f.waitFor("Stopped")
	f.press("q")
	m := f.final()
	if o := m.Outcome(); o.Installed || !o.Failed {
		t.Errorf("outcome after stopping: %+v", o)
	}
}

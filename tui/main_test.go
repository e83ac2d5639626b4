package tui

import (
	"os"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"

	"github.com/virt-setup/virt-setup/installer"
	"github.com/virt-setup/virt-setup/probe"
)

// TestMain fixes the colour profile: golden files hold text, not escape codes, whatever terminal
// runs the tests (lipgloss#33).
func TestMain(m *testing.M) {
	lipgloss.SetColorProfile(termenv.Ascii)
	lipgloss.SetHasDarkBackground(true)
	os.Exit(m.Run())
}

// testStart is the fixed "now" of the tests.
var testStart = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

// clock is a settable clock for a test.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// testBackend returns the demo backend for a profile, without waiting.
func testBackend(t testing.TB, profile string, failOnce ...string) Backend {
	t.Helper()
	b, err := NewDemoBackend(DemoOptions{Profile: profile, FailOnce: failOnce})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// newModel is the wizard over a demo backend at a terminal size, with a fixed clock.
func newModel(t testing.TB, profile string, w, h int) (Model, *clock) {
	t.Helper()
	c := &clock{t: testStart}
	m := New(Options{Backend: testBackend(t, profile), Now: c.now, Start: testStart})
	m = step(t, m, tea.WindowSizeMsg{Width: w, Height: h})
	return m, c
}

// step applies messages one by one and drops the commands they return.
func step(t testing.TB, m Model, msgs ...tea.Msg) Model {
	t.Helper()
	for _, msg := range msgs {
		next, _ := m.Update(msg)
		m = next.(Model)
	}
	return m
}

// stepCmd applies one message and returns the command.
func stepCmd(t testing.TB, m Model, msg tea.Msg) (Model, tea.Cmd) {
	t.Helper()
	next, cmd := m.Update(msg)
	return next.(Model), cmd
}

// msgsOf runs a command and the batches it returns, collecting the messages of those that
// answer within a moment (ticks, listeners and the like are left waiting).
func msgsOf(cmd tea.Cmd) []tea.Msg {
	if cmd == nil {
		return nil
	}
	ch := make(chan tea.Msg, 1)
	go func() { ch <- cmd() }()
	select {
	case msg := <-ch:
		if b, ok := msg.(tea.BatchMsg); ok {
			var out []tea.Msg
			for _, c := range b {
				out = append(out, msgsOf(c)...)
			}
			return out
		}
		if msg == nil {
			return nil
		}
		return []tea.Msg{msg}
	case <-time.After(100 * time.Millisecond):
		return nil
	}
}

// navTo returns where a command navigates, or -1.
func navTo(cmd tea.Cmd) screen {
	for _, m := range msgsOf(cmd) {
		if n, ok := m.(navMsg); ok {
			return n.to
		}
	}
	return -1
}

// probed is the model right after the probe of profile finished, on the probe screen.
func probed(t testing.TB, profile string, w, h int) (Model, *clock) {
	t.Helper()
	m, c := newModel(t, profile, w, h)
	f, err := probe.LoadProfile(profile)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range probe.ProbeNames() {
		m = step(t, m, probeEventMsg{probe.Event{Probe: n}}, probeEventMsg{probe.Event{Probe: n, Done: true, Duration: probeTimings[n]}})
	}
	m = step(t, m, probeDoneMsg{facts: f, took: 106 * time.Millisecond})
	return m, c
}

func press(s string) tea.KeyMsg {
	switch s {
	case "enter":
		return tea.KeyMsg{Type: tea.KeyEnter}
	case "esc":
		return tea.KeyMsg{Type: tea.KeyEsc}
	case "up":
		return tea.KeyMsg{Type: tea.KeyUp}
	case "down":
		return tea.KeyMsg{Type: tea.KeyDown}
	case "left":
		return tea.KeyMsg{Type: tea.KeyLeft}
	case "right":
		return tea.KeyMsg{Type: tea.KeyRight}
	case "tab":
		return tea.KeyMsg{Type: tea.KeyTab}
	case "space":
		return tea.KeyMsg{Type: tea.KeySpace, Runes: []rune{' '}}
	case "ctrl+c":
		return tea.KeyMsg{Type: tea.KeyCtrlC}
	}
	return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(s)}
}

// at moves the model to a screen the way the wizard does, applying what entering it returns
// synchronously (the plan), but not starting background work.
func at(t testing.TB, m Model, to screen) Model {
	t.Helper()
	m, cmd := stepCmd(t, m, navMsg{to})
	if to == screenReview {
		for _, msg := range msgsOf(cmd) {
			if _, ok := msg.(planMsg); ok {
				m = step(t, m, msg)
			}
		}
	}
	return m
}

// installing puts the model on the install screen of its reviewed plan with the given events
// applied, without running anything.
func installing(t testing.TB, m Model, evs ...installer.Event) Model {
	t.Helper()
	m.screen = screenInstall
	m.install.rows = nil
	for _, in := range m.c.infos {
		m.install.rows = append(m.install.rows, stepRow{info: in})
	}
	m.install.running, m.install.attempt, m.install.started, m.install.now = true, 1, testStart, testStart
	for _, ev := range evs {
		m = step(t, m, engineMsg{ev})
	}
	return m
}

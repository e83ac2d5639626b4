package tui

import (
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/spinner"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/virt-setup/virt-setup/installer"
	"github.com/virt-setup/virt-setup/probe"
)

// probeEventMsg is one probe starting or finishing.
type probeEventMsg struct{ ev probe.Event }

// probeDoneMsg ends the probe: the facts, or why there are none.
type probeDoneMsg struct {
	facts *probe.Facts
	err   error
	took  time.Duration
}

type probeState int

const (
	probeWaiting probeState = iota
	probeRunning
	probeFinished
	// probeNotRun is a probe the run did not report (the live tests, when they are turned off).
	probeNotRun
)

// probeRow is one probe as the screen shows it.
type probeRow struct {
	name  string
	state probeState
	took  time.Duration
	err   string
}

// probeScreen shows each probe as it runs and finishes, then the host at a glance and the count
// of findings.
type probeScreen struct {
	c       *common
	rows    []probeRow
	spinner spinner.Model
	running bool
	err     error
	took    time.Duration
}

func newProbeScreen(c *common) probeScreen {
	s := probeScreen{c: c, spinner: spinner.New(spinner.WithSpinner(spinner.MiniDot), spinner.WithStyle(c.styles.Running))}
	s.reset()
	return s
}

func (s *probeScreen) reset() {
	s.rows = s.rows[:0]
	for _, n := range probe.ProbeNames() {
		s.rows = append(s.rows, probeRow{name: n})
	}
	s.err, s.took = nil, 0
}

// start launches the probe in the background.
func (s probeScreen) start() (probeScreen, tea.Cmd) {
	s.reset()
	s.running = true
	c := s.c
	st := newStream()
	go func() {
		defer st.close()
		t0 := time.Now()
		f, err := c.backend.Probe(c.ctx, func(ev probe.Event) { st.send(probeEventMsg{ev}) })
		st.send(probeDoneMsg{facts: f, err: err, took: time.Since(t0)})
	}()
	return s, tea.Batch(listen(st), s.spinner.Tick)
}

func (s probeScreen) row(name string) int {
	for i, r := range s.rows {
		if r.name == name {
			return i
		}
	}
	return -1
}

func (s probeScreen) update(msg tea.Msg) (probeScreen, tea.Cmd) {
	switch msg := msg.(type) {
	case spinner.TickMsg:
		if !s.running {
			return s, nil
		}
		var cmd tea.Cmd
		s.spinner, cmd = s.spinner.Update(msg)
		return s, cmd
	case probeEventMsg:
		i := s.row(msg.ev.Probe)
		if i < 0 {
			s.rows = append(s.rows, probeRow{name: msg.ev.Probe})
			i = len(s.rows) - 1
		}
		r := &s.rows[i]
		if msg.ev.Done {
			r.state, r.took = probeFinished, msg.ev.Duration
			if msg.ev.Err != nil {
				r.err = msg.ev.Err.Error()
			}
		} else if r.state == probeWaiting {
			r.state = probeRunning
		}
		return s, nil
	case probeDoneMsg:
		s.running, s.took = false, msg.took
		if msg.err != nil {
			s.err = msg.err
			s.c.log.Error("probe failed", "err", msg.err)
			return s, nil
		}
		for i := range s.rows {
			if s.rows[i].state != probeFinished {
				s.rows[i].state = probeNotRun
			}
		}
		s.c.setFacts(msg.facts)
		s.c.log.Info("probe finished", "took", msg.took, "host", s.c.info.Host)
		return s, nil
	case tea.KeyMsg:
		k := s.c.keys
		switch {
		case s.running:
		case key.Matches(msg, k.Enter) && s.err == nil:
			return s, navigate(screenFindings)
		case key.Matches(msg, k.Reprobe):
			return s.start()
		}
	}
	return s, nil
}

// setFacts records new facts: the findings, the recommendation and the answers it suggests.
func (c *common) setFacts(f *probe.Facts) {
	c.facts = f
	c.report = probe.NewReport(f)
	c.answers = installer.DefaultAnswers(f, c.report.Recommendation)
	c.plan, c.infos = nil, nil
}

func (s probeScreen) keys() keyList {
	k := s.c.keys
	if s.running {
		return keysOf([]key.Binding{k.Quit})
	}
	if s.err != nil {
		return keysOf([]key.Binding{with(k.Reprobe, "r", "try again"), k.Quit})
	}
	return keysOf([]key.Binding{with(k.Enter, "enter", "see the findings"), k.Reprobe, k.Quit})
}

func (s probeScreen) view(w, h int) string {
	st := s.c.styles
	var b []string
	if s.c.facts != nil && !s.running {
		b = append(b, st.Heading.Render("Host"))
		b = append(b, summaryLines(st, summarize(s.c.facts), w)...)
	} else {
		b = append(b, st.Heading.Render("Probing "+s.c.info.Host+"…"),
			st.Dim.Render("  Nothing is changed: the probe only reads the host."))
	}
	b = append(b, "", st.Heading.Render("Probes"))
	b = append(b, s.probeLines(w)...)
	// A probe's error is cut in its cell; it matters (its facts are unknown), so it is repeated whole.
	for _, r := range s.rows {
		if r.err != "" {
			b = append(b, wrap(r.err, w, "  "+st.Warn.Render(glyphWarn+" "+r.name+":")+" ", "    ")...)
		}
	}
	b = append(b, "")
	switch {
	case s.running:
	case s.err != nil:
		b = append(b, wrap(st.Fail.Render(glyphFail+" failed")+" "+s.err.Error(), w, "", "  ")...)
	default:
		n := countChecks(s.c.report.Checks)
		b = append(b, fmt.Sprintf("%s %d checks:  %s %d  %s %d  %s %d  %s %d",
			st.Heading.Render("Findings:"), len(s.c.report.Checks),
			st.Fail.Render(glyphFail+" fail"), n[probe.StatusFail],
			st.Warn.Render(glyphWarn+" warn"), n[probe.StatusWarn],
			st.OK.Render(glyphOK+" ok"), n[probe.StatusOK],
			st.Skip.Render(glyphSkip+" skip"), n[probe.StatusSkip]))
	}
	return strings.Join(b, "\n")
}

// probeLines lays the probes out in one column, or two when the screen is short of lines.
func (s probeScreen) probeLines(w int) []string {
	st := s.c.styles
	cell := func(r probeRow, cw int) string {
		var state string
		switch {
		case r.state == probeWaiting:
			state = st.Dim.Render(glyphPending + " waiting")
		case r.state == probeRunning:
			state = s.spinner.View() + st.Running.Render(" running")
		case r.state == probeNotRun:
			state = st.Skip.Render(glyphSkip + " not run")
		case r.err != "":
			state = st.Warn.Render(glyphWarn+" error  ") + " " + r.err
		default:
			state = st.OK.Render(glyphOK+" done   ") + " " + st.Dim.Render(shortDur(r.took))
		}
		return truncate(fmt.Sprintf("  %-20s %s", r.name, state), cw)
	}
	var out []string
	if w < 76 {
		for _, r := range s.rows {
			out = append(out, cell(r, w))
		}
		return out
	}
	half := (len(s.rows) + 1) / 2
	cw := w / 2
	for i := 0; i < half; i++ {
		left := cell(s.rows[i], cw)
		line := left + strings.Repeat(" ", max(0, cw-lipgloss.Width(left)))
		if j := i + half; j < len(s.rows) {
			line += cell(s.rows[j], cw)
		}
		out = append(out, strings.TrimRight(line, " "))
	}
	return out
}

// summaryLines lays the host summary out as label/value pairs, two per line when there is room.
func summaryLines(st Styles, s hostSummary, w int) []string {
	rows := s.rows()
	var out []string
	if w < 76 {
		for _, r := range rows {
			out = append(out, truncate(fmt.Sprintf("  %s %s", st.Label.Render(fmt.Sprintf("%-9s", r[0])), r[1]), w))
		}
		return out
	}
	cw := w / 2
	for i := 0; i < len(rows); i += 2 {
		left := truncate(fmt.Sprintf("  %s %s", st.Label.Render(fmt.Sprintf("%-9s", rows[i][0])), rows[i][1]), cw-1)
		line := left + strings.Repeat(" ", max(0, cw-lipgloss.Width(left)))
		if i+1 < len(rows) {
			line += truncate(fmt.Sprintf("%s %s", st.Label.Render(fmt.Sprintf("%-9s", rows[i+1][0])), rows[i+1][1]), cw)
		}
		out = append(out, line)
	}
	return out
}

// shortDur rounds a duration to what a person reads.
func shortDur(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	default:
		return d.Round(100 * time.Millisecond).String()
	}
}

package tui

import (
	"errors"
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/spinner"
	tea "github.com/charmbracelet/bubbletea"
)

// benchMsg is one event of the benchmark.
type benchMsg struct{ ev BenchEvent }

// benchDoneMsg is the benchmark's return.
type benchDoneMsg struct{ err error }

// benchScreen is the iperf3 panel: per scenario a sparkline and a bar that fill as intervals
// arrive, then the final table in Gbit/s with the bypass4netns ratio per direction.
type benchScreen struct {
	c         *common
	scenarios []BenchScenario
	samples   map[string][]BenchSample
	results   map[string]BenchResult
	current   string
	running   bool
	finished  bool
	err       string
	spinner   spinner.Model
}

func newBenchScreen(c *common) benchScreen {
	return benchScreen{c: c, spinner: spinner.New(spinner.WithSpinner(spinner.MiniDot), spinner.WithStyle(c.styles.Running))}
}

// start runs the benchmark in the background.
func (s benchScreen) start() (benchScreen, tea.Cmd) {
	s.scenarios = BenchScenarios(s.c.answers)
	s.samples, s.results = map[string][]BenchSample{}, map[string]BenchResult{}
	s.running, s.finished, s.err, s.current = true, false, "", ""
	c, a := s.c, s.c.answers
	st := newStream()
	go func() {
		defer st.close()
		err := c.backend.Bench(c.ctx, a, func(ev BenchEvent) { st.send(benchMsg{ev}) })
		st.send(benchDoneMsg{err: err})
	}()
	return s, tea.Batch(listen(st), s.spinner.Tick)
}

func (s benchScreen) update(msg tea.Msg) (benchScreen, tea.Cmd) {
	switch msg := msg.(type) {
	case spinner.TickMsg:
		if !s.running {
			return s, nil
		}
		var cmd tea.Cmd
		s.spinner, cmd = s.spinner.Update(msg)
		return s, cmd
	case benchMsg:
		s.apply(msg.ev)
		return s, nil
	case benchDoneMsg:
		s.running, s.finished = false, true
		if errors.Is(msg.err, ErrNoBenchmark) {
			s.c.log.Info("no benchmark in this build: skipping the panel")
			return s, navigate(screenDone)
		}
		if msg.err != nil && s.err == "" {
			s.err = msg.err.Error()
		}
		s.c.log.Info("benchmark finished", "err", s.err)
		return s, nil
	case tea.KeyMsg:
		if key.Matches(msg, s.c.keys.Enter) && !s.running {
			return s, navigate(screenDone)
		}
	}
	return s, nil
}

func (s *benchScreen) apply(ev BenchEvent) {
	switch ev.Kind {
	case BenchStarted:
		if len(ev.Scenarios) > 0 {
			s.scenarios = ev.Scenarios
		}
	case BenchScenarioStarted:
		s.current = ev.Scenario
	case BenchSampled:
		s.samples[ev.Sample.Scenario] = append(s.samples[ev.Sample.Scenario], ev.Sample)
	case BenchScenarioDone:
		s.results[ev.Result.Scenario] = ev.Result
		s.c.log.Info("bench scenario", "scenario", ev.Result.Scenario, "bps", ev.Result.BitsPerSecond, "err", ev.Result.Err)
	case BenchFinished:
		s.err = ev.Err
		s.current = ""
	}
}

func (s benchScreen) keys() keyList {
	k := s.c.keys
	if s.running {
		return keysOf([]key.Binding{k.Quit})
	}
	return keysOf([]key.Binding{with(k.Enter, "enter", "finish"), k.Quit})
}

// rate is a scenario's rate so far: the final result, or the mean of the intervals.
func (s benchScreen) rate(id string) (float64, bool) {
	if r, ok := s.results[id]; ok && r.Err == "" {
		return r.BitsPerSecond, true
	}
	ss := s.samples[id]
	if len(ss) == 0 {
		return 0, false
	}
	sum := 0.0
	for _, x := range ss {
		sum += x.BitsPerSecond
	}
	return sum / float64(len(ss)), true
}

// scale is the top of every bar: the fastest interval so far, so bars compare across paths.
func (s benchScreen) scale() float64 {
	top := 0.0
	for _, ss := range s.samples {
		for _, x := range ss {
			top = max(top, x.BitsPerSecond)
		}
	}
	for _, r := range s.results {
		top = max(top, r.BitsPerSecond)
	}
	return top
}

const sparkWidth = 8

var sparkRunes = []rune("▁▂▃▄▅▆▇█")

func sparkline(ss []BenchSample, top float64) string {
	ss = ss[max(0, len(ss)-sparkWidth):]
	var b strings.Builder
	for _, x := range ss {
		i := 0
		if top > 0 {
			i = int(x.BitsPerSecond / top * float64(len(sparkRunes)-1))
		}
		b.WriteRune(sparkRunes[min(max(i, 0), len(sparkRunes)-1)])
	}
	return b.String() + strings.Repeat(" ", sparkWidth-len(ss))
}

func gbit(bps float64) string { return fmt.Sprintf("%5.2f Gbit/s", bps/1e9) }

func (s benchScreen) view(w, h int) string {
	st := s.c.styles
	var lines []string
	head := st.Heading.Render("Network speed, measured with iperf3")
	if s.c.info.Demo {
		head += st.Dim.Render("  DEMO: a replay of real measurements")
	}
	lines = append(lines, truncate(head, w), "")
	top := s.scale()
	// The row without its bar takes 67 cells: "  ✓ done    " (12), the direction (17), the path
	// (15), the sparkline (9), and the rate (14).
	barW := max(6, min(40, w-67))
	for _, sc := range s.scenarios {
		var state string
		res, done := s.results[sc.ID]
		switch {
		case done && res.Err != "":
			state = st.Fail.Render(glyphFail + " failed ")
		case done:
			state = st.OK.Render(glyphOK + " done   ")
		case sc.ID == s.current && s.running:
			state = s.spinner.View() + st.Running.Render(" running")
		default:
			state = st.Dim.Render(glyphPending + " waiting")
		}
		rate, ok := s.rate(sc.ID)
		filled := 0
		if top > 0 && ok {
			filled = int(rate / top * float64(barW))
			if rate > 0 {
				filled = max(filled, 1)
			}
		}
		bar := st.BarFull.Render(strings.Repeat("█", filled)) + st.BarEmpty.Render(strings.Repeat("░", barW-filled))
		rateText := st.Dim.Render(fmt.Sprintf("%12s", "–"))
		if ok {
			rateText = gbit(rate)
		}
		if done && res.Err != "" {
			rateText = st.Fail.Render(truncate(res.Err, 30))
		}
		lines = append(lines, truncate(fmt.Sprintf("  %s %-16s %-14s %s %s %s", state, sc.Direction, truncate(sc.Path, 14),
			st.Running.Render(sparkline(s.samples[sc.ID], top)), bar, rateText), w))
	}
	// A path's failure is cut in its row; it is repeated whole.
	for _, sc := range s.scenarios {
		if r, ok := s.results[sc.ID]; ok && r.Err != "" {
			lines = append(lines, wrap(r.Err, w, "  "+st.Fail.Render(glyphFail+" "+sc.Direction+", "+sc.Path+":")+" ", "    ")...)
		}
	}
	if s.finished {
		lines = append(lines, "")
		lines = append(lines, s.table(w)...)
	}
	if s.err != "" {
		lines = append(lines, "")
		lines = append(lines, wrap(s.err, w, st.Fail.Render(glyphFail+" benchmark failed: "), "  ")...)
	}
	return strings.Join(window(lines, 0, h), "\n")
}

// table is the final result: one row per direction, the rate without and with bypass4netns, and
// their ratio.
func (s benchScreen) table(w int) []string {
	st := s.c.styles
	bypass := false
	for _, sc := range s.scenarios {
		bypass = bypass || sc.Bypass
	}
	var rows []string
	if bypass {
		rows = append(rows, st.Label.Render(fmt.Sprintf("%-18s %15s %15s %8s", "Gbit/s", "RootlessKit", "bypass4netns", "ratio")))
	} else {
		rows = append(rows, st.Label.Render(fmt.Sprintf("%-18s %15s", "Gbit/s", "RootlessKit")))
	}
	for _, dir := range []struct{ label, plain, fast string }{
		{"container → host", "container-to-host", "container-to-host-bypass4netns"},
		{"host → container", "host-to-container", "host-to-container-bypass4netns"},
	} {
		cell := func(id string) (string, float64) {
			r, ok := s.results[id]
			if !ok || r.Err != "" {
				return fmt.Sprintf("%15s", "–"), 0
			}
			return fmt.Sprintf("%15.2f", r.BitsPerSecond/1e9), r.BitsPerSecond
		}
		a, av := cell(dir.plain)
		line := fmt.Sprintf("%-18s %s", dir.label, a)
		if bypass {
			b, bv := cell(dir.fast)
			ratio := fmt.Sprintf("%8s", "–")
			if av > 0 && bv > 0 {
				ratio = st.Selected.Render(fmt.Sprintf("%7.1f×", bv/av))
			}
			line += " " + b + " " + ratio
		}
		rows = append(rows, line)
	}
	if !bypass {
		rows = append(rows, st.Dim.Render("bypass4netns is not installed: no comparison"))
	}
	return strings.Split(st.Box.Render(strings.Join(rows, "\n")), "\n")
}

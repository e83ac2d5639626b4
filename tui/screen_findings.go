package tui

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/viewport"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/virt-setup/virt-setup/installer"
	"github.com/virt-setup/virt-setup/probe"
)

// findingsScreen lists the doctor's checks grouped by severity; opening one shows what was seen,
// why it matters and the fix. It is the guided-troubleshooting path: a user can stop here (the
// fixes are printed again when the wizard ends, where they can be copied).
type findingsScreen struct {
	c       *common
	cursor  int
	showAll bool
	detail  bool
	vp      viewport.Model
	w, h    int
}

func newFindingsScreen(c *common) findingsScreen {
	return findingsScreen{c: c, vp: viewport.New(80, 10)}
}

// severityOrder is how the list is grouped: what breaks the setup first.
var severityOrder = []probe.Status{probe.StatusFail, probe.StatusWarn, probe.StatusOK, probe.StatusSkip}

var groupTitle = map[probe.Status]string{
	probe.StatusFail: "Failures: rootless containerd will not work until these are fixed",
	probe.StatusWarn: "Warnings: it works, with limits",
	probe.StatusOK:   "Passed",
	probe.StatusSkip: "Skipped: does not apply, or the facts are unknown",
}

// visible returns the checks the list shows, in display order.
func (s findingsScreen) visible() []probe.Result {
	var out []probe.Result
	for _, st := range severityOrder {
		if !s.showAll && (st == probe.StatusOK || st == probe.StatusSkip) {
			continue
		}
		for _, r := range s.c.report.Checks {
			if r.Status == st {
				out = append(out, r)
			}
		}
	}
	return out
}

// enter resets the screen for new findings.
func (s findingsScreen) enter() findingsScreen {
	s.cursor, s.detail = 0, false
	// With nothing to fix, the list would be empty: show what passed.
	n := countChecks(s.c.report.Checks)
	s.showAll = n[probe.StatusFail]+n[probe.StatusWarn] == 0
	return s
}

func (s *findingsScreen) setSize(w, h int) {
	s.w, s.h = w, h
	s.vp.Width, s.vp.Height = w, max(1, h-1)
	if s.detail {
		s.fillDetail()
	}
}

func (s *findingsScreen) fillDetail() {
	v := s.visible()
	if s.cursor >= len(v) {
		return
	}
	s.vp.SetContent(strings.Join(checkDetail(s.c.styles, v[s.cursor], s.w), "\n"))
}

func (s findingsScreen) update(msg tea.Msg) (findingsScreen, tea.Cmd) {
	km, ok := msg.(tea.KeyMsg)
	if !ok {
		return s, nil
	}
	k := s.c.keys
	if s.detail {
		switch {
		case key.Matches(km, k.Back), key.Matches(km, k.Enter):
			s.detail = false
		case key.Matches(km, k.Up):
			s.vp.LineUp(1)
		case key.Matches(km, k.Down):
			s.vp.LineDown(1)
		case key.Matches(km, k.PageUp):
			s.vp.HalfViewUp()
		case key.Matches(km, k.PageDown):
			s.vp.HalfViewDown()
		case key.Matches(km, k.Next):
			return s, navigate(screenSnapshotter)
		}
		return s, nil
	}
	v := s.visible()
	switch {
	case key.Matches(km, k.Up):
		if s.cursor > 0 {
			s.cursor--
		}
	case key.Matches(km, k.Down):
		if s.cursor < len(v)-1 {
			s.cursor++
		}
	case key.Matches(km, k.Enter):
		if len(v) > 0 {
			s.detail = true
			s.vp.GotoTop()
			s.fillDetail()
		}
	case key.Matches(km, k.ShowAll):
		cur := ""
		if s.cursor < len(v) {
			cur = v[s.cursor].ID
		}
		s.showAll = !s.showAll
		s.cursor = 0
		for i, r := range s.visible() {
			if r.ID == cur {
				s.cursor = i
			}
		}
	case key.Matches(km, k.Next):
		return s, navigate(screenSnapshotter)
	case key.Matches(km, k.Reprobe):
		return s, navigate(screenProbe)
	}
	return s, nil
}

func (s findingsScreen) keys() keyList {
	k := s.c.keys
	if s.detail {
		return keysOf([]key.Binding{with(k.Up, "↑/↓", "scroll"), with(k.Back, "esc", "list"), k.Next, k.Quit},
			k.PageUp, k.PageDown)
	}
	all := with(k.ShowAll, "a", "show passed")
	if s.showAll {
		all = with(k.ShowAll, "a", "hide passed")
	}
	return keysOf([]key.Binding{with(k.Up, "↑/↓", "select"), with(k.Enter, "enter", "details"), k.Next, k.Quit},
		all, k.Reprobe)
}

func (s findingsScreen) view(w, h int) string {
	if s.detail {
		pct := fmt.Sprintf("%3.0f%%", s.vp.ScrollPercent()*100)
		return s.vp.View() + "\n" + strings.Repeat(" ", max(0, w-len(pct))) + s.c.styles.Dim.Render(pct)
	}
	st := s.c.styles
	n := countChecks(s.c.report.Checks)
	byScript := s.c.rootScriptFixes()
	var lines []string
	cursorLine := 0
	v := s.visible()
	idx := 0
	for _, sev := range severityOrder {
		if n[sev] == 0 || (!s.showAll && (sev == probe.StatusOK || sev == probe.StatusSkip)) {
			continue
		}
		if len(lines) > 0 {
			lines = append(lines, "")
		}
		lines = append(lines, st.Heading.Render(fmt.Sprintf("%s (%d)", groupTitle[sev], n[sev])))
		for ; idx < len(v) && v[idx].Status == sev; idx++ {
			r := v[idx]
			mark := "  "
			title := r.Title
			if idx == s.cursor {
				mark = st.Cursor.Render("▸ ")
				cursorLine = len(lines)
				title = st.Selected.Render(title)
			}
			tag := ""
			if byScript[r.ID] {
				tag = st.Warn.Render("[root script] ")
			}
			lines = append(lines, truncate(fmt.Sprintf("%s%s %-16s %s%s", mark, st.status(string(r.Status)), r.ID, tag, title), w))
		}
	}
	if !s.showAll {
		if hidden := n[probe.StatusOK] + n[probe.StatusSkip]; hidden > 0 {
			lines = append(lines, "", st.Dim.Render(fmt.Sprintf("%s %d passed and %s %d skipped not shown (a: show them)",
				glyphOK, n[probe.StatusOK], glyphSkip, n[probe.StatusSkip])))
		}
	}
	if n[probe.StatusFail]+n[probe.StatusWarn] > 0 {
		lines = append(lines, "")
		note := "Fix these yourself (enter shows how), then press r to probe again."
		if len(byScript) > 0 {
			note = "Those marked [root script] are fixed by the install's root script, which you review before it runs; fix the others yourself (enter shows how), then press r to probe again."
		}
		lines = append(lines, wrap(st.Dim.Render(note), w, "", "")...)
	}
	return strings.Join(window(lines, cursorLine, h), "\n")
}

// rootScriptFixes are the checks the install's root script fixes for the current answers.
func (c *common) rootScriptFixes() map[string]bool {
	_, reasons := installer.GatherPrivileged(c.answers, c.report.Checks)
	out := map[string]bool{}
	for _, r := range reasons {
		if id, _, ok := strings.Cut(r, ":"); ok {
			out[id] = true
		}
	}
	return out
}

// window returns at most h lines of lines, scrolled so that line focus is visible.
func window(lines []string, focus, h int) []string {
	if h <= 0 || len(lines) <= h {
		return lines
	}
	top := 0
	if focus >= h-1 {
		top = focus - h + 2
	}
	top = min(top, len(lines)-h)
	return lines[top : top+h]
}

// checkDetail renders one check in full, wrapped to w: what was seen, why it matters, the fix.
// Command lines are not wrapped when they fit, and never decorated, so that they can be copied.
func checkDetail(st Styles, r probe.Result, w int) []string {
	var out []string
	out = append(out, st.status(string(r.Status))+"  "+st.Heading.Render(r.ID))
	out = append(out, wrap(st.Heading.Render(r.Title), w, "", "")...)
	section := func(title string) { out = append(out, "", st.Label.Render(title)) }
	if len(r.Evidence) > 0 {
		section("What was seen")
		for _, e := range r.Evidence {
			out = append(out, wrap(strings.Join(strings.Fields(e), " "), w, "  · ", "    ")...)
		}
	}
	if r.Why != "" {
		section("Why it matters")
		out = append(out, wrap(r.Why, w, "  ", "  ")...)
	}
	if !r.Fix.IsZero() {
		section("Fix")
		if r.Fix.Summary != "" {
			out = append(out, wrap(r.Fix.Summary, w, "  ", "  ")...)
		}
		cmds := func(title string, lines []string) {
			if len(lines) == 0 {
				return
			}
			out = append(out, "", "  "+title)
			for _, l := range lines {
				out = append(out, wrap(st.Code.Render(l), w, "      ", "        ")...)
			}
		}
		cmds("Run as yourself:", r.Fix.User)
		cmds("Run as root (the install gathers these into its root script):", r.Fix.Root)
		for _, n := range r.Fix.Notes {
			out = append(out, wrap(n, w, "  note: ", "        ")...)
		}
	}
	if r.Doc != "" {
		section("More")
		out = append(out, "  "+r.Doc)
	}
	return out
}

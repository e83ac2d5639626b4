package tui

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/virt-setup/virt-setup/probe"
)

// snapshotterScreen offers overlayfs, fuse-overlayfs and native with the recommended one
// preselected and the reasons for and against each. A choice the host cannot run is shown
// disabled, with the reason, and cannot be chosen.
type snapshotterScreen struct {
	c      *common
	cursor int
	// scroll is the first line of the reasons shown, when they do not fit.
	scroll int
	notice string
	w, h   int
}

func newSnapshotterScreen(c *common) snapshotterScreen { return snapshotterScreen{c: c} }

func (s snapshotterScreen) options() []probe.SnapshotterOption {
	return s.c.report.Recommendation.Options
}

func (s snapshotterScreen) enter() snapshotterScreen {
	s.cursor, s.scroll, s.notice = 0, 0, ""
	for i, o := range s.options() {
		if o.Name == s.c.answers.Snapshotter {
			s.cursor = i
		}
	}
	return s
}

func (s *snapshotterScreen) setSize(w, h int) { s.w, s.h = w, h }

// snapshotterBlurb says in a few words what each snapshotter is.
var snapshotterBlurb = map[string]string{
	probe.SnapshotterOverlayfs:     "the kernel's overlay filesystem: fastest, least disk",
	probe.SnapshotterFuseOverlayfs: "overlayfs in user space (FUSE): works on older kernels",
	probe.SnapshotterNative:        "plain copies of every layer: works everywhere, slow",
}

func (s snapshotterScreen) update(msg tea.Msg) (snapshotterScreen, tea.Cmd) {
	km, ok := msg.(tea.KeyMsg)
	if !ok {
		return s, nil
	}
	k := s.c.keys
	opts := s.options()
	switch {
	case key.Matches(km, k.Up):
		if s.cursor > 0 {
			s.cursor--
			s.scroll, s.notice = 0, ""
		}
	case key.Matches(km, k.Down):
		if s.cursor < len(opts)-1 {
			s.cursor++
			s.scroll, s.notice = 0, ""
		}
	case key.Matches(km, k.PageDown):
		s.scroll++
	case key.Matches(km, k.PageUp):
		s.scroll = max(0, s.scroll-1)
	case key.Matches(km, k.Enter):
		if s.cursor >= len(opts) {
			return s, nil
		}
		o := opts[s.cursor]
		if !o.Possible {
			s.notice = o.Name + " cannot run on this host: " + firstReason(o.Against)
			return s, nil
		}
		s.c.answers.Snapshotter = o.Name
		s.c.log.Info("snapshotter chosen", "name", o.Name, "recommended", s.c.report.Recommendation.Snapshotter)
		return s, navigate(screenAddOns)
	case key.Matches(km, k.Back):
		return s, navigate(screenFindings)
	}
	return s, nil
}

func firstReason(rs []probe.Reason) string {
	if len(rs) == 0 {
		return "the facts rule it out"
	}
	return rs[0].Text
}

func (s snapshotterScreen) keys() keyList {
	k := s.c.keys
	enter := with(k.Enter, "enter", "choose")
	if opts := s.options(); s.cursor < len(opts) && !opts[s.cursor].Possible {
		enter.SetEnabled(false)
	}
	return keysOf([]key.Binding{with(k.Up, "↑/↓", "select"), enter, k.Back, k.Quit},
		with(k.PageDown, "pgdn/pgup", "scroll the reasons"))
}

func (s snapshotterScreen) view(w, h int) string {
	st := s.c.styles
	rec := s.c.report.Recommendation
	var lines []string
	lines = append(lines, st.Heading.Render("Where containers' files live: choose a snapshotter"), "")
	opts := s.options()
	for i, o := range opts {
		radio := "( )"
		if o.Name == s.c.answers.Snapshotter {
			radio = "(•)"
		}
		mark := "  "
		name := fmt.Sprintf("%-15s", o.Name)
		if i == s.cursor {
			mark = st.Cursor.Render("▸ ")
			name = st.Selected.Render(name)
		}
		state := st.OK.Render(glyphOK + " can run  ")
		if !o.Possible {
			radio = "(×)"
			state = st.Fail.Render(glyphFail + " cannot run")
		}
		note := ""
		switch {
		case !o.Possible:
			note = st.Dim.Render(firstReason(o.Against))
		case o.Name == rec.Snapshotter:
			note = st.Selected.Render("recommended")
		}
		lines = append(lines, truncate(fmt.Sprintf("%s%s %s %s  %s", mark, radio, name, state, note), w))
	}
	lines = append(lines, "")
	if s.cursor < len(opts) {
		detail := optionDetail(st, opts[s.cursor], w)
		room := h - len(lines)
		if len(detail) > room && room > 1 {
			top := min(s.scroll, len(detail)-room+1)
			detail = append(detail[top:top+room-1], st.Dim.Render(fmt.Sprintf("  … %d more lines (pgdn)", len(detail)-top-room+1)))
		}
		lines = append(lines, detail...)
	}
	return strings.Join(lines, "\n")
}

// optionDetail lists the reasons for and against one snapshotter, each with its evidence.
func optionDetail(st Styles, o probe.SnapshotterOption, w int) []string {
	var out []string
	out = append(out, truncate(st.Heading.Render(o.Name)+st.Dim.Render(": "+snapshotterBlurb[o.Name]), w))
	group := func(glyph string, style func(...string) string, rs []probe.Reason) {
		for _, r := range rs {
			out = append(out, wrap(r.Text, w, "  "+style(fmt.Sprintf("%-9s", glyph))+" ", "            ")...)
			for _, e := range r.Evidence {
				out = append(out, wrap(st.Dim.Render(strings.Join(strings.Fields(e), " ")), w, "            ", "            ")...)
			}
		}
	}
	group("+ for", st.OK.Render, o.For)
	group("− against", st.Fail.Render, o.Against)
	group("→ needs", st.Warn.Render, o.Requires)
	if len(o.For)+len(o.Against)+len(o.Requires) == 0 {
		out = append(out, st.Dim.Render("  no reasons recorded"))
	}
	return out
}

package tui

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/virt-setup/virt-setup/installer"
	"github.com/virt-setup/virt-setup/probe"
)

// addOnsScreen toggles BuildKit, stargz and bypass4netns, each with what it needs and whether the
// host has it, and opens an advanced panel for RootlessKit's options and the service mode.
type addOnsScreen struct {
	c        *common
	cursor   int
	advanced bool
	notice   string
	// problems are why the answers are invalid (they stop the wizard from going on).
	problems []string
}

func newAddOnsScreen(c *common) addOnsScreen { return addOnsScreen{c: c} }

func (s addOnsScreen) enter() addOnsScreen {
	s.notice, s.problems = "", nil
	s.cursor = min(s.cursor, s.rows()-1)
	return s
}

// An add-on as the screen shows it.
type addOnItem struct {
	name, blurb string
	advice      probe.AddOn
	on          *bool
}

func (s addOnsScreen) items() []addOnItem {
	rec := s.c.report.Recommendation.AddOns
	a := &s.c.answers.AddOns
	return []addOnItem{
		{"BuildKit", "nerdctl build (buildkitd)", rec.BuildKit, &a.BuildKit},
		{"stargz", "lazy pulling of eStargz images", rec.Stargz, &a.Stargz},
		{"bypass4netns", "host-speed networking for containers that opt in", rec.Bypass4netns.AddOn, &a.Bypass4netns},
	}
}

// An advanced setting: a value chosen among a few.
type setting struct {
	label   string
	values  []string
	current string
	set     func(string)
	// note says what the recommendation chose and why, or why a value is unavailable.
	note string
}

func (s addOnsScreen) settings() []setting {
	a := &s.c.answers
	rk := &a.RootlessKit
	adv := s.c.report.Recommendation.RootlessKit
	modes := []string{"direct"}
	if um := s.c.facts; um != nil && um.Systemd.UserManager.Known && um.Systemd.UserManager.Value {
		modes = []string{"systemd", "direct"}
	}
	mtus := []string{"1500", "65520"}
	if m := strconv.Itoa(rk.MTU); !slices.Contains(mtus, m) {
		mtus = append(mtus, m)
	}
	return []setting{
		{label: "service mode", values: modes, current: a.ServiceMode, set: func(v string) { a.ServiceMode = v },
			note: map[bool]string{true: "systemd user units (containerd-rootless-setuptool.sh)", false: "no systemd user manager: virt-setup starts the services itself"}[len(modes) == 2]},
		{label: "network driver", values: installer.NetworkDrivers, current: rk.NetworkDriver, set: func(v string) { rk.NetworkDriver = v },
			note: "recommended: " + orNone(adv.NetworkDriver) + reasonSuffix(adv.NetworkReasons)},
		{label: "MTU", values: mtus, current: strconv.Itoa(rk.MTU), set: func(v string) { rk.MTU, _ = strconv.Atoi(v) },
			note: fmt.Sprintf("recommended: %d", adv.MTU) + reasonSuffix(adv.MTUReasons)},
		{label: "port driver", values: installer.PortDrivers, current: rk.PortDriver, set: func(v string) { rk.PortDriver = v },
			note: "recommended: " + adv.PortDriver + reasonSuffix(adv.PortReasons)},
		{label: "detach-netns", values: installer.Tristates, current: rk.DetachNetns, set: func(v string) { rk.DetachNetns = v },
			note: fmt.Sprintf("recommended: %v", adv.DetachNetns) + reasonSuffix(adv.DetachNetnsReasons)},
	}
}

func reasonSuffix(rs []probe.Reason) string {
	if len(rs) == 0 {
		return ""
	}
	return " (" + rs[0].Text + ")"
}

// rows is how many rows the cursor moves over: the add-ons, then the open panel's settings.
func (s addOnsScreen) rows() int {
	n := len(s.items())
	if s.advanced {
		n += len(s.settings())
	}
	return n
}

func (s addOnsScreen) update(msg tea.Msg) (addOnsScreen, tea.Cmd) {
	km, ok := msg.(tea.KeyMsg)
	if !ok {
		return s, nil
	}
	k := s.c.keys
	items := s.items()
	switch {
	case key.Matches(km, k.Up):
		s.cursor = max(0, s.cursor-1)
		s.notice = ""
	case key.Matches(km, k.Down):
		s.cursor = min(s.rows()-1, s.cursor+1)
		s.notice = ""
	case key.Matches(km, k.Toggle) && s.cursor < len(items):
		it := items[s.cursor]
		if !*it.on && !it.advice.Available {
			s.notice = it.name + " cannot be used here: " + firstReason(it.advice.Reasons)
			return s, nil
		}
		*it.on = !*it.on
		s.problems = nil
	case (key.Matches(km, k.Left) || key.Matches(km, k.Right)) && s.cursor >= len(items):
		st := s.settings()[s.cursor-len(items)]
		i := slices.Index(st.values, st.current)
		if key.Matches(km, k.Left) {
			i = (i - 1 + len(st.values)) % len(st.values)
		} else {
			i = (i + 1) % len(st.values)
		}
		st.set(st.values[i])
		s.problems = nil
	case key.Matches(km, k.Advanced):
		s.advanced = !s.advanced
		if s.advanced {
			s.cursor = len(items)
		} else {
			s.cursor = min(s.cursor, len(items)-1)
		}
	case key.Matches(km, k.Enter):
		if err := s.c.answers.Validate(); err != nil {
			s.problems = problemList(err)
			s.advanced = true
			return s, nil
		}
		s.c.log.Info("add-ons chosen", "answers", fmt.Sprintf("%+v", s.c.answers))
		return s, navigate(screenReview)
	case key.Matches(km, k.Back):
		return s, navigate(screenSnapshotter)
	}
	return s, nil
}

// problemList splits a joined validation error into one line per problem.
func problemList(err error) []string {
	var j interface{ Unwrap() []error }
	if errors.As(err, &j) {
		var out []string
		for _, e := range j.Unwrap() {
			out = append(out, e.Error())
		}
		return out
	}
	return []string{err.Error()}
}

func (s addOnsScreen) keys() keyList {
	k := s.c.keys
	short := []key.Binding{with(k.Up, "↑/↓", "select")}
	if s.cursor < len(s.items()) {
		short = append(short, k.Toggle)
	} else {
		short = append(short, k.Left)
	}
	adv := k.Advanced
	if s.advanced {
		adv = with(k.Advanced, "a", "hide RootlessKit")
	}
	short = append(short, adv, with(k.Enter, "enter", "review"), k.Back, k.Quit)
	return keysOf(short)
}

func (s addOnsScreen) view(w, h int) string {
	st := s.c.styles
	var lines []string
	lines = append(lines, st.Heading.Render("Add-ons"), "")
	items := s.items()
	for i, it := range items {
		box := "[ ]"
		if *it.on {
			box = "[x]"
		}
		state := st.OK.Render(glyphOK + " available  ")
		if !it.advice.Available {
			state = st.Skip.Render(glyphFail + " unavailable")
			if !*it.on {
				box = "[-]"
			}
		}
		mark, name := "  ", fmt.Sprintf("%-13s", it.name)
		if i == s.cursor {
			mark, name = st.Cursor.Render("▸ "), st.Selected.Render(name)
		}
		lines = append(lines, truncate(fmt.Sprintf("%s%s %s %s %s", mark, box, name, state, st.Dim.Render(it.blurb)), w))
	}
	if s.cursor < len(items) {
		it := items[s.cursor]
		lines = append(lines, "")
		for _, r := range it.advice.Reasons {
			lines = append(lines, wrap(r.Text, w, "    · ", "      ")...)
		}
		if it.name == "bypass4netns" && s.c.report.Recommendation.AddOns.Bypass4netns.Flag != "" {
			lines = append(lines, wrap("containers opt in with: nerdctl run "+s.c.report.Recommendation.AddOns.Bypass4netns.Flag, w, "    · ", "      ")...)
		}
	}
	lines = append(lines, "")
	rk := s.c.answers.RootlessKit
	lines = append(lines, truncate(st.Heading.Render("RootlessKit")+st.Dim.Render(fmt.Sprintf("  %s · MTU %d · port %s · detach-netns %s · %s",
		rk.NetworkDriver, rk.MTU, rk.PortDriver, rk.DetachNetns, s.c.answers.ServiceMode)), w))
	if s.advanced {
		for i, set := range s.settings() {
			row := len(items) + i
			mark, label := "  ", fmt.Sprintf("%-15s", set.label)
			if row == s.cursor {
				mark, label = st.Cursor.Render("▸ "), st.Selected.Render(label)
			}
			lines = append(lines, truncate(fmt.Sprintf("%s%s ‹ %-16s ›", mark, label, set.current), w))
			if row == s.cursor {
				lines = append(lines, wrap(st.Dim.Render(set.note), w, "      ", "      ")...)
			}
		}
		for _, warn := range s.c.report.Recommendation.RootlessKit.Warnings {
			lines = append(lines, wrap(warn.Text, w, "  "+st.Warn.Render(glyphWarn+" warn")+" ", "         ")...)
		}
	} else {
		lines = append(lines, st.Dim.Render("  a: change the network driver, MTU, port driver, detach-netns or service mode"))
	}
	if len(s.problems) > 0 {
		lines = append(lines, "")
		for _, p := range s.problems {
			lines = append(lines, wrap(p, w, "  "+st.Fail.Render(glyphFail+" invalid")+" ", "            ")...)
		}
	}
	return strings.Join(window(lines, len(lines)-1, h), "\n")
}

package tui

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	"github.com/charmbracelet/bubbles/viewport"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/virt-setup/virt-setup/installer"
)

// planMsg is a plan built in the background (steps' Info reads the files it diffs, so it is work
// for a command, done once).
type planMsg struct {
	plan  *installer.Plan
	infos []installer.StepInfo
	err   error
}

// savedMsg reports the answers written to a file.
type savedMsg struct {
	path string
	err  error
}

// reviewScreen shows the plan: every step with its commands and file diffs in a scrollable view,
// the root script on its own tab, and asks before anything runs. The answers can be saved here.
type reviewScreen struct {
	c          *common
	building   bool
	err        error
	infos      []installer.StepInfo
	tab        int
	vp         viewport.Model
	confirming bool
	saving     bool
	input      textinput.Model
	notice     string
	w, h       int
}

const (
	tabPlan = iota
	tabScript
)

// defaultAnswersFile is offered when saving; a relative path is taken from the working directory.
const defaultAnswersFile = "virt-setup-answers.toml"

func newReviewScreen(c *common) reviewScreen {
	in := textinput.New()
	in.Prompt = "save the answers to: "
	in.CharLimit = 4096
	return reviewScreen{c: c, vp: viewport.New(80, 10), input: in}
}

// enter builds the plan for the current answers.
func (s reviewScreen) enter() (reviewScreen, tea.Cmd) {
	s.building, s.err, s.infos, s.tab, s.confirming, s.saving, s.notice = true, nil, nil, tabPlan, false, false, ""
	c := s.c
	f, a := c.facts, c.answers
	return s, func() tea.Msg {
		p, err := c.backend.Plan(c.ctx, f, a)
		if err != nil {
			return planMsg{err: err}
		}
		return planMsg{plan: p, infos: p.Infos()}
	}
}

func (s *reviewScreen) setSize(w, h int) {
	s.w, s.h = w, h
	s.input.Width = max(10, w-len(s.input.Prompt)-2)
	// The choices (2 lines) and the tabs (1), then the view, then the prompt line.
	s.vp.Width, s.vp.Height = w, max(1, h-4)
	s.fill()
}

func (s *reviewScreen) fill() {
	if s.infos == nil {
		s.vp.SetContent("")
		return
	}
	var lines []string
	if s.tab == tabPlan {
		lines = planLines(s.c.styles, s.infos, s.w)
	} else {
		lines = scriptLines(s.c.styles, s.infos, s.w)
	}
	s.vp.SetContent(strings.Join(lines, "\n"))
}

func (s reviewScreen) privileged() (installer.StepInfo, bool) {
	for _, in := range s.infos {
		if in.Privileged {
			return in, true
		}
	}
	return installer.StepInfo{}, false
}

func (s reviewScreen) update(msg tea.Msg) (reviewScreen, tea.Cmd) {
	switch msg := msg.(type) {
	case planMsg:
		s.building = false
		if msg.err != nil {
			s.err = msg.err
			s.c.log.Warn("plan failed", "err", msg.err)
			return s, nil
		}
		s.c.plan, s.c.infos, s.infos = msg.plan, msg.infos, msg.infos
		s.vp.GotoTop()
		s.fill()
		return s, nil
	case savedMsg:
		if msg.err != nil {
			s.notice = glyphFail + " could not save: " + msg.err.Error()
			return s, nil
		}
		s.c.answersPath = msg.path
		s.notice = glyphOK + " saved the answers to " + msg.path
		if s.c.info.Demo {
			s.notice = "DEMO: the answers would be saved to " + msg.path + " (nothing is written)"
		}
		return s, nil
	case tea.KeyMsg:
		return s.key(msg)
	}
	return s, nil
}

func (s reviewScreen) key(km tea.KeyMsg) (reviewScreen, tea.Cmd) {
	k := s.c.keys
	if s.saving {
		switch km.Type {
		case tea.KeyEnter:
			s.saving = false
			s.input.Blur()
			path := strings.TrimSpace(s.input.Value())
			if path == "" {
				return s, nil
			}
			c, a := s.c, s.c.answers
			return s, func() tea.Msg {
				p, err := c.backend.SaveAnswers(path, a)
				return savedMsg{path: p, err: err}
			}
		case tea.KeyEsc:
			s.saving = false
			s.input.Blur()
			return s, nil
		}
		var cmd tea.Cmd
		s.input, cmd = s.input.Update(km)
		return s, cmd
	}
	if s.confirming {
		switch {
		case key.Matches(km, k.Yes):
			s.confirming = false
			s.c.log.Info("plan confirmed", "steps", len(s.infos))
			return s, navigate(screenInstall)
		case key.Matches(km, k.No):
			s.confirming = false
		}
		return s, nil
	}
	switch {
	case key.Matches(km, k.Back):
		return s, navigate(screenAddOns)
	case s.building:
	case key.Matches(km, k.Save):
		s.saving, s.notice = true, ""
		s.input.SetValue(defaultAnswersFile)
		s.input.CursorEnd()
		return s, s.input.Focus()
	case s.err != nil:
	case key.Matches(km, k.Enter):
		s.confirming, s.notice = true, ""
	case key.Matches(km, k.Tab):
		s.tab = 1 - s.tab
		s.vp.GotoTop()
		s.fill()
	case key.Matches(km, k.Up):
		s.vp.LineUp(1)
	case key.Matches(km, k.Down):
		s.vp.LineDown(1)
	case key.Matches(km, k.PageUp):
		s.vp.HalfViewUp()
	case key.Matches(km, k.PageDown):
		s.vp.HalfViewDown()
	}
	return s, nil
}

func (s reviewScreen) keys() keyList {
	k := s.c.keys
	switch {
	case s.saving:
		return keysOf([]key.Binding{with(k.Enter, "enter", "save"), with(k.Back, "esc", "cancel")})
	case s.confirming:
		return keysOf([]key.Binding{with(k.Yes, "y", "install now"), with(k.No, "n/esc", "not yet")})
	case s.building:
		return keysOf([]key.Binding{k.Back, k.Quit})
	case s.err != nil:
		return keysOf([]key.Binding{with(k.Back, "esc", "change the choices"), k.Save, k.Quit})
	}
	tab := k.Tab
	if s.tab == tabScript {
		tab = with(k.Tab, "tab", "plan")
	}
	return keysOf([]key.Binding{with(k.Up, "↑/↓", "scroll"), tab, with(k.Enter, "enter", "install"), k.Save, k.Back},
		k.PageUp, k.PageDown, k.Quit)
}

func (s reviewScreen) view(w, h int) string {
	st := s.c.styles
	var lines []string
	lines = append(lines, choicesLines(st, s.c.answers, w)...)
	switch {
	case s.building:
		lines = append(lines, "", st.Dim.Render("Building the plan (reading the files it would change)…"))
	case s.err != nil:
		lines = append(lines, "", st.Fail.Render(glyphFail+" The plan cannot be built for these choices:"))
		for _, l := range strings.Split(s.err.Error(), "\n") {
			lines = append(lines, wrap(strings.TrimSpace(l), w, "  ", "    ")...)
		}
		lines = append(lines, "", st.Dim.Render("Go back (esc) and change the choices, or fix the host and run virt-setup again."))
	default:
		plan := fmt.Sprintf(" Plan: %d steps ", len(s.infos))
		script := " Root script: none "
		if in, ok := s.privileged(); ok {
			script = fmt.Sprintf(" Root script: %d commands ", len(in.Commands))
		}
		if s.tab == tabPlan {
			plan, script = st.Selected.Render("["+plan+"]"), st.Dim.Render(" "+script+" ")
		} else {
			plan, script = st.Dim.Render(" "+plan+" "), st.Selected.Render("["+script+"]")
		}
		lines = append(lines, plan+" "+script+st.Dim.Render(fmt.Sprintf("   %3.0f%%", s.vp.ScrollPercent()*100)))
		lines = append(lines, strings.Split(s.vp.View(), "\n")...)
	}
	lines = padLines(lines, h-1)
	switch {
	case s.saving:
		lines = append(lines, s.input.View())
	case s.confirming:
		q := "Install now? Nothing has changed yet."
		if in, ok := s.privileged(); ok {
			q = fmt.Sprintf("Install now? The %d root commands run first, through sudo (it may ask for your password).", len(in.Commands))
		}
		if s.c.info.Demo {
			q = "Install now? (DEMO: simulated, nothing on this host changes)"
		}
		lines = append(lines, truncate(st.Warn.Render(glyphWarn+" ")+st.Heading.Render(q)+st.Dim.Render("  y/n"), w))
	}
	return strings.Join(lines, "\n")
}

// choicesLines summarises the answers in two lines.
func choicesLines(st Styles, a installer.Answers, w int) []string {
	var addons []string
	if a.AddOns.BuildKit {
		addons = append(addons, "BuildKit")
	}
	if a.AddOns.Stargz {
		addons = append(addons, "stargz")
	}
	if a.AddOns.Bypass4netns {
		addons = append(addons, "bypass4netns")
	}
	rk := a.RootlessKit
	return []string{
		truncate(fmt.Sprintf("%s %s  %s %s  %s %s", st.Label.Render("snapshotter"), a.Snapshotter,
			st.Label.Render("service"), a.ServiceMode, st.Label.Render("add-ons"), orNone(strings.Join(addons, ", "))), w),
		truncate(fmt.Sprintf("%s %s, MTU %d, port driver %s, detach-netns %s", st.Label.Render("rootlesskit"),
			rk.NetworkDriver, rk.MTU, rk.PortDriver, rk.DetachNetns), w),
	}
}

// planLines renders every step: its kind, the commands it runs and a coloured diff per file.
func planLines(st Styles, infos []installer.StepInfo, w int) []string {
	var out []string
	for i, in := range infos {
		if i > 0 {
			out = append(out, "")
		}
		title := fmt.Sprintf("%d. %s", i+1, stepTitle(in))
		out = append(out, wrap(st.Heading.Render(title)+" "+st.Dim.Render("("+in.Kind+")"), w, "", "   ")...)
		if in.Error != "" {
			out = append(out, wrap(in.Error, w, "   "+st.Fail.Render(glyphFail+" cannot be applied:")+" ", "     ")...)
		}
		if in.Privileged {
			out = append(out, wrap(st.Dim.Render(fmt.Sprintf("%d commands as root, run through sudo when you confirm: see the root script (tab)", len(in.Commands))), w, "   ", "   ")...)
			continue
		}
		for _, c := range in.Commands {
			out = append(out, wrap(st.Code.Render(c), w, "   $ ", "       ")...)
		}
		for _, f := range in.Files {
			what := "changes"
			if f.Create {
				what = "creates"
			}
			out = append(out, "   "+st.Label.Render(what)+" "+f.Path)
			if f.Diff == "" {
				out = append(out, st.Dim.Render("   (no change)"))
			}
			for _, l := range strings.Split(strings.TrimRight(f.Diff, "\n"), "\n") {
				if l == "" && f.Diff == "" {
					continue
				}
				out = append(out, "   "+diffLine(st, truncate(l, w-3)))
			}
		}
	}
	return out
}

func diffLine(st Styles, l string) string {
	switch {
	case strings.HasPrefix(l, "+++"), strings.HasPrefix(l, "---"):
		return st.Dim.Render(l)
	case strings.HasPrefix(l, "+"):
		return st.DiffAdd.Render(l)
	case strings.HasPrefix(l, "-"):
		return st.DiffDel.Render(l)
	case strings.HasPrefix(l, "@@"):
		return st.DiffHunk.Render(l)
	}
	return l
}

// scriptLines shows the root script exactly as it will run, apart from the rest of the plan.
func scriptLines(st Styles, infos []installer.StepInfo, w int) []string {
	for _, in := range infos {
		if !in.Privileged {
			continue
		}
		out := wrap("These commands need root. They run once, through sudo, when the install reaches its first step: the wizard gives this terminal to sudo (which may ask for your password) and comes back when the script ends. Nothing else runs as root.", w, "", "")
		out = append(out, "")
		for _, l := range strings.Split(strings.TrimRight(installer.PrivilegedScript(in.Commands, nil), "\n"), "\n") {
			if strings.HasPrefix(l, "#") {
				out = append(out, st.Dim.Render(truncate(l, w)))
			} else {
				out = append(out, wrap(st.Code.Render(l), w, "", "    ")...)
			}
		}
		if reasons := privilegedReasons(in); len(reasons) > 0 {
			out = append(out, "", st.Label.Render("Why"))
			for _, r := range reasons {
				out = append(out, wrap(r, w, "  · ", "    ")...)
			}
		}
		return out
	}
	return []string{"This plan needs nothing as root."}
}

// privilegedReasons are the findings behind the root script. The step's title lists them as
// "Prepare the host as root (ID: title; ID: title)"; a title may hold "; " itself, so a reason
// starts only where a check ID does.
func privilegedReasons(in installer.StepInfo) []string {
	inner, ok := strings.CutPrefix(in.Title, stepTitle(in)+" (")
	if !ok {
		return nil
	}
	inner = strings.TrimSuffix(inner, ")")
	var out []string
	for _, part := range strings.Split(inner, "; ") {
		if strings.HasPrefix(part, "VS-") || len(out) == 0 {
			out = append(out, part)
		} else {
			out[len(out)-1] += "; " + part
		}
	}
	return out
}

// stepTitle is a step's title without the privileged step's list of reasons, which the root
// script tab shows in full.
func stepTitle(in installer.StepInfo) string {
	if in.Privileged {
		if i := strings.Index(in.Title, " ("); i > 0 {
			return in.Title[:i]
		}
	}
	return in.Title
}

// absPath resolves a path the user typed against the working directory.
func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

package tui

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/progress"
	"github.com/charmbracelet/bubbles/spinner"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/virt-setup/virt-setup/installer"
)

// engineMsg is one event of the installer engine.
type engineMsg struct{ ev installer.Event }

// installDoneMsg is the install's return: after the engine's finished event, or instead of it
// when the run could not start (the journal is locked by another virt-setup).
type installDoneMsg struct{ err error }

// privilegedMsg asks the wizard to run the root script with the terminal; the engine waits on
// reply.
type privilegedMsg struct {
	path  string
	reply chan error
}

// privilegedDoneMsg is sudo's exit, on its way back to the waiting engine.
type privilegedDoneMsg struct {
	err   error
	reply chan error
}

// tickMsg advances the elapsed time while a run is going.
type tickMsg time.Time

type stepState int

const (
	stepPending stepState = iota
	stepRunning
	stepDone
	stepSkipped
	stepFailed
	// stepLeftOut is a failed step the user chose to skip.
	stepLeftOut
)

// stepRow is one step of the plan as the install screen shows it.
type stepRow struct {
	info   installer.StepInfo
	state  stepState
	took   time.Duration
	reason string
	err    string
	fix    string
	lines  []string
	// applied is true once the step was done in this session: a retry that finds it in place
	// keeps showing it done.
	applied bool
}

// installScreen runs the plan: the step list with each step's state, an overall progress bar,
// the elapsed time and a live tail of the current step's output. A failure shows the fix and
// offers retry, skip (where that is safe) or quit; Ctrl-C asks before stopping.
type installScreen struct {
	c        *common
	rows     []stepRow
	current  int
	running  bool
	finished bool
	runErr   string
	runFix   string
	started  time.Time
	now      time.Time
	took     time.Duration
	attempt  int
	skip     []string
	cancel   context.CancelFunc
	askStop  bool
	stopping bool
	// sudo is true while the terminal belongs to sudo.
	sudo     bool
	spinner  spinner.Model
	progress progress.Model
	w, h     int
}

func newInstallScreen(c *common) installScreen {
	return installScreen{
		c:        c,
		current:  -1,
		spinner:  spinner.New(spinner.WithSpinner(spinner.MiniDot), spinner.WithStyle(c.styles.Running)),
		progress: progress.New(progress.WithDefaultGradient(), progress.WithoutPercentage(), progress.WithColorProfile(lipgloss.ColorProfile())),
	}
}

func (s *installScreen) setSize(w, h int) {
	s.w, s.h = w, h
	// The head line is "✓ Installed (simulated)" (23 cells), two spaces, the bar, " 100%" and
	// "  elapsed 00:00" (20): 45 cells besides the bar.
	s.progress.Width = max(10, min(40, w-45))
}

// enter starts the first run of the reviewed plan.
func (s installScreen) enter() (installScreen, tea.Cmd) {
	s.rows = s.rows[:0]
	for _, in := range s.c.infos {
		s.rows = append(s.rows, stepRow{info: in})
	}
	s.attempt, s.skip, s.current = 0, nil, -1
	var save tea.Cmd
	if c := s.c; c.answersPath == "" && !c.info.Demo && c.info.StateDir != "" {
		// The done screen says where the answers are, so that the setup can be replayed.
		a := c.answers
		save = func() tea.Msg {
			p, err := c.backend.SaveAnswers(filepath.Join(c.info.StateDir, "answers.toml"), a)
			return savedMsg{path: p, err: err}
		}
	}
	s, cmd := s.start()
	return s, tea.Batch(cmd, save)
}

// start runs the plan (again): steps that are done are skipped by the engine itself.
func (s installScreen) start() (installScreen, tea.Cmd) {
	s.attempt++
	s.running, s.finished, s.runErr, s.runFix, s.askStop, s.stopping = true, false, "", "", false, false
	s.started = s.c.now()
	s.now = s.started
	for i := range s.rows {
		if s.rows[i].state == stepFailed || s.rows[i].state == stepRunning {
			s.rows[i].state = stepPending
			if len(s.rows[i].lines) > 0 {
				s.rows[i].lines = append(s.rows[i].lines, fmt.Sprintf("── attempt %d ──", s.attempt))
			}
		}
	}
	ctx, cancel := context.WithCancel(s.c.ctx)
	s.cancel = cancel
	st := newStream()
	c, plan, skip := s.c, s.c.plan, slices.Clone(s.skip)
	c.log.Info("install starts", "attempt", s.attempt, "skip", skip)
	go func() {
		defer st.close()
		defer cancel()
		err := c.backend.Install(ctx, plan, InstallHooks{
			Emit: func(ev installer.Event) { st.send(engineMsg{ev}) },
			RunPrivileged: func(ctx context.Context, path string) error {
				reply := make(chan error, 1)
				st.send(privilegedMsg{path: path, reply: reply})
				select {
				case err := <-reply:
					return err
				case <-ctx.Done():
					return ctx.Err()
				}
			},
			Skip: skip,
		})
		st.send(installDoneMsg{err: err})
	}()
	return s, tea.Batch(listen(st), s.spinner.Tick, s.tick())
}

func (s installScreen) tick() tea.Cmd {
	return tea.Tick(time.Second, func(t time.Time) tea.Msg { return tickMsg(t) })
}

func (s installScreen) row(id string) int {
	for i, r := range s.rows {
		if r.info.ID == id {
			return i
		}
	}
	return -1
}

func (s installScreen) update(msg tea.Msg) (installScreen, tea.Cmd) {
	switch msg := msg.(type) {
	case spinner.TickMsg:
		if !s.running {
			return s, nil
		}
		var cmd tea.Cmd
		s.spinner, cmd = s.spinner.Update(msg)
		return s, cmd
	case tickMsg:
		if !s.running {
			return s, nil
		}
		s.now = s.c.now()
		return s, s.tick()
	case engineMsg:
		s.apply(msg.ev)
		return s, nil
	case installDoneMsg:
		s.running = false
		s.now = s.c.now()
		if !s.finished {
			// The run ended without a finished event: it never started.
			s.finished = true
			if msg.err != nil {
				s.runErr, s.runFix = msg.err.Error(), installer.FixFor(msg.err)
			}
		}
		if s.runErr != "" {
			s.c.log.Warn("install ended with a failure", "err", s.runErr)
		} else {
			s.c.log.Info("install finished", "took", s.took)
		}
		return s, nil
	case privilegedMsg:
		s.sudo = true
		s.c.log.Info("handing the terminal to sudo", "script", msg.path)
		return s, tea.ExecProcess(sudoCommand(msg.path), func(err error) tea.Msg {
			return privilegedDoneMsg{err: err, reply: msg.reply}
		})
	case privilegedDoneMsg:
		s.sudo = false
		s.c.log.Info("sudo returned", "err", msg.err)
		msg.reply <- msg.err
		return s, nil
	case tea.KeyMsg:
		return s.key(msg)
	}
	return s, nil
}

// sudoCommand runs the reviewed script through sudo, telling the user why the screen went away.
func sudoCommand(path string) *exec.Cmd {
	cmd := exec.Command("sh", "-c", `printf '\nvirt-setup: running the reviewed root script with sudo: %s\n\n' "$1"; exec sudo sh -eu "$1"`, "sh", path)
	cmd.Env = os.Environ()
	return cmd
}

// apply folds one engine event into the rows.
func (s *installScreen) apply(ev installer.Event) {
	i := s.row(ev.Step)
	switch ev.Kind {
	case installer.EventStepStarted:
		if i >= 0 {
			s.rows[i].state = stepRunning
			s.current = i
		}
	case installer.EventOutput:
		if i >= 0 {
			s.rows[i].lines = append(s.rows[i].lines, sanitize(ev.Line))
		}
		s.c.log.Debug("output", "step", ev.Step, "line", ev.Line)
	case installer.EventStepDone:
		if i >= 0 {
			s.rows[i].state, s.rows[i].took, s.rows[i].applied = stepDone, ev.Duration, true
		}
	case installer.EventStepSkipped:
		if i >= 0 {
			// A retry finds the steps done a moment ago in place: they stay "done".
			if s.rows[i].applied && (ev.Reason == installer.ReasonEarlierRun || ev.Reason == installer.ReasonInPlace) {
				s.rows[i].state = stepDone
			} else {
				s.rows[i].state, s.rows[i].reason, s.rows[i].took = stepSkipped, ev.Reason, ev.Duration
			}
		}
	case installer.EventStepFailed:
		if i >= 0 {
			s.rows[i].state, s.rows[i].err, s.rows[i].fix, s.rows[i].took = stepFailed, ev.Err, ev.Fix, ev.Duration
			s.current = i
		}
		s.c.log.Warn("step failed", "step", ev.Step, "err", ev.Err, "fix", ev.Fix)
	case installer.EventFinished:
		s.finished, s.runErr, s.runFix = true, ev.Err, ev.Fix
		s.took = ev.Duration
		for j := range s.rows {
			if s.rows[j].state == stepRunning {
				s.rows[j].state = stepPending
			}
		}
	}
	if ev.Kind != installer.EventOutput {
		s.c.log.Info("engine", "kind", ev.Kind, "step", ev.Step, "err", ev.Err)
	}
}

// failedRow is the step the run stopped at, or -1.
func (s installScreen) failedRow() int {
	for i, r := range s.rows {
		if r.state == stepFailed {
			return i
		}
	}
	return -1
}

// skippable reports whether leaving a step out is safe: the verification (the setup is in place
// without it) and the optional add-ons. The core (root preparation, containerd and its config)
// never is, since every later step depends on it.
func skippable(in installer.StepInfo) bool {
	if in.Kind == installer.KindVerify {
		return true
	}
	for _, addOn := range []string{"buildkit", "stargz", "bypass4netns"} {
		if strings.Contains(in.ID, addOn) {
			return true
		}
	}
	return false
}

func (s installScreen) key(km tea.KeyMsg) (installScreen, tea.Cmd) {
	k := s.c.keys
	if s.running {
		switch {
		case s.askStop && key.Matches(km, k.Yes):
			s.askStop, s.stopping = false, true
			s.c.log.Info("install stopped by the user")
			if s.cancel != nil {
				s.cancel()
			}
		case s.askStop && key.Matches(km, k.No):
			s.askStop = false
		case key.Matches(km, k.Interrupt) && !s.stopping:
			s.askStop = true
		}
		return s, nil
	}
	if !s.finished {
		return s, nil
	}
	if s.runErr == "" {
		if key.Matches(km, k.Enter) {
			return s, navigate(screenBench)
		}
		return s, nil
	}
	switch {
	case key.Matches(km, k.Retry):
		return s.start()
	case key.Matches(km, k.Skip):
		if f := s.failedRow(); f >= 0 && skippable(s.rows[f].info) {
			s.rows[f].state = stepLeftOut
			s.skip = append(s.skip, s.rows[f].info.ID)
			return s.start()
		}
	}
	return s, nil
}

func (s installScreen) keys() keyList {
	k := s.c.keys
	switch {
	case s.running && s.askStop:
		return keysOf([]key.Binding{with(k.Yes, "y", "stop the install"), with(k.No, "n", "go on")})
	case s.running:
		return keysOf([]key.Binding{with(k.Interrupt, "ctrl+c", "stop")})
	case s.finished && s.runErr == "":
		return keysOf([]key.Binding{with(k.Enter, "enter", "continue"), k.Quit})
	case s.finished:
		short := []key.Binding{k.Retry}
		if f := s.failedRow(); f >= 0 && skippable(s.rows[f].info) {
			short = append(short, with(k.Skip, "s", "skip this step"))
		}
		return keysOf(append(short, k.Quit))
	}
	return keysOf([]key.Binding{k.Quit})
}

// progressShare is the share of steps that are behind the run (done, skipped or left out).
func (s installScreen) progressShare() float64 {
	if len(s.rows) == 0 {
		return 0
	}
	n := 0
	for _, r := range s.rows {
		if r.state == stepDone || r.state == stepSkipped || r.state == stepLeftOut {
			n++
		}
	}
	return float64(n) / float64(len(s.rows))
}

func (s installScreen) view(w, h int) string {
	st := s.c.styles
	var lines []string
	took := s.now.Sub(s.started)
	if s.finished && s.took > 0 {
		took = s.took
	}
	head := "Installing"
	switch {
	case s.finished && s.runErr == "":
		head = st.OK.Render(glyphOK + " Installed")
	case s.finished && s.stopping:
		head = st.Fail.Render(glyphFail + " Stopped")
	case s.finished:
		head = st.Fail.Render(glyphFail + " Failed")
	case s.stopping:
		head = "Stopping"
	}
	if s.c.info.Demo {
		head += st.Dim.Render(" (simulated)")
	}
	pct := s.progressShare()
	lines = append(lines, fmt.Sprintf("%s  %s %3.0f%%  %s %s", st.Heading.Render(head), s.progress.ViewAs(pct), pct*100,
		st.Label.Render("elapsed"), elapsed(took)))
	lines = append(lines, "")
	for i, r := range s.rows {
		lines = append(lines, truncate(s.stepLine(i, r), w))
	}
	lines = append(lines, "")
	room := h - len(lines)
	switch {
	case s.askStop:
		lines = append(lines, wrap(st.Warn.Render(glyphWarn+" Stop the install?")+" The running step is cancelled; what is done stays done, and running the install again goes on from there.", w, "", "  ")...)
	case s.sudo:
		lines = append(lines, st.Dim.Render("sudo has the terminal…"))
	case s.finished && s.runErr != "":
		lines = append(lines, s.failureLines(w, room)...)
	case s.finished:
		lines = append(lines, st.OK.Render(glyphOK+" ")+"Every step is in place.")
		if room > 2 {
			lines = append(lines, s.tailLines(w, room-2)...)
		}
	default:
		lines = append(lines, s.tailLines(w, room)...)
	}
	return strings.Join(lines, "\n")
}

func (s installScreen) stepLine(i int, r stepRow) string {
	st := s.c.styles
	var state, extra string
	switch r.state {
	case stepPending:
		state = st.Dim.Render(glyphPending + " pending")
	case stepRunning:
		state = s.spinner.View() + st.Running.Render(" running")
	case stepDone:
		state, extra = st.OK.Render(glyphOK+" done   "), shortDur(r.took)
	case stepSkipped:
		state, extra = st.Skip.Render(glyphSkipped+" skipped"), r.reason
	case stepFailed:
		state, extra = st.Fail.Render(glyphFail+" failed "), shortDur(r.took)
	case stepLeftOut:
		state, extra = st.Skip.Render(glyphSkipped+" skipped"), "left out after it failed"
	}
	root := ""
	if r.info.Privileged {
		root = st.Warn.Render(" [root]")
	}
	line := fmt.Sprintf("  %s %2d %s%s", state, i+1, stepTitle(r.info), root)
	if extra != "" {
		line += st.Dim.Render("  " + extra)
	}
	return line
}

// tailLines is the end of the current step's output, as many lines as fit. Only the lines shown
// are touched, so a step with a long log costs no more to draw than a short one.
func (s installScreen) tailLines(w, room int) []string {
	st := s.c.styles
	if room < 2 || s.current < 0 || s.current >= len(s.rows) {
		return nil
	}
	r := s.rows[s.current]
	title := "── output: " + r.info.Title + " "
	out := []string{st.Rule.Render(truncate(title+strings.Repeat("─", max(0, w-lipgloss.Width(title))), w))}
	open, end := styleCodes(st.Dim)
	for _, l := range lastN(r.lines, room-1) {
		out = append(out, open+truncate(l, w)+end)
	}
	return out
}

// failureLines say what failed, the fix, and what the user can do now.
func (s installScreen) failureLines(w, room int) []string {
	st := s.c.styles
	var box []string
	f := s.failedRow()
	errText, fix := s.runErr, s.runFix
	title := "The install stopped"
	if f >= 0 {
		title = fmt.Sprintf("Step %d failed: %s", f+1, s.rows[f].info.Title)
		errText, fix = s.rows[f].err, firstNonEmpty(s.rows[f].fix, s.runFix)
	}
	inner := w - 4
	box = append(box, st.Fail.Render(glyphFail+" ")+st.Heading.Render(truncate(title, inner-2)))
	box = append(box, wrap(errText, inner, st.Label.Render("error: "), "       ")...)
	if fix != "" {
		box = append(box, wrap(fix, inner, st.Label.Render("fix:   "), "       ")...)
	}
	next := "r: retry (steps that are done are skipped)"
	if f >= 0 && skippable(s.rows[f].info) {
		next += " · s: skip this step (the setup works without it)"
	}
	next += " · q: quit (virt-setup uninstall undoes what was done)"
	box = append(box, "")
	box = append(box, wrap(st.Dim.Render(next), inner, "", "")...)
	out := strings.Split(st.ErrorBox.Width(w-2).Render(strings.Join(box, "\n")), "\n")
	if rest := room - len(out); rest > 2 && f >= 0 {
		out = append(out, s.tailLines(w, rest)...)
	}
	return out
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

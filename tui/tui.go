package tui

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/spinner"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/virt-setup/virt-setup/installer"
	"github.com/virt-setup/virt-setup/probe"
)

// screen is where the wizard is.
type screen int

const (
	screenProbe screen = iota
	screenFindings
	screenSnapshotter
	screenAddOns
	screenReview
	screenInstall
	screenBench
	screenDone
)

var screenNames = [...]string{"Probe", "Findings", "Snapshotter", "Add-ons", "Review", "Install", "Benchmark", "Done"}

// String names the screen as the header shows it.
func (s screen) String() string {
	if int(s) < len(screenNames) {
		return screenNames[s]
	}
	return fmt.Sprintf("screen(%d)", int(s))
}

// navMsg moves the wizard to another screen.
type navMsg struct{ to screen }

func navigate(to screen) tea.Cmd { return func() tea.Msg { return navMsg{to} } }

// startMsg starts the probe once the program runs (Init cannot change the model).
type startMsg struct{}

// Options configure the wizard.
type Options struct {
	// Backend does the work; required.
	Backend Backend
	// Context bounds the background work; nil means context.Background().
	Context context.Context
	// Now is the clock (tests fix it); nil means time.Now.
	Now func() time.Time
	// Log receives the wizard's log; it must never be the terminal the wizard draws on. nil discards.
	Log *slog.Logger
	// Start is when the program started, to log the time to the first frame.
	Start time.Time
}

// Outcome is how the wizard ended, for what the command prints after the screen is given back.
type Outcome struct {
	// Screen is the screen the wizard ended on.
	Screen string
	// Installed is true when the install finished without a failure.
	Installed bool
	// Failed is true when the install ended with a failure the user did not get past.
	Failed bool
	// Interrupted is true when the user stopped the wizard with Ctrl-C.
	Interrupted bool
	// Answers are the choices made; AnswersPath is where they were saved ("" if not).
	Answers     installer.Answers
	AnswersPath string
	// Findings are the doctor's results (nil before the probe finished), so that a user who
	// stopped at the findings gets the fixes printed where they can be copied.
	Findings []probe.Result
	// Demo is true when nothing on the host was touched.
	Demo bool
	// LogPath is the wizard's log file.
	LogPath string
}

// Model is the wizard: a state machine of screens over one Backend. It implements tea.Model.
type Model struct {
	c      *common
	screen screen
	help   help.Model
	fatal  error
	out    *Outcome

	probe    probeScreen
	findings findingsScreen
	snap     snapshotterScreen
	addons   addOnsScreen
	review   reviewScreen
	install  installScreen
	bench    benchScreen
	done     doneScreen
}

// New returns the wizard, on the probe screen; Init starts the probe.
func New(opts Options) Model {
	c := &common{
		styles:  DefaultStyles(),
		keys:    DefaultKeyMap(),
		backend: opts.Backend,
		info:    opts.Backend.Info(),
		now:     opts.Now,
		log:     opts.Log,
		ctx:     opts.Context,
		start:   opts.Start,
		width:   80,
		height:  24,
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.ctx == nil {
		c.ctx = context.Background()
	}
	if c.start.IsZero() {
		c.start = c.now()
	}
	m := Model{c: c, screen: screenProbe, help: help.New(), out: &Outcome{}}
	m.help.Styles = c.styles.Help
	m.probe = newProbeScreen(c)
	m.probe.running = true
	m.findings = newFindingsScreen(c)
	m.snap = newSnapshotterScreen(c)
	m.addons = newAddOnsScreen(c)
	m.review = newReviewScreen(c)
	m.install = newInstallScreen(c)
	m.bench = newBenchScreen(c)
	m.done = newDoneScreen(c)
	m.layout()
	return m
}

// Init implements tea.Model.
func (m Model) Init() tea.Cmd {
	return func() tea.Msg { return startMsg{} }
}

// Screen names the screen the wizard shows.
func (m Model) Screen() string { return m.screen.String() }

// Answers returns the choices as they stand.
func (m Model) Answers() installer.Answers { return m.c.answers }

// Outcome says how the wizard ended.
func (m Model) Outcome() Outcome {
	o := *m.out
	o.Screen = m.screen.String()
	o.Answers = m.c.answers
	o.AnswersPath = m.c.answersPath
	o.Demo = m.c.info.Demo
	o.LogPath = m.c.info.LogPath
	if m.c.facts != nil {
		o.Findings = m.c.report.Checks
	}
	o.Installed = m.install.finished && m.install.runErr == ""
	o.Failed = m.install.finished && m.install.runErr != ""
	return o
}

// Update implements tea.Model.
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) { return m.update(msg) }

// update is Update returning the concrete type, so that a batch of queued messages does not box
// the model once per message.
func (m Model) update(msg tea.Msg) (Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.c.width, m.c.height = msg.Width, msg.Height
		m.layout()
		return m, nil
	case batchMsg:
		var cmds []tea.Cmd
		for _, in := range msg.msgs {
			var cmd tea.Cmd
			m, cmd = m.update(in)
			cmds = append(cmds, cmd)
		}
		if msg.more {
			cmds = append(cmds, listen(msg.s))
		}
		return m, tea.Batch(cmds...)
	case startMsg:
		var cmd tea.Cmd
		m.probe, cmd = m.probe.start()
		return m, cmd
	case navMsg:
		return m.goTo(msg.to)
	case spinner.TickMsg:
		// Each spinner ignores the ticks of the others (they carry its ID).
		var c1, c2, c3 tea.Cmd
		m.probe, c1 = m.probe.update(msg)
		m.install, c2 = m.install.update(msg)
		m.bench, c3 = m.bench.update(msg)
		return m, tea.Batch(c1, c2, c3)
	case probeEventMsg, probeDoneMsg:
		var cmd tea.Cmd
		m.probe, cmd = m.probe.update(msg)
		return m, cmd
	case planMsg, savedMsg:
		var cmd tea.Cmd
		m.review, cmd = m.review.update(msg)
		return m, cmd
	case engineMsg, installDoneMsg, privilegedMsg, privilegedDoneMsg, tickMsg:
		var cmd tea.Cmd
		m.install, cmd = m.install.update(msg)
		return m, cmd
	case benchMsg, benchDoneMsg:
		var cmd tea.Cmd
		m.bench, cmd = m.bench.update(msg)
		return m, cmd
	case tea.KeyMsg:
		return m.handleKey(msg)
	}
	return m, nil
}

// handleKey applies the global keys, then hands the key to the screen.
func (m Model) handleKey(msg tea.KeyMsg) (Model, tea.Cmd) {
	k := m.c.keys
	typing := m.screen == screenReview && m.review.saving
	switch {
	case key.Matches(msg, k.Interrupt):
		if m.screen == screenInstall && m.install.running {
			break // the install screen asks first
		}
		m.out.Interrupted = true
		return m.quit()
	case m.fatal != nil:
		if key.Matches(msg, k.Quit) {
			return m.quit()
		}
		return m, nil
	case typing:
	case key.Matches(msg, k.Help):
		m.help.ShowAll = !m.help.ShowAll
		m.layout()
		return m, nil
	case key.Matches(msg, k.Quit) && m.canQuit():
		return m.quit()
	}
	var cmd tea.Cmd
	switch m.screen {
	case screenProbe:
		m.probe, cmd = m.probe.update(msg)
	case screenFindings:
		m.findings, cmd = m.findings.update(msg)
	case screenSnapshotter:
		m.snap, cmd = m.snap.update(msg)
	case screenAddOns:
		m.addons, cmd = m.addons.update(msg)
	case screenReview:
		m.review, cmd = m.review.update(msg)
	case screenInstall:
		m.install, cmd = m.install.update(msg)
	case screenBench:
		m.bench, cmd = m.bench.update(msg)
	case screenDone:
		m.done, cmd = m.done.update(msg)
	}
	return m, cmd
}

// canQuit reports whether q quits: not while a step runs (Ctrl-C asks there), not while a
// question is on the screen.
func (m Model) canQuit() bool {
	switch m.screen {
	case screenInstall:
		return !m.install.running
	case screenReview:
		return !m.review.confirming
	}
	return true
}

func (m Model) quit() (Model, tea.Cmd) {
	m.c.log.Info("wizard ends", "screen", m.screen.String(), "interrupted", m.out.Interrupted)
	return m, tea.Quit
}

// goTo shows another screen and starts what it needs.
func (m Model) goTo(to screen) (Model, tea.Cmd) {
	m.c.log.Info("screen", "from", m.screen.String(), "to", to.String())
	from := m.screen
	m.screen = to
	var cmd tea.Cmd
	switch to {
	case screenProbe:
		if from != screenProbe {
			m.probe, cmd = m.probe.start()
		}
	case screenFindings:
		m.findings = m.findings.enter()
	case screenSnapshotter:
		m.snap = m.snap.enter()
	case screenAddOns:
		m.addons = m.addons.enter()
	case screenReview:
		m.review, cmd = m.review.enter()
	case screenInstall:
		m.install, cmd = m.install.enter()
	case screenBench:
		m.bench, cmd = m.bench.start()
	case screenDone:
		m.done = m.done.enter(m.install, m.bench)
	}
	m.layout()
	return m, cmd
}

// Layout: a header line and a rule above the screen, a rule (carrying notices) and the help below.
const chromeLines = 3

func (m *Model) layout() {
	w := m.c.contentWidth()
	m.help.Width = w
	h := m.bodyHeight()
	m.findings.setSize(w, h)
	m.snap.setSize(w, h)
	m.review.setSize(w, h)
	m.install.setSize(w, h)
}

func (m Model) bodyHeight() int {
	return max(4, m.c.height-chromeLines-lipgloss.Height(m.help.View(m.keys())))
}

// keys is the help of the current screen.
func (m Model) keys() help.KeyMap {
	if m.fatal != nil {
		return keysOf([]key.Binding{m.c.keys.Quit})
	}
	var kl keyList
	switch m.screen {
	case screenProbe:
		kl = m.probe.keys()
	case screenFindings:
		kl = m.findings.keys()
	case screenSnapshotter:
		kl = m.snap.keys()
	case screenAddOns:
		kl = m.addons.keys()
	case screenReview:
		kl = m.review.keys()
	case screenInstall:
		kl = m.install.keys()
	case screenBench:
		kl = m.bench.keys()
	case screenDone:
		kl = m.done.keys()
	}
	// ? is worth showing only when it reveals more.
	if kl.full != nil {
		h := m.c.keys.Help
		if m.help.ShowAll {
			h.SetHelp("?", "fewer keys")
			kl.full[0] = append(kl.full[0][:len(kl.full[0]):len(kl.full[0])], h)
		} else {
			kl.short = append(kl.short[:len(kl.short):len(kl.short)], h)
		}
	}
	return kl
}

// View implements tea.Model.
func (m Model) View() string {
	if !m.c.firstFrame {
		m.c.firstFrame = true
		m.c.log.Info("first frame", "since_start", m.c.now().Sub(m.c.start))
	}
	w := m.c.contentWidth()
	st := m.c.styles
	h := m.bodyHeight()
	var body string
	if m.fatal != nil {
		body = st.ErrorBox.Width(min(w-2, 76)).Render(st.Fail.Render(glyphFail+" error") + "\n\n" + m.fatal.Error() +
			"\n\n" + st.Dim.Render("The log has the details: "+orNone(m.c.info.LogPath)))
	} else {
		switch m.screen {
		case screenProbe:
			body = m.probe.view(w, h)
		case screenFindings:
			body = m.findings.view(w, h)
		case screenSnapshotter:
			body = m.snap.view(w, h)
		case screenAddOns:
			body = m.addons.view(w, h)
		case screenReview:
			body = m.review.view(w, h)
		case screenInstall:
			body = m.install.view(w, h)
		case screenBench:
			body = m.bench.view(w, h)
		case screenDone:
			body = m.done.view(w, h)
		}
	}
	lines := strings.Split(body, "\n")
	if len(lines) > h {
		lines = lines[:h]
	}
	lines = padLines(lines, h)
	var b strings.Builder
	b.WriteString(m.header(w))
	b.WriteByte('\n')
	b.WriteString(st.Rule.Render(strings.Repeat("─", w)))
	b.WriteByte('\n')
	b.WriteString(strings.Join(lines, "\n"))
	b.WriteByte('\n')
	b.WriteString(m.footerRule(w))
	b.WriteByte('\n')
	b.WriteString(m.help.View(m.keys()))
	return b.String()
}

// header is "virt-setup [DEMO] host … step n/8 Name".
func (m Model) header(w int) string {
	st := m.c.styles
	left := st.Title.Render("virt-setup")
	if m.c.info.Demo {
		left += " " + st.Badge.Render("DEMO")
	}
	left += " " + st.Crumb.Render(m.c.info.Host)
	right := st.Crumb.Render(fmt.Sprintf("%d/%d ", int(m.screen)+1, len(screenNames))) + st.Heading.Render(m.screen.String())
	gap := w - lipgloss.Width(left) - lipgloss.Width(right)
	if gap < 1 {
		left = truncate(left, max(0, w-lipgloss.Width(right)-1))
		gap = max(1, w-lipgloss.Width(left)-lipgloss.Width(right))
	}
	return left + strings.Repeat(" ", gap) + right
}

// footerRule is the rule above the help, carrying the screen's notice when it has one.
func (m Model) footerRule(w int) string {
	st := m.c.styles
	notice := ""
	switch m.screen {
	case screenReview:
		notice = m.review.notice
	case screenSnapshotter:
		notice = m.snap.notice
	case screenAddOns:
		notice = m.addons.notice
	}
	if notice == "" {
		return st.Rule.Render(strings.Repeat("─", w))
	}
	notice = truncate(notice, w-4)
	return st.Rule.Render("── ") + st.Status.Render(notice) + " " + st.Rule.Render(strings.Repeat("─", max(0, w-lipgloss.Width(notice)-4)))
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

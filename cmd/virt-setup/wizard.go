package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/virt-setup/virt-setup/installer"
	"github.com/virt-setup/virt-setup/probe"
	"github.com/virt-setup/virt-setup/tui"
)

// wizardOptions are the inputs of `virt-setup` without a subcommand: the wizard.
type wizardOptions struct {
	streams
	Plain       bool
	Demo        bool
	HostProfile string
	// isTerminal reports whether a stream is a terminal; tests replace it.
	isTerminal func(any) bool
	getenv     func(string) string
}

func (o *wizardOptions) addFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&o.Plain, "plain", false, "plain lines and prompts instead of the full-screen wizard (also without a terminal, or with TERM=dumb)")
	fs.BoolVar(&o.Demo, "demo", false, "run the whole wizard against a recorded host with a simulated install: nothing on this host is touched")
	fs.StringVar(&o.HostProfile, "host-profile", "", "with --demo: the recorded host to show ("+tui.DefaultDemoProfile+" by default; see 'virt-setup probe --help')")
}

// wizardMode is how the wizard talks to the user.
type wizardMode int

const (
	modeTUI wizardMode = iota
	modePlain
)

// mode picks the full-screen wizard only when both ends are a terminal that can draw it.
func (o *wizardOptions) mode() wizardMode {
	isTerm := o.isTerminal
	if isTerm == nil {
		isTerm = isTerminalStream
	}
	if o.Plain || o.env("TERM") == "dumb" || !isTerm(o.In) || !isTerm(o.Out) {
		return modePlain
	}
	return modeTUI
}

func (o *wizardOptions) env(key string) string {
	if o.getenv != nil {
		return o.getenv(key)
	}
	return os.Getenv(key)
}

func isTerminalStream(s any) bool {
	f, ok := s.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func (o *wizardOptions) validate() error {
	if o.HostProfile != "" && !o.Demo {
		return usageError{errors.New("--host-profile needs --demo: the wizard installs on this host, so it cannot take another host's facts (try 'virt-setup --demo --host-profile " + o.HostProfile + "', or 'virt-setup doctor --host-profile " + o.HostProfile + "')")}
	}
	return nil
}

// wizardRun runs the wizard (or its plain flow) and turns its outcome into an exit status.
func wizardRun(ctx context.Context, o *wizardOptions) error {
	start := time.Now()
	if err := o.validate(); err != nil {
		return err
	}
	logger, logPath, closeLog := openWizardLog(o.Demo)
	defer closeLog()
	logger.Info("virt-setup starts", "version", version, "demo", o.Demo, "profile", o.HostProfile)

	backend, err := o.backend(logPath)
	if err != nil {
		return err
	}
	var out tui.Outcome
	if o.mode() == modePlain {
		out, err = o.runPlain(ctx, backend, logger)
	} else {
		out, err = o.runTUI(ctx, backend, logger, start)
	}
	logger.Info("virt-setup ends", "outcome", fmt.Sprintf("%+v", out.Screen), "installed", out.Installed, "err", err)
	switch {
	case out.Interrupted || ctx.Err() != nil:
		return &exitCodeError{code: exitAborted}
	case err != nil:
		return err
	case out.Failed:
		return &exitCodeError{code: exitError}
	}
	return nil
}

// demoPaceEnv scales the demo's recorded pace (0.5 plays twice as fast, 0 does not wait): for a
// talk with little time, and for tests.
const demoPaceEnv = "VIRT_SETUP_DEMO_PACE"

// backend is the demo's simulated one or this host's.
func (o *wizardOptions) backend(logPath string) (tui.Backend, error) {
	if o.Demo {
		pace := 1.0
		if v := o.env(demoPaceEnv); v != "" {
			p, err := strconv.ParseFloat(v, 64)
			if err != nil || p < 0 {
				return nil, usageError{fmt.Errorf("%s=%q: want a number of 0 or more (1 is the recorded pace)", demoPaceEnv, v)}
			}
			pace = p
		}
		return tui.NewDemoBackend(tui.DemoOptions{Profile: o.HostProfile, Pace: pace})
	}
	rt := newRuntime()
	return tui.NewHostBackend(tui.HostOptions{Version: version, Runtime: rt, LogPath: logPath, Bench: wizardBench(rt)}), nil
}

// runTUI runs the full-screen wizard, then prints what should outlive the screen.
func (o *wizardOptions) runTUI(ctx context.Context, backend tui.Backend, logger *slog.Logger, start time.Time) (tui.Outcome, error) {
	m := tui.New(tui.Options{Backend: backend, Context: ctx, Log: logger, Start: start})
	p := tea.NewProgram(m, tea.WithAltScreen(), tea.WithContext(ctx), tea.WithInput(o.In), tea.WithOutput(o.Out))
	final, err := p.Run()
	var out tui.Outcome
	if fm, ok := final.(tui.Model); ok {
		out = fm.Outcome()
	}
	if err != nil && !errors.Is(err, tea.ErrProgramKilled) {
		return out, fmt.Errorf("run the wizard: %w", err)
	}
	o.printAfter(out)
	return out, nil
}

// printAfter writes what the screen showed that is worth keeping in the scrollback: the fixes of
// a user who stopped at the findings (there they can be copied whole), or where things are.
func (o *wizardOptions) printAfter(out tui.Outcome) {
	st := newStyles(o.Out)
	w := o.Out
	if !out.Installed && !out.Failed {
		shown := 0
		for _, want := range []probe.Status{probe.StatusFail, probe.StatusWarn} {
			for _, r := range out.Findings {
				if r.Status == want {
					if shown == 0 {
						fmt.Fprintf(w, "%s\n\n", st.heading.Render("What the wizard found (fixes below can be copied):"))
					}
					renderResult(w, r, st)
					shown++
				}
			}
		}
		if shown > 0 || out.Interrupted {
			fmt.Fprintln(w, "Nothing was installed. Run virt-setup again when you are ready.")
		}
	}
	if out.Installed {
		if out.Demo {
			fmt.Fprintf(w, "%s demo finished; nothing on this host was changed.\n", st.ok.Render("✓"))
		} else {
			fmt.Fprintf(w, "%s rootless containerd is set up (%s).\n", st.ok.Render("✓"), out.Answers.Snapshotter)
		}
	}
	if out.Failed {
		fmt.Fprintf(w, "%s the install did not finish; run virt-setup again to go on, or virt-setup uninstall to undo it.\n", st.fail.Render("✗"))
	}
	if out.AnswersPath != "" {
		fmt.Fprintf(w, "  answers: %s (replay: virt-setup install --answers %s)\n", out.AnswersPath, out.AnswersPath)
	}
	if out.LogPath != "" && (out.Installed || out.Failed) {
		fmt.Fprintf(w, "  log:     %s\n", out.LogPath)
	}
}

// runPlain runs the same flow as lines and prompts.
func (o *wizardOptions) runPlain(ctx context.Context, backend tui.Backend, logger *slog.Logger) (tui.Outcome, error) {
	st := newStyles(o.Out)
	po := tui.PlainOptions{
		Backend:       backend,
		In:            o.In,
		Out:           o.Out,
		RenderEvent:   newEventPrinter(o.Out, st).Emit,
		RenderPlan:    func(p *installer.Plan) { renderPlan(o.Out, p, "your answers", st) },
		RenderFinding: func(r probe.Result) { renderResult(o.Out, r, st) },
		Log:           logger,
	}
	if !o.Demo {
		po.RunPrivileged = sudoRunner(o.streams)
	}
	return tui.RunPlain(ctx, po)
}

// openWizardLog opens $XDG_STATE_HOME/virt-setup/virt-setup.log: the wizard owns the terminal, so
// its log goes to a file. The demo writes nothing, and a log that cannot be opened is no reason
// to stop (glow does the same): the wizard then logs nowhere.
func openWizardLog(demo bool) (*slog.Logger, string, func()) {
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	if demo {
		return discard, "", func() {}
	}
	home, _ := os.UserHomeDir()
	dir := installer.PathsFromEnv(os.Getenv, home).VirtSetupState()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return discard, "", func() {}
	}
	path := filepath.Join(dir, "virt-setup.log")
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return discard, "", func() {}
	}
	return slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug})), path, func() { f.Close() }
}

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/virt-setup/virt-setup/installer"
)

// installOptions are the inputs of `virt-setup install`.
type installOptions struct {
	streams
	Answers    string
	Yes        bool
	DryRun     bool
	Sudo       bool
	JSONEvents bool
}

func newInstallCmd(s streams) *cobra.Command {
	opts := &installOptions{streams: s}
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Set up rootless containerd: show the plan, then apply it with live progress and verify it",
		Long: `install builds the plan (see 'virt-setup plan'), shows it, asks before changing anything, then
runs it step by step: each step checks first and skips what is already in place, so a second run
changes nothing. Every file is written atomically after a backup, and a journal under
$XDG_STATE_HOME/virt-setup records what was done: a run that died resumes from it, and
'virt-setup uninstall' undoes exactly it. Steps that need root are gathered into one script that
runs only with your consent (--sudo runs it through sudo with this terminal).

Exit status: 0 installed and verified, 1 failed, 2 usage, 3 the root script must run first
(it was saved; the message says where), 130 interrupted.`,
		Example: `  virt-setup install
  virt-setup install --dry-run
  virt-setup install --yes --answers answers.toml --sudo`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return installRun(c.Context(), opts) },
	}
	cmd.Flags().StringVar(&opts.Answers, "answers", "", "answers file (default: the recommendation for this host)")
	cmd.Flags().BoolVarP(&opts.Yes, "yes", "y", false, "do not ask for confirmation (needed without a terminal)")
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "show the plan and change nothing (same as 'virt-setup plan')")
	cmd.Flags().BoolVar(&opts.Sudo, "sudo", false, "run the reviewed root script through sudo when the plan needs it")
	cmd.Flags().BoolVar(&opts.JSONEvents, "json-events", false, "print the engine's events as JSON lines instead of text")
	return cmd
}

func installRun(ctx context.Context, opts *installOptions) error {
	rt := newRuntime()
	plan, _, source, err := livePlan(ctx, opts.Answers, rt)
	if err != nil {
		return err
	}
	st := newStyles(opts.Out)
	if opts.DryRun {
		renderPlan(opts.Out, plan, source, st)
		return nil
	}
	if !opts.Yes {
		f, ok := opts.In.(*os.File)
		if !ok || !term.IsTerminal(int(f.Fd())) {
			return usageError{errors.New("no terminal to confirm on: review the plan with 'virt-setup plan', then run 'virt-setup install --yes'")}
		}
		renderPlan(opts.Out, plan, source, st)
		fmt.Fprint(opts.Out, "\nApply this plan? [y/N] ")
		line, _ := bufio.NewReader(opts.In).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
			fmt.Fprintln(opts.Out, "Nothing was changed.")
			return nil
		}
	}
	if opts.Sudo {
		s := opts.streams
		if opts.JSONEvents {
			// Standard output carries only events; the script's own lines go to standard error.
			s.Out = s.ErrOut
		}
		rt.RunPrivileged = sudoRunner(s)
	}
	emit := eventRenderer(opts.Out, st, opts.JSONEvents)
	rt.Output = nil // the engine routes step output into events
	err = installer.Run(ctx, plan, rt, installer.RunOptions{Emit: emit, Resume: true})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, installer.ErrNeedsPrivilege):
		return &exitCodeError{code: exitNeedsPrivilege}
	case errors.Is(err, context.Canceled):
		return &exitCodeError{code: exitAborted}
	}
	// The renderer has shown the failure and its fix.
	return &exitCodeError{code: exitError}
}

func newUninstallCmd(s streams) *cobra.Command {
	var dryRun, purge, jsonEvents bool
	cmd := &cobra.Command{
		Use:   "uninstall",
		Short: "Undo exactly what install did, from its journal",
		Long: `uninstall reads the journal virt-setup keeps under $XDG_STATE_HOME/virt-setup and undoes every step it
applied, newest first: services stopped, units removed, files restored byte for byte from their
backups (or removed, when virt-setup created them). Images and containers in the data directories
are kept unless --purge. Changes made as root are left in place and listed.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			rt := newRuntime()
			j, err := installer.LoadJournal(installer.JournalPath(rt.Paths))
			if err != nil {
				return err
			}
			undoer := currentStepBuilder(c.Context(), rt, j)
			err = installer.Uninstall(c.Context(), rt, j, installer.UninstallOptions{
				DryRun: dryRun, Purge: purge, Undoer: undoer,
				Emit: eventRenderer(s.Out, newStyles(s.Out), jsonEvents),
			})
			if err != nil {
				return &exitCodeError{code: exitError}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show what would be undone and change nothing")
	cmd.Flags().BoolVar(&purge, "purge", false, "also remove images, containers and caches (the data directories)")
	cmd.Flags().BoolVar(&jsonEvents, "json-events", false, "print events as JSON lines")
	return cmd
}

// currentStepBuilder rebuilds the plan of the journal's last answers, so uninstall can use each
// step's own Undo; when the plan cannot be rebuilt (binaries gone), the journal's records suffice.
func currentStepBuilder(ctx context.Context, rt *installer.Runtime, j *installer.Journal) func(string) (installer.Step, bool) {
	a, ok := lastAnswers(j)
	if !ok {
		return nil
	}
	f, err := probeForInstaller(ctx)
	if err != nil {
		return nil
	}
	plan, err := installer.BuildPlan(installer.PlanInput{Facts: f, Answers: a, Runtime: rt})
	if err != nil {
		return nil
	}
	return func(id string) (installer.Step, bool) {
		for _, s := range plan.Steps {
			if s.Info().ID == id {
				return s, true
			}
		}
		return nil, false
	}
}

func newVerifyCmd(s streams) *cobra.Command {
	var snapshotter string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check the running rootless containerd with its own client: version, snapshotter, a container run",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			rt := newRuntime()
			opts := installer.VerifyOptions{Snapshotter: snapshotter}
			if j, err := installer.LoadJournal(installer.JournalPath(rt.Paths)); err == nil {
				if a, ok := lastAnswers(j); ok {
					if opts.Snapshotter == "" {
						opts.Snapshotter = a.Snapshotter
					}
					opts.ServiceMode = a.ServiceMode
					opts.LogPath = installer.ContainerdLogHint(a, rt.Paths)
				}
			}
			if opts.Snapshotter == "" {
				opts.Snapshotter = "overlayfs"
			}
			rt.Output = func(l string) {
				if !asJSON {
					fmt.Fprintln(s.Out, l)
				}
			}
			rep, err := installer.Verify(c.Context(), rt, opts)
			if asJSON {
				if jerr := writeJSON(s.Out, rep); jerr != nil {
					return jerr
				}
			}
			if err != nil {
				if !asJSON {
					fmt.Fprintf(s.ErrOut, "verify failed: %v\n", err)
					if fix := installer.FixFor(err); fix != "" {
						fmt.Fprintf(s.ErrOut, "fix: %s\n", fix)
					}
				}
				return &exitCodeError{code: exitError}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&snapshotter, "snapshotter", "", "snapshotter to verify (default: the installed one)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the verification report as JSON")
	return cmd
}

func newStartStopCmd(s streams, start bool) *cobra.Command {
	use, short := "stop", "Stop the rootless stack virt-setup started (direct service mode)"
	if start {
		use, short = "start", "Start the rootless stack again after a reboot or a stop (direct service mode)"
	}
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			rt := newRuntime()
			rt.Output = func(l string) { fmt.Fprintln(s.Out, l) }
			j, err := installer.LoadJournal(installer.JournalPath(rt.Paths))
			if err != nil {
				return err
			}
			a, ok := lastAnswers(j)
			if !ok {
				return errors.New("nothing installed yet: run virt-setup install first")
			}
			if a.ServiceMode != "direct" {
				return usageError{fmt.Errorf("this setup runs as systemd user units: use systemctl --user %s containerd.service", use)}
			}
			f, err := probeForInstaller(c.Context())
			if err != nil {
				return err
			}
			svcs, err := installer.DirectServices(a, rt, installer.InstalledBinaries(f))
			if err != nil {
				return err
			}
			if start {
				return installer.StartDirect(c.Context(), rt, svcs)
			}
			return installer.StopDirect(c.Context(), rt, svcs)
		},
	}
}

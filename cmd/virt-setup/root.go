package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/virt-setup/virt-setup/installer"
	"github.com/virt-setup/virt-setup/probe"
)

// Exit codes; README.md documents them and scripts may rely on them.
const (
	exitOK       = 0
	exitError    = 1
	exitUsage    = 2
	exitFailures = 3 // the doctor found at least one failing check
	exitWarnings = 4 // the doctor found warnings only
	exitAborted  = 130
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// streams are the standard streams a command writes to; tests pass buffers.
type streams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
}

// exitError carries a chosen exit code through cobra without printing anything more.
type exitCodeError struct{ code int }

// Error implements error.
func (e *exitCodeError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// Main runs virt-setup with args and returns the process exit code. It is main() without os.Exit, so
// tests can call it in-process.
func Main(args []string, in io.Reader, out, errOut io.Writer) int {
	// The live capability tests re-execute this binary inside a new user namespace; that child must
	// do its one job before anything else runs.
	if code, ran := probe.RunLiveHelper(); ran {
		return code
	}
	// verify re-executes this binary inside RootlessKit's namespaces, as nerdctl does.
	if code, ran := installer.RunVerifyHelper(); ran {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	s := streams{In: in, Out: out, ErrOut: errOut}
	root := newRootCmd(s)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var ec *exitCodeError
	if errors.As(err, &ec) {
		return ec.code
	}
	if ctx.Err() != nil {
		fmt.Fprintln(errOut, "virt-setup: interrupted")
		return exitAborted
	}
	fmt.Fprintf(errOut, "virt-setup: %v\n", err)
	var ue *probe.UsageError
	if errors.As(err, &ue) || isFlagError(err) {
		return exitUsage
	}
	return exitError
}

// usageError marks an error in how the command was called (exit status 2).
type usageError struct{ error }

func isFlagError(err error) bool {
	var ue usageError
	return errors.As(err, &ue)
}

func newRootCmd(s streams) *cobra.Command {
	wizard := &wizardOptions{streams: s}
	root := &cobra.Command{
		Use:   "virt-setup",
		Short: "Set up rootless containerd + nerdctl, and find out why it does not work",
		Long: `virt-setup looks at this host, tells you what a rootless containerd + nerdctl setup needs and
what stands in its way, and recommends a setup (snapshotter, RootlessKit network) with the evidence
behind every recommendation.

Run it without a command for the wizard: it probes the host, shows the findings, lets you choose
the snapshotter and add-ons, shows the plan, installs and benchmarks. Or start with:  virt-setup doctor`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
		// Without a subcommand: the wizard on a terminal, its plain flow otherwise.
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return wizardRun(c.Context(), wizard) },
	}
	wizard.addFlags(root.Flags())
	root.SetOut(s.Out)
	root.SetErr(s.ErrOut)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w (see '%s --help')", err, c.CommandPath())}
	})
	root.AddCommand(
		newProbeCmd(s, nil),
		newDoctorCmd(s, nil),
		newExplainCmd(s),
		newValidateCmd(s),
		newPlanCmd(s),
		newInstallCmd(s),
		newUninstallCmd(s),
		newVerifyCmd(s),
		newStartStopCmd(s, true),
		newStartStopCmd(s, false),
		newBenchCmd(s),
	)
	return root
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/virt-setup/virt-setup/installer/bench"
	"github.com/virt-setup/virt-setup/probe"
)

// benchOptions are the inputs of `virt-setup bench`.
type benchOptions struct {
	streams
	JSON         bool
	Duration     time.Duration
	Omit         time.Duration
	Parallel     int
	Scenarios    []string
	Baseline     string
	SaveBaseline bool
	Image        string
	Pull         bool
	Port         int
	HostAddress  string
}

func newBenchCmd(s streams) *cobra.Command {
	opts := &benchOptions{streams: s}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure container networking with iperf3, with and without bypass4netns",
		Long: `bench measures what rootless networking costs on this machine, the way nerdctl's documentation
does: iperf3 from a container to the host and from the host into a container (through a published
port), each without and with bypass4netns, and the host's own loopback as the ceiling. Every interval
is shown as iperf3 reports it; each result is iperf3's own summary (what the receiver got).

The containers run an image built from this host's iperf3 (no registry needed), unless --image names
another; that one is pulled only with --pull. Containers reach the host at one of its non-loopback
addresses (RootlessKit disables host loopback). Everything the benchmark starts is stopped and
removed when it ends, fails or is interrupted.

A scenario that needs bypass4netns is skipped, with the fix, when bypass4netnsd is not running; when
you name it with --scenario it fails instead. --save-baseline keeps the results under
$XDG_STATE_HOME/virt-setup/bench-baseline.json; later runs show the change against it.

Scenarios: ` + strings.Join(bench.ScenarioIDs(), ", ") + `.

Exit status: 0 every scenario ran or was skipped, 1 a scenario or the setup failed, 2 usage,
130 interrupted.`,
		Example: `  virt-setup bench
  virt-setup bench --duration 10s --parallel 4 --save-baseline
  virt-setup bench --scenario container-to-host,container-to-host-bypass4netns --json`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError{fmt.Errorf("bench takes no arguments, got %q; name scenarios with --scenario (see 'virt-setup bench --help')", args)}
			}
			return nil
		},
		RunE: func(c *cobra.Command, _ []string) error { return benchRun(c.Context(), opts) },
	}
	f := cmd.Flags()
	f.BoolVar(&opts.JSON, "json", false, "print the report as JSON instead of lines and a table")
	f.DurationVar(&opts.Duration, "duration", bench.DefaultSeconds*time.Second, "length of each test, in whole seconds (iperf3 -t)")
	f.DurationVar(&opts.Omit, "omit", bench.DefaultOmit*time.Second, "warm-up left out of each result, in whole seconds (iperf3 -O)")
	f.IntVarP(&opts.Parallel, "parallel", "P", 1, "parallel streams (iperf3 -P)")
	f.StringSliceVar(&opts.Scenarios, "scenario", nil, "scenarios to run, comma-separated or repeated (default all)")
	f.StringVar(&opts.Baseline, "baseline", "", "compare with this report (default: the saved baseline, when there is one)")
	f.BoolVar(&opts.SaveBaseline, "save-baseline", false, "save this run as the baseline later runs compare with")
	f.StringVar(&opts.Image, "image", "", "image with iperf3 for the containers (default: built from this host's iperf3)")
	f.BoolVar(&opts.Pull, "pull", false, "pull --image when it is not there (the benchmark never pulls otherwise)")
	f.IntVar(&opts.Port, "port", 0, "TCP port for every scenario (default: a free one for each)")
	f.StringVar(&opts.HostAddress, "host-address", "", "this host's address the containers send to (default: the first non-loopback one)")
	return cmd
}

func benchRun(ctx context.Context, opts *benchOptions) error {
	scenarios, err := bench.ParseScenarios(opts.Scenarios)
	if err != nil {
		return usageError{err}
	}
	seconds, err := wholeSeconds("--duration", opts.Duration, 1)
	if err != nil {
		return err
	}
	omit, err := wholeSeconds("--omit", opts.Omit, 0)
	if err != nil {
		return err
	}
	if opts.Pull && opts.Image == "" {
		return usageError{errors.New("--pull needs --image: the default image is built from this host's iperf3, never pulled")}
	}
	var hostAddr netip.Addr
	if opts.HostAddress != "" {
		if hostAddr, err = netip.ParseAddr(opts.HostAddress); err != nil {
			return usageError{fmt.Errorf("--host-address: %w", err)}
		}
	}
	rt := newRuntime()
	baselinePath := bench.BaselinePath(rt.Paths.StateHome)
	base, baseFrom, err := loadBenchBaseline(opts.Baseline, baselinePath)
	if err != nil {
		return err
	}

	bo := bench.Options{
		Runner: rt.Runner, RuntimeDir: rt.Paths.RuntimeDir,
		Scenarios: scenarios, Chosen: namesScenarios(opts.Scenarios),
		Seconds: seconds, Omit: omit, Parallel: opts.Parallel,
		Image: opts.Image, Pull: opts.Pull, Port: opts.Port, HostAddress: hostAddr,
	}
	if wantsBypass4netns(scenarios) {
		bo.Bypass4netnsFlags, bo.Bypass4netnsUnusable = bypass4netnsFlags(ctx)
	}
	if !opts.JSON {
		bo.Emit = (&bench.LinePrinter{W: opts.Out, Baseline: base}).Emit
	}
	report, runErr := bench.Run(ctx, bo)
	if report != nil && base != nil {
		report.Compare(base, baseFrom)
	}
	if err := writeBenchReport(opts, report); err != nil {
		return err
	}
	if runErr == nil && opts.SaveBaseline {
		if err := bench.SaveBaseline(baselinePath, report); err != nil {
			return err
		}
		if !opts.JSON {
			fmt.Fprintf(opts.Out, "Saved as the baseline: %s\n", baselinePath)
		}
	}
	switch {
	case runErr == nil:
		return nil
	case ctx.Err() != nil:
		return &exitCodeError{code: exitAborted}
	case report == nil:
		// The options were refused before anything ran.
		return usageError{runErr}
	}
	if opts.JSON {
		// The lines have shown the failure and its fix; JSON readers get them on stderr.
		fmt.Fprintf(opts.ErrOut, "virt-setup: %v\n", runErr)
		if fix := bench.FixFor(runErr); fix != "" {
			fmt.Fprintf(opts.ErrOut, "fix: %s\n", fix)
		}
	}
	if opts.SaveBaseline {
		fmt.Fprintln(opts.ErrOut, "The baseline was not saved: the run did not complete.")
	}
	return &exitCodeError{code: exitError}
}

// wholeSeconds converts a duration flag to the whole seconds iperf3 takes.
func wholeSeconds(flag string, d time.Duration, least int) (int, error) {
	if d%time.Second != 0 || d < time.Duration(least)*time.Second {
		return 0, usageError{fmt.Errorf("%s %s: give whole seconds, at least %ds (iperf3 counts in seconds)", flag, d, least)}
	}
	return int(d / time.Second), nil
}

// loadBenchBaseline reads the baseline to compare with: the file named with --baseline (which
// must exist), or the saved one when there is one.
func loadBenchBaseline(named, saved string) (*bench.Report, string, error) {
	path := named
	if path == "" {
		path = saved
	}
	base, err := bench.LoadBaseline(path)
	switch {
	case err == nil:
		return base, path, nil
	case named == "" && errors.Is(err, bench.ErrNoBaseline):
		return nil, "", nil
	case errors.Is(err, bench.ErrNoBaseline):
		return nil, "", usageError{fmt.Errorf("--baseline: %w", err)}
	}
	return nil, "", err
}

// namesScenarios tells whether the user named scenarios rather than leaving the choice to "all"
// (the default): a named scenario that cannot run is a failure, not a skip.
func namesScenarios(values []string) bool {
	for _, v := range values {
		for _, name := range strings.Split(v, ",") {
			if n := strings.TrimSpace(name); n != "" && n != "all" {
				return true
			}
		}
	}
	return false
}

func wantsBypass4netns(scenarios []bench.Scenario) bool {
	for _, s := range scenarios {
		if s.Bypass4netns {
			return true
		}
	}
	return false
}

// bypass4netnsFlags asks the recommendation how the installed nerdctl opts a container into
// bypass4netns (an annotation since 2.0, a label before), and why it cannot when it cannot.
func bypass4netnsFlags(ctx context.Context) ([]string, string) {
	f, err := probeForInstaller(ctx)
	if err != nil {
		return nil, "cannot tell which nerdctl is installed: " + err.Error()
	}
	b := probe.Recommend(f).AddOns.Bypass4netns
	if b.Flag != "" {
		return strings.Fields(b.Flag), ""
	}
	var why []string
	for _, r := range b.Reasons {
		why = append(why, r.Text)
	}
	return nil, strings.Join(why, "; ")
}

// writeBenchReport prints the report: as JSON, or as the table after the live lines.
func writeBenchReport(opts *benchOptions, report *bench.Report) error {
	if report == nil {
		return nil
	}
	if opts.JSON {
		return writeBenchJSON(opts.Out, report)
	}
	if len(report.Results) == 0 {
		return nil
	}
	fmt.Fprintln(opts.Out)
	return bench.WriteTable(opts.Out, report)
}

func writeBenchJSON(w io.Writer, report *bench.Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(report); err != nil {
		return fmt.Errorf("write the report: %w", err)
	}
	return nil
}

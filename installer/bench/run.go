package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/virt-setup/virt-setup/internal/sys"
)

// Limits of the settings: a test shorter than a second has no interval to show, and iperf3 takes
// -t and -O in whole seconds (older versions spin on fractions); 128 is iperf3's stream maximum.
const (
	MaxSeconds  = 3600
	MaxParallel = 128
)

// Defaults of Options.
const (
	DefaultSeconds = 5
	// DefaultOmit leaves out the first second, TCP's slow start, which on a short test would
	// otherwise weigh on the result and make runs differ.
	DefaultOmit = 1
)

// Options configure a benchmark run.
type Options struct {
	// Runner runs nerdctl and iperf3 (sys.Exec; a sys.Stub in tests).
	Runner sys.Runner
	// Env, when set, is the environment of every command; nil inherits virt-setup's.
	Env []string
	// RuntimeDir is $XDG_RUNTIME_DIR, where bypass4netnsd listens.
	RuntimeDir string
	// Nerdctl and Iperf3 are the programs, "nerdctl" and "iperf3" (looked up on PATH) by default.
	Nerdctl, Iperf3 string
	// Scenarios to run, in order; nil runs all.
	Scenarios []Scenario
	// Chosen is true when the user named the scenarios. A chosen scenario that cannot run is a
	// failure; one that only came with "all" is skipped with the reason and the fix, so that a
	// plain `virt-setup bench` on a host without bypass4netnsd still measures the rest.
	Chosen bool
	// Seconds is each test's length (iperf3 -t; 0 means DefaultSeconds), Omit the warm-up left
	// out before it (-O; 0 means none, front ends offer DefaultOmit), Parallel the number of
	// streams (-P; 0 means one).
	Seconds, Omit, Parallel int
	// Bypass4netnsFlags are the `nerdctl run` arguments that turn bypass4netns on for the
	// installed nerdctl (probe.Recommend's Bypass4netns.Flag, split into words).
	Bypass4netnsFlags []string
	// Bypass4netnsUnusable says why bypass4netns cannot run on this host at all ("" when it can).
	Bypass4netnsUnusable string
	// Image is the image with iperf3 the containers run; "" builds one from the host's iperf3.
	// Pull pulls Image when rootless containerd does not have it (never otherwise).
	Image string
	Pull  bool
	// HostAddress is the host address containers send to; the zero value picks one of the
	// host's (PickHostAddress).
	HostAddress netip.Addr
	// Interfaces lists the host's interfaces; nil means HostInterfaces.
	Interfaces func() ([]Interface, error)
	// Port, when set, is the port every scenario uses; 0 picks a free one for each.
	Port int
	// Emit receives the events. It is never called concurrently.
	Emit func(Event)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// bench is one run.
type bench struct {
	opts          Options
	runID         string
	iperf3Path    string
	iperf3Version string
	image         string
	hostAddr      netip.Addr
	emitMu        sync.Mutex
	// index is the running scenario's place (1-based), for its sample events.
	index int
}

// Run runs the benchmark: it checks for iperf3, prepares the image when a scenario needs a
// container, runs each scenario in turn and reports every step as an event. The report holds
// every scenario that ran. The error is non-nil when the run could not start, a scenario failed
// (the first failure, with its fix) or ctx was cancelled; whatever happens, every container and
// process the run started is stopped and removed before Run returns.
func Run(ctx context.Context, opts Options) (*Report, error) {
	b, err := newBench(opts)
	if err != nil {
		return nil, err
	}
	report := &Report{
		SchemaVersion: ReportSchemaVersion,
		Started:       b.opts.Now(),
		Seconds:       float64(b.opts.Seconds),
		Omit:          float64(b.opts.Omit),
		Parallel:      b.opts.Parallel,
	}
	b.emit(Event{Kind: EventStarted, Total: len(b.opts.Scenarios)})
	err = b.run(ctx, report)
	finished := Event{Kind: EventFinished, Report: report}
	if err != nil {
		finished.Err, finished.Fix = err.Error(), FixFor(err)
		if ctx.Err() != nil {
			finished.Err = "interrupted: " + finished.Err
		}
	}
	b.emit(finished)
	return report, err
}

func newBench(opts Options) (*bench, error) {
	if opts.Runner == nil {
		opts.Runner = sys.Exec{}
	}
	if opts.Nerdctl == "" {
		opts.Nerdctl = "nerdctl"
	}
	if opts.Iperf3 == "" {
		opts.Iperf3 = "iperf3"
	}
	if opts.Scenarios == nil {
		opts.Scenarios = Scenarios
	}
	if opts.Seconds == 0 {
		opts.Seconds = DefaultSeconds
	}
	if opts.Parallel == 0 {
		opts.Parallel = 1
	}
	if opts.Interfaces == nil {
		opts.Interfaces = HostInterfaces
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	switch {
	case opts.Seconds < 1 || opts.Seconds > MaxSeconds:
		return nil, fmt.Errorf("test length %d s: must be 1 to %d seconds", opts.Seconds, MaxSeconds)
	case opts.Omit < 0 || opts.Omit > MaxSeconds:
		return nil, fmt.Errorf("warm-up %d s: must be 0 to %d seconds", opts.Omit, MaxSeconds)
	case opts.Parallel < 1 || opts.Parallel > MaxParallel:
		return nil, fmt.Errorf("parallel streams %d: must be 1 to %d", opts.Parallel, MaxParallel)
	case opts.Port < 0 || opts.Port > 65535:
		return nil, fmt.Errorf("port %d: must be 1 to 65535", opts.Port)
	case len(opts.Scenarios) == 0:
		return nil, errors.New("no scenario to run")
	}
	id := make([]byte, 4)
	if _, err := rand.Read(id); err != nil {
		return nil, fmt.Errorf("make a run ID: %w", err)
	}
	return &bench{opts: opts, runID: hex.EncodeToString(id)}, nil
}

func (b *bench) emit(ev Event) {
	if b.opts.Emit == nil {
		return
	}
	b.emitMu.Lock()
	defer b.emitMu.Unlock()
	ev.Time = b.opts.Now()
	b.opts.Emit(ev)
}

// output reports a progress line.
func (b *bench) output(line string) { b.emit(Event{Kind: EventOutput, Line: line}) }

// run prepares what the scenarios share, then runs them.
func (b *bench) run(ctx context.Context, report *Report) error {
	if err := b.findIperf3(ctx); err != nil {
		return err
	}
	report.Iperf3 = b.iperf3Version
	if b.needs(func(s Scenario) bool { return s.Direction != DirLoopback }) {
		image, err := b.prepareImage(ctx)
		if err != nil {
			return err
		}
		b.image, report.Image = image, image
	}
	var failures []error
	for i, sc := range b.opts.Scenarios {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		b.index = i + 1
		b.emit(Event{Kind: EventScenarioStarted, Scenario: sc.ID, Title: sc.Title, Index: i + 1, Total: len(b.opts.Scenarios)})
		res := b.scenario(ctx, sc, i+1)
		if res.HostAddress.IsValid() {
			report.HostAddress = res.HostAddress.String()
		}
		report.Results = append(report.Results, res.Result)
		r := res.Result
		b.emit(Event{Kind: EventScenarioDone, Scenario: sc.ID, Title: sc.Title, Index: i + 1, Total: len(b.opts.Scenarios), Result: &r})
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if res.err != nil {
			failures = append(failures, res.err)
		}
	}
	switch len(failures) {
	case 0:
		return nil
	case 1:
		return failures[0]
	default:
		return &Error{Err: fmt.Errorf("%d scenarios failed, the first: %w", len(failures), failures[0]), Fix: FixFor(failures[0])}
	}
}

// needs tells whether any scenario to run satisfies f.
func (b *bench) needs(f func(Scenario) bool) bool {
	for _, s := range b.opts.Scenarios {
		if f(s) {
			return true
		}
	}
	return false
}

// iperf3VersionRE reads "iperf 3.12 (cJSON 1.7.15)"; iperf2 says "iperf version 2.1.8", and is
// not a program the benchmark can drive.
var iperf3VersionRE = regexp.MustCompile(`^iperf (\d[\w.+~-]*)`)

// findIperf3 finds the host's iperf3 and its version ("iperf 3.12 (cJSON 1.7.15)").
func (b *bench) findIperf3(ctx context.Context) error {
	res, err := b.opts.Runner.Run(ctx, sys.Command{Path: b.opts.Iperf3, Args: []string{"--version"}, Env: b.opts.Env, Timeout: 10 * time.Second})
	if err != nil {
		if isNotFound(err) {
			return &Error{Err: fmt.Errorf("%w: %w", ErrIperf3Missing, err), Fix: fixIperf3}
		}
		return fmt.Errorf("ask iperf3 for its version: %w", err)
	}
	m := iperf3VersionRE.FindStringSubmatch(strings.TrimSpace(string(res.Stdout)))
	if m == nil {
		return &Error{Err: fmt.Errorf("%w: %s --version printed %q, not iperf3's version", ErrIperf3Missing, b.opts.Iperf3, firstLine(res.Combined())), Fix: fixIperf3}
	}
	b.iperf3Version = m[1]
	b.iperf3Path = b.opts.Iperf3
	if p, err := exec.LookPath(b.opts.Iperf3); err == nil {
		b.iperf3Path = p
	}
	return nil
}

// nerdctl runs a nerdctl command to completion.
func (b *bench) nerdctl(ctx context.Context, timeout time.Duration, args ...string) (sys.Result, error) {
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	return b.opts.Runner.Run(ctx, sys.Command{Path: b.opts.Nerdctl, Args: args, Env: b.opts.Env, Timeout: timeout})
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

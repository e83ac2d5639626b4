package probe

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/virt-setup/virt-setup/internal/sys"
)

// Options configure one probe run.
type Options struct {
	// Root is a directory laid out like "/" to probe instead of the live host; "" or "/" is the host.
	Root string
	// User names the account to describe under Root (from ROOT/etc/passwd). On the live host the
	// probe always describes the user running it.
	User string
	// Runner runs commands; nil means the real one.
	Runner sys.Runner
	// Environ overrides the user's environment; nil means the process environment (live) or
	// ROOT/proc/self/environ (under Root).
	Environ []string
	// SkipLive turns off the live capability tests on the real host.
	SkipLive bool
	// Timeout bounds each probe; zero means DefaultTimeout.
	Timeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// SelfExe is re-executed for the live tests; "" means /proc/self/exe.
	SelfExe string
	// Tool is the virt-setup version recorded in the facts.
	Tool string
	// OnEvent, when set, is called as each probe starts and finishes (from several goroutines).
	OnEvent func(Event)
}

// DefaultTimeout bounds a probe that was given no timeout of its own.
const DefaultTimeout = 5 * time.Second

// Event reports the progress of one probe, for a front end that shows probes as they run.
type Event struct {
	Probe string
	// Done is false when the probe starts and true when it finishes.
	Done     bool
	Duration time.Duration
	Err      error
}

// A probe fills part of Facts. It runs concurrently with the others, so it must not touch Facts
// itself: it returns a function that applies its findings, and the runner calls those in order.
type probe struct {
	name    string
	timeout time.Duration
	run     func(ctx context.Context, e *Env) func(*Facts)
}

// probes is every probe, in the order their findings are applied.
var probes = []probe{
	{name: "os", run: probeOS},
	{name: "security", run: probeSecurity},
	{name: "userns", run: probeUserNS},
	{name: "cgroup", run: probeCgroup},
	{name: "systemd", run: probeSystemd},
	{name: "devices", run: probeDevices},
	{name: "network", run: probeNetwork},
	{name: "binaries", run: probeBinaries},
	{name: "state", run: probeState},
	{name: "live-overlay", run: probeLiveOverlay, timeout: 3 * time.Second},
	{name: "live-fuse-overlayfs", run: probeLiveFuseOverlayfs, timeout: 3 * time.Second},
}

// ProbeNames lists the probes in the order they are reported, for front ends that draw them up front.
func ProbeNames() []string {
	names := []string{"identity"}
	for _, p := range probes {
		names = append(names, p.name)
	}
	return names
}

// NewEnv builds the environment the probes read the host through.
func NewEnv(opts Options) (*Env, error) {
	root := sys.Root{Dir: opts.Root}
	e := &Env{
		Root:    root,
		Runner:  opts.Runner,
		Live:    root.IsHost(),
		Environ: opts.Environ,
		Now:     opts.Now,
		SelfExe: opts.SelfExe,
	}
	if e.Runner == nil {
		e.Runner = sys.Exec{}
	}
	if e.Now == nil {
		e.Now = time.Now
	}
	if e.SelfExe == "" {
		e.SelfExe = "/proc/self/exe"
	}
	if !root.IsHost() {
		fi, err := os.Stat(root.Dir)
		if err != nil {
			return nil, fmt.Errorf("probe root %s: %w", root.Dir, err)
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("probe root %s: not a directory", root.Dir)
		}
	} else if opts.User != "" {
		return nil, &UsageError{Msg: "--user works only with --root: on this host the probe describes the user running it; run virt-setup as that user (log in with ssh or machinectl shell, not su)"}
	}
	if e.Environ == nil {
		if e.Live {
			e.Environ = processEnviron()
		} else if b, err := root.ReadFile("/proc/self/environ"); err == nil {
			for _, kv := range strings.Split(string(b), "\x00") {
				if strings.Contains(kv, "=") {
					e.Environ = append(e.Environ, kv)
				}
			}
		}
	}
	return e, nil
}

// UsageError is a mistake in how virt-setup was called.
type UsageError struct{ Msg string }

// Error implements error.
func (e *UsageError) Error() string { return e.Msg }

// Run gathers the facts. Every probe runs concurrently with its own timeout; a probe that fails or
// times out leaves its facts unknown and is recorded in Meta.Probes, it never fails the run.
func Run(ctx context.Context, opts Options) (*Facts, error) {
	e, err := NewEnv(opts)
	if err != nil {
		return nil, err
	}
	return RunEnv(ctx, e, opts)
}

// RunEnv is Run with a prepared environment.
func RunEnv(ctx context.Context, e *Env, opts Options) (*Facts, error) {
	start := e.Now()
	wall := time.Now()
	f := &Facts{Binaries: map[string]Fact[Binary]{}}
	f.Meta = Meta{SchemaVersion: SchemaVersion, Tool: opts.Tool, ProbedAt: start.UTC()}
	switch {
	case e.Live:
		f.Meta.Mode = "live"
	default:
		f.Meta.Mode = "root"
		f.Meta.Root = e.Root.Dir
	}

	emit := func(ev Event) {
		if opts.OnEvent != nil {
			opts.OnEvent(ev)
		}
	}
	emit(Event{Probe: "identity"})
	idStart := time.Now()
	id := resolveIdentity(e, opts.User)
	id(f)
	f.Meta.Probes = append(f.Meta.Probes, ProbeRun{Name: "identity", Duration: Duration(time.Since(idStart))})
	emit(Event{Probe: "identity", Done: true, Duration: time.Since(idStart)})
	e.LookupDirs = e.lookupDirs()

	skipLive := opts.SkipLive
	results := make([]outcome, len(probes))
	var wg sync.WaitGroup
	for i, p := range probes {
		if !e.Live || skipLive {
			if strings.HasPrefix(p.name, "live-") {
				results[i] = outcome{apply: skippedLive(p.name, e.Live), run: ProbeRun{Name: p.name}}
				continue
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = runOne(ctx, e, p, opts.Timeout, emit)
		}()
	}
	wg.Wait()
	for _, r := range results {
		if r.apply != nil {
			r.apply(f)
		}
		f.Meta.Probes = append(f.Meta.Probes, r.run)
	}
	sort.SliceStable(f.Meta.Probes, func(i, j int) bool { return f.Meta.Probes[i].Duration > f.Meta.Probes[j].Duration })
	f.Meta.Duration = Duration(time.Since(wall))
	return f, nil
}

// errTimeout marks a probe that did not finish in time.
var errTimeout = errors.New("timed out")

// outcome is what one probe left: the function applying its findings and its record.
type outcome struct {
	apply func(*Facts)
	run   ProbeRun
}

func runOne(ctx context.Context, e *Env, p probe, def time.Duration, emit func(Event)) outcome {
	timeout := p.timeout
	if timeout == 0 {
		timeout = def
	}
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	emit(Event{Probe: p.name})
	start := time.Now()
	type result struct {
		apply func(*Facts)
		err   error
	}
	done := make(chan result, 1)
	go func() {
		defer func() {
			// A bug in one probe must not take the whole run down: record it and go on.
			if r := recover(); r != nil {
				done <- result{err: fmt.Errorf("%s probe panicked: %v", p.name, r)}
			}
		}()
		done <- result{apply: p.run(ctx, e)}
	}()
	var res result
	select {
	case res = <-done:
	case <-ctx.Done():
		res.err = fmt.Errorf("%s probe %w after %s", p.name, errTimeout, timeout)
	}
	d := time.Since(start)
	out := outcome{apply: res.apply, run: ProbeRun{Name: p.name, Duration: Duration(d)}}
	if res.err != nil {
		out.run.Error = res.err.Error()
	}
	emit(Event{Probe: p.name, Done: true, Duration: d, Err: res.err})
	return out
}

package tui

import (
	"context"
	"errors"
	"time"

	"github.com/virt-setup/virt-setup/installer"
	"github.com/virt-setup/virt-setup/probe"
)

// Backend is the work behind the wizard: the probe, the planner, the installer engine and the
// benchmark. The wizard only renders what a backend returns or emits, so the same screens drive
// this host (NewHostBackend) or a replay of a recorded one (NewDemoBackend). Every method may
// block; the wizard calls them from commands, never from Update.
type Backend interface {
	// Info says what the backend is, for the header and the done screen.
	Info() BackendInfo
	// Probe gathers the host's facts, calling onEvent (possibly from several goroutines) as each
	// probe starts and finishes.
	Probe(ctx context.Context, onEvent func(probe.Event)) (*probe.Facts, error)
	// Plan builds the install plan for the answers. It reads the host but changes nothing.
	Plan(ctx context.Context, f *probe.Facts, a installer.Answers) (*installer.Plan, error)
	// Install runs the plan, leaving out the steps in hooks.Skip, and reports through hooks.Emit.
	// Running it again after a failure is a retry: steps that are done are skipped.
	Install(ctx context.Context, p *installer.Plan, hooks InstallHooks) error
	// Bench measures the network paths of the installed setup, reporting through emit. It returns
	// ErrNoBenchmark when this backend cannot measure.
	Bench(ctx context.Context, a installer.Answers, emit func(BenchEvent)) error
	// SaveAnswers writes the answers to path and returns the absolute path written.
	SaveAnswers(path string, a installer.Answers) (string, error)
}

// BackendInfo describes a backend.
type BackendInfo struct {
	// Demo is true when nothing on this host is touched: the screen says DEMO.
	Demo bool
	// Host names where the facts come from: "this host", or a host profile.
	Host string
	// LogPath is the wizard's log file ("" when there is none).
	LogPath string
	// StateDir is where the answers of an install are kept (virt-setup's state directory).
	StateDir string
}

// InstallHooks connect a running install to the wizard.
type InstallHooks struct {
	// Emit receives the engine's events; it is never called concurrently.
	Emit func(installer.Event)
	// RunPrivileged runs the reviewed root script; the wizard hands the terminal to sudo for it.
	RunPrivileged func(ctx context.Context, scriptPath string) error
	// Skip lists the IDs of steps the user chose to skip after they failed.
	Skip []string
}

// ErrNoBenchmark says a backend has no benchmark to run; the wizard then leaves the panel out.
var ErrNoBenchmark = errors.New("no benchmark engine in this build")

// BenchScenario is one path the benchmark measures with iperf3.
type BenchScenario struct {
	// ID is stable and the same as the iperf3 engine's scenario IDs (installer/bench):
	// "container-to-host", "host-to-container", and the same with a "-bypass4netns" suffix.
	ID string
	// Direction is "container → host" or "host → container".
	Direction string
	// Path says what carries the traffic ("slirp4netns", "port builtin", "bypass4netns").
	Path string
	// Bypass is true when the container opted into bypass4netns.
	Bypass bool
}

// BenchSample is one iperf3 interval of one scenario: the rate between Start and End, measured
// from the scenario's start.
type BenchSample struct {
	Scenario      string
	Start, End    time.Duration
	BitsPerSecond float64
}

// BenchResult is the final rate of one scenario (iperf3's sum over the run), or why it failed.
type BenchResult struct {
	Scenario      string
	BitsPerSecond float64
	Err           string
}

// BenchEventKind says what a benchmark event reports.
type BenchEventKind string

// Benchmark events, in order: started (with the scenarios), then per scenario a start, samples and
// a done, and finished last.
const (
	BenchStarted         BenchEventKind = "started"
	BenchScenarioStarted BenchEventKind = "scenario-started"
	BenchSampled         BenchEventKind = "sample"
	BenchScenarioDone    BenchEventKind = "scenario-done"
	BenchFinished        BenchEventKind = "finished"
)

// BenchEvent is one thing the benchmark reports. This is the wizard's own contract: an adapter
// turns the iperf3 engine's output into it (see NewHostBackend's Bench option).
type BenchEvent struct {
	Kind BenchEventKind
	// Scenarios are announced with BenchStarted.
	Scenarios []BenchScenario
	// Scenario is the ID the event is about.
	Scenario string
	Sample   BenchSample
	Result   BenchResult
	// Err is set on BenchFinished when the whole run failed.
	Err string
}

// BenchScenarios are the scenarios for a setup: container → host and host → container through
// RootlessKit, and the same with bypass4netns when it is installed.
func BenchScenarios(a installer.Answers) []BenchScenario {
	net := a.RootlessKit.NetworkDriver
	port := "port " + a.RootlessKit.PortDriver
	sc := []BenchScenario{
		{ID: "container-to-host", Direction: "container → host", Path: net},
		{ID: "host-to-container", Direction: "host → container", Path: port},
	}
	if a.AddOns.Bypass4netns {
		sc = append(sc,
			BenchScenario{ID: "container-to-host-bypass4netns", Direction: "container → host", Path: "bypass4netns", Bypass: true},
			BenchScenario{ID: "host-to-container-bypass4netns", Direction: "host → container", Path: "bypass4netns", Bypass: true})
	}
	return sc
}

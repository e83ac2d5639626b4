package tui

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/virt-setup/virt-setup/installer"
	"github.com/virt-setup/virt-setup/internal/fsutil"
	"github.com/virt-setup/virt-setup/probe"
)

// HostOptions configure the backend that works on this host.
type HostOptions struct {
	// Version is virt-setup's version, recorded in the facts.
	Version string
	// Runtime is the installer's view of the user; RunPrivileged and Output are set per run.
	Runtime *installer.Runtime
	// LogPath is the wizard's log file, shown on the done screen.
	LogPath string
	// SkipLive turns off the live mount tests of the probe.
	SkipLive bool
	// Bench runs the iperf3 benchmark; nil leaves the benchmark panel out. The benchmark engine
	// (package installer/bench) is connected here through an adapter that turns its samples and
	// results into BenchEvents.
	Bench func(ctx context.Context, a installer.Answers, emit func(BenchEvent)) error
}

// hostBackend runs the real probe, planner and engine on this host.
type hostBackend struct{ o HostOptions }

// NewHostBackend returns the backend that probes and changes this host.
func NewHostBackend(o HostOptions) Backend { return &hostBackend{o: o} }

// Info implements Backend.
func (h *hostBackend) Info() BackendInfo {
	host := "this host"
	if name, err := os.Hostname(); err == nil && name != "" {
		host = "this host (" + name + ")"
	}
	info := BackendInfo{Host: host, LogPath: h.o.LogPath}
	if h.o.Runtime != nil {
		info.StateDir = h.o.Runtime.Paths.VirtSetupState()
	}
	return info
}

// Probe implements Backend.
func (h *hostBackend) Probe(ctx context.Context, onEvent func(probe.Event)) (*probe.Facts, error) {
	return probe.Run(ctx, probe.Options{Tool: h.o.Version, SkipLive: h.o.SkipLive, OnEvent: onEvent})
}

// Plan implements Backend.
func (h *hostBackend) Plan(_ context.Context, f *probe.Facts, a installer.Answers) (*installer.Plan, error) {
	return installer.BuildPlan(installer.PlanInput{
		Facts: f, Answers: a, Runtime: h.o.Runtime,
		Reprobe: func(ctx context.Context) (*probe.Facts, error) {
			return probe.Run(ctx, probe.Options{Tool: h.o.Version, SkipLive: true})
		},
	})
}

// Install implements Backend.
func (h *hostBackend) Install(ctx context.Context, p *installer.Plan, hooks InstallHooks) error {
	rt := *h.o.Runtime
	rt.RunPrivileged = hooks.RunPrivileged
	// The engine routes each step's output into events.
	rt.Output = nil
	run := &installer.Plan{Answers: p.Answers}
	for _, s := range p.Steps {
		if !slices.Contains(hooks.Skip, s.Info().ID) {
			run.Steps = append(run.Steps, s)
		}
	}
	return installer.Run(ctx, run, &rt, installer.RunOptions{Emit: hooks.Emit, Resume: true})
}

// Bench implements Backend.
func (h *hostBackend) Bench(ctx context.Context, a installer.Answers, emit func(BenchEvent)) error {
	if h.o.Bench == nil {
		return ErrNoBenchmark
	}
	return h.o.Bench(ctx, a, emit)
}

// SaveAnswers implements Backend.
func (h *hostBackend) SaveAnswers(path string, a installer.Answers) (string, error) {
	return saveAnswers(path, a)
}

// saveAnswers writes a as a commented TOML file, atomically.
func saveAnswers(path string, a installer.Answers) (string, error) {
	abs := absPath(path)
	b, err := a.Marshal()
	if err != nil {
		return abs, err
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return abs, fmt.Errorf("save answers: %w", err)
	}
	if err := fsutil.WriteFileAtomic(abs, b, 0o644); err != nil {
		return abs, fmt.Errorf("save answers to %s: %w", abs, err)
	}
	return abs, nil
}

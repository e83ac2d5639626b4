package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/virt-setup/virt-setup/installer"
	"github.com/virt-setup/virt-setup/internal/sys"
	"github.com/virt-setup/virt-setup/probe"
)

// Exit code of install when the plan needs the reviewed root script to run first.
const exitNeedsPrivilege = 3

// newRuntime is the installer's view of the user running virt-setup.
func newRuntime() *installer.Runtime {
	home, _ := os.UserHomeDir()
	return &installer.Runtime{
		Runner: sys.Exec{},
		Paths:  installer.PathsFromEnv(os.Getenv, home),
		Env:    os.Environ(),
		Now:    time.Now,
	}
}

// sudoRunner runs the privileged script through sudo with the terminal, so sudo can ask for a
// password; it is installed only when the user passed --sudo.
func sudoRunner(s streams) func(ctx context.Context, path string) error {
	return func(ctx context.Context, path string) error {
		cmd := exec.CommandContext(ctx, "sudo", "sh", "-eu", path)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, s.Out, s.ErrOut
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("sudo sh -eu %s: %w", path, err)
		}
		return nil
	}
}

// answersSource loads the answers from a file, or derives them from the recommendation.
func answersSource(path string, f *probe.Facts) (installer.Answers, string, error) {
	if path == "" {
		rec := probe.Recommend(f)
		return installer.DefaultAnswers(f, rec), "the recommendation for this host", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return installer.Answers{}, "", fmt.Errorf("read answers: %w", err)
	}
	a, err := installer.ParseAnswers(b, path)
	if err != nil {
		return installer.Answers{}, "", usageError{err}
	}
	return a, path, nil
}

// lastAnswers returns the answers of the journal's latest install run.
func lastAnswers(j *installer.Journal) (installer.Answers, bool) {
	for i := len(j.Runs) - 1; i >= 0; i-- {
		if j.Runs[i].Answers != nil {
			return *j.Runs[i].Answers, true
		}
	}
	return installer.Answers{}, false
}

// livePlan probes this host and builds the plan for the answers.
func livePlan(ctx context.Context, answersPath string, rt *installer.Runtime) (*installer.Plan, *probe.Facts, string, error) {
	f, err := probe.Run(ctx, probe.Options{Tool: version})
	if err != nil {
		return nil, nil, "", err
	}
	a, source, err := answersSource(answersPath, f)
	if err != nil {
		return nil, f, "", err
	}
	plan, err := installer.BuildPlan(installer.PlanInput{
		Facts: f, Answers: a, Runtime: rt,
		Reprobe: func(ctx context.Context) (*probe.Facts, error) {
			return probe.Run(ctx, probe.Options{Tool: version, SkipLive: true})
		},
	})
	if err != nil {
		var pe *installer.PlanError
		if errors.As(err, &pe) {
			return nil, f, source, err
		}
		return nil, f, source, fmt.Errorf("build the plan: %w", err)
	}
	return plan, f, source, nil
}

// probeForInstaller gathers the facts the installer needs without the live mount tests.
func probeForInstaller(ctx context.Context) (*probe.Facts, error) {
	return probe.Run(ctx, probe.Options{Tool: version, SkipLive: true})
}

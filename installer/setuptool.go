package installer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/virt-setup/virt-setup/internal/sys"
)

// SetuptoolLine is one line of containerd-rootless-setuptool.sh's output.
type SetuptoolLine struct {
	// Level is "INFO", "WARNING", "ERROR", "TRACE" (a `+ cmd` line of its `set -x` subshells) or ""
	// (anything else, such as `systemctl status` output).
	Level string
	Text  string
}

var (
	// The setup tool colours its labels (ESC[104m ESC[97m [INFO] ESC[49m ESC[39m, rootless.md §1.1).
	ansiEscape   = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)
	setuptoolTag = regexp.MustCompile(`^\[(INFO|WARNING|ERROR)\] ?(.*)$`)
)

// ParseSetuptoolLine classifies one output line of containerd-rootless-setuptool.sh.
func ParseSetuptoolLine(line string) SetuptoolLine {
	s := strings.TrimRight(ansiEscape.ReplaceAllString(line, ""), "\r")
	if m := setuptoolTag.FindStringSubmatch(s); m != nil {
		return SetuptoolLine{Level: m[1], Text: m[2]}
	}
	if strings.HasPrefix(s, "+ ") {
		return SetuptoolLine{Level: "TRACE", Text: s[2:]}
	}
	return SetuptoolLine{Text: s}
}

// setuptoolStep runs one containerd-rootless-setuptool.sh command (install, install-buildkit, …)
// for the systemd service mode.
type setuptoolStep struct {
	id, title string
	tool      string   // absolute path of containerd-rootless-setuptool.sh
	sub       string   // e.g. "install-fuse-overlayfs"
	undoSub   string   // e.g. "uninstall-fuse-overlayfs"
	units     []string // the user units the command creates
	env       []string // extra environment (e.g. CONTAINERD_NAMESPACE)
}

// NewSetuptoolStep returns a step that runs `containerd-rootless-setuptool.sh sub`, streaming its
// lines, and is done when every unit it creates exists. The setup tool skips units that exist, so
// regenerating a unit with new settings goes through override.conf, not through this step.
func NewSetuptoolStep(tool, sub, undoSub string, units []string, env ...string) Step {
	return &setuptoolStep{
		id: "setuptool:" + sub, title: "containerd-rootless-setuptool.sh " + sub,
		tool: tool, sub: sub, undoSub: undoSub, units: units, env: env,
	}
}

func (s *setuptoolStep) command(rt *Runtime, sub string) sys.Command {
	return sys.Command{Path: s.tool, Args: []string{sub}, Env: append(append([]string{}, rt.Env...), s.env...)}
}

// Info implements Step.
func (s *setuptoolStep) Info() StepInfo {
	return StepInfo{ID: s.id, Title: s.title, Kind: KindCommand, Commands: []string{sys.Command{Path: s.tool, Args: []string{s.sub}}.String()}}
}

func (s *setuptoolStep) unitPath(rt *Runtime, unit string) string {
	return filepath.Join(rt.Paths.ConfigHome, "systemd/user", unit)
}

// Check implements Step.
func (s *setuptoolStep) Check(_ context.Context, rt *Runtime) (bool, error) {
	for _, u := range s.units {
		if _, err := os.Stat(s.unitPath(rt, u)); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return false, nil
			}
			return false, fmt.Errorf("check unit %s: %w", u, err)
		}
	}
	return true, nil
}

// Apply implements Step.
func (s *setuptoolStep) Apply(ctx context.Context, rt *Runtime, rec *Record) error {
	rec.Units = append(rec.Units, s.units...)
	if rec.Data == nil {
		rec.Data = map[string]string{}
	}
	rec.Data["undo"] = s.undoSub
	var errs []string
	cmd := s.command(rt, s.sub)
	cmd.OnLine = func(_, line string) {
		l := ParseSetuptoolLine(line)
		switch l.Level {
		case "ERROR":
			errs = append(errs, l.Text)
			rt.output("error: " + l.Text)
		case "WARNING":
			rt.output("warning: " + l.Text)
		case "INFO":
			rt.output(l.Text)
		case "TRACE":
			rt.output("$ " + l.Text)
		default:
			rt.output("  " + l.Text)
		}
	}
	_, err := rt.Runner.Run(ctx, cmd)
	if err == nil {
		return nil
	}
	if len(errs) > 0 {
		return &StepError{Err: fmt.Errorf("%s %s: %s", filepath.Base(s.tool), s.sub, strings.Join(errs, "; ")),
			Fix: "Run `journalctl --user -n 50 --no-pager` to see why the unit failed, fix that (`virt-setup doctor` helps), then run virt-setup install again."}
	}
	return fmt.Errorf("%s %s: %w", filepath.Base(s.tool), s.sub, err)
}

// Undo implements Step.
func (s *setuptoolStep) Undo(ctx context.Context, rt *Runtime, rec Record) error {
	undo := rec.Data["undo"]
	if undo == "" {
		undo = s.undoSub
	}
	cmd := s.command(rt, undo)
	cmd.OnLine = func(_, line string) { rt.output(ParseSetuptoolLine(line).Text) }
	if _, err := rt.Runner.Run(ctx, cmd); err != nil {
		return fmt.Errorf("%s %s: %w", filepath.Base(s.tool), undo, err)
	}
	// The setup tool's uninstall does not reload systemd (rootless.md §1.5), which would keep the
	// removed units loaded.
	if _, err := rt.Runner.Run(ctx, sys.Command{Path: "systemctl", Args: []string{"--user", "daemon-reload"}, Env: rt.Env}); err != nil {
		return fmt.Errorf("systemctl --user daemon-reload: %w", err)
	}
	return nil
}

// output reports a line when the runtime has somewhere to send it.
func (rt *Runtime) output(line string) {
	if rt.Output != nil {
		rt.Output(line)
	}
}

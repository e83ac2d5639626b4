package installer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/virt-setup/virt-setup/internal/fsutil"
	"github.com/virt-setup/virt-setup/internal/sys"
)

// restartStep reloads systemd and restarts a user unit so that a changed drop-in takes effect. It is
// done when the unit is active and was last restarted by virt-setup with the drop-in as it is now:
// containerd-rootless-setuptool.sh would skip an existing unit and leave new settings unapplied.
type restartStep struct {
	unit, dropIn string
}

func newRestartStep(unit, dropIn string) Step { return &restartStep{unit: unit, dropIn: dropIn} }

func (s *restartStep) marker(rt *Runtime) string {
	return filepath.Join(rt.Paths.VirtSetupState(), "applied", s.unit+".dropin.sha256")
}

func (s *restartStep) dropInHash() (string, error) {
	b, err := os.ReadFile(s.dropIn)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read %s: %w", s.dropIn, err)
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:]), nil
}

func (s *restartStep) systemctl(rt *Runtime, args ...string) sys.Command {
	return sys.Command{Path: "systemctl", Args: append([]string{"--user"}, args...), Env: rt.Env}
}

// Info implements Step.
func (s *restartStep) Info() StepInfo {
	return StepInfo{
		ID: "restart:" + s.unit, Title: "Restart " + s.unit + " with the new settings", Kind: KindService,
		Commands: []string{"systemctl --user daemon-reload", "systemctl --user restart " + s.unit},
	}
}

// Check implements Step.
func (s *restartStep) Check(ctx context.Context, rt *Runtime) (bool, error) {
	want, err := s.dropInHash()
	if err != nil {
		return false, err
	}
	got, err := os.ReadFile(s.marker(rt))
	if err != nil || strings.TrimSpace(string(got)) != want {
		return false, nil
	}
	_, err = rt.Runner.Run(ctx, s.systemctl(rt, "is-active", "--quiet", s.unit))
	return err == nil, nil
}

// Apply implements Step.
func (s *restartStep) Apply(ctx context.Context, rt *Runtime, _ *Record) error {
	for _, args := range [][]string{{"daemon-reload"}, {"restart", s.unit}} {
		cmd := s.systemctl(rt, args...)
		cmd.OnLine = func(_, l string) { rt.output(l) }
		if _, err := rt.Runner.Run(ctx, cmd); err != nil {
			return &StepError{Err: fmt.Errorf("systemctl --user %s: %w", strings.Join(args, " "), err),
				Fix: fmt.Sprintf("See why with: journalctl --user -u %s -n 50 --no-pager", s.unit)}
		}
	}
	h, err := s.dropInHash()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(s.marker(rt)), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(s.marker(rt)), err)
	}
	return fsutil.WriteFileAtomic(s.marker(rt), []byte(h+"\n"), 0o600)
}

// Undo implements Step: the unit itself is removed by the setup tool's step; here only the marker.
func (s *restartStep) Undo(_ context.Context, rt *Runtime, _ Record) error {
	if err := os.Remove(s.marker(rt)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", s.marker(rt), err)
	}
	return nil
}

package installer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/virt-setup/virt-setup/internal/fsutil"
	"github.com/virt-setup/virt-setup/probe"
)

// privilegedStep gathers every command that needs root into one script, shown in the plan and run
// only with the user's consent. Nothing runs as root behind the user's back.
type privilegedStep struct {
	lines   []string
	reasons []string
	// stillNeeded re-probes the host and says which of the checks behind the script still fail; the
	// step is done when none does, or when this exact script already ran.
	stillNeeded func(ctx context.Context) ([]string, error)
}

// PrivilegedScript renders the root commands as a script for `sh -eu`.
func PrivilegedScript(lines, reasons []string) string {
	var b strings.Builder
	b.WriteString("#!/bin/sh\n# virt-setup: the steps that need root. Review them, then run: sudo sh -eu THIS-FILE\n")
	for _, r := range reasons {
		b.WriteString("# - " + r + "\n")
	}
	b.WriteString("set -eu\n")
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	return b.String()
}

// NewPrivilegedStep returns the privileged step for lines (already deduplicated, in order), or nil
// when there is nothing to run as root.
func NewPrivilegedStep(lines, reasons []string, stillNeeded func(ctx context.Context) ([]string, error)) Step {
	if len(lines) == 0 {
		return nil
	}
	return &privilegedStep{lines: lines, reasons: reasons, stillNeeded: stillNeeded}
}

func (s *privilegedStep) script() string { return PrivilegedScript(s.lines, s.reasons) }

func (s *privilegedStep) hash() string {
	h := sha256.Sum256([]byte(s.script()))
	return hex.EncodeToString(h[:])
}

// scriptPath is where the script is saved for review; markerPath records the hash of the last
// script that ran to completion through virt-setup.
func scriptPath(rt *Runtime) string { return filepath.Join(rt.Paths.VirtSetupState(), "privileged.sh") }
func markerPath(rt *Runtime) string {
	return filepath.Join(rt.Paths.VirtSetupState(), "privileged.sh.applied")
}

// Info implements Step.
func (s *privilegedStep) Info() StepInfo {
	return StepInfo{
		ID: "privileged", Title: "Prepare the host as root (" + strings.Join(s.reasons, "; ") + ")",
		Kind: KindPrivileged, Privileged: true, Commands: slices.Clone(s.lines),
	}
}

// Check implements Step.
func (s *privilegedStep) Check(ctx context.Context, rt *Runtime) (bool, error) {
	if b, err := os.ReadFile(markerPath(rt)); err == nil && strings.TrimSpace(string(b)) == s.hash() {
		return true, nil
	}
	if s.stillNeeded == nil {
		return false, nil
	}
	left, err := s.stillNeeded(ctx)
	if err != nil {
		return false, fmt.Errorf("re-check the host: %w", err)
	}
	return len(left) == 0, nil
}

// Apply implements Step.
func (s *privilegedStep) Apply(ctx context.Context, rt *Runtime, rec *Record) error {
	path := scriptPath(rt)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	if err := fsutil.WriteFileAtomic(path, []byte(s.script()), 0o600); err != nil {
		return fmt.Errorf("save the privileged script: %w", err)
	}
	rt.output("saved the root steps for review in " + path)
	if rt.RunPrivileged == nil {
		return &StepError{Err: ErrNeedsPrivilege, Fix: fmt.Sprintf("Review %s, run it as root (sudo sh -eu %s), then run virt-setup install again; or run virt-setup install --sudo to have virt-setup run it through sudo.", path, path)}
	}
	if err := rt.RunPrivileged(ctx, path); err != nil {
		return &StepError{Err: fmt.Errorf("run the privileged script: %w", err), Fix: "Read the script's output above, fix the cause, and run virt-setup install again."}
	}
	if s.stillNeeded != nil {
		left, err := s.stillNeeded(ctx)
		if err != nil {
			return fmt.Errorf("re-check the host: %w", err)
		}
		if len(left) > 0 {
			return &StepError{Err: fmt.Errorf("the script ran, but these checks still fail: %s", strings.Join(left, ", ")), Fix: "Run virt-setup doctor to see why; some changes need a new login."}
		}
	}
	return fsutil.WriteFileAtomic(markerPath(rt), []byte(s.hash()+"\n"), 0o600)
}

// Undo implements Step. Root changes are not undone automatically: undoing them could break other
// users (subuid ranges, device modes, lingering), so uninstall only says so.
func (s *privilegedStep) Undo(_ context.Context, rt *Runtime, _ Record) error {
	rt.output("root changes are left in place; see " + scriptPath(rt) + " for what was run")
	return nil
}

// ErrNeedsPrivilege is returned when a plan needs root and the user has not consented to running
// the privileged script.
var ErrNeedsPrivilege = errors.New("this setup needs a few changes as root first")

// PrivilegedChecks are the doctor checks whose root fixes the installer gathers, and for which
// answers: each applies always, or only for some snapshotters, add-ons or service modes.
func privilegedChecks(a Answers) []string {
	ids := []string{
		"VS-XDG-001", "VS-USERNS-001", "VS-USERNS-002", "VS-APPARMOR-001", "VS-SUBID-001", "VS-SUBID-002",
		"VS-IDMAP-001", "VS-IDMAP-002", "VS-TUN-001", "VS-IPTABLES-001", "VS-NRI-001",
	}
	if a.Snapshotter == "fuse-overlayfs" || a.AddOns.Stargz {
		ids = append(ids, "VS-FUSE-001")
	}
	if a.ServiceMode == "systemd" {
		// Delegation gives --memory, --cpus and nerdctl stats to rootless containers. The script's
		// daemon-reload hands the controllers to the running user manager at once on systemd 252
		// (Debian 12, proven in internal/vmtest); where a systemd needs a new login for it, the
		// step fails with the checks still failing and says that a new login may be needed.
		ids = append(ids, "VS-LINGER-001", "VS-DBUS-001", "VS-CGROUP-002")
	}
	return ids
}

// GatherPrivileged collects the root commands of the relevant checks that fail or warn, in
// catalog order, dropping exact duplicates ("apt-get update" appears in several fixes).
func GatherPrivileged(a Answers, results []probe.Result) (lines, reasons []string) {
	want := privilegedChecks(a)
	seen := map[string]bool{}
	for _, r := range results {
		if !slices.Contains(want, r.ID) || (r.Status != probe.StatusFail && r.Status != probe.StatusWarn) || len(r.Fix.Root) == 0 {
			continue
		}
		reasons = append(reasons, r.ID+": "+r.Title)
		for _, l := range r.Fix.Root {
			if !seen[l] {
				seen[l] = true
				lines = append(lines, l)
			}
		}
	}
	return lines, reasons
}

// StillFailing returns the IDs among the relevant checks that still fail or warn.
func StillFailing(a Answers, results []probe.Result) []string {
	want := privilegedChecks(a)
	var left []string
	for _, r := range results {
		if slices.Contains(want, r.ID) && (r.Status == probe.StatusFail || r.Status == probe.StatusWarn) && len(r.Fix.Root) > 0 {
			left = append(left, r.ID)
		}
	}
	return left
}

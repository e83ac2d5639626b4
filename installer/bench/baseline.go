package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/virt-setup/virt-setup/internal/fsutil"
)

// BaselineFile is the baseline's name in virt-setup's state directory.
const BaselineFile = "bench-baseline.json"

// BaselinePath is where the baseline is kept: $XDG_STATE_HOME/virt-setup/bench-baseline.json
// (stateHome is $XDG_STATE_HOME or its default, ~/.local/state).
func BaselinePath(stateHome string) string {
	return filepath.Join(stateHome, "virt-setup", BaselineFile)
}

// ErrNoBaseline says that no baseline has been saved yet.
var ErrNoBaseline = errors.New("no baseline saved yet")

// SaveBaseline writes the report as the baseline, atomically, so that an interrupted save leaves
// the old baseline whole. The baseline is the report without its own comparison.
func SaveBaseline(path string, r *Report) error {
	base := *r
	base.BaselineFrom = nil
	base.Results = make([]Result, len(r.Results))
	for i, res := range r.Results {
		res.Baseline = nil
		base.Results[i] = res
	}
	b, err := json.MarshalIndent(base, "", "  ")
	if err != nil {
		return fmt.Errorf("encode the baseline: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("save the baseline: %w", err)
	}
	if err := fsutil.WriteFileAtomic(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("save the baseline: %w", err)
	}
	return nil
}

// LoadBaseline reads a baseline (or any report `virt-setup bench --json` wrote). A missing file is
// ErrNoBaseline.
func LoadBaseline(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read the baseline %s: %w", path, ErrNoBaseline)
	}
	if err != nil {
		return nil, fmt.Errorf("read the baseline: %w", err)
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("read the baseline %s: %w", path, err)
	}
	if r.SchemaVersion != ReportSchemaVersion {
		return nil, fmt.Errorf("read the baseline %s: format version %d, this virt-setup reads %d; save a new one with --save-baseline",
			path, r.SchemaVersion, ReportSchemaVersion)
	}
	return &r, nil
}

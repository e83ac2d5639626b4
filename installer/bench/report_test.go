package bench

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func result(id ScenarioID, status string, bps float64, streams int) Result {
	sc, _ := ScenarioByID(id)
	return Result{Scenario: sc, Status: status, BitsPerSecond: bps, Streams: streams}
}

// nerdctlsTable is the report behind the table in nerdctl's documentation (docs/rootless.md).
func nerdctlsTable() *Report {
	return &Report{SchemaVersion: ReportSchemaVersion, Parallel: 1, Results: []Result{
		result(ContainerToHost, StatusOK, 0.398e9, 1),
		result(ContainerToHostBypass4netns, StatusOK, 42.2e9, 1),
		result(HostToContainer, StatusOK, 20.6e9, 1),
		result(HostToContainerBypass4netns, StatusOK, 47.4e9, 1),
		result(HostLoopback, StatusOK, 51.0e9, 1),
	}}
}

func TestTable(t *testing.T) {
	got := nerdctlsTable().Table()
	want := [][]string{
		{"iperf3", "without bypass4netns", "with bypass4netns", "bypass4netns gain"},
		{"container → host", "0.398 Gbit/s", "42.2 Gbit/s", "106×"},
		{"host → container", "20.6 Gbit/s", "47.4 Gbit/s", "2.30×"},
		{"host loopback (ceiling)", "51.0 Gbit/s", "", ""},
	}
	if len(got) != len(want) {
		t.Fatalf("table %q", got)
	}
	for i := range want {
		if strings.Join(got[i], "|") != strings.Join(want[i], "|") {
			t.Errorf("row %d: %q, want %q", i, got[i], want[i])
		}
	}

	// Skipped and failed cells, scenarios not run, and no gain without both sides.
	r := &Report{Results: []Result{
		result(ContainerToHost, StatusOK, 0.43e9, 1),
		result(ContainerToHostBypass4netns, StatusSkipped, 0, 1),
		result(HostToContainerBypass4netns, StatusFailed, 0, 1),
	}}
	got = r.Table()
	if len(got) != 3 || strings.Join(got[1], "|") != "container → host|0.430 Gbit/s|skipped|" || strings.Join(got[2], "|") != "host → container|-|failed|" {
		t.Errorf("table %q", got)
	}
}

func TestFormatRate(t *testing.T) {
	for bps, want := range map[float64]string{
		0.398e9: "0.398 Gbit/s", 42.2e9: "42.2 Gbit/s", 16.66e9: "16.7 Gbit/s", 123.4e9: "123 Gbit/s",
		1e9: "1.00 Gbit/s", 0.1e9: "0.100 Gbit/s", 99.5e6: "99.5 Mbit/s", 9.5e6: "9.50 Mbit/s", 0.25e6: "0.250 Mbit/s", 0: "0 Mbit/s",
	} {
		if got := FormatRate(bps); got != want {
			t.Errorf("FormatRate(%v) = %q, want %q", bps, got, want)
		}
	}
	if got := FormatChange(-0.034); got != "-3%" {
		t.Errorf("FormatChange = %q", got)
	}
}

func TestBaselineRoundTripAndCompare(t *testing.T) {
	path := BaselinePath(filepath.Join(t.TempDir(), "state"))
	if !strings.HasSuffix(path, "/state/virt-setup/bench-baseline.json") {
		t.Errorf("BaselinePath = %s", path)
	}
	if _, err := LoadBaseline(path); !errors.Is(err, ErrNoBaseline) {
		t.Fatalf("missing baseline: %v", err)
	}
	base := nerdctlsTable()
	base.Started = time.Date(2026, 11, 29, 18, 0, 0, 0, time.UTC)
	// A baseline never carries a comparison of its own.
	base.Results[0].Baseline = &Comparison{BitsPerSecond: 1, Change: 1}
	base.BaselineFrom = &BaselineInfo{Path: "old"}
	if err := SaveBaseline(path, base); err != nil {
		t.Fatal(err)
	}
	loaded, err := LoadBaseline(path)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.BaselineFrom != nil || loaded.Results[0].Baseline != nil || len(loaded.Results) != 5 || !loaded.Started.Equal(base.Started) {
		t.Errorf("loaded %+v", loaded)
	}
	if base.Results[0].Baseline == nil {
		t.Error("SaveBaseline changed the report it saved")
	}

	now := &Report{Results: []Result{
		result(ContainerToHost, StatusOK, 0.5e9, 1),              // faster
		result(ContainerToHostBypass4netns, StatusOK, 21.1e9, 1), // half as fast
		result(HostToContainer, StatusOK, 20e9, 4),               // four streams: not comparable
		result(HostToContainerBypass4netns, StatusSkipped, 0, 1), // nothing to compare
	}}
	now.Compare(loaded, path)
	if now.BaselineFrom == nil || now.BaselineFrom.Path != path || !now.BaselineFrom.Started.Equal(base.Started) {
		t.Errorf("BaselineFrom = %+v", now.BaselineFrom)
	}
	c := now.Results[0].Baseline
	if c == nil || !near(c.BitsPerSecond, 0.398e9) || !near(c.Change, 0.5/0.398-1) {
		t.Errorf("container → host: %+v", c)
	}
	if c := now.Results[1].Baseline; c == nil || !near(c.Change+1, 0.5) {
		t.Errorf("bypass4netns: %+v", c)
	}
	if now.Results[2].Baseline != nil || now.Results[3].Baseline != nil {
		t.Errorf("compared what is not comparable: %+v", now.Results)
	}
	if got := now.Table()[1][1]; got != "0.500 Gbit/s (+26%)" {
		t.Errorf("cell with baseline: %q", got)
	}

	if err := os.WriteFile(path, []byte(`{"schema_version": 99}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadBaseline(path); err == nil || !strings.Contains(err.Error(), "version 99") {
		t.Errorf("future baseline: %v", err)
	}
	if err := os.WriteFile(path, []byte(`not json`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadBaseline(path); err == nil || errors.Is(err, ErrNoBaseline) {
		t.Errorf("garbled baseline: %v", err)
	}
}

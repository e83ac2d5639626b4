package bench

import (
	"fmt"
	"math"
	"time"
)

// ReportSchemaVersion is the version of the report's JSON form (also the baseline file's).
const ReportSchemaVersion = 1

// Result statuses.
const (
	StatusOK      = "ok"
	StatusSkipped = "skipped"
	StatusFailed  = "failed"
)

// Result is one scenario's outcome.
type Result struct {
	Scenario
	// Status is StatusOK, StatusSkipped or StatusFailed.
	Status string `json:"status"`
	// BitsPerSecond is what the receiver got, from iperf3's summary: the figure of the table.
	BitsPerSecond float64 `json:"bits_per_second,omitempty"`
	// SenderBitsPerSecond and Retransmits are the sender's side of the summary.
	SenderBitsPerSecond float64 `json:"sender_bits_per_second,omitempty"`
	Retransmits         int     `json:"retransmits,omitempty"`
	// Seconds is the measured time (the receiver's summary interval).
	Seconds float64 `json:"seconds,omitempty"`
	Streams int     `json:"streams,omitempty"`
	// Command and ServerCommand are the iperf3 client's and server's command lines, to repeat
	// the measurement by hand.
	Command       string `json:"command,omitempty"`
	ServerCommand string `json:"server_command,omitempty"`
	// Reason says why a scenario was skipped; Err why it failed; Fix what to do about either.
	Reason string `json:"reason,omitempty"`
	Err    string `json:"error,omitempty"`
	Fix    string `json:"fix,omitempty"`
	// Baseline is the same scenario in the baseline, when it has a comparable one.
	Baseline *Comparison `json:"baseline,omitempty"`
}

// Comparison is a result next to the baseline's.
type Comparison struct {
	BitsPerSecond float64 `json:"bits_per_second"`
	// Change is the relative change from the baseline: 0.1 is 10% faster, -0.5 half as fast.
	Change float64 `json:"change"`
}

// Report is a whole run: its settings and every scenario's result.
type Report struct {
	SchemaVersion int       `json:"schema_version"`
	Started       time.Time `json:"started"`
	// Seconds is each test's length and Omit its warm-up (iperf3 -t and -O); Parallel is -P.
	Seconds  float64 `json:"seconds"`
	Omit     float64 `json:"omit"`
	Parallel int     `json:"parallel"`
	// Iperf3 is the host's iperf3 version, Image the image the container side ran.
	Iperf3 string `json:"iperf3"`
	Image  string `json:"image,omitempty"`
	// HostAddress is the host's non-loopback address the containers sent to.
	HostAddress string   `json:"host_address,omitempty"`
	Results     []Result `json:"results"`
	// BaselineFrom says which baseline the results were compared with.
	BaselineFrom *BaselineInfo `json:"baseline_from,omitempty"`
}

// BaselineInfo names a baseline.
type BaselineInfo struct {
	Path    string    `json:"path"`
	Started time.Time `json:"started"`
}

// Result returns the result of a scenario.
func (r *Report) Result(id ScenarioID) (Result, bool) {
	for _, res := range r.Results {
		if res.ID == id {
			return res, true
		}
	}
	return Result{}, false
}

// Failed tells whether any scenario failed.
func (r *Report) Failed() bool {
	for _, res := range r.Results {
		if res.Status == StatusFailed {
			return true
		}
	}
	return false
}

// Compare puts the baseline's figure and the change next to each result that the baseline has
// measured the same way (the same number of parallel streams: one stream and four are not the
// same measurement).
func (r *Report) Compare(base *Report, path string) {
	if base == nil {
		return
	}
	r.BaselineFrom = &BaselineInfo{Path: path, Started: base.Started}
	for i := range r.Results {
		res := &r.Results[i]
		res.Baseline = nil
		b, ok := base.Result(res.ID)
		if !ok || res.Status != StatusOK || b.Status != StatusOK || b.BitsPerSecond <= 0 || b.Streams != res.Streams {
			continue
		}
		res.Baseline = &Comparison{BitsPerSecond: b.BitsPerSecond, Change: res.BitsPerSecond/b.BitsPerSecond - 1}
	}
}

// Speedup is how many times faster a scenario is with bypass4netns than without, when both ran.
func (r *Report) Speedup(d Direction) (float64, bool) {
	var with, without float64
	for _, res := range r.Results {
		if res.Direction != d || res.Status != StatusOK {
			continue
		}
		if res.Bypass4netns {
			with = res.BitsPerSecond
		} else {
			without = res.BitsPerSecond
		}
	}
	if with <= 0 || without <= 0 {
		return 0, false
	}
	return with / without, true
}

// FormatRate renders bits per second the way nerdctl's table does, in Gbit/s with three
// significant digits ("0.398 Gbit/s", "42.2 Gbit/s"), or Mbit/s below 0.1 Gbit/s.
func FormatRate(bps float64) string {
	if bps < 100e6 {
		return sig3(bps/1e6) + " Mbit/s"
	}
	return sig3(bps/1e9) + " Gbit/s"
}

// sig3 prints v with three significant digits and no exponent.
func sig3(v float64) string {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return "0"
	}
	digits := 2 - int(math.Floor(math.Log10(v)))
	if digits < 0 {
		digits = 0
	}
	return fmt.Sprintf("%.*f", digits, v)
}

// FormatChange renders a relative change as "+12%" or "-3%".
func FormatChange(c float64) string { return fmt.Sprintf("%+.0f%%", c*100) }

// Table lays the results out as nerdctl's documentation does: one row per direction, a column
// without and one with bypass4netns, how many times faster bypass4netns is, and host loopback
// as the ceiling. Cells name a skipped or failed scenario, and carry the change against the
// baseline when there is one. The first row is the header.
func (r *Report) Table() [][]string {
	cell := func(id ScenarioID) string {
		res, ok := r.Result(id)
		if !ok {
			return "-"
		}
		switch res.Status {
		case StatusSkipped:
			return "skipped"
		case StatusFailed:
			return "failed"
		}
		s := FormatRate(res.BitsPerSecond)
		if res.Baseline != nil {
			s += " (" + FormatChange(res.Baseline.Change) + ")"
		}
		return s
	}
	speedup := func(d Direction) string {
		if x, ok := r.Speedup(d); ok {
			return sig3(x) + "×"
		}
		return ""
	}
	rows := [][]string{{"iperf3", "without bypass4netns", "with bypass4netns", "bypass4netns gain"}}
	if r.has(DirContainerToHost) {
		rows = append(rows, []string{"container → host", cell(ContainerToHost), cell(ContainerToHostBypass4netns), speedup(DirContainerToHost)})
	}
	if r.has(DirHostToContainer) {
		rows = append(rows, []string{"host → container", cell(HostToContainer), cell(HostToContainerBypass4netns), speedup(DirHostToContainer)})
	}
	if r.has(DirLoopback) {
		rows = append(rows, []string{"host loopback (ceiling)", cell(HostLoopback), "", ""})
	}
	return rows
}

func (r *Report) has(d Direction) bool {
	for _, res := range r.Results {
		if res.Direction == d {
			return true
		}
	}
	return false
}

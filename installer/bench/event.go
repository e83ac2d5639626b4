package bench

import "time"

// EventKind says what happened.
type EventKind string

// Event kinds, in the order a run produces them: started; output while the image is prepared;
// for each scenario scenario-started, its samples and exactly one scenario-done (whose Result says
// ok, skipped or failed); finished last, also after a failure or Ctrl-C.
const (
	EventStarted         EventKind = "started"
	EventOutput          EventKind = "output"
	EventScenarioStarted EventKind = "scenario-started"
	EventSample          EventKind = "sample"
	EventScenarioDone    EventKind = "scenario-done"
	EventFinished        EventKind = "finished"
)

// Event is one thing the benchmark reports. A front end (the wizard's live panel, the CLI's lines)
// renders events and never looks inside the run.
type Event struct {
	Kind EventKind `json:"kind"`
	Time time.Time `json:"time"`
	// Scenario, Title, Index (1-based) and Total place a scenario event in the run.
	Scenario ScenarioID `json:"scenario,omitempty"`
	Title    string     `json:"title,omitempty"`
	Index    int        `json:"index,omitempty"`
	Total    int        `json:"total,omitempty"`
	// Line is a progress message (EventOutput).
	Line string `json:"line,omitempty"`
	// Sample is one interval as iperf3 reported it (EventSample).
	Sample *Sample `json:"sample,omitempty"`
	// Result is the scenario's outcome (EventScenarioDone).
	Result *Result `json:"result,omitempty"`
	// Report is the whole run (EventFinished).
	Report *Report `json:"report,omitempty"`
	// Err and Fix say why the run failed (EventFinished).
	Err string `json:"error,omitempty"`
	Fix string `json:"fix,omitempty"`
}

// Sample is one interval of a running test.
type Sample struct {
	Scenario ScenarioID `json:"scenario"`
	// Start and End are seconds since the test started, as iperf3 printed them.
	Start         float64 `json:"start"`
	End           float64 `json:"end"`
	BitsPerSecond float64 `json:"bits_per_second"`
	// Warmup marks an interval of the warm-up (iperf3 -O) that the result leaves out.
	Warmup bool `json:"warmup,omitempty"`
}

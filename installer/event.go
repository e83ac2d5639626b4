package installer

import "time"

// EventKind says what happened.
type EventKind string

// Event kinds, in the order a step produces them: started, then output and progress, then exactly
// one of done, skipped or failed. The run ends with finished.
const (
	EventPlanStarted EventKind = "plan-started"
	EventStepStarted EventKind = "step-started"
	EventOutput      EventKind = "output"
	EventProgress    EventKind = "progress"
	EventStepDone    EventKind = "step-done"
	EventStepSkipped EventKind = "step-skipped"
	EventStepFailed  EventKind = "step-failed"
	EventFinished    EventKind = "finished"
)

// Event is one thing the engine reports. Front ends render events; they never look inside steps.
type Event struct {
	Kind EventKind `json:"kind"`
	Time time.Time `json:"time"`
	// Step is the step's ID (empty for plan-level events); Index and Total place it in the plan.
	Step  string `json:"step,omitempty"`
	Title string `json:"title,omitempty"`
	Index int    `json:"index"`
	Total int    `json:"total"`
	// Line is one line of output (EventOutput).
	Line string `json:"line,omitempty"`
	// Progress is the share of the plan done, 0 to 1 (EventProgress and step ends).
	Progress float64 `json:"progress,omitempty"`
	// Reason says why a step was skipped (EventStepSkipped).
	Reason string `json:"reason,omitempty"`
	// Err is the failure (EventStepFailed, or EventFinished when the run failed or was cancelled).
	Err string `json:"error,omitempty"`
	// Fix says what the user can do about a failure.
	Fix string `json:"fix,omitempty"`
	// Duration is how long the step or run took (step ends, finished).
	Duration time.Duration `json:"duration,omitempty"`
}

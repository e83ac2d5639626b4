package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/virt-setup/virt-setup/installer"
)

// eventRenderer returns the Emit function for a run without a TUI: JSON lines when asked for,
// plain lines otherwise.
func eventRenderer(w io.Writer, st styles, jsonLines bool) func(installer.Event) {
	if jsonLines {
		return newJSONEventWriter(w).Emit
	}
	return newEventPrinter(w, st).Emit
}

// eventPrinter renders engine events as plain lines, for runs without a TUI (`install --yes`, a
// pipe, TERM=dumb): a line when a step starts and one when it ends, each placed as [n/N] and with
// a glyph and a word, the step's output indented below it, the fix after a failure and a summary
// at the end. Nothing is redrawn, so the output reads the same in a log file. Like every Emit
// function it is not safe for concurrent use; the engine never calls it concurrently.
type eventPrinter struct {
	w  io.Writer
	st styles
	// counts of step ends, for the summary.
	done, skipped, failed, total int
	// lastFix is the fix printed after the last failed step, so the summary does not repeat it.
	lastFix string
}

func newEventPrinter(w io.Writer, st styles) *eventPrinter {
	return &eventPrinter{w: w, st: st}
}

// Emit renders one event; it has the signature of installer.RunOptions.Emit.
func (p *eventPrinter) Emit(ev installer.Event) {
	switch ev.Kind {
	case installer.EventPlanStarted:
		p.total = ev.Total
		p.done, p.skipped, p.failed, p.lastFix = 0, 0, 0, ""
		fmt.Fprintf(p.w, "%d %s\n", ev.Total, plural(ev.Total, "step", "steps"))
	case installer.EventStepStarted:
		p.stepLine(ev, p.st.dim.Render("▸ start  "), ev.Title)
	case installer.EventOutput:
		if ev.Step == "" {
			fmt.Fprintf(p.w, "%s\n", ev.Line)
			return
		}
		fmt.Fprintf(p.w, "%s%s\n", p.indent(ev), p.st.dim.Render("│ "+ev.Line))
	case installer.EventStepDone:
		p.done++
		p.stepLine(ev, p.st.ok.Render("✓ done   "), fmt.Sprintf("%s (%s)", ev.Title, shortDuration(ev.Duration)))
	case installer.EventStepSkipped:
		p.skipped++
		p.stepLine(ev, p.st.skip.Render("↷ skipped"), fmt.Sprintf("%s: %s", ev.Title, ev.Reason))
	case installer.EventStepFailed:
		p.failed++
		p.stepLine(ev, p.st.fail.Render("✗ failed "), fmt.Sprintf("%s (%s)", ev.Title, shortDuration(ev.Duration)))
		p.detail(ev, "error", ev.Err)
		p.detail(ev, "fix", ev.Fix)
		p.lastFix = ev.Fix
	case installer.EventFinished:
		p.summary(ev)
	}
	// EventProgress adds nothing to [n/N] in a line-by-line log.
}

// stepLine writes "[n/N] <status> <text>", with n padded so that the statuses line up.
func (p *eventPrinter) stepLine(ev installer.Event, status, text string) {
	fmt.Fprintf(p.w, "%s %s  %s\n", p.position(ev), status, text)
}

func (p *eventPrinter) position(ev installer.Event) string {
	n := len(fmt.Sprint(ev.Total))
	return fmt.Sprintf("[%*d/%d]", n, ev.Index, ev.Total)
}

// indent lines continuation text up under the status.
func (p *eventPrinter) indent(ev installer.Event) string {
	return strings.Repeat(" ", len(p.position(ev))+1)
}

// detail writes a labelled continuation line for each line of text.
func (p *eventPrinter) detail(ev installer.Event, label, text string) {
	if text == "" {
		return
	}
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	pad := strings.Repeat(" ", len(label)+2)
	for i, l := range lines {
		prefix := pad
		if i == 0 {
			prefix = p.st.label.Render(label+":") + " "
		}
		fmt.Fprintf(p.w, "%s%s%s\n", p.indent(ev), prefix, l)
	}
}

// summary writes the last line: the outcome as glyph and word, the counts, the duration; then the
// run's error and fix when no failed step has already shown them.
func (p *eventPrinter) summary(ev installer.Event) {
	notRun := max(p.total-p.done-p.skipped-p.failed, 0)
	counts := fmt.Sprintf("%d done, %d skipped, %d failed, %d not run in %s",
		p.done, p.skipped, p.failed, notRun, shortDuration(ev.Duration))
	switch {
	case ev.Err == "":
		fmt.Fprintf(p.w, "%s %s\n", p.st.ok.Render("✓ finished:"), counts)
	case strings.Contains(ev.Err, "cancelled"):
		fmt.Fprintf(p.w, "%s %s\n", p.st.fail.Render("✗ cancelled:"), counts)
	default:
		fmt.Fprintf(p.w, "%s %s\n", p.st.fail.Render("✗ failed:"), counts)
	}
	if ev.Err != "" && p.failed == 0 {
		fmt.Fprintf(p.w, "  %s %s\n", p.st.label.Render("error:"), ev.Err)
	}
	if ev.Fix != "" && ev.Fix != p.lastFix {
		fmt.Fprintf(p.w, "  %s %s\n", p.st.label.Render("fix:"), ev.Fix)
	}
}

// shortDuration rounds a duration to what a person reads: milliseconds under a second, tenths of a
// second above.
func shortDuration(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// jsonEventWriter writes each event as one JSON object on its own line (`--output=jsonl`): a stable
// stream for CI and other front ends, in the same order and with the same fields as the engine
// emits them.
type jsonEventWriter struct {
	enc *json.Encoder
	err error
}

func newJSONEventWriter(w io.Writer) *jsonEventWriter {
	return &jsonEventWriter{enc: json.NewEncoder(w)}
}

// Emit writes one event; it has the signature of installer.RunOptions.Emit. The first write error
// is kept for Err, since Emit cannot return one.
func (j *jsonEventWriter) Emit(ev installer.Event) {
	if j.err != nil {
		return
	}
	if err := j.enc.Encode(ev); err != nil {
		j.err = fmt.Errorf("write event: %w", err)
	}
}

// Err returns the first error writing an event.
func (j *jsonEventWriter) Err() error { return j.err }

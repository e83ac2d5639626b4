package bench

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// LinePrinter renders events as plain lines, for a terminal without the wizard, a pipe or a log:
// a line when a scenario starts, one per interval as iperf3 reports it, one when the scenario ends
// (with the change against the baseline, when there is one), the fix under a skip or failure.
// Nothing is redrawn. Like every Emit function it is not safe for concurrent use.
type LinePrinter struct {
	W io.Writer
	// Baseline, when set, is compared with each result as it arrives.
	Baseline *Report
}

// Emit renders one event; it has the signature of Options.Emit.
func (p *LinePrinter) Emit(ev Event) {
	switch ev.Kind {
	case EventStarted:
		fmt.Fprintf(p.W, "%d %s\n", ev.Total, plural(ev.Total, "scenario", "scenarios"))
	case EventOutput:
		fmt.Fprintf(p.W, "· %s\n", ev.Line)
	case EventScenarioStarted:
		fmt.Fprintf(p.W, "%s ▸ %s\n", position(ev), ev.Title)
	case EventSample:
		s := ev.Sample
		line := fmt.Sprintf("%s %13s  %s", indent(ev), fmt.Sprintf("%.2f-%.2f s", s.Start, s.End), FormatRate(s.BitsPerSecond))
		if s.Warmup {
			line += "  (warm-up, not counted)"
		}
		fmt.Fprintln(p.W, strings.TrimRight(line, " "))
	case EventScenarioDone:
		p.done(ev)
	case EventFinished:
		if ev.Err != "" {
			fmt.Fprintf(p.W, "✗ %s\n", ev.Err)
			if ev.Fix != "" {
				fmt.Fprintf(p.W, "  fix: %s\n", ev.Fix)
			}
		}
	}
}

func (p *LinePrinter) done(ev Event) {
	r := ev.Result
	switch r.Status {
	case StatusOK:
		line := fmt.Sprintf("%s ✓ %s: %s", position(ev), ev.Title, FormatRate(r.BitsPerSecond))
		if r.Retransmits > 0 {
			line += fmt.Sprintf(" (%d retransmits)", r.Retransmits)
		}
		if p.Baseline != nil {
			cmp := *p.Baseline
			single := Report{Results: []Result{*r}}
			single.Compare(&cmp, "")
			if c := single.Results[0].Baseline; c != nil {
				line += fmt.Sprintf(", %s against the baseline's %s", FormatChange(c.Change), FormatRate(c.BitsPerSecond))
			}
		}
		fmt.Fprintln(p.W, line)
		if r.ServerCommand != "" {
			fmt.Fprintf(p.W, "%s by hand: %s\n", indent(ev), r.ServerCommand)
			fmt.Fprintf(p.W, "%s    then: %s\n", indent(ev), r.Command)
		} else {
			fmt.Fprintf(p.W, "%s by hand: %s\n", indent(ev), r.Command)
		}
	case StatusSkipped:
		fmt.Fprintf(p.W, "%s ↷ skipped %s: %s\n", position(ev), ev.Title, r.Reason)
		if r.Fix != "" {
			fmt.Fprintf(p.W, "%s fix: %s\n", indent(ev), r.Fix)
		}
	default:
		fmt.Fprintf(p.W, "%s ✗ failed %s: %s\n", position(ev), ev.Title, r.Err)
		if r.Fix != "" {
			fmt.Fprintf(p.W, "%s fix: %s\n", indent(ev), r.Fix)
		}
	}
}

func position(ev Event) string {
	n := len(fmt.Sprint(ev.Total))
	return fmt.Sprintf("[%*d/%d]", n, ev.Index, ev.Total)
}

// indent lines a continuation up under the status.
func indent(ev Event) string { return strings.Repeat(" ", len(position(ev))) }

// WriteTable writes the report's table (Report.Table) with aligned columns, then where the
// baseline came from.
func WriteTable(w io.Writer, r *Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	for _, row := range r.Table() {
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write the table: %w", err)
	}
	if b := r.BaselineFrom; b != nil {
		_, err := fmt.Fprintf(w, "(changes against the baseline of %s, %s)\n", b.Started.Local().Format("2006-01-02 15:04"), b.Path)
		return err
	}
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/virt-setup/virt-setup/probe"
)

// doctorOptions are the inputs of `virt-setup doctor`.
type doctorOptions struct {
	streams
	host hostOptions
	JSON bool
}

func newDoctorCmd(s streams, runF func(context.Context, *doctorOptions) error) *cobra.Command {
	opts := &doctorOptions{streams: s}
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check this host for everything rootless containerd needs, and say how to fix what is missing",
		Long: `doctor probes the host (see 'virt-setup probe') and runs the check catalog against the facts. Each
check has a stable ID ('virt-setup explain ID'), a status (ok, warn, fail, skip), the evidence it
looked at, why it matters, and a fix split into what you run and what needs root. It ends with the
recommended setup: snapshotter, RootlessKit network and port drivers, and the usable add-ons.

Exit status: 0 all good, 3 at least one failure, 4 warnings only (1 and 2: virt-setup itself failed).`,
		Example: `  virt-setup doctor
  virt-setup doctor --json | jq '.checks[] | select(.status == "fail")'
  virt-setup doctor --host-profile ubuntu-24.04`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(c.Context(), opts)
			}
			return doctorRun(c.Context(), opts)
		},
	}
	opts.host.addFlags(cmd.Flags())
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print one JSON document: facts, checks and recommendation (schema: docs/schema.md)")
	return cmd
}

func doctorRun(ctx context.Context, opts *doctorOptions) error {
	f, err := opts.host.facts(ctx, nil)
	if err != nil {
		return err
	}
	report := probe.NewReport(f)
	if opts.JSON {
		if err := writeJSON(opts.Out, report); err != nil {
			return err
		}
	} else {
		renderDoctor(opts.Out, report, newStyles(opts.Out))
	}
	if code := probe.ExitCode(report.Checks); code != probe.ExitOK {
		return &exitCodeError{code: code}
	}
	return nil
}

// renderDoctor writes failures and warnings in full, then one line per passed or skipped check, then
// the recommendation.
func renderDoctor(w io.Writer, r probe.Report, st styles) {
	fmt.Fprintf(w, "%s %s\n\n", st.heading.Render("virt-setup doctor:"), hostLine(r.Facts))

	counts := map[probe.Status]int{}
	for _, c := range r.Checks {
		counts[c.Status]++
	}
	for _, want := range []probe.Status{probe.StatusFail, probe.StatusWarn} {
		for _, c := range r.Checks {
			if c.Status == want {
				renderResult(w, c, st)
			}
		}
	}
	for _, c := range r.Checks {
		if c.Status == probe.StatusOK || c.Status == probe.StatusSkip {
			fmt.Fprintf(w, "%s  %-16s %s\n", st.status(string(c.Status)), c.ID, c.Title)
		}
	}
	fmt.Fprintf(w, "\n%d failed, %d warnings, %d ok, %d skipped. 'virt-setup explain ID' tells more about a check.\n\n",
		counts[probe.StatusFail], counts[probe.StatusWarn], counts[probe.StatusOK], counts[probe.StatusSkip])
	renderRecommendation(w, r.Recommendation, st)
}

func renderResult(w io.Writer, c probe.Result, st styles) {
	fmt.Fprintf(w, "%s  %-16s %s\n", st.status(string(c.Status)), c.ID, st.heading.Render(c.Title))
	indent := strings.Repeat(" ", 8)
	for _, e := range c.Evidence {
		fmt.Fprintf(w, "%s%s %s\n", indent, st.dim.Render("seen:"), oneLine(e))
	}
	if c.Why != "" {
		fmt.Fprintf(w, "%s%s %s\n", indent, st.dim.Render("why: "), c.Why)
	}
	renderFix(w, c.Fix, indent, st)
	if c.Doc != "" {
		fmt.Fprintf(w, "%s%s %s\n", indent, st.dim.Render("docs:"), c.Doc)
	}
	fmt.Fprintln(w)
}

func renderFix(w io.Writer, x probe.Fix, indent string, st styles) {
	if x.IsZero() {
		return
	}
	if x.Summary != "" {
		fmt.Fprintf(w, "%s%s %s\n", indent, st.dim.Render("fix: "), x.Summary)
	}
	if len(x.User) > 0 {
		fmt.Fprintf(w, "%s  as you:\n", indent)
		for _, l := range x.User {
			fmt.Fprintf(w, "%s    %s\n", indent, l)
		}
	}
	if len(x.Root) > 0 {
		fmt.Fprintf(w, "%s  as root (review, then run with sudo):\n", indent)
		for _, l := range x.Root {
			fmt.Fprintf(w, "%s    %s\n", indent, l)
		}
	}
	for _, n := range x.Notes {
		fmt.Fprintf(w, "%s  note: %s\n", indent, n)
	}
}

func renderRecommendation(w io.Writer, rec probe.Recommendation, st styles) {
	fmt.Fprintln(w, st.heading.Render("Recommended setup"))
	fmt.Fprintf(w, "  %s  %s\n", st.label.Render("snapshotter "), rec.Snapshotter)
	for _, r := range rec.Reasons {
		renderReason(w, r, "                ", st)
	}
	rk := rec.RootlessKit
	net := rk.NetworkDriver
	if net == "" {
		net = "none usable"
	} else {
		net += fmt.Sprintf(" (MTU %d)", rk.MTU)
	}
	fmt.Fprintf(w, "  %s  %s\n", st.label.Render("network     "), net)
	for _, r := range rk.NetworkReasons {
		renderReason(w, r, "                ", st)
	}
	fmt.Fprintf(w, "  %s  %s\n", st.label.Render("port driver "), rk.PortDriver)
	fmt.Fprintf(w, "  %s  %s\n", st.label.Render("detach-netns"), yesNo(rk.DetachNetns))
	for _, r := range rk.Warnings {
		fmt.Fprintf(w, "                %s %s\n", st.warn.Render("! warn"), r.Text)
	}
	addOn := func(name string, a probe.AddOn, extra string) {
		state := st.status("skip") + " unavailable"
		if a.Available {
			state = st.status("ok") + " available"
		}
		fmt.Fprintf(w, "  %s  %s%s\n", st.label.Render(fmt.Sprintf("%-12s", name)), state, extra)
		for _, r := range a.Reasons {
			renderReason(w, r, "                ", st)
		}
	}
	addOn("BuildKit", rec.AddOns.BuildKit, "")
	addOn("stargz", rec.AddOns.Stargz, "")
	extra := ""
	if rec.AddOns.Bypass4netns.Flag != "" {
		extra = " (nerdctl run " + rec.AddOns.Bypass4netns.Flag + ")"
	}
	addOn("bypass4netns", rec.AddOns.Bypass4netns.AddOn, extra)
}

func renderReason(w io.Writer, r probe.Reason, indent string, st styles) {
	fmt.Fprintf(w, "%s· %s\n", indent, r.Text)
	for _, e := range r.Evidence {
		fmt.Fprintf(w, "%s  %s\n", indent, st.dim.Render(oneLine(e)))
	}
}

// hostLine summarises the host in one line: distro, kernel, user.
func hostLine(f *probe.Facts) string {
	var parts []string
	if f.OS.Distro.Known && f.OS.Distro.Value.Name != "" {
		parts = append(parts, f.OS.Distro.Value.Name)
	}
	if f.OS.Kernel.Known {
		parts = append(parts, "kernel "+f.OS.Kernel.Value.Release)
	}
	if f.Identity.User.Known {
		parts = append(parts, fmt.Sprintf("user %s (uid %d)", f.Identity.User.Value, f.Identity.UID.Value))
	}
	switch f.Meta.Mode {
	case "profile":
		parts = append(parts, "replayed from "+f.Meta.Profile)
	case "root":
		parts = append(parts, "probed below "+f.Meta.Root)
	}
	if len(parts) == 0 {
		return "unknown host"
	}
	return strings.Join(parts, " · ")
}

// maxEvidenceLine bounds one line of evidence in the terminal; --json keeps the whole excerpt.
const maxEvidenceLine = 160

// oneLine folds a multi-line excerpt (a command's output) into one line, so the evidence stays in
// its column, and shortens it.
func oneLine(s string) string {
	fields := strings.Split(s, "\n")
	for i := range fields {
		fields[i] = strings.TrimSpace(fields[i])
	}
	s = strings.Join(slices.DeleteFunc(fields, func(x string) bool { return x == "" }), " ⏎ ")
	if r := []rune(s); len(r) > maxEvidenceLine {
		s = string(r[:maxEvidenceLine-1]) + "…"
	}
	return s
}

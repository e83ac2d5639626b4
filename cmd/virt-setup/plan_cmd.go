package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/virt-setup/virt-setup/installer"
	"github.com/virt-setup/virt-setup/internal/fsutil"
)

// planOptions are the inputs of `virt-setup plan` (and `install --dry-run`).
type planOptions struct {
	streams
	Answers     string
	JSON        bool
	SaveAnswers string
}

func newPlanCmd(s streams) *cobra.Command {
	opts := &planOptions{streams: s}
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Show what install would do: every command, and a diff of every file",
		Long: `plan probes this host, takes the answers (a file, or the recommendation), and prints the ordered
steps of the install: the commands each runs, a unified diff of every file it creates or changes,
and the steps that need root, gathered into one script. It changes nothing.`,
		Example: `  virt-setup plan
  virt-setup plan --save-answers answers.toml   # then edit, and: virt-setup install --answers answers.toml
  virt-setup plan --answers answers.toml --json`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return planRun(c.Context(), opts) },
	}
	cmd.Flags().StringVar(&opts.Answers, "answers", "", "answers file (default: the recommendation for this host)")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the plan as JSON")
	cmd.Flags().StringVar(&opts.SaveAnswers, "save-answers", "", "also write the answers the plan uses to this file")
	return cmd
}

// planDocument is `plan --json`.
type planDocument struct {
	Answers          installer.Answers    `json:"answers"`
	AnswersSource    string               `json:"answers_source"`
	Steps            []installer.StepInfo `json:"steps"`
	PrivilegedScript string               `json:"privileged_script,omitempty"`
}

func planRun(ctx context.Context, opts *planOptions) error {
	rt := newRuntime()
	plan, _, source, err := livePlan(ctx, opts.Answers, rt)
	if err != nil {
		return err
	}
	if opts.SaveAnswers != "" {
		b, err := plan.Answers.Marshal()
		if err != nil {
			return err
		}
		if err := fsutil.WriteFileAtomic(opts.SaveAnswers, b, 0o644); err != nil {
			return fmt.Errorf("save answers: %w", err)
		}
		fmt.Fprintf(opts.ErrOut, "saved the answers to %s\n", opts.SaveAnswers)
	}
	if opts.JSON {
		return writeJSON(opts.Out, planDocument{Answers: plan.Answers, AnswersSource: source, Steps: plan.Infos(), PrivilegedScript: privilegedScript(plan)})
	}
	renderPlan(opts.Out, plan, source, newStyles(opts.Out))
	return nil
}

// privilegedScript is the root script of a plan, "" when it needs none.
func privilegedScript(plan *installer.Plan) string {
	for _, in := range plan.Infos() {
		if in.Privileged {
			return installer.PrivilegedScript(in.Commands, nil)
		}
	}
	return ""
}

// renderPlan prints the steps, their commands and diffs, and the root script apart.
func renderPlan(w io.Writer, plan *installer.Plan, source string, st styles) {
	a := plan.Answers
	on := func(b bool) string { return map[bool]string{true: "on", false: "off"}[b] }
	fmt.Fprintf(w, "%s answers from %s\n", st.heading.Render("Plan:"), source)
	fmt.Fprintf(w, "  snapshotter %s · service %s · BuildKit %s · stargz %s · bypass4netns %s\n",
		a.Snapshotter, a.ServiceMode, on(a.AddOns.BuildKit), on(a.AddOns.Stargz), on(a.AddOns.Bypass4netns))
	rk := a.RootlessKit
	fmt.Fprintf(w, "  RootlessKit: network %s, MTU %d, port driver %s, detach-netns %s\n\n", rk.NetworkDriver, rk.MTU, rk.PortDriver, rk.DetachNetns)
	infos := plan.Infos()
	for i, in := range infos {
		fmt.Fprintf(w, "%s %-10s %s\n", st.label.Render(fmt.Sprintf("[%d/%d]", i+1, len(infos))), in.Kind, in.Title)
		if in.Error != "" {
			fmt.Fprintf(w, "       %s %s\n", st.status("fail"), in.Error)
		}
		if in.Privileged {
			fmt.Fprintln(w, st.warn.Render("       needs root: shown below, run only with your consent (--sudo, or by hand)"))
			continue
		}
		for _, c := range in.Commands {
			fmt.Fprintf(w, "       $ %s\n", c)
		}
		for _, fc := range in.Files {
			if fc.Diff == "" {
				fmt.Fprintf(w, "       %s: unchanged\n", fc.Path)
				continue
			}
			for _, l := range strings.Split(strings.TrimRight(fc.Diff, "\n"), "\n") {
				fmt.Fprintf(w, "       %s\n", diffLine(l, st))
			}
		}
	}
	if script := privilegedScript(plan); script != "" {
		fmt.Fprintf(w, "\n%s\n", st.heading.Render("Root script (review it; `virt-setup install --sudo` runs it through sudo):"))
		for _, l := range strings.Split(strings.TrimRight(script, "\n"), "\n") {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
}

func diffLine(l string, st styles) string {
	switch {
	case strings.HasPrefix(l, "+++") || strings.HasPrefix(l, "---"):
		return st.label.Render(l)
	case strings.HasPrefix(l, "+"):
		return st.ok.Render(l)
	case strings.HasPrefix(l, "-"):
		return st.fail.Render(l)
	case strings.HasPrefix(l, "@@"):
		return st.dim.Render(l)
	}
	return l
}

func newValidateCmd(s streams) *cobra.Command {
	return &cobra.Command{
		Use:   "validate FILE",
		Short: "Check an answers file: every key known, every value allowed",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			b, err := os.ReadFile(args[0])
			if err != nil {
				return fmt.Errorf("read answers: %w", err)
			}
			if _, err := installer.ParseAnswers(b, args[0]); err != nil {
				return usageError{err}
			}
			fmt.Fprintf(s.Out, "%s is valid\n", args[0])
			return nil
		},
	}
}

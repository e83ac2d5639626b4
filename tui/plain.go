package tui

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"

	"github.com/virt-setup/virt-setup/installer"
	"github.com/virt-setup/virt-setup/probe"
)

// PlainOptions configure the plain flow: the wizard's steps as lines and prompts, for a terminal
// without a TUI (TERM=dumb, --plain) or no terminal at all. Nothing is redrawn, so the output reads
// the same in a log file.
type PlainOptions struct {
	Backend Backend
	In      io.Reader
	Out     io.Writer
	// RenderEvent prints one engine event (the CLI's renderer, shared with `virt-setup install`).
	RenderEvent func(installer.Event)
	// RenderPlan prints the plan (the CLI's `virt-setup plan` output).
	RenderPlan func(*installer.Plan)
	// RenderFinding prints one failing or warning check in full (the doctor's output).
	RenderFinding func(probe.Result)
	// RunPrivileged runs the reviewed root script with this terminal; nil means the plan stops at
	// the root script and says how to run it by hand.
	RunPrivileged func(ctx context.Context, path string) error
	// Log receives the log; nil discards.
	Log *slog.Logger
}

// plainRun is one run of the plain flow.
type plainRun struct {
	o   PlainOptions
	ctx context.Context
	in  *bufio.Reader
	w   io.Writer
	out Outcome
	eof bool
}

// RunPlain walks the wizard's flow as lines and prompts: probe, findings, snapshotter, add-ons,
// plan, install, benchmark, summary. A prompt answered with an empty line takes the default
// shown in capitals; end of input takes the defaults too, except for the last question before
// anything changes, which then answers no.
func RunPlain(ctx context.Context, o PlainOptions) (Outcome, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	r := &plainRun{o: o, ctx: ctx, in: bufio.NewReader(o.In), w: o.Out}
	info := o.Backend.Info()
	r.out.Demo, r.out.LogPath = info.Demo, info.LogPath
	err := r.run(info)
	return r.out, err
}

func (r *plainRun) printf(format string, args ...any) { fmt.Fprintf(r.w, format, args...) }

// ask prints a question and returns the answer, or def for an empty line or the end of input.
func (r *plainRun) ask(question, def string) string {
	r.printf("%s ", question)
	if r.eof {
		r.printf("\n")
		return def
	}
	line, err := r.in.ReadString('\n')
	if err != nil {
		r.eof = true
		if line == "" {
			r.printf("\n")
		}
	}
	line = strings.TrimSpace(line)
	if line == "" {
		return def
	}
	return line
}

// yes asks a yes/no question.
func (r *plainRun) yes(question string, def bool) bool {
	hint := "[y/N]"
	if def {
		hint = "[Y/n]"
	}
	a := strings.ToLower(r.ask(question+" "+hint, map[bool]string{true: "y", false: "n"}[def]))
	return a == "y" || a == "yes"
}

func (r *plainRun) run(info BackendInfo) error {
	head := "virt-setup: " + info.Host
	if info.Demo {
		head += "  [DEMO: simulated, nothing on this host is changed]"
	}
	r.printf("%s\n\nProbing (read only)…\n", head)

	// The probe reports from several goroutines; lines must not interleave.
	var mu sync.Mutex
	f, err := r.o.Backend.Probe(r.ctx, func(ev probe.Event) {
		if !ev.Done {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if ev.Err != nil {
			r.printf("  %s error  %-20s %v\n", glyphWarn, ev.Probe, ev.Err)
			return
		}
		r.printf("  %s done   %-20s %s\n", glyphOK, ev.Probe, shortDur(ev.Duration))
	})
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	c := &common{}
	c.setFacts(f)
	r.out.Findings = c.report.Checks
	r.out.Screen = screenFindings.String()
	s := summarize(f)
	r.printf("\nHost\n")
	for _, row := range s.rows() {
		r.printf("  %-9s %s\n", row[0], row[1])
	}
	n := countChecks(c.report.Checks)
	r.printf("\nFindings: %s %d fail, %s %d warn, %s %d ok, %s %d skip\n\n", glyphFail, n[probe.StatusFail],
		glyphWarn, n[probe.StatusWarn], glyphOK, n[probe.StatusOK], glyphSkip, n[probe.StatusSkip])
	for _, sev := range []probe.Status{probe.StatusFail, probe.StatusWarn} {
		for _, res := range c.report.Checks {
			if res.Status == sev && r.o.RenderFinding != nil {
				r.o.RenderFinding(res)
			}
		}
	}
	if !r.yes("Continue to the setup?", true) {
		r.printf("Stopped after the findings; nothing was changed.\n")
		return nil
	}

	a := c.answers
	rec := c.report.Recommendation
	r.out.Screen = screenSnapshotter.String()
	r.printf("\nSnapshotter (where containers' files live)\n")
	def := 1
	for i, o := range rec.Options {
		state := glyphOK + " can run   "
		if !o.Possible {
			state = glyphFail + " cannot run: " + firstReason(o.Against)
		}
		tag := ""
		if o.Name == rec.Snapshotter {
			tag, def = " (recommended)", i+1
		}
		r.printf("  %d) %-15s %s%s\n", i+1, o.Name, state, tag)
		if o.Possible {
			for _, re := range o.For {
				r.printf("       + for      %s\n", re.Text)
			}
			for _, re := range o.Against {
				r.printf("       − against  %s\n", re.Text)
			}
		}
	}
	for {
		ans := r.ask(fmt.Sprintf("Choose 1-%d [%d]:", len(rec.Options), def), strconv.Itoa(def))
		i, err := strconv.Atoi(ans)
		if err != nil || i < 1 || i > len(rec.Options) {
			r.printf("  answer a number from 1 to %d\n", len(rec.Options))
			continue
		}
		o := rec.Options[i-1]
		if !o.Possible {
			r.printf("  %s cannot run on this host: %s\n", o.Name, firstReason(o.Against))
			if r.eof {
				return errors.New("no usable snapshotter was chosen")
			}
			continue
		}
		a.Snapshotter = o.Name
		break
	}

	r.out.Screen = screenAddOns.String()
	r.printf("\nAdd-ons\n")
	for _, it := range []struct {
		name   string
		advice probe.AddOn
		on     *bool
	}{
		{"BuildKit (nerdctl build)", rec.AddOns.BuildKit, &a.AddOns.BuildKit},
		{"stargz (lazy pulling)", rec.AddOns.Stargz, &a.AddOns.Stargz},
		{"bypass4netns (host-speed networking)", rec.AddOns.Bypass4netns.AddOn, &a.AddOns.Bypass4netns},
	} {
		if !it.advice.Available {
			*it.on = false
			r.printf("  %s %s: unavailable, %s\n", glyphSkip, it.name, firstReason(it.advice.Reasons))
			continue
		}
		*it.on = r.yes("  "+it.name+"?", *it.on)
	}
	rk := a.RootlessKit
	r.printf("  RootlessKit: %s, MTU %d, port driver %s, detach-netns %s; service mode %s\n", rk.NetworkDriver, rk.MTU, rk.PortDriver, rk.DetachNetns, a.ServiceMode)
	r.printf("  (to change these, save the answers below, edit the file, and run virt-setup install --answers FILE)\n")
	r.out.Answers = a

	r.out.Screen = screenReview.String()
	plan, err := r.o.Backend.Plan(r.ctx, f, a)
	if err != nil {
		return fmt.Errorf("build the plan: %w", err)
	}
	r.printf("\n")
	if r.o.RenderPlan != nil {
		r.o.RenderPlan(plan)
	}
	r.printf("\nTo replay these choices without any prompt: virt-setup install --yes --answers FILE\n")
	if p := r.ask("Save the answers to a file? (a path, or empty to skip):", ""); p != "" {
		path, err := r.o.Backend.SaveAnswers(p, a)
		switch {
		case err != nil:
			r.printf("  %s could not save: %v\n", glyphFail, err)
		case info.Demo:
			r.printf("  DEMO: the answers would be saved to %s (nothing is written)\n", path)
		default:
			r.out.AnswersPath = path
			r.printf("  %s saved to %s\n", glyphOK, path)
		}
	}
	if r.eof || !r.yes("Apply this plan?", false) {
		r.printf("Nothing was changed.\n")
		return nil
	}
	return r.install(plan, a, info)
}

// install runs the plan, offering retry, skip (where safe) or quit after a failure.
func (r *plainRun) install(plan *installer.Plan, a installer.Answers, info BackendInfo) error {
	r.out.Screen = screenInstall.String()
	var skip []string
	var infos []installer.StepInfo
	for {
		var failed installer.StepInfo
		emit := func(ev installer.Event) {
			if ev.Kind == installer.EventStepFailed {
				failed = installer.StepInfo{ID: ev.Step}
			}
			if r.o.RenderEvent != nil {
				r.o.RenderEvent(ev)
			}
		}
		err := r.o.Backend.Install(r.ctx, plan, InstallHooks{Emit: emit, RunPrivileged: r.o.RunPrivileged, Skip: skip})
		if err == nil {
			break
		}
		if r.ctx.Err() != nil {
			r.out.Interrupted = true
			return err
		}
		r.out.Failed = true
		if infos == nil {
			infos = plan.Infos()
		}
		for _, in := range infos {
			if in.ID == failed.ID {
				failed = in
			}
		}
		choices := "[r]etry or [q]uit"
		if failed.ID != "" && skippable(failed) {
			choices = "[r]etry, [s]kip this step, or [q]uit"
		}
		switch strings.ToLower(r.ask("The install stopped. "+choices+"? [q]", "q")) {
		case "r", "retry":
			continue
		case "s", "skip":
			if failed.ID != "" && skippable(failed) {
				skip = append(skip, failed.ID)
				continue
			}
		}
		r.printf("Stopped. 'virt-setup uninstall' undoes what was done; the log is %s\n", orNone(info.LogPath))
		return err
	}
	r.out.Failed, r.out.Installed = false, true

	r.out.Screen = screenBench.String()
	var results []BenchResult
	scs := map[string]BenchScenario{}
	err := r.o.Backend.Bench(r.ctx, a, func(ev BenchEvent) {
		switch ev.Kind {
		case BenchStarted:
			r.printf("\nNetwork speed (iperf3)\n")
			for _, s := range ev.Scenarios {
				scs[s.ID] = s
			}
		case BenchScenarioDone:
			s := scs[ev.Result.Scenario]
			if ev.Result.Err != "" {
				r.printf("  %s %-17s %-20s %s\n", glyphFail, s.Direction, s.Path, ev.Result.Err)
				return
			}
			results = append(results, ev.Result)
			r.printf("  %s %-17s %-20s %s\n", glyphOK, s.Direction, s.Path, strings.TrimSpace(gbit(ev.Result.BitsPerSecond)))
		}
	})
	switch {
	case errors.Is(err, ErrNoBenchmark):
	case err != nil:
		r.printf("  %s benchmark failed: %v\n", glyphFail, err)
	default:
		byID := map[string]float64{}
		for _, res := range results {
			byID[res.Scenario] = res.BitsPerSecond
		}
		for _, d := range [][3]string{{"container → host", "container-to-host", "container-to-host-bypass4netns"}, {"host → container", "host-to-container", "host-to-container-bypass4netns"}} {
			if byID[d[1]] > 0 && byID[d[2]] > 0 {
				r.printf("  bypass4netns, %s: %.1f× faster\n", d[0], byID[d[2]]/byID[d[1]])
			}
		}
	}

	r.out.Screen = screenDone.String()
	if info.Demo {
		r.printf("\n%s Demo finished: nothing on this host was changed.\n", glyphOK)
	} else {
		r.printf("\n%s Rootless containerd is set up.\n", glyphOK)
	}
	r.printf("  log:     %s\n  answers: %s\n", orNone(info.LogPath), orNone(r.out.AnswersPath))
	r.printf("Try next:\n")
	ds := doneScreen{c: &common{answers: a}}
	for _, c := range ds.nextCommands() {
		r.printf("  %-60s # %s\n", c[0], c[1])
	}
	return nil
}

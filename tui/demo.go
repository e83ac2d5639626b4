package tui

import (
	"bufio"
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"math"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/virt-setup/virt-setup/installer"
	"github.com/virt-setup/virt-setup/probe"
)

// The demo replays a shipped host profile with a simulated executor: nothing on this host is run
// or written. Its data comes from real runs on the project's Debian 12 VM (2 cores, kernel 6.18):
//   - demodata/direct-install.jsonl is `virt-setup install --json-events` as an unprivileged user
//     (overlayfs, bypass4netns, direct service mode), with the home and runtime directory replaced
//     by placeholders;
//   - probeTimings are the per-probe times `virt-setup probe --json` recorded (facts.meta.probes);
//   - benchProfiles are the iperf3 rates of reference/test-lab.md.
// Steps the recording does not cover (systemd user units through containerd-rootless-setuptool.sh)
// play that script's own messages at its own pace (it sleeps 3 s after starting a unit).

//go:embed demodata
var demoData embed.FS

// DefaultDemoProfile is the host the demo shows when none is named: Ubuntu 24.04, whose AppArmor
// restriction is the most common first failure, with every add-on available.
const DefaultDemoProfile = "ubuntu-24.04"

// probeTimings are measured probe times (virt-setup probe --json on the project's VM).
var probeTimings = map[string]time.Duration{
	"identity": 137 * time.Microsecond, "os": 530 * time.Microsecond, "security": 1957 * time.Microsecond,
	"userns": 136 * time.Microsecond, "cgroup": 86 * time.Microsecond, "systemd": 43 * time.Millisecond,
	"devices": 65 * time.Microsecond, "network": 39 * time.Millisecond, "binaries": 94 * time.Millisecond,
	"state": 87 * time.Microsecond, "live-overlay": 92 * time.Millisecond, "live-fuse-overlayfs": 66 * time.Millisecond,
}

// probeStretch slows the probe replay down: the real one takes a tenth of a second, too quick to
// see on a projector.
const probeStretch = 12

// minStepDwell keeps a step on the screen long enough to be read; file steps take milliseconds.
const minStepDwell = 350 * time.Millisecond

// DemoOptions configure the demo backend.
type DemoOptions struct {
	// Profile is a shipped host profile name or a profile file; "" means DefaultDemoProfile.
	Profile string
	// Pace scales every recorded delay: 1 plays at the recorded pace, 0 does not wait at all
	// (tests), 0.5 plays twice as fast.
	Pace float64
	// FailOnce lists step IDs that fail on their first run, to show (and test) the failure path.
	FailOnce []string
}

// demoBackend is the simulated Backend.
type demoBackend struct {
	o     DemoOptions
	facts *probe.Facts
	paths installer.Paths
	lines map[string][]recordedLine
	took  map[string]time.Duration

	mu     sync.Mutex
	done   map[string]bool
	failed map[string]bool
}

// recordedLine is one output line of the recording, at its offset from the step's start.
type recordedLine struct {
	at   time.Duration
	text string
}

// NewDemoBackend loads the profile and the recordings.
func NewDemoBackend(o DemoOptions) (Backend, error) {
	if o.Profile == "" {
		o.Profile = DefaultDemoProfile
	}
	f, err := probe.LoadProfile(o.Profile)
	if err != nil {
		return nil, err
	}
	d := &demoBackend{o: o, facts: f, done: map[string]bool{}, failed: map[string]bool{}}
	home := "/home/demo"
	if f.Identity.Home.Known && f.Identity.Home.Value != "" {
		home = f.Identity.Home.Value
	}
	d.paths = installer.PathsFromEnv(func(string) string { return "" }, home)
	d.paths.RuntimeDir = "/run/user/1000"
	if rd := f.Identity.XDGRuntimeDir; rd.Known && rd.Value.Path != "" {
		d.paths.RuntimeDir = rd.Value.Path
	}
	if err := d.loadRecording(); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *demoBackend) loadRecording() error {
	b, err := demoData.ReadFile("demodata/direct-install.jsonl")
	if err != nil {
		return fmt.Errorf("read the demo recording: %w", err)
	}
	d.lines, d.took = map[string][]recordedLine{}, map[string]time.Duration{}
	started := map[string]time.Time{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var ev installer.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return fmt.Errorf("parse the demo recording: %w", err)
		}
		switch ev.Kind {
		case installer.EventStepStarted:
			started[ev.Step] = ev.Time
		case installer.EventOutput:
			d.lines[ev.Step] = append(d.lines[ev.Step], recordedLine{at: ev.Time.Sub(started[ev.Step]), text: ev.Line})
		case installer.EventStepDone:
			d.took[ev.Step] = ev.Duration
		}
	}
	return sc.Err()
}

// Info implements Backend.
func (d *demoBackend) Info() BackendInfo {
	name := d.o.Profile
	if d.facts.OS.Distro.Known {
		name += " · " + strings.TrimSpace(d.facts.OS.Distro.Value.Name+" "+d.facts.OS.Distro.Value.VersionID)
	}
	return BackendInfo{Demo: true, Host: "recorded host " + name, StateDir: d.paths.VirtSetupState()}
}

// sleep waits d scaled by the pace, or until ctx ends.
func (d *demoBackend) sleep(ctx context.Context, dur time.Duration) error {
	dur = time.Duration(float64(dur) * d.o.Pace)
	if dur <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(dur)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Probe implements Backend: the probes start together and finish at their measured times, as
// the real ones run concurrently.
func (d *demoBackend) Probe(ctx context.Context, onEvent func(probe.Event)) (*probe.Facts, error) {
	names := probe.ProbeNames()
	for _, n := range names {
		onEvent(probe.Event{Probe: n})
	}
	slices.SortStableFunc(names, func(a, b string) int { return int(probeTimings[a] - probeTimings[b]) })
	var at time.Duration
	for _, n := range names {
		t := probeTimings[n] * probeStretch
		if err := d.sleep(ctx, t-at); err != nil {
			return nil, err
		}
		at = t
		onEvent(probe.Event{Probe: n, Done: true, Duration: probeTimings[n]})
	}
	f := *d.facts
	return &f, nil
}

// Plan implements Backend: the real planner, over the profile's facts and a home that exists
// only in the profile. Building a plan reads files (for the diffs) and writes none.
func (d *demoBackend) Plan(_ context.Context, f *probe.Facts, a installer.Answers) (*installer.Plan, error) {
	rt := &installer.Runtime{Paths: d.paths, Env: []string{"PATH=/usr/local/bin:/usr/bin:/bin"}}
	return installer.BuildPlan(installer.PlanInput{Facts: f, Answers: a, Runtime: rt})
}

// Install implements Backend: it plays each step from the recording, never calling the steps.
func (d *demoBackend) Install(ctx context.Context, p *installer.Plan, hooks InstallHooks) error {
	emit := hooks.Emit
	var infos []installer.StepInfo
	for _, in := range p.Infos() {
		if !slices.Contains(hooks.Skip, in.ID) {
			infos = append(infos, in)
		}
	}
	total := len(infos)
	start := time.Now()
	emit(installer.Event{Kind: installer.EventPlanStarted, Time: start, Total: total})
	finish := func(err error, fix string) error {
		ev := installer.Event{Kind: installer.EventFinished, Time: time.Now(), Total: total, Duration: time.Since(start)}
		if err != nil {
			ev.Err, ev.Fix = err.Error(), fix
		}
		emit(ev)
		return err
	}
	for i, in := range infos {
		base := installer.Event{Step: in.ID, Title: in.Title, Index: i + 1, Total: total}
		ev := base
		ev.Kind, ev.Time = installer.EventStepStarted, time.Now()
		emit(ev)
		t0 := time.Now()
		d.mu.Lock()
		wasDone := d.done[in.ID]
		failNow := slices.Contains(d.o.FailOnce, in.ID) && !d.failed[in.ID]
		d.failed[in.ID] = d.failed[in.ID] || failNow
		d.mu.Unlock()
		if wasDone {
			if err := d.sleep(ctx, 40*time.Millisecond); err != nil {
				return finish(fmt.Errorf("install cancelled: %w", err), "run the install again to go on: steps that are done are skipped")
			}
			ev = base
			ev.Kind, ev.Time, ev.Reason, ev.Duration = installer.EventStepSkipped, time.Now(), installer.ReasonEarlierRun, time.Since(t0)
			emit(ev)
			continue
		}
		script, took := d.script(in, p.Answers)
		if failNow {
			script, took = d.failure(in)
		}
		var at time.Duration
		for _, l := range script {
			if err := d.sleep(ctx, l.at-at); err != nil {
				return d.cancelled(ctx, base, t0, emit, finish)
			}
			at = l.at
			ev = base
			ev.Kind, ev.Time, ev.Line = installer.EventOutput, time.Now(), l.text
			emit(ev)
		}
		if err := d.sleep(ctx, max(took, minStepDwell)-at); err != nil {
			return d.cancelled(ctx, base, t0, emit, finish)
		}
		if failNow {
			fix, err := demoFailure(in)
			ev = base
			ev.Kind, ev.Time, ev.Err, ev.Fix, ev.Duration = installer.EventStepFailed, time.Now(), err.Error(), fix, took
			emit(ev)
			return finish(fmt.Errorf("step %s: %w", in.ID, err), fix)
		}
		ev = base
		ev.Kind, ev.Time, ev.Duration, ev.Progress = installer.EventStepDone, time.Now(), took, float64(i+1)/float64(total)
		emit(ev)
		d.mu.Lock()
		d.done[in.ID] = true
		d.mu.Unlock()
		emit(installer.Event{Kind: installer.EventProgress, Time: time.Now(), Index: i + 1, Total: total, Progress: float64(i+1) / float64(total)})
	}
	return finish(nil, "")
}

// cancelled ends a run the user stopped, as the engine does: the step fails with the cancellation.
func (d *demoBackend) cancelled(ctx context.Context, base installer.Event, t0 time.Time, emit func(installer.Event), finish func(error, string) error) error {
	ev := base
	ev.Kind, ev.Time, ev.Err, ev.Duration = installer.EventStepFailed, time.Now(), ctx.Err().Error(), time.Since(t0)
	emit(ev)
	return finish(fmt.Errorf("step %s cancelled: %w", base.Step, ctx.Err()), "run the install again to go on: steps that are done are skipped")
}

// script is what a step prints and how long it takes, from the recording where it has the step.
func (d *demoBackend) script(in installer.StepInfo, a installer.Answers) ([]recordedLine, time.Duration) {
	expand := strings.NewReplacer("{{HOME}}", d.paths.Home, "{{RUNTIME_DIR}}", d.paths.RuntimeDir, "{{SNAPSHOTTER}}", a.Snapshotter)
	replay := func(id string) ([]recordedLine, time.Duration) {
		var out []recordedLine
		for _, l := range d.lines[id] {
			out = append(out, recordedLine{at: l.at, text: expand.Replace(l.text)})
		}
		return out, d.took[id]
	}
	user := "alice"
	if d.facts.Identity.User.Known {
		user = d.facts.Identity.User.Value
	}
	switch {
	case in.Kind == installer.KindPrivileged:
		script := path.Join(d.paths.VirtSetupState(), "privileged.sh")
		out := []recordedLine{
			{0, "saved the root steps for review in " + script},
			{300 * time.Millisecond, "DEMO: sudo sh -eu " + script + " is not run; a real run hands this terminal to sudo here"},
		}
		at := 600 * time.Millisecond
		for _, c := range in.Commands {
			out = append(out, recordedLine{at, "+ " + c})
			at += 250 * time.Millisecond
		}
		return out, at + 200*time.Millisecond
	case in.Kind == installer.KindFile && len(in.Files) > 0:
		if lines, took := replay(in.ID); len(lines) > 0 {
			return lines, took
		}
		f := in.Files[0]
		var out []recordedLine
		if f.Create {
			out = append(out, recordedLine{0, "created directory " + filepath.Dir(f.Path)})
		}
		out = append(out, recordedLine{2 * time.Millisecond, fmt.Sprintf("wrote %s (%d bytes)", f.Path, addedBytes(f.Diff))})
		return out, 3 * time.Millisecond
	case in.ID == "service:containerd", in.ID == "service:bypass4netnsd", in.Kind == installer.KindVerify:
		return replay(in.ID)
	case strings.HasPrefix(in.ID, "service:"):
		name := strings.TrimPrefix(in.ID, "service:")
		return []recordedLine{{280 * time.Millisecond, fmt.Sprintf("%s is ready after 0.28s (pid 10231, log %s/logs/%s.log)", name, d.paths.VirtSetupState(), name)}}, 300 * time.Millisecond
	case strings.HasPrefix(in.ID, "setuptool:"):
		return setuptoolScript(strings.TrimPrefix(in.ID, "setuptool:"), d.paths, user)
	case strings.HasPrefix(in.ID, "restart:"):
		unit := strings.TrimPrefix(in.ID, "restart:")
		return []recordedLine{
			{0, "+ systemctl --user daemon-reload"},
			{150 * time.Millisecond, "+ systemctl --user restart " + unit},
			{1250 * time.Millisecond, unit + " is active again"},
		}, 1300 * time.Millisecond
	}
	return []recordedLine{{0, in.Title}}, 500 * time.Millisecond
}

// setuptoolScript is what containerd-rootless-setuptool.sh prints for a subcommand, at its pace:
// each unit is started, then the script sleeps 3 s before checking it.
func setuptoolScript(sub string, p installer.Paths, user string) ([]recordedLine, time.Duration) {
	units := map[string]string{
		"install": "containerd.service", "install-buildkit": "buildkit.service", "install-bypass4netnsd": "bypass4netnsd.service",
		"install-fuse-overlayfs": "containerd-fuse-overlayfs.service", "install-stargz": "stargz-snapshotter.service",
	}
	unit := units[sub]
	if unit == "" {
		unit = sub + ".service"
	}
	unitFile := p.ConfigHome + "/systemd/user/" + unit
	var out []recordedLine
	at := time.Duration(0)
	add := func(after time.Duration, text string) {
		at += after
		out = append(out, recordedLine{at, text})
	}
	if sub == "install" {
		add(0, "[INFO] Checking RootlessKit functionality")
		add(700*time.Millisecond, "[INFO] Checking cgroup v2")
		add(60*time.Millisecond, "[INFO] Checking overlayfs")
		add(120*time.Millisecond, "[INFO] Requirements are satisfied")
	}
	add(40*time.Millisecond, `[INFO] Creating "`+unitFile+`"`)
	add(250*time.Millisecond, `[INFO] Starting systemd unit "`+unit+`"`)
	add(10*time.Millisecond, "+ systemctl --user start "+unit)
	add(400*time.Millisecond, "+ sleep 3")
	add(3000*time.Millisecond, "+ systemctl --user --no-pager --full status "+unit)
	add(60*time.Millisecond, "● "+unit)
	add(0, "     Loaded: loaded ("+unitFile+"; disabled; preset: enabled)")
	add(0, "     Active: active (running) since 3s ago")
	add(20*time.Millisecond, "+ systemctl --user enable "+unit)
	add(200*time.Millisecond, "Created symlink "+p.ConfigHome+"/systemd/user/default.target.wants/"+unit+" → "+unitFile+".")
	add(10*time.Millisecond, `[INFO] Installed "`+unit+`" successfully.`)
	add(0, `[INFO] To control "`+unit+`", run: `+"`systemctl --user (start|stop|restart) "+unit+"`")
	if sub == "install" {
		add(0, `[INFO] To run "`+unit+`" on system startup automatically, run: `+"`sudo loginctl enable-linger "+user+"`")
		add(0, "[INFO] Use `nerdctl` to connect to the rootless containerd.")
	}
	return out, at + 50*time.Millisecond
}

// addedBytes estimates the size of a new file from its diff's added lines.
func addedBytes(diff string) int {
	n := 0
	for _, l := range strings.Split(diff, "\n") {
		if strings.HasPrefix(l, "+") && !strings.HasPrefix(l, "+++") {
			n += len(l)
		}
	}
	return n
}

// failure is the output of a step that fails in the demo.
func (d *demoBackend) failure(in installer.StepInfo) ([]recordedLine, time.Duration) {
	return []recordedLine{
		{0, "[rootlesskit:parent] error: failed to setup network &{logWriter:0xc000 binary:slirp4netns mtu:65520}: " +
			"setting up tap tap0: exit status 1"},
		{400 * time.Millisecond, "[slirp4netns] open(\"/dev/net/tun\"): Permission denied"},
	}, 900 * time.Millisecond
}

// demoFailure is the error and fix of a failing demo step: the classic one of a host without
// udev rules, where /dev/net/tun is 0600 root.
func demoFailure(in installer.StepInfo) (fix string, err error) {
	return "Run `sudo chmod 0666 /dev/net/tun` (what udev does on most distributions; virt-setup explain VS-TUN-001), then retry.",
		fmt.Errorf("%s: slirp4netns cannot open /dev/net/tun (permission denied)", in.Title)
}

// benchProfile is the rate of a scenario in test-lab.md, with the spread of its intervals.
type benchProfile struct{ mean, spread, first float64 }

var benchProfiles = map[string]benchProfile{
	"container-to-host":              {mean: 0.43e9, spread: 0.012e9, first: 0.37e9},
	"host-to-container":              {mean: 9.8e9, spread: 0.5e9, first: 8.6e9},
	"container-to-host-bypass4netns": {mean: 16.5e9, spread: 0.35e9, first: 14.9e9},
	"host-to-container-bypass4netns": {mean: 15.9e9, spread: 0.6e9, first: 14.2e9},
}

// Demo benchmark shape: iperf3 -t 4 -i 0.5 per scenario, with a pause to start the containers.
const (
	benchIntervals = 8
	benchInterval  = 500 * time.Millisecond
	benchSetup     = 400 * time.Millisecond
)

// Bench implements Backend: iperf3 intervals shaped like the project's measurements.
func (d *demoBackend) Bench(ctx context.Context, a installer.Answers, emit func(BenchEvent)) error {
	scs := BenchScenarios(a)
	emit(BenchEvent{Kind: BenchStarted, Scenarios: scs})
	for si, sc := range scs {
		emit(BenchEvent{Kind: BenchScenarioStarted, Scenario: sc.ID})
		if err := d.sleep(ctx, benchSetup); err != nil {
			return err
		}
		prof := benchProfiles[sc.ID]
		sum := 0.0
		for i := range benchIntervals {
			if err := d.sleep(ctx, benchInterval); err != nil {
				return err
			}
			// A fixed wobble rather than randomness: the demo looks the same every time.
			bps := prof.mean + prof.spread*math.Sin(float64(3*i+7*si))
			if i == 0 {
				bps = prof.first
			}
			sum += bps
			emit(BenchEvent{Kind: BenchSampled, Scenario: sc.ID, Sample: BenchSample{
				Scenario: sc.ID, Start: time.Duration(i) * benchInterval, End: time.Duration(i+1) * benchInterval, BitsPerSecond: bps}})
		}
		emit(BenchEvent{Kind: BenchScenarioDone, Scenario: sc.ID, Result: BenchResult{Scenario: sc.ID, BitsPerSecond: sum / benchIntervals}})
	}
	emit(BenchEvent{Kind: BenchFinished})
	return nil
}

// SaveAnswers implements Backend: the demo writes nothing, it only says where the file would go.
func (d *demoBackend) SaveAnswers(p string, _ installer.Answers) (string, error) {
	return absPath(p), nil
}

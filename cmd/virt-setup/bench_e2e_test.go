package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/virt-setup/virt-setup/installer/bench"
	"github.com/virt-setup/virt-setup/internal/testenv"
)

// benchSeconds keeps each test short but past TCP's warm-up: 1 s left out (-O), 3 s measured.
const benchSeconds = "3s"

// benchPairs is how many times the tool and iperf3 by hand are measured side by side.
const benchPairs = 10

// TestBenchEndToEnd runs `virt-setup bench` as the unprivileged test user against the real rootless
// stack (direct service mode, slirp4netns, bypass4netnsd): every scenario, the ratios the issue
// asks for, the tool's figure next to iperf3 run by hand on the same path, the baseline, Ctrl-C,
// and the errors with their fixes. After each run nothing of the benchmark may be left: no
// container (nerdctl ps -a) and no process beyond the stack's own.
func TestBenchEndToEnd(t *testing.T) {
	u := testenv.RequireTestUser(t)
	requireStack(t)
	_, err := os.Stat("/usr/bin/iperf3")
	testenv.Require(t, err == nil, "/usr/bin/iperf3 is missing: apt-get install iperf3 (scripts/setup-test-host.sh)")
	bin := testenv.BuildBinary(t)
	benchOpenDevice(t, "/dev/net/tun") // slirp4netns needs it, as on a host with udev
	h := newE2EHome(t, u, bin, "bench")
	answers := h.answersFile(t, e2eAnswers("overlayfs", true))
	if code, out, errOut := h.virtSetup(t, "install", "--yes", "--answers", answers); code != 0 {
		t.Fatalf("install: exit %d\n%s%s", code, out, errOut)
	}
	stack := h.processes(t)

	// Every scenario, saved as the baseline.
	report := h.benchJSON(t, "--duration", benchSeconds, "--save-baseline")
	h.requireNothingLeft(t, stack)
	var table []string
	for _, r := range report.Results {
		if r.Status != bench.StatusOK {
			t.Fatalf("%s: %s %s %s", r.ID, r.Status, r.Err, r.Reason)
		}
		table = append(table, fmt.Sprintf("%s %s", r.ID, bench.FormatRate(r.BitsPerSecond)))
	}
	if len(report.Results) != len(bench.Scenarios) {
		t.Fatalf("%d results, want all %d scenarios", len(report.Results), len(bench.Scenarios))
	}
	t.Logf("bench: %s", strings.Join(table, "; "))
	rate := func(r *bench.Report, id bench.ScenarioID) float64 {
		res, _ := r.Result(id)
		return res.BitsPerSecond
	}
	without, with, ceiling := rate(report, bench.ContainerToHost), rate(report, bench.ContainerToHostBypass4netns), rate(report, bench.HostLoopback)
	t.Logf("container → host: bypass4netns %.1f× without it, %.2f× host loopback", with/without, with/ceiling)
	if with < 10*without {
		t.Errorf("container → host with bypass4netns %s is not 10× the %s without it", bench.FormatRate(with), bench.FormatRate(without))
	}
	if with < 0.7*ceiling {
		t.Errorf("container → host with bypass4netns %s is under 0.7× host loopback %s", bench.FormatRate(with), bench.FormatRate(ceiling))
	}
	ifs, err := bench.HostInterfaces()
	if err != nil {
		t.Fatal(err)
	}
	hostAddr, err := bench.PickHostAddress(ifs)
	if err != nil || report.HostAddress != hostAddr.String() {
		t.Fatalf("the benchmark sent to %q; this host's own address is %v (%v)", report.HostAddress, hostAddr, err)
	}
	if !exists(filepath.Join(h.home, ".local/state/virt-setup", bench.BaselineFile)) {
		t.Fatal("--save-baseline saved nothing")
	}

	t.Run("side by side with iperf3 by hand", func(t *testing.T) {
		// Runs on 2 cores drift by ±20% over a minute, and one 3 s run can land 30-60% low
		// (when the two iperf3 processes share a core): each tool run is paired with a run by
		// hand right next to it, in alternating order, and agree() judges the ten ratios. Whole
		// test runs differ too: geometric means of 1.004 (15 pairs), +12.8% (a median of 7), and
		// 0.79 with one pair at -60% were all seen, so the mean alone flakes.
		var ratios []float64
		for i := range benchPairs {
			var tool, plain float64
			runTool := func() {
				r := h.benchJSON(t, "--duration", benchSeconds, "--scenario", string(bench.ContainerToHostBypass4netns))
				res := r.Results[0]
				if res.Baseline == nil {
					t.Errorf("a later run does not show the change against the baseline: %+v", res)
				}
				tool = res.BitsPerSecond
			}
			runPlain := func() {
				plain = h.plainContainerToHost(t, report.Image, hostAddr.String(), []string{"--annotation", "nerdctl/bypass4netns=true"})
			}
			if i%2 == 0 {
				runTool()
				runPlain()
			} else {
				runPlain()
				runTool()
			}
			t.Logf("pair %d: virt-setup bench %s, iperf3 by hand %s (%+.1f%%)", i+1, bench.FormatRate(tool), bench.FormatRate(plain), (tool/plain-1)*100)
			ratios = append(ratios, tool/plain)
		}
		h.requireNothingLeft(t, stack)
		m, lo, hi := meanRatio(ratios)
		msg := fmt.Sprintf("virt-setup bench / iperf3 by hand over %d pairs: geometric mean %.3f, 95%% confidence interval %.3f-%.3f", len(ratios), m, lo, hi)
		if !agree(m, lo, hi) {
			t.Errorf("%s: want the interval to reach within 10%% and the mean within 1.5×", msg)
		} else {
			t.Log(msg)
		}
	})

	t.Run("live lines and the table", func(t *testing.T) {
		code, out, errOut := h.virtSetup(t, "bench", "--duration", "2s", "--scenario", "host-loopback,container-to-host-bypass4netns")
		if code != 0 {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
		samples := regexp.MustCompile(`(?m)^ +\d+\.\d\d-\d+\.\d\d s  [0-9.]+ [MG]bit/s`).FindAllString(out, -1)
		if len(samples) != 2*3 { // two scenarios, each a warm-up second and two measured ones
			t.Errorf("%d interval lines, want 6:\n%s", len(samples), out)
		}
		for _, want := range []string{
			"✓ host loopback: ", "against the baseline's", "then: nerdctl run --rm --pull=never --annotation nerdctl/bypass4netns=true",
			"iperf3                    without bypass4netns", "changes against the baseline of",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		h.requireNothingLeft(t, stack)
	})

	t.Run("Ctrl-C", func(t *testing.T) {
		for _, tt := range []struct {
			scenario bench.ScenarioID
			group    bool // a terminal's Ctrl-C signals the whole foreground process group
		}{
			{bench.ContainerToHostBypass4netns, true},
			{bench.HostToContainer, false},
			{bench.HostToContainerBypass4netns, true},
		} {
			h.interruptBench(t, tt.scenario, tt.group)
			h.requireNothingLeft(t, stack)
		}
	})

	t.Run("errors with their fixes", func(t *testing.T) {
		code, out, errOut := h.virtSetup(t, "bench", "--scenario", "container-to-host", "--image", "localhost/virt-setup/no-such-image:1")
		if code != exitError || !strings.Contains(out, "image missing") || !strings.Contains(out, "fix: pull it with --pull") {
			t.Errorf("missing image: exit %d\n%s%s", code, out, errOut)
		}

		l, err := net.Listen("tcp", ":0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		held := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
		code, out, errOut = h.virtSetup(t, "bench", "--json", "--scenario", "host-loopback", "--port", held)
		if code != exitError || !strings.Contains(errOut, "port in use: port "+held) || !strings.Contains(errOut, "fix: leave out --port") {
			t.Errorf("port in use: exit %d\n%s%s", code, out, errOut)
		}

		// A PATH without /usr/bin, where iperf3 lives.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c := h.cmd(ctx, h.bin, "bench", "--scenario", "host-loopback")
		c.Env = append(filterEnv(c.Env, "PATH="), "PATH=/usr/local/bin:/usr/local/sbin")
		b, err := c.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != exitError || !strings.Contains(string(b), "iperf3 is not installed") || !strings.Contains(string(b), "apt-get install iperf3") {
			t.Errorf("iperf3 missing: %v\n%s", err, b)
		}
		h.requireNothingLeft(t, stack)

		// bypass4netnsd stopped: skipped with the fix among all scenarios, a failure when named.
		h.stopService(t, "bypass4netnsd")
		stack = h.processes(t)
		r := h.benchJSON(t, "--duration", "1s", "--omit", "0s", "--scenario", "all")
		for _, res := range r.Results {
			if res.Bypass4netns != (res.Status == bench.StatusSkipped) || res.Bypass4netns && !strings.Contains(res.Fix, "virt-setup start") {
				t.Errorf("bypass4netnsd stopped, all scenarios: %s is %s (%s; fix %q)", res.ID, res.Status, res.Reason, res.Fix)
			}
		}
		code, out, errOut = h.virtSetup(t, "bench", "--duration", "1s", "--scenario", "container-to-host,host-to-container-bypass4netns")
		if code != exitError || !strings.Contains(out, "✗ failed host → container, bypass4netns: bypass4netnsd is not running") || !strings.Contains(out, "fix: start it") ||
			!strings.Contains(out, "✓ container → host") {
			t.Errorf("bypass4netnsd stopped, named: exit %d\n%s%s", code, out, errOut)
		}
		h.requireNothingLeft(t, stack)
	})
}

// benchOpenDevice gives everyone access to a device for the test, as udev does on most hosts,
// and restores its mode at the end.
func benchOpenDevice(t *testing.T, p string) {
	t.Helper()
	fi, err := os.Stat(p)
	testenv.Require(t, err == nil, p+" is missing")
	orig := fi.Mode().Perm()
	t.Cleanup(func() { os.Chmod(p, orig) })
	if err := os.Chmod(p, 0o666); err != nil {
		t.Fatal(err)
	}
}

// benchJSON runs `virt-setup bench --json` and returns its report, failing the test unless every
// scenario ran.
func (h *e2eHome) benchJSON(t *testing.T, args ...string) *bench.Report {
	t.Helper()
	code, out, errOut := h.virtSetup(t, append([]string{"bench", "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("bench %v: exit %d\n%s%s", args, code, out, errOut)
	}
	var r bench.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("bench --json printed no report: %v\n%s", err, out)
	}
	return &r
}

// plainContainerToHost measures container → host the way a user would by hand, on the same path
// as the benchmark: `iperf3 -s` on the host's address, and `nerdctl run … iperf3 -c` in a
// container, with the same test length and warm-up. The figure is iperf3's own JSON summary of
// what the server received, read without the benchmark's parser.
func (h *e2eHome) plainContainerToHost(t *testing.T, image, hostAddr string, extra []string) float64 {
	t.Helper()
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := h.cmd(ctx, "iperf3", "-s", "-B", hostAddr, "-p", port, "-1", "--forceflush")
	out, err := srv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Wait()
	defer srv.Process.Kill()
	sc := bufio.NewScanner(out)
	for sc.Scan() && !strings.Contains(sc.Text(), "Server listening") {
	}
	go func() {
		for sc.Scan() {
		}
	}()
	args := append([]string{"run", "--rm"}, extra...)
	args = append(args, image, "-c", hostAddr, "-p", port, "-t", strings.TrimSuffix(benchSeconds, "s"), "-O", "1", "--json")
	var res struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	// stdout alone: nerdctl may log to stderr as the container ends ("forward signal child
	// exited"), which is not part of iperf3's JSON.
	client := h.cmd(ctx, "nerdctl", args...)
	var stderr strings.Builder
	client.Stderr = &stderr
	b, err := client.Output()
	if err != nil {
		t.Fatalf("nerdctl %s: %v\n%s%s", strings.Join(args, " "), err, b, stderr.String())
	}
	if err := json.Unmarshal(b, &res); err != nil || res.End.SumReceived.BitsPerSecond <= 0 {
		t.Fatalf("iperf3 --json by hand: %v\n%s", err, b)
	}
	return res.End.SumReceived.BitsPerSecond
}

// interruptBench starts a long benchmark of one scenario, waits for its first interval line and
// interrupts it: with SIGINT to its process group (a terminal's Ctrl-C, which nerdctl and iperf3
// get too) or to virt-setup alone (kill -INT). It must exit 130 promptly.
func (h *e2eHome) interruptBench(t *testing.T, scenario bench.ScenarioID, group bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := h.cmd(ctx, h.bin, "bench", "--duration", "60s", "--scenario", string(scenario))
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	c.Stderr = &stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	var seen []string
	sample := regexp.MustCompile(`^ +\d+\.\d\d-\d+\.\d\d s  `)
	for sc.Scan() {
		seen = append(seen, sc.Text())
		if sample.MatchString(sc.Text()) {
			break
		}
	}
	pid := c.Process.Pid
	if group {
		pid = -pid
	}
	start := time.Now()
	if err := syscall.Kill(pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for sc.Scan() {
		seen = append(seen, sc.Text())
	}
	err = c.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitAborted {
		t.Errorf("%s interrupted: %v, want exit %d\n%s\n%s", scenario, err, exitAborted, strings.Join(seen, "\n"), stderr.String())
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("%s: took %s to stop after Ctrl-C", scenario, d)
	}
	t.Logf("%s: stopped %s after SIGINT (process group: %v)", scenario, time.Since(start).Round(time.Millisecond), group)
}

// requireNothingLeft checks that no container exists and that the only processes of this setup
// are the stack's. Processes just killed may take a moment to be reaped.
func (h *e2eHome) requireNothingLeft(t *testing.T, stack []string) {
	t.Helper()
	var containers string
	var extra []string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		containers = strings.TrimSpace(h.must(t, "nerdctl", "ps", "-a", "--format", "{{.Names}}"))
		extra = nil
		for _, p := range h.processes(t) {
			if !slices.Contains(stack, p) {
				extra = append(extra, p)
			}
		}
		if containers == "" && len(extra) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if containers != "" {
		t.Errorf("containers left: %s", containers)
	}
	if len(extra) > 0 {
		t.Errorf("processes left: %v", extra)
	}
}

// stopService stops one direct-mode service by the pid file virt-setup keeps.
func (h *e2eHome) stopService(t *testing.T, name string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(h.home, ".local/state/virt-setup/run", name+".pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); syscall.Kill(pid, 0) == nil; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s (pid %d) did not stop", name, pid)
		}
	}
}

// TestBenchUsage checks what `virt-setup bench` refuses before it touches anything: each is a
// usage error (exit 2) that names the problem.
func TestBenchUsage(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_STATE_HOME", dir)
	garbled := filepath.Join(dir, "garbled.json")
	if err := os.WriteFile(garbled, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--duration", "1500ms"}, exitUsage, "--duration 1.5s: give whole seconds"},
		{[]string{"--duration", "0s"}, exitUsage, "at least 1s"},
		{[]string{"--omit", "-1s"}, exitUsage, "--omit -1s"},
		{[]string{"--pull"}, exitUsage, "--pull needs --image"},
		{[]string{"--scenario", "host-loopback,bogus"}, exitUsage, `unknown scenario "bogus"`},
		{[]string{"--host-address", "eth0"}, exitUsage, "--host-address"},
		{[]string{"--baseline", filepath.Join(dir, "missing.json")}, exitUsage, "no baseline saved yet"},
		{[]string{"--baseline", garbled}, exitError, "read the baseline " + garbled},
		{[]string{"host-loopback"}, exitUsage, "name scenarios with --scenario"},
	}
	for _, tt := range tests {
		code, out, errOut := run(t, append([]string{"bench"}, tt.args...)...)
		if code != tt.code || !strings.Contains(errOut, tt.want) || out != "" {
			t.Errorf("bench %v: exit %d, stdout %q, stderr %q; want exit %d and %q", tt.args, code, out, errOut, tt.code, tt.want)
		}
	}
	for in, want := range map[string]bool{"": false, "all": false, "all, ": false, "host-loopback": true, "all,host-loopback": true} {
		if got := namesScenarios([]string{in}); got != want {
			t.Errorf("namesScenarios(%q) = %v", in, got)
		}
	}
}

// meanRatio is the geometric mean of ratios (a ratio of 1.1 and one of 1/1.1 average to 1) with
// its 95% confidence interval, from Student's t for the mean of the logarithms.
func meanRatio(ratios []float64) (mean, lo, hi float64) {
	n := float64(len(ratios))
	var sum, sq float64
	for _, r := range ratios {
		sum += math.Log(r)
	}
	m := sum / n
	for _, r := range ratios {
		sq += (math.Log(r) - m) * (math.Log(r) - m)
	}
	se := math.Sqrt(sq/(n-1)) / math.Sqrt(n)
	const t9 = 2.262 // Student's t, 97.5th percentile, 9 degrees of freedom (ten pairs)
	return math.Exp(m), math.Exp(m - t9*se), math.Exp(m + t9*se)
}

// agree says whether the tool's figures agree with iperf3's own: the data must be consistent with
// a difference of at most 10% (the confidence interval reaches into 0.9-1.1), and the mean must
// be within 1.5× whatever the spread, which still catches every real mistake (bytes for bits is
// 8×, a sender figure for a receiver one or a wrong duration far more than the noise allows).
func agree(mean, lo, hi float64) bool {
	return lo <= 1.1 && hi >= 0.9 && mean >= 1/1.5 && mean <= 1.5
}

// TestBenchAgreement checks the rule TestBenchEndToEnd judges the tool by, on ratios seen here and
// on mistakes it must catch.
func TestBenchAgreement(t *testing.T) {
	pct := func(ps ...float64) []float64 {
		var r []float64
		for _, p := range ps {
			r = append(r, 1+p/100)
		}
		return r
	}
	for _, tt := range []struct {
		name   string
		ratios []float64
		want   bool
	}{
		{"no bias", pct(13.1, -4.5, 13.7, 2.0, 2.5, -11.3, 18.1, -14.9, 8.4, -14.5), true},
		{"a run with one pair at -60%", pct(-9.8, -28.0, -11.8, -3.3, -17.1, -23.1, 4.5, -31.4, -59.7, -4.4), true},
		{"a run of high pairs", pct(17.4, -4.9, 5.8, 12.8, 8.3, 13.7, 19.8, 10, 5, 12), true},
		{"a steady 20% too high", pct(19, 21, 20, 22, 18, 20, 21, 19, 20, 20), false},
		{"bytes for bits", pct(-87.5, -87, -88, -87.5, -87, -88, -87.5, -87, -88, -87.5), false},
		{"noisy and 1.6× off", pct(60, 40, 90, 70, 30, 100, 50, 80, 55, 65), false},
	} {
		m, lo, hi := meanRatio(tt.ratios)
		if got := agree(m, lo, hi); got != tt.want {
			t.Errorf("%s: mean %.3f, interval %.3f-%.3f: agree = %v, want %v", tt.name, m, lo, hi, got, tt.want)
		}
	}
}

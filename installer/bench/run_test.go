package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/virt-setup/virt-setup/internal/sys"
	"github.com/virt-setup/virt-setup/internal/testenv"
)

// testdata returns a captured iperf3 output.
func testdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// events records what a run emits, checking that Emit is never called concurrently.
type events struct {
	mu   sync.Mutex
	busy bool
	t    *testing.T
	list []Event
}

func (e *events) emit(ev Event) {
	e.mu.Lock()
	if e.busy {
		e.t.Error("Emit called concurrently")
	}
	e.busy = true
	e.list = append(e.list, ev)
	e.busy = false
	e.mu.Unlock()
}

func (e *events) kinds() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, ev := range e.list {
		s := string(ev.Kind)
		if ev.Scenario != "" {
			s += ":" + string(ev.Scenario)
		}
		out = append(out, s)
	}
	return out
}

// bypassSocket makes a runtime directory where bypass4netnsd answers, as the real one does.
func bypassSocket(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "b4n")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	l, err := net.Listen("unix", filepath.Join(dir, "bypass4netnsd.sock"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return dir
}

// hostAddr is this machine's own non-loopback address; the scenarios bind a port on it.
func hostAddr(t *testing.T) netip.Addr {
	t.Helper()
	ifs, err := HostInterfaces()
	if err != nil {
		t.Fatal(err)
	}
	a, err := PickHostAddress(ifs)
	testenv.Require(t, err == nil, "a non-loopback IPv4 or IPv6 address on this host")
	return a
}

const (
	testImage   = "localhost/test/iperf3:1"
	versionLine = "iperf 3.12 (cJSON 1.7.15)\nLinux vm 6.18\n"
	name        = `virt-setup-bench-[0-9a-f]{8}-`
	label       = `--label virt-setup\.bench=[0-9a-f]{8}`
	port        = `[0-9]+`
)

// stubAll registers every command a run of all five scenarios makes.
func stubAll(t *testing.T, s *sys.Stub, addr netip.Addr) {
	a := regexp.QuoteMeta(addr.String())
	server := testdata(t, "iperf3-3.12-server-omit.txt")
	client := testdata(t, "iperf3-3.12-client-omit.txt")
	s.Register(`iperf3 --version`, versionLine, 0)
	s.Register(`nerdctl image inspect --format '\{\{\.ID\}\}' `+regexp.QuoteMeta(testImage), "sha256:0123\n", 0)
	s.Register(`iperf3 -s -B `+a+` -p `+port+` -1 --forceflush`, server, 0)
	s.Register(`nerdctl run --name `+name+`1 `+label+` --pull=never --entrypoint iperf3 `+testImage+` -c `+a+` -p `+port+` -t 2 -O 1 --forceflush`, client, 0)
	s.Register(`nerdctl run --name `+name+`2 `+label+` --pull=never --annotation nerdctl/bypass4netns=true --entrypoint iperf3 `+testImage+` -c `+a+` -p `+port+` -t 2 -O 1 --forceflush`, client, 0)
	s.Register(`nerdctl run --name `+name+`3 `+label+` --pull=never --entrypoint iperf3 -p 127\.0\.0\.1:`+port+`:5201 `+testImage+` -s -p 5201 -1 --forceflush`, server, 0)
	s.Register(`nerdctl run --name `+name+`4 `+label+` --pull=never --annotation nerdctl/bypass4netns=true --entrypoint iperf3 -p 127\.0\.0\.1:`+port+`:5201 `+testImage+` -s -p 5201 -1 --forceflush`, server, 0)
	s.Register(`iperf3 -c 127\.0\.0\.1 -p `+port+` -t 2 -O 1 --forceflush`, client, 0)
	s.Register(`iperf3 -s -B 127\.0\.0\.1 -p `+port+` -1 --forceflush`, server, 0)
	for i := 1; i <= 4; i++ {
		s.Register(fmt.Sprintf(`nerdctl rm -f %s%d`, name, i), "", 0)
	}
}

func baseOptions(s sys.Runner, runtimeDir string, ev *events) Options {
	return Options{
		Runner: s, RuntimeDir: runtimeDir, Seconds: 2, Omit: 1, Image: testImage,
		Bypass4netnsFlags: []string{"--annotation", "nerdctl/bypass4netns=true"},
		Emit:              ev.emit,
	}
}

// TestRunAllScenarios runs every scenario against a strict fake of nerdctl and iperf3: the
// commands, the events in order, the results from iperf3's summary, and a removal for every
// container.
func TestRunAllScenarios(t *testing.T) {
	addr := hostAddr(t)
	s := sys.NewStub(t)
	stubAll(t, s, addr)
	ev := &events{t: t}
	report, err := Run(context.Background(), baseOptions(s, bypassSocket(t), ev))
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	var want []string
	want = append(want, "started")
	for _, sc := range Scenarios {
		want = append(want, "scenario-started:"+string(sc.ID))
		for range 3 { // the client output has a warm-up interval and two measured ones
			want = append(want, "sample:"+string(sc.ID))
		}
		want = append(want, "scenario-done:"+string(sc.ID))
	}
	want = append(want, "finished")
	if got := ev.kinds(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("events:\n got %v\nwant %v", got, want)
	}
	if len(report.Results) != 5 || report.Iperf3 != "3.12" || report.Image != testImage || report.HostAddress != addr.String() {
		t.Fatalf("report %+v", report)
	}
	for _, r := range report.Results {
		// testdata/iperf3-3.12-client-omit.txt: 13.1 Gbit/s on both sides, 6 retransmits.
		if r.Status != StatusOK || !near(r.BitsPerSecond, 13.1e9) || !near(r.SenderBitsPerSecond, 13.1e9) || r.Retransmits != 6 || r.Seconds != 2 || r.Streams != 1 {
			t.Errorf("%s: %+v", r.ID, r)
		}
	}
	first := ev.list[2].Sample
	if first == nil || !first.Warmup || !near(first.BitsPerSecond, 11.4e9) || first.Scenario != ContainerToHost {
		t.Errorf("first sample %+v, want the warm-up interval at 11.4 Gbit/s", first)
	}
	c2h, _ := report.Result(ContainerToHostBypass4netns)
	if !strings.HasPrefix(c2h.Command, "nerdctl run --rm --pull=never --annotation nerdctl/bypass4netns=true --entrypoint iperf3 "+testImage+" -c "+addr.String()) ||
		strings.Contains(c2h.Command, "--name") {
		t.Errorf("command to repeat by hand: %q", c2h.Command)
	}
	if !strings.HasPrefix(c2h.ServerCommand, "iperf3 -s -B "+addr.String()+" -p ") {
		t.Errorf("server command to repeat by hand: %q", c2h.ServerCommand)
	}
	h2c, _ := report.Result(HostToContainer)
	if !regexp.MustCompile(`^nerdctl run --rm --pull=never --entrypoint iperf3 -p 127\.0\.0\.1:[0-9]+:5201 `+regexp.QuoteMeta(testImage)+` -s -p 5201 -1 --forceflush$`).MatchString(h2c.ServerCommand) ||
		!strings.HasPrefix(h2c.Command, "iperf3 -c 127.0.0.1 -p ") {
		t.Errorf("host → container by hand: %q, then %q", h2c.ServerCommand, h2c.Command)
	}
	if x, ok := report.Speedup(DirContainerToHost); !ok || x != 1 {
		t.Errorf("Speedup = %v, %v", x, ok)
	}
}

// TestRunBypass4netnsdNotRunning: among all scenarios, the bypass4netns ones are skipped with the
// fix and the rest run; named with --scenario, the same is a failure.
func TestRunBypass4netnsdNotRunning(t *testing.T) {
	addr := hostAddr(t)
	noDaemon := t.TempDir()

	t.Run("all", func(t *testing.T) {
		s := sys.NewStub(t)
		a := regexp.QuoteMeta(addr.String())
		s.Register(`iperf3 --version`, versionLine, 0)
		s.Register(`nerdctl image inspect .*`, "sha256:0123\n", 0)
		s.Register(`iperf3 -s -B (`+a+`|127\.0\.0\.1) -p `+port+` -1 --forceflush`, testdata(t, "iperf3-3.12-server-p1.txt"), 0)
		s.Register(`nerdctl run --name `+name+`1 .* -c .*`, testdata(t, "iperf3-3.12-client-p1.txt"), 0)
		s.Register(`nerdctl run --name `+name+`3 .* -s .*`, testdata(t, "iperf3-3.12-server-p1.txt"), 0)
		s.Register(`iperf3 -c 127\.0\.0\.1 .*`, testdata(t, "iperf3-3.12-client-p1.txt"), 0)
		s.Register(`nerdctl rm -f `+name+`[13]`, "", 0)
		ev := &events{t: t}
		report, err := Run(context.Background(), baseOptions(s, noDaemon, ev))
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		for _, r := range report.Results {
			switch {
			case r.Bypass4netns && (r.Status != StatusSkipped || !strings.Contains(r.Reason, "bypass4netnsd is not running") || !strings.Contains(r.Fix, "virt-setup start")):
				t.Errorf("%s: %+v, want skipped with the fix", r.ID, r)
			case !r.Bypass4netns && r.Status != StatusOK:
				t.Errorf("%s: %+v", r.ID, r)
			}
		}
	})
	t.Run("chosen", func(t *testing.T) {
		s := sys.NewStub(t)
		s.Register(`iperf3 --version`, versionLine, 0)
		s.Register(`nerdctl image inspect .*`, "sha256:0123\n", 0)
		opts := baseOptions(s, noDaemon, &events{t: t})
		opts.Scenarios, opts.Chosen = []Scenario{Scenarios[1]}, true
		report, err := Run(context.Background(), opts)
		if !errors.Is(err, ErrBypass4netnsNotRunning) || !strings.Contains(FixFor(err), "systemctl --user start bypass4netnsd") {
			t.Fatalf("err = %v (fix %q), want ErrBypass4netnsNotRunning with the fix", err, FixFor(err))
		}
		if r := report.Results[0]; r.Status != StatusFailed || r.Fix == "" {
			t.Errorf("result %+v, want failed with the fix", r)
		}
	})
	t.Run("nerdctl without the flag", func(t *testing.T) {
		s := sys.NewStub(t)
		s.Register(`iperf3 --version`, versionLine, 0)
		s.Register(`nerdctl image inspect .*`, "sha256:0123\n", 0)
		opts := baseOptions(s, bypassSocket(t), &events{t: t})
		opts.Scenarios, opts.Chosen = []Scenario{Scenarios[3]}, true
		opts.Bypass4netnsFlags, opts.Bypass4netnsUnusable = nil, "nerdctl 0.16.0 is older than 0.17, which bypass4netns needs"
		_, err := Run(context.Background(), opts)
		if !errors.Is(err, ErrBypass4netnsUnusable) || !strings.Contains(err.Error(), "older than 0.17") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestRunIperf3Missing(t *testing.T) {
	s := sys.NewStub(t)
	s.RegisterError(`iperf3 --version`, fmt.Errorf("run iperf3 --version: %w", exec.ErrNotFound))
	ev := &events{t: t}
	report, err := Run(context.Background(), baseOptions(s, "", ev))
	if !errors.Is(err, ErrIperf3Missing) || !strings.Contains(FixFor(err), "apt-get install iperf3") {
		t.Fatalf("err = %v, fix %q", err, FixFor(err))
	}
	last := ev.list[len(ev.list)-1]
	if last.Kind != EventFinished || last.Fix != FixFor(err) || len(report.Results) != 0 {
		t.Errorf("finished event %+v, results %v", last, report.Results)
	}

	s = sys.NewStub(t)
	s.Register(`iperf3 --version`, "iperf version 2.1.8\n", 0)
	if _, err := Run(context.Background(), baseOptions(s, "", &events{t: t})); !errors.Is(err, ErrIperf3Missing) || !strings.Contains(err.Error(), "iperf version 2.1.8") {
		t.Errorf("iperf2 as iperf3: err = %v", err)
	}
}

func TestRunImageMissing(t *testing.T) {
	inspect := `nerdctl image inspect --format '\{\{\.ID\}\}' ` + regexp.QuoteMeta(testImage)
	t.Run("no pull", func(t *testing.T) {
		s := sys.NewStub(t)
		s.Register(`iperf3 --version`, versionLine, 0)
		s.Register(inspect, "time=... level=fatal msg=\"no such image: localhost/test/iperf3:1\"\n", 1)
		_, err := Run(context.Background(), baseOptions(s, "", &events{t: t}))
		if !errors.Is(err, ErrImageMissing) || !strings.Contains(FixFor(err), "--pull") || !strings.Contains(FixFor(err), "leave out --image") {
			t.Fatalf("err = %v, fix %q", err, FixFor(err))
		}
	})
	t.Run("pull fails", func(t *testing.T) {
		s := sys.NewStub(t)
		s.Register(`iperf3 --version`, versionLine, 0)
		s.Register(inspect, "no such image\n", 1)
		s.Register(`nerdctl pull `+regexp.QuoteMeta(testImage), "failed to resolve reference\n", 1)
		opts := baseOptions(s, "", &events{t: t})
		opts.Pull = true
		_, err := Run(context.Background(), opts)
		if !errors.Is(err, ErrImageMissing) || !strings.Contains(FixFor(err), "registry is reachable") {
			t.Fatalf("err = %v, fix %q", err, FixFor(err))
		}
	})
	t.Run("containerd not running", func(t *testing.T) {
		s := sys.NewStub(t)
		s.Register(`iperf3 --version`, versionLine, 0)
		s.Register(inspect, "rootless containerd not running? (hint: use `containerd-rootless-setuptool.sh install` to start rootless containerd): stat /run/user/1001/containerd-rootless: no such file or directory\n", 1)
		opts := baseOptions(s, "", &events{t: t})
		opts.Pull = true // a pull would not help: it must not be tried
		_, err := Run(context.Background(), opts)
		if !errors.Is(err, ErrContainerdNotRunning) || !strings.Contains(FixFor(err), "virt-setup start") {
			t.Fatalf("err = %v, fix %q", err, FixFor(err))
		}
	})
}

// TestRunPortInUse: a port the user chose that something holds is refused before anything
// starts; a server that loses a race for its port says so with the fix.
func TestRunPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	held := l.Addr().(*net.TCPAddr).Port

	s := sys.NewStub(t)
	s.Register(`iperf3 --version`, versionLine, 0)
	opts := baseOptions(s, "", &events{t: t})
	opts.Scenarios, opts.Port = []Scenario{Scenarios[4]}, held
	_, err = Run(context.Background(), opts)
	if !errors.Is(err, ErrPortInUse) || !strings.Contains(err.Error(), fmt.Sprint(held)) || !strings.Contains(FixFor(err), "--port") {
		t.Fatalf("err = %v, fix %q", err, FixFor(err))
	}

	s = sys.NewStub(t)
	s.Register(`iperf3 --version`, versionLine, 0)
	s.Register(`iperf3 -s -B 127\.0\.0\.1 -p `+port+` -1 --forceflush`, testdata(t, "iperf3-3.12-server-inuse.txt"), 1)
	opts = baseOptions(s, "", &events{t: t})
	opts.Scenarios = []Scenario{Scenarios[4]}
	if _, err = Run(context.Background(), opts); !errors.Is(err, ErrPortInUse) || FixFor(err) == "" {
		t.Fatalf("server lost the race: err = %v, fix %q", err, FixFor(err))
	}

	// The published port of a container, taken by the time RootlessKit binds it.
	s = sys.NewStub(t)
	s.Register(`iperf3 --version`, versionLine, 0)
	s.Register(`nerdctl image inspect .*`, "sha256:0123\n", 0)
	s.Register(`nerdctl run --name `+name+`1 .*`, `level=fatal msg="failed to create shim task: ... failed to expose ports in rootless mode: listen tcp 127.0.0.1:40000: bind: address already in use"`+"\n", 1)
	s.Register(`nerdctl rm -f `+name+`1`, "", 0)
	opts = baseOptions(s, "", &events{t: t})
	opts.Scenarios = []Scenario{Scenarios[2]}
	if _, err = Run(context.Background(), opts); !errors.Is(err, ErrPortInUse) {
		t.Fatalf("published port taken: err = %v", err)
	}
}

// TestRunRemovesContainerAfterFailure: a client that fails still has its container removed (the
// strict stub fails the test when the registered removal is not run), and the scenario's failure
// carries iperf3's own message.
func TestRunRemovesContainerAfterFailure(t *testing.T) {
	addr := hostAddr(t)
	s := sys.NewStub(t)
	s.Register(`iperf3 --version`, versionLine, 0)
	s.Register(`nerdctl image inspect .*`, "sha256:0123\n", 0)
	s.Register(`iperf3 -s -B .* -1 --forceflush`, testdata(t, "iperf3-3.12-server-p1.txt"), 0)
	s.Register(`nerdctl run --name `+name+`1 .*`, testdata(t, "iperf3-3.16-client-refused.txt"), 1)
	s.Register(`nerdctl rm -f `+name+`1`, "", 0)
	opts := baseOptions(s, "", &events{t: t})
	opts.Scenarios, opts.HostAddress = []Scenario{Scenarios[0]}, addr
	report, err := Run(context.Background(), opts)
	var ie *Iperf3Error
	if !errors.As(err, &ie) || !strings.Contains(ie.Msg, "Connection refused") || !strings.Contains(FixFor(err), "firewall") {
		t.Fatalf("err = %v", err)
	}
	if r := report.Results[0]; r.Status != StatusFailed || r.Fix == "" || r.BitsPerSecond != 0 {
		t.Errorf("result %+v", r)
	}
}

// TestRunLoopbackReal runs the loopback scenario with the real iperf3: samples arrive while the
// test runs, one per second, and the result is iperf3's summary.
func TestRunLoopbackReal(t *testing.T) {
	_, err := exec.LookPath("iperf3")
	testenv.Require(t, err == nil, "iperf3 (apt-get install iperf3)")
	ev := &events{t: t}
	var sampleTimes []time.Time
	var doneAt time.Time
	emit := func(e Event) {
		ev.emit(e)
		switch e.Kind {
		case EventSample:
			sampleTimes = append(sampleTimes, time.Now())
		case EventScenarioDone:
			doneAt = time.Now()
		}
	}
	report, err := Run(context.Background(), Options{Scenarios: []Scenario{Scenarios[4]}, Seconds: 2, Omit: 0, Emit: emit})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	r := report.Results[0]
	if r.Status != StatusOK || r.BitsPerSecond <= 0 || r.Seconds < 1.9 || !strings.HasPrefix(r.Command, "iperf3 -c 127.0.0.1 -p ") {
		t.Fatalf("result %+v", r)
	}
	if len(sampleTimes) != 2 {
		t.Fatalf("%d samples, want one per second of a 2 s test", len(sampleTimes))
	}
	// Live: the first interval is reported about a second before the test ends, not at its end.
	if gap := doneAt.Sub(sampleTimes[0]); gap < 500*time.Millisecond {
		t.Errorf("the first sample came %s before the end: not live", gap)
	}
	if report.Iperf3 == "" || report.Image != "" {
		t.Errorf("report %+v: want iperf3's version and no image (no container scenario)", report)
	}
}

// TestRunCancelled cancels a real run during its test, as Ctrl-C does: Run returns promptly with
// the cancellation, reports it, and leaves no iperf3 process behind.
func TestRunCancelled(t *testing.T) {
	_, err := exec.LookPath("iperf3")
	testenv.Require(t, err == nil, "iperf3 (apt-get install iperf3)")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ev := &events{t: t}
	emit := func(e Event) {
		ev.emit(e)
		if e.Kind == EventSample {
			cancel()
		}
	}
	start := time.Now()
	report, err := Run(ctx, Options{Scenarios: []Scenario{Scenarios[4]}, Seconds: 30, Emit: emit})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %s to stop a 30 s test", d)
	}
	last := ev.list[len(ev.list)-1]
	if last.Kind != EventFinished || !strings.HasPrefix(last.Err, "interrupted") {
		t.Errorf("last event %+v", last)
	}
	if r := report.Results[0]; r.Status != StatusFailed || r.Err != "interrupted" {
		t.Errorf("result %+v", r)
	}
	if kids := childProcesses(t); len(kids) > 0 {
		t.Errorf("left running: %v", kids)
	}
}

// childProcesses lists this test process's children.
func childProcesses(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	self := fmt.Sprint(os.Getpid())
	var out []string
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces, so split after the last ")".
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 1 && f[1] == self {
			out = append(out, e.Name()+" "+s[:i+1])
		}
	}
	return out
}

func TestOptionsRefused(t *testing.T) {
	for _, o := range []Options{
		{Seconds: -1}, {Seconds: MaxSeconds + 1}, {Parallel: MaxParallel + 1}, {Omit: -1}, {Port: 70000}, {Scenarios: []Scenario{}},
	} {
		o.Runner = sys.NewStub(t) // nothing may run
		if r, err := Run(context.Background(), o); err == nil || r != nil {
			t.Errorf("%+v accepted", o)
		}
	}
}

package installer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/core/snapshots/proxy"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/virt-setup/virt-setup/installer/image"
	"github.com/virt-setup/virt-setup/internal/sys"
	"github.com/virt-setup/virt-setup/internal/testenv"
)

// ---------------------------------------------------------------------------------------------
// Building the services from the answers.

// directFakeBins creates an executable for every program direct mode may need, in a fresh directory.
func directFakeBins(t *testing.T) (dir string, bins map[string]string) {
	t.Helper()
	dir = t.TempDir()
	bins = map[string]string{}
	for _, n := range []string{"containerd-rootless.sh", "containerd-rootless-setuptool.sh", "rootlesskit", "containerd",
		"slirp4netns", "nsenter", "bypass4netnsd", "bypass4netns", "containerd-fuse-overlayfs-grpc", "fuse-overlayfs",
		"containerd-stargz-grpc", "buildkitd"} {
		p := filepath.Join(dir, n)
		if err := os.WriteFile(p, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		bins[n] = p
	}
	return dir, bins
}

func directTestAnswers() Answers {
	return Answers{
		SchemaVersion: AnswersSchemaVersion, Snapshotter: "overlayfs", ServiceMode: "direct",
		RootlessKit: RootlessKitAnswers{NetworkDriver: "slirp4netns", MTU: 65520, PortDriver: "builtin",
			Slirp4netnsSandbox: "auto", Slirp4netnsSeccomp: "auto", DetachNetns: "true"},
	}
}

func directTestRuntime(t *testing.T, runner sys.Runner, env ...string) *Runtime {
	t.Helper()
	home := t.TempDir()
	p := Paths{Home: home, ConfigHome: home + "/.config", DataHome: home + "/.local/share",
		StateHome: home + "/.local/state", RuntimeDir: filepath.Join(home, "run")}
	if err := os.Mkdir(p.RuntimeDir, 0o700); err != nil {
		t.Fatal(err)
	}
	return &Runtime{Runner: runner, Paths: p, Env: env, Now: time.Now}
}

func TestDirectServicesFromAnswers(t *testing.T) {
	binDir, bins := directFakeBins(t)
	for _, bridge := range []bool{true, false} {
		t.Run(fmt.Sprintf("bridge=%v", bridge), func(t *testing.T) {
			stub := sys.NewStub(t)
			help := "  --oci-worker-net value  worker network type (\"auto\", \"cni\" or \"host\")\n"
			if bridge {
				help = "  --oci-worker-net value  worker network type (\"auto\", \"cni\", \"bridge\" or \"host\")\n"
			}
			stub.Register(`\S+/buildkitd --help`, help, 0)
			rt := directTestRuntime(t, stub, "PATH=/usr/local/bin:relative/dir:/usr/bin", "TERM=xterm", "SSH_TTY=/dev/pts/3",
				"XDG_SESSION_ID=7", "CONTAINERD_ROOTLESS_ROOTLESSKIT_FLAGS=--evil", "CONTAINERD_ROOTLESS_ROOTLESSKIT_MTU=9000",
				"https_proxy=http://proxy:3128", "LC_ALL=C.UTF-8", "HOME=/elsewhere")
			a := directTestAnswers()
			a.Snapshotter = "fuse-overlayfs"
			a.AddOns = AddOnAnswers{BuildKit: true, Stargz: true, Bypass4netns: true}
			a.RootlessKit.MTU = 1500
			svcs, err := DirectServices(a, rt, bins)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, s := range svcs {
				names = append(names, s.Name)
			}
			want := []string{ServiceContainerd, ServiceBypass4netnsd, ServiceFuseOverlayfs, ServiceStargz, ServiceBuildKit}
			if !slices.Equal(names, want) {
				t.Fatalf("services %v, want %v (containerd first)", names, want)
			}
			p := rt.Paths
			state := p.VirtSetupState()
			for _, s := range svcs {
				if s.PIDFile != filepath.Join(state, "run", s.Name+".pid") || s.LogFile != filepath.Join(state, "logs", s.Name+".log") {
					t.Errorf("%s: pid file %s, log %s; want them under %s", s.Name, s.PIDFile, s.LogFile, state)
				}
				if !filepath.IsAbs(s.Argv[0]) || s.Ready == nil || s.ReadyTimeout <= 0 || len(s.Match) == 0 || s.Dir != p.Home {
					t.Errorf("%s: incomplete service %+v", s.Name, s)
				}
				env := s.Env
				if !slices.IsSorted(env) {
					t.Errorf("%s: environment not sorted", s.Name)
				}
				for _, gone := range []string{"TERM", "SSH_TTY", "XDG_SESSION_ID", "CONTAINERD_ROOTLESS_ROOTLESSKIT_FLAGS"} {
					if directEnvValue(env, gone) != "" {
						t.Errorf("%s: %s from the shell reached the service", s.Name, gone)
					}
				}
				for k, v := range map[string]string{"https_proxy": "http://proxy:3128", "LC_ALL": "C.UTF-8", "HOME": p.Home,
					"XDG_RUNTIME_DIR": p.RuntimeDir, "XDG_DATA_HOME": p.DataHome, "XDG_CONFIG_HOME": p.ConfigHome} {
					if got := directEnvValue(env, k); got != v {
						t.Errorf("%s: %s=%q, want %q", s.Name, k, got, v)
					}
				}
				path := strings.Split(directEnvValue(env, "PATH"), ":")
				if path[0] != binDir || !slices.Contains(path, "/usr/sbin") || !slices.Contains(path, "/sbin") ||
					!slices.Contains(path, "/usr/local/bin") || slices.Contains(path, "relative/dir") {
					t.Errorf("%s: PATH %v; want the programs' directory first, /sbin and /usr/sbin, the user's absolute entries", s.Name, path)
				}
			}

			c := svcs[0]
			if !slices.Equal(c.Argv, []string{bins["containerd-rootless.sh"]}) || !c.RunsRootlessKit || c.InRootlessNamespaces {
				t.Errorf("containerd: %+v", c)
			}
			for k, v := range a.RootlessKitEnv() {
				if got := directEnvValue(c.Env, k); got != v {
					t.Errorf("containerd: %s=%q, want the answers' %q", k, got, v)
				}
			}
			if c.RootlessKitStateDir != filepath.Join(p.RuntimeDir, "containerd-rootless") ||
				!slices.Equal(c.ConfigFiles, []string{filepath.Join(p.ConfigHome, "containerd/config.toml")}) {
				t.Errorf("containerd: state dir %s, config files %v", c.RootlessKitStateDir, c.ConfigFiles)
			}
			if directEnvValue(svcs[1].Env, "CONTAINERD_ROOTLESS_ROOTLESSKIT_NET") != "" {
				t.Error("bypass4netnsd got RootlessKit's settings")
			}

			tool := bins["containerd-rootless-setuptool.sh"]
			fuse := svcs[2]
			fuseSock := filepath.Join(p.RuntimeDir, "containerd-fuse-overlayfs.sock")
			wantFuse := []string{tool, "nsenter", bins["containerd-fuse-overlayfs-grpc"], fuseSock, filepath.Join(p.DataHome, "containerd-fuse-overlayfs")}
			if !slices.Equal(fuse.Argv, wantFuse) || !slices.Equal(fuse.Match, wantFuse[2:]) || fuse.Socket != fuseSock || !fuse.InRootlessNamespaces {
				t.Errorf("fuse-overlayfs: argv %q match %q socket %s", fuse.Argv, fuse.Match, fuse.Socket)
			}
			stargz := svcs[3]
			if !slices.Equal(stargz.Argv[:4], []string{tool, "nsenter", "--", bins["containerd-stargz-grpc"]}) ||
				!slices.Equal(stargz.EnsureFiles, []string{filepath.Join(p.ConfigHome, "containerd-stargz-grpc/config.toml")}) {
				t.Errorf("stargz: argv %q, ensure %v", stargz.Argv, stargz.EnsureFiles)
			}
			bk := svcs[4]
			wantBK := []string{tool, "nsenter", "--", bins["buildkitd"], "--oci-worker=true", "--oci-worker-rootless=true", "--containerd-worker=false"}
			if bridge {
				wantBK = append(wantBK, "--oci-worker-net=bridge")
			}
			if !slices.Equal(bk.Argv, wantBK) || !slices.Equal(bk.Match, wantBK[3:]) ||
				bk.Socket != filepath.Join(p.RuntimeDir, "buildkit/buildkitd.sock") {
				t.Errorf("buildkitd: argv %q match %q socket %s; want argv %q", bk.Argv, bk.Match, bk.Socket, wantBK)
			}

			info := NewDirectServiceStep(c).Info()
			if info.ID != "service:containerd" || info.Kind != KindService || info.Timeout < containerdReadyTimeout ||
				len(info.Commands) != 1 || !strings.Contains(info.Commands[0], "CONTAINERD_ROOTLESS_ROOTLESSKIT_MTU=1500 ") ||
				!strings.Contains(info.Commands[0], bins["containerd-rootless.sh"]+" >>"+c.LogFile) {
				t.Errorf("info %+v", info)
			}
		})
	}
}

func TestDirectServicesLooksUpPATHAndNamesMissing(t *testing.T) {
	binDir, bins := directFakeBins(t)
	// Only containerd-rootless.sh and rootlesskit are given; the rest is found on the user's PATH.
	rt := directTestRuntime(t, sys.NewStub(t), "PATH="+binDir)
	svcs, err := DirectServices(directTestAnswers(), rt, map[string]string{"containerd-rootless.sh": bins["containerd-rootless.sh"]})
	if err != nil || len(svcs) != 1 {
		t.Fatalf("got %d services, %v; want containerd alone", len(svcs), err)
	}

	empty := t.TempDir()
	rt = directTestRuntime(t, sys.NewStub(t), "PATH="+empty)
	a := directTestAnswers()
	a.Snapshotter = "fuse-overlayfs"
	a.AddOns.Bypass4netns = true
	_, err = DirectServices(a, rt, map[string]string{"containerd-rootless.sh": bins["containerd-rootless.sh"], "bypass4netnsd": "relative/bypass4netnsd"})
	if err == nil {
		t.Fatal("no error with most programs missing")
	}
	for _, name := range []string{"rootlesskit (", "containerd (", "slirp4netns (", "containerd-rootless-setuptool.sh", "nsenter", "bypass4netnsd (addons.bypass4netns)",
		"containerd-fuse-overlayfs-grpc", "fuse-overlayfs"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
	if strings.Contains(err.Error(), "containerd-rootless.sh (") {
		t.Errorf("error %q names a program that was given", err)
	}
	if FixFor(err) == "" {
		t.Error("no fix for missing programs")
	}

	rt.Paths.RuntimeDir = ""
	if _, err := DirectServices(directTestAnswers(), rt, bins); err == nil || !strings.Contains(err.Error(), "XDG_RUNTIME_DIR") || FixFor(err) == "" {
		t.Errorf("no runtime dir: %v (fix %q)", err, FixFor(err))
	}
}

func TestDirectFingerprint(t *testing.T) {
	_, bins := directFakeBins(t)
	build := func(rt *Runtime, a Answers) DirectService {
		t.Helper()
		svcs, err := DirectServices(a, rt, bins)
		if err != nil {
			t.Fatal(err)
		}
		return svcs[0]
	}
	fp := func(s DirectService) string {
		t.Helper()
		f, err := s.Fingerprint()
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	rt := directTestRuntime(t, sys.NewStub(t), "PATH=/usr/bin", "TERM=xterm")
	a := directTestAnswers()
	base := fp(build(rt, a))
	if again := fp(build(rt, a)); again != base {
		t.Error("the same answers gave another fingerprint")
	}
	rt2 := *rt
	rt2.Env = []string{"TERM=screen", "PATH=/usr/bin", "SSH_CONNECTION=1 2 3 4"}
	if fp(build(&rt2, a)) != base {
		t.Error("a terminal variable changed the fingerprint (it would restart containerd at every login)")
	}
	b := a
	b.RootlessKit.MTU = 1500
	if fp(build(rt, b)) == base {
		t.Error("another MTU kept the fingerprint")
	}
	rt3 := *rt
	rt3.Env = []string{"PATH=/usr/bin", "https_proxy=http://proxy:3128"}
	if fp(build(&rt3, a)) == base {
		t.Error("a proxy setting kept the fingerprint")
	}
	cfg := filepath.Join(rt.Paths.ConfigHome, "containerd", "config.toml")
	if err := os.MkdirAll(filepath.Dir(cfg), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	empty := fp(build(rt, a))
	if empty == base {
		t.Error("an empty config file has the fingerprint of a missing one")
	}
	if err := os.WriteFile(cfg, []byte("version = 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if fp(build(rt, a)) == empty {
		t.Error("changed config content kept the fingerprint")
	}
}

func TestContainsRun(t *testing.T) {
	rk := []string{"rootlesskit", "--net=slirp4netns", "--mtu=65520", "/usr/local/bin/containerd-rootless.sh"}
	tests := []struct {
		words, run []string
		want       bool
	}{
		{rk, []string{"/usr/local/bin/containerd-rootless.sh"}, true},
		{rk, []string{"containerd-rootless.sh"}, false},
		{[]string{"/bin/sh", "/t/setuptool.sh", "nsenter", "/bin/grpc", "/s.sock", "/root"}, []string{"/bin/grpc", "/s.sock", "/root"}, true},
		{[]string{"nsenter", "--no-fork", "--", "/bin/grpc", "/s.sock", "/root"}, []string{"/bin/grpc", "/s.sock", "/root"}, true},
		{[]string{"/bin/grpc", "/other.sock", "/root"}, []string{"/bin/grpc", "/s.sock", "/root"}, false},
		{[]string{"/bin/grpc", "/s.sock"}, []string{"/bin/grpc", "/s.sock", "/root"}, false},
		{rk, nil, false},
		{nil, []string{"x"}, false},
	}
	for _, tt := range tests {
		if got := containsRun(tt.words, tt.run); got != tt.want {
			t.Errorf("containsRun(%q, %q) = %v, want %v", tt.words, tt.run, got, tt.want)
		}
	}
}

func TestParseProcStat(t *testing.T) {
	st, err := parseProcStat(42, []byte("42 (we ird) (name)) S 7 42 40 0 -1 4194560 1 0 0 0\n"))
	if err != nil || st != (procStat{State: 'S', PPID: 7, PGID: 42, SID: 40}) {
		t.Errorf("got %+v, %v", st, err)
	}
	for _, bad := range []string{"", "42 (x", "42 (x) S 7 x 1", "42 (x) S 7"} {
		if _, err := parseProcStat(42, []byte(bad)); err == nil {
			t.Errorf("parseProcStat(%q): no error", bad)
		}
	}
	self, err := readProcStat(os.Getpid())
	if err != nil || self.PPID != os.Getppid() || self.PGID != syscall.Getpgrp() {
		t.Errorf("own stat %+v, %v; want ppid %d pgid %d", self, err, os.Getppid(), syscall.Getpgrp())
	}
}

// ---------------------------------------------------------------------------------------------
// The step's life cycle with a stand-in daemon: this test binary in fake-daemon mode.

// directFakeDaemonEnv makes TestDirectFakeDaemon act as a daemon: "listen SOCKET" (with a child
// of its own, to show that stop takes the whole session), "never" (never ready), "exit N",
// "stubborn SOCKET" (ignores SIGTERM).
const directFakeDaemonEnv = "VIRT_SETUP_TEST_FAKE_DAEMON"

// TestDirectFakeDaemon is not a test of its own: the step tests start it as their service.
func TestDirectFakeDaemon(t *testing.T) {
	mode := os.Getenv(directFakeDaemonEnv)
	if mode == "" {
		return
	}
	f := strings.Fields(mode)
	fmt.Println("fake daemon starting:", mode)
	pidFile, _ := os.ReadFile(os.Getenv(directFakeDaemonEnv + "_PIDFILE"))
	fmt.Printf("fake daemon %d finds the pid file saying %q\n", os.Getpid(), strings.TrimSpace(string(pidFile)))
	switch f[0] {
	case "exit":
		fmt.Fprintln(os.Stderr, "fake daemon: giving up")
		code, _ := strconv.Atoi(f[1])
		os.Exit(code)
	case "never":
		fmt.Fprintln(os.Stderr, "fake daemon: waiting for something that never comes")
	case "listen", "stubborn":
		if f[0] == "stubborn" {
			signal.Ignore(syscall.SIGTERM)
		}
		child := exec.Command("sleep", "600")
		if err := child.Start(); err != nil {
			fmt.Println("fake daemon: start child:", err)
			os.Exit(1)
		}
		fmt.Println("fake daemon child", child.Process.Pid)
		l, err := net.Listen("unix", f[1])
		if err != nil {
			fmt.Println("fake daemon:", err)
			os.Exit(1)
		}
		fmt.Println("fake daemon listening on", f[1])
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
	}
	// Sleeping, not select{}: with nothing else to wake it the runtime would call that a deadlock.
	for {
		time.Sleep(time.Hour)
	}
}

// directFakeService describes the fake daemon as a service of rt.
func directFakeService(t *testing.T, rt *Runtime, mode string) DirectService {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	state := rt.Paths.VirtSetupState()
	sock := filepath.Join(rt.Paths.RuntimeDir, "fake.sock")
	argv := []string{self, "-test.run=^TestDirectFakeDaemon$", "-test.count=1", "-test.timeout=0"}
	svc := DirectService{
		Name: "fake", Argv: argv, Match: argv[1:2],
		Env: []string{directFakeDaemonEnv + "=" + strings.ReplaceAll(mode, "SOCKET", sock), "PATH=/usr/bin:/bin",
			directFakeDaemonEnv + "_PIDFILE=" + filepath.Join(state, "run", "fake.pid")},
		Dir:     rt.Paths.Home,
		PIDFile: filepath.Join(state, "run", "fake.pid"), LogFile: filepath.Join(state, "logs", "fake.log"),
		Socket: sock, Ready: socketReady(sock), ReadyTimeout: 30 * time.Second,
	}
	directStopAtCleanup(t, rt, svc)
	return svc
}

// directStopAtCleanup stops what a failed test left running.
func directStopAtCleanup(t *testing.T, rt *Runtime, svc DirectService) {
	t.Cleanup(func() {
		if err := stopService(context.Background(), rt, svc); err != nil {
			t.Errorf("clean-up: %v", err)
		}
	})
}

// directOutput collects rt.Output lines.
type directOutput struct {
	mu    sync.Mutex
	lines []string
}

func (o *directOutput) add(s string) { o.mu.Lock(); o.lines = append(o.lines, s); o.mu.Unlock() }
func (o *directOutput) all() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.lines)
}
func (o *directOutput) has(sub string) bool {
	return slices.ContainsFunc(o.all(), func(l string) bool { return strings.Contains(l, sub) })
}

func pidFromFile(t *testing.T, path string) int {
	t.Helper()
	pid, err := readPIDFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// fakeChildPID returns the pid of the fake daemon's own child, from its log.
func fakeChildPID(t *testing.T, log string, after int) int {
	t.Helper()
	b, _ := os.ReadFile(log)
	pid := 0
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "fake daemon child "); ok {
			pid, _ = strconv.Atoi(rest)
		}
	}
	if pid == 0 || pid == after {
		t.Fatalf("no new fake daemon child in %s:\n%s", log, b)
	}
	return pid
}

func TestDirectServiceStepLifecycle(t *testing.T) {
	out := &directOutput{}
	rt := directTestRuntime(t, sys.NewStub(t))
	rt.Output = out.add
	ctx := context.Background()
	svc := directFakeService(t, rt, "listen SOCKET")
	step := NewDirectServiceStep(svc)

	if done, err := step.Check(ctx, rt); err != nil || done {
		t.Fatalf("Check before the first start = %v, %v", done, err)
	}
	var rec Record
	if err := step.Apply(ctx, rt, &rec); err != nil {
		t.Fatal(err)
	}
	pid := pidFromFile(t, svc.PIDFile)
	child := fakeChildPID(t, svc.LogFile, 0)
	if !slices.Equal(rec.Processes, []ProcessRecord{{Name: filepath.Base(svc.Match[0]), PIDFile: svc.PIDFile}}) {
		t.Errorf("record %+v", rec.Processes)
	}
	if !out.has("fake daemon listening on") || !out.has("fake is ready after") {
		t.Errorf("the log was not streamed: %q", out.all())
	}
	// The pid file names the service before it runs, so that a virt-setup killed in the middle
	// of a start leaves nothing that no pid file names.
	if want := fmt.Sprintf("fake daemon %d finds the pid file saying %q", pid, strconv.Itoa(pid)); !out.has(want) {
		t.Errorf("the service ran before its pid file named it: want %q in %q", want, out.all())
	}
	st, err := readProcStat(pid)
	if err != nil || st.SID != pid || st.PGID != pid {
		t.Errorf("service stat %+v, %v: want a session of its own (sid = pgid = %d)", st, err, pid)
	}
	if done, err := step.Check(ctx, rt); err != nil || !done {
		t.Fatalf("Check after Apply = %v, %v", done, err)
	}
	// A second Apply through StartDirect leaves it alone.
	if err := StartDirect(ctx, rt, []DirectService{svc}); err != nil {
		t.Fatal(err)
	}
	if got := pidFromFile(t, svc.PIDFile); got != pid || !out.has("fake is already running") {
		t.Errorf("StartDirect restarted a service that was in place: pid %d → %d", pid, got)
	}

	// Changed settings: not done, and Apply replaces the old instance.
	changed := svc
	changed.Env = append(slices.Clone(svc.Env), "SOMETHING=new")
	step2 := NewDirectServiceStep(changed)
	if done, err := step2.Check(ctx, rt); err != nil || done {
		t.Fatalf("Check with a changed environment = %v, %v", done, err)
	}
	if err := step2.Apply(ctx, rt, &rec); err != nil {
		t.Fatal(err)
	}
	pid2 := pidFromFile(t, svc.PIDFile)
	if pid2 == pid || procAlive(pid) || procAlive(child) {
		t.Errorf("after the restart: pid %d → %d; old alive %v, its child alive %v", pid, pid2, procAlive(pid), procAlive(child))
	}
	child2 := fakeChildPID(t, svc.LogFile, child)
	if len(rec.Processes) != 1 {
		t.Errorf("the record lists the pid file twice: %+v", rec.Processes)
	}

	if err := step2.Undo(ctx, rt, rec); err != nil {
		t.Fatal(err)
	}
	if procAlive(pid2) || procAlive(child2) {
		t.Errorf("after Undo: service alive %v, its child alive %v", procAlive(pid2), procAlive(child2))
	}
	for _, f := range []string{svc.PIDFile, svc.FingerprintFile()} {
		if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind (%v)", f, err)
		}
	}
	if err := step2.Undo(ctx, rt, rec); err != nil {
		t.Errorf("a second Undo: %v", err)
	}
}

func TestDirectPIDFileBeforeService(t *testing.T) {
	rt := directTestRuntime(t, sys.NewStub(t))
	state := rt.Paths.VirtSetupState()
	pidFile := filepath.Join(state, "run", "sh.pid")
	// A service that reads its pid file the moment it starts: a pid file written after the start
	// would lose this race.
	script := `echo "pid file: $(cat "$0" 2>&1)"; sleep 600`
	svc := DirectService{Name: "sh", Argv: []string{"/bin/sh", "-c", script, pidFile}, Match: []string{"-c", script},
		Env: []string{"PATH=/usr/bin:/bin"}, Dir: rt.Paths.Home, PIDFile: pidFile, LogFile: filepath.Join(state, "logs", "sh.log"),
		ReadyTimeout: 10 * time.Second}
	directStopAtCleanup(t, rt, svc)
	step := NewDirectServiceStep(svc)
	var rec Record
	if err := step.Apply(context.Background(), rt, &rec); err != nil {
		t.Fatal(err)
	}
	pid := pidFromFile(t, pidFile)
	var log []byte
	for range 100 {
		if log, _ = os.ReadFile(svc.LogFile); bytes.Contains(log, []byte("pid file: ")) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !bytes.Contains(log, []byte(fmt.Sprintf("pid file: %d\n", pid))) {
		t.Errorf("the service did not find its pid %d in the pid file when it started:\n%s", pid, log)
	}
	if err := step.Undo(context.Background(), rt, rec); err != nil {
		t.Fatal(err)
	}
	if procAlive(pid) {
		t.Error("still running after Undo")
	}
}

func TestDirectServiceStubbornIsKilled(t *testing.T) {
	old := stopGrace
	stopGrace = 500 * time.Millisecond
	t.Cleanup(func() { stopGrace = old })
	rt := directTestRuntime(t, sys.NewStub(t))
	ctx := context.Background()
	svc := directFakeService(t, rt, "stubborn SOCKET")
	if err := StartDirect(ctx, rt, []DirectService{svc}); err != nil {
		t.Fatal(err)
	}
	pid := pidFromFile(t, svc.PIDFile)
	child := fakeChildPID(t, svc.LogFile, 0)
	start := time.Now()
	if err := StopDirect(ctx, rt, []DirectService{svc}); err != nil {
		t.Fatal(err)
	}
	if procAlive(pid) || procAlive(child) {
		t.Errorf("a service that ignores SIGTERM survived stop")
	}
	if d := time.Since(start); d < stopGrace {
		t.Errorf("killed after %s, before its grace of %s", d, stopGrace)
	}
}

func TestDirectServiceNotReadyIsStopped(t *testing.T) {
	rt := directTestRuntime(t, sys.NewStub(t))
	out := &directOutput{}
	rt.Output = out.add
	svc := directFakeService(t, rt, "never")
	svc.ReadyTimeout = 3 * time.Second
	err := NewDirectServiceStep(svc).Apply(context.Background(), rt, &Record{})
	if err == nil {
		t.Fatal("a service that never gets ready started")
	}
	for _, want := range []string{"not ready after 3s", "connect to " + svc.Socket, "last lines of " + svc.LogFile, "fake daemon: waiting for something that never comes"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if !strings.Contains(FixFor(err), svc.LogFile) {
		t.Errorf("fix %q does not name the log", FixFor(err))
	}
	if !out.has("fake daemon: waiting for something that never comes") {
		t.Errorf("the log was not streamed while waiting: %q", out.all())
	}
	if _, err := os.Stat(svc.PIDFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid file left behind: %v", err)
	}
	if left := directProcessesMatching(t, func(cmd string, _ []byte) bool { return strings.Contains(cmd, "TestDirectFakeDaemon") }); len(left) > 0 {
		t.Errorf("processes left running: %v", left)
	}
}

func TestDirectServiceExitIsReportedAtOnce(t *testing.T) {
	rt := directTestRuntime(t, sys.NewStub(t))
	svc := directFakeService(t, rt, "exit 3")
	start := time.Now()
	err := NewDirectServiceStep(svc).Apply(context.Background(), rt, &Record{})
	if err == nil || !strings.Contains(err.Error(), "exited before it was ready (exit status 3)") || !strings.Contains(err.Error(), "fake daemon: giving up") {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > svc.ReadyTimeout/2 {
		t.Errorf("the exit was noticed after %s", d)
	}
}

func TestDirectServiceLeavesOthersAlone(t *testing.T) {
	rt := directTestRuntime(t, sys.NewStub(t))
	ctx := context.Background()
	svc := directFakeService(t, rt, "listen SOCKET")
	// A pid file naming another process (this test): not the service, never signalled.
	if err := os.MkdirAll(filepath.Dir(svc.PIDFile), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(svc.PIDFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	step := NewDirectServiceStep(svc)
	if done, err := step.Check(ctx, rt); err != nil || done {
		t.Fatalf("Check with a reused pid = %v, %v", done, err)
	}
	if err := step.Undo(ctx, rt, Record{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(svc.PIDFile); !errors.Is(err, os.ErrNotExist) {
		t.Error("the stale pid file was kept")
	}

	// Something else already listens on the socket: Apply refuses instead of starting a second.
	l, err := net.Listen("unix", svc.Socket)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	err = step.Apply(ctx, rt, &Record{})
	if err == nil || !strings.Contains(err.Error(), "already running, not started by virt-setup") || FixFor(err) == "" {
		t.Errorf("Apply beside a foreign instance: %v (fix %q)", err, FixFor(err))
	}

	// An add-on that runs inside RootlessKit's namespaces needs containerd.
	addon := svc
	addon.InRootlessNamespaces = true
	addon.RootlessKitStateDir = filepath.Join(rt.Paths.RuntimeDir, "containerd-rootless")
	err = NewDirectServiceStep(addon).Apply(ctx, rt, &Record{})
	if err == nil || !strings.Contains(err.Error(), "containerd is not running") || !strings.Contains(FixFor(err), "virt-setup start") {
		t.Errorf("add-on without containerd: %v (fix %q)", err, FixFor(err))
	}
}

func TestDirectServiceEnsureFilesUndo(t *testing.T) {
	rt := directTestRuntime(t, sys.NewStub(t))
	ctx := context.Background()
	svc := directFakeService(t, rt, "listen SOCKET")
	cfg := filepath.Join(rt.Paths.ConfigHome, "fake", "config.toml")
	svc.EnsureFiles = []string{cfg}
	step := NewDirectServiceStep(svc)
	var rec Record
	if err := step.Apply(ctx, rt, &rec); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(cfg); err != nil || fi.Size() != 0 {
		t.Fatalf("config %v, %v", fi, err)
	}
	if len(rec.Files) != 1 || rec.Files[0].Existed || len(rec.Files[0].CreatedDirs) == 0 {
		t.Errorf("record %+v", rec.Files)
	}
	if err := step.Undo(ctx, rt, rec); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(cfg)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the created file or its directory is left: %v", err)
	}
}

// directProcessesMatching lists live processes (not this one) whose command line or environment
// match.
func directProcessesMatching(t *testing.T, match func(cmdline string, environ []byte) bool) []string {
	t.Helper()
	pids, err := listPIDs()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range pids {
		if p == os.Getpid() || !procAlive(p) {
			continue
		}
		cmd, _ := procCmdline(p)
		env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", p))
		if match(strings.Join(cmd, " "), env) {
			out = append(out, fmt.Sprintf("%d %s", p, strings.Join(cmd, " ")))
		}
	}
	return out
}

// ---------------------------------------------------------------------------------------------
// The real rootless stack, as the test user. The steps must run as that user, so the test binary
// is copied where they can run it and TestDirectChild does the work in a child process.

const directChildEnv = "VIRT_SETUP_TEST_DIRECT_CHILD"
const directResultMarker = "DIRECT-RESULT: "

type directChildRequest struct {
	// Action is apply (Check, then Apply when not done, per service), check, undo (from the record
	// file), start (StartDirect) or stop (StopDirect).
	Action string `json:"action"`
	// Services are the names to act on, in order; empty means all.
	Services []string          `json:"services,omitempty"`
	Answers  Answers           `json:"answers"`
	Bins     map[string]string `json:"bins,omitempty"`
	// ReadyTimeout, when set, replaces the services' own.
	ReadyTimeout time.Duration `json:"ready_timeout,omitempty"`
	RecordFile   string        `json:"record_file"`
}

type directChildService struct {
	Name       string        `json:"name"`
	DoneBefore bool          `json:"done_before"`
	PID        int           `json:"pid"`
	Duration   time.Duration `json:"duration"`
}

type directChildResult struct {
	Services []directChildService `json:"services"`
	Err      string               `json:"error,omitempty"`
	Fix      string               `json:"fix,omitempty"`
	Output   []string             `json:"output"`
}

// TestDirectChild is not a test of its own: the as-test-user tests run it as that user. It
// carries out one request and prints the result.
func TestDirectChild(t *testing.T) {
	reqPath := os.Getenv(directChildEnv)
	if reqPath == "" {
		return
	}
	var req directChildRequest
	b, err := os.ReadFile(reqPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &req); err != nil {
		t.Fatal(err)
	}
	out := &directOutput{}
	home, _ := os.UserHomeDir()
	rt := &Runtime{Runner: sys.Exec{}, Paths: PathsFromEnv(os.Getenv, home), Env: os.Environ(), Output: out.add, Now: time.Now}
	ctx := context.Background()
	res := directChildResult{}
	err = func() error {
		all, err := DirectServices(req.Answers, rt, req.Bins)
		if err != nil {
			return err
		}
		var svcs []DirectService
		for _, s := range all {
			if req.ReadyTimeout > 0 {
				s.ReadyTimeout = req.ReadyTimeout
			}
			if len(req.Services) == 0 || slices.Contains(req.Services, s.Name) {
				svcs = append(svcs, s)
			}
		}
		var rec Record
		if b, err := os.ReadFile(req.RecordFile); err == nil {
			if err := json.Unmarshal(b, &rec); err != nil {
				return err
			}
		}
		saveRecord := func() {
			b, _ := json.Marshal(rec)
			_ = os.WriteFile(req.RecordFile, b, 0o600)
		}
		report := func(s DirectService, doneBefore bool, d time.Duration) {
			pid, _ := readPIDFile(s.PIDFile)
			res.Services = append(res.Services, directChildService{Name: s.Name, DoneBefore: doneBefore, PID: pid, Duration: d})
		}
		switch req.Action {
		case "apply", "check":
			for _, s := range svcs {
				step := NewDirectServiceStep(s)
				done, err := step.Check(ctx, rt)
				if err != nil {
					return err
				}
				if done || req.Action == "check" {
					report(s, done, 0)
					continue
				}
				start := time.Now()
				var r Record
				err = step.Apply(ctx, rt, &r)
				rec = mergeRecord(rec, r)
				saveRecord()
				report(s, false, time.Since(start))
				if err != nil {
					return err
				}
			}
		case "undo":
			for _, s := range slices.Backward(svcs) {
				start := time.Now()
				if err := NewDirectServiceStep(s).Undo(ctx, rt, rec); err != nil {
					return err
				}
				report(s, false, time.Since(start))
			}
		case "start":
			start := time.Now()
			err := StartDirect(ctx, rt, svcs)
			for _, s := range svcs {
				report(s, false, time.Since(start))
			}
			return err
		case "stop":
			return StopDirect(ctx, rt, svcs)
		default:
			return fmt.Errorf("unknown action %q", req.Action)
		}
		return nil
	}()
	if err != nil {
		res.Err, res.Fix = err.Error(), FixFor(err)
	}
	res.Output = out.all()
	j, _ := json.Marshal(res)
	fmt.Println(directResultMarker + string(j))
}

// directLab is the test user's setup for one as-test-user test: fresh XDG directories (so that
// tests of other packages running containerd as the same user do not share RootlessKit's lock),
// the test binary where the user can run it, and the clean-up.
type directLab struct {
	u                                       testenv.TestUser
	shared, bin                             string
	runDir, dataHome, configHome, stateHome string
	requests                                int
}

// directRequire checks for the real stack, the way BuildPlan's caller would find it on PATH.
func directRequire(t *testing.T, extra ...string) testenv.TestUser {
	t.Helper()
	u := testenv.RequireTestUser(t)
	for _, p := range append([]string{"/usr/local/bin/containerd-rootless.sh", "/usr/local/bin/rootlesskit", "/usr/local/bin/containerd",
		"/usr/local/bin/nerdctl", "/usr/bin/slirp4netns", "/usr/bin/nsenter", "/usr/sbin/iptables", "/usr/bin/newuidmap"}, extra...) {
		_, err := os.Stat(p)
		testenv.Require(t, err == nil, p+" is missing: run scripts/install-components.sh and scripts/setup-test-host.sh as root")
	}
	return u
}

// directDeviceMode sets a device's mode as udev would on a normal distribution, and restores it.
func directDeviceMode(t *testing.T, dev string, mode os.FileMode) {
	t.Helper()
	fi, err := os.Stat(dev)
	testenv.Require(t, err == nil, dev+" does not exist")
	if err := os.Chmod(dev, mode); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.Chmod(dev, fi.Mode().Perm()); err != nil {
			t.Errorf("restore the mode of %s: %v", dev, err)
		}
	})
}

func newDirectLab(t *testing.T, u testenv.TestUser) *directLab {
	t.Helper()
	directDeviceMode(t, "/dev/net/tun", 0o666)
	l := &directLab{u: u, shared: testenv.SharedDir(t)}
	l.bin = testenv.CopyTestBinary(t, l.shared, "installer.test")
	// A real runtime directory is a tmpfs below /run/user; this one is a fresh one beside it.
	if err := os.MkdirAll("/run/user", 0o755); err != nil {
		t.Fatal(err)
	}
	var err error
	l.runDir, err = os.MkdirTemp("/run/user", fmt.Sprintf("%d-test-", u.UID))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(l.runDir) })
	user := filepath.Join(l.shared, "user")
	l.dataHome, l.configHome, l.stateHome = user+"/data", user+"/config", user+"/state"
	for _, d := range []string{l.runDir, user, l.dataHome, l.configHome, l.stateHome} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, u.UID, u.GID); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// Whatever a failed test leaves running is killed before the directories go.
	t.Cleanup(func() {
		mine, _ := l.ours(t)
		for _, p := range mine {
			pid, _ := strconv.Atoi(strings.Fields(p)[0])
			t.Logf("clean-up: killing %s", p)
			syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(200 * time.Millisecond)
	})
	return l
}

func (l *directLab) env() []string {
	return []string{"XDG_RUNTIME_DIR=" + l.runDir, "XDG_DATA_HOME=" + l.dataHome, "XDG_CONFIG_HOME=" + l.configHome, "XDG_STATE_HOME=" + l.stateHome}
}

// ours lists the live processes that belong to this lab: their environment names its runtime
// directory or their command line one of its directories. others are the rest of the test user's
// processes, which belong to other packages' tests running at the same time.
func (l *directLab) ours(t *testing.T) (mine, others []string) {
	t.Helper()
	mine = directProcessesMatching(t, func(cmd string, env []byte) bool {
		return bytes.Contains(env, []byte("XDG_RUNTIME_DIR="+l.runDir+"\x00")) || strings.Contains(cmd, l.runDir) || strings.Contains(cmd, l.shared)
	})
	pids, _ := listPIDs()
	for _, p := range pids {
		if uid, err := procUID(p); err == nil && uid == l.u.UID && procAlive(p) {
			if !slices.ContainsFunc(mine, func(m string) bool { return strings.HasPrefix(m, strconv.Itoa(p)+" ") }) {
				cmd, _ := procCmdline(p)
				others = append(others, fmt.Sprintf("%d %s", p, strings.Join(cmd, " ")))
			}
		}
	}
	return mine, others
}

// run carries out one request as the test user.
func (l *directLab) run(t *testing.T, req directChildRequest) directChildResult {
	t.Helper()
	l.requests++
	req.RecordFile = filepath.Join(l.stateHome, "record.json")
	reqPath := filepath.Join(l.shared, fmt.Sprintf("request-%d.json", l.requests))
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(reqPath, b, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := l.u.Command(ctx, l.bin, []string{"-test.run=^TestDirectChild$", "-test.count=1", "-test.v"}, append(l.env(), directChildEnv+"="+reqPath)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("TestDirectChild %s as %s: %v\nstdout:\n%s\nstderr:\n%s", req.Action, l.u.Name, err, out, stderr.String())
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), directResultMarker); ok {
			var res directChildResult
			if err := json.Unmarshal([]byte(rest), &res); err != nil {
				t.Fatalf("parse %q: %v", rest, err)
			}
			return res
		}
	}
	t.Fatalf("TestDirectChild printed no result:\n%s\nstderr:\n%s", out, stderr.String())
	return directChildResult{}
}

func (l *directLab) mustRun(t *testing.T, req directChildRequest) directChildResult {
	t.Helper()
	res := l.run(t, req)
	if res.Err != "" {
		t.Fatalf("%s %v: %s\nfix: %s\noutput:\n  %s", req.Action, req.Services, res.Err, res.Fix, strings.Join(res.Output, "\n  "))
	}
	return res
}

func (res directChildResult) service(t *testing.T, name string) directChildService {
	t.Helper()
	for _, s := range res.Services {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no result for %s in %+v", name, res.Services)
	return directChildService{}
}

// assertNothingLeft checks that no process of the lab runs and the pid files are gone.
func (l *directLab) assertNothingLeft(t *testing.T, services ...string) {
	t.Helper()
	// A process that was just SIGKILLed may take a moment to be reaped by init.
	var left, others []string
	for range 50 {
		if left, others = l.ours(t); len(left) == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(left) > 0 {
		t.Errorf("processes of %s left running: %v", l.u.Name, left)
	}
	if len(others) > 0 {
		t.Logf("other processes of %s, not this test's: %v", l.u.Name, others)
	}
	for _, s := range services {
		for _, f := range []string{filepath.Join(l.stateHome, "virt-setup/run", s+".pid"), filepath.Join(l.stateHome, "virt-setup/run", s+".fingerprint")} {
			if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s left behind (%v)", f, err)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(l.runDir, "containerd-rootless")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("RootlessKit's state directory is still there (%v)", err)
	}
}

func (l *directLab) cmdline(t *testing.T, pid int) string {
	t.Helper()
	cmd, err := procCmdline(pid)
	if err != nil {
		t.Fatalf("pid %d: %v", pid, err)
	}
	return strings.Join(cmd, " ")
}

func TestDirectContainerdAsTestUser(t *testing.T) {
	u := directRequire(t)
	l := newDirectLab(t, u)
	a := directTestAnswers()
	req := directChildRequest{Action: "apply", Answers: a, Services: []string{ServiceContainerd}}

	res := l.mustRun(t, req)
	first := res.service(t, ServiceContainerd)
	if first.DoneBefore || first.PID == 0 || !procAlive(first.PID) {
		t.Fatalf("first start: %+v", first)
	}
	t.Logf("containerd ready after %s (Apply, as %s)", first.Duration.Round(time.Millisecond), u.Name)
	if !slices.ContainsFunc(res.Output, func(s string) bool { return strings.Contains(s, "containerd is ready after") }) {
		t.Errorf("no ready line in the output: %q", res.Output)
	}
	logText, err := os.ReadFile(filepath.Join(l.stateHome, "virt-setup/logs/containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	streamed := 0
	for _, line := range res.Output {
		if strings.Contains(line, "level=") {
			streamed++
			if !bytes.Contains(logText, []byte(line)) {
				t.Errorf("output line %q is not in the log", line)
			}
		}
	}
	if streamed == 0 {
		t.Errorf("containerd's log lines were not streamed: %q", res.Output)
	}
	st, err := readProcStat(first.PID)
	if err != nil || st.SID != first.PID {
		t.Errorf("RootlessKit's stat %+v, %v: want a session of its own", st, err)
	}
	if c := l.cmdline(t, first.PID); !strings.Contains(c, "--mtu=65520") || !strings.Contains(c, "--detach-netns") {
		t.Errorf("RootlessKit runs as %q; want the answers' --mtu=65520 and --detach-netns", c)
	}

	info := string(u.Run(t, "nerdctl", []string{"info"}, l.env()...))
	if !strings.Contains(info, "Storage Driver: overlayfs") {
		t.Errorf("nerdctl info:\n%s", info)
	}

	res = l.mustRun(t, req)
	if again := res.service(t, ServiceContainerd); !again.DoneBefore || again.PID != first.PID {
		t.Errorf("second run: %+v; want done with the same pid %d", again, first.PID)
	}

	changed := req
	changed.Answers.RootlessKit.MTU = 1500
	res = l.mustRun(t, directChildRequest{Action: "check", Answers: changed.Answers, Services: changed.Services})
	if res.service(t, ServiceContainerd).DoneBefore {
		t.Error("Check is true after the MTU changed")
	}
	res = l.mustRun(t, changed)
	second := res.service(t, ServiceContainerd)
	if second.DoneBefore || second.PID == first.PID || procAlive(first.PID) {
		t.Fatalf("restart: %+v (old pid %d alive %v)", second, first.PID, procAlive(first.PID))
	}
	t.Logf("restart for a new MTU (stop, start, ready) took %s", second.Duration.Round(time.Millisecond))
	if c := l.cmdline(t, second.PID); !strings.Contains(c, "--mtu=1500") {
		t.Errorf("the new RootlessKit runs as %q; want --mtu=1500", c)
	}
	if old := directProcessesMatching(t, func(cmd string, _ []byte) bool {
		return strings.Contains(cmd, "--mtu=65520") && strings.Contains(cmd, l.runDir)
	}); len(old) > 0 {
		t.Errorf("the old instance is still running: %v", old)
	}
	info = string(u.Run(t, "nerdctl", []string{"info"}, l.env()...))
	if !strings.Contains(info, "Storage Driver: overlayfs") {
		t.Errorf("nerdctl info after the restart:\n%s", info)
	}

	// A running container: containerd leaves its shim and the container's processes running when
	// it stops, so Undo must find them in RootlessKit's namespaces.
	marker := directRunContainer(t, l)

	res = l.mustRun(t, directChildRequest{Action: "undo", Answers: changed.Answers, Services: changed.Services})
	t.Logf("undo with a running container took %s", res.service(t, ServiceContainerd).Duration.Round(time.Millisecond))
	l.assertNothingLeft(t, ServiceContainerd)
	if left := directProcessesMatching(t, func(cmd string, _ []byte) bool { return strings.Contains(cmd, marker) }); len(left) > 0 {
		t.Errorf("the container's processes survived Undo: %v", left)
	}
}

// directRunContainer loads a busybox image built from this host's static busybox and runs a
// container that sleeps, returning the argument of its sleep (unique to the lab).
func directRunContainer(t *testing.T, l *directLab) string {
	t.Helper()
	bb, err := image.FindBusybox()
	testenv.Require(t, err == nil, fmt.Sprintf("%v: %s", err, image.BusyboxInstallHint))
	var archive bytes.Buffer
	if _, err := image.WriteOCIArchive(&archive, image.BusyboxSpec(bb)); err != nil {
		t.Fatal(err)
	}
	tarPath := filepath.Join(l.shared, "busybox.tar")
	if err := os.WriteFile(tarPath, archive.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	// nerdctl's OCI hook runs the CNI plugins with nerdctl's own PATH, and they need iptables.
	env := append(l.env(), "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
	l.u.Run(t, "nerdctl", []string{"load", "-i", tarPath}, env...)
	marker := strconv.Itoa(100000 + int(time.Now().UnixNano()%800000))
	l.u.Run(t, "nerdctl", []string{"run", "-d", "--name", "virt-setup-direct", image.BusyboxRef, "sleep", marker}, env...)
	ps := string(l.u.Run(t, "nerdctl", []string{"ps"}, l.env()...))
	if !strings.Contains(ps, "virt-setup-direct") {
		t.Fatalf("the container is not running:\n%s", ps)
	}
	if running := directProcessesMatching(t, func(cmd string, _ []byte) bool { return cmd == "sleep "+marker }); len(running) != 1 {
		t.Fatalf("the container's sleep %s: %v", marker, running)
	}
	return marker
}

func TestDirectAddOnsAsTestUser(t *testing.T) {
	u := directRequire(t, "/usr/local/bin/bypass4netnsd", "/usr/local/bin/bypass4netns", "/usr/local/bin/containerd-fuse-overlayfs-grpc",
		"/usr/local/bin/containerd-rootless-setuptool.sh", "/usr/bin/fuse-overlayfs")
	l := newDirectLab(t, u)
	directDeviceMode(t, "/dev/fuse", 0o666)
	a := directTestAnswers()
	a.Snapshotter = "fuse-overlayfs"
	a.AddOns.Bypass4netns = true
	all := []string{ServiceContainerd, ServiceBypass4netnsd, ServiceFuseOverlayfs}

	res := l.mustRun(t, directChildRequest{Action: "start", Answers: a})
	pids := map[string]int{}
	for _, n := range all {
		s := res.service(t, n)
		if s.PID == 0 || !procAlive(s.PID) {
			t.Fatalf("%s is not running: %+v\noutput:\n  %s", n, s, strings.Join(res.Output, "\n  "))
		}
		pids[n] = s.PID
	}

	// bypass4netnsd answers its API.
	hc := http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", filepath.Join(l.runDir, "bypass4netnsd.sock"))
	}}}
	resp, err := hc.Get("http://bypass4netnsd/v1/bypass")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var bypasses []json.RawMessage
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &bypasses) != nil {
		t.Errorf("GET /v1/bypass: %s %q", resp.Status, body)
	}

	// containerd-fuse-overlayfs runs inside RootlessKit's namespaces and serves the snapshots API.
	child := directChildPID(t, l)
	if !sameNS(t, "mnt", pids[ServiceFuseOverlayfs], child) || !sameNS(t, "user", pids[ServiceFuseOverlayfs], child) {
		t.Error("containerd-fuse-overlayfs is not in RootlessKit's namespaces")
	}
	directSnapshotterAnswers(t, filepath.Join(l.runDir, "containerd-fuse-overlayfs.sock"))

	// A containerd restart takes the add-ons in its namespaces with it; they start again in the new
	// ones. bypass4netnsd runs outside them and stays.
	changed := a
	changed.RootlessKit.MTU = 1500
	l.mustRun(t, directChildRequest{Action: "apply", Answers: changed, Services: []string{ServiceContainerd}})
	res = l.mustRun(t, directChildRequest{Action: "check", Answers: changed})
	if res.service(t, ServiceFuseOverlayfs).DoneBefore || !res.service(t, ServiceBypass4netnsd).DoneBefore {
		t.Errorf("after the containerd restart: %+v; want fuse-overlayfs to need a start and bypass4netnsd not", res.Services)
	}
	res = l.mustRun(t, directChildRequest{Action: "start", Answers: changed})
	fuse2 := res.service(t, ServiceFuseOverlayfs).PID
	if fuse2 == pids[ServiceFuseOverlayfs] || !sameNS(t, "mnt", fuse2, directChildPID(t, l)) {
		t.Errorf("containerd-fuse-overlayfs after the restart: pid %d (was %d), not in the new namespaces", fuse2, pids[ServiceFuseOverlayfs])
	}
	if b := res.service(t, ServiceBypass4netnsd).PID; b != pids[ServiceBypass4netnsd] {
		t.Errorf("bypass4netnsd was restarted (%d → %d)", pids[ServiceBypass4netnsd], b)
	}
	directSnapshotterAnswers(t, filepath.Join(l.runDir, "containerd-fuse-overlayfs.sock"))

	l.mustRun(t, directChildRequest{Action: "stop", Answers: changed})
	l.assertNothingLeft(t, all...)
}

func directChildPID(t *testing.T, l *directLab) int {
	t.Helper()
	pid, err := readPIDFile(filepath.Join(l.runDir, "containerd-rootless/child_pid"))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func sameNS(t *testing.T, ns string, a, b int) bool {
	t.Helper()
	x, errX := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", a, ns))
	y, errY := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", b, ns))
	if errX != nil || errY != nil {
		t.Fatalf("read namespaces: %v, %v", errX, errY)
	}
	return x == y
}

// directSnapshotterAnswers makes a snapshots API call to a proxy snapshotter's socket.
func directSnapshotterAnswers(t *testing.T, sock string) {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sn := proxy.NewSnapshotter(snapshotsapi.NewSnapshotsClient(conn), "fuse-overlayfs")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	key := fmt.Sprintf("virt-setup-test-%d", time.Now().UnixNano())
	if _, err := sn.Prepare(ctx, key, ""); err != nil {
		t.Errorf("snapshots API on %s: prepare: %v", sock, err)
		return
	}
	var keys []string
	if err := sn.Walk(ctx, func(_ context.Context, i snapshots.Info) error { keys = append(keys, i.Name); return nil }); err != nil || !slices.Contains(keys, key) {
		t.Errorf("snapshots API on %s: walk found %q, %v; want %s", sock, keys, err, key)
	}
	if err := sn.Remove(ctx, key); err != nil {
		t.Errorf("snapshots API on %s: remove: %v", sock, err)
	}
}

func TestDirectReadyTimeoutAsTestUser(t *testing.T) {
	u := directRequire(t)
	l := newDirectLab(t, u)
	fake := filepath.Join(l.shared, "bin", "containerd-rootless.sh")
	if err := os.MkdirAll(filepath.Dir(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\necho \"fake containerd-rootless.sh: pretending to start\"\necho \"fake: waiting for something that never comes\" >&2\nsleep 600 &\nsleep 600\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res := l.run(t, directChildRequest{Action: "apply", Answers: directTestAnswers(), Services: []string{ServiceContainerd},
		Bins: map[string]string{"containerd-rootless.sh": fake}, ReadyTimeout: 3 * time.Second})
	t.Logf("the failed start took %s, the whole child %s", res.service(t, ServiceContainerd).Duration.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	logPath := filepath.Join(l.stateHome, "virt-setup/logs/containerd.log")
	for _, want := range []string{"not ready after 3s", "RootlessKit's child is not up", "last lines of " + logPath, "fake: waiting for something that never comes"} {
		if !strings.Contains(res.Err, want) {
			t.Errorf("error %q lacks %q", res.Err, want)
		}
	}
	if !strings.Contains(res.Fix, logPath) {
		t.Errorf("fix %q does not name the log %s", res.Fix, logPath)
	}
	if !slices.Contains(res.Output, "fake containerd-rootless.sh: pretending to start") {
		t.Errorf("the log was not streamed: %q", res.Output)
	}
	l.assertNothingLeft(t, ServiceContainerd)
}

func TestWorthShowing(t *testing.T) {
	for line, want := range map[string]bool{
		`time="2026-11-29T18:47:57.927Z" level=info msg="Start event monitor"`:                  false,
		`time="2026-11-29T18:47:57Z" level=debug msg="x"`:                                       false,
		`time="2026-11-29T18:47:57Z" level=warning msg="failed to load plugin" error="no fuse"`: true,
		`time="2026-11-29T18:47:57Z" level=error msg="failed to setup UID/GID map"`:             true,
		`[rootlesskit:parent] error: failed to setup network &{...}: open: Permission denied`:   true,
		`containerd is ready after 0.20s`:                                                       true,
		`msg="level=info is only text here" level=warning`:                                      true,
	} {
		if got := worthShowing(line); got != want {
			t.Errorf("worthShowing(%q) = %v, want %v", line, got, want)
		}
	}
}

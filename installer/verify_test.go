package installer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/virt-setup/virt-setup/installer/image"
	"github.com/virt-setup/virt-setup/internal/sys"
	"github.com/virt-setup/virt-setup/internal/testenv"
)

// TestMain lets the test binary stand in for virt-setup: Verify re-executes it under nsenter with
// VerifyHelperEnv set, and that child must run the helper, not the tests.
func TestMain(m *testing.M) {
	if code, ran := RunVerifyHelper(); ran {
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// fakeState makes a RootlessKit state directory whose child is this test process (so it is
// alive), with a netns file when detached.
func fakeState(t *testing.T, detached bool) (runtimeDir, stateDir string) {
	t.Helper()
	runtimeDir = t.TempDir()
	stateDir = filepath.Join(runtimeDir, "containerd-rootless")
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(stateDir, "child_pid"), []byte(strconv.Itoa(os.Getpid())), 0o444); err != nil {
		t.Fatal(err)
	}
	if detached {
		if err := os.WriteFile(filepath.Join(stateDir, "netns"), nil, 0o400); err != nil {
			t.Fatal(err)
		}
	}
	return runtimeDir, stateDir
}

func testRuntime(runner sys.Runner, runtimeDir string, out *[]string) *Runtime {
	return &Runtime{
		Runner: runner,
		Paths:  Paths{Home: "/home/u", ConfigHome: "/home/u/.config", RuntimeDir: runtimeDir},
		Env:    []string{"PATH=/usr/bin:/bin", VerifyHelperEnv + "=stale"},
		Output: func(line string) { *out = append(*out, line) },
		Now:    time.Now,
	}
}

// fakeBusybox is a Spec whose file exists, so Verify does not look for the host's busybox.
func fakeBusybox(t *testing.T) image.Spec {
	src := filepath.Join(t.TempDir(), "busybox")
	if err := os.WriteFile(src, []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	return image.BusyboxSpec(src)
}

func TestVerifyEntersNamespacesLikeNerdctl(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	answer := verifyResult{
		ServerVersion: "v2.4.2", SnapshotterStatus: "ok", Image: image.BusyboxRef, ImageImported: true,
		Container: ContainerRun{OK: true, Output: "virt-setup-verify-x\n"},
		Items: []VerifyItem{
			{Check: CheckConnect, OK: true, Detail: "containerd v2.4.2"},
			{Check: CheckSnapshotter, OK: true, Detail: "native is loaded"},
		},
	}
	answerJSON, _ := json.Marshal(answer)
	for _, detached := range []bool{false, true} {
		t.Run(fmt.Sprintf("detached=%v", detached), func(t *testing.T) {
			runtimeDir, _ := fakeState(t, detached)
			netFlag := " -n"
			if detached {
				netFlag = ""
			}
			stub := sys.NewStub(t)
			// nerdctl's rootlessutil runs the same: user and mount namespaces, and the network
			// namespace unless RootlessKit detached it.
			stub.Register(regexp.QuoteMeta(fmt.Sprintf("nsenter -U --preserve-credentials -m%s -t %d -F -- %s", netFlag, os.Getpid(), sys.ShellQuote(self))),
				"some noise\n"+string(answerJSON)+"\n", 0)
			var out []string
			rep, err := Verify(context.Background(), testRuntime(stub, runtimeDir, &out), VerifyOptions{Snapshotter: "native", Image: fakeBusybox(t)})
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !rep.OK() || rep.ServerVersion != "v2.4.2" || rep.SnapshotterStatus != "ok" || !rep.ImageImported ||
				rep.Container.Output != "virt-setup-verify-x\n" || rep.Snapshotter != "native" {
				t.Errorf("report = %+v", rep)
			}
			checks := []string{CheckFindContainerd, CheckConnect, CheckSnapshotter}
			if len(rep.Items) != len(checks) {
				t.Fatalf("items = %+v, want %v", rep.Items, checks)
			}
			for i, c := range checks {
				if rep.Items[i].Check != c || !rep.Items[i].OK {
					t.Errorf("item %d = %+v, want %s ok", i, rep.Items[i], c)
				}
			}
			wantNet := "RootlessKit's network namespace"
			if detached {
				wantNet = "detach-netns"
			}
			if !strings.Contains(rep.Items[0].Detail, wantNet) {
				t.Errorf("first item %q does not say %q", rep.Items[0].Detail, wantNet)
			}
			// The stub passes no stderr, so Verify itself shows the helper's items.
			if len(out) != 3 || !strings.HasPrefix(out[2], "✓ ok    snapshotter: native is loaded") {
				t.Errorf("output = %q", out)
			}
		})
	}
}

func TestVerifyPassesTheRequestToTheHelper(t *testing.T) {
	runtimeDir, _ := fakeState(t, true)
	var got []string
	runner := runnerFunc(func(_ context.Context, c sys.Command) (sys.Result, error) {
		got = c.Env
		return sys.Result{Stdout: []byte(`{"items":[{"check":"connect to containerd","ok":true}]}`)}, nil
	})
	var out []string
	spec := fakeBusybox(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := Verify(ctx, testRuntime(runner, runtimeDir, &out), VerifyOptions{Snapshotter: "overlayfs", Namespace: "ns1", Image: spec}); err != nil {
		t.Fatal(err)
	}
	var reqs []verifyRequest
	for _, kv := range got {
		if v, ok := strings.CutPrefix(kv, VerifyHelperEnv+"="); ok {
			var r verifyRequest
			if err := json.Unmarshal([]byte(v), &r); err != nil {
				t.Fatalf("helper request %q: %v", v, err)
			}
			reqs = append(reqs, r)
		}
	}
	if len(reqs) != 1 {
		t.Fatalf("environment has %d helper requests (the stale one must go): %q", len(reqs), got)
	}
	r := reqs[0]
	if r.Address != "/run/containerd/containerd.sock" || r.Namespace != "ns1" || r.Snapshotter != "overlayfs" ||
		r.Image.Ref != spec.Ref || r.Image.Files[0].Src != spec.Files[0].Src {
		t.Errorf("request = %+v", r)
	}
	if !strings.HasPrefix(r.Token, "virt-setup-verify-") || len(r.Token) < len("virt-setup-verify-")+16 || !strings.HasPrefix(r.ContainerID, "virt-setup-verify-") {
		t.Errorf("token %q / container %q are not random names", r.Token, r.ContainerID)
	}
	if r.Timeout <= 0 || r.Timeout > time.Minute-4*time.Second {
		t.Errorf("helper timeout %s must leave room before the caller's deadline", r.Timeout)
	}
}

type runnerFunc func(context.Context, sys.Command) (sys.Result, error)

func (f runnerFunc) Run(ctx context.Context, c sys.Command) (sys.Result, error) { return f(ctx, c) }

func TestVerifyFailures(t *testing.T) {
	self, _ := os.Executable()
	tests := []struct {
		name      string
		state     func(t *testing.T) (runtimeDir string)
		stub      func(s *sys.Stub, pid int)
		opts      VerifyOptions
		wantCheck string
		wantErr   string
		wantLook  string
	}{
		{
			name:      "not running",
			state:     func(t *testing.T) string { return t.TempDir() },
			opts:      VerifyOptions{LogPath: "/home/u/.local/state/virt-setup/logs/containerd.log"},
			wantCheck: CheckFindContainerd, wantErr: "child_pid does not exist",
			wantLook: "the containerd log: /home/u/.local/state/virt-setup/logs/containerd.log",
		},
		{
			name: "stale pid",
			state: func(t *testing.T) string {
				dir, state := fakeState(t, false)
				// A pid above the kernel's maximum is never alive.
				if err := os.WriteFile(filepath.Join(state, "child_pid"), []byte("4194305\n"), 0o444); err != nil {
					t.Fatal(err)
				}
				return dir
			},
			opts:      VerifyOptions{ServiceMode: "systemd"},
			wantCheck: CheckFindContainerd, wantErr: "child 4194305", wantLook: "`systemctl --user status containerd`",
		},
		{
			name:  "nsenter missing",
			state: func(t *testing.T) string { d, _ := fakeState(t, false); return d },
			stub: func(s *sys.Stub, pid int) {
				s.RegisterError(`nsenter .*`, exec.ErrNotFound)
			},
			opts:      VerifyOptions{LogPath: "journalctl --user -u containerd.service"},
			wantCheck: CheckEnterNamespace, wantErr: "executable file not found", wantLook: "`journalctl --user -u containerd.service`",
		},
		{
			name:  "helper answers nothing",
			state: func(t *testing.T) string { d, _ := fakeState(t, true); return d },
			stub: func(s *sys.Stub, pid int) {
				s.Register(regexp.QuoteMeta(fmt.Sprintf("nsenter -U --preserve-credentials -m -t %d -F -- %s", pid, sys.ShellQuote(self))), "", 1)
			},
			wantCheck: CheckEnterNamespace, wantErr: "exit status 1", wantLook: "`nerdctl info`",
		},
		{
			name:  "snapshotter missing inside",
			state: func(t *testing.T) string { d, _ := fakeState(t, true); return d },
			stub: func(s *sys.Stub, pid int) {
				s.Register(`nsenter .*`, `{"snapshotter_status":"not loaded","items":[{"check":"connect to containerd","ok":true},`+
					`{"check":"snapshotter","error":"containerd has no fuse-overlayfs snapshotter (it has: native, overlayfs)"}]}`, 0)
			},
			opts:      VerifyOptions{Snapshotter: "fuse-overlayfs"},
			wantCheck: CheckSnapshotter, wantErr: "no fuse-overlayfs snapshotter", wantLook: "the [proxy_plugins] section of /home/u/.config/containerd/config.toml",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runtimeDir := tt.state(t)
			stub := sys.NewStub(t)
			if tt.stub != nil {
				tt.stub(stub, os.Getpid())
			}
			var out []string
			tt.opts.Image = fakeBusybox(t)
			rep, err := Verify(context.Background(), testRuntime(stub, runtimeDir, &out), tt.opts)
			var ve *VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v, want a *VerifyError", err)
			}
			if rep.OK() {
				t.Error("report says OK")
			}
			failed, _ := rep.Failed()
			if failed.Check != tt.wantCheck || !strings.Contains(failed.Error, tt.wantErr) || ve.Item.Check != tt.wantCheck {
				t.Errorf("failed item = %+v, want %s with %q", failed, tt.wantCheck, tt.wantErr)
			}
			if !strings.Contains(strings.Join(failed.LookAt, "\n"), tt.wantLook) || !strings.Contains(ve.UserFix(), tt.wantLook) {
				t.Errorf("look at %q / fix %q, want %q", failed.LookAt, ve.UserFix(), tt.wantLook)
			}
			if strings.Contains(err.Error(), tt.wantLook) {
				t.Errorf("error %q repeats the fix", err)
			}
			all := strings.Join(out, "\n")
			if !strings.Contains(all, "✗ fail  "+tt.wantCheck) || !strings.Contains(all, "look at: "+tt.wantLook) {
				t.Errorf("output does not show the failure and its hint:\n%s", all)
			}
		})
	}
}

func TestVerifyStep(t *testing.T) {
	s := NewVerifyStep(VerifyOptions{Snapshotter: "native"})
	info := s.Info()
	if info.Kind != KindVerify || info.Privileged || !strings.Contains(info.Title, "native") || len(info.Commands) != 1 ||
		!strings.Contains(info.Commands[0], "nsenter -U --preserve-credentials -m") {
		t.Errorf("Info = %+v", info)
	}
	var out []string
	rt := testRuntime(sys.NewStub(t), t.TempDir(), &out)
	if done, err := s.Check(context.Background(), rt); done || err != nil {
		t.Errorf("Check = %v, %v; verification must always run", done, err)
	}
	var rec Record
	err := s.Apply(context.Background(), rt, &rec)
	var ve *VerifyError
	if !errors.As(err, &ve) || ve.Item.Check != CheckFindContainerd {
		t.Fatalf("Apply without a running containerd = %v", err)
	}
	var rep VerifyReport
	if jerr := json.Unmarshal([]byte(rec.Data["report"]), &rep); jerr != nil || rep.Snapshotter != "native" || len(rep.Items) != 1 {
		t.Errorf("recorded report %q: %v", rec.Data["report"], jerr)
	}
	if len(out) == 0 || !strings.HasPrefix(out[0], "✗ fail  "+CheckFindContainerd) {
		t.Errorf("Apply streamed %q", out)
	}
	if err := s.Undo(context.Background(), rt, rec); err != nil {
		t.Errorf("Undo = %v", err)
	}
}

func TestRunVerifyHelperNotAHelper(t *testing.T) {
	t.Setenv(VerifyHelperEnv, "")
	if _, ran := RunVerifyHelper(); ran {
		t.Error("RunVerifyHelper ran with an empty " + VerifyHelperEnv)
	}
}

// ---- Live: a real rootless containerd, run as the test user ----

// verifyChildEnv carries, to the test binary run as the test user, the options of the Verify it
// must run (JSON).
const verifyChildEnv = "VIRT_SETUP_VERIFY_CHILD"

// verifyChildMarker starts the line on which the child prints its report.
const verifyChildMarker = "VERIFY-REPORT: "

// verifyChildAnswer is what the child prints.
type verifyChildAnswer struct {
	Report VerifyReport `json:"report"`
	Err    string       `json:"error,omitempty"`
	Fix    string       `json:"fix,omitempty"`
	Output []string     `json:"output"`
}

// TestVerifyChild runs only as the test user, started by the live tests: it runs Verify against
// the rootless containerd they started and prints the report.
func TestVerifyChild(t *testing.T) {
	optsJSON := os.Getenv(verifyChildEnv)
	if optsJSON == "" {
		t.Skip("run by the live verify tests as the test user")
	}
	var opts VerifyOptions
	if err := json.Unmarshal([]byte(optsJSON), &opts); err != nil {
		t.Fatal(err)
	}
	var ans verifyChildAnswer
	rt := &Runtime{
		Runner: sys.Exec{},
		Paths:  Paths{Home: os.Getenv("HOME"), ConfigHome: os.Getenv("XDG_CONFIG_HOME"), RuntimeDir: os.Getenv("XDG_RUNTIME_DIR")},
		Env:    os.Environ(),
		Output: func(line string) { ans.Output = append(ans.Output, line) },
		Now:    time.Now,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	rep, err := Verify(ctx, rt, opts)
	ans.Report = rep
	if err != nil {
		ans.Err = err.Error()
		var ve *VerifyError
		if errors.As(err, &ve) {
			ans.Fix = ve.UserFix()
		}
	}
	b, _ := json.Marshal(ans)
	fmt.Println(verifyChildMarker + string(b))
}

// rootlessContainerd is a real rootless containerd the test started as the test user.
type rootlessContainerd struct {
	user       testenv.TestUser
	env        []string // XDG_* of the instance, for the user's commands
	runtimeDir string
	stateDir   string
	dataHome   string
	logPath    string
	cmd        *exec.Cmd
	exited     chan struct{}
}

// startRootlessContainerd runs containerd-rootless.sh in the background as the test user, the way
// virt-setup's direct mode does, and waits until containerd serves. Each instance has its own
// XDG_RUNTIME_DIR, XDG_DATA_HOME and XDG_CONFIG_HOME below a fresh directory, so it starts from an
// empty image store and cannot meet another test's containerd (one RootlessKit per state dir).
func startRootlessContainerd(t *testing.T, u testenv.TestUser, detachNetns bool) *rootlessContainerd {
	t.Helper()
	for _, bin := range []string{"containerd-rootless.sh", "rootlesskit", "containerd", "nsenter", "runc", "slirp4netns", "nerdctl"} {
		_, err := exec.LookPath(bin)
		testenv.Require(t, err == nil, bin+" is not installed: run scripts/install-components.sh and scripts/setup-test-host.sh")
	}
	allowTun(t)
	base := testenv.SharedDir(t)
	c := &rootlessContainerd{
		user:       u,
		runtimeDir: filepath.Join(base, "run"),
		dataHome:   filepath.Join(base, "data"),
		logPath:    filepath.Join(base, "containerd.log"),
		exited:     make(chan struct{}),
	}
	c.stateDir = filepath.Join(c.runtimeDir, "containerd-rootless")
	config := filepath.Join(base, "config")
	for _, d := range []string{c.runtimeDir, c.dataHome, config} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, u.UID, u.GID); err != nil {
			t.Fatal(err)
		}
	}
	c.env = []string{"XDG_RUNTIME_DIR=" + c.runtimeDir, "XDG_DATA_HOME=" + c.dataHome, "XDG_CONFIG_HOME=" + config}
	logf, err := os.Create(c.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	detach := "false"
	if detachNetns {
		detach = "true"
	}
	c.cmd = u.Command(context.Background(), "containerd-rootless.sh", nil,
		append(slices.Clone(c.env), "CONTAINERD_ROOTLESS_ROOTLESSKIT_DETACH_NETNS="+detach)...)
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	// Its own process group, so a signal to the test's group does not reach it half-way.
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	start := time.Now()
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start containerd-rootless.sh: %v", err)
	}
	go func() { _ = c.cmd.Wait(); close(c.exited) }()
	t.Cleanup(func() { c.stop(t) })

	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-c.exited:
			t.Fatalf("containerd-rootless.sh exited before containerd served:\n%s", tailFile(c.logPath, 30))
		default:
		}
		if b, _ := os.ReadFile(c.logPath); bytes.Contains(b, []byte("containerd successfully booted")) {
			if _, err := os.Stat(filepath.Join(c.stateDir, "child_pid")); err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("containerd did not serve within 30s:\n%s", tailFile(c.logPath, 30))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("rootless containerd (detach-netns=%v) ready in %s", detachNetns, time.Since(start).Round(time.Millisecond))
	return c
}

// stop ends RootlessKit (SIGTERM makes it stop containerd and slirp4netns) and makes sure no
// process of this instance is left, whatever it was.
func (c *rootlessContainerd) stop(t *testing.T) {
	if c.cmd.Process != nil {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.exited:
		case <-time.After(15 * time.Second):
			t.Errorf("RootlessKit did not stop within 15s of SIGTERM; killing it")
			_ = c.cmd.Process.Kill()
			<-c.exited
		}
	}
	// Every process of the instance (RootlessKit, containerd, shims, slirp4netns) carries its
	// XDG_RUNTIME_DIR in its environment; give the stragglers a moment, then kill them by pid.
	var left []int
	for range 50 {
		if left = c.processes(); len(left) == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, pid := range left {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	t.Errorf("processes of the test's rootless containerd were left running (killed): %v", left)
}

// processes lists the test user's processes whose environment holds this instance's
// XDG_RUNTIME_DIR.
func (c *rootlessContainerd) processes() []int {
	entries, _ := os.ReadDir("/proc")
	want := []byte("XDG_RUNTIME_DIR=" + c.runtimeDir + "\x00")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat("/proc/"+e.Name(), &st) != nil || int(st.Uid) != c.user.UID {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err == nil && bytes.Contains(append(env, 0), want) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// run runs a command as the test user in this instance's environment.
func (c *rootlessContainerd) run(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	return c.runEnv(t, nil, name, args...)
}

func (c *rootlessContainerd) runEnv(t *testing.T, extraEnv []string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := c.user.Command(ctx, name, args, append(slices.Clone(c.env), extraEnv...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}

// verifyAsUser runs Verify as the test user through a copy of this test binary.
func (c *rootlessContainerd) verifyAsUser(t *testing.T, bin string, opts VerifyOptions) (verifyChildAnswer, time.Duration) {
	t.Helper()
	optsJSON, _ := json.Marshal(opts)
	start := time.Now()
	out, err := c.runEnv(t, []string{verifyChildEnv + "=" + string(optsJSON)}, bin, "-test.run=^TestVerifyChild$", "-test.count=1", "-test.v")
	elapsed := time.Since(start)
	if err != nil {
		t.Fatalf("verify as %s: %v\n%s", c.user.Name, err, out)
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if s, ok := strings.CutPrefix(sc.Text(), verifyChildMarker); ok {
			var ans verifyChildAnswer
			if err := json.Unmarshal([]byte(s), &ans); err != nil {
				t.Fatalf("child answer %q: %v", s, err)
			}
			return ans, elapsed
		}
	}
	t.Fatalf("the child printed no report:\n%s", out)
	return verifyChildAnswer{}, elapsed
}

// tunMu serialises the chmod of /dev/net/tun between the tests of this package.
var tunMu sync.Mutex

// allowTun makes /dev/net/tun usable by the test user, as udev does on a normal host (this VM
// has no udev, so it is 0600 root and slirp4netns cannot open it), and restores the mode after.
func allowTun(t *testing.T) {
	t.Helper()
	tunMu.Lock()
	defer tunMu.Unlock()
	fi, err := os.Stat("/dev/net/tun")
	testenv.Require(t, err == nil, "/dev/net/tun is missing (load the tun module)")
	orig := fi.Mode().Perm()
	if orig&0o006 == 0o006 {
		return
	}
	if err := os.Chmod("/dev/net/tun", 0o666); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		tunMu.Lock()
		defer tunMu.Unlock()
		if err := os.Chmod("/dev/net/tun", orig); err != nil {
			t.Errorf("restore the mode of /dev/net/tun: %v", err)
		}
	})
}

func tailFile(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// copyTestBinary puts this test binary where the test user can run it.
func copyTestBinary(t *testing.T) string {
	t.Helper()
	return testenv.CopyTestBinary(t, testenv.SharedDir(t), "installer.test")
}

// liveVerifyChecks are the items of a verification that imports the image.
var liveVerifyChecks = []string{CheckFindContainerd, CheckConnect, CheckSnapshotter, CheckBuildImage,
	CheckImportImage, CheckUnpackImage, CheckRunContainer, CheckCleanUp}

func checkVerifyPassed(t *testing.T, ans verifyChildAnswer, snapshotter string, wantChecks []string) {
	t.Helper()
	rep := ans.Report
	if ans.Err != "" || !rep.OK() {
		t.Fatalf("Verify failed: %s\nfix: %s\noutput:\n%s", ans.Err, ans.Fix, strings.Join(ans.Output, "\n"))
	}
	var got []string
	for _, it := range rep.Items {
		got = append(got, it.Check)
	}
	if strings.Join(got, "|") != strings.Join(wantChecks, "|") {
		t.Errorf("checks:\n got %q\nwant %q", got, wantChecks)
	}
	if rep.Snapshotter != snapshotter || rep.SnapshotterStatus != "ok" {
		t.Errorf("snapshotter %q status %q", rep.Snapshotter, rep.SnapshotterStatus)
	}
	if !rep.Container.OK || rep.Container.ExitCode != 0 || !regexp.MustCompile(`^virt-setup-verify-[0-9a-f]{16}\n$`).MatchString(rep.Container.Output) {
		t.Errorf("container run = %+v", rep.Container)
	}
	if rep.Image != image.BusyboxRef || !strings.HasPrefix(rep.ImageDigest, "sha256:") {
		t.Errorf("image %q digest %q", rep.Image, rep.ImageDigest)
	}
	// Every item was streamed as it finished, in order.
	if len(ans.Output) != len(rep.Items) {
		t.Errorf("streamed %d lines for %d items:\n%s", len(ans.Output), len(rep.Items), strings.Join(ans.Output, "\n"))
	}
	for i, line := range ans.Output {
		if i < len(rep.Items) && !strings.HasPrefix(line, "✓ ok    "+rep.Items[i].Check) {
			t.Errorf("line %d %q is not item %q", i, line, rep.Items[i].Check)
		}
	}
	t.Logf("verify with %s: %s\n%s", snapshotter, rep.Duration.Round(time.Millisecond), strings.Join(ans.Output, "\n"))
}

// snapshotDirs counts the snapshots a snapshotter keeps on disk once containerd has settled.
// Removing a snapshot only drops it from containerd's metadata; its directory goes at the next
// garbage collection, which containerd schedules shortly after, so wait for the count to reach
// want (up to 10s) and return the last count.
func snapshotDirs(t *testing.T, c *rootlessContainerd, snapshotter string, want int) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		entries, err := os.ReadDir(filepath.Join(c.dataHome, "containerd", "io.containerd.snapshotter.v1."+snapshotter, "snapshots"))
		if err != nil {
			t.Fatalf("list the %s snapshots: %v", snapshotter, err)
		}
		if len(entries) == want || time.Now().After(deadline) {
			return len(entries)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestVerifyLive runs Verify as the test user against a real rootless containerd (RootlessKit
// with --detach-netns, as containerd-rootless.sh chooses with RootlessKit 2), with overlayfs and
// native, and shows that the real nerdctl loads and runs the image archive.
func TestVerifyLive(t *testing.T) {
	u := testenv.RequireTestUser(t)
	_, err := os.Stat("/bin/busybox")
	testenv.Require(t, err == nil, "/bin/busybox (busybox-static) is missing: run scripts/setup-test-host.sh as root")
	bin := copyTestBinary(t)
	c := startRootlessContainerd(t, u, true)

	// The server's version, from the containerd binary itself.
	vout, err := exec.Command("containerd", "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	vf := strings.Fields(string(vout))
	testenv.Require(t, len(vf) >= 3, "containerd --version printed "+string(vout))
	opts := VerifyOptions{LogPath: c.logPath, ServiceMode: "direct"}

	t.Run("overlayfs", func(t *testing.T) {
		opts := opts
		opts.Snapshotter = "overlayfs"
		ans, elapsed := c.verifyAsUser(t, bin, opts)
		checkVerifyPassed(t, ans, "overlayfs", liveVerifyChecks)
		rep := ans.Report
		if rep.ServerVersion != vf[2] {
			t.Errorf("server version %q, containerd --version says %q", rep.ServerVersion, vf[2])
		}
		if !rep.ImageImported {
			t.Error("a fresh containerd had the image already?")
		}
		// containerd stored the manifest the archive builder computed.
		if want, err := image.Digest(image.BusyboxSpec("/bin/busybox")); err != nil || rep.ImageDigest != want {
			t.Errorf("containerd has %s, the builder made %s (%v)", rep.ImageDigest, want, err)
		}
		if !strings.Contains(rep.Items[0].Detail, "detach-netns") {
			t.Errorf("first item %q does not mention detach-netns", rep.Items[0].Detail)
		}
		for _, it := range rep.Items {
			if it.Check == CheckBuildImage || it.Check == CheckImportImage || it.Check == CheckRunContainer {
				t.Logf("timing: %s %s", it.Check, it.Duration.Round(time.Millisecond))
			}
		}
		t.Logf("timing: whole child run as %s (test binary start, nsenter, helper): %s", u.Name, elapsed.Round(time.Millisecond))
		// Only the image's layer is left: the container's snapshot was removed.
		if n := snapshotDirs(t, c, "overlayfs", 1); n != 1 {
			t.Errorf("overlayfs keeps %d snapshots, want 1 (the layer)", n)
		}
	})

	t.Run("native", func(t *testing.T) {
		// A test container a killed run left behind (with its label), which this run removes.
		if out, err := c.run(t, "nerdctl", "create", "--net", "none", "--name", "stale-verify",
			"--label", verifyLabel+"=true", image.BusyboxRef, "true"); err != nil {
			t.Fatalf("create a stale test container: %v\n%s", err, out)
		}
		opts := opts
		opts.Snapshotter = "native"
		ans, _ := c.verifyAsUser(t, bin, opts)
		want := []string{CheckFindContainerd, CheckConnect, CheckSnapshotter, CheckImportImage, CheckUnpackImage, CheckRunContainer, CheckCleanUp}
		checkVerifyPassed(t, ans, "native", want)
		rep := ans.Report
		if rep.ImageImported {
			t.Error("the image was imported again")
		}
		if it := rep.Items[4]; it.Detail != "unpacked with native" {
			t.Errorf("unpack item = %+v", it)
		}
		if it := rep.Items[6]; !strings.Contains(it.Detail, "1 left by an earlier run") {
			t.Errorf("clean-up item = %+v, want it to count the stale container", it)
		}
		if n := snapshotDirs(t, c, "native", 1); n != 1 {
			t.Errorf("native keeps %d snapshots, want 1 (the layer)", n)
		}
	})

	t.Run("the host's own echo, on hosts without a static busybox", func(t *testing.T) {
		spec, err := image.EchoSpec(context.Background(), sys.Exec{})
		if err != nil {
			t.Fatal(err)
		}
		opts := opts
		opts.Snapshotter = "overlayfs"
		opts.Image = spec
		ans, _ := c.verifyAsUser(t, bin, opts)
		if it, failed := ans.Report.Failed(); failed {
			t.Fatalf("verify with the echo image: %+v", it)
		}
	})

	t.Run("a broken image fails the run and is cleaned up", func(t *testing.T) {
		// An image without /bin/echo: the container cannot start.
		src := filepath.Join(testenv.SharedDir(t), "hello.txt")
		if err := os.WriteFile(src, []byte("hello\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		opts := opts
		opts.Snapshotter = "overlayfs"
		opts.Image = image.Spec{Ref: "localhost/virt-setup/broken:1", Files: []image.File{{Src: src, Dst: "/hello.txt"}}}
		ans, _ := c.verifyAsUser(t, bin, opts)
		failed, ok := ans.Report.Failed()
		if !ok || failed.Check != CheckRunContainer || !strings.Contains(failed.Error, image.EchoPath) {
			t.Fatalf("report = %+v", ans.Report)
		}
		last := ans.Report.Items[len(ans.Report.Items)-1]
		if last.Check != CheckCleanUp || !last.OK {
			t.Errorf("last item = %+v, want the clean-up done after the failure", last)
		}
		if !strings.Contains(ans.Fix, "nerdctl run --rm localhost/virt-setup/broken:1 echo hi") || !strings.Contains(ans.Fix, c.logPath) {
			t.Errorf("fix = %q", ans.Fix)
		}
		t.Logf("error: %s", ans.Err)
	})

	t.Run("no containers left", func(t *testing.T) {
		out, err := c.run(t, "nerdctl", "ps", "-a", "-q")
		if err != nil || strings.TrimSpace(out) != "" {
			t.Errorf("nerdctl ps -a -q = %q, %v; the verification must remove its containers", out, err)
		}
	})

	t.Run("snapshotter not configured", func(t *testing.T) {
		opts := opts
		opts.Snapshotter = "fuse-overlayfs"
		ans, _ := c.verifyAsUser(t, bin, opts)
		failed, ok := ans.Report.Failed()
		if !ok || failed.Check != CheckSnapshotter || ans.Report.SnapshotterStatus != "not loaded" ||
			!strings.Contains(failed.Error, "no fuse-overlayfs snapshotter") || !strings.Contains(failed.Error, "overlayfs") {
			t.Fatalf("report = %+v", ans.Report)
		}
		if !strings.Contains(ans.Fix, c.logPath) || !strings.Contains(ans.Fix, "proxy_plugins") || strings.Contains(ans.Err, c.logPath) {
			t.Errorf("error %q / fix %q", ans.Err, ans.Fix)
		}
	})

	t.Run("nerdctl loads and runs the archive", func(t *testing.T) {
		spec := image.BusyboxSpec("/bin/busybox")
		spec.Ref = "localhost/virt-setup/busybox-nerdctl:1"
		archive := filepath.Join(testenv.SharedDir(t), "busybox.tar")
		f, err := os.Create(archive)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		d, err := image.WriteOCIArchive(f, spec)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(archive)
		t.Logf("timing: busybox archive built in %s (%d KiB, %s)", time.Since(start).Round(time.Millisecond), fi.Size()/1024, d)
		if err := os.Chmod(archive, 0o644); err != nil {
			t.Fatal(err)
		}
		start = time.Now()
		out, err := c.run(t, "nerdctl", "load", "-i", archive)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("timing: nerdctl load %s: %s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(out))
		if !strings.Contains(out, spec.Ref) || !strings.Contains(out, d) {
			t.Errorf("nerdctl load printed %q, want it to name %s and %s", out, spec.Ref, d)
		}
		out, err = c.run(t, "nerdctl", "image", "inspect", "--format", "{{json .RepoTags}} {{json .RepoDigests}}", spec.Ref)
		if err != nil || !strings.Contains(out, `"`+spec.Ref+`"`) {
			t.Errorf("nerdctl image inspect = %q, %v", out, err)
		}
		// The CNI bridge plugin runs iptables, which Debian keeps in /usr/sbin, off an ordinary
		// user's PATH; without it `nerdctl run` fails with "failed to locate iptables".
		sbinPath := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
		start = time.Now()
		out, err = c.runEnv(t, sbinPath, "nerdctl", "run", "--rm", spec.Ref, "echo", "hi")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("timing: nerdctl run --rm %s echo hi: %s", spec.Ref, time.Since(start).Round(time.Millisecond))
		if out != "hi\n" {
			t.Errorf("nerdctl run printed %q, want %q", out, "hi\n")
		}
	})
}

// TestVerifyLiveNetnsNotDetached covers RootlessKit without --detach-netns, where Verify must
// enter the network namespace too (nsenter -n), as nerdctl does.
func TestVerifyLiveNetnsNotDetached(t *testing.T) {
	u := testenv.RequireTestUser(t)
	_, err := os.Stat("/bin/busybox")
	testenv.Require(t, err == nil, "/bin/busybox (busybox-static) is missing: run scripts/setup-test-host.sh as root")
	bin := copyTestBinary(t)
	c := startRootlessContainerd(t, u, false)
	if _, err := os.Stat(filepath.Join(c.stateDir, "netns")); err == nil {
		t.Fatal("RootlessKit detached the network namespace although told not to")
	}
	ans, _ := c.verifyAsUser(t, bin, VerifyOptions{Snapshotter: "overlayfs", LogPath: c.logPath})
	checkVerifyPassed(t, ans, "overlayfs", liveVerifyChecks)
	if d := ans.Report.Items[0].Detail; !strings.Contains(d, "RootlessKit's network namespace") {
		t.Errorf("first item %q", d)
	}
}

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/virt-setup/virt-setup/installer"
	"github.com/virt-setup/virt-setup/internal/sys"
	"github.com/virt-setup/virt-setup/internal/testenv"
)

// tmuxTerm is a real terminal for the real binary: a tmux server of the test's own (its own
// socket, so a user's tmux is never touched) with one session, driven with send-keys and read
// with capture-pane.
type tmuxTerm struct {
	t    *testing.T
	sock string
	// started is when the session was created, for the time to the first frame.
	started time.Time
}

// screenshotsEnv names a directory the end-to-end test writes each screen's capture to (the
// docs' screenshots are made from it).
const screenshotsEnv = "VIRT_SETUP_SCREENSHOTS"

func newTmux(t *testing.T, w, h int, env []string, argv ...string) *tmuxTerm {
	t.Helper()
	_, err := exec.LookPath("tmux")
	testenv.Require(t, err == nil, "tmux is not installed (apt-get install tmux)")
	dir, err := os.MkdirTemp("", "vs-tmux-")
	if err != nil {
		t.Fatal(err)
	}
	tt := &tmuxTerm{t: t, sock: filepath.Join(dir, "sock")}
	t.Cleanup(func() {
		exec.Command("tmux", "-S", tt.sock, "kill-server").Run()
		os.RemoveAll(dir)
	})
	var quoted []string
	for _, a := range argv {
		quoted = append(quoted, sys.ShellQuote(a))
	}
	// The shell stays after the program, so that its exit status and what it printed after giving
	// the screen back can be read.
	shell := strings.Join(quoted, " ") + `; echo "[exit status $?]"; sleep 600`
	args := []string{"-S", tt.sock, "new-session", "-d", "-s", "vs", "-x", strconv.Itoa(w), "-y", strconv.Itoa(h)}
	for _, kv := range env {
		args = append(args, "-e", kv)
	}
	tt.started = time.Now()
	cmd := exec.Command("tmux", append(args, shell)...)
	// The programs in the terminal get the test's environment without CI: termenv treats any CI
	// as "not a terminal" and turns colour off, and the terminal here is a real one.
	cmd.Env = filterEnv(os.Environ(), "CI=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tmux new-session: %v\n%s", err, out)
	}
	return tt
}

func (tt *tmuxTerm) tmux(args ...string) string {
	tt.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-S", tt.sock}, args...)...).CombinedOutput()
	if err != nil {
		tt.t.Fatalf("tmux %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// screen is what the terminal shows now (with escape codes when escapes is true).
func (tt *tmuxTerm) screen(escapes bool) string {
	if escapes {
		return tt.tmux("capture-pane", "-p", "-e", "-t", "vs")
	}
	return tt.tmux("capture-pane", "-p", "-t", "vs")
}

// scrollback is the whole history of the pane, for the plain mode that never redraws.
func (tt *tmuxTerm) scrollback() string { return tt.tmux("capture-pane", "-p", "-S", "-", "-t", "vs") }

// waitFor polls the screen until it shows every one of want, and returns it.
func (tt *tmuxTerm) waitFor(timeout time.Duration, want ...string) string {
	tt.t.Helper()
	deadline := time.Now().Add(timeout)
	var s string
	for {
		s = tt.screen(false)
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(s, w)
		}
		if ok {
			return s
		}
		if time.Now().After(deadline) {
			tt.t.Fatalf("the terminal did not show %q within %s; it shows:\n%s", want, timeout, s)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (tt *tmuxTerm) keys(keys ...string) {
	tt.tmux(append([]string{"send-keys", "-t", "vs"}, keys...)...)
}

// shot keeps a capture as a screenshot when VIRT_SETUP_SCREENSHOTS names a directory.
func (tt *tmuxTerm) shot(name, screen string) {
	dir := os.Getenv(screenshotsEnv)
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tt.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".txt"), []byte(strings.TrimRight(screen, "\n")+"\n"), 0o644); err != nil {
		tt.t.Fatal(err)
	}
}

// TestWizardDemoInTmux drives `virt-setup --demo` in a real 80×24 terminal through every screen
// to the end, and checks that the demo writes nothing.
func TestWizardDemoInTmux(t *testing.T) {
	bin := testenv.BuildBinary(t)
	home := t.TempDir()
	tt := newTmux(t, 80, 24, []string{"HOME=" + home, "XDG_STATE_HOME=" + home + "/state", "VIRT_SETUP_DEMO_PACE=0.25", "TERM=xterm-256color"}, bin, "--demo")

	s := tt.waitFor(10*time.Second, "virt-setup", "1/8 Probe")
	t.Logf("time from start to the first frame (tmux included): %s", time.Since(tt.started).Round(time.Millisecond))
	if !strings.Contains(s, "DEMO") {
		t.Errorf("the demo does not say DEMO:\n%s", s)
	}
	tt.shot("1-probe", tt.waitFor(10*time.Second, "see the findings"))
	tt.keys("Enter")
	tt.shot("2-findings", tt.waitFor(5*time.Second, "✗ fail VS-APPARMOR-001"))
	tt.keys("Enter")
	tt.shot("2-findings-detail", tt.waitFor(5*time.Second, "What was seen"))
	// Esc then another key at once reads as Alt+key: wait for the list in between, as a person would.
	tt.keys("Escape")
	tt.waitFor(5*time.Second, "c continue", "enter details")
	tt.keys("c")
	tt.shot("3-snapshotter", tt.waitFor(5*time.Second, "choose a snapshotter", "(•) overlayfs"))
	tt.keys("Enter")
	tt.shot("4-addons", tt.waitFor(5*time.Second, "[x] bypass4netns"))
	tt.keys("a")
	tt.shot("4-addons-rootlesskit", tt.waitFor(5*time.Second, "network driver"))
	tt.keys("a", "Enter")
	tt.shot("5-review", tt.waitFor(5*time.Second, "Plan: 8 steps", "+snapshotter = \"overlayfs\""))
	tt.keys("Tab")
	tt.shot("5-review-root-script", tt.waitFor(5*time.Second, "loginctl enable-linger alice"))
	tt.keys("Enter")
	tt.waitFor(5*time.Second, "Install now?")
	tt.keys("y")
	tt.shot("6-install", tt.waitFor(10*time.Second, "containerd-rootless-setuptool.sh install", "[INFO]"))
	tt.shot("6-install-done", tt.waitFor(30*time.Second, "Every step is in place"))
	tt.keys("Enter")
	tt.shot("7-benchmark", tt.waitFor(30*time.Second, "ratio", "enter finish"))
	tt.keys("Enter")
	s = tt.waitFor(5*time.Second, "Demo finished", "nerdctl run -d -p 8080:80 --annotation nerdctl/bypass4netns=true nginx")
	tt.shot("8-done", s)
	tt.keys("Enter")
	s = tt.waitFor(5*time.Second, "[exit status 0]")
	if !strings.Contains(s, "demo finished; nothing on this host was changed") {
		t.Errorf("after the wizard:\n%s", s)
	}
	if entries, _ := os.ReadDir(home); len(entries) != 0 {
		t.Errorf("the demo wrote into HOME: %v", entries)
	}
}

// TestWizardPlainInTmux runs `virt-setup --demo --plain` in a real terminal: prompts answered
// with keys, nothing redrawn (the scrollback holds the whole flow, in order).
func TestWizardPlainInTmux(t *testing.T) {
	bin := testenv.BuildBinary(t)
	tt := newTmux(t, 100, 40, []string{"HOME=" + t.TempDir(), "VIRT_SETUP_DEMO_PACE=0"}, bin, "--demo", "--plain")
	for _, step := range []struct{ prompt, answer string }{
		{"Continue to the setup? [Y/n]", ""},
		{"Choose 1-3 [1]:", ""},
		{"BuildKit (nerdctl build)? [Y/n]", "n"},
		{"bypass4netns (host-speed networking)? [Y/n]", ""},
		{"Save the answers to a file?", ""},
		{"Apply this plan? [y/N]", "y"},
	} {
		tt.waitFor(10*time.Second, step.prompt)
		if step.answer != "" {
			tt.keys(step.answer)
		}
		tt.keys("Enter")
	}
	tt.waitFor(20*time.Second, "[exit status 0]")
	all := tt.scrollback()
	order := []string{"virt-setup: recorded host ubuntu-24.04", "Probing (read only)", "Findings:", "✗ fail  VS-APPARMOR-001",
		"Snapshotter", "Add-ons", "Plan: answers from your answers", "Root script", "✓ finished:", "Network speed (iperf3)", "Demo finished"}
	at := 0
	for _, w := range order {
		i := strings.Index(all[at:], w)
		if i < 0 {
			t.Fatalf("the plain flow lacks %q after position %d:\n%s", w, at, all)
		}
		at += i
	}
	if strings.Contains(all, "install-buildkit") {
		t.Errorf("BuildKit was answered no, yet the plan installs it:\n%s", all)
	}
	tt.shot("plain", all)
}

var sgrColour = regexp.MustCompile(`\x1b\[[0-9;]*(3[0-7]|38;[0-9;]+|9[0-7])m`)

// TestWizardNoColor checks NO_COLOR: the same screen with colour codes, and without any.
func TestWizardNoColor(t *testing.T) {
	bin := testenv.BuildBinary(t)
	for _, noColor := range []bool{false, true} {
		t.Run(fmt.Sprintf("NO_COLOR=%v", noColor), func(t *testing.T) {
			env := []string{"HOME=" + t.TempDir(), "VIRT_SETUP_DEMO_PACE=0", "TERM=xterm-256color", "COLORTERM=truecolor"}
			if noColor {
				env = append(env, "NO_COLOR=1")
			}
			tt := newTmux(t, 80, 24, env, bin, "--demo")
			tt.waitFor(10*time.Second, "see the findings")
			tt.keys("Enter")
			tt.waitFor(5*time.Second, "✗ fail VS-APPARMOR-001")
			s := tt.screen(true)
			if got := sgrColour.MatchString(s); got == noColor {
				t.Errorf("colour codes present: %v, with NO_COLOR=%v:\n%q", got, noColor, s)
			}
			tt.keys("q")
		})
	}
}

// TestWizardOnThisHost opens the real wizard on this host as the unprivileged test user (what
// `make run` does) and stops at the findings: the fixes are printed where they can be copied,
// and the log says how long the first frame took.
func TestWizardOnThisHost(t *testing.T) {
	u := testenv.RequireTestUser(t)
	bin := testenv.BuildBinary(t)
	home := filepath.Join(testenv.SharedDir(t), "home")
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(home, u.UID, u.GID); err != nil {
		t.Fatal(err)
	}
	argv := []string{"setpriv", "--reuid=" + strconv.Itoa(u.UID), "--regid=" + strconv.Itoa(u.GID), "--init-groups", "--",
		"env", "-i", "HOME=" + home, "USER=" + u.Name, "LOGNAME=" + u.Name, "TERM=xterm-256color", "PATH=/usr/local/bin:/usr/bin:/bin", bin}
	tt := newTmux(t, 100, 30, nil, argv...)
	tt.waitFor(30*time.Second, "virt-setup", "1/8 Probe")
	t.Logf("time from start to the first frame (tmux and setpriv included): %s", time.Since(tt.started).Round(time.Millisecond))
	s := tt.waitFor(30*time.Second, "see the findings")
	if !strings.Contains(s, "this host") || strings.Contains(s, "DEMO") {
		t.Errorf("the wizard on this host:\n%s", s)
	}
	tt.keys("Enter")
	tt.waitFor(5*time.Second, "Findings", "c continue")
	tt.keys("q")
	s = tt.waitFor(10*time.Second, "[exit status 0]")
	if !strings.Contains(s, "Nothing was installed") && !strings.Contains(s, "[exit status 0]") {
		t.Errorf("after quitting:\n%s", s)
	}
	log, err := os.ReadFile(filepath.Join(home, ".local/state/virt-setup/virt-setup.log"))
	if err != nil {
		t.Fatalf("the wizard's log: %v", err)
	}
	m := regexp.MustCompile(`msg="first frame" since_start=(\S+)`).FindSubmatch(log)
	if m == nil {
		t.Fatalf("the log does not record the first frame:\n%s", log)
	}
	t.Logf("time from start to the first frame (from the wizard's log): %s", m[1])
	if !strings.Contains(string(log), `msg="probe finished"`) {
		t.Errorf("the log lacks the probe:\n%s", log)
	}
}

// TestWizardInstallsOnThisHost is the wizard end to end on the real stack: as the unprivileged
// test user, from the probe through the real engine to the done screen, taking every default; the
// setup it leaves runs containers, and uninstall takes it away again.
func TestWizardInstallsOnThisHost(t *testing.T) {
	u := testenv.RequireTestUser(t)
	requireStack(t)
	bin := testenv.BuildBinary(t)
	// udev makes /dev/net/tun 0666 on a normal distribution; this VM has no udev, and without it
	// the plan needs the root script, which the test user cannot run through sudo.
	fi, err := os.Stat("/dev/net/tun")
	testenv.Require(t, err == nil, "/dev/net/tun is missing")
	orig := fi.Mode().Perm()
	t.Cleanup(func() { os.Chmod("/dev/net/tun", orig) })
	if err := os.Chmod("/dev/net/tun", 0o666); err != nil {
		t.Fatal(err)
	}
	h := newE2EHome(t, u, bin, "wizard")
	t.Cleanup(func() {
		if code, out, errOut := h.virtSetup(t, "uninstall", "--purge"); code != 0 {
			t.Errorf("uninstall after the wizard: exit %d\n%s%s", code, out, errOut)
		}
	})
	argv := []string{"setpriv", "--reuid=" + strconv.Itoa(u.UID), "--regid=" + strconv.Itoa(u.GID), "--init-groups", "--", "env", "-i",
		"USER=" + u.Name, "LOGNAME=" + u.Name, "TERM=xterm-256color"}
	argv = append(append(argv, h.env()...), bin)
	tt := newTmux(t, 100, 30, nil, argv...)
	tt.waitFor(30*time.Second, "see the findings")
	tt.keys("Enter")
	tt.waitFor(5*time.Second, "c continue")
	tt.keys("c")
	tt.waitFor(5*time.Second, "choose a snapshotter", "(•) overlayfs")
	tt.keys("Enter")
	tt.waitFor(5*time.Second, "Add-ons")
	tt.keys("Enter")
	s := tt.waitFor(10*time.Second, "Plan: ")
	if strings.Contains(s, "Root script: 0") || !strings.Contains(s, "service direct") {
		t.Logf("review:\n%s", s)
	}
	tt.keys("Enter")
	tt.waitFor(5*time.Second, "Install now?")
	tt.keys("y")
	s = tt.waitFor(2*time.Minute, "Every step is in place")
	t.Logf("install screen:\n%s", s)
	tt.keys("Enter")
	// The live benchmark panel: real iperf3 through the stack the wizard just installed.
	s = tt.waitFor(3*time.Minute, "enter finish")
	t.Logf("benchmark screen:\n%s", s)
	if n := strings.Count(s, "✓ done"); n != 4 || !strings.Contains(s, "ratio") || !strings.Contains(s, "Gbit/s") {
		t.Errorf("the benchmark panel does not show four measured scenarios and the bypass4netns ratio:\n%s", s)
	}
	tt.keys("Enter")
	s = tt.waitFor(10*time.Second, "Rootless containerd is set up", "virt-setup uninstall")
	if !strings.Contains(s, filepath.Join(h.home, ".local/state/virt-setup/answers.toml")) {
		t.Errorf("the done screen does not say where the answers are:\n%s", s)
	}
	tt.keys("Enter")
	s = tt.waitFor(10*time.Second, "[exit status 0]")
	if !strings.Contains(s, "rootless containerd is set up (overlayfs)") {
		t.Errorf("after the wizard:\n%s", s)
	}
	if got := h.nerdctlDriver(t); got != "overlayfs" {
		t.Errorf("nerdctl info: storage driver %q", got)
	}
	path := filepath.Join(h.home, ".local/state/virt-setup/answers.toml")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("saved answers: %v", err)
	}
	if a, err := installer.ParseAnswers(raw, path); err != nil || a.Snapshotter != "overlayfs" || a.ServiceMode != "direct" {
		t.Errorf("saved answers %+v (%v)", a, err)
	}
}

package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/virt-setup/virt-setup/installer"
	"github.com/virt-setup/virt-setup/probe"
	"github.com/virt-setup/virt-setup/tui"
)

func TestWizardMode(t *testing.T) {
	tty := func(any) bool { return true }
	noTTY := func(any) bool { return false }
	for _, tt := range []struct {
		name  string
		plain bool
		term  string
		isTTY func(any) bool
		want  wizardMode
	}{
		{"terminal", false, "xterm-256color", tty, modeTUI},
		{"--plain", true, "xterm-256color", tty, modePlain},
		{"TERM=dumb", false, "dumb", tty, modePlain},
		{"no terminal", false, "xterm-256color", noTTY, modePlain},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := &wizardOptions{Plain: tt.plain, isTerminal: tt.isTTY, getenv: func(k string) string {
				if k == "TERM" {
					return tt.term
				}
				return ""
			}}
			if got := o.mode(); got != tt.want {
				t.Errorf("mode %v, want %v", got, tt.want)
			}
		})
	}
}

// runIn runs virt-setup in-process with input on stdin.
func runIn(t *testing.T, input string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Main(args, strings.NewReader(input), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestWizardHostProfileNeedsDemo(t *testing.T) {
	code, _, errOut := runIn(t, "", "--host-profile", "rhel-8")
	if code != exitUsage || !strings.Contains(errOut, "--host-profile needs --demo") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

func TestWizardDemoPaceMustBeANumber(t *testing.T) {
	t.Setenv(demoPaceEnv, "fast")
	code, _, errOut := runIn(t, "", "--demo", "--plain")
	if code != exitUsage || !strings.Contains(errOut, demoPaceEnv) {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

// TestWizardPlainDemo runs `virt-setup --demo --plain` in-process: the same flow as the wizard,
// with the CLI's own renderers for the findings, the plan and the engine's events.
func TestWizardPlainDemo(t *testing.T) {
	t.Setenv(demoPaceEnv, "0")
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_STATE_HOME", home+"/state")
	// Continue, the recommended snapshotter (no add-on can run there), no save, apply.
	code, out, errOut := runIn(t, "\n\n\ny\n", "--demo", "--host-profile", "fedora-34-selinux")
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"recorded host fedora-34-selinux", "! warn  VS-OVERLAY-001", "2) fuse-overlayfs", "(recommended)",
		"Plan: answers from your answers", "+snapshotter = \"fuse-overlayfs\"", "✓ done", "✓ finished:", "Demo finished",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if entries, err := os.ReadDir(home); err != nil || len(entries) != 0 {
		t.Errorf("the demo wrote into HOME: %v %v", entries, err)
	}
}

func TestWizardPrintsTheFixesOfAUserWhoStopped(t *testing.T) {
	f, err := probe.LoadProfile("ubuntu-24.04")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	o := &wizardOptions{streams: streams{Out: &out}}
	o.printAfter(tui.Outcome{Screen: "Findings", Findings: probe.NewReport(f).Checks})
	text := out.String()
	for _, want := range []string{"✗ fail  VS-APPARMOR-001", "as root (review, then run with sudo):", "/etc/apparmor.d/usr.local.bin.rootlesskit", "Nothing was installed"} {
		if !strings.Contains(text, want) {
			t.Errorf("after the wizard the output lacks %q:\n%s", want, text)
		}
	}
	out.Reset()
	o.printAfter(tui.Outcome{Installed: true, Answers: installedAnswers(), AnswersPath: "/s/answers.toml", LogPath: "/s/virt-setup.log"})
	if text := out.String(); !strings.Contains(text, "rootless containerd is set up (native)") || !strings.Contains(text, "/s/virt-setup.log") ||
		strings.Contains(text, "VS-") {
		t.Errorf("after an install:\n%s", text)
	}
}

func installedAnswers() (a installer.Answers) {
	a.Snapshotter = "native"
	return a
}

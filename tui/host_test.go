package tui

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/virt-setup/virt-setup/installer"
	"github.com/virt-setup/virt-setup/internal/sys"
	"github.com/virt-setup/virt-setup/probe"
)

// hostRuntime is an installer runtime whose home is a temporary directory.
func hostRuntime(t *testing.T) *installer.Runtime {
	home := t.TempDir()
	return &installer.Runtime{
		Runner: sys.Exec{},
		Paths:  installer.PathsFromEnv(func(string) string { return "" }, home),
		Now:    time.Now,
	}
}

func TestHostBackendInstallLeavesOutSkippedSteps(t *testing.T) {
	rt := hostRuntime(t)
	b := NewHostBackend(HostOptions{Version: "test", Runtime: rt})
	dir := t.TempDir()
	file := func(id string) installer.Step {
		return installer.NewFileStep(id, "write "+id, filepath.Join(dir, id), 0o644,
			func([]byte, bool) ([]byte, error) { return []byte(id + "\n"), nil })
	}
	plan := &installer.Plan{Answers: installer.Answers{SchemaVersion: 1}, Steps: []installer.Step{file("a"), file("b"), file("c")}}
	var mu sync.Mutex
	var done []string
	err := b.Install(context.Background(), plan, InstallHooks{
		Emit: func(ev installer.Event) {
			mu.Lock()
			defer mu.Unlock()
			if ev.Kind == installer.EventStepDone {
				done = append(done, ev.Step)
			}
		},
		Skip: []string{"b"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(done, []string{"a", "c"}) {
		t.Errorf("done %v, want a and c", done)
	}
	for name, want := range map[string]bool{"a": true, "b": false, "c": true} {
		if _, err := os.Stat(filepath.Join(dir, name)); (err == nil) != want {
			t.Errorf("%s exists: %v, want %v", name, err == nil, want)
		}
	}
}

func TestHostBackendSavesAnswersThatParse(t *testing.T) {
	b := NewHostBackend(HostOptions{Runtime: hostRuntime(t)})
	f, _ := probe.LoadProfile("rhel-8")
	a := installer.DefaultAnswers(f, probe.Recommend(f))
	path, err := b.SaveAnswers(filepath.Join(t.TempDir(), "sub", "answers.toml"), a)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := installer.ParseAnswers(raw, path)
	if err != nil || got != a {
		t.Errorf("saved %+v, read back %+v (%v)", a, got, err)
	}
}

func TestHostBackendProbeReportsEveryProbe(t *testing.T) {
	b := NewHostBackend(HostOptions{Version: "test", Runtime: hostRuntime(t), SkipLive: true})
	var mu sync.Mutex
	finished := map[string]bool{}
	f, err := b.Probe(context.Background(), func(ev probe.Event) {
		mu.Lock()
		defer mu.Unlock()
		if ev.Done {
			finished[ev.Probe] = true
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range probe.ProbeNames() {
		if !finished[n] && !strings.HasPrefix(n, "live-") {
			t.Errorf("no finish event for probe %s", n)
		}
	}
	if !f.OS.Kernel.Known {
		t.Error("the facts lack the kernel")
	}
	if b.Info().Demo || !strings.HasPrefix(b.Info().Host, "this host") {
		t.Errorf("info %+v", b.Info())
	}
	if err := b.Bench(context.Background(), installer.Answers{}, func(BenchEvent) {}); !errors.Is(err, ErrNoBenchmark) {
		t.Errorf("bench without an engine: %v", err)
	}
}

func TestPrivilegedScriptHandsTheTerminalToSudo(t *testing.T) {
	m, _ := reviewed(t, "ubuntu-24.04", 80, 24)
	m = installing(t, m)
	reply := make(chan error, 1)
	m, cmd := stepCmd(t, m, privilegedMsg{path: "/home/a b/privileged.sh", reply: reply})
	if !m.install.sudo || !strings.Contains(m.View(), "sudo has the terminal") {
		t.Error("the screen does not say sudo has the terminal")
	}
	if msgs := msgsOf(cmd); len(msgs) != 1 || !strings.Contains(fmt.Sprintf("%T", msgs[0]), "exec") {
		t.Errorf("the command is not an ExecProcess: %v", msgs)
	}
	boom := errors.New("sudo: 3 incorrect password attempts")
	m = step(t, m, privilegedDoneMsg{err: boom, reply: reply})
	select {
	case got := <-reply:
		if got != boom {
			t.Errorf("the engine got %v", got)
		}
	default:
		t.Error("the engine got no answer")
	}
	if m.install.sudo {
		t.Error("the terminal is still sudo's")
	}
	// The path is an argument, never part of the shell text.
	c := sudoCommand("/home/a b/x'; rm -rf ~; '.sh")
	if c.Args[len(c.Args)-1] != "/home/a b/x'; rm -rf ~; '.sh" || !strings.Contains(c.Args[2], `exec sudo sh -eu "$1"`) {
		t.Errorf("sudo command %q", c.Args)
	}
}

func TestResizeRelaysOut(t *testing.T) {
	m, _ := reviewed(t, "ubuntu-24.04", 80, 24)
	m = step(t, m, tea.WindowSizeMsg{Width: 120, Height: 40})
	v := m.View()
	if n := strings.Count(v, "\n") + 1; n != 40 {
		t.Errorf("%d lines after resizing to 40", n)
	}
	if m.review.vp.Width != 120 || m.review.vp.Height != m.bodyHeight()-4 {
		t.Errorf("plan view %dx%d", m.review.vp.Width, m.review.vp.Height)
	}
	m = step(t, m, tea.WindowSizeMsg{Width: 60, Height: 15})
	if n := strings.Count(m.View(), "\n") + 1; n != 15 {
		t.Errorf("%d lines after resizing to 15", n)
	}
}

package tui

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/virt-setup/virt-setup/installer"
	"github.com/virt-setup/virt-setup/probe"
)

// plainRun runs the plain flow over a demo backend with the given input lines.
func runPlain(t *testing.T, b Backend, input string) (Outcome, string, error) {
	t.Helper()
	var out bytes.Buffer
	o, err := RunPlain(context.Background(), PlainOptions{
		Backend: b, In: strings.NewReader(input), Out: &out,
		RenderEvent: func(ev installer.Event) {
			switch ev.Kind {
			case installer.EventStepDone, installer.EventStepFailed, installer.EventStepSkipped:
				fmt.Fprintf(&out, "event %s %s %s\n", ev.Kind, ev.Step, ev.Err)
			}
		},
		RenderPlan:    func(p *installer.Plan) { fmt.Fprintf(&out, "plan of %d steps\n", len(p.Steps)) },
		RenderFinding: func(r probe.Result) { fmt.Fprintf(&out, "finding %s %s\n", r.Status, r.ID) },
	})
	return o, out.String(), err
}

func TestPlainRecommendedPath(t *testing.T) {
	// Continue, the recommended snapshotter, the add-on defaults, no save, apply.
	o, out, err := runPlain(t, testBackend(t, "ubuntu-24.04"), "\n\n\n\n\ny\n")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !o.Installed || o.Answers.Snapshotter != "overlayfs" || !o.Answers.AddOns.BuildKit {
		t.Errorf("outcome %+v\n%s", o, out)
	}
	for _, want := range []string{
		"[DEMO: simulated", "✓ done   live-overlay", "finding fail VS-APPARMOR-001", "1) overlayfs", "(recommended)",
		"stargz (lazy pulling): unavailable", "plan of 8 steps", "event step-done verify:containerd",
		"bypass4netns, container → host:", "Demo finished",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the plain output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b[") {
		t.Error("the plain flow wrote escape codes")
	}
}

func TestPlainEndOfInputChangesNothing(t *testing.T) {
	o, out, err := runPlain(t, testBackend(t, "debian-12"), "")
	if err != nil {
		t.Fatal(err)
	}
	if o.Installed || !strings.HasSuffix(out, "Nothing was changed.\n") || strings.Contains(out, "event ") {
		t.Errorf("without input the plain flow must stop before changing anything: %+v\n%s", o, out)
	}
}

func TestPlainStopAfterFindings(t *testing.T) {
	o, out, err := runPlain(t, testBackend(t, "ubuntu-24.04"), "n\n")
	if err != nil {
		t.Fatal(err)
	}
	if o.Installed || len(o.Findings) == 0 || !strings.Contains(out, "Stopped after the findings") {
		t.Errorf("%+v\n%s", o, out)
	}
}

func TestPlainRefusesAnImpossibleSnapshotter(t *testing.T) {
	// On Fedora 34 with SELinux, 1 (overlayfs) is refused with the reason; 3 (native) is taken.
	o, out, err := runPlain(t, testBackend(t, "fedora-34-selinux"), "\n1\n3\n\n\n")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "overlayfs cannot run on this host: kernel 5.11") || o.Answers.Snapshotter != "native" {
		t.Errorf("snapshotter %q\n%s", o.Answers.Snapshotter, out)
	}
	if !strings.Contains(out, "Choose 1-3 [2]:") {
		t.Errorf("the default is not fuse-overlayfs (2):\n%s", out)
	}
}

func TestPlainRetryAfterFailure(t *testing.T) {
	o, out, err := runPlain(t, testBackend(t, "ubuntu-24.04", "setuptool:install"), "\n\n\n\n\ny\nr\n")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !o.Installed || strings.Count(out, "event step-failed setuptool:install") != 1 || !strings.Contains(out, "[r]etry or [q]uit") {
		t.Errorf("%+v\n%s", o, out)
	}
}

func TestPlainQuitAfterFailure(t *testing.T) {
	o, out, err := runPlain(t, testBackend(t, "ubuntu-24.04", "setuptool:install"), "\n\n\n\n\ny\nq\n")
	if err == nil || !o.Failed || o.Installed {
		t.Errorf("err %v outcome %+v\n%s", err, o, out)
	}
}

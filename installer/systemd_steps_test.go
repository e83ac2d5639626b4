package installer

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/virt-setup/virt-setup/internal/sys"
)

func stubRuntime(t *testing.T) (*Runtime, *sys.Stub, *[]string) {
	t.Helper()
	stub := sys.NewStub(t)
	var out []string
	rt := &Runtime{Runner: stub, Paths: PathsFromEnv(func(string) string { return "" }, t.TempDir()), Output: func(l string) { out = append(out, l) }}
	return rt, stub, &out
}

func TestRestartStepFollowsTheDropIn(t *testing.T) {
	rt, stub, _ := stubRuntime(t)
	dropIn := filepath.Join(rt.Paths.ConfigHome, "systemd/user/containerd.service.d/override.conf")
	if err := os.MkdirAll(filepath.Dir(dropIn), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dropIn, []byte("[Service]\nEnvironment=\"A=1\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := newRestartStep("containerd.service", dropIn)
	ctx := context.Background()
	if done, err := s.Check(ctx, rt); done || err != nil {
		t.Fatalf("never restarted: Check = %v, %v", done, err)
	}
	stub.Register(`systemctl --user daemon-reload`, "", 0)
	stub.Register(`systemctl --user restart containerd\.service`, "", 0)
	if err := s.Apply(ctx, rt, &Record{}); err != nil {
		t.Fatal(err)
	}
	stub.Register(`systemctl --user is-active --quiet containerd\.service`, "", 0)
	if done, err := s.Check(ctx, rt); !done || err != nil {
		t.Fatalf("after a restart with this drop-in: Check = %v, %v", done, err)
	}
	// New settings: the unit must be restarted again (the setup tool would skip an existing unit).
	if err := os.WriteFile(dropIn, []byte("[Service]\nEnvironment=\"A=2\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if done, _ := s.Check(ctx, rt); done {
		t.Error("Check says done although the drop-in changed since the last restart")
	}
}

func TestRestartStepFailureCarriesAFix(t *testing.T) {
	rt, stub, _ := stubRuntime(t)
	stub.Register(`systemctl --user daemon-reload`, "", 0)
	stub.Register(`systemctl --user restart containerd\.service`, "", 1)
	err := newRestartStep("containerd.service", filepath.Join(t.TempDir(), "none.conf")).Apply(context.Background(), rt, &Record{})
	if err == nil || !strings.Contains(FixFor(err), "journalctl --user -u containerd.service") {
		t.Errorf("err = %v, fix %q", err, FixFor(err))
	}
}

func TestSetuptoolStep(t *testing.T) {
	rt, stub, out := stubRuntime(t)
	tool := "/usr/local/bin/containerd-rootless-setuptool.sh"
	s := NewSetuptoolStep(tool, "install-bypass4netnsd", "uninstall-bypass4netnsd", []string{"bypass4netnsd.service"})
	ctx := context.Background()
	if done, err := s.Check(ctx, rt); done || err != nil {
		t.Fatalf("no unit yet: Check = %v, %v", done, err)
	}
	stub.Register(`/usr/local/bin/containerd-rootless-setuptool\.sh install-bypass4netnsd`,
		"\x1b[104m\x1b[97m[INFO]\x1b[49m\x1b[39m Creating \"/x/bypass4netnsd.service\"\n+ systemctl --user start bypass4netnsd.service\n", 0)
	rec := &Record{}
	if err := s.Apply(ctx, rt, rec); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(*out, "|"); got != `Creating "/x/bypass4netnsd.service"|$ systemctl --user start bypass4netnsd.service` {
		t.Errorf("output = %q", got)
	}
	if len(rec.Units) != 1 || rec.Data["undo"] != "uninstall-bypass4netnsd" {
		t.Errorf("record = %+v", rec)
	}
	unit := filepath.Join(rt.Paths.ConfigHome, "systemd/user/bypass4netnsd.service")
	if err := os.MkdirAll(filepath.Dir(unit), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(unit, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if done, err := s.Check(ctx, rt); !done || err != nil {
		t.Errorf("unit present: Check = %v, %v", done, err)
	}
	stub.Register(`/usr/local/bin/containerd-rootless-setuptool\.sh uninstall-bypass4netnsd`, "", 0)
	stub.Register(`systemctl --user daemon-reload`, "", 0)
	if err := s.Undo(ctx, rt, *rec); err != nil {
		t.Fatal(err)
	}
}

func TestSetuptoolStepErrorLines(t *testing.T) {
	rt, stub, _ := stubRuntime(t)
	stub.Register(`/t/setuptool\.sh install`, "\x1b[101m\x1b[97m[ERROR]\x1b[49m\x1b[39m Needs systemd (systemctl --user)\n", 1)
	err := NewSetuptoolStep("/t/setuptool.sh", "install", "uninstall", []string{"containerd.service"}).Apply(context.Background(), rt, &Record{})
	if err == nil || !strings.Contains(err.Error(), "Needs systemd (systemctl --user)") || FixFor(err) == "" {
		t.Errorf("err = %v, fix %q: want the tool's [ERROR] text and a fix", err, FixFor(err))
	}
}

func TestPrivilegedStepNeedsConsent(t *testing.T) {
	rt, _, _ := stubRuntime(t)
	ctx := context.Background()
	left := []string{"VS-TUN-001"}
	s := NewPrivilegedStep([]string{"chmod 0666 /dev/net/tun"}, []string{"VS-TUN-001: tun"}, func(context.Context) ([]string, error) { return left, nil })
	if done, _ := s.Check(ctx, rt); done {
		t.Fatal("Check says done while the check still fails")
	}
	err := s.Apply(ctx, rt, &Record{})
	if !errors.Is(err, ErrNeedsPrivilege) || !strings.Contains(FixFor(err), "sudo sh -eu") {
		t.Fatalf("without consent: err = %v, fix %q", err, FixFor(err))
	}
	b, _ := os.ReadFile(scriptPath(rt))
	if !strings.Contains(string(b), "chmod 0666 /dev/net/tun") || !strings.Contains(string(b), "# - VS-TUN-001: tun") {
		t.Errorf("saved script:\n%s", b)
	}

	var ran string
	rt.RunPrivileged = func(_ context.Context, path string) error { ran = path; left = nil; return nil }
	if err := s.Apply(ctx, rt, &Record{}); err != nil || ran != scriptPath(rt) {
		t.Fatalf("with consent: err %v, ran %q", err, ran)
	}
	left = []string{"VS-TUN-001"} // even if the re-probe disagrees, the same script is not run twice
	if done, _ := s.Check(ctx, rt); !done {
		t.Error("the script that ran is offered again")
	}

	rt2, _, _ := stubRuntime(t)
	rt2.RunPrivileged = func(context.Context, string) error { return nil }
	s2 := NewPrivilegedStep([]string{"true"}, nil, func(context.Context) ([]string, error) { return []string{"VS-TUN-001"}, nil })
	if err := s2.Apply(ctx, rt2, &Record{}); err == nil || !strings.Contains(err.Error(), "still fail: VS-TUN-001") {
		t.Errorf("a script that did not help: err = %v", err)
	}
	if NewPrivilegedStep(nil, nil, nil) != nil {
		t.Error("no root lines should mean no step")
	}
}

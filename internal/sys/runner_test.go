package sys

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestExecRun(t *testing.T) {
	ctx := context.Background()
	res, err := Exec{}.Run(ctx, Command{Path: "sh", Args: []string{"-c", "echo out; echo err >&2"}})
	if err != nil || string(res.Stdout) != "out\n" || string(res.Stderr) != "err\n" || res.ExitCode != 0 {
		t.Fatalf("got %+v, %v", res, err)
	}
	if got := res.Combined(); got != "out\nerr\n" {
		t.Errorf("Combined() = %q", got)
	}

	res, err = Exec{}.Run(ctx, Command{Path: "sh", Args: []string{"-c", "echo nope >&2; exit 3"}})
	var ee *ExitError
	if !errors.As(err, &ee) || ee.ExitCode != 3 || res.ExitCode != 3 || !strings.Contains(err.Error(), "nope") {
		t.Errorf("exit 3: got %+v, %v", res, err)
	}

	if _, err := (Exec{}).Run(ctx, Command{Path: "/nonexistent/program"}); err == nil || errors.As(err, &ee) {
		t.Errorf("missing program: err = %v, want a start error", err)
	}
}

func TestExecTimeoutWithForkedChild(t *testing.T) {
	// The child keeps stdout open after the shell is killed; the run must still end promptly.
	start := time.Now()
	res, err := Exec{}.Run(context.Background(), Command{Path: "sh", Args: []string{"-c", "sleep 30 & sleep 30"}, Timeout: 100 * time.Millisecond})
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || res.ExitCode != -1 {
		t.Errorf("got %+v, %v; want a deadline error", res, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s after a 100ms timeout", d)
	}
}

func TestExecOutputIsBounded(t *testing.T) {
	res, err := Exec{}.Run(context.Background(), Command{Path: "sh", Args: []string{"-c", "head -c 3000000 /dev/zero"}})
	if err != nil || len(res.Stdout) != maxOutput {
		t.Errorf("kept %d bytes (err %v), want %d", len(res.Stdout), err, maxOutput)
	}
}

func TestShellQuote(t *testing.T) {
	tests := map[string]string{
		"plain":        "plain",
		"":             "''",
		"a b":          "'a b'",
		"it's":         `'it'\''s'`,
		"$(rm -rf /)":  "'$(rm -rf /)'",
		"a;b":          "'a;b'",
		"/usr/bin/x=1": "/usr/bin/x=1",
	}
	for in, want := range tests {
		if got := ShellQuote(in); got != want {
			t.Errorf("ShellQuote(%q) = %q, want %q", in, got, want)
		}
	}
	c := Command{Path: "/bin/echo", Args: []string{"a b", "c"}}
	if got := c.String(); got != "/bin/echo 'a b' c" {
		t.Errorf("String() = %q", got)
	}
}

func TestStubStrict(t *testing.T) {
	ft := &fakeTB{TB: t}
	s := NewStub(ft)
	s.Register(`echo hi`, "hi\n", 0)
	s.Register(`false`, "", 1)
	s.Register(`never run`, "", 0)
	if res, err := s.Run(context.Background(), Command{Path: "echo", Args: []string{"hi"}}); err != nil || string(res.Stdout) != "hi\n" {
		t.Errorf("echo hi: %+v %v", res, err)
	}
	if _, err := s.Run(context.Background(), Command{Path: "false"}); err == nil {
		t.Error("false: want an exit error")
	}
	if _, err := s.Run(context.Background(), Command{Path: "surprise"}); err == nil {
		t.Error("unexpected command: want an error")
	}
	for _, c := range ft.cleanups {
		c()
	}
	if len(ft.errors) != 2 || !strings.Contains(ft.errors[0], "unexpected command") || !strings.Contains(ft.errors[1], "never run") {
		t.Errorf("stub reported %q; want the unexpected and the unused command", ft.errors)
	}
}

// fakeTB records what a Stub reports instead of failing the real test.
type fakeTB struct {
	testing.TB
	errors   []string
	cleanups []func()
}

func (f *fakeTB) Errorf(format string, args ...any) {
	f.errors = append(f.errors, strings.TrimSpace(fmt.Sprintf(format, args...)))
}
func (f *fakeTB) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }
func (f *fakeTB) Helper()           {}

func TestExecCleanExitWithLingeringGrandchild(t *testing.T) {
	// The program exits 0 at once but leaves a background child holding stdout: that is success,
	// with the program's own output.
	res, err := Exec{}.Run(context.Background(), Command{Path: "sh", Args: []string{"-c", "echo done; sleep 5 &"}})
	if err != nil || string(res.Stdout) != "done\n" || res.ExitCode != 0 {
		t.Errorf("got %+v, %v; want a clean exit with its output", res, err)
	}
}

func TestExecStreamsLines(t *testing.T) {
	var lines []string
	res, err := Exec{}.Run(context.Background(), Command{
		Path: "sh", Args: []string{"-c", "echo one; echo two >&2; printf 'no newline'"},
		OnLine: func(stream, line string) { lines = append(lines, stream+":"+line) },
	})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(lines, "|")
	for _, want := range []string{"stdout:one", "stderr:two", "stdout:no newline"} {
		if !strings.Contains(got, want) {
			t.Errorf("streamed %q, missing %q", got, want)
		}
	}
	if string(res.Stdout) != "one\nno newline" {
		t.Errorf("Result.Stdout = %q: streaming must not eat output", res.Stdout)
	}
}

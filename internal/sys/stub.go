package sys

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// Stub is a strict fake Runner for tests: every command must match a registered stub, and every
// registered stub must be used before the test ends (cli/cli's internal/run/stub.go does the same).
type Stub struct {
	t     testing.TB
	mu    sync.Mutex
	stubs []*stub
}

type stub struct {
	pattern *regexp.Regexp
	result  Result
	err     error
	used    bool
}

// NewStub returns a Stub that fails t on an unexpected command and, at cleanup, on an unused stub.
func NewStub(t testing.TB) *Stub {
	s := &Stub{t: t}
	t.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, st := range s.stubs {
			if !st.used {
				t.Errorf("sys.Stub: command matching %q was registered but never run", st.pattern)
			}
		}
	})
	return s
}

// Register makes commands whose String() matches pattern (anchored at both ends) return out and
// the exit code; a non-zero code also yields an *ExitError like the real runner.
func (s *Stub) Register(pattern, stdout string, exitCode int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := &stub{pattern: regexp.MustCompile("^(?:" + pattern + ")$"), result: Result{Stdout: []byte(stdout), ExitCode: exitCode}}
	if exitCode != 0 {
		st.err = &ExitError{Command: pattern, ExitCode: exitCode}
	}
	s.stubs = append(s.stubs, st)
}

// RegisterError makes commands matching pattern fail to start with err.
func (s *Stub) RegisterError(pattern string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stubs = append(s.stubs, &stub{pattern: regexp.MustCompile("^(?:" + pattern + ")$"), err: err, result: Result{ExitCode: -1}})
}

// Run implements Runner.
func (s *Stub) Run(_ context.Context, c Command) (Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	line := c.String()
	for _, st := range s.stubs {
		if st.pattern.MatchString(line) {
			st.used = true
			if c.OnLine != nil {
				for _, l := range strings.SplitAfter(string(st.result.Stdout), "\n") {
					if l = strings.TrimSuffix(l, "\n"); l != "" {
						c.OnLine("stdout", l)
					}
				}
			}
			return st.result, st.err
		}
	}
	s.t.Errorf("sys.Stub: unexpected command %q", line)
	return Result{ExitCode: -1}, fmt.Errorf("sys.Stub: unexpected command %q", line)
}

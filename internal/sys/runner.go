// Package sys holds the boundary between virt-setup and the operating system: running commands and
// reading files below a root directory. Everything above it can be tested with fakes from this package.
package sys

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// Command describes one program invocation.
type Command struct {
	// Path is the program to run, absolute or looked up on PATH by the runner.
	Path string
	// Args are the arguments after the program name.
	Args []string
	// Env, when non-nil, replaces the environment; nil inherits the caller's environment.
	Env []string
	// Timeout bounds the run; zero means the context's deadline alone.
	Timeout time.Duration
	// OnLine, when set, receives each line of output as it is written (stream is "stdout" or
	// "stderr"), so a front end can show a long command live. The Result still holds all output.
	OnLine func(stream, line string)
}

// String renders the command the way a user would type it, quoting arguments that need it.
func (c Command) String() string {
	parts := make([]string, 0, len(c.Args)+1)
	parts = append(parts, ShellQuote(c.Path))
	for _, a := range c.Args {
		parts = append(parts, ShellQuote(a))
	}
	return strings.Join(parts, " ")
}

// Result is what a finished command left behind.
type Result struct {
	Stdout   []byte
	Stderr   []byte
	ExitCode int
	Duration time.Duration
}

// Combined returns stdout followed by stderr, the way a user would see them in a terminal.
func (r Result) Combined() string {
	if len(r.Stderr) == 0 {
		return string(r.Stdout)
	}
	if len(r.Stdout) == 0 {
		return string(r.Stderr)
	}
	return string(r.Stdout) + string(r.Stderr)
}

// Runner runs commands. The real implementation is Exec; tests use a Stub.
type Runner interface {
	// Run runs cmd to completion. A non-zero exit status is reported in Result.ExitCode together
	// with an *ExitError, so callers that only want the output can ignore the error.
	Run(ctx context.Context, cmd Command) (Result, error)
}

// ExitError reports a command that ran but exited non-zero.
type ExitError struct {
	Command  string
	ExitCode int
	Stderr   string
}

// Error implements error.
func (e *ExitError) Error() string {
	msg := fmt.Sprintf("%s: exit status %d", e.Command, e.ExitCode)
	if s := strings.TrimSpace(e.Stderr); s != "" {
		msg += ": " + firstLine(s)
	}
	return msg
}

// maxOutput bounds what is kept of a command's stdout or stderr, so a chatty or hostile program
// cannot make the probe use unbounded memory.
const maxOutput = 1 << 20

// Exec runs commands for real with os/exec.
type Exec struct{}

// Run implements Runner.
func (Exec) Run(ctx context.Context, c Command) (Result, error) {
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, c.Path, c.Args...)
	cmd.Env = c.Env
	// A program that forks a daemon keeps our pipes open; do not wait for it past the deadline.
	cmd.WaitDelay = 200 * time.Millisecond
	stdout := &limitedBuffer{max: maxOutput}
	stderr := &limitedBuffer{max: maxOutput}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	var flush []func()
	if c.OnLine != nil {
		var mu sync.Mutex // stdout and stderr are copied by two goroutines
		out := &lineWriter{stream: "stdout", next: stdout, mu: &mu, emit: c.OnLine}
		errw := &lineWriter{stream: "stderr", next: stderr, mu: &mu, emit: c.OnLine}
		cmd.Stdout, cmd.Stderr = out, errw
		flush = append(flush, out.flush, errw.flush)
	}
	start := time.Now()
	err := cmd.Run()
	for _, f := range flush {
		f()
	}
	res := Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), Duration: time.Since(start)}
	// ErrWaitDelay after a zero exit means a background grandchild still held our pipes when the
	// program itself had finished: its own output and status are complete.
	if err == nil || errors.Is(err, exec.ErrWaitDelay) && cmd.ProcessState != nil && cmd.ProcessState.Success() {
		return res, nil
	}
	if ctx.Err() != nil {
		res.ExitCode = -1
		return res, fmt.Errorf("run %s: %w", c, ctx.Err())
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		res.ExitCode = ee.ExitCode()
		return res, &ExitError{Command: c.String(), ExitCode: res.ExitCode, Stderr: string(res.Stderr)}
	}
	res.ExitCode = -1
	return res, fmt.Errorf("run %s: %w", c, err)
}

// limitedBuffer keeps the first max bytes written and drops the rest. It deliberately does not embed
// bytes.Buffer: a promoted ReadFrom would let io.Copy bypass Write and the limit.
type limitedBuffer struct {
	buf bytes.Buffer
	max int
}

// Write implements io.Writer.
func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// Bytes returns what was kept.
func (b *limitedBuffer) Bytes() []byte { return b.buf.Bytes() }

// lineWriter passes output on and calls emit for every complete line.
type lineWriter struct {
	stream string
	next   io.Writer
	mu     *sync.Mutex
	emit   func(stream, line string)
	buf    []byte
}

// Write implements io.Writer.
func (w *lineWriter) Write(p []byte) (int, error) {
	w.next.Write(p)
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		line := strings.TrimRight(string(w.buf[:i]), "\r")
		w.buf = w.buf[i+1:]
		w.mu.Lock()
		w.emit(w.stream, line)
		w.mu.Unlock()
	}
	if len(w.buf) > maxOutput { // a "line" without end: emit what we have rather than grow forever
		w.flush()
	}
	return len(p), nil
}

func (w *lineWriter) flush() {
	if len(w.buf) > 0 {
		w.mu.Lock()
		w.emit(w.stream, string(w.buf))
		w.mu.Unlock()
		w.buf = nil
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// ShellQuote quotes s for a POSIX shell when it contains anything but safe characters.
func ShellQuote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

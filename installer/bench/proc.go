package bench

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/virt-setup/virt-setup/internal/sys"
)

// maxKeptLines bounds what a background command keeps of its output for an error message.
const maxKeptLines = 20

// background is a command running while the scenario's other side runs: an iperf3 server, on the
// host or in a container. Its context is cancelled by stop, which with sys.Exec kills it.
type background struct {
	cmd    string
	done   chan struct{}
	ready  chan struct{}
	cancel context.CancelFunc
	res    sys.Result
	err    error
	mu     sync.Mutex
	lines  []string
}

// startBackground starts cmd; it is ready once a line of its output satisfies isReady.
func startBackground(ctx context.Context, r sys.Runner, cmd sys.Command, isReady func(string) bool) *background {
	ctx, cancel := context.WithCancel(ctx)
	bg := &background{cmd: cmd.String(), done: make(chan struct{}), ready: make(chan struct{}), cancel: cancel}
	var once sync.Once
	cmd.OnLine = func(_, line string) {
		bg.mu.Lock()
		bg.lines = append(bg.lines, line)
		if len(bg.lines) > maxKeptLines {
			bg.lines = bg.lines[1:]
		}
		bg.mu.Unlock()
		if isReady(line) {
			once.Do(func() { close(bg.ready) })
		}
	}
	go func() {
		defer close(bg.done)
		bg.res, bg.err = r.Run(ctx, cmd)
	}()
	return bg
}

// waitReady waits until the command is ready. It fails when the command ends first (with what it
// printed, which for iperf3 names the cause), after timeout, or when ctx is cancelled.
func (bg *background) waitReady(ctx context.Context, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-bg.ready:
		return nil
	case <-bg.done:
		select {
		case <-bg.ready: // ready and ended at once (a fake runner, or a very short test)
			return nil
		default:
		}
		return bg.failure("ended before it was ready")
	case <-t.C:
		return bg.failure(fmt.Sprintf("was not ready after %s", timeout))
	case <-ctx.Done():
		return ctx.Err()
	}
}

// failure describes why the command is of no use, with the end of its output (for iperf3 and
// nerdctl, the cause).
func (bg *background) failure(what string) error {
	err := fmt.Errorf("%s %s", bg.cmd, what)
	if bg.err != nil {
		err = fmt.Errorf("%s %s: %w", bg.cmd, what, bg.err)
	}
	if out := bg.output(); out != "" {
		err = fmt.Errorf("%w\n%s", err, out)
	}
	return err
}

// stop lets the command end by itself within grace (an iperf3 server started with -1 exits after
// its one test), then cancels it, and waits until it has ended.
func (bg *background) stop(grace time.Duration) {
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-bg.done:
	case <-t.C:
	}
	bg.cancel()
	<-bg.done
}

// output returns what the command printed last.
func (bg *background) output() string {
	bg.mu.Lock()
	defer bg.mu.Unlock()
	return strings.Join(bg.lines, "\n")
}

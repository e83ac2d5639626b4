package bench

import (
	"fmt"
	"net"
	"path/filepath"
	"time"
)

// bypass4netnsReady checks what a bypass4netns scenario needs: a host where it can run, the
// nerdctl flag that asks for it, and bypass4netnsd listening on its socket (nerdctl asks it for
// every container that opts in, and fails the run when it does not answer).
func (b *bench) bypass4netnsReady() error {
	if why := b.opts.Bypass4netnsUnusable; why != "" {
		return &Error{Err: fmt.Errorf("%w: %s", ErrBypass4netnsUnusable, why), Fix: fixBypass4netnsHost}
	}
	if len(b.opts.Bypass4netnsFlags) == 0 {
		return &Error{Err: fmt.Errorf("%w: the installed nerdctl's version does not tell how to ask for it (0.17 or newer has a label, 2.0 an annotation)", ErrBypass4netnsUnusable),
			Fix: fixBypass4netnsHost}
	}
	if b.opts.RuntimeDir == "" {
		return &Error{Err: fmt.Errorf("%w: XDG_RUNTIME_DIR is not set, and its socket lives there", ErrBypass4netnsNotRunning),
			Fix: "export XDG_RUNTIME_DIR=/run/user/$(id -u), then run the benchmark again"}
	}
	sock := filepath.Join(b.opts.RuntimeDir, "bypass4netnsd.sock")
	c, err := net.DialTimeout("unix", sock, 2*time.Second)
	if err != nil {
		return &Error{Err: fmt.Errorf("%w: nothing answers on %s", ErrBypass4netnsNotRunning, sock), Fix: fixBypass4netnsd}
	}
	return c.Close()
}

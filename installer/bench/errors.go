package bench

import (
	"errors"
	"fmt"
	"io/fs"
	"os/exec"
	"strings"
)

// Causes the benchmark tells apart, for errors.Is; each comes wrapped in an *Error with its fix.
var (
	ErrIperf3Missing          = errors.New("iperf3 is not installed")
	ErrNerdctlMissing         = errors.New("nerdctl is not installed")
	ErrContainerdNotRunning   = errors.New("rootless containerd is not running")
	ErrBypass4netnsNotRunning = errors.New("bypass4netnsd is not running")
	ErrBypass4netnsUnusable   = errors.New("bypass4netns cannot be used here")
	ErrPortInUse              = errors.New("port in use")
	ErrImageMissing           = errors.New("image missing")
	ErrNoHostAddress          = errors.New("no non-loopback address on this host")
)

// Error is a benchmark failure with what the user can do about it, kept apart from the message.
type Error struct {
	Err error
	// Fix is what the user can do, e.g. a command to run.
	Fix string
}

// Error implements error.
func (e *Error) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// UserFix returns the fix; installer.FixFor finds it through this method.
func (e *Error) UserFix() string { return e.Fix }

// FixFor returns the fix the first *Error in err's chain carries, or "".
func FixFor(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Fix
	}
	return ""
}

// Fixes, one per cause.
const (
	fixIperf3 = "install iperf3: `apt-get install iperf3` (Debian, Ubuntu), `dnf install iperf3` (Fedora), " +
		"`apk add iperf3` (Alpine), `zypper install iperf` (openSUSE); the benchmark also builds its container image from it"
	fixNerdctl          = "install the rootless stack with `virt-setup install`, or put nerdctl on PATH"
	fixContainerd       = "start it: `virt-setup start` (direct service mode) or `systemctl --user start containerd` (systemd); not installed yet: `virt-setup install`"
	fixBypass4netnsd    = "start it: `virt-setup start` (direct service mode) or `systemctl --user start bypass4netnsd` (systemd); not installed yet: set addons.bypass4netns = true in the answers and run `virt-setup install`"
	fixBypass4netnsHost = "see `virt-setup doctor` and `virt-setup explain` for what bypass4netns needs"
	fixPortInUse        = "leave out --port and the benchmark picks a free port for each scenario, or choose another with --port"
	fixNoHostAddress    = "bring up a network interface with an IPv4 address, or name one of this host's addresses with --host-address; containers cannot reach the host on 127.0.0.1 (RootlessKit runs with --disable-host-loopback)"
)

// nerdctlError turns a failed nerdctl command into the cause a user can act on, when its output
// names one; otherwise it returns err unchanged.
func nerdctlError(err error, output string) error {
	if err == nil {
		return nil
	}
	switch {
	case isNotFound(err):
		return &Error{Err: fmt.Errorf("%w: %w", ErrNerdctlMissing, err), Fix: fixNerdctl}
	// nerdctl's own hint when RootlessKit's state directory is missing, and the socket of a
	// containerd that died.
	case strings.Contains(output, "rootless containerd not running") || strings.Contains(output, "containerd.sock: connect: connection refused"):
		return &Error{Err: fmt.Errorf("%w: %w", ErrContainerdNotRunning, err), Fix: fixContainerd}
	case strings.Contains(output, "bypass4netnsd not running"):
		return &Error{Err: fmt.Errorf("%w: %w", ErrBypass4netnsNotRunning, err), Fix: fixBypass4netnsd}
	case strings.Contains(output, "address already in use"):
		return &Error{Err: fmt.Errorf("%w: %w", ErrPortInUse, err), Fix: fixPortInUse}
	}
	return err
}

// isNotFound tells whether a command could not start because its program does not exist.
func isNotFound(err error) bool {
	return errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist)
}

package bench

import (
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/virt-setup/virt-setup/internal/sys"
)

// iperf3Server is a one-test iperf3 server on the host, bound to addr alone.
func (b *bench) iperf3Server(addr netip.Addr, port int) sys.Command {
	return sys.Command{
		Path: b.opts.Iperf3,
		Args: []string{"-s", "-B", addr.String(), "-p", strconv.Itoa(port), "-1", "--forceflush"},
		Env:  b.opts.Env,
		// The server waits for its client, which may first have to start a container.
		Timeout: b.clientTimeout() + hostServerReady,
	}
}

// clientArgs are the iperf3 client's arguments; --forceflush makes every interval line appear
// as it happens even though the output is a pipe.
func (b *bench) clientArgs(addr netip.Addr, port int) []string {
	args := []string{"-c", addr.String(), "-p", strconv.Itoa(port), "-t", strconv.Itoa(b.opts.Seconds)}
	if b.opts.Omit > 0 {
		args = append(args, "-O", strconv.Itoa(b.opts.Omit))
	}
	if b.opts.Parallel > 1 {
		args = append(args, "-P", strconv.Itoa(b.opts.Parallel))
	}
	return append(args, "--forceflush")
}

// runArgs start `nerdctl run` for a scenario's container, up to the image. --pull=never: the
// image was prepared, and a benchmark must never reach for a registry by surprise. The entrypoint
// is iperf3 whatever image is used, so the arguments after the image are iperf3's.
func (b *bench) runArgs(name string, sc Scenario) []string {
	args := []string{"run", "--name", name, "--label", BenchLabel + "=" + b.runID, "--pull=never"}
	if sc.Bypass4netns {
		args = append(args, b.opts.Bypass4netnsFlags...)
	}
	return append(args, "--entrypoint", "iperf3")
}

func (b *bench) containerName(index int) string {
	return fmt.Sprintf("virt-setup-bench-%s-%d", b.runID, index)
}

func (b *bench) clientTimeout() time.Duration {
	return time.Duration(b.opts.Seconds+b.opts.Omit)*time.Second + clientOverhead
}

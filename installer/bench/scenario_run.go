package bench

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/virt-setup/virt-setup/internal/sys"
)

// Timing of a scenario. A container's first start unpacks the image; the bounds are for slow
// disks, not the usual second.
const (
	hostServerReady      = 10 * time.Second
	containerServerReady = 60 * time.Second
	// clientOverhead is allowed beyond the test itself: starting a container, connecting, and
	// iperf3's exchange of results at the end.
	clientOverhead = 60 * time.Second
	// serverGrace is how long a server started with -1 gets to exit after its test.
	serverGrace = 5 * time.Second
	// cleanupTimeout bounds the removal of a container, which runs even after Ctrl-C.
	cleanupTimeout = 30 * time.Second
)

// containerPort is the port the iperf3 server listens on inside its container (iperf3's default).
const containerPort = 5201

// BenchLabel is the label on every container the benchmark starts (its value is the run ID), so
// that `nerdctl ps -a --filter label=virt-setup.bench` finds any a killed run left behind.
const BenchLabel = "virt-setup.bench"

// outcome is a scenario's result with what the run needs besides.
type outcome struct {
	Result
	HostAddress netip.Addr
	err         error
}

// scenario runs one scenario and always returns its result; nothing it started is left running.
func (b *bench) scenario(ctx context.Context, sc Scenario, index int) outcome {
	out := outcome{Result: Result{Scenario: sc, Streams: b.opts.Parallel}}
	if sc.Bypass4netns {
		if err := b.bypass4netnsReady(); err != nil {
			if b.opts.Chosen {
				return out.failed(err)
			}
			out.Status, out.Reason, out.Fix = StatusSkipped, err.Error(), FixFor(err)
			return out
		}
	}
	var sum Summary
	var err error
	switch sc.Direction {
	case DirContainerToHost:
		sum, err = b.containerToHost(ctx, sc, index, &out)
	case DirHostToContainer:
		sum, err = b.hostToContainer(ctx, sc, index, &out)
	case DirLoopback:
		sum, err = b.loopback(ctx, sc, &out)
	default:
		err = fmt.Errorf("scenario %s: unknown direction %q", sc.ID, sc.Direction)
	}
	if err != nil {
		return out.failed(err)
	}
	out.Status = StatusOK
	out.BitsPerSecond = sum.Receiver.BitsPerSecond
	out.SenderBitsPerSecond = sum.Sender.BitsPerSecond
	out.Retransmits = max(sum.Sender.Retransmits, 0)
	out.Seconds = sum.Receiver.End - sum.Receiver.Start
	return out
}

func (o outcome) failed(err error) outcome {
	o.Status, o.Err, o.Fix, o.err = StatusFailed, err.Error(), FixFor(err), err
	if errors.Is(err, context.Canceled) {
		o.Err = "interrupted"
	}
	return o
}

// containerToHost: the server on the host's non-loopback address, the client in a container.
func (b *bench) containerToHost(ctx context.Context, sc Scenario, index int, out *outcome) (Summary, error) {
	addr, err := b.hostAddress()
	if err != nil {
		return Summary{}, err
	}
	out.HostAddress = addr
	srv, port, err := b.startHostServer(ctx, addr, out)
	if err != nil {
		return Summary{}, err
	}
	name := b.containerName(index)
	defer b.removeContainer(ctx, name, out)
	args := b.runArgs(name, sc)
	args = append(args, b.image)
	args = append(args, b.clientArgs(addr, port)...)
	client := sys.Command{Path: b.opts.Nerdctl, Args: args, Env: b.opts.Env, Timeout: b.clientTimeout()}
	sum, err := b.runClient(ctx, sc, client, out)
	srv.stop(graceAfter(err))
	return sum, err
}

// hostToContainer: the server in a container behind a published port on the host's loopback,
// the client on the host.
func (b *bench) hostToContainer(ctx context.Context, sc Scenario, index int, out *outcome) (Summary, error) {
	lo := netip.AddrFrom4([4]byte{127, 0, 0, 1})
	port, err := b.pickPort()
	if err != nil {
		return Summary{}, err
	}
	name := b.containerName(index)
	defer b.removeContainer(ctx, name, out)
	args := b.runArgs(name, sc)
	args = append(args, "-p", fmt.Sprintf("%s:%d:%d", lo, port, containerPort), b.image,
		"-s", "-p", strconv.Itoa(containerPort), "-1", "--forceflush")
	server := sys.Command{Path: b.opts.Nerdctl, Args: args, Env: b.opts.Env, Timeout: b.clientTimeout() + containerServerReady}
	out.ServerCommand = b.userCommandLine(server)
	srv := startBackground(ctx, b.opts.Runner, server, ServerListening)
	if err := srv.waitReady(ctx, containerServerReady); err != nil {
		srv.stop(0)
		return Summary{}, b.serverError(err, srv)
	}
	client := sys.Command{Path: b.opts.Iperf3, Args: b.clientArgs(lo, port), Env: b.opts.Env, Timeout: b.clientTimeout()}
	sum, err := b.runClient(ctx, sc, client, out)
	srv.stop(graceAfter(err))
	return sum, err
}

// loopback: server and client on the host's loopback.
func (b *bench) loopback(ctx context.Context, sc Scenario, out *outcome) (Summary, error) {
	lo := netip.AddrFrom4([4]byte{127, 0, 0, 1})
	srv, port, err := b.startHostServer(ctx, lo, out)
	if err != nil {
		return Summary{}, err
	}
	client := sys.Command{Path: b.opts.Iperf3, Args: b.clientArgs(lo, port), Env: b.opts.Env, Timeout: b.clientTimeout()}
	sum, err := b.runClient(ctx, sc, client, out)
	srv.stop(graceAfter(err))
	return sum, err
}

// graceAfter is how long a server may take to end by itself after its client: after a test it
// exits at once (-1); after a failed one it would wait for a client forever.
func graceAfter(clientErr error) time.Duration {
	if clientErr != nil {
		return 0
	}
	return serverGrace
}

// startHostServer starts iperf3 -s on the host at addr, on a free port, and waits until it
// listens; the scenarios whose server runs on the host share it.
func (b *bench) startHostServer(ctx context.Context, addr netip.Addr, out *outcome) (*background, int, error) {
	port, err := b.pickPort()
	if err != nil {
		return nil, 0, err
	}
	server := b.iperf3Server(addr, port)
	out.ServerCommand = b.userCommandLine(server)
	srv := startBackground(ctx, b.opts.Runner, server, ServerListening)
	if err := srv.waitReady(ctx, hostServerReady); err != nil {
		srv.stop(0)
		return nil, 0, b.serverError(err, srv)
	}
	return srv, port, nil
}

package bench

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/virt-setup/virt-setup/internal/sys"
)

// runClient runs the client, turns its intervals into samples as they come, and returns iperf3's
// summary.
func (b *bench) runClient(ctx context.Context, sc Scenario, cmd sys.Command, out *outcome) (Summary, error) {
	p := &TextParser{Streams: b.opts.Parallel, OnInterval: func(l ReportLine) {
		b.emit(Event{Kind: EventSample, Scenario: sc.ID, Title: sc.Title, Index: b.index, Total: len(b.opts.Scenarios), Sample: &Sample{
			Scenario: sc.ID, Start: l.Start, End: l.End, BitsPerSecond: l.BitsPerSecond, Warmup: l.Omitted,
		}})
	}}
	cmd.OnLine = func(_, line string) { p.Feed(line) }
	out.Command = b.userCommandLine(cmd)
	res, err := b.opts.Runner.Run(ctx, cmd)
	if ctx.Err() != nil {
		return Summary{}, ctx.Err()
	}
	sum, perr := p.Summary()
	if err == nil && perr == nil {
		return sum, nil
	}
	var ie *Iperf3Error
	if errors.As(perr, &ie) {
		return Summary{}, iperf3Failure(ie)
	}
	if err != nil {
		if cmd.Path == b.opts.Nerdctl {
			err = nerdctlError(err, res.Combined())
		}
		return Summary{}, fmt.Errorf("run the iperf3 client: %w", err)
	}
	return Summary{}, perr
}

// userCommandLine is a command as a user would type it to repeat the test.
func (b *bench) userCommandLine(cmd sys.Command) string {
	if cmd.Path != b.opts.Nerdctl {
		return cmd.String()
	}
	// The container name and label only matter to the cleanup.
	var args []string
	for i := 0; i < len(cmd.Args); i++ {
		switch cmd.Args[i] {
		case "--name", "--label":
			i++
			continue
		case "run":
			args = append(args, "run", "--rm")
			continue
		}
		args = append(args, cmd.Args[i])
	}
	return sys.Command{Path: cmd.Path, Args: args}.String()
}

// serverError explains a server that did not come up.
func (b *bench) serverError(err error, srv *background) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	p := &TextParser{}
	for _, l := range strings.Split(srv.output(), "\n") {
		p.Feed(l)
	}
	var ie *Iperf3Error
	if _, perr := p.Summary(); errors.As(perr, &ie) {
		return iperf3Failure(ie)
	}
	if e := nerdctlError(err, srv.output()); FixFor(e) != "" {
		return e
	}
	return fmt.Errorf("start the iperf3 server: %w", err)
}

// iperf3Failure adds the fix to an error iperf3 reported.
func iperf3Failure(ie *Iperf3Error) error {
	switch {
	case strings.Contains(ie.Msg, "Address already in use"):
		return &Error{Err: fmt.Errorf("%w: %w", ErrPortInUse, ie), Fix: fixPortInUse}
	case strings.Contains(ie.Msg, "unable to connect") || strings.Contains(ie.Msg, "unable to send control message"):
		return &Error{Err: ie, Fix: "a firewall on this host may drop connections to the benchmark's port (nft list ruleset; iptables -S); the benchmark only connects to this host's own addresses"}
	}
	return ie
}

package bench

import (
	"context"
	"fmt"
	"strings"
)

// removeContainer removes a scenario's container, also after a failure or Ctrl-C: its context
// outlives the run's. A container that cannot be removed is reported with the command to do it.
func (b *bench) removeContainer(ctx context.Context, name string, out *outcome) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	res, err := b.nerdctl(ctx, cleanupTimeout, "rm", "-f", name)
	if err == nil || strings.Contains(strings.ToLower(res.Combined()), "no such container") {
		return
	}
	cerr := &Error{Err: fmt.Errorf("remove the benchmark's container %s: %w", name, err), Fix: "remove it by hand: nerdctl rm -f " + name}
	b.output(cerr.Error())
	if out.err == nil {
		out.err = cerr
	}
}

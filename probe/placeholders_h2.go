package probe

// TEMPORARY placeholders during parallel development; the real probes replace them. Must not land.

import "context"

func probeCgroup(ctx context.Context, e *Env) func(*Facts)  { return func(*Facts) {} }
func probeSystemd(ctx context.Context, e *Env) func(*Facts) { return func(*Facts) {} }
func probeDevices(ctx context.Context, e *Env) func(*Facts) { return func(*Facts) {} }
func probeNetwork(ctx context.Context, e *Env) func(*Facts) { return func(*Facts) {} }
func probeState(ctx context.Context, e *Env) func(*Facts)   { return func(*Facts) {} }

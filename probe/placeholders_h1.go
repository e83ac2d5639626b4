package probe

// TEMPORARY placeholders during parallel development; the real probes replace them. Must not land.

import "context"

func probeOS(ctx context.Context, e *Env) func(*Facts)       { return func(*Facts) {} }
func probeSecurity(ctx context.Context, e *Env) func(*Facts) { return func(*Facts) {} }
func probeUserNS(ctx context.Context, e *Env) func(*Facts)   { return func(*Facts) {} }

package probe

// TEMPORARY placeholders during parallel development; the real probes replace them. Must not land.

import "context"

func probeBinaries(ctx context.Context, e *Env) func(*Facts)          { return func(*Facts) {} }
func probeLiveOverlay(ctx context.Context, e *Env) func(*Facts)       { return func(*Facts) {} }
func probeLiveFuseOverlayfs(ctx context.Context, e *Env) func(*Facts) { return func(*Facts) {} }

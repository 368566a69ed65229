// Package retention deletes stored data once it has been kept long enough:
// log records after logs.retention, finished alerts after alerts.retention.
package retention

import (
	"context"
	"log/slog"
	"time"
)

// Pruner calls Prune with the cutoff (now minus Retention) at once and then
// every Every until its context ends.
type Pruner struct {
	// What names what is pruned ("log records", "alerts"), for log lines.
	What string
	// Prune deletes what is older than cutoff and says how much it deleted.
	Prune     func(ctx context.Context, cutoff time.Time) (int, error)
	Retention time.Duration
	// Every is how often it prunes (default Retention/10, between 1s and
	// 10m).
	Every  time.Duration
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Run prunes at once and then every Every until ctx ends. A failed prune is
// logged and tried again at the next tick.
func (p *Pruner) Run(ctx context.Context) {
	now := p.Now
	if now == nil {
		now = time.Now
	}
	every := p.Every
	if every <= 0 {
		every = min(max(p.Retention/10, time.Second), 10*time.Minute)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		n, err := p.Prune(ctx, now().Add(-p.Retention))
		switch {
		case err != nil && ctx.Err() == nil:
			p.Logger.Warn("retention: prune failed; retrying later", "what", p.What, "err", err)
		case n > 0:
			p.Logger.Info("retention: pruned", "what", p.What, "count", n, "retention", p.Retention)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

package cache

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/heraldproject/herald"
)

// Guard wraps a Cache so that an outage costs little: after a failure it
// stops asking the cache for a cool-off period (every call answers "not
// cached" at once, so callers use the store), then tries again. It logs when
// the cache goes away and when it is back.
type Guard struct {
	c       Cache
	log     *slog.Logger
	coolOff time.Duration
	mu      sync.Mutex
	downTil time.Time
	down    bool
	// Observe, if set, is told the duration and error of every cache call.
	Observe func(op string, d time.Duration, err error)
}

// NewGuard wraps c.
func NewGuard(c Cache, log *slog.Logger, coolOff time.Duration) *Guard {
	return &Guard{c: c, log: log, coolOff: coolOff}
}

func (g *Guard) skip() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.down && time.Now().Before(g.downTil)
}

func (g *Guard) result(op string, start time.Time, err error) {
	if g.Observe != nil {
		g.Observe(op, time.Since(start), err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case err != nil:
		if !g.down {
			g.log.Warn("cache unavailable; using the database", "err", err, "retry_in", g.coolOff)
		}
		g.down, g.downTil = true, time.Now().Add(g.coolOff)
	case g.down:
		g.log.Info("cache available again")
		g.down = false
	}
}

// MarkSent implements Cache.
func (g *Guard) MarkSent(ctx context.Context, id string, ttl time.Duration) (bool, error) {
	if g.skip() {
		return false, nil
	}
	start := time.Now()
	ok, err := g.c.MarkSent(ctx, id, ttl)
	g.result("mark_sent", start, err)
	return ok, err
}

// Sent implements Cache.
func (g *Guard) Sent(ctx context.Context, id string) (bool, error) {
	if g.skip() {
		return false, nil
	}
	start := time.Now()
	ok, err := g.c.Sent(ctx, id)
	g.result("sent", start, err)
	return ok, err
}

// User implements Cache.
func (g *Guard) User(ctx context.Context, id string) (*herald.User, error) {
	if g.skip() {
		return nil, nil
	}
	start := time.Now()
	u, err := g.c.User(ctx, id)
	g.result("get_user", start, err)
	return u, err
}

// PutUser implements Cache.
func (g *Guard) PutUser(ctx context.Context, u *herald.User) error {
	if g.skip() {
		return nil
	}
	start := time.Now()
	err := g.c.PutUser(ctx, u)
	g.result("put_user", start, err)
	return err
}

// Users implements Cache.
func (g *Guard) Users(ctx context.Context, ids []string) (map[string]*herald.User, error) {
	if g.skip() {
		return map[string]*herald.User{}, nil
	}
	start := time.Now()
	us, err := g.c.Users(ctx, ids)
	g.result("get_users", start, err)
	return us, err
}

// PutUsers implements Cache.
func (g *Guard) PutUsers(ctx context.Context, us []*herald.User) error {
	if g.skip() {
		return nil
	}
	start := time.Now()
	err := g.c.PutUsers(ctx, us)
	g.result("put_users", start, err)
	return err
}

// InvalidateUsers implements Cache. It is always attempted: skipping an
// invalidation could leave other processes with stale contacts.
func (g *Guard) InvalidateUsers(ctx context.Context) error {
	start := time.Now()
	err := g.c.InvalidateUsers(ctx)
	g.result("invalidate", start, err)
	return err
}

// Close implements Cache.
func (g *Guard) Close() error { return g.c.Close() }

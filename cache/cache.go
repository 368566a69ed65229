// Package cache keeps Herald's hot lookups off the database: "was this
// delivery already sent?" (SET NX with a TTL, as the seed systems do with
// Redis) and the directory reads of the send path (a user's contacts). The
// database stays the source of truth: every method may fail, and callers then
// go to the store, so a cache outage slows Herald down but loses nothing.
//
// Two implementations share one contract and one test suite: Memory, for a
// single process, and Redis, shared by a fleet so that a directory change in
// one process invalidates the cached reads of all. Redis entries holding
// contacts are sealed with the secrets key (package secrets) when one is
// configured.
package cache

import (
	"context"
	"time"

	"github.com/heraldproject/herald"
)

// Cache is a best-effort cache. All methods are safe for concurrent use.
type Cache interface {
	// MarkSent records that a delivery was sent, for ttl. It reports whether
	// this call set the mark (false: it was already set).
	MarkSent(ctx context.Context, deliveryID string, ttl time.Duration) (bool, error)
	// Sent reports whether a delivery is marked sent.
	Sent(ctx context.Context, deliveryID string) (bool, error)
	// User returns a cached user, or nil when not cached.
	User(ctx context.Context, id string) (*herald.User, error)
	// PutUser caches a user read from the store. A user whose stored
	// secret could not be read (SecretErr) is not cached: the cache would
	// keep the empty secret without the reason.
	PutUser(ctx context.Context, u *herald.User) error
	// Users returns those of the users with the given ids that are cached,
	// keyed by id, in one call (one round trip to Redis).
	Users(ctx context.Context, ids []string) (map[string]*herald.User, error)
	// PutUsers caches users read from the store, in one call, leaving out
	// those PutUser would.
	PutUsers(ctx context.Context, us []*herald.User) error
	// InvalidateUsers drops every cached directory read; called after any
	// change to users, groups or memberships.
	InvalidateUsers(ctx context.Context) error
	// Close releases connections.
	Close() error
}

// cacheable reports whether u may be cached: not when a stored secret of
// theirs could not be read, since the cache would keep the empty secret
// without the reason.
func cacheable(u *herald.User) bool { return u.SecretErr == nil }

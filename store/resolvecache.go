package store

import (
	"sync"
	"time"
)

// maxResolveCache bounds the names the resolve cache holds; past it the cache
// starts over.
const maxResolveCache = 4096

// resolveCache remembers what user and group names resolved to, so accepting
// an alert does not query the directory every time (at 1,000 alerts/s to a
// group the two queries were 7% of Herald's CPU). Every directory write of
// this Store empties it; a write by another process (a fleet sharing one
// PostgreSQL database) is seen once an entry is older than the TTL.
type resolveCache struct {
	ttl time.Duration // 0: off

	mu  sync.Mutex
	gen uint64 // bumped by every directory write
	m   map[string]resolvedName
}

// resolvedName is a cached resolution of one target (found only: unknown
// names are not kept, so made-up names cannot fill the cache).
type resolvedName struct {
	ids []string // shared: callers must not modify it
	at  time.Time
}

// get returns the cached user ids of target and the generation to pass to
// put after a miss.
func (c *resolveCache) get(target string, now time.Time) (ids []string, ok bool, gen uint64) {
	if c.ttl <= 0 {
		return nil, false, 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[target]
	if ok && now.Sub(e.at) < c.ttl {
		return e.ids, true, c.gen
	}
	return nil, false, c.gen
}

// put caches ids for target, read from the store after get returned gen;
// if a directory write has happened since, the ids may be stale and are not
// kept.
func (c *resolveCache) put(target string, ids []string, gen uint64, now time.Time) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if c.m == nil || len(c.m) >= maxResolveCache {
		c.m = make(map[string]resolvedName)
	}
	c.m[target] = resolvedName{ids: ids, at: now}
}

// changed forgets every cached resolution; called after each directory write
// (committed or not).
// generation returns the count of directory writes so far.
func (c *resolveCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

func (c *resolveCache) changed() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.m = nil
}

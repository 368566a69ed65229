package store

import (
	"testing"
	"time"
)

// TestResolveCacheStalePut: ids read before a directory write finished are
// not cached once the write has happened, so a slow reader cannot put back
// what the write changed.
func TestResolveCacheStalePut(t *testing.T) {
	c := resolveCache{ttl: time.Minute}
	now := time.Now()
	_, hit, gen := c.get("@@ops", now)
	if hit {
		t.Fatal("hit in an empty cache")
	}
	c.changed() // a write commits while the reader queries
	c.put("@@ops", []string{"u-old"}, gen, now)
	if ids, hit, _ := c.get("@@ops", now); hit {
		t.Fatalf("stale ids %v were cached", ids)
	}
	_, _, gen = c.get("@@ops", now)
	c.put("@@ops", []string{"u-new"}, gen, now)
	if ids, hit, _ := c.get("@@ops", now); !hit || ids[0] != "u-new" {
		t.Fatalf("get = %v, %v; want [u-new]", ids, hit)
	}
	if _, hit, _ := c.get("@@ops", now.Add(time.Minute)); hit {
		t.Fatal("an entry as old as the TTL was used")
	}
	off := resolveCache{}
	off.put("@x", []string{"u"}, 0, now)
	if _, hit, _ := off.get("@x", now); hit {
		t.Fatal("a cache with TTL 0 kept an entry")
	}
}

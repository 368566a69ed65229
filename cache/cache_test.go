package cache_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/cache"
	"github.com/heraldproject/herald/secrets"
)

// forEachCache runs the suite on the in-memory cache and on real Redis
// (HERALD_TEST_REDIS, default 127.0.0.1:6379; skipped with a message when
// unreachable, except in CI), with contacts sealed and in plain JSON.
func forEachCache(t *testing.T, fn func(t *testing.T, c cache.Cache)) {
	t.Run("memory", func(t *testing.T) { fn(t, cache.NewMemory(1000, time.Minute)) })
	t.Run("redis", func(t *testing.T) { fn(t, newRedis(t, testPrefix(), cache.WithSealer(sealer(t, keyA)))) })
	t.Run("redis-unsealed", func(t *testing.T) { fn(t, newRedis(t, testPrefix())) })
}

func redisAddr() string {
	if addr := os.Getenv("HERALD_TEST_REDIS"); addr != "" {
		return addr
	}
	return "127.0.0.1:6379"
}

func testPrefix() string { return fmt.Sprintf("herald-test-%d:", time.Now().UnixNano()) }

// newRedis is a Redis cache on the test server, skipping the test when there
// is none (failing in CI).
func newRedis(t *testing.T, prefix string, opts ...cache.RedisOption) *cache.Redis {
	t.Helper()
	r := cache.NewRedis(redisAddr(), prefix, time.Minute, opts...)
	if err := r.Ping(context.Background()); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("Redis at %s is required in CI: %v", redisAddr(), err)
		}
		t.Skipf("SKIPPING Redis tests: no server at %s (%v)", redisAddr(), err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

var (
	keyA = bytes.Repeat([]byte{'A'}, 32)
	keyB = bytes.Repeat([]byte{'B'}, 32)
)

func sealer(t *testing.T, current []byte, previous ...[]byte) *secrets.Sealer {
	t.Helper()
	s, err := secrets.New(current, previous...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSentMarks(t *testing.T) {
	ctx := context.Background()
	forEachCache(t, func(t *testing.T, c cache.Cache) {
		if ok, err := c.Sent(ctx, "d1"); err != nil || ok {
			t.Fatalf("Sent before marking = %v, %v", ok, err)
		}
		if ok, err := c.MarkSent(ctx, "d1", time.Minute); err != nil || !ok {
			t.Fatalf("first MarkSent = %v, %v", ok, err)
		}
		if ok, err := c.MarkSent(ctx, "d1", time.Minute); err != nil || ok {
			t.Fatalf("second MarkSent = %v, %v; want false (already set)", ok, err)
		}
		if ok, err := c.Sent(ctx, "d1"); err != nil || !ok {
			t.Fatalf("Sent after marking = %v, %v", ok, err)
		}
		if _, err := c.MarkSent(ctx, "d2", 50*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		time.Sleep(150 * time.Millisecond)
		if ok, _ := c.Sent(ctx, "d2"); ok {
			t.Fatal("mark outlived its TTL")
		}
	})
}

func TestUsers(t *testing.T) {
	ctx := context.Background()
	forEachCache(t, func(t *testing.T, c cache.Cache) {
		if u, err := c.User(ctx, "u1"); err != nil || u != nil {
			t.Fatalf("miss = %v, %v", u, err)
		}
		in := &herald.User{ID: "u1", Name: "alice", Phone: "+15551234567", Slack: herald.SlackContact{Channel: "C1", Token: "xoxb-1"}}
		if err := c.PutUser(ctx, in); err != nil {
			t.Fatal(err)
		}
		u, err := c.User(ctx, "u1")
		if err != nil || u == nil || u.Name != "alice" || u.Phone != in.Phone || u.Slack.Token != "xoxb-1" {
			t.Fatalf("hit = %+v, %v", u, err)
		}
		if err := c.InvalidateUsers(ctx); err != nil {
			t.Fatal(err)
		}
		if u, err := c.User(ctx, "u1"); err != nil || u != nil {
			t.Fatalf("after invalidation = %+v, %v", u, err)
		}
	})
}

// TestUsersBatch: Users answers the cached ones among many ids in one call,
// PutUsers caches many, and an invalidation drops them all.
func TestUsersBatch(t *testing.T) {
	ctx := context.Background()
	forEachCache(t, func(t *testing.T, c cache.Cache) {
		var us []*herald.User
		for i := range 5 {
			us = append(us, &herald.User{ID: fmt.Sprint("b", i), Name: fmt.Sprint("user ", i), Email: fmt.Sprint("u", i, "@example.com")})
		}
		if err := c.PutUsers(ctx, us[:3]); err != nil {
			t.Fatal(err)
		}
		got, err := c.Users(ctx, []string{"b0", "b1", "b2", "b3", "b4"})
		if err != nil || len(got) != 3 {
			t.Fatalf("Users = %v, %v; want b0-b2", got, err)
		}
		for _, u := range us[:3] {
			if g := got[u.ID]; g == nil || g.Name != u.Name || g.Email != u.Email {
				t.Fatalf("Users[%s] = %+v, want %+v", u.ID, g, u)
			}
		}
		if u, err := c.User(ctx, "b1"); err != nil || u == nil || u.Email != us[1].Email {
			t.Fatalf("User(b1) after PutUsers = %+v, %v", u, err)
		}
		// A user whose stored secret could not be read is not cached, by
		// either call: the cache would keep the empty secret.
		bad := &herald.User{ID: "b9", Name: "unreadable", SecretErr: errors.New("wrong key")}
		if err := c.PutUsers(ctx, []*herald.User{bad}); err != nil {
			t.Fatal(err)
		}
		if err := c.PutUser(ctx, bad); err != nil {
			t.Fatal(err)
		}
		if u, err := c.User(ctx, "b9"); err != nil || u != nil {
			t.Fatalf("a user with SecretErr was cached: %+v, %v", u, err)
		}
		if err := c.InvalidateUsers(ctx); err != nil {
			t.Fatal(err)
		}
		if got, err := c.Users(ctx, []string{"b0", "b1"}); err != nil || len(got) != 0 {
			t.Fatalf("after invalidation Users = %v, %v", got, err)
		}
	})
}

func TestRedisDownDegrades(t *testing.T) {
	ctx := context.Background()
	g := cache.NewGuard(cache.NewRedis("127.0.0.1:1", "", time.Minute), testLogger(), time.Minute)
	start := time.Now()
	if _, err := g.Sent(ctx, "d"); err == nil {
		t.Fatal("a dead Redis answered")
	}
	// During the cool-off, calls answer "not cached" at once.
	for range 100 {
		if ok, err := g.Sent(ctx, "d"); ok || err != nil {
			t.Fatalf("cooling off: %v, %v", ok, err)
		}
		if u, err := g.User(ctx, "u"); u != nil || err != nil {
			t.Fatalf("cooling off: %v, %v", u, err)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("101 calls against a dead Redis took %v", d)
	}
}

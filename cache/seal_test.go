package cache_test

import (
	"context"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/cache"
)

// TestRedisContactsSealed reads what Herald leaves in Redis with a plain
// go-redis client: no contact may be there in clear text. Entries that do not
// open with this process's keys — another key, altered, written unsealed, or
// moved to another user's key — are misses, never errors.
func TestRedisContactsSealed(t *testing.T) {
	ctx := context.Background()
	prefix := testPrefix()
	c := newRedis(t, prefix, cache.WithSealer(sealer(t, keyA)))
	canary := &herald.User{ID: "u1", Name: "alice", Email: "alice-canary@example.com", Phone: "+15559870001",
		WebhookURL: "https://hooks.example.com/webhook-canary-path", WebhookSecret: "whsec-canary-0123456789",
		Slack: herald.SlackContact{Channel: "C1", Token: "xoxb-canary-token"}}
	if err := c.PutUser(ctx, canary); err != nil {
		t.Fatal(err)
	}
	if u, err := c.User(ctx, "u1"); err != nil || u == nil || *u != *canary {
		t.Fatalf("read back = %+v, %v", u, err)
	}

	raw := redis.NewClient(&redis.Options{Addr: redisAddr()})
	defer raw.Close()
	keys, err := raw.Keys(ctx, prefix+"user:*").Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys under %s: %v, %v", prefix, keys, err)
	}
	stored, err := raw.Get(ctx, keys[0]).Result()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stored, "enc:v2:") {
		t.Errorf("stored entry is not sealed: %.40s…", stored)
	}
	for _, s := range []string{"+15559870001", "alice-canary@example.com", "webhook-canary-path", "whsec-canary", "xoxb-canary", "alice"} {
		if strings.Contains(stored, s) {
			t.Errorf("Redis holds %q in clear text", s)
		}
	}

	// Misses, not errors.
	miss := func(name string, c cache.Cache, id string) {
		t.Helper()
		if u, err := c.User(ctx, id); u != nil || err != nil {
			t.Errorf("%s: User = %+v, %v; want a miss", name, u, err)
		}
	}
	miss("another key", newRedis(t, prefix, cache.WithSealer(sealer(t, keyB))), "u1")
	miss("no key", newRedis(t, prefix), "u1")
	if u, err := newRedis(t, prefix, cache.WithSealer(sealer(t, keyB, keyA))).User(ctx, "u1"); err != nil || u == nil {
		t.Errorf("with the sealing key as a previous key: %+v, %v; want a hit", u, err)
	}
	other := strings.TrimSuffix(keys[0], "u1") + "u2"
	if err := raw.Set(ctx, other, stored, 0).Err(); err != nil {
		t.Fatal(err)
	}
	miss("alice's entry under bob's key", c, "u2")
	if err := raw.Set(ctx, keys[0], `{"id":"u1","name":"mallory","webhookUrl":"https://evil.example.com/"}`, 0).Err(); err != nil {
		t.Fatal(err)
	}
	miss("an unsealed entry (forged)", c, "u1")
	if err := raw.Set(ctx, keys[0], stored[:len(stored)-4]+"AAAA", 0).Err(); err != nil {
		t.Fatal(err)
	}
	miss("an altered entry", c, "u1")
	t.Cleanup(func() { raw.Del(context.Background(), keys[0], other) })
}

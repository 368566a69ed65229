package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/secrets"
)

// Redis is a Cache shared by every Herald process using the same Redis.
// Directory reads are cached under a generation number that any process
// bumps on a directory change, so one INCR invalidates them everywhere.
//
// Cached users hold contact details (email addresses, phone numbers, webhook
// URLs, Slack tokens, webhook secrets). With a sealer (WithSealer) they are
// encrypted and authenticated before they reach Redis: Redis then sees no
// contact in clear, and an entry it hands back that does not open — sealed
// under another key, altered, or written unsealed — is a miss. Without one
// they are stored as plain JSON and Redis must be trusted like the database.
type Redis struct {
	c       *redis.Client
	prefix  string
	userTTL time.Duration
	seal    *secrets.Sealer

	username, password string // WithAuth, until the client is made
}

// RedisOption changes how NewRedis builds a cache.
type RedisOption func(*Redis)

// WithSealer seals cached users with s before SET and opens them after GET.
// Every process sharing the Redis must have the key that sealed an entry
// (secrets.key or secrets.previousKeys) to use it; others miss and read the
// store. A nil s stores plain JSON.
func WithSealer(s *secrets.Sealer) RedisOption { return func(r *Redis) { r.seal = s } }

// WithAuth authenticates with username (Redis ACLs; "" for the default
// user) and password, over those of an addr URL.
func WithAuth(username, password string) RedisOption {
	return func(r *Redis) { r.username, r.password = username, password }
}

// NewRedis connects to Redis at addr: host:port, or a URL
// redis://[user:password@]host:port[/db] (rediss:// for TLS). Keys start
// with prefix ("herald:" if empty). Connection failures surface on use, not
// here, so Herald starts (and degrades to the database) when Redis is down.
func NewRedis(addr, prefix string, userTTL time.Duration, opts ...RedisOption) *Redis {
	if prefix == "" {
		prefix = "herald:"
	}
	r := &Redis{prefix: prefix, userTTL: userTTL}
	for _, o := range opts {
		o(r)
	}
	ro := &redis.Options{Addr: addr}
	if strings.Contains(addr, "://") { // "redis:6379" is a host named redis
		if u, err := redis.ParseURL(addr); err == nil {
			ro = u
		}
	}
	if r.password != "" {
		ro.Username, ro.Password = r.username, r.password
	}
	ro.DialTimeout, ro.ReadTimeout, ro.WriteTimeout, ro.MaxRetries = 500*time.Millisecond, 500*time.Millisecond, 500*time.Millisecond, 1
	r.c = redis.NewClient(ro)
	return r
}

// AuthFailed reports whether err is Redis refusing the credentials (or
// asking for some): a configuration error, unlike Redis being down.
func AuthFailed(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "NOAUTH") || strings.Contains(msg, "WRONGPASS") ||
		strings.Contains(msg, "invalid password") || strings.Contains(msg, "without any password configured") ||
		strings.Contains(msg, "invalid username-password pair")
}

// Ping checks that Redis answers.
func (r *Redis) Ping(ctx context.Context) error { return r.c.Ping(ctx).Err() }

// MarkSent implements Cache with SET NX.
func (r *Redis) MarkSent(ctx context.Context, id string, ttl time.Duration) (bool, error) {
	ok, err := r.c.SetNX(ctx, r.prefix+"sent:"+id, 1, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("cache: mark sent: %w", err)
	}
	return ok, nil
}

// Sent implements Cache.
func (r *Redis) Sent(ctx context.Context, id string) (bool, error) {
	n, err := r.c.Exists(ctx, r.prefix+"sent:"+id).Result()
	if err != nil {
		return false, fmt.Errorf("cache: sent: %w", err)
	}
	return n == 1, nil
}

func (r *Redis) gen(ctx context.Context) (string, error) {
	g, err := r.c.Get(ctx, r.prefix+"dir:gen").Result()
	if errors.Is(err, redis.Nil) {
		return "0", nil
	}
	if err != nil {
		return "", fmt.Errorf("cache: directory generation: %w", err)
	}
	return g, nil
}

// User implements Cache.
func (r *Redis) User(ctx context.Context, id string) (*herald.User, error) {
	g, err := r.gen(ctx)
	if err != nil {
		return nil, err
	}
	v, err := r.c.Get(ctx, r.userKey(g, id)).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cache: user: %w", err)
	}
	return r.decodeUser(v, id), nil
}

// Users implements Cache: one MGET after the generation.
func (r *Redis) Users(ctx context.Context, ids []string) (map[string]*herald.User, error) {
	out := make(map[string]*herald.User, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	g, err := r.gen(ctx)
	if err != nil {
		return nil, err
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = r.userKey(g, id)
	}
	vs, err := r.c.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("cache: users: %w", err)
	}
	for i, v := range vs {
		if s, ok := v.(string); ok {
			if u := r.decodeUser(s, ids[i]); u != nil {
				out[ids[i]] = u
			}
		}
	}
	return out, nil
}

// decodeUser reads a cached entry for user id; nil (a miss) when it is not
// one this Herald can read.
func (r *Redis) decodeUser(v, id string) *herald.User {
	if r.seal != nil {
		if !secrets.IsSealed(v) {
			return nil // not written by a Herald with the key: a miss
		}
		var err error
		if v, err = r.seal.Open(v); err != nil {
			return nil // another key, or altered: a miss
		}
	}
	var u herald.User
	if err := json.Unmarshal([]byte(v), &u); err != nil || u.ID != id {
		return nil // a garbled entry, or another user's: a miss
	}
	return &u
}

func (r *Redis) userKey(gen, id string) string { return r.prefix + "user:" + gen + ":" + id }

// PutUser implements Cache.
func (r *Redis) PutUser(ctx context.Context, u *herald.User) error {
	return r.PutUsers(ctx, []*herald.User{u})
}

// PutUsers implements Cache: one pipelined round trip.
func (r *Redis) PutUsers(ctx context.Context, us []*herald.User) error {
	us = slices.DeleteFunc(slices.Clone(us), func(u *herald.User) bool { return !cacheable(u) })
	if len(us) == 0 {
		return nil
	}
	g, err := r.gen(ctx)
	if err != nil {
		return err
	}
	p := r.c.Pipeline()
	for _, u := range us {
		b, err := json.Marshal(u)
		if err != nil {
			return fmt.Errorf("cache: encode user: %w", err)
		}
		p.Set(ctx, r.userKey(g, u.ID), r.seal.Seal(string(b)), r.userTTL)
	}
	if _, err := p.Exec(ctx); err != nil {
		return fmt.Errorf("cache: put users: %w", err)
	}
	return nil
}

// InvalidateUsers implements Cache: the generation moves on, and entries of
// older generations expire by their TTL.
func (r *Redis) InvalidateUsers(ctx context.Context) error {
	if err := r.c.Incr(ctx, r.prefix+"dir:gen").Err(); err != nil {
		return fmt.Errorf("cache: invalidate: %w", err)
	}
	return nil
}

// Close implements Cache.
func (r *Redis) Close() error { return r.c.Close() }

package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldproject/herald"
)

// Redis is a Cache shared by every Herald process using the same Redis.
// Directory reads are cached under a generation number that any process
// bumps on a directory change, so one INCR invalidates them everywhere.
//
// Cached users hold contact details, Slack tokens included; Redis must be
// trusted like the database.
type Redis struct {
	c       *redis.Client
	prefix  string
	userTTL time.Duration
}

// NewRedis connects to Redis at addr (host:port). Keys start with prefix
// ("herald:" if empty). Connection failures surface on use, not here, so
// Herald starts (and degrades to the database) when Redis is down.
func NewRedis(addr, prefix string, userTTL time.Duration) *Redis {
	if prefix == "" {
		prefix = "herald:"
	}
	c := redis.NewClient(&redis.Options{
		Addr: addr, DialTimeout: 500 * time.Millisecond, ReadTimeout: 500 * time.Millisecond,
		WriteTimeout: 500 * time.Millisecond, MaxRetries: 1,
	})
	return &Redis{c: c, prefix: prefix, userTTL: userTTL}
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
	b, err := r.c.Get(ctx, r.prefix+"user:"+g+":"+id).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cache: user: %w", err)
	}
	var u herald.User
	if err := json.Unmarshal(b, &u); err != nil {
		return nil, nil // treat a garbled entry as a miss
	}
	return &u, nil
}

// PutUser implements Cache.
func (r *Redis) PutUser(ctx context.Context, u *herald.User) error {
	g, err := r.gen(ctx)
	if err != nil {
		return err
	}
	b, err := json.Marshal(u)
	if err != nil {
		return fmt.Errorf("cache: encode user: %w", err)
	}
	if err := r.c.Set(ctx, r.prefix+"user:"+g+":"+u.ID, b, r.userTTL).Err(); err != nil {
		return fmt.Errorf("cache: put user: %w", err)
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

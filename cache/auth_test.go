package cache_test

import (
	"context"
	"testing"
	"time"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/cache"
	"github.com/heraldproject/herald/internal/testredis"
)

// TestRedisAuth checks a Redis that asks for a password is used with one
// given in a redis:// URL (with a database number) or with WithAuth, and
// that a missing or wrong password is told apart from Redis being down.
func TestRedisAuth(t *testing.T) {
	addr, _ := testredis.Start(t, "--requirepass", "s3cret-pw")
	ctx := context.Background()
	for name, c := range map[string]*cache.Redis{
		"url":       cache.NewRedis("redis://:s3cret-pw@"+addr+"/3", testPrefix(), time.Minute),
		"with auth": cache.NewRedis(addr, testPrefix(), time.Minute, cache.WithAuth("", "s3cret-pw")),
		"over url":  cache.NewRedis("redis://:wrong@"+addr, testPrefix(), time.Minute, cache.WithAuth("default", "s3cret-pw")),
	} {
		if err := c.Ping(ctx); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		u := &herald.User{ID: "u1", Name: "ann", Email: "ann@example.com"}
		if err := c.PutUser(ctx, u); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got, err := c.User(ctx, "u1"); err != nil || got == nil || got.Email != u.Email {
			t.Fatalf("%s: cached user %+v, %v", name, got, err)
		}
		c.Close()
	}
	for name, c := range map[string]*cache.Redis{
		"none":  cache.NewRedis(addr, testPrefix(), time.Minute),
		"wrong": cache.NewRedis("redis://:wrong@"+addr, testPrefix(), time.Minute),
	} {
		if err := c.Ping(ctx); !cache.AuthFailed(err) {
			t.Errorf("%s password: Ping = %v, want an error AuthFailed knows", name, err)
		}
		c.Close()
	}
	down := cache.NewRedis("127.0.0.1:1", testPrefix(), time.Minute)
	defer down.Close()
	if err := down.Ping(ctx); err == nil || cache.AuthFailed(err) {
		t.Errorf("Redis down: Ping = %v, want an error that is not an authentication failure", err)
	}
}

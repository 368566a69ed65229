package cache_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/cache"
)

// passwordRedis starts a redis-server of the test's own that asks for
// password, keeping nothing on disk, and returns its address.
func passwordRedis(t *testing.T, password string) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server is required in CI")
		}
		t.Skip("SKIPPING: no redis-server to start")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--requirepass", password,
		"--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s did not start", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRedisAuth checks a Redis that asks for a password is used with one
// given in a redis:// URL (with a database number) or with WithAuth, and
// that a missing or wrong password is told apart from Redis being down.
func TestRedisAuth(t *testing.T) {
	addr := passwordRedis(t, "s3cret-pw")
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

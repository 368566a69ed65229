package store_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/store"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestResolveCache: a directory write through a store is seen by its next
// Resolve at once; one through another store on the same database (another
// process of a fleet) once the cached entry is older than ResolveCacheTTL.
func TestResolveCache(t *testing.T) {
	ctx := context.Background()
	forEachDatabase(t, func(t *testing.T, db *database) {
		clock := &fakeClock{t: time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)}
		open := func() *store.Store {
			o := db.opts
			o.Now, o.ResolveCacheTTL = clock.now, time.Second
			s, err := store.Open(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}
		a, b := open(), open()
		resolve := func(s *store.Store, targets ...herald.Target) (ids, unknown []string) {
			t.Helper()
			ids, unknown, err := s.Resolve(ctx, targets)
			if err != nil {
				t.Fatal(err)
			}
			return ids, unknown
		}
		ops := herald.Target{Name: "ops", Group: true}
		for _, u := range []*herald.User{user("ann"), user("bob")} {
			if err := a.CreateUser(ctx, u); err != nil {
				t.Fatal(err)
			}
		}
		if err := a.CreateGroup(ctx, &herald.Group{ID: "g-ops", Name: "ops"}); err != nil {
			t.Fatal(err)
		}
		if err := a.AddMember(ctx, "g-ops", "u-ann"); err != nil {
			t.Fatal(err)
		}
		for _, s := range []*store.Store{a, b} {
			if ids, _ := resolve(s, ops); !slices.Equal(ids, []string{"u-ann"}) {
				t.Fatalf("@@ops = %v, want [u-ann]", ids)
			}
		}

		// A write through a is seen by a at once, by b after the TTL.
		if err := a.AddMember(ctx, "g-ops", "u-bob"); err != nil {
			t.Fatal(err)
		}
		if ids, _ := resolve(a, ops); !slices.Equal(ids, []string{"u-ann", "u-bob"}) {
			t.Fatalf("@@ops through the writing store = %v, want both members at once", ids)
		}
		if ids, _ := resolve(b, ops); !slices.Equal(ids, []string{"u-ann"}) {
			t.Fatalf("@@ops through the other store within the TTL = %v, want the cached [u-ann]", ids)
		}
		clock.add(time.Second)
		if ids, _ := resolve(b, ops); !slices.Equal(ids, []string{"u-ann", "u-bob"}) {
			t.Fatalf("@@ops through the other store after the TTL = %v, want both members", ids)
		}

		// Renaming, removing and deleting are seen at once by the writer.
		if ids, _ := resolve(a, herald.Target{Name: "bob"}); !slices.Equal(ids, []string{"u-bob"}) {
			t.Fatalf("@bob = %v", ids)
		}
		if _, err := a.UpdateUser(ctx, "u-bob", func(u *herald.User) error { u.Name = "robert"; return nil }); err != nil {
			t.Fatal(err)
		}
		if ids, unknown := resolve(a, herald.Target{Name: "bob"}, herald.Target{Name: "robert"}); !slices.Equal(ids, []string{"u-bob"}) ||
			!slices.Equal(unknown, []string{"@bob"}) {
			t.Fatalf("after the rename: ids %v, unknown %v; want [u-bob] as @robert and @bob unknown", ids, unknown)
		}
		if err := a.RemoveMember(ctx, "g-ops", "u-ann"); err != nil {
			t.Fatal(err)
		}
		if ids, _ := resolve(a, ops); !slices.Equal(ids, []string{"u-bob"}) {
			t.Fatalf("@@ops after removing ann = %v", ids)
		}
		if err := a.DeleteGroup(ctx, "g-ops"); err != nil {
			t.Fatal(err)
		}
		if ids, unknown := resolve(a, ops); len(ids) != 0 || !slices.Equal(unknown, []string{"@@ops"}) {
			t.Fatalf("@@ops after deleting it: ids %v, unknown %v", ids, unknown)
		}

		// Unknown names are not cached: a user created through the other
		// store is found at once.
		if _, unknown := resolve(a, herald.Target{Name: "cy"}); !slices.Equal(unknown, []string{"@cy"}) {
			t.Fatalf("@cy before it exists: unknown %v", unknown)
		}
		if err := b.CreateUser(ctx, user("cy")); err != nil {
			t.Fatal(err)
		}
		if ids, _ := resolve(a, herald.Target{Name: "cy"}); !slices.Equal(ids, []string{"u-cy"}) {
			t.Fatalf("@cy after another store created it = %v", ids)
		}
	})
}

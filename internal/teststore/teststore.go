// Package teststore gives tests a store on a fresh SQLite database in a
// temporary directory, closed when the test ends.
package teststore

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/store"
)

// SQLite opens a store on a new SQLite database and creates users in it.
func SQLite(tb testing.TB, users ...*herald.User) *store.Store {
	tb.Helper()
	return Open(tb, store.Options{DSN: filepath.Join(tb.TempDir(), "herald.db")}, users...)
}

// Open opens a store with o, closed when the test ends, and creates users in
// it.
func Open(tb testing.TB, o store.Options, users ...*herald.User) *store.Store {
	tb.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	for _, u := range users {
		if err := st.CreateUser(ctx, u); err != nil {
			tb.Fatal(err)
		}
	}
	return st
}

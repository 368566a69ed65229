package auth_test

import (
	"context"
	"sync"
	"testing"

	"github.com/heraldproject/herald/auth"
	"github.com/heraldproject/herald/internal/teststore"
)

// TestBootstrapConcurrentRotation starts several processes' Bootstrap at
// once with a new HERALD_ADMIN_TOKEN: the old value's token is revoked and
// the new one's never is, whichever order they run in.
func TestBootstrapConcurrentRotation(t *testing.T) {
	ctx := context.Background()
	const old, next = "hrl_old-admin-token-0123456789", "hrl_new-admin-token-0123456789"
	for range 20 {
		st := teststore.SQLite(t)
		if _, err := auth.Bootstrap(ctx, st, t.TempDir(), old); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 3)
		for range 3 {
			wg.Go(func() {
				_, err := auth.Bootstrap(ctx, st, t.TempDir(), next)
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		cur, err := st.TokenByHash(ctx, auth.Hash(next))
		if err != nil || cur.RevokedAt != nil {
			t.Fatalf("the new admin token: %+v, %v; want it active", cur, err)
		}
		prev, err := st.TokenByHash(ctx, auth.Hash(old))
		if err != nil || prev.RevokedAt == nil {
			t.Fatalf("the old admin token: %+v, %v; want it revoked", prev, err)
		}
		if _, err := auth.Bootstrap(ctx, st, t.TempDir(), old); err == nil {
			t.Fatal("the revoked old value was accepted again")
		}
	}
}

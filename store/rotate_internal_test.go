package store

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/internal/testpg"
	"github.com/heraldproject/herald/secrets"
)

// TestRotateBatchLostRace makes the race RotateSecrets guards against happen
// for certain: a batch read, then the user changed by someone else, then the
// batch written. The change must survive, re-sealed under the new key.
func TestRotateBatchLostRace(t *testing.T) {
	ctx := context.Background()
	keyA, keyB := bytes.Repeat([]byte{'A'}, 32), bytes.Repeat([]byte{'B'}, 32)
	for _, o := range []Options{
		{Driver: "sqlite", DSN: filepath.Join(t.TempDir(), "herald.db")},
		{Driver: "postgres"},
	} {
		t.Run(o.Driver, func(t *testing.T) {
			if o.Driver == "postgres" {
				o.DSN = testpg.DSN(t)
			}
			o.SecretsKey = keyA
			old, err := Open(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			defer old.Close()
			u := &herald.User{ID: "u1", Name: "alice", WebhookURL: "https://h.example.com/", WebhookSecret: "whsec-before-0123456789"}
			if err := old.CreateUser(ctx, u); err != nil {
				t.Fatal(err)
			}
			o.SecretsKey, o.PreviousSecretsKeys = keyB, [][]byte{keyA}
			s, err := Open(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			stale, err := s.sealedRows(ctx, `id = ?`, "u1")
			if err != nil || len(stale) != 1 {
				t.Fatalf("read: %v, %v", stale, err)
			}
			if _, err := old.UpdateUser(ctx, "u1", func(u *herald.User) error { u.WebhookSecret = "whsec-after-0123456789"; return nil }); err != nil {
				t.Fatal(err)
			}
			var st RotateStats
			var failures []string
			if err := s.rotateBatch(ctx, stale, &st, &failures); err != nil {
				t.Fatal(err)
			}
			if st.Resealed != 1 || st.Failed != 0 {
				t.Errorf("stats = %+v (the retried row counted once)", st)
			}
			got, err := s.User(ctx, "u1")
			if err != nil || got.WebhookSecret != "whsec-after-0123456789" {
				t.Fatalf("after the race: %+v, %v; want the concurrent change kept", got, err)
			}
			rows, _ := s.sealedRows(ctx, `id = ?`, "u1")
			if !strings.HasPrefix(rows[0].vals[1], "enc:v2:"+secrets.KeyID(keyB)+":") {
				t.Errorf("the kept change is not under the new key: %.20s…", rows[0].vals[1])
			}
		})
	}
}

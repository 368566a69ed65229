package store_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/internal/testpg"
	"github.com/heraldproject/herald/secrets"
	"github.com/heraldproject/herald/store"
)

var (
	keyA = bytes.Repeat([]byte{'A'}, 32)
	keyB = bytes.Repeat([]byte{'B'}, 32)
	keyC = bytes.Repeat([]byte{'C'}, 32)
)

// database is one backend the secrets tests open several stores on, with
// different keys, and read as stored.
type database struct {
	t    *testing.T
	opts store.Options // Driver and DSN
	raw  *sql.DB
}

// forEachDatabase runs fn on SQLite and on PostgreSQL, like forEachBackend,
// but hands over the database rather than one store.
func forEachDatabase(t *testing.T, fn func(t *testing.T, db *database)) {
	run := func(t *testing.T, driver, sqlDriver, dsn, rawDSN string) {
		raw, err := sql.Open(sqlDriver, rawDSN)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { raw.Close() })
		fn(t, &database{t: t, opts: store.Options{Driver: driver, DSN: dsn}, raw: raw})
	}
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "herald.db")
		run(t, "sqlite", "sqlite", path, "file:"+path+"?_pragma=busy_timeout(10000)")
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := testpg.DSN(t)
		run(t, "postgres", "pgx", dsn, dsn)
	})
}

// open opens a store on the database with the given keys (nil: no key).
func (db *database) open(current []byte, previous ...[]byte) *store.Store {
	db.t.Helper()
	o := db.opts
	o.SecretsKey, o.PreviousSecretsKeys = current, previous
	s, err := store.Open(context.Background(), o)
	if err != nil {
		db.t.Fatal(err)
	}
	db.t.Cleanup(func() { s.Close() })
	return s
}

// columns returns a user's sealed columns as stored.
func (db *database) columns(id string) (slackToken, webhookSecret string) {
	db.t.Helper()
	q := `SELECT slack_token, webhook_secret FROM users WHERE id = ?`
	if db.opts.Driver == "postgres" {
		q = `SELECT slack_token, webhook_secret FROM users WHERE id = $1`
	}
	if err := db.raw.QueryRow(q, id).Scan(&slackToken, &webhookSecret); err != nil {
		db.t.Fatal(err)
	}
	return slackToken, webhookSecret
}

// setColumn writes a sealed column as an older Herald (or an attacker)
// would.
func (db *database) setColumn(id, column, v string) {
	db.t.Helper()
	q := `UPDATE users SET ` + column + ` = ? WHERE id = ?`
	if db.opts.Driver == "postgres" {
		q = `UPDATE users SET ` + column + ` = $1 WHERE id = $2`
	}
	if _, err := db.raw.Exec(q, v, id); err != nil {
		db.t.Fatal(err)
	}
}

// sealV1 seals like Herald did before key ids ("enc:v1:", no key id).
func sealV1(t *testing.T, key []byte, v string) string {
	t.Helper()
	b, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		t.Fatal(err)
	}
	nonce := make([]byte, a.NonceSize())
	_, _ = rand.Read(nonce)
	return "enc:v1:" + base64.RawStdEncoding.EncodeToString(a.Seal(nonce, nonce, []byte(v), nil))
}

func secretUser(i int) *herald.User {
	return &herald.User{ID: fmt.Sprintf("u%02d", i), Name: fmt.Sprintf("user%02d", i),
		WebhookURL: "https://hooks.example.com/x", WebhookSecret: fmt.Sprintf("whsec-canary-%02d-0123456789", i),
		Slack: herald.SlackContact{Channel: "C1", Token: fmt.Sprintf("xoxb-canary-%02d", i)}}
}

func TestWebhookSecretAtRest(t *testing.T) {
	ctx := context.Background()
	forEachDatabase(t, func(t *testing.T, db *database) {
		s := db.open(keyA)
		u := secretUser(1)
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		tok, sec := db.columns(u.ID)
		for _, v := range []string{tok, sec} {
			if !strings.HasPrefix(v, "enc:v2:"+secrets.KeyID(keyA)+":") || strings.Contains(v, "canary") {
				t.Fatalf("stored %q: want sealed with key A", v)
			}
		}
		got, err := s.User(ctx, u.ID)
		if err != nil || got.WebhookSecret != u.WebhookSecret || got.Slack.Token != u.Slack.Token {
			t.Fatalf("read back = %+v, %v", got, err)
		}
		// A change of another field keeps the secret; clearing it clears it.
		if got, err = s.UpdateUser(ctx, u.ID, func(u *herald.User) error { u.Email = "a@example.com"; return nil }); err != nil ||
			got.WebhookSecret != u.WebhookSecret {
			t.Fatalf("after an unrelated change: %+v, %v", got, err)
		}
		if _, err := s.UpdateUser(ctx, u.ID, func(u *herald.User) error { u.WebhookSecret = ""; return nil }); err != nil {
			t.Fatal(err)
		}
		if _, sec := db.columns(u.ID); sec != "" {
			t.Fatalf("cleared secret stored as %q", sec)
		}
		// Every read path opens it.
		if _, err := s.UpdateUser(ctx, u.ID, func(u *herald.User) error { u.WebhookSecret = "whsec-canary-again-0123"; return nil }); err != nil {
			t.Fatal(err)
		}
		byID, err := s.UsersByID(ctx, []string{u.ID})
		if err != nil || byID[u.ID].WebhookSecret != "whsec-canary-again-0123" {
			t.Fatalf("UsersByID = %+v, %v", byID[u.ID], err)
		}
		list, err := s.ListUsers(ctx, "", 10)
		if err != nil || len(list) != 1 || list[0].WebhookSecret != "whsec-canary-again-0123" {
			t.Fatalf("ListUsers = %+v, %v", list, err)
		}
		// Without the key: the user still reads (a fan-out must not stall on
		// them), the secret is empty, and SecretErr says why, never the
		// ciphertext.
		got, err = db.open(nil).User(ctx, u.ID)
		if err != nil || got.WebhookSecret != "" || got.SecretErr == nil || !strings.Contains(got.SecretErr.Error(), "secrets key") ||
			strings.Contains(got.SecretErr.Error(), "enc:") {
			t.Fatalf("read without the key: %+v, %v", got, err)
		}
	})
}

func TestRotateSecrets(t *testing.T) {
	ctx := context.Background()
	forEachDatabase(t, func(t *testing.T, db *database) {
		var users []*herald.User
		// Written before encryption was turned on: plain text.
		plain := db.open(nil)
		for i := range 3 {
			u := secretUser(i)
			if err := plain.CreateUser(ctx, u); err != nil {
				t.Fatal(err)
			}
			users = append(users, u)
		}
		// Written under key A, one in the old enc:v1 format.
		a := db.open(keyA)
		for i := 3; i < 7; i++ {
			u := secretUser(i)
			if i == 6 {
				u.Slack, u.WebhookSecret = herald.SlackContact{}, "" // nothing to seal
			}
			if err := a.CreateUser(ctx, u); err != nil {
				t.Fatal(err)
			}
			users = append(users, u)
		}
		db.setColumn("u03", "slack_token", sealV1(t, keyA, users[3].Slack.Token))

		// Rotate to B, keeping A to read with, in batches of 2.
		b := db.open(keyB, keyA)
		var progress []store.RotateStats
		st, err := b.RotateSecrets(ctx, store.RotateOptions{BatchSize: 2, Progress: func(p store.RotateStats) {
			progress = append(progress, p)
		}})
		if err != nil {
			t.Fatal(err)
		}
		if want := (store.RotateStats{Users: 7, Scanned: 7, Resealed: 12}); st != want {
			t.Fatalf("stats = %+v, want %+v", st, want)
		}
		if len(progress) != 4 || progress[0].Scanned != 2 || progress[3] != st {
			t.Errorf("progress = %+v", progress)
		}
		for _, u := range users {
			tok, sec := db.columns(u.ID)
			for _, v := range []string{tok, sec} {
				if v != "" && !strings.HasPrefix(v, "enc:v2:"+secrets.KeyID(keyB)+":") {
					t.Errorf("user %s: %.20s… is not under key B", u.ID, v)
				}
			}
		}
		// Key A can go: everything reads with B alone.
		onlyB := db.open(keyB)
		for _, u := range users {
			got, err := onlyB.User(ctx, u.ID)
			if err != nil || got.WebhookSecret != u.WebhookSecret || got.Slack.Token != u.Slack.Token {
				t.Fatalf("%s with key B only: %+v, %v", u.ID, got, err)
			}
		}
		// Idempotent: a second run finds everything current.
		st, err = onlyB.RotateSecrets(ctx, store.RotateOptions{})
		if err != nil || st.Resealed != 0 || st.Current != 12 {
			t.Fatalf("second run: %+v, %v", st, err)
		}
		// A value under a key Herald does not have is named, left alone, and
		// does not stop the rest.
		foreign := mustSealer(t, keyC).Seal("xoxb-foreign")
		db.setColumn("u01", "slack_token", foreign)
		db.setColumn("u02", "webhook_secret", "whsec-plain-again-0123")
		st, err = onlyB.RotateSecrets(ctx, store.RotateOptions{})
		if herald.ErrorCode(err) != herald.EINVALID || !strings.Contains(err.Error(), "user u01 slack_token") ||
			!strings.Contains(err.Error(), secrets.KeyID(keyC)) || st.Failed != 1 || st.Resealed != 1 {
			t.Fatalf("with a foreign value: %+v, %v", st, err)
		}
		if tok, _ := db.columns("u01"); tok != foreign {
			t.Error("the unreadable value was changed")
		}
		if _, sec := db.columns("u02"); !strings.HasPrefix(sec, "enc:v2:"+secrets.KeyID(keyB)+":") {
			t.Error("the plain value next to the failure was not sealed")
		}
		// Without a key there is nothing to rotate to.
		if _, err := db.open(nil).RotateSecrets(ctx, store.RotateOptions{}); herald.ErrorCode(err) != herald.EINVALID {
			t.Fatalf("rotate without a key: %v", err)
		}
	})
}

// TestRotateWhileWriting rotates while another store keeps changing users'
// secrets: another Herald process in the middle of a rolling key change,
// which opens values under the new key but still seals with the old one (the
// worst case: its writes need rotating too). No change may be lost, and every
// value ends readable.
func TestRotateWhileWriting(t *testing.T) {
	ctx := context.Background()
	forEachDatabase(t, func(t *testing.T, db *database) {
		old := db.open(keyA, keyB)
		const n = 40
		for i := range n {
			if err := old.CreateUser(ctx, secretUser(i)); err != nil {
				t.Fatal(err)
			}
		}
		last := make([]string, n)
		var wg sync.WaitGroup
		stop := make(chan struct{})
		wg.Go(func() {
			for round := 0; ; round++ {
				for i := range n {
					select {
					case <-stop:
						return
					default:
					}
					v := fmt.Sprintf("whsec-round-%d-user-%d", round, i)
					if _, err := old.UpdateUser(ctx, fmt.Sprintf("u%02d", i), func(u *herald.User) error {
						u.WebhookSecret = v
						return nil
					}); err != nil {
						t.Error(err)
						return
					}
					last[i] = v
					time.Sleep(time.Millisecond) // a busy Herald, not a hot loop
				}
			}
		})
		b := db.open(keyB, keyA)
		for range 3 {
			if _, err := b.RotateSecrets(ctx, store.RotateOptions{BatchSize: 1}); err != nil {
				t.Error(err)
			}
		}
		close(stop)
		wg.Wait()
		for i := range n {
			u, err := b.User(ctx, fmt.Sprintf("u%02d", i))
			if err != nil {
				t.Fatal(err)
			}
			if last[i] != "" && u.WebhookSecret != last[i] {
				t.Errorf("user %d: secret %q, want the last written %q (a change was lost)", i, u.WebhookSecret, last[i])
			}
		}
	})
}

func mustSealer(t *testing.T, key []byte) *secrets.Sealer {
	t.Helper()
	s, err := secrets.New(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

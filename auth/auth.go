// Package auth checks API tokens: opaque secrets ("hrl_" + 32 random bytes)
// of which only a SHA-256 hash is stored, each with a scope (ingest, read,
// admin) and optionally bound to one user. It also bootstraps the first admin
// token and rate-limits each token.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"golang.org/x/time/rate"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/store"
)

// Prefix starts every token Herald makes, so they are easy to spot (and to
// scan for in leaked text).
const Prefix = "hrl_"

// Generate returns a new token secret.
func Generate() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return Prefix + base64.RawURLEncoding.EncodeToString(b)
}

// Hash is what is stored of a token secret. Secrets are 256 random bits, so a
// fast hash is enough: there is nothing to brute-force.
func Hash(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// ValidScope reports whether s is a scope.
func ValidScope(s string) bool {
	return s == herald.ScopeIngest || s == herald.ScopeRead || s == herald.ScopeAdmin
}

// Allows reports whether a token of scope have may do what needs scope need.
func Allows(have, need string) bool { return have == herald.ScopeAdmin || have == need }

// Options configures an Authenticator.
type Options struct {
	// Rate and Burst limit each token's requests (Rate 0: unlimited).
	Rate  float64
	Burst int
	// CacheTTL is how long a looked-up token is trusted before the store is
	// asked again (revocation takes effect within it; default 5s).
	CacheTTL time.Duration
	Logger   *slog.Logger
}

// Authenticator checks bearer tokens. It is safe for concurrent use.
type Authenticator struct {
	st   *store.Store
	o    Options
	mu   sync.Mutex
	seen map[string]cached // by hash
	used map[string]time.Time
	lim  map[string]*rate.Limiter
}

type cached struct {
	t  *herald.Token
	at time.Time
}

// New returns an Authenticator over st.
func New(st *store.Store, o Options) *Authenticator {
	if o.CacheTTL == 0 {
		o.CacheTTL = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Authenticator{st: st, o: o, seen: map[string]cached{}, used: map[string]time.Time{}, lim: map[string]*rate.Limiter{}}
}

// envAdminName names the token HERALD_ADMIN_TOKEN sets.
const envAdminName = "admin (HERALD_ADMIN_TOKEN)"

// Check returns the token for an Authorization header value, or an
// EUNAUTHORIZED error saying what is wrong.
func (a *Authenticator) Check(ctx context.Context, header string) (*herald.Token, error) {
	// The scheme's name is case-insensitive (RFC 9110, 11.1).
	scheme, secret, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(secret) == "" {
		return nil, herald.Errorf(herald.EUNAUTHORIZED, "send Authorization: Bearer <token>")
	}
	h := Hash(strings.TrimSpace(secret))
	now := time.Now()
	a.mu.Lock()
	c, hit := a.seen[h]
	a.mu.Unlock()
	if !hit || now.Sub(c.at) > a.o.CacheTTL {
		t, err := a.st.TokenByHash(ctx, h)
		if herald.ErrorCode(err) == herald.ENOTFOUND {
			return nil, herald.Errorf(herald.EUNAUTHORIZED, "unknown token")
		}
		if err != nil {
			return nil, err
		}
		c = cached{t: t, at: now}
		a.mu.Lock()
		if len(a.seen) > 10000 {
			a.seen = map[string]cached{}
		}
		a.seen[h] = c
		a.mu.Unlock()
	}
	if c.t.RevokedAt != nil {
		return nil, herald.Errorf(herald.EUNAUTHORIZED, "token %s was revoked", c.t.ID)
	}
	a.mu.Lock()
	a.used[c.t.ID] = now
	a.mu.Unlock()
	return c.t, nil
}

// Forget drops a token from the lookup cache (after a revoke in this
// process; other processes notice within CacheTTL).
func (a *Authenticator) Forget() {
	a.mu.Lock()
	a.seen = map[string]cached{}
	a.mu.Unlock()
}

// Allow takes one request from the token's bucket; when empty it returns how
// long to wait.
func (a *Authenticator) Allow(t *herald.Token) (bool, time.Duration) {
	if a.o.Rate <= 0 {
		return true, 0
	}
	a.mu.Lock()
	l, ok := a.lim[t.ID]
	if !ok {
		l = rate.NewLimiter(rate.Limit(a.o.Rate), max(a.o.Burst, 1))
		a.lim[t.ID] = l
	}
	a.mu.Unlock()
	r := l.Reserve()
	if d := r.Delay(); d > 0 {
		r.Cancel()
		return false, d
	}
	return true, 0
}

// Run records last-used times every interval until ctx ends, and once more
// at the end.
func (a *Authenticator) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			a.flush(context.WithoutCancel(ctx))
			return
		case <-t.C:
			a.flush(ctx)
		}
	}
}

func (a *Authenticator) flush(ctx context.Context) {
	a.mu.Lock()
	used := a.used
	a.used = map[string]time.Time{}
	a.mu.Unlock()
	if err := a.st.TouchTokens(ctx, used); err != nil {
		a.o.Logger.Warn("could not record token use", "err", err)
	}
}

// Bootstrap makes sure an admin token exists. With secret set (from
// HERALD_ADMIN_TOKEN) that secret is an admin token. Otherwise, on a store
// without tokens, a new admin token is made, written to
// <dataDir>/admin.token (mode 0600) and returned so it can be shown once.
// A new HERALD_ADMIN_TOKEN revokes the token the one before it set; a
// revoked token set again is refused.
func Bootstrap(ctx context.Context, st *store.Store, dataDir, secret string) (created string, err error) {
	if secret != "" {
		cur, err := st.TokenByHash(ctx, Hash(secret))
		if herald.ErrorCode(err) == herald.ENOTFOUND {
			// Made first, then read back: processes starting together with
			// one new value all end up with the same token.
			t := &herald.Token{ID: uuid.Must(uuid.NewV7()).String(), Name: envAdminName, Scope: herald.ScopeAdmin}
			if err := st.CreateToken(ctx, t, Hash(secret)); err != nil && herald.ErrorCode(err) != herald.ECONFLICT {
				return "", err
			}
			cur, err = st.TokenByHash(ctx, Hash(secret))
		}
		if err != nil {
			return "", err
		}
		if cur.RevokedAt != nil {
			return "", fmt.Errorf("auth: HERALD_ADMIN_TOKEN is a token that was revoked (%s, %s); choose a new value",
				cur.Name, cur.RevokedAt.Format(time.RFC3339))
		}
		// This value replaces any set before: changing a leaked
		// HERALD_ADMIN_TOKEN must revoke it. Only other tokens are revoked,
		// so a process racing this one cannot revoke the current value.
		ts, err := st.Tokens(ctx)
		if err != nil {
			return "", err
		}
		for _, old := range ts {
			if old.Name == envAdminName && old.ID != cur.ID && old.RevokedAt == nil {
				if err := st.RevokeToken(ctx, old.ID); err != nil && herald.ErrorCode(err) != herald.ENOTFOUND {
					return "", err
				}
			}
		}
		return "", nil
	}
	n, err := st.CountTokens(ctx)
	if err != nil || n > 0 {
		return "", err
	}
	secret = Generate()
	t := &herald.Token{ID: uuid.Must(uuid.NewV7()).String(), Name: "admin (bootstrap)", Scope: herald.ScopeAdmin}
	if err := st.CreateToken(ctx, t, Hash(secret)); err != nil {
		return "", err
	}
	path := filepath.Join(dataDir, "admin.token")
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return "", fmt.Errorf("auth: %w", err)
	}
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("auth: write %s: %w", path, err)
	}
	return secret, nil
}

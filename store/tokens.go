package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/heraldproject/herald"
)

const tokenColumns = `id, name, scope, user_id, created_at, last_used_at, revoked_at`

func scanToken(row scanner) (*herald.Token, error) {
	var t herald.Token
	var created int64
	var used, revoked sql.NullInt64
	if err := row.Scan(&t.ID, &t.Name, &t.Scope, &t.UserID, &created, &used, &revoked); err != nil {
		return nil, err
	}
	t.CreatedAt, t.LastUsedAt, t.RevokedAt = fromNanos(created), fromNullNanos(used), fromNullNanos(revoked)
	return &t, nil
}

// CreateToken stores a token under the hash of its secret.
func (s *Store) CreateToken(ctx context.Context, t *herald.Token, hash string) error {
	t.CreatedAt = s.now().UTC()
	_, err := s.w.ExecContext(ctx, `INSERT INTO tokens (id, name, scope, user_id, hash, created_at) VALUES (?,?,?,?,?,?)`,
		t.ID, t.Name, t.Scope, t.UserID, hash, nanos(t.CreatedAt))
	if isUniqueViolation(err) {
		return herald.Errorf(herald.ECONFLICT, "that token already exists")
	}
	if err != nil {
		return fmt.Errorf("store: create token: %w", err)
	}
	return nil
}

// TokenByHash returns the token whose secret hashes to hash, revoked or not.
func (s *Store) TokenByHash(ctx context.Context, hash string) (*herald.Token, error) {
	t, err := scanToken(s.r.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, herald.Errorf(herald.ENOTFOUND, "no such token")
	}
	if err != nil {
		return nil, fmt.Errorf("store: token: %w", err)
	}
	return t, nil
}

// Tokens lists every token, newest first.
func (s *Store) Tokens(ctx context.Context) ([]*herald.Token, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+tokenColumns+` FROM tokens ORDER BY created_at DESC, id DESC`)
	if err != nil {
		return nil, fmt.Errorf("store: tokens: %w", err)
	}
	out, err := scanAll(rows, scanToken)
	if err != nil {
		return nil, fmt.Errorf("store: tokens: %w", err)
	}
	return out, nil
}

// CountTokens counts tokens, revoked ones included.
func (s *Store) CountTokens(ctx context.Context) (int, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM tokens`).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count tokens: %w", err)
	}
	return n, nil
}

// RevokeToken revokes a token; revoking twice is fine.
func (s *Store) RevokeToken(ctx context.Context, id string) error {
	res, err := s.w.ExecContext(ctx, `UPDATE tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?`, nanos(s.now()), id)
	if err != nil {
		return fmt.Errorf("store: revoke token: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("token", id)
	}
	return nil
}

// TouchTokens records when tokens were last used.
func (s *Store) TouchTokens(ctx context.Context, used map[string]time.Time) error {
	if len(used) == 0 {
		return nil
	}
	return s.tx(ctx, "touch_tokens", func(tx txn) error {
		for id, at := range used {
			if _, err := tx.ExecContext(ctx, `UPDATE tokens SET last_used_at = ? WHERE id = ?`, nanos(at), id); err != nil {
				return fmt.Errorf("store: touch token: %w", err)
			}
		}
		return nil
	})
}

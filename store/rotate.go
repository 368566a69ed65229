package store

import (
	"cmp"
	"context"
	"fmt"
	"strings"

	"github.com/heraldproject/herald"
)

// sealedColumns are the users columns that hold sealed secrets.
var sealedColumns = []string{"slack_token", "webhook_secret"}

// RotateOptions tunes RotateSecrets.
type RotateOptions struct {
	// BatchSize is how many users are read and re-sealed per write
	// transaction (default 500).
	BatchSize int
	// Progress, if set, is called after each batch with the totals so far.
	Progress func(RotateStats)
}

// RotateStats counts what RotateSecrets did.
type RotateStats struct {
	// Users is how many users there were when the rotation started.
	Users int
	// Scanned is how many users were examined.
	Scanned int
	// Resealed is how many secret values were re-encrypted under the
	// current key (values sealed with a previous key, in the old format, or
	// stored before encryption was turned on).
	Resealed int
	// Current is how many non-empty secret values were already sealed with
	// the current key.
	Current int
	// Failed is how many values could not be opened with any configured key;
	// they are left as they are.
	Failed int
}

// maxRotateFailures bounds how many unreadable values an error lists.
const maxRotateFailures = 10

// RotateSecrets re-encrypts every sealed secret (users' Slack tokens and
// webhook signing secrets) under the current secrets key, a batch of users
// at a time, so that previous keys can then be dropped. It is idempotent:
// values already under the current key are left alone, so running it again
// re-seals only what changed meanwhile.
//
// It is safe while Herald runs: each value is replaced only if it still
// holds what was read (compare-and-swap), so a concurrent change of a user
// is never overwritten; such a user is read again and retried. Values that
// no configured key opens are counted in Failed and named in the returned
// error; the rest are still rotated. Without a secrets key it is an
// EINVALID error.
func (s *Store) RotateSecrets(ctx context.Context, o RotateOptions) (RotateStats, error) {
	var st RotateStats
	if s.seal == nil {
		return st, herald.Errorf(herald.EINVALID, "no secrets key is configured (secrets.key): there is no key to re-encrypt under")
	}
	batch := cmp.Or(o.BatchSize, 500)
	if batch < 1 {
		return st, herald.Errorf(herald.EINVALID, "batch size must be positive, not %d", batch)
	}
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM users`).Scan(&st.Users); err != nil {
		return st, fmt.Errorf("store: rotate secrets: count users: %w", err)
	}
	var failures []string
	after := ""
	for {
		rows, err := s.sealedRows(ctx, `id > ? ORDER BY id LIMIT ?`, after, batch)
		if err != nil {
			return st, fmt.Errorf("store: rotate secrets: %w", err)
		}
		if len(rows) == 0 {
			break
		}
		after = rows[len(rows)-1].id
		st.Scanned += len(rows)
		if err := s.rotateBatch(ctx, rows, &st, &failures); err != nil {
			return st, err
		}
		if o.Progress != nil {
			o.Progress(st)
		}
		if len(rows) < batch {
			break
		}
	}
	if st.Failed > 0 {
		more := ""
		if st.Failed > len(failures) {
			more = fmt.Sprintf(" and %d more", st.Failed-len(failures))
		}
		return st, herald.Errorf(herald.EINVALID, "%d secret values could not be opened with the configured keys and were left as they are "+
			"(add the key they were sealed with to secrets.previousKeys and run again): %s%s",
			st.Failed, strings.Join(failures, "; "), more)
	}
	return st, nil
}

// sealedRow is a user's sealed columns as stored.
type sealedRow struct {
	id   string
	vals []string // in sealedColumns order
}

func (s *Store) sealedRows(ctx context.Context, where string, args ...any) ([]sealedRow, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, `+strings.Join(sealedColumns, ", ")+` FROM users WHERE `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []sealedRow
	for rows.Next() {
		r := sealedRow{vals: make([]string, len(sealedColumns))}
		dest := []any{&r.id}
		for i := range r.vals {
			dest = append(dest, &r.vals[i])
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// rowRotation is what re-sealing one row would do.
type rowRotation struct {
	next     []string
	changed  bool
	stats    RotateStats // Resealed, Current and Failed of this row
	failures []string
}

// reseal computes a row's new values; changed is false when every value is
// current or could not be opened.
func (s *Store) reseal(r sealedRow) rowRotation {
	rr := rowRotation{next: make([]string, len(r.vals))}
	for i, v := range r.vals {
		rr.next[i] = v
		if v == "" {
			continue
		}
		if s.seal.Current(v) {
			rr.stats.Current++
			continue
		}
		p, err := s.seal.Open(v)
		if err != nil {
			rr.stats.Failed++
			rr.failures = append(rr.failures, fmt.Sprintf("user %s %s: %v", r.id, sealedColumns[i], err))
			continue
		}
		rr.next[i] = s.seal.Seal(p)
		rr.stats.Resealed++
		rr.changed = true
	}
	return rr
}

// rotateBatch re-seals one batch in one write transaction. A row changed
// since it was read is read again and retried, a few times; only rows
// settled (re-sealed, or needing nothing) are counted.
func (s *Store) rotateBatch(ctx context.Context, rows []sealedRow, st *RotateStats, failures *[]string) error {
	set := make([]string, len(sealedColumns))
	for i, c := range sealedColumns {
		set[i] = c + " = ?"
	}
	update := `UPDATE users SET ` + strings.Join(set, ", ") + ` WHERE id = ? AND ` + strings.Join(set, " AND ")
	for try := 1; len(rows) > 0; try++ {
		if try > 5 {
			return fmt.Errorf("store: rotate secrets: %d users changed on each of %d tries; run again", len(rows), try-1)
		}
		var settled []rowRotation
		var lost []string
		err := s.tx(ctx, "rotate_secrets", func(tx txn) error {
			settled, lost = settled[:0], lost[:0]
			for _, r := range rows {
				rr := s.reseal(r)
				if !rr.changed {
					settled = append(settled, rr)
					continue
				}
				args := make([]any, 0, 2*len(r.vals)+1)
				for _, v := range rr.next {
					args = append(args, v)
				}
				args = append(args, r.id)
				for _, v := range r.vals {
					args = append(args, v)
				}
				res, err := tx.ExecContext(ctx, update, args...)
				if err != nil {
					return fmt.Errorf("store: rotate secrets: user %s: %w", r.id, err)
				}
				if n, err := res.RowsAffected(); err != nil || n == 0 {
					lost = append(lost, r.id) // changed or deleted since read
					continue
				}
				settled = append(settled, rr)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, rr := range settled {
			st.Resealed += rr.stats.Resealed
			st.Current += rr.stats.Current
			st.Failed += rr.stats.Failed
			for _, f := range rr.failures {
				if len(*failures) < maxRotateFailures {
					*failures = append(*failures, f)
				}
			}
		}
		if len(lost) == 0 {
			return nil
		}
		if rows, err = s.sealedRows(ctx, `id IN (`+placeholders(len(lost))+`)`, anys(lost)...); err != nil {
			return fmt.Errorf("store: rotate secrets: %w", err)
		}
	}
	return nil
}

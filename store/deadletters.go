package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/heraldproject/herald"
)

const deadLetterColumns = `id, kind, delivery_id, alert_id, channel, recipient_id, recipient_name, reason, attempts,
	source, record_key, payload, created_at, replayed_at, replay_count`

// insertDeadLetters stores dead letters. With overwrite, a dead letter
// already stored under the same id takes the new details (the sender knows
// more than the DLQ record says); otherwise it is left as it is.
func insertDeadLetters(ctx context.Context, tx txn, dls []*herald.DeadLetter, overwrite bool) error {
	if len(dls) == 0 {
		return nil
	}
	st, err := prepareDeadLetterInsert(ctx, tx, overwrite)
	if err != nil {
		return err
	}
	defer st.Close()
	for _, d := range dls {
		if err := execDeadLetterInsert(ctx, st, d); err != nil {
			return err
		}
	}
	return nil
}

// prepareDeadLetterInsert prepares the insert execDeadLetterInsert runs, in
// tx (see insertDeadLetters for overwrite).
func prepareDeadLetterInsert(ctx context.Context, tx txn, overwrite bool) (*sql.Stmt, error) {
	conflict := `ON CONFLICT DO NOTHING`
	if overwrite {
		conflict = `ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, delivery_id = excluded.delivery_id,
			alert_id = excluded.alert_id, channel = excluded.channel, recipient_id = excluded.recipient_id,
			recipient_name = excluded.recipient_name, reason = excluded.reason, attempts = excluded.attempts,
			source = excluded.source, record_key = excluded.record_key, payload = excluded.payload`
	}
	st, err := tx.PrepareContext(ctx, `INSERT INTO dead_letters (`+deadLetterColumns+`)
		VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,NULL,0) `+conflict)
	if err != nil {
		return nil, fmt.Errorf("store: record dead letters: %w", err)
	}
	return st, nil
}

// execDeadLetterInsert stores d with st (prepareDeadLetterInsert).
func execDeadLetterInsert(ctx context.Context, st *sql.Stmt, d *herald.DeadLetter) error {
	if _, err := st.ExecContext(ctx, d.ID, d.Kind, d.DeliveryID, d.AlertID, d.Channel, d.RecipientID, d.Recipient,
		d.Reason, d.Attempts, d.Source, d.Key, d.Payload, nanos(d.CreatedAt)); err != nil {
		return fmt.Errorf("store: record dead letter %s: %w", d.ID, err)
	}
	return nil
}

// RecordDeadLetters stores dead letters; one already stored (same id) is
// left as it is.
func (s *Store) RecordDeadLetters(ctx context.Context, dls []*herald.DeadLetter) error {
	return s.tx(ctx, "record_dead_letters", func(tx txn) error { return insertDeadLetters(ctx, tx, dls, false) })
}

func scanDeadLetter(row scanner) (*herald.DeadLetter, error) {
	var d herald.DeadLetter
	var created int64
	var replayed sql.NullInt64
	if err := row.Scan(&d.ID, &d.Kind, &d.DeliveryID, &d.AlertID, &d.Channel, &d.RecipientID, &d.Recipient,
		&d.Reason, &d.Attempts, &d.Source, &d.Key, &d.Payload, &created, &replayed, &d.Replays); err != nil {
		return nil, err
	}
	d.CreatedAt, d.ReplayedAt = fromNanos(created), fromNullNanos(replayed)
	return &d, nil
}

// DeadLetter returns one dead letter with the attempt history of its
// delivery.
func (s *Store) DeadLetter(ctx context.Context, id string) (*herald.DeadLetter, error) {
	d, err := scanDeadLetter(s.r.QueryRowContext(ctx, `SELECT `+deadLetterColumns+` FROM dead_letters WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("dead letter", id)
	}
	if err != nil {
		return nil, fmt.Errorf("store: dead letter: %w", err)
	}
	if d.DeliveryID != "" {
		all, err := s.Attempts(ctx, d.DeliveryID)
		if err != nil {
			return nil, err
		}
		for _, a := range all {
			if a.Attempt <= d.Attempts {
				d.History = append(d.History, a)
			}
		}
	}
	return d, nil
}

// unreplayed is the condition of the partial index dead_letters_unreplayed
// (migration 12), word for word: SQLite uses a partial index only for a query
// whose WHERE implies the index's.
const unreplayed = `replayed_at IS NULL`

// DeadLetterFilter selects dead letters. Zero fields match everything.
type DeadLetterFilter struct {
	Channel herald.Channel
	AlertID string
	Since   time.Time
	Until   time.Time
	// Unreplayed keeps only dead letters never replayed.
	Unreplayed bool
	// After is the page cursor: the last dead letter of the previous page.
	After *AlertCursor
	// OldestFirst orders the result oldest first (bulk replay) instead of
	// newest first.
	OldestFirst bool
}

// DeadLetters returns up to limit dead letters matching f, newest first
// unless f.OldestFirst.
// Payloads are included; histories are not.
func (s *Store) DeadLetters(ctx context.Context, f DeadLetterFilter, limit int) ([]*herald.DeadLetter, error) {
	q := `SELECT ` + deadLetterColumns + ` FROM dead_letters WHERE 1=1`
	var args []any
	if f.Channel != "" {
		q += ` AND channel = ?`
		args = append(args, f.Channel)
	}
	if f.AlertID != "" {
		q += ` AND alert_id = ?`
		args = append(args, f.AlertID)
	}
	if !f.Since.IsZero() {
		q += ` AND created_at >= ?`
		args = append(args, nanos(f.Since))
	}
	if !f.Until.IsZero() {
		q += ` AND created_at < ?`
		args = append(args, nanos(f.Until))
	}
	if f.Unreplayed {
		q += ` AND ` + unreplayed
	}
	after, order := "<", " DESC" // newest first
	if f.OldestFirst {
		after, order = ">", ""
	}
	if f.After != nil {
		q += ` AND (created_at, id) ` + after + ` (?, ?)`
		args = append(args, nanos(f.After.CreatedAt), f.After.ID)
	}
	q += ` ORDER BY created_at` + order + `, id` + order + ` LIMIT ?`
	args = append(args, limit)
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: dead letters: %w", err)
	}
	out, err := scanAll(rows, scanDeadLetter)
	if err != nil {
		return nil, fmt.Errorf("store: dead letters: %w", err)
	}
	return out, nil
}

// MarkReplayed notes that a dead letter was replayed.
func (s *Store) MarkReplayed(ctx context.Context, id string) error {
	_, err := s.w.ExecContext(ctx, `UPDATE dead_letters SET replayed_at = ?, replay_count = replay_count + 1 WHERE id = ?`,
		nanos(s.now()), id)
	if err != nil {
		return fmt.Errorf("store: mark replayed: %w", err)
	}
	return nil
}

// PendingDeadLetters counts dead letters never replayed.
func (s *Store) PendingDeadLetters(ctx context.Context) (int, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM dead_letters WHERE `+unreplayed).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count dead letters: %w", err)
	}
	return n, nil
}

// DeleteDeadLetter discards a dead letter not replayed, instead of replaying
// it: the delivery it came from stays dead and no longer names it, and its
// alert, with no dead letter waiting, may be pruned (alerts.retention).
// ENOTFOUND when there is no such dead letter, ECONFLICT when it was
// replayed.
func (s *Store) DeleteDeadLetter(ctx context.Context, id string) error {
	return s.tx(ctx, "delete_dead_letter", func(tx txn) error {
		var deliveryID string
		var replayed sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT delivery_id, replayed_at FROM dead_letters WHERE id = ?`, id).Scan(&deliveryID, &replayed)
		if errors.Is(err, sql.ErrNoRows) {
			return herald.Errorf(herald.ENOTFOUND, "dead letter %q not found", id)
		}
		if err != nil {
			return fmt.Errorf("store: delete dead letter: %w", err)
		}
		if replayed.Valid {
			// Its replay may still be on its way; the letter goes with its
			// alert (alerts.retention).
			return herald.Errorf(herald.ECONFLICT, "dead letter %s was replayed; only one waiting can be discarded", id)
		}
		// The delivery first, then the letter: the order the outcome group
		// commit locks them in (PostgreSQL), so the two cannot deadlock.
		if deliveryID != "" {
			if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET dead_letter_id = '' WHERE id = ? AND dead_letter_id = ?`,
				deliveryID, id); err != nil {
				return fmt.Errorf("store: delete dead letter: %w", err)
			}
		}
		// Not replayed meanwhile (the read above took no lock): the error
		// rolls the delivery's update back.
		res, err := tx.ExecContext(ctx, `DELETE FROM dead_letters WHERE id = ? AND replayed_at IS NULL`, id)
		if err != nil {
			return fmt.Errorf("store: delete dead letter: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("store: delete dead letter: %w", err)
		} else if n == 0 {
			return herald.Errorf(herald.ECONFLICT, "dead letter %s was replayed or discarded meanwhile", id)
		}
		return nil
	})
}

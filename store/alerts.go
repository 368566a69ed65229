package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/heraldproject/herald"
)

// Fanout is one alert with the deliveries the fan-out stage made for it.
type Fanout struct {
	Alert       *herald.Alert
	UserCount   int
	Unreachable []string
	Deliveries  []*herald.Delivery
}

// RecordFanouts stores each alert with its deliveries, all in one transaction.
// An alert already stored (a redelivered record) is left as it is, and its
// Deliveries are replaced by the stored ones so the caller hands on exactly
// what was recorded the first time.
func (s *Store) RecordFanouts(ctx context.Context, fs []*Fanout) error {
	now := nanos(s.now())
	return s.tx(ctx, "record_fanouts", func(tx txn) error {
		insAlert, err := tx.PrepareContext(ctx, `INSERT INTO alerts (id, severity, title, message, source, labels,
			targets, channels, user_count, unreachable, created_at, stored_at, idempotency_key) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)
			ON CONFLICT DO NOTHING`)
		if err != nil {
			return fmt.Errorf("store: record fanouts: %w", err)
		}
		defer insAlert.Close()
		insDelivery, err := tx.PrepareContext(ctx, `INSERT INTO deliveries (id, alert_id, recipient_id, recipient_name,
			channel, status, attempts, last_error, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)
			ON CONFLICT DO NOTHING`)
		if err != nil {
			return fmt.Errorf("store: record fanouts: %w", err)
		}
		defer insDelivery.Close()
		for _, f := range fs {
			a := f.Alert
			res, err := insAlert.ExecContext(ctx, a.ID, a.Severity, a.Title, a.Message, a.Source,
				jsonText(a.Labels, "{}"), jsonText(a.Targets, "[]"), jsonText(a.Channels, "[]"),
				f.UserCount, jsonText(f.Unreachable, "[]"), nanos(a.CreatedAt), now, a.IdempotencyKey)
			if err != nil {
				return fmt.Errorf("store: record alert %s: %w", a.ID, err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				f.Deliveries, err = queryDeliveries(ctx, tx, a.ID)
				if err != nil {
					return err
				}
				continue
			}
			for _, d := range f.Deliveries {
				d.CreatedAt, d.UpdatedAt = fromNanos(now), fromNanos(now)
				if d.Status == "" {
					d.Status = herald.StatusPending
				}
				if _, err := insDelivery.ExecContext(ctx, d.ID, d.AlertID, d.RecipientID, d.Recipient, d.Channel,
					d.Status, d.Attempts, d.LastError, now, now); err != nil {
					return fmt.Errorf("store: record delivery %s: %w", d.ID, err)
				}
			}
		}
		return nil
	})
}

func jsonText(v any, empty string) string {
	b, err := json.Marshal(v)
	if err != nil || string(b) == "null" {
		return empty
	}
	return string(b)
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

const deliveryColumns = `id, alert_id, recipient_id, recipient_name, channel, status, attempts, last_error,
	created_at, updated_at, sent_at, next_attempt_at, dead_letter_id, budget_base`

func scanDelivery(row scanner) (*herald.Delivery, error) {
	var d herald.Delivery
	var created, updated int64
	var sent, next sql.NullInt64
	if err := row.Scan(&d.ID, &d.AlertID, &d.RecipientID, &d.Recipient, &d.Channel, &d.Status, &d.Attempts,
		&d.LastError, &created, &updated, &sent, &next, &d.DeadLetterID, &d.BudgetBase); err != nil {
		return nil, err
	}
	d.CreatedAt, d.UpdatedAt = fromNanos(created), fromNanos(updated)
	d.SentAt, d.NextAttemptAt = fromNullNanos(sent), fromNullNanos(next)
	return &d, nil
}

func queryDeliveries(ctx context.Context, q querier, alertID string) ([]*herald.Delivery, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+deliveryColumns+` FROM deliveries WHERE alert_id = ?
		ORDER BY recipient_name, channel`, alertID)
	if err != nil {
		return nil, fmt.Errorf("store: deliveries of %s: %w", alertID, err)
	}
	defer rows.Close()
	var out []*herald.Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, fmt.Errorf("store: deliveries of %s: %w", alertID, err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

const alertColumns = `id, severity, title, message, source, labels, targets, channels, user_count, unreachable,
	created_at, stored_at`

func scanAlert(row scanner) (*herald.AlertRecord, error) {
	var a herald.AlertRecord
	var labels, targets, channels, unreachable string
	var created, stored int64
	if err := row.Scan(&a.ID, &a.Severity, &a.Title, &a.Message, &a.Source, &labels, &targets, &channels,
		&a.UserCount, &unreachable, &created, &stored); err != nil {
		return nil, err
	}
	a.CreatedAt, a.StoredAt = fromNanos(created), fromNanos(stored)
	err := errors.Join(
		json.Unmarshal([]byte(labels), &a.Labels),
		json.Unmarshal([]byte(targets), &a.Targets),
		json.Unmarshal([]byte(channels), &a.Channels),
		json.Unmarshal([]byte(unreachable), &a.Unreachable))
	if err != nil {
		return nil, fmt.Errorf("alert %s: %w", a.ID, err)
	}
	return &a, nil
}

// Alert returns the alert with its deliveries.
func (s *Store) Alert(ctx context.Context, id string) (*herald.AlertRecord, error) {
	a, err := scanAlert(s.r.QueryRowContext(ctx, `SELECT `+alertColumns+` FROM alerts WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("alert", id)
	}
	if err != nil {
		return nil, fmt.Errorf("store: alert: %w", err)
	}
	a.Deliveries, err = queryDeliveries(ctx, s.r, id)
	if err != nil {
		return nil, err
	}
	return a, nil
}

// AlertCursor marks a position in the newest-first alert list: the alert
// after which the next page starts.
type AlertCursor struct {
	CreatedAt time.Time
	ID        string
}

// ListAlerts returns up to limit alerts, newest first, starting after the
// cursor (nil for the first page). Deliveries are not loaded, but per-status
// delivery counts are.
func (s *Store) ListAlerts(ctx context.Context, after *AlertCursor, limit int) ([]*herald.AlertRecord, error) {
	q := `SELECT ` + alertColumns + ` FROM alerts`
	var args []any
	if after != nil {
		q += ` WHERE (created_at, id) < (?, ?)`
		args = append(args, nanos(after.CreatedAt), after.ID)
	}
	q += ` ORDER BY created_at DESC, id DESC LIMIT ?`
	args = append(args, limit)
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: list alerts: %w", err)
	}
	defer rows.Close()
	var out []*herald.AlertRecord
	for rows.Next() {
		a, err := scanAlert(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list alerts: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// DeliveryCounts returns, for each alert id, how many of its deliveries are in
// each status.
func (s *Store) DeliveryCounts(ctx context.Context, alertIDs []string) (map[string]map[herald.DeliveryStatus]int, error) {
	out := make(map[string]map[herald.DeliveryStatus]int, len(alertIDs))
	if len(alertIDs) == 0 {
		return out, nil
	}
	rows, err := s.r.QueryContext(ctx, `SELECT alert_id, status, COUNT(*) FROM deliveries WHERE alert_id IN (`+
		placeholders(len(alertIDs))+`) GROUP BY alert_id, status`, anys(alertIDs)...)
	if err != nil {
		return nil, fmt.Errorf("store: delivery counts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var st herald.DeliveryStatus
		var n int
		if err := rows.Scan(&id, &st, &n); err != nil {
			return nil, fmt.Errorf("store: delivery counts: %w", err)
		}
		if out[id] == nil {
			out[id] = make(map[herald.DeliveryStatus]int)
		}
		out[id][st] = n
	}
	return out, rows.Err()
}

// Delivery returns one delivery.
func (s *Store) Delivery(ctx context.Context, id string) (*herald.Delivery, error) {
	st, err := s.stmt(ctx, s.r, `SELECT `+deliveryColumns+` FROM deliveries WHERE id = ?`)
	if err != nil {
		return nil, fmt.Errorf("store: delivery: %w", err)
	}
	d, err := scanDelivery(st.QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("delivery", id)
	}
	if err != nil {
		return nil, fmt.Errorf("store: delivery: %w", err)
	}
	return d, nil
}

// DeliveryUpdate is the outcome of an attempt at a delivery.
type DeliveryUpdate struct {
	ID            string
	Status        herald.DeliveryStatus
	Attempts      int
	LastError     string
	SentAt        *time.Time
	NextAttemptAt *time.Time
	// BudgetBase, when set, moves the start of the retry budget (replay).
	BudgetBase *int
	// Attempt, when set, is added to the delivery's attempt history.
	Attempt *herald.Attempt
	// DeadLetter, when set, is recorded with the update (and named by the
	// delivery's deadLetterId).
	DeadLetter *herald.DeadLetter
}

// UpdateDeliveries records attempt outcomes, all in one transaction. A
// delivery already sent is never moved back to another status.
func (s *Store) UpdateDeliveries(ctx context.Context, us []DeliveryUpdate) error {
	now := nanos(s.now())
	// Prepared outside the transaction: SQLite's writer pool has one
	// connection, which the transaction holds.
	upd, err := s.stmt(ctx, s.w, `UPDATE deliveries SET status = ?, attempts = ?, last_error = ?,
		sent_at = COALESCE(?, sent_at), next_attempt_at = ?, updated_at = ?, dead_letter_id = ?,
		budget_base = COALESCE(?, budget_base) WHERE id = ? AND status <> 'sent'`)
	if err != nil {
		return fmt.Errorf("store: update deliveries: %w", err)
	}
	ins, err := s.stmt(ctx, s.w, `INSERT INTO delivery_attempts (delivery_id, attempt, at, error)
		VALUES (?,?,?,?) ON CONFLICT (delivery_id, attempt) DO UPDATE SET at = excluded.at, error = excluded.error`)
	if err != nil {
		return fmt.Errorf("store: update deliveries: %w", err)
	}
	return s.tx(ctx, "update_deliveries", func(tx txn) error {
		st, att := tx.StmtContext(ctx, upd), tx.StmtContext(ctx, ins)
		defer st.Close()
		defer att.Close()
		var dls []*herald.DeadLetter
		for _, u := range us {
			dlID := ""
			if u.DeadLetter != nil {
				dlID = u.DeadLetter.ID
				dls = append(dls, u.DeadLetter)
			}
			var base sql.NullInt64
			if u.BudgetBase != nil {
				base = sql.NullInt64{Int64: int64(*u.BudgetBase), Valid: true}
			}
			if _, err := st.ExecContext(ctx, u.Status, u.Attempts, u.LastError, nullNanos(u.SentAt),
				nullNanos(u.NextAttemptAt), now, dlID, base, u.ID); err != nil {
				return fmt.Errorf("store: update delivery %s: %w", u.ID, err)
			}
			if a := u.Attempt; a != nil {
				if _, err := att.ExecContext(ctx, u.ID, a.Attempt, nanos(a.At), a.Error); err != nil {
					return fmt.Errorf("store: record attempt of %s: %w", u.ID, err)
				}
			}
		}
		return insertDeadLetters(ctx, tx, dls, true)
	})
}

// Attempts returns a delivery's attempt history, oldest first.
func (s *Store) Attempts(ctx context.Context, deliveryID string) ([]herald.Attempt, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT attempt, at, error FROM delivery_attempts WHERE delivery_id = ?
		ORDER BY attempt`, deliveryID)
	if err != nil {
		return nil, fmt.Errorf("store: attempts: %w", err)
	}
	defer rows.Close()
	var out []herald.Attempt
	for rows.Next() {
		var a herald.Attempt
		var at int64
		if err := rows.Scan(&a.Attempt, &at, &a.Error); err != nil {
			return nil, fmt.Errorf("store: attempts: %w", err)
		}
		a.At = fromNanos(at)
		out = append(out, a)
	}
	return out, rows.Err()
}

// IdempotentAlert is the newest alert recorded for an Idempotency-Key.
type IdempotentAlert struct {
	ID        string
	UserCount int
	CreatedAt time.Time
}

// AlertByIdempotencyKey returns the newest alert recorded with the key, or
// nil.
func (s *Store) AlertByIdempotencyKey(ctx context.Context, key string) (*IdempotentAlert, error) {
	var a IdempotentAlert
	var created int64
	err := s.r.QueryRowContext(ctx, `SELECT id, user_count, created_at FROM alerts WHERE idempotency_key = ?
		ORDER BY created_at DESC LIMIT 1`, key).Scan(&a.ID, &a.UserCount, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: alert by idempotency key: %w", err)
	}
	a.CreatedAt = fromNanos(created)
	return &a, nil
}

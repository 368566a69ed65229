package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/bus"
)

// Fanout is one alert with the deliveries the fan-out stage made for it.
type Fanout struct {
	Alert       *herald.Alert
	UserCount   int
	Unreachable []string
	Deliveries  []*herald.Delivery
	// Continues says that more of the alert's deliveries follow in a later
	// call (an alert with many deliveries is recorded in parts): the alert
	// is stored as not yet fanned out until the call of its last part, so
	// a fan-out interrupted between parts is resumed when its record is
	// handled again, not taken as done.
	Continues bool
	// Continued says that an earlier call recorded the alert and its first
	// part: this call adds Deliveries to it (those already stored are left
	// alone) and, without Continues, marks it fanned out, with Unreachable
	// (which should then name everyone unreachable in all parts).
	Continued bool

	// Inserted is set by RecordFanouts when Deliveries are new and pending:
	// it stored the alert, or (Continued) Deliveries are the part's
	// deliveries it stored, those stored before dropped. False when the
	// alert was stored before (a redelivered record) and Deliveries are what
	// was stored then.
	Inserted bool
	// Resumed is set by RecordFanouts when the alert was stored by a fan-out
	// that did not record its last part: the part's deliveries were added,
	// and Deliveries are every delivery stored for the alert. False with
	// Inserted false means the alert was fanned out before: the caller
	// should skip the alert's later parts.
	//
	// Set by the caller with Continued, it says that the alert's first part
	// was resumed: the part's deliveries not stored yet are added, and
	// Deliveries become the stored versions of all of the part's (those the
	// first part handed on included: the caller drops them), since another
	// process resuming the same alert may have stored some meanwhile.
	Resumed bool
}

// RecordFanouts stores each alert with its deliveries, all in one transaction.
// An alert already stored (a redelivered record) is left as it is, and its
// Deliveries are replaced by the stored ones so the caller hands on exactly
// what was recorded the first time; an alert whose recording in parts was
// interrupted is resumed (see Fanout.Continues).
func (s *Store) RecordFanouts(ctx context.Context, fs []*Fanout) error {
	now := nanos(s.now())
	// A batch may hold one alert twice (a client retry with the same
	// Idempotency-Key): the first occurrence is recorded, later ones get
	// what it recorded.
	first := make(map[string]*Fanout, len(fs))
	var uniq []*Fanout
	for _, f := range fs {
		if _, dup := first[f.Alert.ID]; !dup {
			first[f.Alert.ID] = f
			uniq = append(uniq, f)
		}
	}
	// One lock order for every process (PostgreSQL: two owners of a
	// partition during a rebalance cannot deadlock), and ids next to each
	// other in the index.
	slices.SortFunc(uniq, func(a, b *Fanout) int { return strings.Compare(a.Alert.ID, b.Alert.ID) })
	var alertRows [][]any
	for _, f := range uniq {
		if f.Continued {
			continue
		}
		a := f.Alert
		alertRows = append(alertRows, []any{a.ID, a.Severity, a.Title, a.Message, a.Source,
			jsonObject(a.Labels), jsonArray(a.Targets), jsonArray(a.Channels),
			f.UserCount, jsonArray(f.Unreachable), nanos(a.CreatedAt), now, a.IdempotencyKey, boolInt(!f.Continues)})
	}
	const insertAlerts = `INSERT INTO alerts (id, severity, title, message, source, labels,
		targets, channels, user_count, unreachable, created_at, stored_at, idempotency_key, fanned_out) VALUES `
	insAlerts, err := s.multiRow(ctx, insertAlerts, 14, ` ON CONFLICT DO NOTHING RETURNING id`)
	if err != nil {
		return fmt.Errorf("store: record fanouts: %w", err)
	}
	addAlerts, err := s.multiRow(ctx, insertAlerts, 14, ` ON CONFLICT DO NOTHING`)
	if err != nil {
		return fmt.Errorf("store: record fanouts: %w", err)
	}
	insDeliveries, err := s.multiRow(ctx, `INSERT INTO deliveries (id, alert_id, recipient_id, recipient_name,
		channel, status, attempts, last_error, created_at, updated_at) VALUES `, 10, ` ON CONFLICT DO NOTHING`)
	if err != nil {
		return fmt.Errorf("store: record fanouts: %w", err)
	}
	// A later part's deliveries learn which were new: a resumed fan-out
	// stored some of them before.
	addDeliveries, err := s.multiRow(ctx, `INSERT INTO deliveries (id, alert_id, recipient_id, recipient_name,
		channel, status, attempts, last_error, created_at, updated_at) VALUES `, 10, ` ON CONFLICT DO NOTHING RETURNING id`)
	if err != nil {
		return fmt.Errorf("store: record fanouts: %w", err)
	}
	deliveryRows := func(ds []*herald.Delivery) [][]any {
		slices.SortFunc(ds, func(a, b *herald.Delivery) int { return strings.Compare(a.ID, b.ID) })
		rows := make([][]any, len(ds))
		for i, d := range ds {
			d.CreatedAt, d.UpdatedAt = fromNanos(now), fromNanos(now)
			if d.Status == "" {
				d.Status = herald.StatusPending
			}
			rows[i] = []any{d.ID, d.AlertID, d.RecipientID, d.Recipient, d.Channel,
				d.Status, d.Attempts, d.LastError, now, now}
		}
		return rows
	}
	record := func(tx txn, returning bool) error {
		inserted := make(map[string]bool, len(uniq))
		if returning {
			if err := insAlerts.query(ctx, tx, alertRows, scanIDs(inserted)); err != nil {
				return fmt.Errorf("store: record alerts: %w", err)
			}
		} else {
			// Nearly always every alert is new, and the count says so
			// without reading back an id per row.
			n, err := addAlerts.exec(ctx, tx, alertRows)
			if err != nil {
				return fmt.Errorf("store: record alerts: %w", err)
			}
			if n != int64(len(alertRows)) {
				return errStoredBefore
			}
			for _, r := range alertRows {
				inserted[r[0].(string)] = true
			}
		}
		var ds, added []*herald.Delivery
		var done []*Fanout    // alerts whose last part this is, after a first part stored before
		var resumed []*Fanout // later parts of resumed fan-outs
		for _, f := range uniq {
			switch {
			case f.Continued && f.Resumed:
				ds = append(ds, f.Deliveries...)
				resumed = append(resumed, f)
				if !f.Continues {
					done = append(done, f)
				}
			case f.Continued:
				f.Inserted = true
				added = append(added, f.Deliveries...)
				if !f.Continues {
					done = append(done, f)
				}
			case inserted[f.Alert.ID]:
				f.Inserted = true
				ds = append(ds, f.Deliveries...)
			default:
				if err := s.storedFanout(ctx, tx, f, insDeliveries, deliveryRows); err != nil {
					return err
				}
				if f.Resumed && !f.Continues {
					done = append(done, f)
				}
			}
		}
		if _, err := insDeliveries.exec(ctx, tx, deliveryRows(ds)); err != nil {
			return fmt.Errorf("store: record deliveries: %w", err)
		}
		if len(added) > 0 {
			isNew := make(map[string]bool, len(added))
			if err := addDeliveries.query(ctx, tx, deliveryRows(added), scanIDs(isNew)); err != nil {
				return fmt.Errorf("store: record deliveries: %w", err)
			}
			for _, f := range uniq {
				if f.Continued {
					f.Deliveries = slices.DeleteFunc(f.Deliveries, func(d *herald.Delivery) bool { return !isNew[d.ID] })
				}
			}
		}
		for _, f := range resumed {
			ids := make([]string, len(f.Deliveries))
			for i, d := range f.Deliveries {
				ids[i] = d.ID
			}
			stored, err := deliveriesIn(ctx, tx, ids)
			if err != nil {
				return err
			}
			f.Deliveries = stored
		}
		for _, f := range done {
			if _, err := tx.ExecContext(ctx, `UPDATE alerts SET fanned_out = 1, user_count = ?, unreachable = ?
				WHERE id = ?`, f.UserCount, jsonArray(f.Unreachable), f.Alert.ID); err != nil {
				return fmt.Errorf("store: record fanout of %s: %w", f.Alert.ID, err)
			}
		}
		return nil
	}
	err = s.tx(ctx, "record_fanouts", func(tx txn) error { return record(tx, false) })
	if errors.Is(err, errStoredBefore) {
		// A redelivered record: find out which alerts were stored before.
		err = s.tx(ctx, "record_fanouts", func(tx txn) error { return record(tx, true) })
	}
	if err != nil {
		return err
	}
	for _, f := range fs {
		if g := first[f.Alert.ID]; g != f {
			f.Deliveries = g.Deliveries // Inserted stays false: a second copy
		}
	}
	return nil
}

// errStoredBefore rolls back a fan-out transaction that found some of its
// alerts already stored, to be run again reading back which.
var errStoredBefore = errors.New("store: alerts stored before")

// deliveriesIn reads the stored deliveries with the given ids in tx, sorted
// by id.
func deliveriesIn(ctx context.Context, tx txn, ids []string) ([]*herald.Delivery, error) {
	var out []*herald.Delivery
	for chunk := range slices.Chunk(ids, 500) {
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		rows, err := tx.QueryContext(ctx, `SELECT `+deliveryColumns+` FROM deliveries WHERE id IN (`+
			placeholders(len(chunk))+`) ORDER BY id`, args...)
		if err != nil {
			return nil, fmt.Errorf("store: deliveries by id: %w", err)
		}
		ds, err := scanAll(rows, scanDelivery)
		if err != nil {
			return nil, fmt.Errorf("store: deliveries by id: %w", err)
		}
		out = append(out, ds...)
	}
	return out, nil
}

// scanIDs returns a scan function of multiRowStmt.query that adds each row's
// id (a RETURNING id) to ids.
func scanIDs(ids map[string]bool) func(*sql.Rows) error {
	return func(rows *sql.Rows) error {
		var id string
		if err := rows.Scan(&id); err != nil {
			return err
		}
		ids[id] = true
		return nil
	}
}

// storedFanout handles f, whose alert was stored before this call: fanned
// out, its Deliveries become the stored ones; interrupted between parts, the
// part's deliveries are added, Resumed is set, and Deliveries become every
// stored delivery of the alert.
func (s *Store) storedFanout(ctx context.Context, tx txn, f *Fanout, ins *multiRowStmt,
	rows func([]*herald.Delivery) [][]any) error {
	var fannedOut int
	if err := tx.QueryRowContext(ctx, `SELECT fanned_out FROM alerts WHERE id = ?`, f.Alert.ID).Scan(&fannedOut); err != nil {
		return fmt.Errorf("store: alert %s: %w", f.Alert.ID, err)
	}
	if fannedOut == 0 {
		f.Resumed = true
		if _, err := ins.exec(ctx, tx, rows(f.Deliveries)); err != nil {
			return fmt.Errorf("store: record deliveries: %w", err)
		}
	}
	var err error
	f.Deliveries, err = queryDeliveries(ctx, tx, f.Alert.ID)
	return err
}

// jsonObject is m as a JSON object, "{}" when empty: what encoding/json
// writes but for its HTML escapes, without its reflection (json.Marshal of
// an alert's labels, targets, channels and unreachable list was 1.6% of
// the CPU at one recipient: docs/BENCHMARKS.md).
func jsonObject(m map[string]string) string {
	if len(m) == 0 {
		return "{}"
	}
	n := 2
	for k, v := range m {
		n += len(k) + len(v) + 6
	}
	return string(bus.AppendStringMap(make([]byte, 0, n), m))
}

// jsonArray is ss as a JSON array of strings, "[]" when empty, as
// jsonObject writes them.
func jsonArray[S ~string](ss []S) string {
	if len(ss) == 0 {
		return "[]"
	}
	n := 2
	for _, s := range ss {
		n += len(s) + 3
	}
	return string(bus.AppendStrings(make([]byte, 0, n), ss))
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
	out, err := scanAll(rows, scanDelivery)
	if err != nil {
		return nil, fmt.Errorf("store: deliveries of %s: %w", alertID, err)
	}
	return out, nil
}

const alertColumns = `id, severity, title, message, source, labels, targets, channels, user_count, unreachable,
	created_at, stored_at, fanned_out`

func scanAlert(row scanner) (*herald.AlertRecord, error) {
	var a herald.AlertRecord
	var labels, targets, channels, unreachable string
	var created, stored int64
	var fannedOut int
	if err := row.Scan(&a.ID, &a.Severity, &a.Title, &a.Message, &a.Source, &labels, &targets, &channels,
		&a.UserCount, &unreachable, &created, &stored, &fannedOut); err != nil {
		return nil, err
	}
	a.FanningOut = fannedOut == 0
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
		// The API answers 202 once the alert is in Kafka; the fan-out stage
		// stores it a moment later (longer under a backlog).
		return nil, herald.Errorf(herald.ENOTFOUND, "alert %q not found: an alert accepted moments ago is here "+
			"once the fan-out stage has taken it (retry shortly); otherwise no such alert", id)
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
	out, err := scanAll(rows, scanAlert)
	if err != nil {
		return nil, fmt.Errorf("store: list alerts: %w", err)
	}
	return out, nil
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

// DeliveriesByID returns the deliveries with the given ids that exist, by id:
// one query per 500 ids, for a consumer reading a whole batch's state at once.
func (s *Store) DeliveriesByID(ctx context.Context, ids []string) (map[string]*herald.Delivery, error) {
	out := make(map[string]*herald.Delivery, len(ids))
	err := s.queryIn(ctx, s.r, `SELECT `+deliveryColumns+` FROM deliveries WHERE id IN `, ids, func(rows *sql.Rows) error {
		d, err := scanDelivery(rows)
		if err == nil {
			out[d.ID] = d
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: deliveries by id: %w", err)
	}
	return out, nil
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
	// ReplayOf names the dead letter whose replay this outcome is: a send
	// recorded before the replay is marked (deadletter.Replay marks it once
	// the record is produced) must not take it for one a duplicate left.
	ReplayOf string
}

// UpdateDeliveries records attempt outcomes, all in one transaction. A
// delivery already sent is never moved back to another status, and an
// outcome for one sent already (a duplicate send racing the one recorded)
// or no longer stored (its alert pruned by alerts.retention meanwhile)
// records nothing: no attempt and no dead letter, which would ask for a
// replay of a delivery that was made or is gone. When the send is recorded
// second, after the duplicate died, the dead letter it left is deleted
// unless it was replayed (deleteStaleDeadLetters), and the history shows the
// send (Attempts).
func (s *Store) UpdateDeliveries(ctx context.Context, us []DeliveryUpdate) error {
	_, err := s.updateDeliveries(ctx, us)
	return err
}

// ErrOutcomeSkipped is RecordDelivery's answer to an outcome it recorded
// nothing for: its delivery was sent already or is no longer stored (see
// UpdateDeliveries).
var ErrOutcomeSkipped = errors.New("store: outcome not recorded: the delivery was sent already or is gone")

// updateDeliveries is UpdateDeliveries, saying which outcomes it applied
// (applied[i] for us[i]).
func (s *Store) updateDeliveries(ctx context.Context, us []DeliveryUpdate) (applied []bool, err error) {
	now := nanos(s.now())
	if !s.w.pg {
		// In process, prepared one-row statements are cheaper than parsing
		// a multi-row statement per commit (measured: about 25% more
		// deliveries/s with BenchmarkDeliveries).
		return s.updateDeliveriesInOrder(ctx, us, now)
	}
	ids := make(map[string]bool, len(us))
	for _, u := range us {
		if ids[u.ID] {
			// Two outcomes for one delivery: apply them in order, one by one.
			return s.updateDeliveriesInOrder(ctx, us, now)
		}
		ids[u.ID] = true
	}
	// One lock order for every process, so two group commits that overlap
	// (two owners of a partition during a rebalance) cannot deadlock.
	sorted := slices.SortedFunc(slices.Values(us), func(a, b DeliveryUpdate) int { return strings.Compare(a.ID, b.ID) })
	updated := make(map[string]bool, len(us))
	err = s.tx(ctx, "update_deliveries", func(tx txn) error {
		// Multi-row statements on PostgreSQL: three round trips per 100
		// outcomes instead of three per outcome.
		var dls []*herald.DeadLetter
		for chunk := range slices.Chunk(sorted, 100) {
			if err := deleteStaleDeadLetters(ctx, tx, chunk); err != nil { // and locks the chunk
				return err
			}
			var upd, att strings.Builder
			var updArgs, attArgs []any
			upd.WriteString(`UPDATE deliveries SET status = v.column2, attempts = v.column3, last_error = v.column4,
				sent_at = COALESCE(v.column5, deliveries.sent_at), next_attempt_at = v.column6, updated_at = v.column7,
				dead_letter_id = v.column8, budget_base = COALESCE(v.column9, deliveries.budget_base) FROM (VALUES `)
			for i, u := range chunk {
				dlID, base := u.columns()
				if i > 0 {
					upd.WriteString(",")
				}
				upd.WriteString(`(CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS BIGINT),
					CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS BIGINT))`)
				updArgs = append(updArgs, u.ID, string(u.Status), u.Attempts, u.LastError, nullNanos(u.SentAt),
					nullNanos(u.NextAttemptAt), now, dlID, base)
			}
			upd.WriteString(`) AS v WHERE deliveries.id = v.column1 AND deliveries.status <> 'sent' RETURNING deliveries.id`)
			rows, err := tx.QueryContext(ctx, upd.String(), updArgs...)
			if err != nil {
				return fmt.Errorf("store: update deliveries: %w", err)
			}
			ids, err := scanColumn[string](rows)
			if err != nil {
				return fmt.Errorf("store: update deliveries: %w", err)
			}
			for _, id := range ids {
				updated[id] = true
			}
			for _, u := range chunk {
				if !updated[u.ID] {
					continue // sent already, or gone
				}
				if u.DeadLetter != nil {
					dls = append(dls, u.DeadLetter)
				}
				if a := u.Attempt; a != nil {
					if len(attArgs) > 0 {
						att.WriteString(",")
					}
					att.WriteString("(?,?,?,?)")
					attArgs = append(attArgs, u.ID, a.Attempt, nanos(a.At), a.Error)
				}
			}
			if len(attArgs) > 0 {
				if _, err := tx.ExecContext(ctx, `INSERT INTO delivery_attempts (delivery_id, attempt, at, error) VALUES `+
					att.String()+` ON CONFLICT (delivery_id, attempt) DO UPDATE SET at = excluded.at, error = excluded.error`,
					attArgs...); err != nil {
					return fmt.Errorf("store: record attempts: %w", err)
				}
			}
		}
		return insertDeadLetters(ctx, tx, dls, true)
	})
	if err != nil {
		return nil, err
	}
	applied = make([]bool, len(us))
	for i, u := range us {
		applied[i] = updated[u.ID]
	}
	return applied, nil
}

// deleteStaleDeadLetters reads the deliveries of outcomes about to be
// recorded and deletes the dead letters those being recorded sent name: one
// not replayed, and not the one the send replays (DeliveryUpdate.ReplayOf),
// was left by a duplicate send that died while another succeeded. A
// replayed one stays, as the history of the replay that made the send.
//
// On PostgreSQL it locks every delivery it reads, in id order (bytewise,
// COLLATE "C", as Go sorts the chunks), before anything is written: every
// group commit then takes its rows' locks in one global order, where the
// UPDATE alone promised none, and it sees a dead outcome another process
// committed while it waited, which a statement's snapshot would not. Rows
// are locked delivery first, dead letter second, as DeleteDeadLetter does.
func deleteStaleDeadLetters(ctx context.Context, tx txn, us []DeliveryUpdate) error {
	ids := make([]string, len(us))
	for i, u := range us {
		ids[i] = u.ID
	}
	lock := ``
	if tx.pg {
		lock = ` ORDER BY id COLLATE "C" FOR UPDATE`
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, status, dead_letter_id FROM deliveries WHERE id IN (`+
		placeholders(len(ids))+`)`+lock, anys(ids)...)
	if err != nil {
		return fmt.Errorf("store: update deliveries: %w", err)
	}
	named, err := scanAll(rows, func(row scanner) ([3]string, error) {
		var r [3]string
		return r, row.Scan(&r[0], &r[1], &r[2])
	})
	if err != nil {
		return fmt.Errorf("store: update deliveries: %w", err)
	}
	sends := make(map[string]string, len(us)) // delivery → the letter its send replays
	for _, u := range us {
		if u.Status == herald.StatusSent {
			sends[u.ID] = u.ReplayOf
		}
	}
	var stale []string
	for _, r := range named {
		id, status, dl := r[0], r[1], r[2]
		if replayOf, sending := sends[id]; sending && status != string(herald.StatusSent) && dl != "" && dl != replayOf {
			stale = append(stale, dl)
		}
	}
	if len(stale) == 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM dead_letters WHERE id IN (`+placeholders(len(stale))+
		`) AND replayed_at IS NULL`, anys(stale)...); err != nil {
		return fmt.Errorf("store: update deliveries: %w", err)
	}
	return nil
}

// columns are the dead letter id and budget base columns of an outcome.
func (u DeliveryUpdate) columns() (deadLetterID string, budgetBase sql.NullInt64) {
	if u.DeadLetter != nil {
		deadLetterID = u.DeadLetter.ID
	}
	if u.BudgetBase != nil {
		budgetBase = sql.NullInt64{Int64: int64(*u.BudgetBase), Valid: true}
	}
	return deadLetterID, budgetBase
}

// updateDeliveriesInOrder applies outcomes one prepared statement at a time,
// in order: on SQLite, and for a group commit holding more than one outcome
// of a delivery.
func (s *Store) updateDeliveriesInOrder(ctx context.Context, us []DeliveryUpdate, now int64) (applied []bool, err error) {
	// Prepared outside the transaction: SQLite's writer pool has one
	// connection, which the transaction holds.
	upd, err := s.stmt(ctx, s.w, `UPDATE deliveries SET status = ?, attempts = ?, last_error = ?,
		sent_at = COALESCE(?, sent_at), next_attempt_at = ?, updated_at = ?, dead_letter_id = ?,
		budget_base = COALESCE(?, budget_base) WHERE id = ? AND status <> 'sent'`)
	if err != nil {
		return nil, fmt.Errorf("store: update deliveries: %w", err)
	}
	ins, err := s.stmt(ctx, s.w, `INSERT INTO delivery_attempts (delivery_id, attempt, at, error)
		VALUES (?,?,?,?) ON CONFLICT (delivery_id, attempt) DO UPDATE SET at = excluded.at, error = excluded.error`)
	if err != nil {
		return nil, fmt.Errorf("store: update deliveries: %w", err)
	}
	// The common outcome, a send that succeeded with nothing else to
	// record, has a statement of its own: five values to bind instead of
	// nine (BenchmarkSentOutcomes: +15%). It writes what upd would, to a
	// delivery without a dead letter; the rest take upd's way.
	sentStmt, err := s.stmt(ctx, s.w, `UPDATE deliveries SET status = 'sent', attempts = ?, last_error = ?, sent_at = ?,
		next_attempt_at = NULL, updated_at = ?, dead_letter_id = '' WHERE id = ? AND status <> 'sent' AND dead_letter_id = ''`)
	if err != nil {
		return nil, fmt.Errorf("store: update deliveries: %w", err)
	}
	applied = make([]bool, len(us))
	err = s.tx(ctx, "update_deliveries", func(tx txn) error {
		st, att, sent := tx.StmtContext(ctx, upd), tx.StmtContext(ctx, ins), tx.StmtContext(ctx, sentStmt)
		defer st.Close()
		defer att.Close()
		defer sent.Close()
		var dls *sql.Stmt // prepared at the first dead letter
		defer func() {
			if dls != nil {
				dls.Close()
			}
		}()
		for i, u := range us {
			if u.Status == herald.StatusSent && u.SentAt != nil && u.DeadLetter == nil && u.BudgetBase == nil &&
				u.NextAttemptAt == nil && u.Attempt == nil {
				res, err := sent.ExecContext(ctx, u.Attempts, u.LastError, nanos(*u.SentAt), now, u.ID)
				if err != nil {
					return fmt.Errorf("store: update delivery %s: %w", u.ID, err)
				}
				if n, err := res.RowsAffected(); err != nil {
					return fmt.Errorf("store: update delivery %s: %w", u.ID, err)
				} else if n == 1 {
					applied[i] = true
					continue
				}
				// Sent already, gone, or with a dead letter: upd's way.
			}
			if u.Status == herald.StatusSent {
				if err := deleteStaleDeadLetters(ctx, tx, []DeliveryUpdate{u}); err != nil {
					return err
				}
			}
			dlID, base := u.columns()
			res, err := st.ExecContext(ctx, u.Status, u.Attempts, u.LastError, nullNanos(u.SentAt),
				nullNanos(u.NextAttemptAt), now, dlID, base, u.ID)
			if err != nil {
				return fmt.Errorf("store: update delivery %s: %w", u.ID, err)
			}
			if n, err := res.RowsAffected(); err != nil {
				return fmt.Errorf("store: update delivery %s: %w", u.ID, err)
			} else if n == 0 {
				continue // sent already, or gone: see UpdateDeliveries
			}
			applied[i] = true
			if u.DeadLetter != nil {
				// Now, not after the loop: a send of the delivery later in
				// this call deletes it (deleteStaleDeadLetters).
				if dls == nil {
					if dls, err = prepareDeadLetterInsert(ctx, tx, true); err != nil {
						return err
					}
				}
				if err := execDeadLetterInsert(ctx, dls, u.DeadLetter); err != nil {
					return err
				}
			}
			if a := u.Attempt; a != nil {
				if _, err := att.ExecContext(ctx, u.ID, a.Attempt, nanos(a.At), a.Error); err != nil {
					return fmt.Errorf("store: record attempt of %s: %w", u.ID, err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return applied, nil
}

// Attempts returns a delivery's attempt history, oldest first. A failed
// attempt has a row of its own; the attempt that succeeded is the delivery's
// own record (attempts and sent_at), so a send costs one write, not two.
func (s *Store) Attempts(ctx context.Context, deliveryID string) ([]herald.Attempt, error) {
	// A failed attempt numbered as the send (a duplicate that failed while
	// the send succeeded) gives way to the send.
	rows, err := s.r.QueryContext(ctx, `SELECT attempt, at, error FROM delivery_attempts a WHERE delivery_id = ?
			AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.id = a.delivery_id AND d.status = 'sent'
				AND d.sent_at IS NOT NULL AND d.attempts = a.attempt)
		UNION ALL
		SELECT attempts, sent_at, '' FROM deliveries WHERE id = ? AND status = 'sent' AND sent_at IS NOT NULL
		ORDER BY 1`, deliveryID, deliveryID)
	if err != nil {
		return nil, fmt.Errorf("store: attempts: %w", err)
	}
	out, err := scanAll(rows, func(row scanner) (herald.Attempt, error) {
		var a herald.Attempt
		var at int64
		err := row.Scan(&a.Attempt, &at, &a.Error)
		a.At = fromNanos(at)
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: attempts: %w", err)
	}
	return out, nil
}

// IdempotentAlert is the newest alert recorded for an Idempotency-Key.
type IdempotentAlert struct {
	ID        string
	UserCount int
	CreatedAt time.Time
	// Alert is what was recorded (AlertByIdempotencyKey only; nil from
	// AlertsByIdempotencyKeys), so a request reusing the key can be told
	// apart from a retry of the first.
	Alert *herald.Alert
}

// idempotencyNamespace derives alert ids from idempotency keys.
var idempotencyNamespace = uuid.MustParse("8d3c8f0e-3b7a-4f45-9b1e-6a0f4c2d7e55")

// IdempotentAlertID is the alert id for an idempotency key. The same key
// yields the same id until an alert with it is recorded, so concurrent
// retries collapse into one alert (the fan-out stage stores an id once);
// after the idempotency window, prev (the last alert recorded with the key,
// from AlertsByIdempotencyKeys) chains a new id. prev may be nil.
func IdempotentAlertID(key string, prev *IdempotentAlert) string {
	seed := key
	if prev != nil {
		seed += "\x00" + prev.ID
	}
	return uuid.NewSHA1(idempotencyNamespace, []byte(seed)).String()
}

// keyed is the condition of the partial index alerts_idempotency. A query by
// idempotency key states it too: SQLite uses a partial index only when the
// query's WHERE implies the index's, and `idempotency_key = ?` alone does not
// imply `<> ”` (without it every keyed request scanned the alerts table).
const keyed = `idempotency_key <> ''`

// AlertByIdempotencyKey returns the newest alert recorded with the key, with
// its content, or nil.
func (s *Store) AlertByIdempotencyKey(ctx context.Context, key string) (*IdempotentAlert, error) {
	as, err := s.AlertsWithIdempotencyKey(ctx, key, time.Time{}, 1)
	if err != nil || len(as) == 0 {
		return nil, err
	}
	return as[0], nil
}

// AlertsWithIdempotencyKey returns the newest limit alerts recorded with the
// key since since, newest first, with their content. More than one is rare:
// different alerts sent with one key before the first was recorded.
func (s *Store) AlertsWithIdempotencyKey(ctx context.Context, key string, since time.Time, limit int) ([]*IdempotentAlert, error) {
	q, args := `SELECT id, severity, title, message, source, labels, targets, channels, user_count,
		created_at FROM alerts WHERE idempotency_key = ? AND `+keyed, []any{key}
	if !since.IsZero() {
		q += ` AND created_at >= ?`
		args = append(args, nanos(since))
	}
	rows, err := s.r.QueryContext(ctx, q+` ORDER BY created_at DESC LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("store: alerts by idempotency key: %w", err)
	}
	out, err := scanAll(rows, func(row scanner) (*IdempotentAlert, error) {
		a := IdempotentAlert{Alert: &herald.Alert{IdempotencyKey: key}}
		var labels, targets, channels string
		var created int64
		if err := row.Scan(&a.ID, &a.Alert.Severity, &a.Alert.Title, &a.Alert.Message, &a.Alert.Source, &labels,
			&targets, &channels, &a.UserCount, &created); err != nil {
			return nil, err
		}
		if err := errors.Join(json.Unmarshal([]byte(labels), &a.Alert.Labels), json.Unmarshal([]byte(targets), &a.Alert.Targets),
			json.Unmarshal([]byte(channels), &a.Alert.Channels)); err != nil {
			return nil, err
		}
		a.CreatedAt = fromNanos(created)
		a.Alert.ID, a.Alert.CreatedAt = a.ID, a.CreatedAt
		return &a, nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: alerts by idempotency key: %w", err)
	}
	return out, nil
}

// AlertsByIdempotencyKeys is AlertByIdempotencyKey for many keys at once: for
// each key with an alert recorded, the newest such alert. Keys with none are
// absent from the map.
func (s *Store) AlertsByIdempotencyKeys(ctx context.Context, keys []string) (map[string]*IdempotentAlert, error) {
	out := make(map[string]*IdempotentAlert, len(keys))
	const chunk = 500 // well under every dialect's bound on parameters
	for keys := range slices.Chunk(keys, chunk) {
		rows, err := s.r.QueryContext(ctx, `SELECT idempotency_key, id, user_count, created_at FROM alerts
			WHERE idempotency_key IN (`+placeholders(len(keys))+`) AND `+keyed, anys(keys)...)
		if err != nil {
			return nil, fmt.Errorf("store: alerts by idempotency keys: %w", err)
		}
		for rows.Next() {
			var key string
			var a IdempotentAlert
			var created int64
			if err := rows.Scan(&key, &a.ID, &a.UserCount, &created); err != nil {
				rows.Close()
				return nil, fmt.Errorf("store: alerts by idempotency keys: %w", err)
			}
			a.CreatedAt = fromNanos(created)
			if prev := out[key]; prev == nil || a.CreatedAt.After(prev.CreatedAt) {
				out[key] = &a
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("store: alerts by idempotency keys: %w", err)
		}
	}
	return out, nil
}

// alertDone is the condition, on alert a, for pruning it at cutoff (each of
// its three parameters): it was stored before cutoff, fanned out in full,
// none of its dead letters waits to be replayed or was replayed since cutoff
// (the replayed delivery may still be on its way), and no delivery of it is
// pending or waiting for a retry or has changed since cutoff. An alert is
// kept for the retention after it was done, not after it was accepted. The
// dead letters are checked first: an alert kept for an unreplayed one is
// passed over without reading its deliveries.
const alertDone = `a.stored_at < ? AND a.fanned_out = 1
	AND NOT EXISTS (SELECT 1 FROM dead_letters dl WHERE dl.alert_id = a.id
		AND (dl.replayed_at IS NULL OR dl.replayed_at >= ?))
	AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.alert_id = a.id
		AND (d.status IN ('pending', 'failed') OR d.updated_at >= ?))`

// channelsPerUser bounds the deliveries an alert has per recipient, for
// sizing prune transactions from alerts.user_count.
const channelsPerUser = 4

// PruneAlerts deletes the alerts done before cutoff (alertDone) with their
// deliveries, attempt history and dead letters, oldest first: at most batch
// alerts (default 1,000) and, counted from their recipients, about five
// times as many deliveries per transaction; an alert with more (a big group)
// has its dead letters and deliveries deleted in transactions of their own
// first. An alert still being delivered or retried, or with a dead letter not
// replayed, is kept however old, and does not hold back the ones after it.
// It returns how many alerts it deleted.
func (s *Store) PruneAlerts(ctx context.Context, cutoff time.Time, batch int) (int, error) {
	if batch <= 0 {
		batch = 1000
	}
	maxRows := 5 * batch
	c := nanos(cutoff)
	total := 0
	type candidate struct {
		id      string
		created int64
		rows    int
	}
	var after *candidate // the walk goes on from here: alerts kept are read once a call
	for {
		// Chosen on a reader, so the walk past alerts kept does not hold
		// the writer; checked again in the transaction.
		q, args := `SELECT a.id, a.created_at, a.user_count FROM alerts a WHERE a.created_at < ?`, []any{c}
		if after != nil {
			q += ` AND (a.created_at, a.id) > (?, ?)`
			args = append(args, after.created, after.id)
		}
		rows, err := s.r.QueryContext(ctx, q+` AND `+alertDone+` ORDER BY a.created_at, a.id LIMIT ?`,
			append(args, c, c, c, batch)...)
		if err != nil {
			return total, fmt.Errorf("store: prune alerts: %w", err)
		}
		cands, err := scanAll(rows, func(row scanner) (c candidate, err error) {
			err = row.Scan(&c.id, &c.created, &c.rows)
			c.rows = max(c.rows, 1) * channelsPerUser
			return c, err
		})
		if err != nil {
			return total, fmt.Errorf("store: prune alerts: %w", err)
		}
		if len(cands) == 0 {
			return total, nil
		}
		var ids []string
		for i, rows := 0, 0; i < len(cands) && (i == 0 || rows+cands[i].rows <= maxRows); i++ {
			ids, rows, after = append(ids, cands[i].id), rows+cands[i].rows, &cands[i]
		}
		if len(ids) == 1 && cands[0].rows > maxRows {
			if err := s.pruneDeliveries(ctx, ids[0], c, maxRows); err != nil {
				return total, err
			}
		}
		var n int
		err = s.tx(ctx, "prune_alerts", func(tx txn) error {
			rows, err := tx.QueryContext(ctx, `SELECT a.id FROM alerts a WHERE a.id IN (`+placeholders(len(ids))+`) AND `+alertDone,
				append(anys(ids), c, c, c)...)
			if err != nil {
				return err
			}
			done, err := scanColumn[string](rows)
			if err != nil || len(done) == 0 {
				return err
			}
			in := placeholders(len(done))
			for _, q := range []string{
				`DELETE FROM delivery_attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE alert_id IN (` + in + `))`,
				`DELETE FROM dead_letters WHERE alert_id IN (` + in + `)`,
				`DELETE FROM deliveries WHERE alert_id IN (` + in + `)`,
			} {
				if _, err := tx.ExecContext(ctx, q, anys(done)...); err != nil {
					return err
				}
			}
			res, err := tx.ExecContext(ctx, `DELETE FROM alerts WHERE id IN (`+in+`)`, anys(done)...)
			if err != nil {
				return err
			}
			deleted, err := res.RowsAffected()
			n = int(deleted)
			return err
		})
		if err != nil {
			return total, fmt.Errorf("store: prune alerts: %w", err)
		}
		total += n
		if len(cands) < batch && len(ids) == len(cands) {
			return total, nil
		}
		if err := ctx.Err(); err != nil {
			return total, err
		}
	}
}

// pruneDeliveries deletes the dead letters, then the deliveries (with their
// attempts) of alert id, if it is done at cutoff c, chunk at a time, each
// chunk a transaction: an alert to a big group is pruned without one
// transaction holding the writer for all of its rows. PruneAlerts deletes
// the alert after, once it has checked it is still done.
func (s *Store) pruneDeliveries(ctx context.Context, id string, c int64, chunk int) error {
	var done int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM alerts a WHERE a.id = ? AND `+alertDone,
		id, c, c, c).Scan(&done); err != nil {
		return fmt.Errorf("store: prune deliveries of alert %s: %w", id, err)
	}
	if done == 0 {
		return nil
	}
	// Each step chooses a chunk of ids, then runs its deletes (each ending
	// in an IN list) on them.
	for _, step := range []struct {
		choose string
		dels   []string
	}{
		{`SELECT id FROM dead_letters WHERE alert_id = ? LIMIT ?`, []string{`DELETE FROM dead_letters WHERE id IN (`}},
		{`SELECT id FROM deliveries WHERE alert_id = ? LIMIT ?`,
			[]string{`DELETE FROM delivery_attempts WHERE delivery_id IN (`, `DELETE FROM deliveries WHERE id IN (`}},
	} {
		_, err := s.inBatches(ctx, "prune_alerts", chunk, func(tx txn) (int, error) {
			rows, err := tx.QueryContext(ctx, step.choose, id, chunk)
			if err != nil {
				return 0, err
			}
			ids, err := scanColumn[string](rows)
			if err != nil || len(ids) == 0 {
				return 0, err
			}
			for _, del := range step.dels {
				if _, err := tx.ExecContext(ctx, del+placeholders(len(ids))+`)`, anys(ids)...); err != nil {
					return 0, err
				}
			}
			return len(ids), nil
		})
		if err != nil {
			return fmt.Errorf("store: prune deliveries of alert %s: %w", id, err)
		}
	}
	return nil
}

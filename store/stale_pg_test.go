package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/internal/testpg"
	"github.com/heraldproject/herald/store"
)

// TestStaleDeadLetterConcurrent (PostgreSQL): a duplicate's dead outcome,
// committed by another process while the send's outcome waits for the
// delivery's row lock, leaves no dead letter behind: the group commit reads
// the delivery after it has the lock, not from its statement's snapshot.
func TestStaleDeadLetterConcurrent(t *testing.T) {
	ctx := context.Background()
	dsn := testpg.DSN(t)
	s, err := store.Open(ctx, store.Options{Driver: "postgres", DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now().UTC()
	if err := s.RecordFanouts(ctx, []*store.Fanout{{Alert: &herald.Alert{ID: "a1", Severity: herald.SeverityError,
		Message: "m", CreatedAt: now}, UserCount: 1, Deliveries: []*herald.Delivery{{ID: "d1", AlertID: "a1",
		RecipientID: "u1", Recipient: "alice", Channel: herald.ChannelWebhook}}}}); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// The other process's dead outcome, not committed yet.
	other, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Rollback()
	for _, q := range []string{
		`UPDATE deliveries SET status = 'dead', attempts = 1, dead_letter_id = 'x2' WHERE id = 'd1'`,
		`INSERT INTO dead_letters (id, kind, delivery_id, alert_id, channel, recipient_id, recipient_name, reason, attempts,
			source, record_key, payload, created_at, replayed_at, replay_count)
			VALUES ('x2', 'delivery', 'd1', 'a1', 'webhook', 'u1', 'alice', 'HTTP 404', 1, '', '', '', 1, NULL, 0)`,
	} {
		if _, err := other.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	var otherPID int
	if err := other.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&otherPID); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- s.UpdateDeliveries(ctx, []store.DeliveryUpdate{{ID: "d1", Status: herald.StatusSent, Attempts: 1, SentAt: &now}})
	}()
	// Commit only once the send's outcome waits for the row lock.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var waiting int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE $1 = ANY(pg_blocking_pids(pid))`, otherPID).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the send's outcome did not wait for the dead outcome's lock: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the send's outcome never waited for the lock")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := other.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	d, err := s.Delivery(ctx, "d1")
	if err != nil || d.Status != herald.StatusSent || d.DeadLetterID != "" {
		t.Fatalf("delivery %+v, %v", d, err)
	}
	if dl, err := s.DeadLetter(ctx, "x2"); herald.ErrorCode(err) != herald.ENOTFOUND {
		t.Fatalf("the duplicate's dead letter stayed: %+v, %v", dl, err)
	}
}

// TestOutcomeCommitsOverlap (PostgreSQL): two processes' group commits over
// the same deliveries (two owners of a partition during a rebalance), one
// sending what the other failed, never deadlock: every commit locks all its
// rows in one order before it writes any.
func TestOutcomeCommitsOverlap(t *testing.T) {
	ctx := context.Background()
	dsn := testpg.DSN(t)
	open := func() *store.Store {
		s, err := store.Open(ctx, store.Options{Driver: "postgres", DSN: dsn})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b := open(), open()
	const n = 60
	now := time.Now().UTC()
	for round := range 30 {
		alert := fmt.Sprintf("a%02d", round)
		fo := &store.Fanout{Alert: &herald.Alert{ID: alert, Severity: herald.SeverityError, Message: "m", CreatedAt: now},
			UserCount: n}
		for i := range n {
			fo.Deliveries = append(fo.Deliveries, &herald.Delivery{ID: fmt.Sprintf("%s-%03d", alert, i), AlertID: alert,
				RecipientID: fmt.Sprint("u", i), Recipient: "x", Channel: herald.ChannelWebhook})
		}
		if err := a.RecordFanouts(ctx, []*store.Fanout{fo}); err != nil {
			t.Fatal(err)
		}
		outcomes := func(side int) []store.DeliveryUpdate {
			us := make([]store.DeliveryUpdate, n)
			for i := range us {
				us[i] = store.DeliveryUpdate{ID: fmt.Sprintf("%s-%03d", alert, i), Status: herald.StatusFailed, Attempts: 1}
				if (i+side)%2 == 0 {
					us[i].Status, us[i].SentAt = herald.StatusSent, &now
				}
			}
			return us
		}
		errs := make(chan error, 2)
		for side, s := range []*store.Store{a, b} {
			go func() { errs <- s.UpdateDeliveries(ctx, outcomes(side)) }()
		}
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	}
}

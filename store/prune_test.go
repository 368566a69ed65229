package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/store"
)

// TestPruneAlerts: alerts done before the cutoff go, with their deliveries,
// attempt history and dead letters; an alert still being delivered (pending,
// waiting for a retry), still being fanned out, done only after the cutoff
// (retention counts from done, not from accepted), or with a dead letter not
// replayed (or replayed after the cutoff) stays, and does not hold back the
// done ones behind it. An alert with more deliveries than a transaction
// takes (a big group) is pruned in several.
func TestPruneAlerts(t *testing.T) {
	ctx := context.Background()
	cutoff := time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)
	var clock time.Time
	forEachBackendAt(t, func() time.Time { return clock }, func(t *testing.T, s *store.Store) {
		type outcome struct {
			status herald.DeliveryStatus
			at     time.Duration // after the alert was accepted
		}
		// In creation order, so the kept ones sit in front of the pruned.
		alerts := []struct {
			id       string
			age      time.Duration // accepted this long before the cutoff; negative: after it
			outcomes []outcome
			replayed time.Duration // the dead letter replayed this long after acceptance (0: never)
			fanning  bool
			pruned   bool
		}{
			{"a00-pending", 9 * time.Hour, []outcome{{herald.StatusSent, time.Minute}, {herald.StatusPending, 0}}, 0, false, false},
			{"a01-retrying", 8 * time.Hour, []outcome{{herald.StatusFailed, time.Minute}}, 0, false, false},
			{"a02-fanning", 7 * time.Hour, []outcome{{herald.StatusSent, time.Minute}}, 0, true, false},
			{"a03-dead", 6 * time.Hour, []outcome{{herald.StatusDead, time.Minute}}, 0, false, false},
			{"a04-replayed-late", 6 * time.Hour, []outcome{{herald.StatusDead, time.Minute}}, 7 * time.Hour, false, false},
			{"a05-done-late", 5 * time.Hour, []outcome{{herald.StatusSent, 6 * time.Hour}}, 0, false, false},
			{"a06-sent", 4 * time.Hour, []outcome{{herald.StatusSent, time.Minute}, {herald.StatusSent, time.Hour}}, 0, false, true},
			{"a07-replayed", 3 * time.Hour, []outcome{{herald.StatusDead, time.Minute}, {herald.StatusSent, time.Minute}}, time.Hour, false, true},
			{"a08-big", 2 * time.Hour, make12(outcome{herald.StatusSent, time.Minute}), 0, false, true},
			{"a09-none", time.Hour, nil, 0, false, true}, // nobody reachable: no deliveries at all
			{"a10-new", -time.Hour, []outcome{{herald.StatusSent, time.Minute}}, 0, false, false},
		}
		for _, a := range alerts {
			accepted := cutoff.Add(-a.age)
			clock = accepted
			al := &herald.Alert{ID: a.id, Severity: herald.SeverityError, Message: "m", Targets: []string{"@x"},
				IdempotencyKey: "key-" + a.id, CreatedAt: accepted}
			f := &store.Fanout{Alert: al, UserCount: len(a.outcomes), Continues: a.fanning}
			for i := range a.outcomes {
				f.Deliveries = append(f.Deliveries, &herald.Delivery{ID: fmt.Sprint(a.id, "-d", i), AlertID: a.id,
					RecipientID: fmt.Sprint("u", i), Recipient: fmt.Sprint("user", i), Channel: herald.ChannelWebhook})
			}
			if err := s.RecordFanouts(ctx, []*store.Fanout{f}); err != nil {
				t.Fatal(err)
			}
			for i, o := range a.outcomes {
				if o.status == herald.StatusPending {
					continue
				}
				clock = accepted.Add(o.at)
				id := fmt.Sprint(a.id, "-d", i)
				u := store.DeliveryUpdate{ID: id, Status: o.status, Attempts: 1,
					Attempt: &herald.Attempt{Attempt: 1, At: clock, Error: "HTTP 500"}}
				switch o.status {
				case herald.StatusFailed:
					next := clock.Add(time.Hour)
					u.NextAttemptAt = &next
				case herald.StatusDead:
					u.DeadLetter = &herald.DeadLetter{ID: "dl-" + id, Kind: herald.DeadDelivery, DeliveryID: id, AlertID: a.id,
						Channel: herald.ChannelWebhook, Reason: "gave up", Attempts: 1, CreatedAt: clock}
				case herald.StatusSent:
					u.Attempt, u.SentAt = nil, &clock
				}
				if err := s.UpdateDeliveries(ctx, []store.DeliveryUpdate{u}); err != nil {
					t.Fatal(err)
				}
				if o.status == herald.StatusDead && a.replayed > 0 {
					clock = accepted.Add(a.replayed)
					if err := s.MarkReplayed(ctx, "dl-"+id); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		clock = cutoff.Add(2 * time.Hour)
		n, err := s.PruneAlerts(ctx, cutoff, 2) // 2 alerts, 10 deliveries a transaction: a08-big takes two of its own
		if err != nil || n != 4 {
			t.Fatalf("PruneAlerts = %d, %v; want 4", n, err)
		}
		for _, a := range alerts {
			_, err := s.Alert(ctx, a.id)
			gone := herald.ErrorCode(err) == herald.ENOTFOUND
			if err != nil && !gone {
				t.Fatal(err)
			}
			if gone != a.pruned {
				t.Errorf("%s: pruned %v, want %v", a.id, gone, a.pruned)
			}
			prev, err := s.AlertByIdempotencyKey(ctx, "key-"+a.id)
			if err != nil || (prev == nil) != a.pruned {
				t.Errorf("%s: by idempotency key %+v, %v", a.id, prev, err)
			}
			for i, o := range a.outcomes {
				id := fmt.Sprint(a.id, "-d", i)
				_, err := s.Delivery(ctx, id)
				if (herald.ErrorCode(err) == herald.ENOTFOUND) != a.pruned {
					t.Errorf("delivery %s: %v, want pruned %v", id, err, a.pruned)
				}
				if o.status == herald.StatusFailed || o.status == herald.StatusDead {
					at, err := s.Attempts(ctx, id)
					if err != nil || (len(at) == 0) != a.pruned {
						t.Errorf("attempts of %s: %v, %v; want pruned %v", id, at, err, a.pruned)
					}
				}
				if o.status == herald.StatusDead {
					_, err := s.DeadLetter(ctx, "dl-"+id)
					if (herald.ErrorCode(err) == herald.ENOTFOUND) != a.pruned {
						t.Errorf("dead letter of %s: %v, want pruned %v", id, err, a.pruned)
					}
				}
			}
		}
		if n, err := s.PruneAlerts(ctx, cutoff, 0); err != nil || n != 0 {
			t.Fatalf("again: %d, %v; want nothing left to prune", n, err)
		}
		// Later, the alert done late, the one replayed late and the new
		// one are due too.
		if n, err := s.PruneAlerts(ctx, cutoff.Add(2*time.Hour), 0); err != nil || n != 3 {
			t.Fatalf("a later cutoff: %d, %v; want a04-replayed-late, a05-done-late and a10-new", n, err)
		}
	})
}

func make12[T any](v T) []T {
	out := make([]T, 12)
	for i := range out {
		out[i] = v
	}
	return out
}

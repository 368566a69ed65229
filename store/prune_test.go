package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/store"
)

// TestPruneAlerts: alerts older than the cutoff that are done go, with their
// deliveries, attempt history and dead letters; an old alert still being
// delivered (pending, waiting for a retry) or still being fanned out stays
// and does not hold back the done ones behind it; newer alerts stay.
func TestPruneAlerts(t *testing.T) {
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		cutoff := time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)
		// In creation order; batch 1 makes the kept ones sit in front of
		// the pruned ones.
		alerts := []struct {
			id       string
			age      time.Duration // before the cutoff; negative: after it
			statuses []herald.DeliveryStatus
			fanning  bool
			pruned   bool
		}{
			{"a0-pending", 5 * time.Hour, []herald.DeliveryStatus{herald.StatusSent, herald.StatusPending}, false, false},
			{"a1-retrying", 4 * time.Hour, []herald.DeliveryStatus{herald.StatusFailed}, false, false},
			{"a2-fanning", 3 * time.Hour, []herald.DeliveryStatus{herald.StatusSent}, true, false},
			{"a3-sent", 2 * time.Hour, []herald.DeliveryStatus{herald.StatusSent, herald.StatusSent}, false, true},
			{"a4-dead", time.Hour, []herald.DeliveryStatus{herald.StatusDead, herald.StatusSent}, false, true},
			{"a5-none", time.Minute, nil, false, true}, // nobody reachable: no deliveries at all
			{"a6-new", -time.Hour, []herald.DeliveryStatus{herald.StatusSent}, false, false},
		}
		for _, a := range alerts {
			al := &herald.Alert{ID: a.id, Severity: herald.SeverityError, Message: "m", Targets: []string{"@x"},
				IdempotencyKey: "key-" + a.id, CreatedAt: cutoff.Add(-a.age)}
			f := &store.Fanout{Alert: al, UserCount: len(a.statuses), Continues: a.fanning}
			for i := range a.statuses {
				f.Deliveries = append(f.Deliveries, &herald.Delivery{ID: fmt.Sprint(a.id, "-d", i), AlertID: a.id,
					RecipientID: fmt.Sprint("u", i), Recipient: fmt.Sprint("user", i), Channel: herald.ChannelWebhook})
			}
			if err := s.RecordFanouts(ctx, []*store.Fanout{f}); err != nil {
				t.Fatal(err)
			}
			for i, st := range a.statuses {
				id := fmt.Sprint(a.id, "-d", i)
				u := store.DeliveryUpdate{ID: id, Status: st, Attempts: 1,
					Attempt: &herald.Attempt{Attempt: 1, At: al.CreatedAt, Error: "HTTP 500"}}
				switch st {
				case herald.StatusPending:
					continue
				case herald.StatusFailed:
					next := cutoff.Add(time.Hour)
					u.NextAttemptAt = &next
				case herald.StatusDead:
					u.DeadLetter = &herald.DeadLetter{ID: "dl-" + id, Kind: herald.DeadDelivery, DeliveryID: id, AlertID: a.id,
						Channel: herald.ChannelWebhook, Reason: "gave up", Attempts: 1, CreatedAt: al.CreatedAt}
				case herald.StatusSent:
					u.Attempt = nil
					u.SentAt = &al.CreatedAt
				}
				if err := s.UpdateDeliveries(ctx, []store.DeliveryUpdate{u}); err != nil {
					t.Fatal(err)
				}
			}
		}
		n, err := s.PruneAlerts(ctx, cutoff, 1)
		if err != nil || n != 3 {
			t.Fatalf("PruneAlerts = %d, %v; want 3", n, err)
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
			for i, st := range a.statuses {
				id := fmt.Sprint(a.id, "-d", i)
				_, err := s.Delivery(ctx, id)
				if (herald.ErrorCode(err) == herald.ENOTFOUND) != a.pruned {
					t.Errorf("delivery %s of %s: %v, want pruned %v", id, a.id, err, a.pruned)
				}
				if st == herald.StatusFailed || st == herald.StatusDead {
					at, err := s.Attempts(ctx, id)
					if err != nil || (len(at) == 0) != a.pruned {
						t.Errorf("attempts of %s: %v, %v; want pruned %v", id, at, err, a.pruned)
					}
				}
				if st == herald.StatusDead {
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
		if n, err := s.PruneAlerts(ctx, cutoff.Add(2*time.Hour), 0); err != nil || n != 1 {
			t.Fatalf("a later cutoff: %d, %v; want the newer alert pruned", n, err)
		}
		if _, err := s.Alert(ctx, "a6-new"); herald.ErrorCode(err) != herald.ENOTFOUND {
			t.Errorf("a6-new after a later cutoff: %v, want pruned", err)
		}
	})
}

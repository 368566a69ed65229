package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/store"
)

// TestSentOutcome: a plain sent outcome (no attempt row, dead letter,
// budget or next attempt; SQLite writes it with a statement of its own)
// leaves the delivery as the general outcome statement does: sent, its
// attempts, time and error as given, no next attempt, no dead letter, and
// its retry budget as it was; a sent delivery stays sent.
func TestSentOutcome(t *testing.T) {
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
		fo := &store.Fanout{Alert: &herald.Alert{ID: "a1", Severity: herald.SeverityError, Message: "m", CreatedAt: t0},
			UserCount: 1, Deliveries: []*herald.Delivery{
				{ID: "plain", AlertID: "a1", RecipientID: "u", Recipient: "x", Channel: herald.ChannelWebhook},
				{ID: "general", AlertID: "a1", RecipientID: "u", Recipient: "x", Channel: herald.ChannelSMS}}}
		if err := s.RecordFanouts(ctx, []*store.Fanout{fo}); err != nil {
			t.Fatal(err)
		}
		next, base := t0.Add(time.Minute), 3
		for _, id := range []string{"plain", "general"} {
			if err := s.RecordDelivery(ctx, store.DeliveryUpdate{ID: id, Status: herald.StatusFailed, Attempts: 1,
				LastError: "HTTP 500", NextAttemptAt: &next, BudgetBase: &base,
				Attempt: &herald.Attempt{Attempt: 1, At: t0, Error: "HTTP 500"}}); err != nil {
				t.Fatal(err)
			}
		}
		sentAt := t0.Add(2 * time.Minute)
		// The second goes through the general statement: it carries an
		// attempt row.
		if err := s.UpdateDeliveries(ctx, []store.DeliveryUpdate{
			{ID: "plain", Status: herald.StatusSent, Attempts: 2, LastError: "HTTP 500", SentAt: &sentAt},
			{ID: "general", Status: herald.StatusSent, Attempts: 2, LastError: "HTTP 500", SentAt: &sentAt,
				Attempt: &herald.Attempt{Attempt: 2, At: sentAt}},
		}); err != nil {
			t.Fatal(err)
		}
		plain, err := s.Delivery(ctx, "plain")
		if err != nil {
			t.Fatal(err)
		}
		general, err := s.Delivery(ctx, "general")
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range []*herald.Delivery{plain, general} {
			if d.Status != herald.StatusSent || d.Attempts != 2 || d.LastError != "HTTP 500" || d.SentAt == nil ||
				!d.SentAt.Equal(sentAt) || d.NextAttemptAt != nil || d.DeadLetterID != "" || d.BudgetBase != base ||
				!d.UpdatedAt.Equal(general.UpdatedAt) {
				t.Fatalf("%s = %+v", d.ID, d)
			}
		}
		// A sent delivery stays sent, and the caller hears so.
		if err := s.RecordDelivery(ctx, store.DeliveryUpdate{ID: "plain", Status: herald.StatusSent, Attempts: 9,
			SentAt: &t0}); !errors.Is(err, store.ErrOutcomeSkipped) {
			t.Fatalf("an outcome for a sent delivery: %v, want ErrOutcomeSkipped", err)
		}
		if d, err := s.Delivery(ctx, "plain"); err != nil || d.Attempts != 2 || !d.SentAt.Equal(sentAt) {
			t.Fatalf("sent again: %+v, %v", d, err)
		}
	})
}

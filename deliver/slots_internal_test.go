package deliver

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/bus"
	"github.com/heraldproject/herald/notify"
	"github.com/heraldproject/herald/store"
)

// TestSlotsBoundSendsNotCommits: Concurrency bounds the sends in flight, and
// a send's slot is free once it is answered, while its outcome still waits
// for the store; the records begun and not yet recorded are bounded by twice
// Concurrency (what a crash could make the batch send again). With two slots
// and the SQLite writer held by another connection (so no outcome can be
// recorded), four records of eight are sent, at most two at a time, and no
// more until the writer is free; Handle then sends the rest and returns once
// every outcome is recorded.
func TestSlotsBoundSendsNotCommits(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "herald.db")
	st, err := store.Open(ctx, store.Options{DSN: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	const n, concurrency = 8, 2
	a := &herald.Alert{ID: "a1", Severity: herald.SeverityError, Message: "disk full", CreatedAt: time.Now()}
	fo := &store.Fanout{Alert: a, UserCount: n}
	var recs []*kgo.Record
	for i := range n {
		u := &herald.User{ID: fmt.Sprintf("u%d", i), Name: fmt.Sprintf("user%d", i), WebhookURL: "http://127.0.0.1:1/a"}
		if err := st.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		d := &herald.Delivery{ID: fmt.Sprintf("d%d", i), AlertID: a.ID, RecipientID: u.ID, Recipient: u.Name,
			Channel: herald.ChannelWebhook}
		fo.Deliveries = append(fo.Deliveries, d)
		v, err := json.Marshal(herald.DeliveryTask{DeliveryID: d.ID, AlertID: a.ID, RecipientID: u.ID,
			Recipient: u.Name, Channel: d.Channel, Severity: a.Severity, Message: a.Message, CreatedAt: a.CreatedAt})
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Topic: bus.DeliveryTopic(d.Channel), Key: []byte(u.ID), Value: v,
			Headers: []kgo.RecordHeader{{Key: bus.HeaderDeliveryID, Value: []byte(d.ID)},
				{Key: bus.HeaderAlertID, Value: []byte(a.ID)}, {Key: bus.HeaderStream, Value: []byte(u.ID)}}})
	}
	if err := st.RecordFanouts(ctx, []*store.Fanout{fo}); err != nil {
		t.Fatal(err)
	}

	var inFlight, most, sent atomic.Int64
	s := &Sender{Channel: herald.ChannelWebhook, Store: st, Logger: slog.New(slog.DiscardHandler), Now: time.Now,
		Notifier: notify.NotifierFunc(func(context.Context, *notify.Message) (bool, error) {
			now := inFlight.Add(1)
			for m := most.Load(); now > m && !most.CompareAndSwap(m, now); m = most.Load() {
			}
			time.Sleep(2 * time.Millisecond)
			inFlight.Add(-1)
			sent.Add(1)
			return false, nil
		}),
		Retry: Retry{MaxAttempts: 3, Delays: []time.Duration{time.Second}}, Concurrency: concurrency}

	// Hold SQLite's one writer from another connection.
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	lock, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if _, err := lock.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}

	done := make(chan error, 1)
	go func() { done <- s.Handle(ctx, recs) }()
	const open = 2 * concurrency
	deadline := time.Now().Add(5 * time.Second)
	for sent.Load() < open && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // room for any more to be sent
	if got := sent.Load(); got != open {
		t.Fatalf("%d of %d sent while no outcome could be recorded, want %d: a slot waits for its outcome's commit (fewer), "+
			"or nothing bounds the outcomes waiting (more)", got, n, open)
	}
	select {
	case err := <-done:
		t.Fatalf("Handle returned (%v) before its outcomes could be recorded", err)
	default:
	}
	if _, err := lock.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if m := most.Load(); m > concurrency {
		t.Fatalf("%d sends in flight at once with Concurrency %d", m, concurrency)
	}
	if got := sent.Load(); got != n {
		t.Fatalf("%d of %d sent in all", got, n)
	}
	for i := range n {
		d, err := st.Delivery(ctx, fmt.Sprintf("d%d", i))
		if err != nil || d.Status != herald.StatusSent {
			t.Fatalf("d%d: %+v, %v; want sent", i, d, err)
		}
	}
}

// TestPerRecipient: a set recipientConcurrency is the bound; automatic (0)
// shares the channel's sends equally among a batch's recipients, at least
// minRecipientShare each; a channel limited per endpoint sends one at a time.
func TestPerRecipient(t *testing.T) {
	for _, c := range []struct {
		set, concurrency, perEndpoint, recipients, want int
	}{
		{set: 0, concurrency: 64, recipients: 1, want: 64},
		{set: 0, concurrency: 64, recipients: 2, want: 32},
		{set: 0, concurrency: 64, recipients: 3, want: 21},
		{set: 0, concurrency: 64, recipients: 4, want: minRecipientShare},
		{set: 0, concurrency: 64, recipients: 500, want: minRecipientShare},
		{set: 0, concurrency: 256, recipients: 2, want: 128},
		{set: 0, concurrency: 8, recipients: 1, want: minRecipientShare}, // the channel's slots bound it anyway
		{set: 4, concurrency: 64, recipients: 1, want: 4},
		{set: 1, concurrency: 64, recipients: 1, want: 1},
		{set: 100, concurrency: 64, recipients: 10, want: 100},
		{set: 0, concurrency: 64, perEndpoint: 1, recipients: 1, want: 1},
		{set: 8, concurrency: 64, perEndpoint: 1, recipients: 1, want: 1},
	} {
		s := &Sender{RecipientConcurrency: c.set, Concurrency: c.concurrency, Limits: Limits{PerEndpoint: float64(c.perEndpoint)}}
		if got := s.perRecipient(c.recipients); got != c.want {
			t.Errorf("recipientConcurrency %d, concurrency %d, perEndpoint %d, %d recipients: %d in flight, want %d",
				c.set, c.concurrency, c.perEndpoint, c.recipients, got, c.want)
		}
	}
}

package deliver

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/bus"
	"github.com/heraldproject/herald/cache"
	"github.com/heraldproject/herald/internal/teststore"
	"github.com/heraldproject/herald/notify"
	"github.com/heraldproject/herald/store"
)

func TestFresh(t *testing.T) {
	f := NewFresh(100)
	f.Add("a", "b")
	if !f.Take("a") || f.Take("a") {
		t.Fatal("a: want taken once")
	}
	f.Clear()
	if f.Take("b") {
		t.Fatal("b taken after Clear")
	}

	// Bounded: the oldest are forgotten, the newest kept.
	f = NewFresh(4)
	for i := range 10 {
		f.Add(fmt.Sprint(i))
	}
	held := 0
	for i := range 10 {
		if f.Take(fmt.Sprint(i)) {
			held++
		}
	}
	if held > 4 || held < 2 {
		t.Fatalf("%d of 10 held with size 4", held)
	}
	f.Add("x", "y")
	if !f.Take("y") {
		t.Fatal("the newest id was forgotten")
	}

	var none *Fresh // a process without both stages
	none.Add("a")
	none.Clear()
	if none.Take("a") {
		t.Fatal("nil Fresh took an id")
	}
}

// freshSetup stores a user and an alert with one pending delivery, and
// returns a sender (Fresh set, no cache) whose sends are counted, and the
// delivery's record.
func freshSetup(t *testing.T) (*Sender, *atomic.Int64, *kgo.Record) {
	t.Helper()
	ctx := context.Background()
	u := &herald.User{ID: "u1", Name: "ada", WebhookURL: "http://127.0.0.1:1/a"}
	st := teststore.SQLite(t, u)
	a := &herald.Alert{ID: "a1", Severity: herald.SeverityError, Message: "disk full", CreatedAt: time.Now()}
	d := &herald.Delivery{ID: "d1", AlertID: a.ID, RecipientID: u.ID, Recipient: u.Name, Channel: herald.ChannelWebhook}
	if err := st.RecordFanouts(ctx, []*store.Fanout{{Alert: a, UserCount: 1, Deliveries: []*herald.Delivery{d}}}); err != nil {
		t.Fatal(err)
	}
	var sent atomic.Int64
	s := &Sender{Channel: herald.ChannelWebhook, Store: st, Logger: slog.New(slog.DiscardHandler), Now: time.Now,
		Notifier: notify.NotifierFunc(func(context.Context, *notify.Message) (bool, error) {
			sent.Add(1)
			return false, nil
		}),
		Retry: Retry{MaxAttempts: 3, Delays: []time.Duration{time.Second}}, Concurrency: 4, Fresh: NewFresh(100)}
	v, err := json.Marshal(herald.DeliveryTask{DeliveryID: d.ID, AlertID: a.ID, RecipientID: u.ID, Recipient: u.Name,
		Channel: d.Channel, Severity: a.Severity, Message: a.Message, CreatedAt: a.CreatedAt})
	if err != nil {
		t.Fatal(err)
	}
	rec := &kgo.Record{Topic: bus.DeliveryTopic(d.Channel), Key: []byte(u.ID), Value: v, Headers: []kgo.RecordHeader{
		{Key: bus.HeaderDeliveryID, Value: []byte(d.ID)}, {Key: bus.HeaderAlertID, Value: []byte(a.ID)},
		{Key: bus.HeaderStream, Value: []byte("s")}}}
	return s, &sent, rec
}

// TestFreshIsTakenOnce: a delivery the fan-out stage reported is sent
// without its state being read, and recorded; a second record of it (a
// duplicate, a redelivered batch) reads the store and is not sent again.
func TestFreshIsTakenOnce(t *testing.T) {
	ctx := context.Background()
	s, sent, rec := freshSetup(t)
	s.Fresh.Add("d1")
	for range 2 {
		if err := s.Handle(ctx, []*kgo.Record{rec}); err != nil {
			t.Fatal(err)
		}
	}
	if n := sent.Load(); n != 1 {
		t.Fatalf("sent %d times, want 1", n)
	}
	d, err := s.Store.Delivery(ctx, "d1")
	if err != nil || d.Status != herald.StatusSent || d.Attempts != 1 {
		t.Fatalf("stored %+v, %v; want sent after 1 attempt", d, err)
	}
}

// TestFreshClearedAtRebalance: once cleared (as a rebalance does), what the
// fan-out stage reported no longer counts, and a delivery another process
// sent meanwhile is skipped.
func TestFreshClearedAtRebalance(t *testing.T) {
	ctx := context.Background()
	s, sent, rec := freshSetup(t)
	s.Fresh.Add("d1")
	now := time.Now().UTC()
	if err := s.Store.RecordDelivery(ctx, store.DeliveryUpdate{ID: "d1", Status: herald.StatusSent, Attempts: 1, SentAt: &now}); err != nil {
		t.Fatal(err)
	}
	s.Fresh.Clear()
	if err := s.Handle(ctx, []*kgo.Record{rec}); err != nil {
		t.Fatal(err)
	}
	if n := sent.Load(); n != 0 {
		t.Fatalf("sent %d times a delivery already sent elsewhere", n)
	}
}

// sentCounter is a cache that counts "already sent?" questions.
type sentCounter struct {
	cache.Cache
	asked atomic.Int64
}

func (c *sentCounter) Sent(ctx context.Context, id string) (bool, error) {
	c.asked.Add(1)
	return c.Cache.Sent(ctx, id)
}

// TestFreshSkipsCacheCheck: a delivery the fan-out stage has just created
// cannot have been sent, so its first record does not ask the cache; a
// later record of it does, and is skipped on the cache's word.
func TestFreshSkipsCacheCheck(t *testing.T) {
	ctx := context.Background()
	s, sent, rec := freshSetup(t)
	c := &sentCounter{Cache: cache.NewMemory(100, time.Minute)}
	s.SentMarks = c
	s.Fresh.Add("d1")
	if err := s.Handle(ctx, []*kgo.Record{rec}); err != nil {
		t.Fatal(err)
	}
	if n := c.asked.Load(); n != 0 {
		t.Errorf("the cache was asked %d times about a delivery just created", n)
	}
	if err := s.Handle(ctx, []*kgo.Record{rec}); err != nil {
		t.Fatal(err)
	}
	if n := c.asked.Load(); n != 1 {
		t.Errorf("the cache was asked %d times about a duplicate, want 1", n)
	}
	if n := sent.Load(); n != 1 {
		t.Fatalf("sent %d times, want 1", n)
	}
}

package fanout

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/bus"
	"github.com/heraldproject/herald/route"
)

type producedRecs struct{ recs []*kgo.Record }

func (p *producedRecs) ProduceAsync(_ context.Context, recs ...*kgo.Record) func() error {
	p.recs = append(p.recs, recs...)
	return func() error { return nil }
}

type freshIDs struct{ ids []string }

func (f *freshIDs) Add(ids ...string) { f.ids = append(f.ids, ids...) }

// TestFreshOnlyNewDeliveries: the fan-out stage reports the deliveries it
// created, and not those of an alert stored before (a redelivered record),
// whose state the sending stage must read.
func TestFreshOnlyNewDeliveries(t *testing.T) {
	ctx := context.Background()
	st := storeWithUsers(t)
	prod, fresh := &producedRecs{}, &freshIDs{}
	f := &Fanout{Store: st, Producer: prod, Fresh: fresh, Logger: slog.New(slog.DiscardHandler),
		Router: &route.Router{Enabled: []herald.Channel{herald.ChannelWebhook}}}
	v, err := json.Marshal(herald.Alert{ID: "a1", Severity: herald.SeverityError, Message: "m",
		Targets: []string{"@ada", "@bob"}, CreatedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	rec := &kgo.Record{Topic: bus.TopicAlerts, Value: v}
	if err := f.Handle(ctx, []*kgo.Record{rec}); err != nil {
		t.Fatal(err)
	}
	want := []string{DeliveryID("a1", "u1", herald.ChannelWebhook), DeliveryID("a1", "u2", herald.ChannelWebhook)}
	slices.Sort(want)
	got := slices.Sorted(slices.Values(fresh.ids))
	if !slices.Equal(got, want) || len(prod.recs) != 2 {
		t.Fatalf("first fan-out: reported %v, want %v; produced %d records, want 2", got, want, len(prod.recs))
	}
	// The same record again, and the alert twice in one batch.
	if err := f.Handle(ctx, []*kgo.Record{rec, rec}); err != nil {
		t.Fatal(err)
	}
	if len(fresh.ids) != 2 {
		t.Fatalf("redelivered alert reported as new: %v", fresh.ids)
	}
	if len(prod.recs) != 6 {
		t.Fatalf("produced %d records in all, want 6 (pending deliveries are produced again)", len(prod.recs))
	}
}

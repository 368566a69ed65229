package deliver

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/internal/teststore"
	"github.com/heraldproject/herald/metrics"
	"github.com/heraldproject/herald/store"
)

// discardProducer takes records and keeps none.
type discardProducer struct{ n int }

func (p *discardProducer) Produce(_ context.Context, recs ...*kgo.Record) error {
	p.n += len(recs)
	return nil
}

// TestDeadOutcomeAfterSend: a duplicate's send died after another send of
// the delivery was recorded (a rebalance can hand one record to two
// senders). The dead outcome stores nothing and is counted and logged as a
// skipped duplicate, not as a dead delivery with a dead letter.
func TestDeadOutcomeAfterSend(t *testing.T) {
	ctx := context.Background()
	st := teststore.SQLite(t, &herald.User{ID: "u1", Name: "alice", WebhookURL: "http://127.0.0.1/x"})
	now := time.Now().UTC()
	if err := st.RecordFanouts(ctx, []*store.Fanout{{Alert: &herald.Alert{ID: "a1", Severity: herald.SeverityError,
		Message: "m", CreatedAt: now}, UserCount: 1, Deliveries: []*herald.Delivery{{ID: "d1", AlertID: "a1",
		RecipientID: "u1", Recipient: "alice", Channel: herald.ChannelWebhook}}}}); err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	m := metrics.New("test")
	prod := &discardProducer{}
	s := &Sender{Channel: herald.ChannelWebhook, Store: st, Metrics: m, Producer: prod,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), Now: time.Now}
	d, err := st.Delivery(ctx, "d1")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.RecordDelivery(ctx, store.DeliveryUpdate{ID: "d1", Status: herald.StatusSent, Attempts: 1, SentAt: &now}); err != nil {
		t.Fatal(err)
	}
	task := herald.DeliveryTask{DeliveryID: "d1", AlertID: "a1", RecipientID: "u1", Recipient: "alice"}
	r := &kgo.Record{Topic: "herald.deliveries.webhook", Key: []byte("u1"), Value: []byte(`{}`)}
	o := s.dead(recordLog{l: s.Logger, attrs: func() []any { return nil }}, r, &task, d, 1, nil,
		&herald.Attempt{Attempt: 1, At: now, Error: "HTTP 404"}, "HTTP 404")
	if err := s.apply(ctx, &o); err != nil {
		t.Fatal(err)
	}
	if o.kind != metrics.OutcomeDuplicate {
		t.Errorf("outcome %q after the store said no, want %q (the span reports it)", o.kind, metrics.OutcomeDuplicate)
	}
	if _, err := st.DeadLetter(ctx, o.update.DeadLetter.ID); herald.ErrorCode(err) != herald.ENOTFOUND {
		t.Fatalf("dead letter stored for a sent delivery: %v", err)
	}
	if d, err := st.Delivery(ctx, "d1"); err != nil || d.Status != herald.StatusSent {
		t.Fatalf("delivery after the late dead outcome: %+v, %v", d, err)
	}
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]float64{}
	for _, f := range fams {
		for _, mm := range f.GetMetric() {
			name := f.GetName()
			for _, l := range mm.GetLabel() {
				if l.GetName() == "outcome" {
					name += "/" + l.GetValue()
				}
			}
			counts[name] += mm.GetCounter().GetValue()
		}
	}
	if counts["herald_dead_letters_total"] != 0 || counts["herald_deliveries_total/dead"] != 0 ||
		counts["herald_deliveries_total/"+metrics.OutcomeDuplicate] != 1 {
		t.Errorf("counted %v; want one skipped duplicate, no dead delivery or dead letter", counts)
	}
	if !strings.Contains(logs.String(), "outcome not recorded") || prod.n != 1 {
		t.Errorf("log %q, records produced %d (the DLQ record goes out before the store says no)", logs.String(), prod.n)
	}
}

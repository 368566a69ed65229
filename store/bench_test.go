package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/fanout"
	"github.com/heraldproject/herald/internal/testpg"
	"github.com/heraldproject/herald/store"
)

// BenchmarkRecordFanouts records batches of alerts with their deliveries,
// as the fan-out stage does, into a table that grows as the benchmark runs
// (b.N batches): 100 alerts to 10 recipients each (fan-out 10), and 20
// alerts to one recipient (the fan-out stage's batches at one recipient and
// 3,600 alerts/s). Reported: deliveries/s.
func BenchmarkRecordFanouts(b *testing.B) {
	for _, size := range []struct{ alerts, fanoutN int }{{100, 10}, {20, 1}} {
		b.Run(fmt.Sprintf("%dx%d", size.alerts, size.fanoutN), func(b *testing.B) {
			benchmarkRecordFanouts(b, size.alerts, size.fanoutN)
		})
	}
}

// benchBackends runs fn as a sub-benchmark on a fresh store of each backend:
// SQLite in a temporary directory and PostgreSQL in a schema of its own.
func benchBackends(b *testing.B, fn func(b *testing.B, s *store.Store)) {
	for _, o := range []struct {
		name string
		opts func(b *testing.B) store.Options
	}{
		{"sqlite", func(b *testing.B) store.Options {
			return store.Options{DSN: filepath.Join(b.TempDir(), "herald.db")}
		}},
		{"postgres", func(b *testing.B) store.Options { return store.Options{Driver: "postgres", DSN: testpg.DSN(b)} }},
	} {
		b.Run(o.name, func(b *testing.B) {
			s, err := store.Open(context.Background(), o.opts(b))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			fn(b, s)
		})
	}
}

func benchmarkRecordFanouts(b *testing.B, alerts, fanoutN int) {
	benchBackends(b, func(b *testing.B, s *store.Store) {
		ctx := context.Background()
		b.ResetTimer()
		for range b.N {
			batch := make([]*store.Fanout, alerts)
			for i := range batch {
				a := &herald.Alert{ID: uuid.Must(uuid.NewV7()).String(), Severity: herald.SeverityInfo,
					Message: "disk full", CreatedAt: time.Now()}
				f := &store.Fanout{Alert: a, UserCount: fanoutN}
				for r := range fanoutN {
					uid := fmt.Sprintf("user-%d", r)
					f.Deliveries = append(f.Deliveries, &herald.Delivery{ID: fanout.DeliveryID(a.ID, uid, herald.ChannelWebhook),
						AlertID: a.ID, RecipientID: uid, Recipient: uid, Channel: herald.ChannelWebhook})
				}
				batch[i] = f
			}
			if err := s.RecordFanouts(ctx, batch); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*alerts*fanoutN)/b.Elapsed().Seconds(), "deliveries/s")
	})
}

// BenchmarkAlertByIdempotencyKey looks up keys among 20,000 alerts that have
// one (half of them) or none, as POST /v1/alerts does for each request with an
// Idempotency-Key: a key never used, then one used before.
func BenchmarkAlertByIdempotencyKey(b *testing.B) {
	benchBackends(b, func(b *testing.B, s *store.Store) {
		ctx := context.Background()
		const alerts = 20000
		for n := 0; n < alerts; n += 500 {
			batch := make([]*store.Fanout, 500)
			for i := range batch {
				a := &herald.Alert{ID: uuid.Must(uuid.NewV7()).String(), Severity: herald.SeverityInfo,
					Message: "disk full", Targets: []string{"@x"}, CreatedAt: time.Now()}
				if i%2 == 0 {
					a.IdempotencyKey = fmt.Sprint("key-", n+i)
				}
				batch[i] = &store.Fanout{Alert: a}
			}
			if err := s.RecordFanouts(ctx, batch); err != nil {
				b.Fatal(err)
			}
		}
		i := 0
		for b.Loop() {
			i++
			if got, err := s.AlertByIdempotencyKey(ctx, fmt.Sprint("new-", i)); err != nil || got != nil {
				b.Fatal(got, err)
			}
			if got, err := s.AlertByIdempotencyKey(ctx, fmt.Sprint("key-", 2*(i%(alerts/2)))); err != nil || got == nil {
				b.Fatal(got, err)
			}
		}
	})
}

// BenchmarkSentOutcomes records "sent" outcomes in groups of 16, as the
// sending stage's group commit does, on a table of 100,000 deliveries, on
// SQLite and PostgreSQL. Reported: outcomes/s. Past 6,250 iterations the
// outcomes are for deliveries sent already (a duplicate's way, slower), so
// give a count:
//
//	go test ./store -run '^$' -bench SentOutcomes -benchtime 6000x
func BenchmarkSentOutcomes(b *testing.B) {
	ctx := context.Background()
	benchBackends(b, func(b *testing.B, s *store.Store) {
		var ids []string
		for range 100 {
			var batch []*store.Fanout
			for range 100 {
				a := &herald.Alert{ID: uuid.Must(uuid.NewV7()).String(), Severity: herald.SeverityInfo, Message: "m",
					CreatedAt: time.Now()}
				f := &store.Fanout{Alert: a, UserCount: 10}
				for r := range 10 {
					uid := fmt.Sprintf("user-%d", r)
					id := fanout.DeliveryID(a.ID, uid, herald.ChannelWebhook)
					ids = append(ids, id)
					f.Deliveries = append(f.Deliveries, &herald.Delivery{ID: id, AlertID: a.ID, RecipientID: uid,
						Recipient: uid, Channel: herald.ChannelWebhook})
				}
				batch = append(batch, f)
			}
			if err := s.RecordFanouts(ctx, batch); err != nil {
				b.Fatal(err)
			}
		}
		b.ResetTimer()
		for i := range b.N {
			us := make([]store.DeliveryUpdate, 16)
			now := time.Now()
			for j := range us {
				us[j] = store.DeliveryUpdate{ID: ids[(i*16+j)%len(ids)], Status: herald.StatusSent, Attempts: 1, SentAt: &now}
			}
			if err := s.UpdateDeliveries(ctx, us); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*16)/b.Elapsed().Seconds(), "outcomes/s")
	})
}

// BenchmarkPruneAlerts prunes 10,000 sent alerts of one delivery each (half
// with an attempt in their history), in batches of 1,000, as alerts.retention
// does. Reported: alerts pruned per second.
func BenchmarkPruneAlerts(b *testing.B) {
	benchBackends(b, func(b *testing.B, s *store.Store) {
		ctx := context.Background()
		const alerts = 10000
		t0 := time.Now().Add(-time.Hour)
		pruned := 0
		for b.Loop() {
			b.StopTimer()
			for n := 0; n < alerts; n += 500 {
				batch := make([]*store.Fanout, 500)
				var sent []store.DeliveryUpdate
				for i := range batch {
					a := &herald.Alert{ID: uuid.Must(uuid.NewV7()).String(), Severity: herald.SeverityInfo,
						Message: "disk full", Targets: []string{"@x"}, CreatedAt: t0}
					d := &herald.Delivery{ID: fanout.DeliveryID(a.ID, "u", herald.ChannelWebhook), AlertID: a.ID,
						RecipientID: "u", Recipient: "u", Channel: herald.ChannelWebhook}
					batch[i] = &store.Fanout{Alert: a, UserCount: 1, Deliveries: []*herald.Delivery{d}}
					u := store.DeliveryUpdate{ID: d.ID, Status: herald.StatusSent, Attempts: 1, SentAt: &t0}
					if i%2 == 0 {
						u.Attempt = &herald.Attempt{Attempt: 1, At: t0, Error: "HTTP 500"}
					}
					sent = append(sent, u)
				}
				if err := s.RecordFanouts(ctx, batch); err != nil {
					b.Fatal(err)
				}
				if err := s.UpdateDeliveries(ctx, sent); err != nil {
					b.Fatal(err)
				}
			}
			b.StartTimer()
			n, err := s.PruneAlerts(ctx, time.Now(), 0)
			if err != nil || n != alerts {
				b.Fatalf("pruned %d, %v; want %d", n, err, alerts)
			}
			pruned += n
		}
		b.ReportMetric(float64(pruned)/b.Elapsed().Seconds(), "alerts/s")
	})
}

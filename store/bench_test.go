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

func benchmarkRecordFanouts(b *testing.B, alerts, fanoutN int) {
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
			ctx := context.Background()
			s, err := store.Open(ctx, o.opts(b))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
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
}

// BenchmarkAlertByIdempotencyKey looks up keys among 20,000 alerts that have
// one (half of them) or none, as POST /v1/alerts does for each request with an
// Idempotency-Key: a key never used, then one used before.
func BenchmarkAlertByIdempotencyKey(b *testing.B) {
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
			ctx := context.Background()
			s, err := store.Open(ctx, o.opts(b))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
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
}

// BenchmarkSentOutcomes records "sent" outcomes in groups of 16, as the
// sending stage's group commit does, on a SQLite table of 100,000
// deliveries. Reported: outcomes/s.
func BenchmarkSentOutcomes(b *testing.B) {
	ctx := context.Background()
	s, err := store.Open(ctx, store.Options{DSN: filepath.Join(b.TempDir(), "herald.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
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
			// Past the table's end the ids come round again, already
			// sent: run at most 6,250 iterations for fresh rows.
			us[j] = store.DeliveryUpdate{ID: ids[(i*16+j)%len(ids)], Status: herald.StatusSent, Attempts: 1, SentAt: &now}
		}
		if err := s.UpdateDeliveries(ctx, us); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*16)/b.Elapsed().Seconds(), "outcomes/s")
}

// Package fanout turns accepted alerts into deliveries: it resolves each
// alert's targets to users, picks channels per user, records the alert and its
// deliveries in one transaction per batch, and produces one record per
// delivery to the channel's topic, keyed by recipient.
package fanout

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/bus"
	"github.com/heraldproject/herald/cache"
	"github.com/heraldproject/herald/metrics"
	"github.com/heraldproject/herald/route"
	"github.com/heraldproject/herald/store"
	"github.com/heraldproject/herald/tracing"
)

// deliveryNamespace makes delivery ids deterministic UUIDv5 values.
var deliveryNamespace = uuid.MustParse("4f1c2a6e-9d0b-4c3e-8a57-2f6d1e0b9c11")

// DeliveryID returns the id of the delivery of alertID to recipientID over ch.
// The same inputs always give the same id, so a redelivered alert record
// cannot create a second delivery.
//
// The id's first 8 bytes are the alert id's (a UUIDv7's timestamp, for
// alerts accepted without an Idempotency-Key), the rest a SHA-1 of the three
// inputs. So a new alert's deliveries sort after older ones and next to each
// other in the store's id index: inserting them touches a few index pages
// instead of one random page each, which made batched inserts 3.6× faster on
// a 300,000-row table (docs/BENCHMARKS.md).
func DeliveryID(alertID, recipientID string, ch herald.Channel) string {
	h := uuid.NewSHA1(deliveryNamespace, []byte(alertID+"\x00"+recipientID+"\x00"+string(ch)))
	if a, err := uuid.Parse(alertID); err == nil {
		copy(h[:8], a[:8])
	} // an alert id that is not a UUID (a tool's record): the hash alone
	return h.String()
}

// Producer is what the fan-out stage needs from Kafka.
type Producer interface {
	Produce(ctx context.Context, recs ...*kgo.Record) error
}

// Fanout is the fan-out stage. Handle is its bus.Handler.
type Fanout struct {
	Store    *store.Store
	Producer Producer
	Router   *route.Router
	Logger   *slog.Logger
	// Metrics records fan-out sizes; nil records nothing.
	Metrics *metrics.Metrics
	// Tracer starts a herald.fanout span per alert, child of the accept
	// span carried in the record (nil: no tracing).
	Tracer trace.Tracer
	// Cache, when set, is given the recipients the stage reads from the
	// store, in one call, so the sending stage finds them there (nil: no
	// cache).
	Cache cache.Cache
	// Fresh, when set, is told the deliveries each batch created (pending,
	// no attempt yet) before their records are produced, so this process's
	// sending stage need not read their state (deliver.Fresh).
	Fresh interface{ Add(ids ...string) }
}

// Handle processes one batch of alert records. Records that cannot be decoded
// are dead-lettered (produced to the DLQ topic with the reason) rather than
// blocking the partition.
func (f *Fanout) Handle(ctx context.Context, recs []*kgo.Record) error {
	var out []*kgo.Record
	var alerts []*herald.Alert
	var from []*kgo.Record
	for _, r := range recs {
		a, err := decodeAlert(r)
		if err != nil {
			f.Logger.Warn("undecodable alert record dead-lettered", "topic", r.Topic, "partition", r.Partition,
				"offset", r.Offset, "err", err)
			out = append(out, bus.DeadLetter(r, err))
			continue
		}
		alerts = append(alerts, a)
		from = append(from, r)
	}
	fos, err := f.plan(ctx, alerts)
	if err != nil {
		return err
	}
	origin := make(map[*store.Fanout]*kgo.Record, len(fos))
	for i, fo := range fos {
		origin[fo] = from[i]
	}
	if err := f.Store.RecordFanouts(ctx, fos); err != nil {
		return fmt.Errorf("fanout: %w", err)
	}
	tracer := f.Tracer
	if tracer == nil {
		tracer = tracing.Tracer(nil)
	}
	var fresh []string // the new pending deliveries, for f.Fresh
	for _, fo := range fos {
		r := origin[fo]
		sctx, span := tracer.Start(bus.ExtractTrace(ctx, r), "herald.fanout", trace.WithSpanKind(trace.SpanKindConsumer),
			trace.WithAttributes(attribute.String("herald.alert_id", fo.Alert.ID), attribute.Int("herald.deliveries", len(fo.Deliveries))))
		n := 0
		stream := fo.Alert.Stream()
		for _, d := range fo.Deliveries {
			if d.Status.Final() {
				continue
			}
			rec, err := taskRecord(fo.Alert, d, r, stream)
			if err != nil {
				span.End()
				return err
			}
			bus.InjectTrace(sctx, rec)
			out = append(out, rec)
			n++
			if fo.Inserted { // stored by this batch: pending, no attempt yet
				fresh = append(fresh, d.ID)
			}
		}
		span.End()
		f.Metrics.Fanout(len(fo.Deliveries))
		// At info only when someone could not be reached: the store keeps
		// every fan-out, and a line per alert cost 1-2% of CPU.
		level := slog.LevelDebug
		if len(fo.Unreachable) > 0 {
			level = slog.LevelInfo
		}
		f.Logger.Log(ctx, level, "alert fanned out", "alert_id", fo.Alert.ID, "request_id", bus.Header(r, bus.HeaderRequestID),
			"topic", r.Topic, "partition", r.Partition, "offset", r.Offset,
			"users", fo.UserCount, "deliveries", n, "unreachable", len(fo.Unreachable))
	}
	if f.Fresh != nil {
		f.Fresh.Add(fresh...)
	}
	if len(out) == 0 {
		return nil
	}
	if err := f.Producer.Produce(ctx, out...); err != nil {
		return fmt.Errorf("fanout: %w", err)
	}
	return nil
}

// plan resolves recipients and chooses channels for a batch of alerts: each
// distinct target is resolved once and every recipient read once per batch.
func (f *Fanout) plan(ctx context.Context, alerts []*herald.Alert) ([]*store.Fanout, error) {
	resolved := make(map[string][]string) // target → user ids, for this batch
	recipients := make([][]string, len(alerts))
	var all []string
	seen := make(map[string]bool)
	for i, a := range alerts {
		ids := a.Recipients
		if len(ids) == 0 {
			have := make(map[string]bool)
			for _, s := range a.Targets {
				got, ok := resolved[s]
				if !ok {
					t, err := herald.ParseTarget(s)
					if err != nil {
						continue // validated at the API; other producers' junk targets reach nobody
					}
					if got, _, err = f.Store.Resolve(ctx, []herald.Target{t}); err != nil {
						return nil, fmt.Errorf("fanout: %w", err)
					}
					resolved[s] = got
				}
				for _, id := range got {
					if !have[id] {
						have[id] = true
						ids = append(ids, id)
					}
				}
			}
		}
		recipients[i] = ids
		for _, id := range ids {
			if !seen[id] {
				seen[id] = true
				all = append(all, id)
			}
		}
	}
	users, err := f.Store.UsersByID(ctx, all)
	if err != nil {
		return nil, fmt.Errorf("fanout: %w", err)
	}
	if f.Cache != nil {
		_ = f.Cache.PutUsers(ctx, slices.Collect(maps.Values(users)))
	}
	fos := make([]*store.Fanout, len(alerts))
	for i, a := range alerts {
		fos[i] = f.planOne(a, recipients[i], users)
	}
	return fos, nil
}

// planOne chooses channels for one alert's resolved recipients.
func (f *Fanout) planOne(a *herald.Alert, ids []string, users map[string]*herald.User) *store.Fanout {
	fo := &store.Fanout{Alert: a, UserCount: len(ids)}
	for _, id := range ids {
		u, ok := users[id]
		if !ok {
			continue // deleted since the alert was accepted
		}
		c := f.Router.Choose(a, u)
		if len(c.Channels) == 0 && len(c.Missing) == 0 {
			fo.Unreachable = append(fo.Unreachable, u.Name)
			continue
		}
		for _, ch := range c.Channels {
			fo.Deliveries = append(fo.Deliveries, &herald.Delivery{
				ID: DeliveryID(a.ID, u.ID, ch), AlertID: a.ID, RecipientID: u.ID, Recipient: u.Name,
				Channel: ch, Status: herald.StatusPending,
			})
		}
		for _, ch := range a.Channels {
			if reason, ok := c.Missing[ch]; ok {
				fo.Deliveries = append(fo.Deliveries, &herald.Delivery{
					ID: DeliveryID(a.ID, u.ID, ch), AlertID: a.ID, RecipientID: u.ID, Recipient: u.Name,
					Channel: ch, Status: herald.StatusDead, LastError: reason,
				})
			}
		}
	}
	return fo
}

// decodeAlert decodes and checks an alert record. Records written by other
// tools may omit the id (one is derived from the record's position, so a
// redelivery yields the same id) and the creation time.
func decodeAlert(r *kgo.Record) (*herald.Alert, error) {
	var a herald.Alert
	if err := bus.DecodeValue(r, &a); err != nil {
		return nil, fmt.Errorf("decode alert: %w", err)
	}
	if a.ID == "" {
		a.ID = uuid.NewSHA1(deliveryNamespace, fmt.Appendf(nil, "%s/%d/%d", r.Topic, r.Partition, r.Offset)).String()
	}
	sev, err := herald.ParseSeverity(string(a.Severity))
	if err != nil {
		return nil, err
	}
	a.Severity = sev
	if strings.TrimSpace(a.Message) == "" {
		return nil, fmt.Errorf("alert %s has no message", a.ID)
	}
	for _, f := range []string{a.ID, a.Title, a.Message, a.Source, string(a.Severity), a.IdempotencyKey} {
		if strings.IndexByte(f, 0) >= 0 {
			// The store (PostgreSQL) cannot hold it: a dead letter, not a
			// batch retried forever.
			return nil, fmt.Errorf("alert %s has a NUL character in a text field", a.ID)
		}
	}
	if len(a.Targets) == 0 && len(a.Recipients) == 0 {
		return nil, fmt.Errorf("alert %s has no target", a.ID)
	}
	if a.CreatedAt.IsZero() {
		a.CreatedAt = r.Timestamp
	}
	return &a, nil
}

func taskRecord(a *herald.Alert, d *herald.Delivery, from *kgo.Record, stream []byte) (*kgo.Record, error) {
	t := herald.DeliveryTask{
		DeliveryID: d.ID, AlertID: a.ID, RecipientID: d.RecipientID, Recipient: d.Recipient, Channel: d.Channel,
		Severity: a.Severity, Title: a.Title, Message: a.Message, Source: a.Source, Labels: a.Labels,
		CreatedAt: a.CreatedAt, Attempt: d.Attempts,
	}
	v, err := json.Marshal(t)
	if err != nil {
		return nil, fmt.Errorf("fanout: encode delivery %s: %w", d.ID, err)
	}
	return &kgo.Record{
		Topic: bus.DeliveryTopic(d.Channel),
		Key:   []byte(d.RecipientID),
		Value: v,
		Headers: []kgo.RecordHeader{
			{Key: bus.HeaderDeliveryID, Value: []byte(d.ID)},
			{Key: bus.HeaderAlertID, Value: []byte(a.ID)},
			{Key: bus.HeaderRequestID, Value: []byte(bus.Header(from, bus.HeaderRequestID))},
			{Key: bus.HeaderStream, Value: stream},
		},
		Timestamp: time.Now(),
	}, nil
}

// Package deadletter keeps Herald's dead letters: it records every record
// that reaches the DLQ topic in the store (so garbage produced straight onto
// the DLQ topic is kept too), and replays dead letters back into the
// pipeline.
package deadletter

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/bus"
	"github.com/heraldproject/herald/metrics"
	"github.com/heraldproject/herald/store"
)

var recordNamespace = uuid.MustParse("5c8e1d7a-2b94-4f06-8d13-9e7a4c0b2f51")

// Recorder stores the DLQ topic's records as dead letters: undecodable or
// unprocessable records, and anything else produced there (dead deliveries,
// marked by a herald-dead-letter-id header, are stored by their sender).
// Handle is its bus.Handler. Storing is idempotent: a record's dead letter id
// comes from where the record came from.
type Recorder struct {
	Store  *store.Store
	Logger *slog.Logger
	// Metrics counts dead records (dead deliveries are counted by the
	// sender); nil records nothing.
	Metrics *metrics.Metrics
}

// Handle records one batch in one transaction.
func (rc *Recorder) Handle(ctx context.Context, recs []*kgo.Record) error {
	dls := make([]*herald.DeadLetter, 0, len(recs))
	for _, r := range recs {
		if bus.Header(r, bus.HeaderDeadLetterID) != "" {
			// A dead delivery: the sender records it, with its history, in
			// the same transaction as the delivery's status. A thinner copy
			// from here could be seen before that commits.
			continue
		}
		dls = append(dls, FromRecord(r))
	}
	if err := rc.Store.RecordDeadLetters(ctx, dls); err != nil {
		return fmt.Errorf("deadletter: %w", err)
	}
	for _, d := range dls {
		if d.Kind == herald.DeadRecord {
			rc.Metrics.DeadLetter("")
		}
		rc.Logger.Info("dead letter recorded", "dead_letter_id", d.ID, "kind", d.Kind, "delivery_id", d.DeliveryID,
			"alert_id", d.AlertID, "reason", d.Reason)
	}
	return nil
}

// FromRecord reads a DLQ record as a dead letter.
func FromRecord(r *kgo.Record) *herald.DeadLetter {
	here := fmt.Sprintf("%s/%d/%d", r.Topic, r.Partition, r.Offset)
	source := bus.Header(r, bus.HeaderSource)
	if source == "" {
		source = here
	}
	d := &herald.DeadLetter{
		ID:         bus.Header(r, bus.HeaderDeadLetterID),
		Kind:       herald.DeadRecord,
		DeliveryID: bus.Header(r, bus.HeaderDeliveryID),
		AlertID:    bus.Header(r, bus.HeaderAlertID),
		Reason:     bus.Header(r, bus.HeaderError),
		Source:     source,
		Key:        r.Key,
		Payload:    r.Value,
		CreatedAt:  r.Timestamp.UTC(),
	}
	if d.Reason == "" {
		d.Reason = "record produced directly to " + bus.TopicDLQ
	}
	if d.ID == "" {
		d.ID = uuid.NewSHA1(recordNamespace, []byte(source)).String()
	}
	if d.DeliveryID != "" && strings.HasPrefix(source, "herald.deliveries.") {
		var t herald.DeliveryTask
		if json.Unmarshal(r.Value, &t) == nil && t.DeliveryID == d.DeliveryID {
			d.Kind = herald.DeadDelivery
			d.AlertID, d.Channel, d.RecipientID, d.Recipient = t.AlertID, t.Channel, t.RecipientID, t.Recipient
		}
	}
	return d
}

// Producer is what replay needs from Kafka.
type Producer interface {
	Produce(ctx context.Context, recs ...*kgo.Record) error
}

// sourceTopic is the topic a dead record came from.
func sourceTopic(d *herald.DeadLetter) string {
	topic, _, _ := strings.Cut(d.Source, "/")
	return topic
}

// Replayable reports whether a dead letter can be replayed at all: a dead
// delivery can (while it is still dead from this letter), and so can a dead
// record from a Herald topic but the DLQ itself and the retry tiers, whose
// records (garbage produced onto them) have nowhere to go back to.
func Replayable(d *herald.DeadLetter) bool {
	if d.Kind == herald.DeadDelivery {
		return true
	}
	topic := sourceTopic(d)
	return strings.HasPrefix(topic, "herald.") && topic != bus.TopicDLQ && !strings.HasPrefix(topic, "herald.retry.")
}

// Replay puts a dead letter back into the pipeline. A dead delivery goes back
// to its channel's topic with its delivery id, marked as a replay of this
// dead letter so the sender gives it a fresh retry budget; a dead record goes
// back to the Herald topic it came from. Replaying a delivery that is no
// longer dead from this letter (it was replayed and then sent, or died again
// under another letter), or one whose alert was pruned, is an ECONFLICT
// error.
func Replay(ctx context.Context, st *store.Store, p Producer, id string) error {
	d, err := st.DeadLetter(ctx, id)
	if err != nil {
		return err
	}
	var rec *kgo.Record
	switch d.Kind {
	case herald.DeadDelivery:
		del, err := st.Delivery(ctx, d.DeliveryID)
		if herald.ErrorCode(err) == herald.ENOTFOUND {
			// Its alert was pruned (alerts.retention) while the letter was
			// written: there is no delivery to bring back.
			return herald.Errorf(herald.ECONFLICT, "delivery %s of dead letter %s no longer exists (its alert was pruned); "+
				"nothing to replay", d.DeliveryID, d.ID)
		}
		if err != nil {
			return err
		}
		if del.Status != herald.StatusDead || del.DeadLetterID != d.ID {
			return herald.Errorf(herald.ECONFLICT, "delivery %s is %s, not dead from dead letter %s; nothing to replay",
				del.ID, del.Status, d.ID)
		}
		rec = &kgo.Record{Topic: bus.DeliveryTopic(d.Channel), Key: d.Key, Value: d.Payload, Headers: []kgo.RecordHeader{
			{Key: bus.HeaderDeliveryID, Value: []byte(d.DeliveryID)},
			{Key: bus.HeaderAlertID, Value: []byte(d.AlertID)},
			{Key: bus.HeaderReplay, Value: []byte(d.ID)},
		}}
	default:
		topic := sourceTopic(d)
		if !Replayable(d) {
			return herald.Errorf(herald.ECONFLICT, "dead letter %s came from %q, which cannot be replayed into", d.ID, topic)
		}
		rec = &kgo.Record{Topic: topic, Key: d.Key, Value: d.Payload}
	}
	if err := p.Produce(ctx, rec); err != nil {
		return herald.Errorf(herald.EUNAVAILABLE, "replay of %s could not be written to the broker: %v", d.ID, err)
	}
	return st.MarkReplayed(ctx, d.ID)
}

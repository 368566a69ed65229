// Package logs is the logs role: it stores the records of the logs topic in
// the store, where they are indexed for search, and evaluates the log rules
// against each stored batch (Alerter). Package retention prunes them.
package logs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/bus"
	"github.com/heraldproject/herald/store"
)

// Producer writes dead letters.
type Producer interface {
	Produce(ctx context.Context, recs ...*kgo.Record) error
}

// Indexer stores one poll's log records per transaction. It is a bus.Handler:
// the consumer commits offsets after Handle returns nil, so a crash repeats a
// batch, and record ids make the repeat harmless.
type Indexer struct {
	Store    *store.Store
	Producer Producer
	Logger   *slog.Logger
	// Alerter, when set, evaluates the log rules against each batch after
	// it is stored and before Handle returns (so before the offsets are
	// committed: a crash evaluates the batch again, and the alerts' ids
	// make that harmless).
	Alerter *Alerter
}

// Handle decodes the records, inserts them in one transaction and then
// evaluates the log rules against them (Alerter). A record
// that cannot be decoded or is invalid (produced by something other than
// Herald's API) is dead-lettered with the reason, not retried forever. An
// error (the store or broker is down) makes the consumer retry the batch.
func (ix *Indexer) Handle(ctx context.Context, recs []*kgo.Record) error {
	out := make([]*herald.LogRecord, 0, len(recs))
	var dead []*kgo.Record
	for _, r := range recs {
		lr, err := Decode(r)
		if err != nil {
			ix.Logger.Warn("undecodable log record dead-lettered", "topic", r.Topic, "partition", r.Partition,
				"offset", r.Offset, "err", err)
			dead = append(dead, bus.DeadLetter(r, err))
			continue
		}
		out = append(out, lr)
	}
	if len(dead) > 0 {
		if err := ix.Producer.Produce(ctx, dead...); err != nil {
			return fmt.Errorf("logs: dead-letter: %w", err)
		}
	}
	if _, err := ix.Store.InsertLogs(ctx, out); err != nil {
		return fmt.Errorf("logs: %w", err)
	}
	if ix.Alerter != nil {
		return ix.Alerter.Evaluate(ctx, out)
	}
	return nil
}

// Decode reads a logs-topic record. A record without an id (one produced
// straight to the topic, e.g. with kcat) gets one derived from its topic,
// partition and offset, so its redelivery is stored once too; one without a
// time takes the record's timestamp.
func Decode(r *kgo.Record) (*herald.LogRecord, error) {
	var lr herald.LogRecord
	if err := bus.DecodeValueFast(r, &lr, decodeFast); err != nil {
		return nil, fmt.Errorf("not a log record: %w", err)
	}
	if lr.Level == "" {
		lr.Level = herald.DefaultLogLevel
	}
	if lvl, err := herald.ParseLogLevel(string(lr.Level)); err == nil {
		lr.Level = lvl
	}
	if lr.Service == "" {
		lr.Service = string(r.Key)
	}
	if lr.Time.IsZero() {
		lr.Time = r.Timestamp.UTC()
	}
	if err := lr.Validate(); err != nil {
		return nil, fmt.Errorf("invalid log record: %w", err)
	}
	if lr.ID == "" {
		h := sha256.Sum256(fmt.Appendf(nil, "%s/%d/%d", r.Topic, r.Partition, r.Offset))
		lr.ID = "k-" + hex.EncodeToString(h[:16])
	} else if len(lr.ID) > 64 {
		return nil, fmt.Errorf("invalid log record: id is %d bytes; at most 64", len(lr.ID))
	}
	return &lr, nil
}

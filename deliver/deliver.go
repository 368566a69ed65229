// Package deliver is the sending stage: it consumes one channel's deliveries
// topic, skips deliveries already sent (dedupe across crashes and
// redeliveries), sends through the channel's notifier with a bounded retry,
// and records every attempt's outcome before the batch's offsets are
// committed.
package deliver

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/bus"
	"github.com/heraldproject/herald/notify"
	"github.com/heraldproject/herald/store"
)

// Producer is what the sender needs from Kafka (for dead letters).
type Producer interface {
	Produce(ctx context.Context, recs ...*kgo.Record) error
}

// Retry bounds the attempts at one delivery.
type Retry struct {
	// MaxAttempts is the total number of attempts, the first included.
	MaxAttempts int
	// Delays[i] is the wait after attempt i+1 fails; the last entry repeats.
	Delays []time.Duration
}

func (r Retry) delay(attempt int) time.Duration {
	if len(r.Delays) == 0 {
		return time.Second
	}
	d := r.Delays[min(attempt-1, len(r.Delays)-1)]
	// ±20% jitter so retries of many deliveries do not arrive together.
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// Sender delivers one channel's records. Handle is its bus.Handler.
type Sender struct {
	Channel  herald.Channel
	Notifier notify.Notifier
	Store    *store.Store
	Producer Producer
	Retry    Retry
	// Concurrency bounds how many recipients are sent to at once; records for
	// one recipient are always sent in order.
	Concurrency int
	// Timeout bounds one attempt.
	Timeout time.Duration
	Logger  *slog.Logger
	Now     func() time.Time
}

type task struct {
	herald.DeliveryTask
	rec *kgo.Record
}

// Handle sends one batch. It returns an error only when an outcome could not
// be recorded or work was interrupted by shutdown; the batch is then handled
// again, and deliveries already sent are skipped.
func (s *Sender) Handle(ctx context.Context, recs []*kgo.Record) error {
	var poison []*kgo.Record
	byKey := make(map[string][]*task)
	var order []string
	for _, r := range recs {
		var t task
		if err := json.Unmarshal(r.Value, &t.DeliveryTask); err != nil || t.DeliveryID == "" {
			err = cmp.Or(err, errors.New("delivery record has no deliveryId"))
			s.Logger.Warn("undecodable delivery record dead-lettered", "topic", r.Topic, "partition", r.Partition,
				"offset", r.Offset, "err", err)
			poison = append(poison, bus.DeadLetter(r, fmt.Errorf("decode delivery: %w", err)))
			continue
		}
		t.rec = r
		k := string(r.Key)
		if _, ok := byKey[k]; !ok {
			order = append(order, k)
		}
		byKey[k] = append(byKey[k], &t)
	}
	if len(poison) > 0 {
		if err := s.Producer.Produce(ctx, poison...); err != nil {
			return fmt.Errorf("deliver: dead-letter: %w", err)
		}
	}
	sem := make(chan struct{}, max(s.Concurrency, 1))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, k := range order {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			for _, t := range byKey[k] {
				if err := s.deliver(ctx, t); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// deliver makes the remaining attempts at one delivery and records each.
func (s *Sender) deliver(ctx context.Context, t *task) error {
	log := s.Logger.With("delivery_id", t.DeliveryID, "alert_id", t.AlertID, "channel", s.Channel,
		"topic", t.rec.Topic, "partition", t.rec.Partition, "offset", t.rec.Offset,
		"request_id", bus.Header(t.rec, bus.HeaderRequestID))
	d, err := s.Store.Delivery(ctx, t.DeliveryID)
	if herald.ErrorCode(err) == herald.ENOTFOUND {
		log.Warn("delivery record for an unknown delivery dead-lettered")
		return s.Producer.Produce(ctx, bus.DeadLetter(t.rec, errors.New("unknown delivery id")))
	}
	if err != nil {
		return err
	}
	if d.Status.Final() {
		log.Debug("delivery already final; skipped", "status", d.Status)
		return nil
	}
	u, err := s.Store.User(ctx, t.RecipientID)
	if herald.ErrorCode(err) == herald.ENOTFOUND {
		return s.dead(ctx, log, t, d.Attempts, "recipient was deleted before delivery")
	}
	if err != nil {
		return err
	}
	m := &notify.Message{
		DeliveryID: t.DeliveryID, AlertID: t.AlertID, Recipient: u, Severity: t.Severity, Title: t.Title,
		Text: t.Message, Source: t.Source, Labels: t.Labels, CreatedAt: t.CreatedAt,
	}
	attempts := d.Attempts
	for {
		attempts++
		m.Attempt = attempts
		actx, cancel := context.WithTimeout(ctx, cmp.Or(s.Timeout, 30*time.Second))
		retry, err := s.Notifier.Notify(actx, m)
		cancel()
		if ctx.Err() != nil {
			// Shutting down: leave the delivery as it was; the record is
			// handled again after restart.
			return fmt.Errorf("deliver %s: interrupted: %w", t.DeliveryID, ctx.Err())
		}
		now := s.Now().UTC()
		if err == nil {
			log.Info("delivery sent", "attempt", attempts, "latency", now.Sub(t.CreatedAt))
			return s.Store.UpdateDeliveries(ctx, []store.DeliveryUpdate{{
				ID: t.DeliveryID, Status: herald.StatusSent, Attempts: attempts, SentAt: &now,
			}})
		}
		if !retry || attempts >= s.Retry.MaxAttempts {
			reason := err.Error()
			if retry {
				reason = fmt.Sprintf("gave up after %d attempts: %s", attempts, reason)
			}
			return s.dead(ctx, log, t, attempts, reason)
		}
		wait := s.Retry.delay(attempts)
		if ra, ok := notify.RetryAfter(err); ok && ra > wait {
			wait = ra
		}
		next := now.Add(wait)
		log.Warn("delivery attempt failed; will retry", "attempt", attempts, "err", err, "next_attempt_at", next)
		if err := s.Store.UpdateDeliveries(ctx, []store.DeliveryUpdate{{
			ID: t.DeliveryID, Status: herald.StatusFailed, Attempts: attempts, LastError: err.Error(), NextAttemptAt: &next,
		}}); err != nil {
			return err
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return fmt.Errorf("deliver %s: interrupted: %w", t.DeliveryID, ctx.Err())
		}
	}
}

// dead records the delivery as dead and hands it to the dead-letter topic.
func (s *Sender) dead(ctx context.Context, log *slog.Logger, t *task, attempts int, reason string) error {
	log.Warn("delivery dead", "attempts", attempts, "reason", reason)
	// Dead-letter first: a crash between the two repeats the dead letter
	// rather than losing it.
	if err := s.Producer.Produce(ctx, bus.DeadLetter(t.rec, errors.New(reason))); err != nil {
		return err
	}
	return s.Store.UpdateDeliveries(ctx, []store.DeliveryUpdate{{
		ID: t.DeliveryID, Status: herald.StatusDead, Attempts: attempts, LastError: reason,
	}})
}

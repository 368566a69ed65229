// Package deliver is the sending stage: it consumes one channel's deliveries
// topic, skips deliveries already final (dedupe across crashes and
// redeliveries), honours backpressure (Retry-After, a circuit breaker and
// token buckets per endpoint), makes one attempt per record, and records every
// outcome before the batch's offsets are committed. A transient failure goes
// to a delay-tier topic and comes back when due, so no partition waits behind
// it; a permanent failure, or the last attempt, becomes a dead letter.
package deliver

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/sony/gobreaker/v2"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/bus"
	"github.com/heraldproject/herald/cache"
	"github.com/heraldproject/herald/metrics"
	"github.com/heraldproject/herald/notify"
	"github.com/heraldproject/herald/store"
	"github.com/heraldproject/herald/tracing"
)

// Producer is what the sender needs from Kafka.
type Producer interface {
	Produce(ctx context.Context, recs ...*kgo.Record) error
}

// Retry bounds the attempts at one delivery.
type Retry struct {
	// MaxAttempts is the total number of attempts, the first included.
	MaxAttempts int
	// Delays[i] is the wait after attempt i+1 fails; the last entry repeats.
	// Each delay is a tier with its own topic (bus.RetryTopic).
	Delays []time.Duration
}

func (r Retry) delay(attempt int) time.Duration {
	d := r.Delays[min(max(attempt, 1)-1, len(r.Delays)-1)]
	// ±20% jitter so retries of many deliveries do not arrive together.
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// tier picks the delay tier for a wait: the shortest tier at least as long,
// else the longest. A record waits in its tier until its own due time.
func (r Retry) tier(wait time.Duration) time.Duration {
	tiers := slices.Clone(r.Delays)
	slices.Sort(tiers)
	for _, t := range tiers {
		if t >= wait {
			return t
		}
	}
	return tiers[len(tiers)-1]
}

// deadLetterNamespace makes dead letter ids deterministic.
var deadLetterNamespace = uuid.MustParse("b7e0f3a2-61c4-4d8e-9a35-0c2e7d1f4b68")

// Sender delivers one channel's records. Handle is its bus.Handler.
type Sender struct {
	Channel  herald.Channel
	Notifier notify.Notifier
	Store    *store.Store
	// Cache holds users' contacts; it may fail, and the store is asked
	// then. Nil means no cache.
	Cache cache.Cache
	// SentMarks, when set, is asked "already sent?" about a delivery this
	// process did not just create, and told of every send once the store
	// has recorded it. It is for a cache a fleet shares (Redis): another
	// process's send shows there as soon as it is recorded, sooner than in
	// a batch's snapshot of the store. Marks kept in this process alone
	// would add nothing: they are set only after the store records the
	// send, and every record is checked against the store anyway (the
	// batch's snapshot, or its own read once that is snapshotTTL old).
	SentMarks SentMarks
	// SentTTL is how long sent marks are kept.
	SentTTL time.Duration
	// Metrics records outcomes; nil records nothing.
	Metrics *metrics.Metrics
	// Tracer starts a herald.deliver span per record, child of the fan-out
	// span carried in the record (nil: no tracing).
	Tracer   trace.Tracer
	Producer Producer
	Retry    Retry
	Limits   Limits
	// Concurrency bounds how many records are sent at once.
	Concurrency int
	// RecipientConcurrency bounds how many of one recipient's records are in
	// flight at once. They are started in order, and a record waits for the
	// one before it in its alert stream (bus.HeaderStream), so one stream's
	// notifications arrive in order (retries aside); with 1 all of the
	// recipient's do. 0 shares Concurrency among the batch's recipients, at
	// least minRecipientShare each (see perRecipient). Channels
	// rate-limited per endpoint always use 1.
	RecipientConcurrency int
	// Fresh, when set, holds the deliveries this process's fan-out stage
	// has just created: their first record uses the known state (pending)
	// instead of reading it. The consumer must Clear it at every rebalance.
	Fresh *Fresh
	// Timeout bounds one attempt.
	Timeout time.Duration
	Logger  *slog.Logger
	Now     func() time.Time

	once sync.Once
	bp   *backpressure
	work *workers
}

// SentMarks records which deliveries have been sent (cache.Cache's sent
// marks); errors are ignored, the store being the record.
type SentMarks interface {
	Sent(ctx context.Context, deliveryID string) (bool, error)
	MarkSent(ctx context.Context, deliveryID string, ttl time.Duration) (bool, error)
}

// outcome is what handling one record decided: a store update and records
// to produce (retry or dead letter). Nothing is persisted until the whole
// batch is decided.
type outcome struct {
	update *store.DeliveryUpdate
	recs   []*kgo.Record
	// kind is the metrics outcome ("" for records that are not deliveries).
	kind    string
	latency time.Duration // accept to sent, for sent deliveries
}

// Handle sends one batch. Records for different recipients are handled
// concurrently; one recipient's are started in order, RecipientConcurrency at
// a time, and those of one alert stream (bus.HeaderStream: the same labels)
// one after another, each once the one before it has been answered. Each outcome is made durable as soon
// as it is known: its retry or dead-letter record is produced, then the
// outcome is recorded (group-committed with concurrent ones), so a crash
// repeats at most the sends in flight and those answered whose outcomes wait
// for their commit: together at most twice Concurrency. Handle returns once every outcome is
// recorded, and only then does the consumer commit. It returns an error when
// an outcome could not be produced or recorded, or when shutdown interrupted
// an attempt; the batch is then handled again and deliveries already sent are
// skipped.
func (s *Sender) Handle(ctx context.Context, recs []*kgo.Record) error {
	s.once.Do(func() {
		if s.Tracer == nil {
			s.Tracer = tracing.Tracer(nil)
		}
		s.work = newWorkers()
		s.bp = newBackpressure(s.Limits, func(ep string, open bool) {
			if open {
				s.Logger.Warn("circuit breaker open: this endpoint's deliveries wait until a probe succeeds",
					"channel", s.Channel, "endpoint", loggable(ep), "failures_in_a_row", s.Limits.BreakerFailures,
					"probe_after", s.Limits.BreakerOpen)
				s.Metrics.BreakerOpened(string(s.Channel))
			} else {
				s.Logger.Info("circuit breaker closed: the endpoint answers again", "channel", s.Channel, "endpoint", loggable(ep))
				s.Metrics.BreakerClosed(string(s.Channel))
			}
		})
	})
	// Read the state of every delivery in the batch at once, but for those
	// this process's fan-out stage has just created (Fresh: pending, no
	// attempt); a record whose delivery is not found here (or has no id
	// header) is read on its own.
	ids := make([]string, 0, len(recs))
	var created map[string]*herald.Delivery // from Fresh
	for _, r := range recs {
		id := bus.Header(r, bus.HeaderDeliveryID)
		switch {
		case id == "":
		case s.Fresh.Take(id):
			if created == nil {
				created = make(map[string]*herald.Delivery)
			}
			created[id] = &herald.Delivery{ID: id, AlertID: bus.Header(r, bus.HeaderAlertID),
				RecipientID: string(r.Key), Channel: s.Channel, Status: herald.StatusPending}
		default:
			ids = append(ids, id)
		}
	}
	snap := snapshot{at: time.Now(), gen: s.Store.DirectoryGeneration()}
	state, err := s.Store.DeliveriesByID(ctx, ids)
	if err != nil {
		return fmt.Errorf("deliver: %w", err)
	}
	maps.Copy(state, created)
	// Every value is decoded here, on the consumer's goroutine, whose
	// stack has grown: decoding needs a deep one (json/v2's options), and a
	// new goroutine's small stack was grown and copied for every record.
	items := make([]item, len(recs)) // decoded in place: one allocation for the batch
	byKey := make(map[string][]*item)
	var order []string
	for i, r := range recs {
		k := string(r.Key)
		if _, ok := byKey[k]; !ok {
			order = append(order, k)
		}
		it := &items[i]
		it.r = r
		if it.err = bus.DecodeValueFast(r, &it.t, decodeTaskFast); it.err == nil && it.t.DeliveryID == "" {
			it.err = errors.New("no deliveryId")
		}
		byKey[k] = append(byKey[k], it)
	}
	// The recipients (each record's key) too: from the cache, and those it
	// does not hold in one query instead of one per delivery (a big
	// group's first alert missed the cache 10,000 times).
	users, err := s.users(ctx, order)
	if err != nil {
		return fmt.Errorf("deliver: %w", err)
	}
	snap.state, snap.users, snap.created = state, users, created
	var (
		mu    sync.Mutex
		errs  []error
		wg    sync.WaitGroup
		slots = make(chan struct{}, max(s.Concurrency, 1))
		// open bounds the records begun and not yet recorded: sends in
		// flight, and answered ones waiting for their group commit. It is
		// what a crash or a failed commit can make the retried batch send
		// again.
		open = make(chan struct{}, 2*max(s.Concurrency, 1))
	)
	for _, k := range order {
		// One dispatcher per recipient starts its records in order, at most
		// RecipientConcurrency at a time, and a record only once the one
		// before it in its stream (bus.HeaderStream) has been sent; slots
		// bounds the sends in flight across recipients.
		wg.Add(1)
		s.work.Go(func() {
			defer wg.Done()
			var (
				kwg    sync.WaitGroup
				seenMu sync.Mutex
				seen   = make(map[string]bool)
				failed atomic.Bool
				mine   = make(chan struct{}, s.perRecipient(len(order)))
				// last holds, per stream, a channel closed once the
				// stream's latest started record has been sent.
				last = make(map[string]chan struct{})
			)
			for _, it := range byKey[k] {
				stream := bus.Header(it.r, bus.HeaderStream)
				if prev := last[stream]; prev != nil {
					<-prev
				}
				mine <- struct{}{}
				open <- struct{}{}
				slots <- struct{}{}
				if failed.Load() { // keep the rest for the retried batch, in order
					<-slots
					<-open
					<-mine
					break
				}
				done := make(chan struct{})
				last[stream] = done
				kwg.Add(1)
				s.work.Go(func() {
					defer kwg.Done()
					defer func() { <-open }()
					// The next record may start once this one's send is
					// over, while its outcome is still being made durable:
					// a stream's sends stay one after another (and in
					// order), commits overlap them. The send's slot is
					// freed then too: slots bounds sends to endpoints,
					// and an outcome waiting for its group commit is no
					// send (open bounds those waiting).
					var next sync.Once
					sent := func() { next.Do(func() { <-slots; <-mine; close(done) }) }
					defer sent()
					if err := s.one(ctx, *it, snap.fresh(s.Store), &seenMu, seen, sent); err != nil {
						failed.Store(true)
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
					}
				})
			}
			kwg.Wait()
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// minRecipientShare is the fewest sends in flight a recipient gets when
// RecipientConcurrency is 0 (automatic), however many recipients share a
// batch.
const minRecipientShare = 16

// perRecipient is how many of one recipient's records may be in flight in a
// batch of n recipients. A channel rate-limited per endpoint gets one: a
// recipient's sends would only queue on the limiter while holding slots
// other recipients could use. A set RecipientConcurrency is the bound.
// Automatic (0), a recipient gets an equal share of the channel's sends,
// and at least minRecipientShare: all of them when it is alone in the
// batch (one endpoint taking every alert, which 16 held to about 3,000
// sends/s at 5 ms each), and no more than its share when others wait, so a
// slow endpoint cannot take every slot from the recipients batched with it.
func (s *Sender) perRecipient(n int) int {
	if s.Limits.PerEndpoint > 0 {
		return 1
	}
	if s.RecipientConcurrency > 0 {
		return s.RecipientConcurrency
	}
	return max(minRecipientShare, max(s.Concurrency, 1)/max(n, 1))
}

// snapshotTTL is how long a batch's snapshot of delivery states and
// recipients is trusted; a record that starts later (behind rate limits or a
// slow endpoint) reads its delivery and recipient again, so a send recorded
// meanwhile is seen. Recipients are dropped from the snapshot sooner, at the
// first directory write through this process; a write by another process
// (a fleet on one PostgreSQL database) can go unseen for up to this long.
const snapshotTTL = 2 * time.Second

// snapshot is the state of a batch's deliveries, and its recipients, when
// the batch began.
type snapshot struct {
	at    time.Time // taken before either was read
	gen   uint64    // the store's directory generation then
	state map[string]*herald.Delivery
	users map[string]*herald.User
	// created holds the deliveries whose state is known from Fresh: just
	// created by this process's fan-out stage, so not sent by anyone.
	created map[string]*herald.Delivery
}

// fresh returns what of the snapshot may still be used: nothing once it is
// older than snapshotTTL (each record reads its own), and no recipients once
// the directory has changed.
func (b snapshot) fresh(s *store.Store) snapshot {
	if time.Since(b.at) > snapshotTTL {
		return snapshot{}
	}
	if s.DirectoryGeneration() != b.gen {
		b.users = nil
	}
	return b
}

// item is a record and its decoded value (or why it could not be decoded).
type item struct {
	r   *kgo.Record
	t   herald.DeliveryTask
	err error
}

// one decides and records one record inside its herald.deliver span.
// sent is called once the attempt is decided, before the outcome is made
// durable.
func (s *Sender) one(ctx context.Context, it item, snap snapshot, seenMu *sync.Mutex,
	seen map[string]bool, sent func()) error {
	r := it.r
	sctx, span := s.Tracer.Start(bus.ExtractTrace(ctx, r), "herald.deliver",
		trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(
			attribute.String("herald.channel", string(s.Channel)),
			attribute.String("herald.delivery_id", bus.Header(r, bus.HeaderDeliveryID))))
	defer span.End()
	o, err := s.handle(sctx, it, snap, func(id string) bool {
		seenMu.Lock()
		defer seenMu.Unlock()
		dup := seen[id]
		seen[id] = true
		return dup
	})
	if err == nil {
		sent()
		err = s.apply(sctx, &o)
	}
	span.SetAttributes(attribute.String("herald.outcome", o.kind))
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	return err
}

// apply makes an outcome durable: records first (a crash then repeats a
// retry or dead letter rather than losing it), then the store.
func (s *Sender) apply(ctx context.Context, o *outcome) error {
	if len(o.recs) > 0 {
		if err := s.Producer.Produce(ctx, o.recs...); err != nil {
			return fmt.Errorf("deliver: %w", err)
		}
	}
	if o.update != nil {
		if err := s.Store.RecordDelivery(ctx, *o.update); errors.Is(err, store.ErrOutcomeSkipped) {
			// A duplicate of this send was recorded sent first (or the
			// delivery's alert was pruned): this outcome, and any dead
			// letter it named, is not stored. A failure is counted as a
			// skipped duplicate; a send still reached the recipient, and
			// counts as one.
			s.Logger.Info("outcome not recorded: the delivery was sent already or is gone", "channel", s.Channel,
				"delivery_id", o.update.ID, "outcome", o.kind)
			if o.kind != metrics.OutcomeSent {
				o.kind = metrics.OutcomeDuplicate
			}
		} else if err != nil {
			return fmt.Errorf("deliver: %w", err)
		}
		if o.update.Status == herald.StatusSent && s.SentMarks != nil {
			_, _ = s.SentMarks.MarkSent(ctx, o.update.ID, cmp.Or(s.SentTTL, 7*24*time.Hour))
		}
	}
	ch := string(s.Channel)
	switch o.kind {
	case "":
	case metrics.OutcomeSent:
		s.Metrics.Delivery(ch, o.kind)
		s.Metrics.Sent(ch, o.latency)
	case metrics.OutcomeFailed, metrics.OutcomeDeferred:
		s.Metrics.Delivery(ch, o.kind)
		for _, r := range o.recs {
			s.Metrics.Retry(r.Topic)
		}
	case metrics.OutcomeDead:
		s.Metrics.Delivery(ch, o.kind)
		s.Metrics.DeadLetter(ch)
	default:
		s.Metrics.Delivery(ch, o.kind)
	}
	return nil
}

// handle decides one record.
func (s *Sender) handle(ctx context.Context, it item, snap snapshot,
	seen func(deliveryID string) bool) (outcome, error) {
	r, t := it.r, it.t
	if err := it.err; err != nil {
		s.Logger.Warn("undecodable delivery record dead-lettered", "topic", r.Topic, "partition", r.Partition,
			"offset", r.Offset, "err", err)
		return outcome{recs: []*kgo.Record{bus.DeadLetter(r, fmt.Errorf("decode delivery: %w", err))}}, nil
	}
	if seen(t.DeliveryID) {
		return outcome{kind: metrics.OutcomeDuplicate}, nil // the same delivery twice in one batch
	}
	log := recordLog{l: s.Logger, attrs: func() []any {
		return []any{"delivery_id", t.DeliveryID, "alert_id", t.AlertID, "channel", s.Channel,
			"topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "request_id", bus.Header(r, bus.HeaderRequestID)}
	}}

	// A delivery this process's fan-out stage has just created cannot have
	// been sent: its state is known without asking the cache (a Redis round
	// trip per delivery; 1.1% of the CPU at fan-out 10 with the in-process
	// cache).
	if s.SentMarks != nil && snap.created[t.DeliveryID] == nil {
		if sent, _ := s.SentMarks.Sent(ctx, t.DeliveryID); sent {
			log.Debug("already sent (cache); skipped")
			return outcome{kind: metrics.OutcomeDuplicate}, nil
		}
	}
	// The batch's snapshot holds each delivery's state before this batch;
	// seen makes sure it is used for the first record of a delivery only.
	d, err := snap.state[t.DeliveryID], error(nil)
	if d == nil {
		d, err = s.Store.Delivery(ctx, t.DeliveryID)
	}
	if herald.ErrorCode(err) == herald.ENOTFOUND {
		log.Warn("record for an unknown delivery dead-lettered")
		return outcome{recs: []*kgo.Record{bus.DeadLetter(r, errors.New("unknown delivery id "+t.DeliveryID))}}, nil
	}
	if err != nil {
		return outcome{}, err
	}
	base := d.BudgetBase
	var newBase *int
	var replayOf string // the dead letter this record replays
	switch {
	case d.Status == herald.StatusSent:
		log.Debug("already sent; skipped")
		return outcome{kind: metrics.OutcomeDuplicate}, nil
	case d.Status == herald.StatusDead:
		replay := bus.Header(r, bus.HeaderReplay)
		if replay == "" || replay != d.DeadLetterID {
			log.Debug("already dead; skipped")
			return outcome{kind: metrics.OutcomeDuplicate}, nil
		}
		base = d.Attempts // a replay starts a new retry budget
		newBase, replayOf = &base, replay
		log.Info("replaying dead letter", "dead_letter_id", replay)
	}
	u, err := snap.users[t.RecipientID], error(nil)
	if u == nil {
		u, err = s.user(ctx, t.RecipientID)
	}
	if herald.ErrorCode(err) == herald.ENOTFOUND {
		return s.dead(log, r, &t, d, d.Attempts, newBase, nil, "recipient was deleted before delivery"), nil
	}
	if err != nil {
		return outcome{}, err
	}
	now := s.Now()
	ep, breaker := endpoints(s.Channel, u)
	if wait := s.bp.notBefore(ep, now); wait > 0 {
		log.Debug("endpoint asked to wait (Retry-After); deferred", "wait", wait)
		return s.later(r, &t, d, newBase, wait, "endpoint asked to wait (Retry-After)"), nil
	}
	if ls := s.bp.limitersFor(ep); len(ls) > 0 {
		start := time.Now()
		for _, l := range ls {
			if err := l.Wait(ctx); err != nil {
				return outcome{}, fmt.Errorf("deliver %s: rate limit: %w", t.DeliveryID, err)
			}
		}
		s.Metrics.RateLimitWait(string(s.Channel), time.Since(start))
	}

	m := &notify.Message{DeliveryID: t.DeliveryID, AlertID: t.AlertID, Recipient: u, Severity: t.Severity,
		Title: t.Title, Text: t.Message, Source: t.Source, Labels: t.Labels, CreatedAt: t.CreatedAt}
	attempt := d.Attempts + 1
	m.Attempt = attempt
	retry, sendErr := s.send(ctx, breaker, m)
	if ctx.Err() != nil {
		return outcome{}, fmt.Errorf("deliver %s: interrupted: %w", t.DeliveryID, ctx.Err())
	}
	if errors.Is(sendErr, gobreaker.ErrOpenState) || errors.Is(sendErr, gobreaker.ErrTooManyRequests) {
		wait := cmp.Or(s.Limits.BreakerOpen, time.Second)
		log.Debug("circuit breaker open; deferred", "wait", wait)
		return s.later(r, &t, d, newBase, wait, "circuit breaker open for this webhook URL or endpoint"), nil
	}
	now = s.Now()
	if sendErr == nil {
		sent := now.UTC()
		// Debug, not Info: the store keeps every send, and a line per
		// delivery was 4% of CPU at 10,000 deliveries/s.
		log.Debug("delivery sent", "attempt", attempt, "latency", now.Sub(t.CreatedAt))
		return outcome{update: &store.DeliveryUpdate{ID: t.DeliveryID, Status: herald.StatusSent, Attempts: attempt,
			SentAt: &sent, BudgetBase: newBase, ReplayOf: replayOf},
			kind: metrics.OutcomeSent, latency: now.Sub(t.CreatedAt)}, nil
	}
	reason := sendErr.Error()
	history := &herald.Attempt{Attempt: attempt, At: now.UTC(), Error: reason}
	ra, hasRA := notify.RetryAfter(sendErr)
	if hasRA {
		s.bp.hold(ep, now.Add(ra))
	}
	if !retry {
		return s.dead(log, r, &t, d, attempt, newBase, history, reason), nil
	}
	if attempt-base >= s.Retry.MaxAttempts {
		gaveUp := fmt.Sprintf("gave up after %d attempts: %s", attempt-base, reason)
		if base > 0 { // a replay's fresh budget
			gaveUp = fmt.Sprintf("gave up after %d attempts since the replay (%d in all): %s", attempt-base, attempt, reason)
		}
		return s.dead(log, r, &t, d, attempt, newBase, history, gaveUp), nil
	}
	wait := s.Retry.delay(attempt - base)
	if hasRA && ra > wait {
		wait = ra
	}
	next := now.Add(wait).UTC()
	log.Warn("delivery attempt failed; will retry", "attempt", attempt, "err", reason, "next_attempt_at", next)
	t.Attempt = attempt
	return outcome{
		update: &store.DeliveryUpdate{ID: t.DeliveryID, Status: herald.StatusFailed, Attempts: attempt,
			LastError: reason, NextAttemptAt: &next, BudgetBase: newBase, Attempt: history},
		recs: []*kgo.Record{s.retryRecord(r, &t, next, wait)},
		kind: metrics.OutcomeFailed,
	}, nil
}

// user reads one recipient as users does; ENOTFOUND when there is none.
func (s *Sender) user(ctx context.Context, id string) (*herald.User, error) {
	us, err := s.users(ctx, []string{id})
	if err != nil {
		return nil, err
	}
	if u := us[id]; u != nil {
		return u, nil
	}
	return nil, herald.Errorf(herald.ENOTFOUND, "user %q not found", id)
}

// users reads a batch's recipients: from the cache in one call, and those
// it does not hold from the store in one query, then caches them in one
// call. A recipient missing from the result (deleted, or an undecodable
// record's key) is read again by its record, which decides what to do.
func (s *Sender) users(ctx context.Context, ids []string) (map[string]*herald.User, error) {
	if s.Cache == nil {
		return s.Store.UsersByID(ctx, ids)
	}
	out, err := s.Cache.Users(ctx, ids)
	if err != nil || out == nil { // the cache is best effort: ask the store
		out = make(map[string]*herald.User, len(ids))
	}
	var missing []string
	for _, id := range ids {
		if out[id] == nil {
			missing = append(missing, id)
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	read, err := s.Store.UsersByID(ctx, missing)
	if err != nil {
		return nil, err
	}
	put := make([]*herald.User, 0, len(read))
	for id, u := range read {
		out[id] = u
		put = append(put, u)
	}
	_ = s.Cache.PutUsers(ctx, put)
	return out, nil
}

// send makes one attempt through the breaker named key (endpoints).
func (s *Sender) send(ctx context.Context, key string, m *notify.Message) (bool, error) {
	actx, cancel := context.WithTimeout(ctx, cmp.Or(s.Timeout, 30*time.Second))
	defer cancel()
	cb := s.bp.breaker(key)
	if cb == nil {
		return s.Notifier.Notify(actx, m)
	}
	retry, err := cb.Execute(func() (bool, error) {
		retry, err := s.Notifier.Notify(actx, m)
		if err != nil && !retry {
			return false, errPermanent{err}
		}
		return retry, err
	})
	var p errPermanent
	if errors.As(err, &p) {
		return false, p.error
	}
	return retry, err
}

// later puts the record back on a delay tier without counting an attempt
// (the endpoint was not asked).
func (s *Sender) later(r *kgo.Record, t *herald.DeliveryTask, d *herald.Delivery, newBase *int, wait time.Duration, why string) outcome {
	next := s.Now().Add(wait).UTC()
	status := d.Status
	if status == herald.StatusDead { // a replay deferred before its first attempt
		status = herald.StatusPending
	}
	return outcome{
		update: &store.DeliveryUpdate{ID: d.ID, Status: status, Attempts: d.Attempts, LastError: cmp.Or(d.LastError, why),
			NextAttemptAt: &next, BudgetBase: newBase},
		recs: []*kgo.Record{s.retryRecord(r, t, next, wait)},
		kind: metrics.OutcomeDeferred,
	}
}

func (s *Sender) retryRecord(r *kgo.Record, t *herald.DeliveryTask, due time.Time, wait time.Duration) *kgo.Record {
	v, err := json.Marshal(t)
	if err != nil { // a DeliveryTask always encodes
		v = r.Value
	}
	next := &kgo.Record{Key: r.Key, Value: v, Headers: r.Headers}
	return bus.Delayed(next, bus.RetryTopic(s.Retry.tier(wait)), bus.DeliveryTopic(s.Channel), due)
}

// dead ends a delivery: a dead letter on the DLQ topic and in the store, and
// the delivery marked dead with its id.
func (s *Sender) dead(log recordLog, r *kgo.Record, t *herald.DeliveryTask, d *herald.Delivery, attempts int,
	newBase *int, history *herald.Attempt, reason string) outcome {
	id := uuid.NewSHA1(deadLetterNamespace, fmt.Appendf(nil, "%s/%d", t.DeliveryID, attempts)).String()
	log.Warn("delivery dead", "attempts", attempts, "reason", reason, "dead_letter_id", id)
	dlq := bus.DeadLetter(r, errors.New(reason))
	dlq.Headers = append(dlq.Headers, kgo.RecordHeader{Key: bus.HeaderDeadLetterID, Value: []byte(id)})
	return outcome{
		update: &store.DeliveryUpdate{ID: t.DeliveryID, Status: herald.StatusDead, Attempts: attempts, LastError: reason,
			BudgetBase: newBase, Attempt: history, DeadLetter: &herald.DeadLetter{
				ID: id, Kind: herald.DeadDelivery, DeliveryID: t.DeliveryID, AlertID: t.AlertID, Channel: s.Channel,
				RecipientID: t.RecipientID, Recipient: cmp.Or(d.Recipient, t.Recipient), Reason: reason, Attempts: attempts,
				Source: fmt.Sprintf("%s/%d/%d", r.Topic, r.Partition, r.Offset), Key: r.Key, Payload: r.Value,
				CreatedAt: s.Now().UTC(),
			}},
		recs: []*kgo.Record{dlq},
		kind: metrics.OutcomeDead,
	}
}

// recordLog logs lines about one record with the record's attributes, built
// only when a line is written at an enabled level: Logger.With formats its
// attributes at once, which cost 3% of CPU per record, and most records log
// nothing.
type recordLog struct {
	l     *slog.Logger
	attrs func() []any
}

func (r recordLog) log(level slog.Level, msg string, args ...any) {
	ctx := context.Background()
	if !r.l.Enabled(ctx, level) {
		return
	}
	r.l.Log(ctx, level, msg, append(r.attrs(), args...)...)
}

// Debug logs at debug level.
func (r recordLog) Debug(msg string, args ...any) { r.log(slog.LevelDebug, msg, args...) }

// Info logs at info level.
func (r recordLog) Info(msg string, args ...any) { r.log(slog.LevelInfo, msg, args...) }

// Warn logs at warn level.
func (r recordLog) Warn(msg string, args ...any) { r.log(slog.LevelWarn, msg, args...) }

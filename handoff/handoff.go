// Package handoff carries delivery records from the fan-out stage to the
// sending stage of the same process in memory, instead of through Kafka.
//
// The fan-out stage produces a delivery record per delivery it records;
// when this process also sends that channel, the record can go straight to
// the sender, saving a produce, the broker's write and read, a fetch and its
// decoding, and an offset commit per batch (19% of the CPU per notification
// at one recipient: docs/BENCHMARKS.md). What makes it safe is the alert
// record: the fan-out stage's consumer commits an alert batch only once
// every delivery it handed on here has been sent and its outcome recorded
// (bus.Defer), so a crash redelivers the alert, whose fan-out finds its
// deliveries stored and hands on those not yet final again, as it does for
// any alert seen twice. Nothing is kept only in memory.
//
// One queue per channel keeps the order Kafka's partitions kept: records
// are handed to the sender in batches, one batch at a time, in the order
// they came. The fan-out stage waits briefly (TakeWait) for the sender to
// take what it handed on, so it fans out in bigger batches when the sender
// is busy. A queue that falls behind spills:
// when a batch has been sending for MaxWait (a slow endpoint), or the queue
// has stayed full that long (more deliveries than the channel sends), its
// records go to the channel's Kafka topic from then on, as without the
// hand-off, so a backlog waits in Kafka rather than in memory, and other
// channels and alerts are not held up. A spilled record waits for the
// queue's earlier records to the same recipient first, so one recipient's
// notifications stay in order. A queue takes records again once it is
// empty and the sending stage has committed past every record it spilled.
package handoff

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/heraldproject/herald/bus"
)

// Producer is what the hand-off needs from Kafka: the fan-out stage's
// producer, for records that are not handed on.
type Producer interface {
	ProduceAsync(ctx context.Context, recs ...*kgo.Record) (wait func() error)
}

// Committed returns the offsets group has committed on topic, by partition:
// the next offset the group will read there.
type Committed func(ctx context.Context, group, topic string) (map[int32]int64, error)

// Send handles one batch of a channel's records, as the sending stage's
// consumer would (deliver.Sender.Handle): it returns once every outcome is
// recorded, or an error, and the batch is then sent again.
type Send func(ctx context.Context, recs []*kgo.Record) error

// Options configure a Handoff.
type Options struct {
	// Kafka produces what is not handed on.
	Kafka Producer
	// Committed tells when the sending stage has handled what a queue
	// spilled.
	Committed Committed
	// EndOffsets, when set, returns a topic's end offsets by partition. A
	// queue then starts spilling, as if it had spilled everything in its
	// topic, and takes records in memory once the sending stage has
	// committed past what was there at the start: a backlog left in the
	// topic (by an earlier process's spill, or from before the hand-off)
	// is sent before newer deliveries to the same recipients.
	EndOffsets func(ctx context.Context, topic string) (map[int32]int64, error)
	Logger     *slog.Logger
	// Capacity is how many records a queue holds (default 2,000). A
	// record that finds it full waits up to MaxWait (default 500 ms) for
	// room; once one has waited that long, or a batch has been sending
	// that long, the queue spills.
	Capacity int
	MaxWait  time.Duration
	// TakeWait is how long a call waits for the senders to take the
	// records it handed on (default 5 ms).
	TakeWait time.Duration
	// MaxBatch bounds the records of one Send (default 500, as a consumer's
	// poll).
	MaxBatch int
	// CheckEvery is how often a spilled queue that is empty asks whether
	// the sending stage has caught up (default 250 ms).
	CheckEvery time.Duration
}

// Handoff is a fanout.Producer that hands delivery records to this
// process's senders. Add the channels, then Start; Close after the fan-out
// stage has stopped.
type Handoff struct {
	o      Options
	queues map[string]*queue // by topic
	wg     sync.WaitGroup
}

// New returns a Handoff with no channel yet.
func New(o Options) *Handoff {
	if o.Capacity <= 0 {
		o.Capacity = 2000
	}
	if o.MaxWait <= 0 {
		o.MaxWait = 500 * time.Millisecond
	}
	if o.TakeWait <= 0 {
		o.TakeWait = 5 * time.Millisecond
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 500
	}
	if o.CheckEvery <= 0 {
		o.CheckEvery = 250 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Handoff{o: o, queues: make(map[string]*queue)}
}

// Add hands the records produced to topic to send; channel names the queue
// in metrics; group is the consumer group that reads topic (the sending
// stage's), whose commits tell when what was spilled has been handled.
// onBatch, when set, is told of each batch sent, as
// bus.ConsumerOptions.OnBatch is. Call it before Start.
func (h *Handoff) Add(channel, topic, group string, send Send, onBatch func(recs []*kgo.Record, began time.Time, took time.Duration)) {
	h.queues[topic] = &queue{h: h, channel: channel, topic: topic, group: group, send: send, onBatch: onBatch,
		local: make(map[string]int), wake: make(chan struct{}, 1),
		spill: h.o.EndOffsets != nil, backlog: h.o.EndOffsets != nil,
		log: h.o.Logger.With("topic", topic)}
}

// Start runs a worker per queue until Close; work bounds the sends (as a
// consumer's work context: it should outlive the fan-out stage).
func (h *Handoff) Start(work context.Context) {
	for _, q := range h.queues {
		h.wg.Go(func() { q.run(work) })
	}
}

// Close stops the workers once their queues are empty (or work has ended)
// and waits for them.
func (h *Handoff) Close() {
	for _, q := range h.queues {
		q.mu.Lock()
		q.closed = true
		q.mu.Unlock()
		q.poke()
	}
	h.wg.Wait()
}

// ProduceAsync hands the records of the channels added to their queues and
// produces the rest (and those spilled) to Kafka. wait returns once Kafka
// has acknowledged what was produced. What was handed on is waited for by
// the consumer whose handler's ctx this is, before it commits the batch
// (bus.Defer); called outside a consumer, wait waits for it too.
func (h *Handoff) ProduceAsync(ctx context.Context, recs ...*kgo.Record) (wait func() error) {
	var kafka []*kgo.Record
	t := &tracker{done: make(chan struct{})}
	t.n.Store(1)     // held until every record is placed
	var marks []mark // the queues this call's records went to
	var spilled map[*queue][]*kgo.Record
	for _, r := range recs {
		q := h.queues[r.Topic]
		if q == nil {
			kafka = append(kafka, r)
			continue
		}
		if !slices.ContainsFunc(marks, func(m mark) bool { return m.q == q }) {
			marks = append(marks, mark{q: q})
		}
		switch q.offer(ctx, r, t) {
		case placedKafka:
			kafka = append(kafka, r)
			if spilled == nil {
				spilled = make(map[*queue][]*kgo.Record)
			}
			spilled[q] = append(spilled[q], r)
		case placedNowhere: // ctx ended while the queue was full, or the worker
			t.fail(fmt.Errorf("%s: not handed on: %w", r.Topic, cmp.Or(ctx.Err(), errStopped)))
		}
	}
	t.finish(nil)
	for i := range marks {
		marks[i].added = marks[i].q.addedSoFar()
	}
	var kwait func() error
	if len(kafka) > 0 {
		kwait = h.o.Kafka.ProduceAsync(ctx, kafka...)
	}
	handed := t.wait
	if bus.Defer(ctx, handed) {
		handed = nil
	}
	return func() error {
		var errs []error
		h.awaitTaken(ctx, marks)
		if kwait != nil {
			err := kwait()
			for q, rs := range spilled {
				q.spilledAcked(rs, err)
			}
			errs = append(errs, err)
		}
		if handed != nil {
			errs = append(errs, handed())
		}
		return errors.Join(errs...)
	}
}

// errStopped is why a record offered after the hand-off stopped is refused.
var errStopped = errors.New("the hand-off has stopped")

// mark is how many records had been added to a queue once a call's were.
type mark struct {
	q     *queue
	added int64
}

// awaitTaken waits until the senders have taken (begun sending) a call's
// records, for at most TakeWait. A fan-out stage faster than its senders
// then fans out in bigger batches: each batch costs a transaction, a fetch
// and an offset commit whatever its size, and letting the fan-out run
// ahead with small batches cost as much CPU as the hand-off saved
// (docs/BENCHMARKS.md). The wait is short so that it adds little latency
// where the senders keep up, and holds the fan-out up little behind a
// sender stuck on a slow endpoint (whose queue spills: offer).
func (h *Handoff) awaitTaken(ctx context.Context, marks []mark) {
	var timer *time.Timer
	for _, m := range marks {
		for {
			took := m.q.takenSince(m.added)
			if took == nil {
				break
			}
			if timer == nil {
				timer = time.NewTimer(h.o.TakeWait)
				defer timer.Stop()
			}
			select {
			case <-took:
			case <-timer.C:
				return
			case <-ctx.Done():
				return
			}
		}
	}
}

// tracker counts the records of one ProduceAsync call still in a queue.
type tracker struct {
	n    atomic.Int64 // records not yet done, +1 while placing
	mu   sync.Mutex
	err  error
	done chan struct{}
}

// finish marks one record done (err: abandoned).
func (t *tracker) finish(err error) {
	t.fail(err)
	if t.n.Add(-1) == 0 {
		close(t.done)
	}
}

// fail records err, when it is the first.
func (t *tracker) fail(err error) {
	if err == nil {
		return
	}
	t.mu.Lock()
	if t.err == nil {
		t.err = err
	}
	t.mu.Unlock()
}

func (t *tracker) wait() error {
	<-t.done
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err != nil {
		return fmt.Errorf("handoff: %w", t.err)
	}
	return nil
}

// item is a record in a queue.
type item struct {
	r     *kgo.Record
	t     *tracker
	spill bool // produce it to Kafka when its turn comes, do not send it
}

// placed says where offer put a record.
type placed int

const (
	placedQueue   placed = iota // in the queue, to be sent (or spilled in turn)
	placedKafka                 // to be produced with the call's other records
	placedNowhere               // ctx ended while the queue was full
)

// queue is one channel's records on their way to its sender.
type queue struct {
	h       *Handoff
	channel string
	topic   string
	group   string
	send    Send
	onBatch func([]*kgo.Record, time.Time, time.Duration)
	log     *slog.Logger
	wake    chan struct{}

	mu     sync.Mutex
	items  []item         // waiting, in order; the worker takes from the front
	local  map[string]int // by recipient (record key): records queued or being sent
	held   int            // spilled records waiting in items for a recipient's earlier ones
	spill  bool           // spilling: new records go to Kafka
	acking int            // spilled records produced and not yet acknowledged
	// spilled is the highest offset spilled per partition, not yet known
	// to be committed by group.
	spilled map[int32]int64
	closed  bool
	stopped bool      // the worker has returned: offer places nothing
	backlog bool      // the topic's end offsets at the start are still to be read into spilled
	sending time.Time // when the batch being sent began (zero: none)
	added   int64     // records ever queued
	takenN  int64     // records ever taken by the worker (the front of items)
	// changed is closed, and a new one made, when the worker takes records
	// or they leave the queue (nil: nobody waits).
	changed chan struct{}
	// spills counts the records that went through Kafka because the queue
	// was spilling.
	spills int64
}

// offer places r: in the queue, to be sent; or, when the queue is
// spilling, with the call's records for Kafka, unless an earlier record to
// the same recipient is still queued, when it waits in the queue for it. A
// full queue that is moving holds the caller up to MaxWait, so a fan-out
// faster than its senders waits for them rather than spilling (the hand-off
// is cheaper than Kafka); one still full after that spills.
func (q *queue) offer(ctx context.Context, r *kgo.Record, t *tracker) placed {
	key := string(r.Key)
	var waiting time.Time // since when this record has waited for room
	q.mu.Lock()
	for {
		var wait time.Duration // how long to wait for room before looking again
		switch {
		case q.stopped:
			q.mu.Unlock()
			return placedNowhere
		case !q.spill && !q.sending.IsZero() && time.Since(q.sending) >= q.h.o.MaxWait:
			q.spill = true
			q.log.Info("hand-off queue stuck (a batch has been sending for longer than its wait): deliveries go through "+
				"Kafka until the sending stage catches up", "queued", len(q.items), "sending_for", time.Since(q.sending).Round(time.Millisecond))
			continue
		case !q.spill && len(q.items) >= q.h.o.Capacity:
			if waiting.IsZero() {
				waiting = time.Now()
			}
			if wait = q.h.o.MaxWait - time.Since(waiting); wait <= 0 {
				q.spill = true
				q.log.Info("hand-off queue still full: deliveries go through Kafka until the sending stage catches up",
					"queued", len(q.items), "waited", q.h.o.MaxWait)
				continue
			}
		case !q.spill:
			return q.enqueue(item{r: r, t: t})
		case q.local[key] == 0:
			q.acking++
			q.spills++
			q.mu.Unlock()
			return placedKafka
		case q.held < q.h.o.Capacity:
			// Behind its recipient's earlier records: produced in turn.
			q.held++
			q.spills++
			return q.enqueue(item{r: r, t: t, spill: true})
		default:
			// So many records wait behind a slow recipient that memory,
			// not Kafka, would hold the backlog: the fan-out waits.
			wait = time.Minute
		}
		changed := q.waitChange()
		q.mu.Unlock()
		timer := time.NewTimer(wait)
		select {
		case <-changed:
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return placedNowhere
		}
		timer.Stop()
		q.mu.Lock()
	}
}

// enqueue appends it to the queue and wakes the worker. Call it with mu
// held; it unlocks mu.
func (q *queue) enqueue(it item) placed {
	q.local[string(it.r.Key)]++
	q.added++
	it.t.n.Add(1)
	q.items = append(q.items, it)
	q.mu.Unlock()
	q.poke()
	return placedQueue
}

// addedSoFar returns how many records have ever been queued.
func (q *queue) addedSoFar() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.added
}

// takenSince returns a channel closed when the worker next takes records,
// or nil once it has taken the first n records ever queued.
func (q *queue) takenSince(n int64) <-chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.takenN >= n {
		return nil
	}
	return q.waitChange()
}

// waitChange returns a channel closed at the next change (signal). Call it
// with mu held.
func (q *queue) waitChange() <-chan struct{} {
	if q.changed == nil {
		q.changed = make(chan struct{})
	}
	return q.changed
}

// signal wakes whoever waits for a change. Call it with mu held.
func (q *queue) signal() {
	if q.changed != nil {
		close(q.changed)
		q.changed = nil
	}
}

// took records that the worker has taken the next n records, to send
// (sending) or to spill.
func (q *queue) took(n int, sending bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.takenN += int64(n)
	if sending {
		q.sending = time.Now()
	}
	q.signal()
}

// spilledAcked notes what produce made of records spilled by offer.
func (q *queue) spilledAcked(rs []*kgo.Record, err error) {
	q.mu.Lock()
	q.acking -= len(rs)
	if err == nil {
		q.noteSpilled(rs)
	} // else the fan-out's batch fails and is handled again
	q.mu.Unlock()
	q.poke()
}

// noteSpilled records the offsets of produced records. Call it with mu held.
func (q *queue) noteSpilled(rs []*kgo.Record) {
	if q.spilled == nil {
		q.spilled = make(map[int32]int64)
	}
	for _, r := range rs {
		if off, ok := q.spilled[r.Partition]; !ok || r.Offset > off {
			q.spilled[r.Partition] = r.Offset
		}
	}
}

func (q *queue) poke() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// run takes the queue's records in order: a run of records to send is sent
// as a batch (up to MaxBatch), a run of spilled ones produced to Kafka. Once
// work has ended, what is queued is abandoned (sends fail, and so do their
// callers' waits). It returns once closed and empty.
func (q *queue) run(work context.Context) {
	tick := time.NewTicker(q.h.o.CheckEvery)
	defer tick.Stop()
	for {
		q.mu.Lock()
		n := 0
		for n < len(q.items) && n < q.h.o.MaxBatch && q.items[n].spill == q.items[0].spill {
			n++
		}
		batch := q.items[:n:n]
		closed, idleSpill := q.closed, n == 0 && q.spill && q.acking == 0
		q.mu.Unlock()
		switch {
		case n > 0 && !batch[0].spill:
			q.took(n, true)
			q.sendBatch(work, batch)
			continue
		case n > 0:
			q.took(n, false)
			q.spillBatch(work, batch)
			continue
		case closed || work.Err() != nil:
			q.mu.Lock()
			if len(q.items) == 0 { // else taken after all
				q.stopped = true
				q.mu.Unlock()
				return
			}
			q.mu.Unlock()
			continue
		case idleSpill:
			q.caughtUp(work)
		}
		select {
		case <-q.wake:
		case <-tick.C:
		case <-work.Done():
		}
	}
}

// records returns the records of batch.
func records(batch []item) []*kgo.Record {
	recs := make([]*kgo.Record, len(batch))
	for i, it := range batch {
		recs[i] = it.r
	}
	return recs
}

// retry runs f until it succeeds or work ends (its last error then),
// backing off from 100 ms to 10 s between tries and logging each failure
// as what failed.
func (q *queue) retry(work context.Context, what string, n int, f func() error) error {
	backoff := 100 * time.Millisecond
	for {
		err := f()
		if err == nil || work.Err() != nil {
			return err
		}
		q.log.Error(what+"; retrying", "records", n, "err", err, "backoff", backoff)
		select {
		case <-time.After(backoff):
		case <-work.Done():
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

// sendBatch sends batch until it succeeds or work ends, then takes it off
// the queue.
func (q *queue) sendBatch(work context.Context, batch []item) {
	recs := records(batch)
	began := time.Now()
	err := q.retry(work, "handed-on batch failed", len(recs), func() error { return q.send(work, recs) })
	if err == nil && q.onBatch != nil {
		q.onBatch(recs, began, time.Since(began))
	}
	q.taken(batch, err)
}

// spillBatch produces spilled records whose turn has come, until it
// succeeds or work ends.
func (q *queue) spillBatch(work context.Context, batch []item) {
	recs := records(batch)
	err := q.retry(work, "spilling to Kafka failed", len(recs), func() error { return q.h.o.Kafka.ProduceAsync(work, recs...)() })
	q.mu.Lock()
	if err == nil {
		q.noteSpilled(recs)
	}
	q.mu.Unlock()
	q.taken(batch, err)
}

// taken removes batch, the front of the queue, and tells its callers.
func (q *queue) taken(batch []item, err error) {
	q.mu.Lock()
	q.items = q.items[len(batch):]
	q.sending = time.Time{}
	for _, it := range batch {
		k := string(it.r.Key)
		if q.local[k]--; q.local[k] == 0 {
			delete(q.local, k)
		}
		if it.spill {
			q.held--
		}
	}
	q.signal()
	q.mu.Unlock()
	for _, it := range batch {
		it.t.finish(err)
	}
}

// caughtUp takes the queue out of spilling once the sending stage has
// committed past every record it spilled.
func (q *queue) caughtUp(ctx context.Context) {
	if q.backlog {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ends, err := q.h.o.EndOffsets(cctx, q.topic)
		cancel()
		if err != nil {
			q.log.Debug("hand-off: cannot read the topic's end offsets", "err", err)
			return
		}
		q.mu.Lock()
		if q.spilled == nil {
			q.spilled = make(map[int32]int64)
		}
		for p, end := range ends {
			if off, ok := q.spilled[p]; end > 0 && (!ok || end-1 > off) {
				q.spilled[p] = end - 1
			}
		}
		q.backlog = false
		q.mu.Unlock()
	}
	q.mu.Lock()
	want := make(map[int32]int64, len(q.spilled))
	for p, off := range q.spilled {
		want[p] = off
	}
	q.mu.Unlock()
	if len(want) > 0 {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		got, err := q.h.o.Committed(cctx, q.group, q.topic)
		cancel()
		if err != nil {
			q.log.Debug("hand-off: cannot read the sending stage's offsets", "err", err)
			return
		}
		for p, off := range want {
			if got[p] <= off {
				return
			}
		}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) > 0 || q.acking > 0 {
		return // spilled more meanwhile
	}
	for p, off := range want {
		if q.spilled[p] == off {
			delete(q.spilled, p)
		}
	}
	if len(q.spilled) == 0 {
		q.spill = false
		if q.spills == 0 { // at start-up, behind the topic's backlog (none, usually)
			q.log.Debug("hand-off queue taking deliveries: nothing left in the topic before them")
		} else {
			q.log.Info("hand-off queue taking deliveries again: the sending stage has caught up")
		}
	}
}

// Describe sends the metrics' descriptions (prometheus.Collector).
func (h *Handoff) Describe(ch chan<- *prometheus.Desc) {
	ch <- queuedDesc
	ch <- spillingDesc
	ch <- spilledDesc
}

var (
	queuedDesc = prometheus.NewDesc("herald_handoff_queued",
		"Delivery records handed from the fan-out stage to this process's sender and not yet sent (or spilled), by channel.",
		[]string{"channel"}, nil)
	spillingDesc = prometheus.NewDesc("herald_handoff_spilling",
		"1 while a channel's hand-off queue sends its records through Kafka (it was full), else 0.",
		[]string{"channel"}, nil)
	spilledDesc = prometheus.NewDesc("herald_handoff_spilled_total",
		"Delivery records that went through Kafka because their channel's hand-off queue was full.",
		[]string{"channel"}, nil)
)

// Collect sends each queue's metrics (prometheus.Collector).
func (h *Handoff) Collect(ch chan<- prometheus.Metric) {
	for _, q := range h.queues {
		q.mu.Lock()
		queued, spilling, spills := len(q.items), q.spill, q.spills
		q.mu.Unlock()
		ch <- prometheus.MustNewConstMetric(queuedDesc, prometheus.GaugeValue, float64(queued), q.channel)
		ch <- prometheus.MustNewConstMetric(spillingDesc, prometheus.GaugeValue, map[bool]float64{true: 1}[spilling], q.channel)
		ch <- prometheus.MustNewConstMetric(spilledDesc, prometheus.CounterValue, float64(spills), q.channel)
	}
}

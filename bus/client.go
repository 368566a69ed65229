package bus

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kslog"
)

// ClientOptions configures a Kafka client.
type ClientOptions struct {
	Brokers  []string
	ClientID string
	Logger   *slog.Logger
	TLS      TLS
	SASL     SASL
	// SessionTimeout is the consumer group session timeout (default 45s).
	SessionTimeout time.Duration
	// RebalanceTimeout bounds how long a rebalance waits for members to
	// rejoin (default 60s).
	RebalanceTimeout time.Duration
	// Hooks observe the client (franz-go's kprom metrics).
	Hooks []kgo.Hook
	// Dial, when set, opens the client's connections instead of TCP and
	// TLS (Broker.Dial, for the embedded broker, which speaks neither TLS
	// nor SASL).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// kgoOpts turns the options into franz-go options. Invalid TLS or SASL
// settings were checked by Check.
func (o ClientOptions) kgoOpts() []kgo.Opt {
	opts := o.baseOpts()
	if o.Dial != nil {
		opts = append(opts, kgo.Dialer(o.Dial))
	} else if tc, err := o.TLS.config(); err == nil && tc != nil {
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if so, err := o.SASL.opt(); err == nil && so != nil {
		opts = append(opts, so)
	}
	if o.SessionTimeout > 0 {
		opts = append(opts, kgo.SessionTimeout(o.SessionTimeout))
	}
	if o.RebalanceTimeout > 0 {
		opts = append(opts, kgo.RebalanceTimeout(o.RebalanceTimeout))
	}
	if len(o.Hooks) > 0 {
		opts = append(opts, kgo.WithHooks(o.Hooks...))
	}
	return opts
}

// Check reports invalid TLS or SASL settings (unreadable files, unknown
// mechanisms).
func (o ClientOptions) Check() error {
	if _, err := o.TLS.config(); err != nil {
		return err
	}
	_, err := o.SASL.opt()
	return err
}

func (o ClientOptions) baseOpts() []kgo.Opt {
	l := o.Logger
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return []kgo.Opt{
		kgo.SeedBrokers(o.Brokers...),
		kgo.ClientID(o.ClientID),
		// The client's info logs narrate every rebalance; keep warnings up.
		kgo.WithLogger(kslog.New(slog.New(atLeast{l.Handler(), slog.LevelWarn}).With("component", "kafka"))),
		// Durability: every produce waits for all in-sync replicas and is
		// idempotent (both franz-go defaults, stated for the reader).
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0),
		kgo.ProducerBatchMaxBytes(1 << 20),
	}
}

// Producer writes records and reports success only once the broker has
// acknowledged them (acks=all, idempotent producer). Concurrent callers share
// batches. It is safe for concurrent use.
type Producer struct {
	cl *kgo.Client
}

// NewProducer connects a producer.
func NewProducer(o ClientOptions) (*Producer, error) {
	cl, err := kgo.NewClient(o.kgoOpts()...)
	if err != nil {
		return nil, fmt.Errorf("bus: producer: %w", err)
	}
	return &Producer{cl: cl}, nil
}

// Produce writes the records and waits until every one is acknowledged. The
// first failure is returned; records are retried internally by franz-go until
// ctx ends.
func (p *Producer) Produce(ctx context.Context, recs ...*kgo.Record) error {
	if err := p.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("bus: produce: %w", err)
	}
	return nil
}

// ProduceAsync writes the records without waiting for the broker: they are
// buffered in order (a later call's records come after them in each
// partition, as with Produce), and wait blocks until every one is
// acknowledged and returns the first failure.
func (p *Producer) ProduceAsync(ctx context.Context, recs ...*kgo.Record) (wait func() error) {
	var (
		wg    sync.WaitGroup
		first error
		once  sync.Once
	)
	wg.Add(len(recs))
	for _, r := range recs {
		p.cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				once.Do(func() { first = err })
			}
			wg.Done()
		})
	}
	return func() error {
		wg.Wait()
		if first != nil {
			return fmt.Errorf("bus: produce: %w", first)
		}
		return nil
	}
}

// Ping checks that a broker answers.
func (p *Producer) Ping(ctx context.Context) error {
	if err := p.cl.Ping(ctx); err != nil {
		return fmt.Errorf("bus: ping: %w", err)
	}
	return nil
}

// Close flushes buffered records (bounded by ctx) and closes the client.
func (p *Producer) Close(ctx context.Context) error {
	err := p.cl.Flush(ctx)
	p.cl.Close()
	return err
}

// Handler processes one fetch's records. Returning an error means the batch
// could not be handled (for example the store is down); the consumer retries
// the same batch after a pause and never commits past it. Per-record failures
// are the handler's to record, not to return.
type Handler func(ctx context.Context, recs []*kgo.Record) error

// ConsumerOptions configures a consumer group member.
type ConsumerOptions struct {
	ClientOptions
	Group  string
	Topics []string
	// MaxPollRecords bounds one batch (default 500).
	MaxPollRecords int
	// Linger is how long a batch smaller than MaxPollRecords waits for more
	// records before it is handled (0: not at all), when records are
	// coming fast: its first came less than twice Linger after the previous
	// batch was done. Each batch costs a store transaction and an offset
	// commit whatever its size, so at moderate rates, where records come
	// one at a time, a short wait makes fewer, bigger batches; at low rates
	// it would only add the wait.
	Linger time.Duration
	// OnRebalance, when set, is called whenever partitions are assigned,
	// revoked or lost, before the records of a new assignment are handled.
	OnRebalance func()
	// OnBatch, when set, is called after each batch is handled and its
	// offsets committed (or the commit failed, which is logged: the batch
	// will be seen again), with the batch, when its handling began (each
	// record's wait in Kafka is that less its timestamp) and how long
	// handling and committing took, retries included.
	OnBatch func(recs []*kgo.Record, began time.Time, took time.Duration)
}

func (o ConsumerOptions) rebalanced() {
	if o.OnRebalance != nil {
		o.OnRebalance()
	}
}

// Consumer is one member of a consumer group. It hands each fetch to its
// handler as a batch and commits the batch's offsets after the handler
// succeeds, so records are processed at least once.
type Consumer struct {
	cl   *kgo.Client
	o    ConsumerOptions
	log  *slog.Logger
	done chan struct{}
	cm   *committer // batches whose commit waits for deferred work (Defer)
}

// NewConsumer joins the group. New groups start from the earliest offset, so
// records produced before the first member joined are not missed.
func NewConsumer(o ConsumerOptions) (*Consumer, error) {
	if o.MaxPollRecords <= 0 {
		o.MaxPollRecords = 500
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	cm := newCommitter(nil) // its commit is set by Run
	opts := append(o.kgoOpts(),
		kgo.ConsumerGroup(o.Group),
		kgo.ConsumeTopics(o.Topics...),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			o.rebalanced()
			o.Logger.Info("partitions assigned", "group", o.Group, "partitions", m)
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, _ *kgo.Client, m map[string][]int32) {
			// Batches handled before the revoke whose deferred work is
			// still running are committed before the partitions go, so
			// their next owner does not redo them; for half the
			// rebalance timeout at most, so this member can still rejoin
			// in time (what is not done by then is redone by the next
			// owner: sent twice, not lost).
			wctx, cancel := context.WithTimeout(ctx, cmp.Or(o.RebalanceTimeout, time.Minute)/2)
			if err := cm.wait(wctx); err != nil {
				o.Logger.Warn("partitions revoked before their deferred work was committed", "group", o.Group, "err", err)
			}
			cancel()
			o.rebalanced()
			o.Logger.Info("partitions revoked", "group", o.Group, "partitions", m)
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			o.rebalanced()
			// The session ended (fenced or expired): uncommitted work on
			// these partitions is redone by their next owner.
			o.Logger.Warn("partitions lost", "group", o.Group, "partitions", m)
		}),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("bus: consumer %s: %w", o.Group, err)
	}
	return &Consumer{cl: cl, o: o, log: o.Logger.With("group", o.Group), done: make(chan struct{}), cm: cm}, nil
}

// Run polls and handles batches until stop is cancelled. The batch being
// handled when stop is cancelled is finished (with work, which should
// outlive stop and bound the shutdown) and committed before Run returns,
// and so is the work handlers deferred (Defer).
func (c *Consumer) Run(stop, work context.Context, h Handler) error {
	defer close(c.done)
	c.cm.commit = func(recs []*kgo.Record) { c.commit(work, recs) }
	ran := make(chan struct{})
	go func() { defer close(ran); c.cm.run() }()
	defer func() { c.cm.close(); <-ran }()
	var idleSince time.Time // when the previous batch was done
	for {
		fs := c.cl.PollRecords(stop, c.o.MaxPollRecords)
		if stop.Err() != nil {
			err := c.cm.wait(work)
			c.cl.AllowRebalance()
			if err != nil {
				return fmt.Errorf("bus: %s: deferred work abandoned at shutdown: %w", c.o.Group, err)
			}
			return nil
		}
		if err := c.cm.failed(); err != nil {
			c.cl.AllowRebalance()
			return fmt.Errorf("bus: %s: deferred work failed: %w", c.o.Group, err)
		}
		if fs.IsClientClosed() {
			return errors.New("bus: consumer client closed")
		}
		c.logFetchErrors(fs)
		recs := fs.Records()
		if len(recs) > 0 && c.o.Linger > 0 && time.Since(idleSince) < 2*c.o.Linger {
			recs = c.linger(stop, recs)
		}
		if len(recs) > 0 {
			began := time.Now()
			if err := c.handle(work, h, recs); err != nil {
				c.cl.AllowRebalance()
				return err
			}
			idleSince = time.Now()
			if c.o.OnBatch != nil {
				c.o.OnBatch(recs, began, idleSince.Sub(began))
			}
		}
		c.cl.AllowRebalance()
	}
}

// linger adds to recs what arrives within Linger, up to MaxPollRecords.
func (c *Consumer) linger(stop context.Context, recs []*kgo.Record) []*kgo.Record {
	ctx, cancel := context.WithTimeout(stop, c.o.Linger)
	defer cancel()
	for len(recs) < c.o.MaxPollRecords && ctx.Err() == nil {
		fs := c.cl.PollRecords(ctx, c.o.MaxPollRecords-len(recs))
		if fs.IsClientClosed() {
			break
		}
		c.logFetchErrors(fs)
		recs = append(recs, fs.Records()...)
	}
	return recs
}

// logFetchErrors logs the errors of a poll but those of its context ending
// (a linger's wait over, or the consumer stopping).
func (c *Consumer) logFetchErrors(fs kgo.Fetches) {
	fs.EachError(func(topic string, p int32, err error) {
		if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			c.log.Warn("fetch error", "topic", topic, "partition", p, "err", err)
		}
	})
}

// handle runs h until it succeeds (retrying with backoff) and commits, or
// queues the commit behind the work h deferred and earlier batches'.
func (c *Consumer) handle(ctx context.Context, h Handler, recs []*kgo.Record) error {
	backoff := 100 * time.Millisecond
	var d *deferred
	for {
		d = &deferred{} // an attempt that failed defers nothing to the next
		err := h(context.WithValue(ctx, deferKey{}, d), recs)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("bus: %s: batch abandoned at shutdown: %w", c.o.Group, err)
		}
		c.log.Error("batch failed; retrying", "records", len(recs), "topic", recs[0].Topic,
			"partition", recs[0].Partition, "offset", recs[0].Offset, "err", err, "backoff", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return fmt.Errorf("bus: %s: batch abandoned at shutdown: %w", c.o.Group, err)
		}
		backoff = min(backoff*2, 10*time.Second)
	}
	direct, ok := c.cm.add(recs, d.waits)
	switch {
	case !ok:
		return fmt.Errorf("bus: %s: deferred work failed: %w", c.o.Group, c.cm.failed())
	case direct:
		c.commit(ctx, recs)
	}
	return nil
}

// commit commits recs' offsets; a failure is logged, and the records will
// be seen again (handlers are idempotent).
func (c *Consumer) commit(ctx context.Context, recs []*kgo.Record) {
	if err := c.cl.CommitRecords(ctx, recs...); err != nil {
		c.log.Warn("commit failed", "err", err)
	}
}

// Close leaves the group and closes the client. Call it after Run returns.
func (c *Consumer) Close() { c.cl.Close() }

// atLeast drops records below a level before they reach h.
type atLeast struct {
	slog.Handler
	min slog.Level
}

func (a atLeast) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= a.min && a.Handler.Enabled(ctx, l)
}

func (a atLeast) WithAttrs(as []slog.Attr) slog.Handler {
	return atLeast{a.Handler.WithAttrs(as), a.min}
}

func (a atLeast) WithGroup(name string) slog.Handler {
	return atLeast{a.Handler.WithGroup(name), a.min}
}

package bus_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/heraldproject/herald/bus"
)

// startBroker starts an embedded broker with topic, closed when the test
// ends, and returns it with a context that ends a minute later.
func startBroker(t *testing.T, topic string, partitions int32) (*bus.Broker, context.Context) {
	t.Helper()
	b, err := bus.StartBroker(bus.BrokerOptions{Addr: "127.0.0.1:0", DataDir: t.TempDir(), Partitions: partitions,
		Topics: []string{topic}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return b, ctx
}

// run runs c with h until the returned stop is called (stop also closes c).
func run(ctx context.Context, c *bus.Consumer, h bus.Handler) (stop func()) {
	sctx, scancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.Run(sctx, ctx, h)
	}()
	return func() { scancel(); <-done; c.Close() }
}

// TestConsumerOnRebalance checks that OnRebalance is called when the
// group's partitions move: at the first assignment, before any record is
// handled, and again when a second member joins.
func TestConsumerOnRebalance(t *testing.T) {
	const topic = "rebalance-test"
	b, ctx := startBroker(t, topic, 2)

	var rebalances, handled atomic.Int64
	var firstBeforeHandled atomic.Bool
	start := func(onRebalance func()) (stop func()) {
		c, err := bus.NewConsumer(bus.ConsumerOptions{ClientOptions: bus.ClientOptions{Brokers: b.Addrs(),
			SessionTimeout: 6 * time.Second, RebalanceTimeout: 5 * time.Second},
			Group: "g", Topics: []string{topic}, OnRebalance: onRebalance})
		if err != nil {
			t.Fatal(err)
		}
		return run(ctx, c, func(context.Context, []*kgo.Record) error { handled.Add(1); return nil })
	}
	stopA := start(func() {
		if rebalances.Add(1) == 1 && handled.Load() == 0 {
			firstBeforeHandled.Store(true)
		}
	})
	defer stopA()
	p, err := bus.NewProducer(bus.ClientOptions{Brokers: b.Addrs()})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	if err := p.Produce(ctx, &kgo.Record{Topic: topic, Value: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	for handled.Load() == 0 {
		if ctx.Err() != nil {
			t.Fatal("record never handled")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !firstBeforeHandled.Load() {
		t.Fatalf("OnRebalance not called before the first record was handled (%d calls)", rebalances.Load())
	}
	before := rebalances.Load()
	stopB := start(nil)
	defer stopB()
	for rebalances.Load() == before {
		if ctx.Err() != nil {
			t.Fatal("OnRebalance not called when a second member joined")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestConsumerLinger: with Linger, a batch smaller than MaxPollRecords whose
// first record came soon after the previous batch waits for records
// produced meanwhile and is handled with them, without waiting out Linger
// once it is full; a record after a pause is handled at once.
func TestConsumerLinger(t *testing.T) {
	const topic = "linger-test"
	b, ctx := startBroker(t, topic, 1)
	p, err := bus.NewProducer(bus.ClientOptions{Brokers: b.Addrs()})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	produce := func(v string) {
		t.Helper()
		if err := p.Produce(ctx, &kgo.Record{Topic: topic, Value: []byte(v)}); err != nil {
			t.Fatal(err)
		}
	}
	const linger = 2 * time.Second
	batches := make(chan []string, 10)
	c, err := bus.NewConsumer(bus.ConsumerOptions{ClientOptions: bus.ClientOptions{Brokers: b.Addrs()},
		Group: "g", Topics: []string{topic}, MaxPollRecords: 2, Linger: linger})
	if err != nil {
		t.Fatal(err)
	}
	defer run(ctx, c, func(_ context.Context, recs []*kgo.Record) error {
		var vs []string
		for _, r := range recs {
			vs = append(vs, string(r.Value))
		}
		batches <- vs
		return nil
	})()
	next := func(want ...string) time.Time {
		t.Helper()
		select {
		case got := <-batches:
			if !slices.Equal(got, want) {
				t.Fatalf("batch %v, want %v", got, want)
			}
			return time.Now()
		case <-ctx.Done():
			t.Fatalf("no batch; want %v", want)
		}
		return time.Time{}
	}
	// The first batch has no previous one to be soon after: at once.
	produce("first")
	next("first")
	// Soon after it, a waits for b, and the full batch goes at once.
	start := time.Now()
	produce("a")
	time.Sleep(100 * time.Millisecond)
	produce("b")
	if took := next("a", "b").Sub(start); took > linger {
		t.Fatalf("a full batch was handled after %s: it waited out the linger", took)
	}
	// After a pause longer than twice the linger, c goes alone, at once.
	time.Sleep(2*linger + 500*time.Millisecond)
	start = time.Now()
	produce("c")
	if took := next("c").Sub(start); took > linger {
		t.Fatalf("a record after a pause was handled after %s: it lingered", took)
	}
}

// TestConsumerOnBatch: OnBatch is called once per batch, after the handler
// has succeeded (a failed try and its backoff count in the time taken), with
// when handling began, so each record's wait since its timestamp is known.
func TestConsumerOnBatch(t *testing.T) {
	const topic = "onbatch-test"
	b, ctx := startBroker(t, topic, 1)
	p, err := bus.NewProducer(bus.ClientOptions{Brokers: b.Addrs()})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	produced := time.Now().Add(-300 * time.Millisecond)
	if err := p.Produce(ctx, &kgo.Record{Topic: topic, Value: []byte("x"), Timestamp: produced}); err != nil {
		t.Fatal(err)
	}
	type batch struct {
		recs        []*kgo.Record
		began       time.Time
		took        time.Duration
		triesBefore int64
	}
	var tries atomic.Int64
	batches := make(chan batch, 10)
	c, err := bus.NewConsumer(bus.ConsumerOptions{ClientOptions: bus.ClientOptions{Brokers: b.Addrs()},
		Group: "g", Topics: []string{topic},
		OnBatch: func(recs []*kgo.Record, began time.Time, took time.Duration) {
			batches <- batch{recs, began, took, tries.Load()}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer run(ctx, c, func(context.Context, []*kgo.Record) error {
		time.Sleep(50 * time.Millisecond)
		if tries.Add(1) == 1 {
			return errors.New("not yet") // retried after 100 ms
		}
		return nil
	})()
	var got batch
	select {
	case got = <-batches:
	case <-ctx.Done():
		t.Fatal("OnBatch never called")
	}
	if len(got.recs) != 1 || string(got.recs[0].Value) != "x" || got.triesBefore != 2 {
		t.Fatalf("OnBatch got %d records after %d tries; want the record after 2", len(got.recs), got.triesBefore)
	}
	if wait := got.began.Sub(got.recs[0].Timestamp); !got.recs[0].Timestamp.Equal(produced.Truncate(time.Millisecond)) ||
		wait < 300*time.Millisecond {
		t.Errorf("record timestamp %v (produced %v), wait %v: want at least 300ms", got.recs[0].Timestamp, produced, wait)
	}
	if got.took < 200*time.Millisecond {
		t.Errorf("took %v: want the two tries and the backoff (at least 200ms)", got.took)
	}
	select {
	case b := <-batches:
		t.Errorf("a second OnBatch call: %+v", b)
	case <-time.After(300 * time.Millisecond):
	}
}

// TestConsumerDefer: a handler that defers work (bus.Defer) lets the
// consumer go on to the next batches, whose commits wait with it, in order;
// once the work is done everything is committed. Work that fails stops the
// commits, and Run returns its error.
func TestConsumerDefer(t *testing.T) {
	const topic = "defer-test"
	b, ctx := startBroker(t, topic, 1)
	opts := bus.ClientOptions{Brokers: b.Addrs()}
	p, err := bus.NewProducer(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	lag, err := bus.NewLag(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer lag.Close()
	committed := func(group string) int64 {
		got, err := lag.Committed(ctx, group, topic)
		if err != nil {
			t.Fatal(err)
		}
		return got[0]
	}
	produce := func(v string) {
		if err := p.Produce(ctx, &kgo.Record{Topic: topic, Value: []byte(v)}); err != nil {
			t.Fatal(err)
		}
	}

	release := make(chan error)
	handled := make(chan string, 10)
	h := func(ctx context.Context, recs []*kgo.Record) error {
		for _, r := range recs {
			if string(r.Value) == "slow" && !bus.Defer(ctx, func() error { return <-release }) {
				t.Error("Defer refused a consumer's context")
			}
			handled <- string(r.Value)
		}
		return nil
	}
	if bus.Defer(context.Background(), func() error { return nil }) {
		t.Fatal("Defer took a context that is no consumer's")
	}
	next := func() string {
		select {
		case v := <-handled:
			return v
		case <-ctx.Done():
			t.Fatal("no record handled")
			return ""
		}
	}

	c, err := bus.NewConsumer(bus.ConsumerOptions{ClientOptions: opts, Group: "ok", Topics: []string{topic}})
	if err != nil {
		t.Fatal(err)
	}
	stop := run(ctx, c, h)
	produce("slow")
	next()
	produce("after") // handled while the first batch's work runs
	if v := next(); v != "after" {
		t.Fatalf("handled %q, want the record after the deferred one", v)
	}
	time.Sleep(200 * time.Millisecond)
	if got := committed("ok"); got != 0 {
		t.Fatalf("committed offset %d while the first record's work runs; want nothing committed", got)
	}
	release <- nil
	deadline := time.Now().Add(10 * time.Second)
	for committed("ok") != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("committed offset %d, want 2 once the work is done", committed("ok"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()

	// Work that fails: nothing after it is committed, and Run says why.
	c, err = bus.NewConsumer(bus.ConsumerOptions{ClientOptions: opts, Group: "failed", Topics: []string{topic}})
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- c.Run(sctx, ctx, h) }()
	defer c.Close()
	next()
	next()
	release <- errors.New("store down")
	produce("third")
	select {
	case err := <-ran:
		if err == nil || !strings.Contains(err.Error(), "store down") {
			t.Fatalf("Run returned %v, want the deferred work's error", err)
		}
	case <-ctx.Done():
		t.Fatal("Run did not return after its deferred work failed")
	}
	if got := committed("failed"); got != 0 {
		t.Fatalf("committed offset %d after the first record's work failed; want nothing", got)
	}
}

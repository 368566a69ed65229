package handoff_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/heraldproject/herald/handoff"
)

// kafka is a stand-in for the fan-out stage's producer that keeps what it
// is given, in order, numbering each record as a one-partition topic would.
type kafka struct {
	mu   sync.Mutex
	recs []*kgo.Record
	fail int // the next fail calls fail, keeping nothing
}

func (k *kafka) ProduceAsync(_ context.Context, recs ...*kgo.Record) func() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.fail > 0 {
		k.fail--
		return func() error { return errors.New("broker unavailable") }
	}
	for _, r := range recs {
		r.Partition, r.Offset = 0, int64(len(k.recs))
		k.recs = append(k.recs, r)
	}
	return func() error { return nil }
}

func (k *kafka) values() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return values(k.recs)
}

// sender records what it is handed, and can be held.
type sender struct {
	mu      sync.Mutex
	sent    []string
	batches int
	gate    chan struct{} // when set, each batch waits for a receive
	fail    int           // the next fail batches fail
}

func (s *sender) send(ctx context.Context, recs []*kgo.Record) error {
	s.mu.Lock()
	gate := s.gate
	if s.fail > 0 {
		s.fail--
		s.mu.Unlock()
		return errors.New("store down")
	}
	s.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = append(s.sent, values(recs)...)
	s.batches++
	return nil
}

func (s *sender) values() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sent)
}

func values(recs []*kgo.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = string(r.Value)
	}
	return out
}

const topic = "herald.deliveries.webhook"

func rec(key string, i int) *kgo.Record {
	return &kgo.Record{Topic: topic, Key: []byte(key), Value: fmt.Appendf(nil, "%s%d", key, i)}
}

func start(t *testing.T, o handoff.Options, s *sender) (*handoff.Handoff, context.Context) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	h := handoff.New(o)
	h.Add("webhook", topic, "herald-deliver-webhook", s.send, nil)
	h.Start(ctx)
	t.Cleanup(h.Close)
	return h, ctx
}

// TestHandedInOrder checks records of the channels added reach the sender
// in order, and others go to Kafka; called outside a consumer, wait returns
// once the sender is done with what the call handed on, and a failed batch
// is sent again.
func TestHandedInOrder(t *testing.T) {
	k, s := &kafka{}, &sender{fail: 1}
	h, ctx := start(t, handoff.Options{Kafka: k, MaxBatch: 3}, s)
	var want []string
	for i := range 10 {
		r := rec("a", i)
		other := &kgo.Record{Topic: "herald.dlq", Value: fmt.Appendf(nil, "dlq%d", i)}
		if err := h.ProduceAsync(ctx, r, other)(); err != nil {
			t.Fatal(err)
		}
		want = append(want, string(r.Value))
		if got := s.values(); !slices.Equal(got, want) {
			t.Fatalf("after call %d the sender has %v, want %v", i, got, want)
		}
	}
	if got := k.values(); len(got) != 10 || got[0] != "dlq0" {
		t.Fatalf("kafka got %v, want the 10 dlq records", got)
	}
	// Many at once: batches of at most MaxBatch, in order.
	var recs []*kgo.Record
	for i := range 10 {
		recs = append(recs, rec("b", i))
		want = append(want, fmt.Sprint("b", i))
	}
	if err := h.ProduceAsync(ctx, recs...)(); err != nil {
		t.Fatal(err)
	}
	if got := s.values(); !slices.Equal(got, want) {
		t.Fatalf("sender has %v, want %v", got, want)
	}
}

// TestSpill holds the sender: once its batch has been sending for MaxWait
// (or the queue has been full that long) the queue spills, records to recipients with none queued go to Kafka at
// once, and those to a recipient with records queued wait for them and
// follow them to Kafka, in order (produced again when the produce fails). The queue takes records
// again once it is empty and the sending stage has committed what it
// spilled.
func TestSpill(t *testing.T) {
	k, s := &kafka{}, &sender{gate: make(chan struct{})}
	var mu sync.Mutex
	committed := map[int32]int64{}
	o := handoff.Options{Kafka: k, Capacity: 4, MaxWait: 20 * time.Millisecond, MaxBatch: 2, CheckEvery: 5 * time.Millisecond,
		Committed: func(context.Context, string, string) (map[int32]int64, error) {
			mu.Lock()
			defer mu.Unlock()
			return maps.Clone(committed), nil
		}}
	h, ctx := start(t, o, s)
	// a0..a3 fill the queue (the sender holds a0, a1).
	var waits []func() error
	for i := range 4 {
		waits = append(waits, h.ProduceAsync(ctx, rec("a", i)))
	}
	// a4 finds the queue full, and within MaxWait the batch being sent
	// has been sending that long: the queue spills, a4 queues behind
	// a0-a3, b0 goes to Kafka at once.
	waits = append(waits, h.ProduceAsync(ctx, rec("a", 4), rec("b", 0)))
	if got := k.values(); !slices.Equal(got, []string{"b0"}) {
		t.Fatalf("kafka has %v, want [b0] (a4 must wait for a0-a3)", got)
	}
	if q, sp, n := gauge(t, h, "herald_handoff_queued"), gauge(t, h, "herald_handoff_spilling"),
		gauge(t, h, "herald_handoff_spilled_total"); q != 5 || sp != 1 || n != 2 {
		t.Fatalf("metrics: queued %v, spilling %v, spilled %v; want 5 (a0-a4), 1, 2 (a4, b0)", q, sp, n)
	}
	k.mu.Lock()
	k.fail = 1 // a4's spill fails once, and is produced again
	k.mu.Unlock()
	close(s.gate) // the sender answers
	for _, w := range waits {
		if err := w(); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.values(); !slices.Equal(got, []string{"a0", "a1", "a2", "a3"}) {
		t.Fatalf("sender has %v, want a0-a3", got)
	}
	if got := k.values(); !slices.Equal(got, []string{"b0", "a4"}) {
		t.Fatalf("kafka has %v, want [b0 a4]", got)
	}
	// Still spilling: the sending stage has not committed a4 (offset 1).
	if err := h.ProduceAsync(ctx, rec("a", 5))(); err != nil {
		t.Fatal(err)
	}
	if got := k.values(); len(got) != 3 || got[2] != "a5" {
		t.Fatalf("kafka has %v, want a5 spilled too", got)
	}
	mu.Lock()
	committed[0] = 3 // past a5
	mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := h.ProduceAsync(ctx, rec("c", 0))(); err != nil {
			t.Fatal(err)
		}
		if got := s.values(); got[len(got)-1] == "c0" {
			break // taken in memory again
		}
		if time.Now().After(deadline) {
			t.Fatalf("the queue never took records again; kafka has %v", k.values())
		}
		mu.Lock()
		committed[0] = int64(len(k.values()))
		mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
}

// TestAbandoned checks that records queued when work ends are not lost in
// silence: their callers' waits fail, and records offered after fail too.
func TestAbandoned(t *testing.T) {
	k, s := &kafka{}, &sender{gate: make(chan struct{})}
	work, cancel := context.WithCancel(context.Background())
	h := handoff.New(handoff.Options{Kafka: k})
	h.Add("webhook", topic, "g", s.send, nil)
	h.Start(work)
	wait := h.ProduceAsync(context.Background(), rec("a", 0), rec("a", 1))
	cancel()
	if err := wait(); err == nil {
		t.Fatal("wait returned nil for records abandoned when work ended")
	}
	h.Close()
	if err := h.ProduceAsync(context.Background(), rec("a", 2))(); err == nil {
		t.Fatal("a record offered after the hand-off stopped was taken")
	}
	if len(s.values()) != 0 {
		t.Fatalf("sender has %v", s.values())
	}
}

// gauge returns the webhook queue's value of the hand-off metric name.
func gauge(t *testing.T, h *handoff.Handoff, name string) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(h)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == "webhook" {
				return m.GetGauge().GetValue() + m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no %s for webhook", name)
	return 0
}

// TestBacklog: with EndOffsets, a queue starts spilling as if it had
// spilled what its topic holds, so a backlog left there is sent before
// newer deliveries; once the sending stage has committed past it, records
// are handed on in memory.
func TestBacklog(t *testing.T) {
	k, s := &kafka{}, &sender{}
	var mu sync.Mutex
	committed := map[int32]int64{0: 3}
	o := handoff.Options{Kafka: k, CheckEvery: 5 * time.Millisecond,
		EndOffsets: func(context.Context, string) (map[int32]int64, error) { return map[int32]int64{0: 5, 1: 0}, nil },
		Committed: func(context.Context, string, string) (map[int32]int64, error) {
			mu.Lock()
			defer mu.Unlock()
			return maps.Clone(committed), nil
		}}
	h, ctx := start(t, o, s)
	time.Sleep(50 * time.Millisecond) // several checks: the group is at 3 of 5
	if err := h.ProduceAsync(ctx, rec("a", 0))(); err != nil {
		t.Fatal(err)
	}
	if got := k.values(); !slices.Equal(got, []string{"a0"}) || len(s.values()) != 0 {
		t.Fatalf("kafka has %v, sender %v: want a0 through Kafka behind the backlog", got, s.values())
	}
	mu.Lock()
	committed[0] = 5 // past the backlog (offsets 0-4; the stand-in numbered a0 0)
	mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for i := 1; ; i++ {
		if err := h.ProduceAsync(ctx, rec("a", i))(); err != nil {
			t.Fatal(err)
		}
		if got := s.values(); len(got) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never handed on in memory; kafka has %v", k.values())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

package bench

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/heraldproject/herald/bus"
)

// kafkaPartitions is the partition count of Herald's topics by default.
const kafkaPartitions = 4

// rawKafka starts Herald's embedded broker (kfake, persisting to a temporary
// directory, as `herald serve` runs it) and measures a raw franz-go loop,
// its clients connected in memory (bus.Broker.Dial) as Herald's own are:
// o.KafkaRecords small delivery-like records produced with acks=all and no
// linger, as Herald's producer does, consumed by a consumer group. Records
// per second consumed, produce latency and produce → consume latency.
func (r *runner) rawKafka(ctx context.Context) (Result, error) {
	dir, err := os.MkdirTemp("", "herald-bench-kafka-")
	if err != nil {
		return Result{}, fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	const topic = "bench-deliveries"
	b, err := bus.StartBroker(bus.BrokerOptions{Addr: "127.0.0.1:0", DataDir: dir, Partitions: kafkaPartitions,
		Topics: []string{topic}})
	if err != nil {
		return Result{}, err
	}
	defer b.Close()
	assigned := make(chan struct{})
	var once sync.Once
	cons, err := kgo.NewClient(kgo.SeedBrokers(b.Addrs()...), kgo.Dialer(b.Dial),
		kgo.ConsumerGroup("bench"), kgo.ConsumeTopics(topic),
		kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) { once.Do(func() { close(assigned) }) }))
	if err != nil {
		return Result{}, fmt.Errorf("kafka consumer: %w", err)
	}
	defer cons.Close()
	prod, err := kgo.NewClient(kgo.SeedBrokers(b.Addrs()...), kgo.Dialer(b.Dial), kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(0))
	if err != nil {
		return Result{}, fmt.Errorf("kafka producer: %w", err)
	}
	defer prod.Close()

	k := &kafkaLoop{want: r.o.KafkaRecords}
	consumed := make(chan struct{})
	pollCtx, stopPoll := context.WithCancel(ctx)
	defer stopPoll()
	go func() { defer close(consumed); k.consume(pollCtx, cons) }()
	select {
	case <-assigned:
	case <-time.After(30 * time.Second):
		return Result{}, fmt.Errorf("kafka consumer: no partitions assigned in 30s")
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
	scenario := "baseline: raw franz-go produce -> consume"
	stop := r.progress(scenario, func() string {
		return fmt.Sprintf("%d produced, %d consumed", k.acked.Load(), k.got.Load())
	})
	defer stop()
	res := k.produce(ctx, prod, r.o.Duration)
	res.Scenario = scenario
	k.total.Store(int64(res.Requests))
	select { // wait for what was acknowledged to be consumed
	case <-consumed:
	case <-time.After(r.o.Drain):
	case <-ctx.Done():
	}
	stopPoll()
	<-consumed
	k.fill(&res)
	return res, nil
}

// kafkaLoop is one produce → consume measurement.
type kafkaLoop struct {
	want  int
	start time.Time

	acked atomic.Int64
	got   atomic.Int64
	total atomic.Int64 // records acknowledged, once producing ended (0 before)

	mu   sync.Mutex
	prod []time.Duration // produce → acknowledged
	e2e  []time.Duration // produce → consumed
	last time.Time       // last consumed
}

// produce sends up to k.want records within limit and waits for their
// acknowledgements.
func (k *kafkaLoop) produce(ctx context.Context, cl *kgo.Client, limit time.Duration) Result {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	value := []byte(`{"deliveryId":"0198a7c2-5a1e-7d3c-9b1f-3c2d4e5f6a7b","alertId":"0198a7c2-5a1e-7d3c-9b1f-000000000000",` +
		`"recipientId":"0198a7c2-0000-7000-8000-000000000000","channel":"webhook","attempt":1,"severity":"error"}`)
	var errs atomic.Int64
	k.start = time.Now()
	for i := 0; i < k.want && ctx.Err() == nil; i++ {
		t := time.Now()
		rec := &kgo.Record{Key: []byte("user-" + strconv.Itoa(i%1000)), Value: value}
		cl.Produce(ctx, rec, func(_ *kgo.Record, err error) {
			if err != nil {
				errs.Add(1)
				return
			}
			k.acked.Add(1)
			k.mu.Lock()
			k.prod = append(k.prod, time.Since(t))
			k.mu.Unlock()
		})
	}
	_ = cl.Flush(context.WithoutCancel(ctx)) // every record produced gets its callback
	elapsed := time.Since(k.start)
	k.mu.Lock()
	defer k.mu.Unlock()
	slices.Sort(k.prod)
	res := Result{Name: ScenarioKafka, Unit: "records", Fanout: 1, Requests: len(k.prod), Errors: int(errs.Load()),
		RequestsPerS: float64(len(k.prod)) / elapsed.Seconds(), P50ms: ms(pct(k.prod, .5)), P90ms: ms(pct(k.prod, .9)),
		P99ms: ms(pct(k.prod, .99))}
	if len(k.prod) > 0 {
		res.MaxMs = ms(k.prod[len(k.prod)-1])
	}
	return res
}

// consume polls until every acknowledged record arrived or ctx ends.
func (k *kafkaLoop) consume(ctx context.Context, cl *kgo.Client) {
	for ctx.Err() == nil {
		if n := k.total.Load(); n > 0 && k.got.Load() >= n {
			return
		}
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		fs := cl.PollFetches(pctx)
		cancel()
		now := time.Now()
		k.mu.Lock()
		fs.EachRecord(func(rec *kgo.Record) {
			k.e2e = append(k.e2e, now.Sub(rec.Timestamp))
			k.last = now
		})
		k.mu.Unlock()
		k.got.Store(int64(len(k.e2e)))
	}
}

// fill adds the consume numbers to res.
func (k *kafkaLoop) fill(res *Result) {
	k.mu.Lock()
	defer k.mu.Unlock()
	slices.Sort(k.e2e)
	res.Expected, res.Notifications = res.Requests, len(k.e2e)
	if len(k.e2e) > 0 {
		res.NotificationsPS = float64(len(k.e2e)) / k.last.Sub(k.start).Seconds()
		res.E2EP50ms, res.E2EP99ms = ms(pct(k.e2e, .5)), ms(pct(k.e2e, .99))
	}
}

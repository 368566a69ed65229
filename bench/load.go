package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// tally collects request outcomes from concurrent senders.
type tally struct {
	mu     sync.Mutex
	lat    []time.Duration
	errs   map[string]int
	sample map[string]string // the first error of each kind (errs' keys) that was one
	sent   atomic.Int64
	done   atomic.Int64
	failed atomic.Int64
}

func (t *tally) record(d time.Duration, code int, err error) {
	t.done.Add(1)
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil || code >= 300 {
		t.failed.Add(1)
		if t.errs == nil {
			t.errs = map[string]int{}
		}
		k := statusKey(code, err)
		t.errs[k]++
		if err != nil && t.sample[k] == "" {
			if t.sample == nil {
				t.sample = map[string]string{}
			}
			t.sample[k] = err.Error()
		}
		return
	}
	t.lat = append(t.lat, d)
}

// result turns the tally into a Result over elapsed.
func (t *tally) result(name, scenario string, elapsed time.Duration) Result {
	t.mu.Lock()
	defer t.mu.Unlock()
	slices.Sort(t.lat)
	r := Result{Scenario: scenario, Name: name, Unit: "requests", Requests: len(t.lat), Errors: int(t.failed.Load()),
		ErrorsByStatus: t.errs, ErrorSamples: t.sample, P50ms: ms(pct(t.lat, .5)), P90ms: ms(pct(t.lat, .9)), P99ms: ms(pct(t.lat, .99))}
	if elapsed > 0 {
		r.RequestsPerS = float64(len(t.lat)) / elapsed.Seconds()
	}
	if len(t.lat) > 0 {
		r.MaxMs = ms(t.lat[len(t.lat)-1])
	}
	return r
}

// closedLoop posts body(i) to path from o.Concurrency clients, each sending
// its next request when the previous one is answered, until o.Requests or
// o.Duration.
func (r *runner) closedLoop(ctx context.Context, name, scenario string, c *client, path string, requests int,
	body func(i int) any) Result {
	ctx, cancel := context.WithTimeout(ctx, r.o.Duration)
	defer cancel()
	var t tally
	var next atomic.Int64
	start := time.Now()
	stop := r.progress(scenario, func() string { return fmt.Sprintf("%d requests", t.sent.Load()) })
	var wg sync.WaitGroup
	for range r.o.Concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1))
				if i > requests || ctx.Err() != nil {
					return
				}
				t.sent.Add(1)
				s := time.Now()
				code, err := c.post(ctx, path, body(i))
				if err != nil && (ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded)) {
					return // cut off by the time bound: neither a success nor an error
				}
				t.record(time.Since(s), code, err)
			}
		})
	}
	wg.Wait()
	stop()
	return t.result(name, scenario, time.Since(start))
}

// maxInFlight bounds the open-loop generator's outstanding requests; past
// it the generator waits, and the wait shows in latency (counted from when
// each request was due).
const maxInFlight = 4096

// openLoop posts body(i) to path at rate requests per second, each when it
// is due whether or not earlier ones were answered, until o.Requests or
// o.Duration. Latency counts from when a request was due.
func (r *runner) openLoop(ctx context.Context, name, scenario string, c *client, path string, rate float64,
	body func(i int) any) Result {
	interval := time.Duration(float64(time.Second) / rate)
	sem := make(chan struct{}, maxInFlight)
	var t tally
	var wg sync.WaitGroup
	start := time.Now()
	stop := r.progress(scenario, func() string {
		return fmt.Sprintf("%d sent, %d answered", t.sent.Load(), t.done.Load())
	})
	sendCtx, cancel := context.WithTimeout(ctx, r.o.Duration)
	defer cancel()
	last := start
loop:
	for i := range r.o.Requests {
		due := start.Add(time.Duration(i) * interval)
		if due.Sub(start) >= r.o.Duration {
			break
		}
		if wait := time.Until(due); wait > 100*time.Microsecond {
			select {
			case <-sendCtx.Done():
				break loop
			case <-time.After(wait):
			}
		}
		select {
		case sem <- struct{}{}:
		case <-sendCtx.Done():
			break loop
		}
		t.sent.Add(1)
		last = due
		wg.Go(func() {
			defer func() { <-sem }()
			code, err := c.post(ctx, path, body(i+1))
			t.record(time.Since(due), code, err)
		})
	}
	wg.Wait()
	stop()
	res := t.result(name, scenario, last.Sub(start)+interval)
	res.OfferedPerS = rate
	return res
}

// progress prints status() every second until the returned stop is called.
func (r *runner) progress(scenario string, status func() string) (stop func()) {
	if r.o.Progress == io.Discard {
		return func() {}
	}
	return every(time.Second, func() { fmt.Fprintf(r.o.Progress, "  %s: %s\n", scenario, status()) })
}

// every calls f every period until stop; stop waits for f to return.
func every(period time.Duration, f func()) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				f()
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// awaitNotifications waits, at most o.Drain, until want notifications of key
// arrived, then fills res's notification numbers, rates timed from start.
func (r *runner) awaitNotifications(ctx context.Context, res *Result, key string, want int, start time.Time) {
	res.Expected = want
	stop := r.progress(res.Scenario, func() string {
		return fmt.Sprintf("%d of %d notifications received", r.rcv.count(key), want)
	})
	deadline := time.Now().Add(r.o.Drain)
	for r.rcv.count(key) < want && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	lat, last := r.rcv.latencies(key)
	res.Notifications = len(lat)
	if len(lat) > 0 {
		res.NotificationsPS = float64(len(lat)) / last.Sub(start).Seconds()
		res.E2EP50ms, res.E2EP99ms = ms(pct(lat, .5)), ms(pct(lat, .99))
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// pct returns the p-quantile of sorted.
func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*p))]
}

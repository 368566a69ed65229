package server_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldproject/herald/internal/testpg"
	"github.com/heraldproject/herald/notify/webhook/webhooktest"
)

// BenchmarkDeliveries measures one Herald process end to end: b.N alerts,
// each to a group of 10 webhook recipients, posted by 16 concurrent clients
// over HTTP; the clock stops when the receiver has every delivery. Reported:
// alerts/s accepted and deliveries/s received. The alerts have no labels,
// so each recipient's deliveries are one stream, sent one after another;
// each store runs with deliver.recipientConcurrency 1 and 0 (the default:
// automatic, at least 16 each),
// which gives the same order here.
//
//	go test ./server -run '^$' -bench Deliveries -benchtime 2000x
func BenchmarkDeliveries(b *testing.B) {
	for _, c := range []struct{ backend, perRecipient string }{
		{"sqlite", "1"}, {"postgres", "1"}, {"sqlite", "0"}, {"postgres", "0"}} {
		backend := c.backend
		b.Run(backend+"/recipient-concurrency-"+c.perRecipient, func(b *testing.B) {
			hook := webhooktest.NewReceiver()
			defer hook.Close()
			// HERALD_AUTH_RATE=0: the per-token rate limit (1,000/s) would
			// answer 429 to the 16 senders.
			env := []string{"HERALD_LOG_LEVEL=warn", "HERALD_AUTH_RATE=0", "HERALD_DELIVER_RECIPIENT_CONCURRENCY=" + c.perRecipient}
			if backend == "postgres" {
				env = append(env, "HERALD_STORE_DRIVER=postgres", "HERALD_STORE_DSN="+testpg.DSN(b))
			}
			h := start(b, testConfig(b, b.TempDir(), env...))
			var members []string
			for i := range 10 {
				members = append(members, h.createUser(map[string]any{"name": fmt.Sprint("b", i), "webhookUrl": hook.URL()}))
			}
			h.createGroup("ten", members...)
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			var failed atomic.Int64
			var firstErr atomic.Value
			next := make(chan struct{})
			for range 16 {
				wg.Go(func() {
					// Not h.sendAlert: Fatal in a sender goroutine would end
					// it silently and leave the loop below blocked.
					for range next {
						body := map[string]any{"target": []string{"@@ten"}, "severity": "error", "message": "bench"}
						if code, raw := h.do("POST", "/v1/alerts", body, nil); code != http.StatusAccepted {
							failed.Add(1)
							firstErr.CompareAndSwap(nil, fmt.Sprintf("%d %s", code, raw))
						}
					}
				})
			}
			for range b.N {
				next <- struct{}{}
			}
			close(next)
			wg.Wait()
			if n := failed.Load(); n > 0 {
				b.Fatalf("%d of %d alerts not accepted; first: %v", n, b.N, firstErr.Load())
			}
			accepted := time.Since(start)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			if err := hook.WaitFor(ctx, 10*b.N); err != nil {
				b.Fatal(err)
			}
			total := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/accepted.Seconds(), "alerts/s")
			b.ReportMetric(float64(10*b.N)/total.Seconds(), "deliveries/s")
		})
	}
}

package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// logServices is how many services the logs scenario's records come from
// (its records are keyed by service, so they spread over partitions).
const logServices = 8

// postRaw posts body with the given content type and returns the status.
func (c *client) postRaw(ctx context.Context, path, contentType string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", contentType)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// logBatch is request i of the logs scenario: n NDJSON records, each a
// realistic line of one of logServices services.
func logBatch(tag string, i, n int) []byte {
	var b bytes.Buffer
	b.Grow(n * 220)
	levels := [...]string{"info", "info", "info", "debug", "warning", "error"}
	for j := range n {
		k := i*n + j
		fmt.Fprintf(&b, `{"service":"bench-%s-%d","level":"%s","message":"request %d GET /api/v1/orders/%d `+
			`completed status=200 duration=%dms user=u%d","attributes":{"host":"node-%d","run":"%s"}}`+"\n",
			tag, k%logServices, levels[k%len(levels)], k, k%9973, k%500, k%1000, k%16, tag)
	}
	return b.Bytes()
}

// logs posts o.LogRecords log records as NDJSON, o.LogBatch per request,
// from o.Concurrency clients (bounded by o.Duration), then one marker record
// per service, and polls GET /v1/logs until the markers are found: every
// record before them is then stored and searchable (each service's records
// are one partition, in order). The rate is records accepted over the time
// from the first request until the markers were found.
func (r *runner) logs(ctx context.Context) (Result, error) {
	batch := max(1, min(r.o.LogBatch, r.o.LogRecords))
	requests := (r.o.LogRecords + batch - 1) / batch
	scenario := fmt.Sprintf("logs: herald, %d/request, until searchable", batch)
	c := r.herald.api
	var next, accepted atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	errs := map[string]int{}
	stopProgress := r.progress(scenario, func() string { return fmt.Sprintf("%d records accepted", accepted.Load()) })
	stopSample := r.herald.sample(ctx)
	limit, cancel := context.WithTimeout(ctx, r.o.Duration)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for range r.o.Concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= requests || limit.Err() != nil {
					return
				}
				n := min(batch, r.o.LogRecords-i*batch)
				body := logBatch(r.tag, i, n)
				t := time.Now()
				code, err := c.postRaw(limit, "/v1/logs", "application/x-ndjson", body)
				d := time.Since(t)
				mu.Lock()
				switch {
				case err != nil && limit.Err() != nil:
					// the time bound, not a failure
				case err != nil:
					errs["transport"]++
				case code != http.StatusAccepted:
					errs[strconv.Itoa(code)]++
				default:
					lat = append(lat, d)
					accepted.Add(int64(n))
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	stopProgress()
	res := Result{Scenario: scenario, Name: ScenarioLogs, Unit: "records", Requests: int(accepted.Load())}
	for k, v := range errs {
		res.Errors += v
		if res.ErrorsByStatus == nil {
			res.ErrorsByStatus = map[string]int{}
		}
		res.ErrorsByStatus[k] = v
	}
	// The markers: one record per service, after everything else.
	word := "marker" + r.tag
	var mb bytes.Buffer
	for s := range logServices {
		fmt.Fprintf(&mb, `{"service":"bench-%s-%d","message":"%s end of run"}`+"\n", r.tag, s, word)
	}
	markAt := time.Now()
	if code, err := c.postRaw(ctx, "/v1/logs", "application/x-ndjson", mb.Bytes()); err != nil || code != http.StatusAccepted {
		res.Process = stopSample()
		return res, fmt.Errorf("posting the markers: status %d: %v", code, err)
	}
	drain, cancelDrain := context.WithTimeout(ctx, r.o.Drain)
	defer cancelDrain()
	q := "/v1/logs?limit=100&q=" + url.QueryEscape(word)
	for {
		var out struct {
			Records []struct{} `json:"records"`
		}
		if code, err := c.do(drain, http.MethodGet, q, nil, &out); err == nil && code == http.StatusOK && len(out.Records) >= logServices {
			break
		}
		if drain.Err() != nil {
			res.Process = stopSample()
			return res, fmt.Errorf("the markers were not searchable within %s", r.o.Drain)
		}
		time.Sleep(20 * time.Millisecond)
	}
	found := time.Now()
	res.Process = stopSample()
	slices.Sort(lat)
	elapsed := found.Sub(start).Seconds()
	res.RequestsPerS = float64(res.Requests) / elapsed
	res.P50ms, res.P90ms, res.P99ms = ms(pct(lat, .5)), ms(pct(lat, .9)), ms(pct(lat, .99))
	if len(lat) > 0 {
		res.MaxMs = ms(lat[len(lat)-1])
	}
	res.Expected, res.Notifications, res.NotificationsPS = res.Requests, res.Requests, res.RequestsPerS
	res.E2EP50ms = ms(found.Sub(markAt))
	res.E2EP99ms = res.E2EP50ms
	return res, nil
}

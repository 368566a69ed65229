// Package bench measures a running Herald over real HTTP on loopback, next to
// baselines measured by the same load generator in the same run: a bare
// net/http JSON handler (the HTTP ceiling) and a bare relay that decodes an
// alert and POSTs it on to the same webhook receiver, keeping nothing (the
// ceiling for alerts in → notifications out). Results are ratios that hold on
// a noisy machine. Every scenario is bounded in requests and time.
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options configures a run.
type Options struct {
	// Server is the Herald API base URL; Token an admin token.
	Server, Token string
	// Concurrency is how many clients post at once.
	Concurrency int
	// Requests and Duration bound each scenario (whichever comes first).
	Requests int
	Duration time.Duration
	// Fanout is the group size of the fan-out scenario (0 skips it).
	Fanout int
	// Progress receives a line a second while a scenario runs.
	Progress io.Writer
}

// Result is one scenario's numbers.
type Result struct {
	Scenario     string  `json:"scenario"`
	Requests     int     `json:"requests"`
	Errors       int     `json:"errors"`
	RequestsPerS float64 `json:"requestsPerSecond"`
	P50ms        float64 `json:"p50Ms"`
	P90ms        float64 `json:"p90Ms"`
	P99ms        float64 `json:"p99Ms"`
	MaxMs        float64 `json:"maxMs"`
	// Notifications received by the webhook receiver, per second from the
	// first request to the last arrival, and accept→received latency.
	Notifications   int     `json:"notifications"`
	NotificationsPS float64 `json:"notificationsPerSecond"`
	E2EP50ms        float64 `json:"endToEndP50Ms"`
	E2EP99ms        float64 `json:"endToEndP99Ms"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

type client struct {
	hc    *http.Client
	base  string
	token string
}

func (c *client) do(ctx context.Context, method, path string, body any, out any) (int, error) {
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil {
		_ = json.Unmarshal(raw, out)
	}
	return resp.StatusCode, nil
}

// load posts body to url from o.Concurrency clients until o.Requests or
// o.Duration, and returns the request numbers.
func load(ctx context.Context, o Options, name string, c *client, path string, body func(i int) any) Result {
	ctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	var next atomic.Int64
	var errs atomic.Int64
	lat := make([][]time.Duration, o.Concurrency)
	start := time.Now()
	done := make(chan struct{})
	go progress(o.Progress, name, &next, done)
	var wg sync.WaitGroup
	for w := range o.Concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1))
				if i > o.Requests || ctx.Err() != nil {
					return
				}
				t := time.Now()
				code, err := c.do(ctx, http.MethodPost, path, body(i), nil)
				if err != nil || code >= 300 {
					if ctx.Err() == nil {
						errs.Add(1)
					}
					continue
				}
				lat[w] = append(lat[w], time.Since(t))
			}
		})
	}
	wg.Wait()
	close(done)
	elapsed := time.Since(start)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	r := Result{Scenario: name, Requests: len(all), Errors: int(errs.Load()),
		RequestsPerS: float64(len(all)) / elapsed.Seconds(), P50ms: ms(pct(all, .5)), P90ms: ms(pct(all, .9)),
		P99ms: ms(pct(all, .99))}
	if len(all) > 0 {
		r.MaxMs = ms(all[len(all)-1])
	}
	return r
}

func progress(w io.Writer, name string, n *atomic.Int64, done chan struct{}) {
	if w == nil {
		return
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			fmt.Fprintf(w, "  %s: %d requests\n", name, n.Load())
		}
	}
}

// waitNotifications waits (bounded) until want notifications arrived, then
// fills the notification numbers of r, timed from start.
func waitNotifications(rcv *receiver, r *Result, want int, start time.Time, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for rcv.count() < want && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	lat, last := rcv.latencies()
	r.Notifications = len(lat)
	if len(lat) > 0 {
		r.NotificationsPS = float64(len(lat)) / last.Sub(start).Seconds()
		r.E2EP50ms, r.E2EP99ms = ms(pct(lat, .5)), ms(pct(lat, .99))
	}
}

// Run runs every scenario and returns the results, baselines first.
func Run(ctx context.Context, o Options) ([]Result, error) {
	o.Concurrency = max(o.Concurrency, 1)
	rcv, err := newReceiver()
	if err != nil {
		return nil, err
	}
	defer rcv.close()
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: o.Concurrency * 2}}
	var out []Result

	// Baseline 1: a bare JSON handler.
	bare, err := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v map[string]any
		if json.NewDecoder(r.Body).Decode(&v) != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"id":"x","userCount":1}`))
	}))
	if err != nil {
		return nil, err
	}
	defer bare.Close()
	alert := func(target string) func(int) any {
		return func(i int) any {
			return map[string]any{"target": []string{target}, "severity": "error", "message": fmt.Sprint("bench ", i)}
		}
	}
	out = append(out, load(ctx, o, "baseline: bare HTTP handler", &client{hc: hc, base: "http://" + bare.Addr().String()}, "/", alert("@x")))

	// Baseline 2: a relay that decodes the alert and POSTs it to the receiver.
	relayHC := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: o.Concurrency * 2}}
	relay, err := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v map[string]any
		if json.NewDecoder(r.Body).Decode(&v) != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		v["createdAt"] = time.Now()
		b, _ := json.Marshal(v)
		resp, err := relayHC.Post(rcv.url(), "application/json", bytes.NewReader(b))
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		resp.Body.Close()
		w.WriteHeader(http.StatusAccepted)
	}))
	if err != nil {
		return nil, err
	}
	defer relay.Close()
	rcv.reset()
	start := time.Now()
	r := load(ctx, o, "baseline: bare relay", &client{hc: hc, base: "http://" + relay.Addr().String()}, "/", alert("@x"))
	waitNotifications(rcv, &r, r.Requests, start, 10*time.Second)
	out = append(out, r)

	// Herald: one recipient per alert.
	hz := &client{hc: hc, base: strings.TrimRight(o.Server, "/"), token: o.Token}
	tag := time.Now().Format("150405")
	var u struct{ ID string }
	if code, err := hz.do(ctx, http.MethodPost, "/v1/users", map[string]any{"name": "bench-" + tag, "webhookUrl": rcv.url()}, &u); err != nil || code != http.StatusCreated {
		return out, fmt.Errorf("bench: create user on %s: status %d, %v (is Herald running, and is the token an admin token?)", o.Server, code, err)
	}
	rcv.reset()
	start = time.Now()
	r = load(ctx, o, "herald: alerts in -> notifications out", hz, "/v1/alerts", alert("@bench-"+tag))
	waitNotifications(rcv, &r, r.Requests, start, 60*time.Second)
	out = append(out, r)

	if o.Fanout > 0 {
		var g struct{ ID string }
		if code, err := hz.do(ctx, http.MethodPost, "/v1/groups", map[string]any{"name": "bench-group-" + tag}, &g); err != nil || code != http.StatusCreated {
			return out, fmt.Errorf("bench: create group: status %d, %v", code, err)
		}
		for i := range o.Fanout {
			var m struct{ ID string }
			if _, err := hz.do(ctx, http.MethodPost, "/v1/users", map[string]any{"name": fmt.Sprintf("bench-%s-%d", tag, i), "webhookUrl": rcv.url()}, &m); err != nil {
				return out, err
			}
			if _, err := hz.do(ctx, http.MethodPut, "/v1/groups/"+g.ID+"/members/"+m.ID, nil, nil); err != nil {
				return out, err
			}
		}
		fo := o
		fo.Requests = max(1, o.Requests/o.Fanout)
		rcv.reset()
		start = time.Now()
		r = load(ctx, fo, fmt.Sprintf("herald: fan-out %d", o.Fanout), hz, "/v1/alerts", alert("@@bench-group-"+tag))
		waitNotifications(rcv, &r, r.Requests*o.Fanout, start, 120*time.Second)
		out = append(out, r)
	}
	return out, nil
}

// srv is a loopback HTTP server for a baseline.
type srv struct {
	s  *http.Server
	ln net.Listener
}

func serve(h http.Handler) (*srv, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.Serve(ln) }()
	return &srv{s: s, ln: ln}, nil
}

func (s *srv) Addr() net.Addr { return s.ln.Addr() }
func (s *srv) Close()         { _ = s.s.Close() }

// Table writes results as an aligned table.
func Table(w io.Writer, rs []Result) {
	fmt.Fprintf(w, "%-40s %9s %7s %10s %8s %8s %8s %8s %10s %10s %9s %9s\n", "scenario", "requests", "errors", "req/s",
		"p50 ms", "p90 ms", "p99 ms", "max ms", "notified", "notif/s", "e2e p50", "e2e p99")
	for _, r := range rs {
		fmt.Fprintf(w, "%-40s %9d %7d %10.0f %8.2f %8.2f %8.2f %8.2f %10d %10.0f %9.2f %9.2f\n", r.Scenario, r.Requests,
			r.Errors, r.RequestsPerS, r.P50ms, r.P90ms, r.P99ms, r.MaxMs, r.Notifications, r.NotificationsPS, r.E2EP50ms, r.E2EP99ms)
	}
}

package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// Labels the benchmark puts on every alert it sends, and reads back from
// every notification: which scenario it belongs to, and which alert it is.
const (
	labelKey = "bench"
	labelID  = "bench_id"
)

// receiver is the webhook endpoint the benchmark's notifications arrive at.
// It understands Herald's webhook payload (one delivery per request, with
// the alert's labels and createdAt, the Idempotency-Key header naming the
// delivery), the bare relay's (the alert as posted, plus createdAt), and
// Alertmanager's (an "alerts" array, each with labels and startsAt, several
// alerts per request possibly). It counts each delivery (each alert, for
// Alertmanager) once, per scenario label, with its accept → received
// latency. It is safe for concurrent use.
//
// It serves with fasthttp rather than net/http: at 10,000 notifications a
// second it shares two cores with the system it measures, and net/http's
// server spent about twice fasthttp's CPU per request (docs/BENCHMARKS.md,
// "The load generator").
type receiver struct {
	srv *fasthttp.Server
	ln  net.Listener
	mu  sync.Mutex
	by  map[string]*arrivals // by scenario label
}

// arrivals are one scenario's notifications.
type arrivals struct {
	seen map[string]bool
	lat  []time.Duration
	last time.Time
}

// newReceiver listens on addr (a loopback host:port; port 0 picks one).
func newReceiver(addr string) (*receiver, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("bench: receiver: %w", err)
	}
	r := &receiver{ln: ln, by: map[string]*arrivals{}}
	// No read or idle timeout, as net/http's server had none: a sender's
	// idle connection closed under it between scenarios would turn into a
	// failed attempt and a retry, and show in the latencies.
	r.srv = &fasthttp.Server{Handler: r.serve, MaxRequestBodySize: maxNotification,
		NoDefaultServerHeader: true, NoDefaultDate: true, NoDefaultContentType: true}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

func (r *receiver) url() string { return "http://" + r.ln.Addr().String() + "/hook" }

// payload is the union of the formats the receiver understands.
type payload struct {
	CreatedAt time.Time         `json:"createdAt"`
	Labels    map[string]string `json:"labels"`
	Alerts    []struct {
		Labels   map[string]string `json:"labels"`
		StartsAt time.Time         `json:"startsAt"`
	} `json:"alerts"`
}

// maxNotification bounds a notification's body.
const maxNotification = 16 << 20

func (r *receiver) serve(ctx *fasthttp.RequestCtx) {
	now := time.Now()
	var p payload
	if json.Unmarshal(ctx.PostBody(), &p) != nil {
		ctx.SetStatusCode(fasthttp.StatusBadRequest)
		return
	}
	r.mu.Lock()
	if len(p.Alerts) > 0 {
		for _, a := range p.Alerts {
			r.add(a.Labels[labelKey], a.Labels[labelID], a.StartsAt, now)
		}
	} else {
		r.add(p.Labels[labelKey], string(ctx.Request.Header.Peek("Idempotency-Key")), p.CreatedAt, now)
	}
	r.mu.Unlock()
	ctx.SetStatusCode(fasthttp.StatusOK)
}

// add records one arrival; id "" is counted every time. r.mu is held.
func (r *receiver) add(key, id string, accepted, now time.Time) {
	a := r.by[key]
	if a == nil {
		a = &arrivals{seen: map[string]bool{}}
		r.by[key] = a
	}
	if id != "" {
		if a.seen[id] {
			return
		}
		a.seen[id] = true
	}
	if !accepted.IsZero() {
		a.lat = append(a.lat, now.Sub(accepted))
	}
	a.last = now
}

// count returns how many notifications of key arrived.
func (r *receiver) count(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if a := r.by[key]; a != nil {
		return len(a.lat)
	}
	return 0
}

// latencies returns key's sorted accept → received latencies and its last
// arrival.
func (r *receiver) latencies(key string) ([]time.Duration, time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	a := r.by[key]
	if a == nil {
		return nil, time.Time{}
	}
	out := slices.Clone(a.lat)
	slices.Sort(out)
	return out, a.last
}

// close stops the receiver, waiting at most a few seconds for requests in
// progress.
func (r *receiver) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_ = r.srv.ShutdownWithContext(ctx)
}

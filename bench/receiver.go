package bench

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"
)

// receiver is the webhook endpoint the benchmark's notifications arrive at.
// It records when each delivery arrived and how long after the alert was
// accepted (the payload's createdAt).
type receiver struct {
	srv  *http.Server
	ln   net.Listener
	mu   sync.Mutex
	seen map[string]bool
	lat  []time.Duration
	last time.Time
}

func newReceiver() (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &receiver{ln: ln, seen: map[string]bool{}}
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

func (r *receiver) url() string { return "http://" + r.ln.Addr().String() + "/hook" }

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	now := time.Now()
	var p struct {
		CreatedAt time.Time `json:"createdAt"`
	}
	body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	_ = json.Unmarshal(body, &p)
	key := req.Header.Get("Idempotency-Key")
	r.mu.Lock()
	if key == "" || !r.seen[key] {
		if key != "" {
			r.seen[key] = true
		}
		if !p.CreatedAt.IsZero() {
			r.lat = append(r.lat, now.Sub(p.CreatedAt))
		}
		r.last = now
	}
	r.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// reset forgets everything received.
func (r *receiver) reset() {
	r.mu.Lock()
	r.seen, r.lat, r.last = map[string]bool{}, nil, time.Time{}
	r.mu.Unlock()
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.lat)
}

// latencies returns sorted accept→received latencies and the last arrival.
func (r *receiver) latencies() ([]time.Duration, time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := append([]time.Duration(nil), r.lat...)
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, r.last
}

func (r *receiver) close() { _ = r.srv.Close() }

func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*p))]
}

// Package webhooktest provides a webhook receiver for tests: a local HTTP
// server that records what Herald's webhook channel posts and can be told to
// fail.
package webhooktest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"time"

	"github.com/heraldproject/herald/notify/webhook"
)

// Path is the path of the URL returned by Receiver.URL. It stands in for the
// secret token real webhook URLs carry.
const Path = "/hooks/s3cr3t-t0ken"

// Request is one request the receiver got.
type Request struct {
	Payload        webhook.Payload
	IdempotencyKey string
	Header         http.Header
	Path           string
	// Body is the raw request body (for signature checks).
	Body []byte
	// Status is what the receiver answered.
	Status   int
	Received time.Time
}

// Receiver is a local webhook endpoint. It answers 200 unless told otherwise,
// accepts any path, and records every request. Accepted requests (answered
// with 2xx) are counted per Idempotency-Key. All methods are safe for
// concurrent use.
type Receiver struct {
	srv  *httptest.Server
	done chan struct{}

	mu         sync.Mutex
	requests   []Request
	counts     map[string]int // accepted requests per key
	keys       []string       // accepted keys in order of first arrival
	status     int
	retryAfter string
	failN      int
	failStatus int
	failAfter  string
	delay      time.Duration
	changed    chan struct{} // closed and replaced on every accepted request
}

// NewReceiver starts a receiver on 127.0.0.1. Call Close when done.
func NewReceiver() *Receiver {
	r := &Receiver{
		done:    make(chan struct{}),
		counts:  map[string]int{},
		status:  http.StatusOK,
		changed: make(chan struct{}),
	}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serveHTTP))
	return r
}

// Close shuts the receiver down, abandoning delayed requests.
func (r *Receiver) Close() {
	r.mu.Lock()
	select {
	case <-r.done:
	default:
		close(r.done)
	}
	r.mu.Unlock()
	r.srv.Close()
}

// URL returns a webhook URL served by the receiver: its base URL plus Path.
func (r *Receiver) URL() string { return r.srv.URL + Path }

// BaseURL returns the receiver's base URL ("http://127.0.0.1:port"). Any
// path under it is accepted.
func (r *Receiver) BaseURL() string { return r.srv.URL }

// SetStatus makes the receiver answer every following request with code,
// and with a Retry-After header when retryAfter is not empty. SetStatus(200,
// "") restores normal behaviour.
func (r *Receiver) SetStatus(code int, retryAfter string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status, r.retryAfter = code, retryAfter
}

// FailNext makes the receiver answer the next n requests with code (and
// Retry-After when retryAfter is not empty), then go back to the status set
// with SetStatus. It takes precedence over SetStatus.
func (r *Receiver) FailNext(n, code int, retryAfter string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failN, r.failStatus, r.failAfter = n, code, retryAfter
}

// SetDelay makes the receiver wait d before answering each request (or until
// the client gives up), to provoke client timeouts.
func (r *Receiver) SetDelay(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.delay = d
}

// Received returns every request so far, accepted or not, in arrival order.
func (r *Receiver) Received() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.requests)
}

// Count returns how many requests with this Idempotency-Key were accepted.
func (r *Receiver) Count(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts[key]
}

// Keys returns the Idempotency-Keys of accepted requests, each once, in the
// order they first arrived.
func (r *Receiver) Keys() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.keys)
}

// Unique returns how many distinct Idempotency-Keys were accepted.
func (r *Receiver) Unique() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.keys)
}

// Duplicates returns how many accepted requests repeated a key already
// accepted. Requests the receiver failed on purpose do not count.
func (r *Receiver) Duplicates() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	dup := 0
	for _, c := range r.counts {
		dup += c - 1
	}
	return dup
}

// WaitFor blocks until at least n distinct Idempotency-Keys were accepted,
// or ctx is done. Its error says how many arrived.
func (r *Receiver) WaitFor(ctx context.Context, n int) error {
	for {
		r.mu.Lock()
		got, changed := len(r.keys), r.changed
		r.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("webhooktest: %d of %d deliveries arrived: %w", got, n, ctx.Err())
		}
	}
}

func (r *Receiver) serveHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	rec := Request{
		IdempotencyKey: req.Header.Get("Idempotency-Key"),
		Header:         req.Header.Clone(),
		Path:           req.URL.Path,
		Received:       time.Now(),
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	rec.Body = body
	if err == nil {
		err = json.Unmarshal(body, &rec.Payload)
	}

	r.mu.Lock()
	delay := r.delay
	r.mu.Unlock()
	if delay > 0 {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-req.Context().Done():
			return
		case <-r.done:
			return
		}
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	status, retryAfter := r.status, r.retryAfter
	if r.failN > 0 {
		r.failN--
		status, retryAfter = r.failStatus, r.failAfter
	}
	if err != nil {
		status, retryAfter = http.StatusBadRequest, ""
	}
	rec.Status = status
	r.requests = append(r.requests, rec)
	if status >= 200 && status < 300 {
		if r.counts[rec.IdempotencyKey] == 0 {
			r.keys = append(r.keys, rec.IdempotencyKey)
		}
		r.counts[rec.IdempotencyKey]++
		close(r.changed)
		r.changed = make(chan struct{})
	}
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	switch {
	case err != nil:
		http.Error(w, "invalid JSON payload", status)
	case status >= 200 && status < 300:
		w.WriteHeader(status)
	default:
		http.Error(w, fmt.Sprintf("webhooktest: answering %d as told", status), status)
	}
}

package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/notify"
	"github.com/heraldproject/herald/notify/webhook"
	"github.com/heraldproject/herald/notify/webhook/webhooktest"
)

var _ notify.Notifier = (*webhook.Notifier)(nil)

func newReceiver(t *testing.T) *webhooktest.Receiver {
	t.Helper()
	r := webhooktest.NewReceiver()
	t.Cleanup(r.Close)
	return r
}

func message(url string) *notify.Message {
	return &notify.Message{
		DeliveryID: "dlv-1",
		AlertID:    "alr-1",
		Recipient:  &herald.User{ID: "usr-1", Name: "alice", WebhookURL: url},
		Severity:   herald.SeverityCritical,
		Title:      "Disk full",
		Text:       "db-1 is at 99%",
		Source:     "prometheus",
		Labels:     map[string]string{"env": "prod"},
		CreatedAt:  time.Date(2025, 3, 1, 12, 30, 0, 0, time.FixedZone("CET", 3600)),
		Attempt:    2,
	}
}

func TestNotifySuccess(t *testing.T) {
	rcv := newReceiver(t)
	n := webhook.New(webhook.Config{UserAgent: "herald-test/1"}, nil)

	retry, err := n.Notify(t.Context(), message(rcv.URL()))
	if err != nil || retry {
		t.Fatalf("Notify = (%v, %v), want (false, nil)", retry, err)
	}
	got := rcv.Received()
	if len(got) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(got))
	}
	req := got[0]
	want := webhook.Payload{
		DeliveryID: "dlv-1", AlertID: "alr-1", Recipient: "alice", RecipientID: "usr-1",
		Severity: "critical", Title: "Disk full", Message: "db-1 is at 99%", Source: "prometheus",
		Labels: map[string]string{"env": "prod"}, CreatedAt: "2025-03-01T11:30:00Z", Attempt: 2,
	}
	if fmt.Sprint(req.Payload) != fmt.Sprint(want) {
		t.Errorf("payload = %+v\nwant      %+v", req.Payload, want)
	}
	headers := map[string]string{
		"Content-Type":    "application/json",
		"Idempotency-Key": "dlv-1",
		"User-Agent":      "herald-test/1",
	}
	for k, v := range headers {
		if got := req.Header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	if req.Path != webhooktest.Path {
		t.Errorf("path = %q, want %q", req.Path, webhooktest.Path)
	}
	if rcv.Count("dlv-1") != 1 || rcv.Unique() != 1 || rcv.Duplicates() != 0 {
		t.Errorf("count=%d unique=%d dups=%d, want 1 1 0", rcv.Count("dlv-1"), rcv.Unique(), rcv.Duplicates())
	}
}

func TestPayloadJSONFields(t *testing.T) {
	m := message("http://x")
	m.Labels = nil
	body, err := jsonMarshal(webhook.NewPayload(m))
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{"deliveryId", "alertId", "recipient", "recipientId", "severity", "title",
		"message", "source", "labels", "createdAt", "attempt"} {
		if !strings.Contains(body, `"`+field+`":`) {
			t.Errorf("payload %s lacks field %q", body, field)
		}
	}
	if !strings.Contains(body, `"labels":{}`) {
		t.Errorf("nil labels should encode as {}: %s", body)
	}
}

func TestNotifyFailures(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		retryAfter string
		wantRetry  bool
		wantPrefix string
		wantWait   time.Duration
	}{
		{name: "500", status: 500, wantRetry: true, wantPrefix: "HTTP 500: webhooktest: answering 500"},
		{name: "503", status: 503, wantRetry: true, wantPrefix: "HTTP 503"},
		{name: "400", status: 400, wantPrefix: "HTTP 400"},
		{name: "404", status: 404, wantPrefix: "HTTP 404"},
		{name: "410", status: 410, wantPrefix: "HTTP 410"},
		{name: "302 not followed", status: 302, wantPrefix: "HTTP 302"},
		{name: "429 Retry-After", status: 429, retryAfter: "2", wantRetry: true, wantPrefix: "HTTP 429", wantWait: 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rcv := newReceiver(t)
			rcv.SetStatus(tt.status, tt.retryAfter)
			n := webhook.New(webhook.Config{}, nil)

			retry, err := n.Notify(t.Context(), message(rcv.URL()))
			if retry != tt.wantRetry {
				t.Errorf("retry = %v, want %v", retry, tt.wantRetry)
			}
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantPrefix) {
				t.Fatalf("err = %v, want prefix %q", err, tt.wantPrefix)
			}
			if wait, ok := notify.RetryAfter(err); tt.wantWait != 0 && (!ok || wait != tt.wantWait) {
				t.Errorf("RetryAfter = %v, %v; want %v", wait, ok, tt.wantWait)
			}
			assertNoURL(t, err, rcv.URL())
			if rcv.Unique() != 0 {
				t.Errorf("failed request counted as delivered")
			}
		})
	}
}

func TestNotifyTransportFailures(t *testing.T) {
	slow := newReceiver(t)
	slow.SetDelay(time.Minute)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + l.Addr().String() + webhooktest.Path
	l.Close()

	tests := []struct {
		name       string
		url        string
		timeout    time.Duration
		wantRetry  bool
		wantPrefix string
	}{
		{name: "connection refused", url: refused, wantRetry: true, wantPrefix: "connection refused"},
		{name: "timeout", url: slow.URL(), timeout: 100 * time.Millisecond, wantRetry: true, wantPrefix: "timeout"},
		{name: "bad scheme", url: "ftp://example.com" + webhooktest.Path, wantPrefix: "recipient alice has an invalid webhookUrl"},
		{name: "relative", url: webhooktest.Path, wantPrefix: "recipient alice has an invalid webhookUrl"},
		{name: "malformed", url: "http://[::1" + webhooktest.Path, wantPrefix: "recipient alice has an invalid webhookUrl"},
		{name: "empty", url: "", wantPrefix: "recipient alice has no webhookUrl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := webhook.New(webhook.Config{Timeout: tt.timeout}, nil)
			start := time.Now()
			retry, err := n.Notify(t.Context(), message(tt.url))
			if retry != tt.wantRetry {
				t.Errorf("retry = %v, want %v", retry, tt.wantRetry)
			}
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantPrefix) {
				t.Fatalf("err = %v, want prefix %q", err, tt.wantPrefix)
			}
			assertNoURL(t, err, tt.url)
			if elapsed := time.Since(start); elapsed > 10*time.Second {
				t.Errorf("Notify took %v", elapsed)
			}
		})
	}
}

func TestNotifyHonoursContext(t *testing.T) {
	rcv := newReceiver(t)
	rcv.SetDelay(time.Minute)
	n := webhook.New(webhook.Config{}, nil)
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	retry, err := n.Notify(ctx, message(rcv.URL()))
	if !retry || !errors.Is(err, context.Canceled) {
		t.Fatalf("Notify = (%v, %v), want a retryable cancellation", retry, err)
	}
	// Cut short, not ended by the 10 s timeout, nor sent again on a new
	// connection and answered a minute later.
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("Notify returned after %v", elapsed)
	}
}

// answering serves h on loopback and returns its URL and how many requests
// it was sent.
func answering(t *testing.T, h http.HandlerFunc) (*httptest.Server, func() int) {
	t.Helper()
	var mu sync.Mutex
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, func() int { mu.Lock(); defer mu.Unlock(); return n }
}

// The channel's own client: what a receiver may answer, and what it is sent.
func TestNotifyClient(t *testing.T) {
	t.Run("a long answer to a success is a success", func(t *testing.T) {
		srv, _ := answering(t, func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(strings.Repeat("x", 1<<20)))
		})
		if retry, err := webhook.New(webhook.Config{}, nil).Notify(t.Context(), message(srv.URL+"/x")); err != nil || retry {
			t.Fatalf("Notify = (%v, %v), want (false, nil)", retry, err)
		}
	})
	t.Run("a long answer to a failure keeps its status", func(t *testing.T) {
		srv, _ := answering(t, func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusBadGateway)
			_, _ = w.Write([]byte(strings.Repeat("y", 1<<20)))
		})
		retry, err := webhook.New(webhook.Config{}, nil).Notify(t.Context(), message(srv.URL+"/x"))
		if !retry || err == nil || !strings.HasPrefix(err.Error(), "HTTP 502") {
			t.Fatalf("Notify = (%v, %v), want a retryable HTTP 502", retry, err)
		}
	})
	t.Run("large answer headers", func(t *testing.T) {
		srv, _ := answering(t, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Security-Policy", strings.Repeat("a", 60<<10))
			w.WriteHeader(http.StatusNoContent)
		})
		if retry, err := webhook.New(webhook.Config{}, nil).Notify(t.Context(), message(srv.URL+"/x")); err != nil || retry {
			t.Fatalf("Notify = (%v, %v), want (false, nil)", retry, err)
		}
	})
	t.Run("path as registered, credentials from the URL", func(t *testing.T) {
		var path, user, pass string
		var ok bool
		srv, _ := answering(t, func(_ http.ResponseWriter, r *http.Request) {
			path = r.URL.RawPath
			if path == "" {
				path = r.URL.Path
			}
			user, pass, ok = r.BasicAuth()
		})
		u := strings.Replace(srv.URL, "http://", "http://hook:s3cr3t@", 1) + "/a//b/%2Fc"
		if retry, err := webhook.New(webhook.Config{}, nil).Notify(t.Context(), message(u)); err != nil || retry {
			t.Fatalf("Notify = (%v, %v), want (false, nil)", retry, err)
		}
		if path != "/a//b/%2Fc" {
			t.Errorf("path = %q, want /a//b/%%2Fc", path)
		}
		if !ok || user != "hook" || pass != "s3cr3t" {
			t.Errorf("basic auth = %q, %q, %v", user, pass, ok)
		}
	})
	t.Run("a kept-alive connection the receiver closed", func(t *testing.T) {
		srv, count := answering(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
		n := webhook.New(webhook.Config{}, nil)
		for i := range 3 {
			if retry, err := n.Notify(t.Context(), message(srv.URL+"/x")); err != nil || retry {
				t.Fatalf("send %d: Notify = (%v, %v), want (false, nil)", i, retry, err)
			}
			srv.CloseClientConnections() // the next send finds its idle connection closed
		}
		if got := count(); got != 3 {
			t.Errorf("receiver got %d requests, want 3", got)
		}
	})
	t.Run("dialled through Config.Dial", func(t *testing.T) {
		srv, count := answering(t, func(http.ResponseWriter, *http.Request) {})
		deny := notify.Outbound{DenyPrivate: true}
		n := webhook.New(webhook.Config{Dial: deny.Dialer().DialContext}, nil)
		retry, err := n.Notify(t.Context(), message(srv.URL+"/x"))
		if retry || !errors.Is(err, notify.ErrForbiddenAddress) {
			t.Fatalf("Notify = (%v, %v), want a permanent refusal by the outbound policy", retry, err)
		}
		assertNoURL(t, err, srv.URL+"/x")
		if count() != 0 {
			t.Errorf("the refused address was sent %d requests", count())
		}
	})
}

func TestNotifyWithCallerClient(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Get("Idempotency-Key")
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(srv.Close)
	n := webhook.New(webhook.Config{}, srv.Client())
	if retry, err := n.Notify(t.Context(), message(srv.URL+"/x")); err != nil || retry {
		t.Fatalf("Notify = (%v, %v)", retry, err)
	}
	if got != "dlv-1" {
		t.Errorf("Idempotency-Key = %q", got)
	}
}

func TestNotifyConcurrent(t *testing.T) {
	rcv := newReceiver(t)
	n := webhook.New(webhook.Config{}, nil)
	const count = 40
	var wg sync.WaitGroup
	for i := range count {
		wg.Go(func() {
			m := message(rcv.URL())
			m.DeliveryID = fmt.Sprintf("dlv-%d", i)
			if _, err := n.Notify(t.Context(), m); err != nil {
				t.Errorf("Notify %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := rcv.WaitFor(ctx, count); err != nil {
		t.Fatal(err)
	}
	if rcv.Duplicates() != 0 {
		t.Errorf("Duplicates = %d", rcv.Duplicates())
	}
}

func jsonMarshal(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

func assertNoURL(t *testing.T, err error, u string) {
	t.Helper()
	msg := err.Error()
	if strings.Contains(msg, webhooktest.Path) || strings.Contains(msg, "s3cr3t") || (u != "" && strings.Contains(msg, u)) {
		t.Errorf("error %q leaks the webhook URL", msg)
	}
}

// BenchmarkNotify sends to a loopback receiver that answers 204, with the
// channel's own client and, as the baseline, net/http's (a caller's client),
// 16 sends at a time.
func BenchmarkNotify(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(srv.Close)
	std := srv.Client()
	std.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
	for _, c := range []struct {
		name   string
		client *http.Client
	}{{"own", nil}, {"net-http", std}} {
		b.Run(c.name, func(b *testing.B) {
			n := webhook.New(webhook.Config{}, c.client)
			b.SetParallelism(8) // 16 senders on two cores
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				m := message(srv.URL + "/x")
				for pb.Next() {
					if _, err := n.Notify(context.Background(), m); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

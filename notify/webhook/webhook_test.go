package webhook_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
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
	// Cut short, not ended by the 10 s timeout, nor sent again on a new
	// connection and answered a minute later.
	notifyCancelled(t, webhook.New(webhook.Config{}, nil), rcv.URL())
}

// notifyCancelled sends to url, cancels the send 50 ms later, and requires
// a retryable cancellation within 5 s (not at the channel's timeout).
func notifyCancelled(t *testing.T, n *webhook.Notifier, url string) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	retry, err := n.Notify(ctx, message(url))
	if !retry || !errors.Is(err, context.Canceled) {
		t.Fatalf("Notify = (%v, %v), want a retryable cancellation", retry, err)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("Notify returned after %v, not at the cancellation", elapsed)
	}
}

// TestNotifyCancelledWhileDialling: a send cancelled while its connection
// is being dialled (a slow network, a firewall dropping the SYN) ends then,
// not at the channel's timeout; so does one whose dial completes just after
// the cancellation, whose request is then not written.
func TestNotifyCancelledWhileDialling(t *testing.T) {
	rcv := newReceiver(t)
	for _, c := range []struct {
		name string
		dial func(ctx context.Context, network, addr string) (net.Conn, error)
	}{
		{"dial ends with the cancellation", func(ctx context.Context, network, addr string) (net.Conn, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}},
		{"dial completes after it", func(ctx context.Context, network, addr string) (net.Conn, error) {
			<-ctx.Done()
			return (&net.Dialer{}).DialContext(context.Background(), network, addr)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			notifyCancelled(t, webhook.New(webhook.Config{Timeout: 10 * time.Second, Dial: c.dial}, nil), rcv.URL())
		})
	}
	time.Sleep(100 * time.Millisecond)
	if got := len(rcv.Received()); got != 0 {
		t.Errorf("the receiver was sent %d requests after their sends were cancelled", got)
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

// rawReceiver serves loopback connections with answer, which reads the
// connection's requests itself and writes raw bytes: the answers a
// net/http handler cannot give. n is the index of a request across
// connections.
func rawReceiver(t *testing.T, answer func(c net.Conn, br *bufio.Reader, n func() int)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var mu sync.Mutex
	count := 0
	next := func() int { mu.Lock(); defer mu.Unlock(); count++; return count - 1 }
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				answer(c, bufio.NewReader(c), next)
			}()
		}
	}()
	return "http://" + l.Addr().String()
}

// The channel's own client against answers only a raw server gives, and
// requests only the wire shows.
func TestNotifyClientWire(t *testing.T) {
	t.Run("a TLS handshake never answered times out", func(t *testing.T) {
		u := rawReceiver(t, func(c net.Conn, _ *bufio.Reader, _ func() int) { time.Sleep(10 * time.Second) })
		n := webhook.New(webhook.Config{Timeout: 300 * time.Millisecond}, nil)
		start := time.Now()
		retry, err := n.Notify(t.Context(), message(strings.Replace(u, "http://", "https://", 1)+"/x"))
		if !retry || err == nil {
			t.Fatalf("Notify = (%v, %v), want a retryable failure", retry, err)
		}
		if elapsed := time.Since(start); elapsed > 3*time.Second {
			t.Errorf("Notify returned after %v, want about the 300 ms timeout", elapsed)
		}
	})
	answers := func(raw ...string) func(net.Conn, *bufio.Reader, func() int) {
		return func(c net.Conn, br *bufio.Reader, next func() int) {
			for {
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, req.Body)
				i := next()
				if i >= len(raw) {
					return
				}
				out, closing := strings.CutSuffix(raw[i], "CLOSE")
				if _, err := io.WriteString(c, out); err != nil || closing {
					return
				}
			}
		}
	}
	for _, tt := range []struct {
		name      string
		raw       []string // answer i to request i; "CLOSE" at the end closes the connection
		wantRetry bool
		wantErr   string // prefix; "" for success
		requests  int    // what the receiver must have been sent
	}{
		{name: "a 2xx whose chunked body is cut short", raw: []string{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabCLOSE"}, requests: 1},
		{name: "a 2xx whose body is cut short", raw: []string{"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartialCLOSE"}, requests: 1},
		{name: "a 400 whose body is cut short", raw: []string{"HTTP/1.1 400 Bad Request\r\nContent-Length: 100\r\n\r\nbadCLOSE"}, wantErr: "HTTP 400", requests: 1},
		{name: "closed before any answer is sent again once", raw: []string{"CLOSE", "HTTP/1.1 204 No Content\r\n\r\n"}, requests: 2},
		{name: "an informational answer without the final one", raw: []string{"HTTP/1.1 102 Processing\r\n\r\n"}, wantRetry: true, wantErr: "HTTP 102", requests: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			got := 0
			u := rawReceiver(t, func(c net.Conn, br *bufio.Reader, next func() int) {
				answers(tt.raw...)(c, br, func() int { mu.Lock(); got++; mu.Unlock(); return next() })
			})
			retry, err := webhook.New(webhook.Config{Timeout: 2 * time.Second}, nil).Notify(t.Context(), message(u+"/x"))
			if retry != tt.wantRetry || (tt.wantErr == "") != (err == nil) || (err != nil && !strings.HasPrefix(err.Error(), tt.wantErr)) {
				t.Errorf("Notify = (%v, %v), want (%v, %q…)", retry, err, tt.wantRetry, tt.wantErr)
			}
			mu.Lock()
			defer mu.Unlock()
			if got != tt.requests {
				t.Errorf("receiver was sent %d requests, want %d", got, tt.requests)
			}
		})
	}
	t.Run("the next send after an informational answer gets its own answer", func(t *testing.T) {
		u := rawReceiver(t, answers("HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
			"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"))
		n := webhook.New(webhook.Config{Timeout: 2 * time.Second}, nil)
		if _, err := n.Notify(t.Context(), message(u+"/x")); err == nil || !strings.HasPrefix(err.Error(), "HTTP 102") {
			t.Fatalf("first send: %v, want HTTP 102", err)
		}
		if _, err := n.Notify(t.Context(), message(u+"/x")); err == nil || !strings.HasPrefix(err.Error(), "HTTP 500") {
			t.Errorf("second send: %v, want its own answer, HTTP 500", err)
		}
	})
	t.Run("request target and credentials as net/http writes them", func(t *testing.T) {
		for _, tt := range []struct{ path, wantTarget, user, pass string }{
			{path: "?token=abc", wantTarget: "/?token=abc"},
			{path: "/ü", wantTarget: "/%C3%BC"},
			{path: "/a b", wantTarget: "/a%20b"},
			{path: "/a//b/%2Fc?x=1", wantTarget: "/a//b/%2Fc?x=1"},
			{path: "/x#frag", wantTarget: "/x"},
		} {
			lines := make(chan string, 1)
			u := rawReceiver(t, func(c net.Conn, br *bufio.Reader, _ func() int) {
				line, _ := br.ReadString('\n')
				lines <- line
				_, _ = io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n")
			})
			if _, err := webhook.New(webhook.Config{}, nil).Notify(t.Context(), message(u+tt.path)); err != nil {
				t.Fatalf("%s: %v", tt.path, err)
			}
			if got, want := <-lines, "POST "+tt.wantTarget+" HTTP/1.1\r\n"; got != want {
				t.Errorf("%s: request line %q, want %q", tt.path, got, want)
			}
		}
		var user, pass string
		srv, _ := answering(t, func(_ http.ResponseWriter, r *http.Request) { user, pass, _ = r.BasicAuth() })
		u := strings.Replace(srv.URL, "http://", "http://hook:p%40ss%3Aw@", 1) + "/x"
		if _, err := webhook.New(webhook.Config{}, nil).Notify(t.Context(), message(u)); err != nil {
			t.Fatal(err)
		}
		if user != "hook" || pass != "p@ss:w" {
			t.Errorf("basic auth = %q, %q; want the URL's, decoded", user, pass)
		}
	})
	t.Run("sends after a cancelled one", func(t *testing.T) {
		var slow atomic.Bool
		slow.Store(true)
		srv, _ := answering(t, func(w http.ResponseWriter, _ *http.Request) {
			if slow.Load() {
				time.Sleep(2 * time.Second)
			}
			w.WriteHeader(http.StatusNoContent)
		})
		n := webhook.New(webhook.Config{}, nil)
		// A connection left idle by an earlier send, then one cancelled.
		slow.Store(false)
		if _, err := n.Notify(t.Context(), message(srv.URL+"/x")); err != nil {
			t.Fatal(err)
		}
		slow.Store(true)
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(50*time.Millisecond, cancel)
		if _, err := n.Notify(ctx, message(srv.URL+"/x")); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled send: %v", err)
		}
		slow.Store(false)
		if retry, err := n.Notify(t.Context(), message(srv.URL+"/x")); err != nil || retry {
			t.Errorf("next send = (%v, %v), want (false, nil)", retry, err)
		}
	})
}

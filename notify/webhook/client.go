package webhook

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/heraldproject/herald/notify"
)

// Limits of the channel's own client.
const (
	// maxResponseBody is the most of an answer's body read. A longer body
	// does not change the outcome (the status decides it); the connection
	// is closed instead of drained.
	maxResponseBody = 64 << 10
	// readBuffer bounds an answer's header block, per connection:
	// endpoints behind proxies and CDNs send large ones (fasthttp's
	// default, 4 KiB, refused a 12 KiB header).
	readBuffer = 64 << 10
)

// client is the channel's HTTP/1.1 client, on fasthttp: it writes a request
// and reads its answer on the sending goroutine, reusing buffers, where
// net/http hands every request to a connection's read and write goroutines
// and allocates its headers; that was a quarter of the sending stage's CPU
// (docs/BENCHMARKS.md, fix 46). It keeps a set of its connections so that a
// cancelled send can end them: fasthttp takes a deadline, not a context.
type client struct {
	fc *fasthttp.Client

	mu    sync.Mutex
	conns map[*conn]struct{}
}

func newFastClient(cfg Config) *client {
	c := &client{conns: make(map[*conn]struct{})}
	dial := cfg.Dial
	if dial == nil {
		dial = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	c.fc = &fasthttp.Client{
		DialTimeout: func(addr string, timeout time.Duration) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			nc, err := dial(ctx, "tcp", addr)
			if err != nil {
				return nil, err
			}
			return c.track(nc), nil
		},
		NoDefaultUserAgentHeader:  true,
		DisablePathNormalizing:    true, // the path as the user registered it
		MaxConnsPerHost:           1024,
		MaxConnWaitTimeout:        cfg.Timeout, // wait for a connection rather than fail
		MaxIdleConnDuration:       90 * time.Second,
		ReadBufferSize:            readBuffer,
		MaxResponseBodySize:       maxResponseBody,
		MaxIdemponentCallAttempts: 2,
		// A POST is sent again once, only when its connection was closed
		// before any answer: typically a kept-alive connection whose idle
		// timeout at the receiver raced the send. net/http does the same
		// for requests with an Idempotency-Key, which receivers dedupe on.
		RetryIfErr: func(_ *fasthttp.Request, _ int, err error) (bool, bool) {
			return false, errors.Is(err, fasthttp.ErrConnectionClosed) || errors.Is(err, io.EOF) ||
				errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
		},
	}
	return c
}

// do sends req within the deadline or until ctx is cancelled, and reads the
// answer into resp.
func (c *client) do(ctx context.Context, req *fasthttp.Request, resp *fasthttp.Response, deadline time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, func() {
			if errors.Is(ctx.Err(), context.Canceled) { // a deadline ends the send by itself
				c.closeAll()
			}
		})
		defer stop()
	}
	err := c.fc.DoDeadline(req, resp, deadline)
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// closeAll ends every connection, and so every send in flight: fasthttp
// cannot cancel one request. Herald cancels sends only when it stops, where
// every send is being cancelled; a send cut short by another's cancellation
// fails with a retryable error and is sent again later.
func (c *client) closeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.conns {
		k.aborted.Store(true)
		_ = k.Conn.Close()
	}
}

func (c *client) track(nc net.Conn) net.Conn {
	k := &conn{Conn: nc, c: c}
	c.mu.Lock()
	c.conns[k] = struct{}{}
	c.mu.Unlock()
	return k
}

// conn is a connection the client knows of until it is closed.
type conn struct {
	net.Conn
	c       *client
	once    sync.Once
	aborted atomic.Bool // closed by closeAll
}

// errAborted is what a read or write on a connection closeAll closed
// returns. It reports itself a timeout: fasthttp reads any other error
// before an answer's first byte as the server closing a kept-alive
// connection, and would send the request again on a new one.
var errAborted abortedError

type abortedError struct{}

func (abortedError) Error() string { return "send cancelled" }
func (abortedError) Timeout() bool { return true }

func (k *conn) Read(b []byte) (int, error) {
	n, err := k.Conn.Read(b)
	if err != nil && k.aborted.Load() {
		err = errAborted
	}
	return n, err
}

func (k *conn) Write(b []byte) (int, error) {
	n, err := k.Conn.Write(b)
	if err != nil && k.aborted.Load() {
		err = errAborted
	}
	return n, err
}

func (k *conn) Close() error {
	k.once.Do(func() {
		k.c.mu.Lock()
		delete(k.c.conns, k)
		k.c.mu.Unlock()
	})
	return k.Conn.Close()
}

// postFast is post on the channel's own client.
func (n *Notifier) postFast(ctx context.Context, target string, m *notify.Message, body []byte) (bool, error) {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(target)
	req.Header.SetMethod(http.MethodPost)
	req.Header.SetContentType("application/json")
	req.Header.Set("Idempotency-Key", m.DeliveryID)
	req.Header.SetUserAgent(n.cfg.UserAgent)
	if secret := n.secret(m); secret != "" {
		req.Header.Set(SignatureHeader, Sign(secret, time.Now(), body))
	}
	req.SetBodyRaw(body)
	deadline := time.Now().Add(n.cfg.Timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	err := n.fast.do(ctx, req, resp, deadline)
	if errors.Is(err, fasthttp.ErrBodyTooLarge) {
		err = nil // the status was read; the body does not matter
		resp.ResetBody()
	}
	if err != nil {
		if errors.Is(err, fasthttp.ErrTimeout) {
			err = context.DeadlineExceeded // fasthttp's is no net.Error
		}
		return notify.ClassifyTransportError(err)
	}
	code := resp.StatusCode()
	if code >= 200 && code < 300 {
		return false, nil
	}
	var h http.Header
	if v := resp.Header.Peek("Retry-After"); len(v) > 0 {
		h = http.Header{"Retry-After": {string(v)}}
	}
	return notify.ClassifyStatus(code, h, notify.Snippet(resp.Body()))
}

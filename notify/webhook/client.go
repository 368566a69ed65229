package webhook

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
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
	// readBuffer bounds an answer's header block. It is held by each send
	// in flight (fasthttp pools them): endpoints behind proxies and CDNs
	// send large headers (fasthttp's default, 4 KiB, refused a 12 KiB one).
	readBuffer = 64 << 10
	// idleConn is how long an unused connection is kept: a big group's
	// recipients may each have a host of their own.
	idleConn = 10 * time.Second
	// maxConns bounds the connections kept open across hosts, as net/http's
	// MaxIdleConns did (256 idle then, besides those in use): reaching it,
	// a new connection first closes the idle ones.
	maxConns = 512
)

// client is the channel's HTTP/1.1 client, on fasthttp: it writes a request
// and reads its answer on the sending goroutine, reusing buffers, where
// net/http hands every request to a connection's read and write goroutines
// and allocates its headers; that was a quarter of the sending stage's CPU
// (docs/BENCHMARKS.md, fix 46). It keeps a set of its connections so that a
// cancelled send can end them: fasthttp takes a deadline, not a context.
type client struct {
	fc       *fasthttp.Client
	maxConns int

	mu    sync.Mutex
	conns map[*conn]struct{}
	// dials is cancelled by closeAll, and replaced: dials in progress end
	// with it, and a connection whose dial began before it is closed.
	dials      context.Context
	cancelDial context.CancelFunc
}

func newFastClient(cfg Config) *client {
	c := &client{conns: make(map[*conn]struct{}), maxConns: maxConns}
	c.dials, c.cancelDial = context.WithCancel(context.Background())
	dial := cfg.Dial
	if dial == nil {
		dial = notify.Outbound{}.Dialer().DialContext // no policy: every address
	}
	c.fc = &fasthttp.Client{
		DialTimeout: func(addr string, timeout time.Duration) (net.Conn, error) {
			if timeout <= 0 {
				// fasthttp dials for a send waiting on a free connection
				// with no time left on its clock; the send's own deadline
				// still bounds it.
				timeout = cfg.Timeout
			}
			if c.open() >= c.maxConns {
				c.fc.CloseIdleConnections()
			}
			c.mu.Lock()
			dials := c.dials
			c.mu.Unlock()
			ctx, cancel := context.WithTimeout(dials, timeout)
			defer cancel()
			nc, err := dial(ctx, "tcp", addr)
			if err != nil {
				if dials.Err() != nil {
					return nil, errAborted
				}
				return nil, err
			}
			// fasthttp sets a write deadline before it writes, and a read
			// deadline before it reads the answer, but an https
			// connection's TLS handshake reads the server's hello in
			// between: without this it could wait forever.
			if err := nc.SetReadDeadline(time.Now().Add(timeout)); err != nil {
				nc.Close()
				return nil, err
			}
			return c.track(dials, nc)
		},
		NoDefaultUserAgentHeader:  true,
		DisablePathNormalizing:    true, // the target is built from the parsed URL (target)
		MaxConnsPerHost:           1024,
		MaxConnWaitTimeout:        cfg.Timeout, // wait for a connection rather than fail
		MaxIdleConnDuration:       idleConn,
		ReadBufferSize:            readBuffer,
		MaxResponseBodySize:       maxResponseBody,
		MaxIdemponentCallAttempts: 1, // postFast decides what is sent again
		ConfigureClient: func(hc *fasthttp.HostClient) error {
			hc.SecureErrorLogMessage = true // no answer's bytes (cookies) in errors
			return nil
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

// closeAll ends every connection and every dial in progress, and so every
// send in flight: fasthttp cannot cancel one request. Herald cancels sends
// only when it stops, where every send is being cancelled; a send cut short
// by another's cancellation fails with a retryable error and is sent again
// later. Idle connections are closed through fasthttp, so that it does not
// hand them out again. A send still waiting for a free connection, or not
// yet dialling, may yet be made on a new one: its caller sees the
// cancellation after it and sends it again later, with the same
// Idempotency-Key.
func (c *client) closeAll() {
	c.fc.CloseIdleConnections()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cancelDial()
	c.dials, c.cancelDial = context.WithCancel(context.Background())
	for k := range c.conns {
		k.aborted.Store(true)
		_ = k.Conn.Close()
	}
}

// open is how many connections are open, in use or idle.
func (c *client) open() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.conns)
}

// track adds nc to the connections closeAll ends, unless closeAll ran while
// it was being dialled (dials, as it was when the dial began, is then
// cancelled): it is closed instead.
func (c *client) track(dials context.Context, nc net.Conn) (net.Conn, error) {
	k := &conn{Conn: nc, c: c}
	c.mu.Lock()
	defer c.mu.Unlock()
	if dials.Err() != nil {
		_ = nc.Close()
		return nil, errAborted
	}
	c.conns[k] = struct{}{}
	return k, nil
}

// conn is a connection the client knows of until it is closed.
type conn struct {
	net.Conn
	c       *client
	once    sync.Once
	aborted atomic.Bool // closed by closeAll
}

// errAborted is what a read or write on a connection closeAll closed
// returns. It reports itself a timeout, which fasthttp passes on as
// ErrTimeout rather than as the connection closing (io.EOF), which postFast
// would answer by sending again.
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

// target is the request target of u as net/http writes it: the path as
// registered (RawPath keeps %2F and //), escaped where it must be, "/" for
// none, the query, no user info and no fragment.
func target(u *url.URL) string {
	return u.Scheme + "://" + u.Host + u.RequestURI()
}

// postFast is post on the channel's own client.
func (n *Notifier) postFast(ctx context.Context, u *url.URL, m *notify.Message, body []byte) (bool, error) {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(target(u))
	req.Header.SetMethod(http.MethodPost)
	n.headers(m, body, req.Header.Set)
	if u.User != nil { // decoded, as net/http sends them
		pass, _ := u.User.Password()
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(u.User.Username()+":"+pass)))
	}
	req.SetBodyRaw(body)
	deadline := time.Now().Add(n.cfg.Timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	err := n.fast.do(ctx, req, resp, deadline)
	if err != nil && !answered(resp) && lostBeforeAnswer(err) && ctx.Err() == nil && time.Now().Before(deadline) {
		// The connection was closed before any answer: most often a
		// kept-alive one whose idle timeout at the receiver raced this
		// send. Sent again once, on another connection, as net/http does
		// for a request with an Idempotency-Key (which receivers dedupe
		// on); an answer that had begun is never sent again.
		resp.Reset()
		err = n.fast.do(ctx, req, resp, deadline)
	}
	if err != nil && !answered(resp) {
		if errors.Is(err, fasthttp.ErrTimeout) {
			err = context.DeadlineExceeded // fasthttp's is no net.Error
		}
		if _, ok := errors.AsType[*fasthttp.ErrSmallBuffer](err); ok {
			// The same answer would come again: permanent.
			return false, fmt.Errorf("answer headers larger than %d KiB", readBuffer>>10)
		}
		return notify.ClassifyTransportError(err)
	}
	// The status was read: it decides, whatever became of the body (too
	// long, cut short), as with net/http, which never reads a 2xx body.
	code := resp.StatusCode()
	if code >= 100 && code < 200 {
		// An informational answer fasthttp does not skip (102, 103): the
		// final one is still unread on the connection, which must not
		// serve another request.
		n.fast.fc.CloseIdleConnections()
		return true, fmt.Errorf("HTTP %d without a final answer", code)
	}
	if code >= 200 && code < 300 {
		return false, nil
	}
	var h http.Header
	if v := resp.Header.Peek("Retry-After"); len(v) > 0 {
		h = http.Header{"Retry-After": {string(v)}}
	}
	var detail []byte
	if err == nil {
		detail = resp.Body()
	}
	return notify.ClassifyStatus(code, h, notify.Snippet(detail))
}

// answered reports whether resp holds an answer's status line, even one
// whose headers or body were then cut short. fasthttp's StatusCode reports
// 200 before anything was read, so the status line is known by what comes
// with it: a reason phrase ("200 OK", which HTTP/1.1 servers send), or a
// body's framing (a length, chunked, or until close) once the headers were
// read; an answer with neither has no body to be cut short.
func answered(resp *fasthttp.Response) bool {
	return len(resp.Header.StatusMessage()) > 0 || resp.Header.ContentLength() != 0
}

// lostBeforeAnswer reports whether err is the connection closing or being
// reset before any answer: fasthttp reports any failure to read an answer's
// first byte as ErrConnectionClosed, and a failed write of the request as
// the error itself.
func lostBeforeAnswer(err error) bool {
	return errors.Is(err, fasthttp.ErrConnectionClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

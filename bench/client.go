package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
)

// client posts JSON to one HTTP API.
type client struct {
	hc    *http.Client
	base  string
	token string
	// fc sends the load (post). The load generator
	// shares two cores with the system it measures, so its own cost per
	// request is taken from that system: fasthttp's client makes the same
	// requests as net/http's on keep-alive connections, with no goroutines
	// of its own and no header maps (docs/BENCHMARKS.md, "The load
	// generator").
	fc *fasthttp.Client
}

// loadTimeout bounds one request of the load.
const loadTimeout = 30 * time.Second

// newLoadClient returns the fasthttp client the load is sent with: enough
// connections for conns requests in flight to one server, each waiting for
// a free connection rather than failing.
func newLoadClient(conns int) *fasthttp.Client {
	return &fasthttp.Client{
		NoDefaultUserAgentHeader:  true,
		DisablePathNormalizing:    true,
		MaxConnsPerHost:           conns,
		MaxConnWaitTimeout:        loadTimeout,
		MaxIdleConnDuration:       10 * time.Second,
		ReadTimeout:               loadTimeout,
		WriteTimeout:              loadTimeout,
		MaxIdemponentCallAttempts: 1, // a POST is never sent twice
	}
}

// post sends body as JSON with POST and returns the status code, reading
// and discarding the answer: the load's requests. It ends at ctx's
// deadline, if sooner than loadTimeout, with context.DeadlineExceeded; a
// non-2xx status is not an error.
func (c *client) post(ctx context.Context, path string, body any) (int, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, fmt.Errorf("encode POST %s: %w", path, err)
	}
	deadline := time.Now().Add(loadTimeout)
	end, cut := ctx.Deadline() // the end of the scenario
	if cut && end.Before(deadline) {
		deadline = end
	}
	// Past ctx's deadline, the request is cut off by it, even while its
	// timer has not fired yet (ctx.Err() nil): on a loaded machine that
	// took long enough for the closed loop's clients to fail thousands of
	// requests at once, each with fasthttp's "timeout" (docs/BENCHMARKS.md).
	cutOff := func() error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if cut && !time.Now().Before(end) {
			return context.DeadlineExceeded
		}
		return nil
	}
	if err := cutOff(); err != nil {
		return 0, err
	}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(c.base + path)
	req.Header.SetMethod(http.MethodPost)
	req.Header.SetContentType("application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.SetBodyRaw(b)
	if err := c.fc.DoDeadline(req, resp, deadline); err != nil {
		if cerr := cutOff(); cerr != nil {
			return 0, cerr
		}
		return 0, err
	}
	return resp.StatusCode(), nil
}

// do sends body (nil: none) as JSON and decodes a 2xx answer into out (nil:
// discarded). It returns the status code; a non-2xx status is not an error.
func (c *client) do(ctx context.Context, method, path string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode %s %s: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

// must is do for setup calls: it retries 429 and 5xx answers and transport
// errors until ctx ends, and fails on any other status but want.
func (c *client) must(ctx context.Context, method, path string, body, out any, want int) error {
	wait := 50 * time.Millisecond
	for {
		code, err := c.do(ctx, method, path, body, out)
		switch {
		case err == nil && code == want:
			return nil
		case err == nil && code != http.StatusTooManyRequests && code < 500:
			return fmt.Errorf("%s %s%s: status %d, want %d (is the token an admin token?)", method, c.base, path, code, want)
		case ctx.Err() != nil:
			return fmt.Errorf("%s %s%s: %w", method, c.base, path, errors.Join(ctx.Err(), err))
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// checkLoopback refuses a base URL whose host is not on this machine's
// loopback: the benchmark loads only local systems (and its receiver
// listens on loopback, so a remote one could not reach it anyway).
func checkLoopback(ctx context.Context, base string) error {
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not a URL (want http://127.0.0.1:PORT)", base)
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); ip != nil {
		if !ip.IsLoopback() {
			return fmt.Errorf("%s: not a loopback address; the benchmark only loads systems on this machine", base)
		}
		return nil
	}
	ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return fmt.Errorf("%s: %w", base, err)
	}
	for _, ip := range ips {
		if !ip.IP.IsLoopback() {
			return fmt.Errorf("%s: %s is not a loopback address; the benchmark only loads systems on this machine", base, ip.IP)
		}
	}
	return nil
}

func statusKey(code int, err error) string {
	if err != nil {
		return "transport"
	}
	return strconv.Itoa(code)
}

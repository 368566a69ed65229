package notify_test

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/heraldproject/herald/notify"
)

// secretPath is the token part of a Slack-style incoming webhook URL.
const secretPath = "/services/T0001/B0002/XyZsecretTOKEN123"

func urlErr(u string, err error) error { return &url.Error{Op: "Post", URL: u, Err: err} }

func opErr(syscallErr error) error {
	return &net.OpError{
		Op: "dial", Net: "tcp",
		Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9999},
		Err:  &os.SyscallError{Syscall: "connect", Err: syscallErr},
	}
}

func TestClassifyTransportError(t *testing.T) {
	secretURL := "https://hooks.example.com" + secretPath
	tests := []struct {
		name      string
		err       error
		wantRetry bool
		wantMsg   string
		wantIs    error
	}{
		{name: "nil", err: nil},
		{name: "refused", err: urlErr(secretURL, opErr(syscall.ECONNREFUSED)), wantRetry: true,
			wantMsg: "connection refused: dial tcp 127.0.0.1:9999", wantIs: syscall.ECONNREFUSED},
		{name: "reset", err: urlErr(secretURL, opErr(syscall.ECONNRESET)), wantRetry: true,
			wantMsg: "connection reset: dial tcp 127.0.0.1:9999"},
		{name: "deadline", err: urlErr(secretURL, context.DeadlineExceeded), wantRetry: true,
			wantMsg: "timeout", wantIs: context.DeadlineExceeded},
		{name: "canceled", err: urlErr(secretURL, context.Canceled), wantRetry: true,
			wantMsg: "canceled", wantIs: context.Canceled},
		{name: "dns not found", err: urlErr(secretURL, &net.OpError{Op: "dial", Net: "tcp",
			Err: &net.DNSError{Err: "no such host", Name: "hooks.example.com", IsNotFound: true}}),
			wantRetry: true, wantMsg: "no such host hooks.example.com"},
		{name: "dns temporary", err: urlErr(secretURL, &net.DNSError{Err: "server misbehaving", Name: "hooks.example.com", IsTemporary: true}),
			wantRetry: true, wantMsg: "DNS lookup failed for hooks.example.com"},
		{name: "eof", err: urlErr(secretURL, io.EOF), wantRetry: true, wantMsg: "connection closed by peer"},
		{name: "parse", err: &url.Error{Op: "parse", URL: "http://[::1" + secretPath, Err: errors.New("missing ']' in host")},
			wantMsg: "malformed URL"},
		{name: "scheme", err: urlErr("ftp://hooks.example.com"+secretPath, errors.New(`unsupported protocol scheme "ftp"`)),
			wantMsg: `unsupported URL scheme "ftp"`},
		{name: "no host", err: urlErr("http://"+secretPath, errors.New("http: no Host in request URL")),
			wantMsg: "URL has no host"},
		{name: "unknown authority", err: urlErr(secretURL, x509.UnknownAuthorityError{}),
			wantMsg: "TLS certificate verification failed: x509: certificate signed by unknown authority"},
		{name: "other op error", err: urlErr(secretURL, &net.OpError{Op: "read", Net: "tcp", Err: errors.New("weird")}),
			wantRetry: true, wantMsg: "network error: read tcp: weird"},
		{name: "other", err: urlErr(secretURL, errors.New("something odd")), wantRetry: true, wantMsg: "something odd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			retry, err := notify.ClassifyTransportError(tt.err)
			if retry != tt.wantRetry {
				t.Errorf("retry = %v, want %v", retry, tt.wantRetry)
			}
			if tt.err == nil {
				if err != nil {
					t.Fatalf("err = %v, want nil", err)
				}
				return
			}
			if err.Error() != tt.wantMsg {
				t.Errorf("message = %q, want %q", err, tt.wantMsg)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("result does not wrap the original error")
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("errors.Is(err, %v) = false", tt.wantIs)
			}
			assertNoSecret(t, err.Error(), secretPath)
		})
	}
}

// TestClassifyRealTransportErrors provokes real failures with an http.Client
// and checks the classification and that the webhook URL's token never
// appears in the message.
func TestClassifyRealTransportErrors(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) })

	tests := []struct {
		name      string
		url       string
		timeout   time.Duration
		wantRetry bool
		wantMsg   string
	}{
		{name: "refused", url: "http://" + closedAddr(t) + secretPath, wantRetry: true, wantMsg: "connection refused"},
		{name: "timeout", url: slow.URL + secretPath, timeout: 50 * time.Millisecond, wantRetry: true, wantMsg: "timeout"},
		{name: "scheme", url: "ftp://hooks.example.com" + secretPath, wantMsg: "unsupported URL scheme"},
		{name: "userinfo", url: "http://user:pa55word@" + closedAddr(t) + secretPath, wantRetry: true, wantMsg: "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, tt.url, strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				resp.Body.Close()
				t.Fatal("request succeeded, want an error")
			}
			retry, cerr := notify.ClassifyTransportError(err)
			if retry != tt.wantRetry {
				t.Errorf("retry = %v, want %v (err %v)", retry, tt.wantRetry, err)
			}
			if !strings.HasPrefix(cerr.Error(), tt.wantMsg) {
				t.Errorf("message = %q, want prefix %q", cerr, tt.wantMsg)
			}
			assertNoSecret(t, cerr.Error(), secretPath, "pa55word", tt.url)
			assertNoSecret(t, fmt.Sprintf("%v", cerr), secretPath)
		})
	}
}

func TestClassifyMalformedURL(t *testing.T) {
	_, err := http.NewRequest(http.MethodPost, "http://[::1"+secretPath, nil)
	if err == nil {
		t.Fatal("NewRequest accepted a malformed URL")
	}
	retry, cerr := notify.ClassifyTransportError(err)
	if retry || cerr.Error() != "malformed URL" {
		t.Errorf("got (%v, %q), want (false, \"malformed URL\")", retry, cerr)
	}
}

// closedAddr returns a local address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func assertNoSecret(t *testing.T, msg string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(msg, s) {
			t.Errorf("message %q leaks secret %q", msg, s)
		}
	}
}

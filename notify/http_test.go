package notify_test

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldproject/herald/notify"
)

// trackedBody records whether it was read to the end and closed.
type trackedBody struct {
	r      io.Reader
	eof    bool
	closed bool
}

func (b *trackedBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

func (b *trackedBody) Close() error { b.closed = true; return nil }

func TestCheckResponse(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		body       string
		retryAfter string
		wantRetry  bool
		wantErr    string // "" means nil error
		wantWait   time.Duration
		wantNoWait bool
	}{
		{name: "200", status: 200, body: "ok"},
		{name: "204", status: 204},
		{name: "400", status: 400, body: "bad payload\n", wantErr: "HTTP 400: bad payload"},
		{name: "404 empty body", status: 404, wantErr: "HTTP 404: Not Found"},
		{name: "410", status: 410, body: "gone", wantErr: "HTTP 410: gone"},
		{name: "301", status: 301, body: "moved", wantErr: "HTTP 301: moved"},
		{name: "408", status: 408, body: "slow", wantRetry: true, wantErr: "HTTP 408: slow"},
		{name: "425", status: 425, body: "early", wantRetry: true, wantErr: "HTTP 425: early"},
		{name: "500", status: 500, body: "  boom \n\t again ", wantRetry: true, wantErr: "HTTP 500: boom again"},
		{name: "502", status: 502, body: "<html>bad gateway</html>", wantRetry: true, wantErr: "HTTP 502: <html>bad gateway</html>"},
		{name: "429 seconds", status: 429, body: "slow down", retryAfter: "2", wantRetry: true, wantErr: "HTTP 429: slow down", wantWait: 2 * time.Second},
		{name: "429 without header", status: 429, wantRetry: true, wantErr: "HTTP 429: Too Many Requests", wantNoWait: true},
		{name: "429 malformed header", status: 429, retryAfter: "soon", wantRetry: true, wantErr: "HTTP 429", wantNoWait: true},
		{name: "503 seconds", status: 503, retryAfter: "30", wantRetry: true, wantErr: "HTTP 503", wantWait: 30 * time.Second},
		{name: "500 ignores Retry-After", status: 500, retryAfter: "30", wantRetry: true, wantErr: "HTTP 500", wantNoWait: true},
		{name: "long body cut", status: 400, body: strings.Repeat("x", 2000), wantErr: "HTTP 400: " + strings.Repeat("x", 512)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := &trackedBody{r: strings.NewReader(tt.body)}
			resp := &http.Response{StatusCode: tt.status, Header: http.Header{}, Body: body}
			if tt.retryAfter != "" {
				resp.Header.Set("Retry-After", tt.retryAfter)
			}
			retry, err := notify.CheckResponse(resp)
			if retry != tt.wantRetry {
				t.Errorf("retry = %v, want %v", retry, tt.wantRetry)
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("err = %v, want nil", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("err = nil, want %q", tt.wantErr)
			case err != nil && !strings.HasPrefix(err.Error(), tt.wantErr):
				t.Errorf("err = %q, want prefix %q", err, tt.wantErr)
			}
			if err != nil {
				if se, ok := errors.AsType[*notify.StatusError](err); !ok || se.StatusCode != tt.status {
					t.Errorf("err %v does not carry *StatusError with code %d", err, tt.status)
				}
				if len(err.Error()) > 600 {
					t.Errorf("error message is %d bytes long", len(err.Error()))
				}
			}
			wait, ok := notify.RetryAfter(err)
			if tt.wantNoWait && ok {
				t.Errorf("RetryAfter = %v, want none", wait)
			}
			if tt.wantWait != 0 && (!ok || wait != tt.wantWait) {
				t.Errorf("RetryAfter = %v, %v; want %v", wait, ok, tt.wantWait)
			}
			if !body.eof || !body.closed {
				t.Errorf("body drained=%v closed=%v, want both", body.eof, body.closed)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"0", 0, true},
		{"2", 2 * time.Second, true},
		{" 120 ", 2 * time.Minute, true},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"Sunday, 02-Mar-25 12:00:00 GMT", 24 * time.Hour, true}, // RFC 850
		{"", 0, false},
		{"-5", 0, false},
		{"1.5", 0, false},
		{"soon", 0, false},
		{"99999999999999999999", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := notify.ParseRetryAfter(tt.in, now)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
			}
		})
	}
	if got, ok := notify.ParseRetryAfter("9223372036854775807", now); !ok || got <= 0 {
		t.Errorf("huge delta = %v, %v; want a large positive wait", got, ok)
	}
}

func TestSnippet(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"trims and collapses", []byte("  a \r\n b\t\tc  "), "a b c"},
		{"empty", nil, ""},
		{"cut inside a rune", append([]byte(strings.Repeat("a", 511)), "é"...), strings.Repeat("a", 511)},
		{"invalid utf-8", []byte("a\xffb"), "a\uFFFDb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := notify.Snippet(tt.in); got != tt.want {
				t.Errorf("Snippet = %q, want %q", got, tt.want)
			}
		})
	}
}

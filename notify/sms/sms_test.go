package sms_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/notify"
	"github.com/heraldproject/herald/notify/sms"
	"github.com/heraldproject/herald/notify/sms/smstest"
)

const (
	accountSID = "AC0123456789abcdef"
	authToken  = "SECRET-auth-token-42"
	fromNumber = "+15005550006"
)

var _ notify.Notifier = (*sms.Notifier)(nil)

func newProvider(t *testing.T) *smstest.Provider {
	t.Helper()
	p := smstest.NewProvider(accountSID, authToken)
	t.Cleanup(p.Close)
	return p
}

func newNotifier(t *testing.T, url string, mutate func(*sms.Config)) *sms.Notifier {
	t.Helper()
	cfg := sms.Config{URL: url, AccountSID: accountSID, AuthToken: authToken, From: fromNumber}
	if mutate != nil {
		mutate(&cfg)
	}
	n, err := sms.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func message(phone string) *notify.Message {
	return &notify.Message{
		DeliveryID: "dlv-1", AlertID: "alr-1",
		Recipient: &herald.User{ID: "usr-1", Name: "alice", Phone: phone},
		Severity:  herald.SeverityCritical,
		Title:     "Disk full",
		Text:      "db-1 is at 99%",
		Attempt:   1,
	}
}

func TestSend(t *testing.T) {
	p := newProvider(t)
	n := newNotifier(t, p.URL(), nil)
	if retry, err := n.Notify(t.Context(), message("+14155550100")); err != nil || retry {
		t.Fatalf("Notify = (%v, %v)", retry, err)
	}
	msgs := p.Messages()
	if len(msgs) != 1 {
		t.Fatalf("got %d messages", len(msgs))
	}
	m := msgs[0]
	if m.To != "+14155550100" || m.From != fromNumber || m.Body != "[CRITICAL] Disk full\ndb-1 is at 99%" {
		t.Errorf("message = %+v", m)
	}
	if !strings.HasPrefix(m.SID, "SM") || len(m.SID) != 34 {
		t.Errorf("sid = %q", m.SID)
	}
}

func TestBody(t *testing.T) {
	long := strings.Repeat("ü", 2000)
	tests := []struct {
		name  string
		m     notify.Message
		max   int
		want  string
		runes int
	}{
		{name: "title and text", m: notify.Message{Severity: "warning", Title: "T", Text: "x\ny"}, max: 1600, want: "[WARNING] T\nx\ny"},
		{name: "text only", m: notify.Message{Severity: "info", Text: " hello "}, max: 1600, want: "[INFO] hello"},
		{name: "title only", m: notify.Message{Title: "T"}, max: 1600, want: "[ALERT] T"},
		{name: "truncated rune-safely", m: notify.Message{Severity: "error", Text: long}, max: 20, runes: 20},
		{name: "default length", m: notify.Message{Severity: "error", Text: long}, max: 1600, runes: 1600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := sms.Body(&tt.m, tt.max)
			if tt.want != "" && got != tt.want {
				t.Errorf("Body = %q, want %q", got, tt.want)
			}
			if tt.runes != 0 && (utf8.RuneCountInString(got) != tt.runes || !utf8.ValidString(got) || !strings.HasSuffix(got, "…")) {
				t.Errorf("Body has %d runes (valid %v), want %d ending in …", utf8.RuneCountInString(got), utf8.ValidString(got), tt.runes)
			}
		})
	}
}

func TestMaxLength(t *testing.T) {
	p := newProvider(t)
	n := newNotifier(t, p.URL(), func(c *sms.Config) { c.MaxLength = 30 })
	m := message("+14155550100")
	m.Text = strings.Repeat("€", 100)
	if _, err := n.Notify(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	if got := p.Messages()[0].Body; utf8.RuneCountInString(got) != 30 {
		t.Errorf("body %q has %d runes, want 30", got, utf8.RuneCountInString(got))
	}
}

func TestFailures(t *testing.T) {
	tests := []struct {
		name      string
		phone     string
		mutate    func(*sms.Config)
		prep      func(*smstest.Provider)
		wantRetry bool
		wantMsg   string
		wantWait  time.Duration
	}{
		{name: "invalid number", phone: "555-1234",
			wantMsg: "HTTP 400: twilio 21211: The 'To' number 555-1234 is not a valid phone number."},
		{name: "bad credentials", mutate: func(c *sms.Config) { c.AuthToken = "SECRET-wrong" },
			wantMsg: "HTTP 401: twilio 20003: Authenticate"},
		{name: "wrong account", mutate: func(c *sms.Config) { c.AccountSID = "ACother" },
			wantMsg: "HTTP 401: twilio 20003: Authenticate"},
		{name: "500", prep: func(p *smstest.Provider) { p.SetStatus(500, "") },
			wantRetry: true, wantMsg: "HTTP 500: twilio 20500: Internal Server Error"},
		{name: "429", prep: func(p *smstest.Provider) { p.FailNext(1, 429, "4") },
			wantRetry: true, wantMsg: "HTTP 429: twilio 20429: Too Many Requests", wantWait: 4 * time.Second},
		{name: "503 with Retry-After", prep: func(p *smstest.Provider) { p.SetStatus(503, "60") },
			wantRetry: true, wantMsg: "HTTP 503", wantWait: time.Minute},
		{name: "no phone", phone: "-", wantMsg: "recipient alice has no phone number"},
		{name: "unreachable", mutate: func(c *sms.Config) { c.URL = "http://" + closedAddr(t) },
			wantRetry: true, wantMsg: "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newProvider(t)
			if tt.prep != nil {
				tt.prep(p)
			}
			n := newNotifier(t, p.URL(), tt.mutate)
			phone := tt.phone
			switch phone {
			case "":
				phone = "+14155550100"
			case "-":
				phone = ""
			}
			retry, err := n.Notify(t.Context(), message(phone))
			if retry != tt.wantRetry {
				t.Errorf("retry = %v, want %v", retry, tt.wantRetry)
			}
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantMsg) {
				t.Fatalf("err = %v, want prefix %q", err, tt.wantMsg)
			}
			if wait, ok := notify.RetryAfter(err); tt.wantWait != 0 && (!ok || wait != tt.wantWait) {
				t.Errorf("RetryAfter = %v, %v; want %v", wait, ok, tt.wantWait)
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("err %q leaks the auth token", err)
			}
			if len(p.Messages()) != 0 {
				t.Errorf("failed send recorded")
			}
		})
	}
}

func TestRetryThenSend(t *testing.T) {
	p := newProvider(t)
	p.FailNext(2, 503, "")
	n := newNotifier(t, p.URL(), nil)
	for i := range 2 {
		if retry, err := n.Notify(t.Context(), message("+14155550100")); !retry || err == nil {
			t.Fatalf("attempt %d = (%v, %v), want a retryable failure", i+1, retry, err)
		}
	}
	if _, err := n.Notify(t.Context(), message("+14155550100")); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrent(t *testing.T) {
	p := newProvider(t)
	n := newNotifier(t, p.URL(), nil)
	const count = 30
	var wg sync.WaitGroup
	for i := range count {
		wg.Go(func() {
			if _, err := n.Notify(t.Context(), message(fmt.Sprintf("+1415555%04d", i))); err != nil {
				t.Errorf("Notify %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := p.WaitFor(ctx, count); err != nil {
		t.Fatal(err)
	}
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     sms.Config
		wantErr string
	}{
		{name: "ok", cfg: sms.Config{AccountSID: "AC1", AuthToken: authToken, From: fromNumber}},
		{name: "missing all", cfg: sms.Config{}, wantErr: "sms config: accountSid is required; authToken is required; from is required"},
		{name: "bad url", cfg: sms.Config{URL: "api.twilio.com", AccountSID: "AC1", AuthToken: authToken, From: fromNumber}, wantErr: `url "api.twilio.com"`},
		{name: "negative length", cfg: sms.Config{AccountSID: "AC1", AuthToken: authToken, From: fromNumber, MaxLength: -1}, wantErr: "maxLength -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sms.New(tt.cfg, nil)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("New: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("New = %v, want error containing %q", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), authToken) {
				t.Errorf("config error leaks the token")
			}
		})
	}
}

func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

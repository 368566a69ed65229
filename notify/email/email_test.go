package email_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/notify"
	"github.com/heraldproject/herald/notify/email"
	"github.com/heraldproject/herald/notify/email/smtptest"
)

const password = "hunter2-SECRET"

var _ notify.Notifier = (*email.Notifier)(nil)

func newServer(t *testing.T, opts smtptest.Options) *smtptest.Server {
	t.Helper()
	s := smtptest.NewServer(opts)
	t.Cleanup(s.Close)
	return s
}

func newNotifier(t *testing.T, s *smtptest.Server, cfg email.Config) *email.Notifier {
	t.Helper()
	cfg.Host, cfg.Port = s.Host(), s.Port()
	if cfg.From == "" {
		cfg.From = "Herald <herald@example.com>"
	}
	if cfg.TLS == "" {
		cfg.TLS = email.TLSNone
	}
	n, err := email.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func message(to string) *notify.Message {
	return &notify.Message{
		DeliveryID: "dlv-1", AlertID: "alr-1",
		Recipient: &herald.User{ID: "usr-1", Name: "alice", Email: to},
		Severity:  herald.SeverityCritical,
		Title:     "Disque plein – db-1",
		Text:      "db-1 is at 99%\nact now",
		Source:    "prometheus",
		Labels:    map[string]string{"env": "prod"},
		CreatedAt: time.Now(),
		Attempt:   1,
	}
}

func TestSend(t *testing.T) {
	s := newServer(t, smtptest.Options{})
	n := newNotifier(t, s, email.Config{})

	if retry, err := n.Notify(t.Context(), message("alice@example.com")); err != nil || retry {
		t.Fatalf("Notify = (%v, %v)", retry, err)
	}
	msgs := s.Messages()
	if len(msgs) != 1 {
		t.Fatalf("got %d messages", len(msgs))
	}
	m := msgs[0]
	if m.From != "herald@example.com" || len(m.To) != 1 || m.To[0] != "alice@example.com" {
		t.Errorf("envelope from=%q to=%q", m.From, m.To)
	}
	if m.Subject != "[CRITICAL] Disque plein – db-1" {
		t.Errorf("subject = %q", m.Subject)
	}
	headers := map[string]string{
		"Message-Id":           "<dlv-1@herald>",
		"X-Herald-Delivery-Id": "dlv-1",
		"X-Herald-Alert-Id":    "alr-1",
		"X-Herald-Severity":    "critical",
		"Auto-Submitted":       "auto-generated",
	}
	for k, want := range headers {
		if got := m.Header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if want := notify.PlainText(message("")); strings.TrimSpace(m.Body) != strings.TrimSpace(want) {
		t.Errorf("body =\n%q\nwant\n%q", m.Body, want)
	}
	if m.TLS || m.Username != "" {
		t.Errorf("tls=%v user=%q, want a plain anonymous session", m.TLS, m.Username)
	}
}

func TestMessageIDStableAcrossRetries(t *testing.T) {
	s := newServer(t, smtptest.Options{})
	n := newNotifier(t, s, email.Config{})
	for attempt := 1; attempt <= 2; attempt++ {
		m := message("alice@example.com")
		m.Attempt = attempt
		if _, err := n.Notify(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	msgs := s.Messages()
	if len(msgs) != 2 || msgs[0].Header.Get("Message-Id") != msgs[1].Header.Get("Message-Id") {
		t.Errorf("Message-IDs differ across attempts")
	}
}

func TestTLSAndAuth(t *testing.T) {
	tests := []struct {
		name     string
		server   smtptest.Options
		cfg      email.Config
		wantTLS  bool
		wantUser string
	}{
		{name: "auth plain on localhost", server: smtptest.Options{Username: "bot", Password: password},
			cfg: email.Config{Username: "bot", Password: password}, wantUser: "bot"},
		{name: "opportunistic without offer", cfg: email.Config{TLS: email.TLSOpportunistic}},
		{name: "opportunistic upgrades", server: smtptest.Options{TLS: smtptest.TLSStartTLS},
			cfg: email.Config{TLS: email.TLSOpportunistic, InsecureSkipVerify: true}, wantTLS: true},
		{name: "starttls with auth", server: smtptest.Options{TLS: smtptest.TLSStartTLS, Username: "bot", Password: password},
			cfg:     email.Config{TLS: email.TLSStartTLS, InsecureSkipVerify: true, Username: "bot", Password: password},
			wantTLS: true, wantUser: "bot"},
		{name: "implicit tls with auth", server: smtptest.Options{TLS: smtptest.TLSImplicit, Username: "bot", Password: password},
			cfg:     email.Config{TLS: email.TLSImplicit, InsecureSkipVerify: true, Username: "bot", Password: password},
			wantTLS: true, wantUser: "bot"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, tt.server)
			n := newNotifier(t, s, tt.cfg)
			if retry, err := n.Notify(t.Context(), message("alice@example.com")); err != nil || retry {
				t.Fatalf("Notify = (%v, %v)", retry, err)
			}
			msgs := s.Messages()
			if len(msgs) != 1 || msgs[0].TLS != tt.wantTLS || msgs[0].Username != tt.wantUser {
				t.Fatalf("messages = %+v, want one with tls=%v user=%q", msgs, tt.wantTLS, tt.wantUser)
			}
		})
	}
}

func TestFailures(t *testing.T) {
	tests := []struct {
		name      string
		server    smtptest.Options
		prep      func(*smtptest.Server)
		cfg       email.Config
		to        string
		wantRetry bool
		wantIn    []string
	}{
		{name: "wrong password", server: smtptest.Options{Username: "bot", Password: "right"},
			cfg: email.Config{Username: "bot", Password: password}, wantIn: []string{"535", "Authentication failed"}},
		{name: "auth required", server: smtptest.Options{Username: "bot", Password: password},
			wantIn: []string{"502", "Please authenticate first"}},
		{name: "rejected recipient", prep: func(s *smtptest.Server) { s.RejectRecipient("Bob@example.com") },
			to: "bob@example.com", wantIn: []string{"550", "User unknown", "bob@example.com"}},
		{name: "greylisted", prep: func(s *smtptest.Server) { s.FailNext(1) },
			wantRetry: true, wantIn: []string{"451", "Greylisted"}},
		{name: "starttls required but not offered", cfg: email.Config{TLS: email.TLSStartTLS},
			wantIn: []string{"STARTTLS"}},
		{name: "untrusted certificate", server: smtptest.Options{TLS: smtptest.TLSImplicit},
			cfg: email.Config{TLS: email.TLSImplicit}, wantIn: []string{"certificate"}},
		{name: "implicit tls to plain server", cfg: email.Config{TLS: email.TLSImplicit, InsecureSkipVerify: true},
			wantIn: []string{"TLS"}},
		{name: "invalid address", to: "not an address", wantIn: []string{"recipient alice has an invalid email address"}},
		{name: "no address", to: "-", wantIn: []string{"recipient alice has no email address"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, tt.server)
			if tt.prep != nil {
				tt.prep(s)
			}
			n := newNotifier(t, s, tt.cfg)
			to := tt.to
			switch to {
			case "":
				to = "alice@example.com"
			case "-":
				to = ""
			}
			retry, err := n.Notify(t.Context(), message(to))
			if err == nil {
				t.Fatal("Notify succeeded")
			}
			if retry != tt.wantRetry {
				t.Errorf("retry = %v, want %v (err %v)", retry, tt.wantRetry, err)
			}
			for _, want := range tt.wantIn {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("err %q lacks %q", err, want)
				}
			}
			if strings.Contains(err.Error(), password) || strings.Contains(err.Error(), "\n") {
				t.Errorf("err %q leaks the password or spans lines", err)
			}
			if len(s.Messages()) != 0 {
				t.Errorf("a failed delivery was accepted")
			}
		})
	}
}

func TestGreylistThenDeliver(t *testing.T) {
	s := newServer(t, smtptest.Options{})
	s.FailNext(1)
	n := newNotifier(t, s, email.Config{})
	if retry, err := n.Notify(t.Context(), message("alice@example.com")); !retry || err == nil {
		t.Fatalf("first attempt = (%v, %v), want a retryable error", retry, err)
	}
	if _, err := n.Notify(t.Context(), message("alice@example.com")); err != nil {
		t.Fatalf("second attempt: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := s.WaitFor(ctx, 1); err != nil {
		t.Fatal(err)
	}
}

func TestServerDown(t *testing.T) {
	s := smtptest.NewServer(smtptest.Options{})
	n := newNotifier(t, s, email.Config{})
	s.Close()
	retry, err := n.Notify(t.Context(), message("alice@example.com"))
	if !retry || err == nil || !strings.HasPrefix(err.Error(), "connection refused") {
		t.Fatalf("Notify = (%v, %v), want a retryable connection refused", retry, err)
	}
}

// silentServer accepts connections and never says a word.
func silentServer(t *testing.T) (host string, port int) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	a := l.Addr().(*net.TCPAddr)
	return a.IP.String(), a.Port
}

func TestTimeoutAndCancel(t *testing.T) {
	host, port := silentServer(t)
	tests := []struct {
		name    string
		timeout time.Duration
		cancel  time.Duration
		wantMsg string
	}{
		{name: "timeout", timeout: 200 * time.Millisecond, wantMsg: "timeout"},
		{name: "cancel", timeout: time.Minute, cancel: 50 * time.Millisecond, wantMsg: "canceled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := email.New(email.Config{Host: host, Port: port, From: "h@example.com", TLS: email.TLSNone, Timeout: tt.timeout})
			if err != nil {
				t.Fatal(err)
			}
			ctx := t.Context()
			if tt.cancel > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				time.AfterFunc(tt.cancel, cancel)
			}
			start := time.Now()
			retry, err := n.Notify(ctx, message("alice@example.com"))
			if !retry || err == nil || err.Error() != tt.wantMsg {
				t.Errorf("Notify = (%v, %v), want (true, %s)", retry, err, tt.wantMsg)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("Notify took %v", d)
			}
		})
	}
}

func TestConcurrent(t *testing.T) {
	s := newServer(t, smtptest.Options{Username: "bot", Password: password})
	n := newNotifier(t, s, email.Config{Username: "bot", Password: password})
	const count = 20
	var wg sync.WaitGroup
	for i := range count {
		wg.Go(func() {
			m := message(fmt.Sprintf("user%d@example.com", i))
			m.DeliveryID = fmt.Sprint("dlv-", i)
			if _, err := n.Notify(t.Context(), m); err != nil {
				t.Errorf("Notify %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if got := len(s.Messages()); got != count {
		t.Errorf("got %d messages, want %d", got, count)
	}
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     email.Config
		wantErr string
	}{
		{name: "minimal", cfg: email.Config{Host: "mx", From: "a@b.c"}},
		{name: "implicit", cfg: email.Config{Host: "mx", From: "a@b.c", TLS: "TLS"}},
		{name: "no host", cfg: email.Config{From: "a@b.c"}, wantErr: "host is required"},
		{name: "no from", cfg: email.Config{Host: "mx"}, wantErr: "from is required"},
		{name: "bad from", cfg: email.Config{Host: "mx", From: "nope"}, wantErr: `from "nope" is not an email address`},
		{name: "bad tls", cfg: email.Config{Host: "mx", From: "a@b.c", TLS: "ssl"}, wantErr: `tls "ssl" is not one of`},
		{name: "bad port", cfg: email.Config{Host: "mx", From: "a@b.c", Port: 70000}, wantErr: "port 70000"},
		{name: "password alone", cfg: email.Config{Host: "mx", From: "a@b.c", Password: password}, wantErr: "password is set but username is not"},
		{name: "negative timeout", cfg: email.Config{Host: "mx", From: "a@b.c", Timeout: -time.Second}, wantErr: "timeout -1s is negative"},
		{name: "several", cfg: email.Config{}, wantErr: "email config: host is required; from is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := email.New(tt.cfg)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("New: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("New = %v, want error containing %q", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), password) {
				t.Errorf("config error leaks the password")
			}
		})
	}
}

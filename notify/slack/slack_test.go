package slack_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	goslack "github.com/slack-go/slack"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/notify"
	"github.com/heraldproject/herald/notify/slack"
	"github.com/heraldproject/herald/notify/slack/slacktest"
)

const (
	botToken  = "xoxb-bot-0000-SECRETbot"
	userToken = "xoxb-user-1111-SECRETuser"
)

var _ notify.Notifier = (*slack.Notifier)(nil)

func newServer(t *testing.T) *slacktest.Server {
	t.Helper()
	s := slacktest.NewServer()
	t.Cleanup(s.Close)
	s.AddToken(botToken)
	s.AddToken(userToken)
	s.AddChannel("#alerts")
	s.AddChannel("U0ALICE")
	return s
}

func message(contact herald.SlackContact) *notify.Message {
	return &notify.Message{
		DeliveryID: "dlv-1", AlertID: "alr-1",
		Recipient: &herald.User{ID: "usr-1", Name: "alice", Slack: contact},
		Severity:  herald.SeverityCritical,
		Title:     "Disk <!channel> & full",
		Text:      "db-1 is at 99%",
		Source:    "prometheus",
		Labels:    map[string]string{"env": "prod", "az": "1"},
		CreatedAt: time.Unix(1700000000, 0),
		Attempt:   1,
	}
}

func TestWebhook(t *testing.T) {
	s := newServer(t)
	n := slack.New(slack.Config{}, nil)

	retry, err := n.Notify(t.Context(), message(herald.SlackContact{WebhookURL: s.WebhookURL("ops")}))
	if err != nil || retry {
		t.Fatalf("Notify = (%v, %v)", retry, err)
	}
	msgs := s.Messages()
	if len(msgs) != 1 {
		t.Fatalf("got %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if m.Webhook != "ops" || m.Token != "" {
		t.Errorf("webhook=%q token=%q", m.Webhook, m.Token)
	}
	if m.Text != "[CRITICAL] Disk &lt;!channel&gt; &amp; full" {
		t.Errorf("text = %q (alert text must be escaped)", m.Text)
	}
	if len(m.Attachments) != 1 {
		t.Fatalf("attachments = %+v", m.Attachments)
	}
	a := m.Attachments[0]
	if a.Color != "#D40E0D" || a.Text != "db-1 is at 99%" || a.Ts != "1700000000" {
		t.Errorf("attachment = %+v", a)
	}
	if len(a.Fields) != 2 || a.Fields[0].Value != "prometheus" || a.Fields[1].Value != "az=1, env=prod" {
		t.Errorf("fields = %+v", a.Fields)
	}
	if !strings.Contains(a.Footer, "alr-1") || !strings.Contains(a.Footer, "dlv-1") {
		t.Errorf("footer = %q", a.Footer)
	}
}

func TestPostMessage(t *testing.T) {
	tests := []struct {
		name      string
		cfgToken  string
		contact   herald.SlackContact
		wantToken string
	}{
		{"bot token", botToken, herald.SlackContact{Channel: "#alerts"}, botToken},
		{"user token wins", botToken, herald.SlackContact{Channel: "#alerts", Token: userToken}, userToken},
		{"user token only", "", herald.SlackContact{Channel: "U0ALICE", Token: userToken}, userToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t)
			n := slack.New(slack.Config{APIURL: s.APIURL(), Token: tt.cfgToken}, nil)
			if retry, err := n.Notify(t.Context(), message(tt.contact)); err != nil || retry {
				t.Fatalf("Notify = (%v, %v)", retry, err)
			}
			msgs := s.Messages()
			if len(msgs) != 1 {
				t.Fatalf("got %d messages", len(msgs))
			}
			m := msgs[0]
			if m.Token != tt.wantToken || m.Channel != tt.contact.Channel || m.Webhook != "" {
				t.Errorf("message = %+v", m)
			}
			if m.Text != "[CRITICAL] Disk &lt;!channel&gt; &amp; full" || len(m.Attachments) != 1 {
				t.Errorf("text = %q attachments = %d", m.Text, len(m.Attachments))
			}
		})
	}
}

func TestFailures(t *testing.T) {
	type setup func(s *slacktest.Server) herald.SlackContact
	hook := func(name string, status int, body string) setup {
		return func(s *slacktest.Server) herald.SlackContact {
			s.SetWebhookError(name, status, body)
			return herald.SlackContact{WebhookURL: s.WebhookURL(name)}
		}
	}
	api := func(channel, token string, prep func(*slacktest.Server)) setup {
		return func(s *slacktest.Server) herald.SlackContact {
			if prep != nil {
				prep(s)
			}
			return herald.SlackContact{Channel: channel, Token: token}
		}
	}
	failAll := func(code int, retryAfter string) func(*slacktest.Server) {
		return func(s *slacktest.Server) { s.SetStatus(code, retryAfter) }
	}
	tests := []struct {
		name      string
		cfgToken  string
		setup     setup
		wantRetry bool
		wantMsg   string
		wantWait  time.Duration
		wantAs    any
	}{
		{name: "webhook channel_not_found", setup: hook("gone", 404, "channel_not_found"), wantMsg: "HTTP 404: channel_not_found"},
		{name: "webhook archived", setup: hook("old", 410, "channel_is_archived"), wantMsg: "HTTP 410: channel_is_archived"},
		{name: "webhook invalid_payload", setup: hook("bad", 400, "invalid_payload"), wantMsg: "HTTP 400: invalid_payload"},
		{name: "webhook forbidden", setup: hook("no", 403, "action_prohibited"), wantMsg: "HTTP 403: action_prohibited"},
		{name: "webhook unknown", setup: func(s *slacktest.Server) herald.SlackContact {
			return herald.SlackContact{WebhookURL: s.URL() + "/services/T1/B1/nosuchtoken"}
		}, wantMsg: "HTTP 404: no_service"},
		{name: "webhook 500", setup: hook("flaky", 500, "oops"), wantRetry: true, wantMsg: "HTTP 500: oops"},
		{name: "webhook 429", setup: func(s *slacktest.Server) herald.SlackContact {
			s.RateLimit(1, 3)
			return herald.SlackContact{WebhookURL: s.WebhookURL("busy")}
		}, wantRetry: true, wantMsg: "slack rate limit exceeded, retry after 3s", wantWait: 3 * time.Second,
			wantAs: new(*goslack.RateLimitedError)},
		{name: "api channel_not_found", cfgToken: botToken, setup: api("#nope", "", nil),
			wantMsg: "chat.postMessage to #nope: channel_not_found", wantAs: new(*slack.APIError)},
		{name: "api invalid_auth", setup: api("#alerts", "xoxb-wrong-SECRETwrong", nil),
			wantMsg: "chat.postMessage to #alerts: invalid_auth"},
		{name: "api internal_error", cfgToken: botToken,
			setup:     api("#alerts", "", func(s *slacktest.Server) { s.SetAPIError("internal_error") }),
			wantRetry: true, wantMsg: "chat.postMessage to #alerts: internal_error"},
		{name: "api unknown error", cfgToken: botToken,
			setup:   api("#alerts", "", func(s *slacktest.Server) { s.SetAPIError("something_new") }),
			wantMsg: "chat.postMessage to #alerts: something_new"},
		{name: "api ratelimited", cfgToken: botToken, setup: api("#alerts", "", func(s *slacktest.Server) { s.RateLimit(1, 5) }),
			wantRetry: true, wantMsg: "chat.postMessage to #alerts: slack rate limit exceeded", wantWait: 5 * time.Second},
		{name: "api 429 with HTTP date", cfgToken: botToken,
			setup:     api("#alerts", "", failAll(429, time.Now().Add(time.Hour).UTC().Format(http.TimeFormat))),
			wantRetry: true, wantMsg: "chat.postMessage to #alerts: HTTP 429", wantWait: time.Hour},
		{name: "api 503", cfgToken: botToken, setup: api("#alerts", "", failAll(503, "")),
			wantRetry: true, wantMsg: "chat.postMessage to #alerts: HTTP 503: <html><body><h1>503 Service Unavailable"},
		{name: "no token", setup: api("#alerts", "", nil),
			wantMsg: "recipient alice has a Slack channel but no token, and no bot token is configured"},
		{name: "no contact", cfgToken: botToken, setup: api("", "", nil), wantMsg: "recipient alice has no Slack contact"},
		{name: "webhook refused", setup: func(s *slacktest.Server) herald.SlackContact {
			return herald.SlackContact{WebhookURL: "http://" + closedAddr(t) + "/services/T1/B1/SECRETpath"}
		}, wantRetry: true, wantMsg: "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t)
			contact := tt.setup(s)
			n := slack.New(slack.Config{APIURL: s.APIURL(), Token: tt.cfgToken}, nil)
			retry, err := n.Notify(t.Context(), message(contact))
			if retry != tt.wantRetry {
				t.Errorf("retry = %v, want %v", retry, tt.wantRetry)
			}
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantMsg) {
				t.Fatalf("err = %v, want prefix %q", err, tt.wantMsg)
			}
			if tt.wantWait != 0 {
				wait, ok := notify.RetryAfter(err)
				if !ok || wait > tt.wantWait || wait < tt.wantWait-5*time.Second {
					t.Errorf("RetryAfter = %v, %v; want about %v", wait, ok, tt.wantWait)
				}
			}
			if tt.wantAs != nil && !errors.As(err, tt.wantAs) {
				t.Errorf("errors.As(%T) failed on %v", tt.wantAs, err)
			}
			for _, secret := range []string{"SECRET", botToken, userToken, "/services/"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q leaks %q", err, secret)
				}
			}
			if contact.WebhookURL != "" && strings.Contains(err.Error(), contact.WebhookURL) {
				t.Errorf("error leaks the webhook URL")
			}
			if len(s.Messages()) != 0 {
				t.Errorf("failed delivery recorded as a message")
			}
		})
	}
}

func TestConcurrentTokens(t *testing.T) {
	s := newServer(t)
	n := slack.New(slack.Config{APIURL: s.APIURL(), Token: botToken}, nil)
	const count = 30
	var wg sync.WaitGroup
	for i := range count {
		wg.Go(func() {
			contact := herald.SlackContact{Channel: "#alerts"}
			switch i % 3 {
			case 1:
				contact.Token = userToken
			case 2:
				contact = herald.SlackContact{WebhookURL: s.WebhookURL(fmt.Sprint("hook", i%2))}
			}
			if _, err := n.Notify(t.Context(), message(contact)); err != nil {
				t.Errorf("Notify %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := s.WaitFor(ctx, count); err != nil {
		t.Fatal(err)
	}
}

func TestTimeout(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close() // accepts nothing: the request hangs until the timeout
	n := slack.New(slack.Config{Timeout: 100 * time.Millisecond}, nil)
	retry, err := n.Notify(t.Context(), message(herald.SlackContact{WebhookURL: "http://" + l.Addr().String() + "/services/SECRET"}))
	if !retry || err == nil || err.Error() != "timeout" {
		t.Fatalf("Notify = (%v, %v), want (true, timeout)", retry, err)
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

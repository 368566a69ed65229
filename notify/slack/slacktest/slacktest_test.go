package slacktest_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/heraldproject/herald/notify/slack/slacktest"
)

const token = "xoxb-test"

func newServer(t *testing.T) *slacktest.Server {
	t.Helper()
	s := slacktest.NewServer()
	t.Cleanup(s.Close)
	s.AddToken(token)
	s.AddChannel("alerts")
	return s
}

// call posts body to the server and returns the status and body.
func call(t *testing.T, method, u, contentType, auth, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestPostMessage(t *testing.T) {
	form := func(v url.Values) string { return v.Encode() }
	const formType, jsonType = "application/x-www-form-urlencoded", "application/json; charset=utf-8"
	tests := []struct {
		name      string
		ctype     string
		auth      string
		body      string
		wantError string // "" means ok
	}{
		{"form with token field", formType, "", form(url.Values{"token": {token}, "channel": {"#alerts"}, "text": {"hi"}}), ""},
		{"form with bearer", formType, token, form(url.Values{"channel": {"alerts"}, "text": {"hi"}}), ""},
		{"json with bearer", jsonType, token, `{"channel":"C00000001","text":"hi"}`, ""},
		{"attachments only", formType, token, form(url.Values{"channel": {"#alerts"}, "attachments": {`[{"text":"x"}]`}}), ""},
		{"no token", formType, "", form(url.Values{"channel": {"#alerts"}, "text": {"hi"}}), "not_authed"},
		{"wrong token", formType, "xoxb-nope", form(url.Values{"channel": {"#alerts"}, "text": {"hi"}}), "invalid_auth"},
		{"unknown channel", formType, token, form(url.Values{"channel": {"#random"}, "text": {"hi"}}), "channel_not_found"},
		{"no text", jsonType, token, `{"channel":"#alerts"}`, "no_text"},
		{"bad json", jsonType, token, `{`, "invalid_arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t)
			status, body := call(t, http.MethodPost, s.APIURL()+"chat.postMessage", tt.ctype, tt.auth, tt.body)
			var resp struct {
				OK      bool   `json:"ok"`
				Error   string `json:"error"`
				Channel string `json:"channel"`
				TS      string `json:"ts"`
			}
			if err := json.Unmarshal([]byte(body), &resp); err != nil || status != 200 {
				t.Fatalf("answer %d %q", status, body)
			}
			if tt.wantError != "" {
				if resp.OK || resp.Error != tt.wantError {
					t.Errorf("answer %s, want error %s", body, tt.wantError)
				}
				return
			}
			if !resp.OK || resp.Channel != "C00000001" || resp.TS == "" {
				t.Errorf("answer %s", body)
			}
			if msgs := s.Messages(); len(msgs) != 1 || msgs[0].Token != token {
				t.Errorf("messages = %+v", msgs)
			}
		})
	}
}

func TestWebhook(t *testing.T) {
	s := newServer(t)
	hook := s.WebhookURL("ops")
	if again := s.WebhookURL("ops"); again != hook {
		t.Errorf("WebhookURL is not stable: %q then %q", hook, again)
	}
	if !strings.HasPrefix(hook, s.URL()+"/services/") {
		t.Errorf("webhook URL %q", hook)
	}
	tests := []struct {
		name       string
		url        string
		body       string
		prep       func()
		wantStatus int
		wantBody   string
	}{
		{"ok", hook, `{"text":"hi"}`, nil, 200, "ok"},
		{"unknown hook", s.URL() + "/services/T/B/nope", `{"text":"hi"}`, nil, 404, "no_service"},
		{"bad json", hook, `{`, nil, 400, "invalid_payload"},
		{"no text", hook, `{}`, nil, 400, "no_text"},
		{"configured error", hook, `{"text":"hi"}`, func() { s.SetWebhookError("ops", 410, "channel_is_archived") }, 410, "channel_is_archived"},
		{"cleared error", hook, `{"text":"hi"}`, func() { s.SetWebhookError("ops", 0, "") }, 200, "ok"},
		{"rate limited", hook, `{"text":"hi"}`, func() { s.RateLimit(1, 2) }, 429, "too_many_requests"},
		{"server error", hook, `{"text":"hi"}`, func() { s.FailNext(1, 502, "") }, 502, "<html>"},
	}
	for _, tt := range tests {
		if tt.prep != nil {
			tt.prep()
		}
		status, body := call(t, http.MethodPost, tt.url, "application/json", "", tt.body)
		if status != tt.wantStatus || !strings.HasPrefix(body, tt.wantBody) {
			t.Errorf("%s: got %d %q, want %d %q", tt.name, status, body, tt.wantStatus, tt.wantBody)
		}
	}
	msgs := s.Messages()
	if len(msgs) != 2 || msgs[0].Webhook != "ops" || msgs[0].Text != "hi" {
		t.Errorf("messages = %+v", msgs)
	}
}

func TestAPIRateLimitAndUnknownMethod(t *testing.T) {
	s := newServer(t)
	s.SetStatus(http.StatusTooManyRequests, "9")
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, s.APIURL()+"chat.postMessage", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "9" || !strings.Contains(string(b), `"ratelimited"`) {
		t.Errorf("got %d %q Retry-After %q", resp.StatusCode, b, resp.Header.Get("Retry-After"))
	}
	s.SetStatus(http.StatusOK, "")
	if status, body := call(t, http.MethodPost, s.APIURL()+"users.list", "application/json", token, "{}"); status != 404 || !strings.Contains(body, "unknown_method") {
		t.Errorf("unknown method: %d %q", status, body)
	}
}

func TestWaitFor(t *testing.T) {
	s := newServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if err := s.WaitFor(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitFor = %v", err)
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- s.WaitFor(ctx, 1)
	}()
	call(t, http.MethodPost, s.WebhookURL("x"), "application/json", "", `{"text":"hi"}`)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

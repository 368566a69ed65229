// Package smstest provides a local SMS provider for tests that speaks
// Twilio's Messages API: POST /2010-04-01/Accounts/{AccountSid}/Messages.json
// with basic auth and form fields To, From and Body, answered with 201 and
// the message resource, or with Twilio's error JSON.
package smstest

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"time"
)

// isE164 reports whether s is an E.164 number: "+", then 2 to 15 digits,
// the first not 0.
func isE164(s string) bool {
	if len(s) < 3 || len(s) > 16 || s[0] != '+' || s[1] == '0' {
		return false
	}
	for _, c := range s[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Message is one message the provider accepted.
type Message struct {
	SID      string
	To       string
	From     string
	Body     string
	Received time.Time
}

// Provider is a fake SMS provider with one account. All methods are safe for
// concurrent use.
type Provider struct {
	srv        *httptest.Server
	accountSID string
	authToken  string

	mu         sync.Mutex
	messages   []Message
	status     int
	retryAfter string
	failN      int
	failStatus int
	failAfter  string
	changed    chan struct{}
}

// NewProvider starts a provider on 127.0.0.1 that accepts accountSID and
// authToken. Call Close when done.
func NewProvider(accountSID, authToken string) *Provider {
	p := &Provider{accountSID: accountSID, authToken: authToken, changed: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /2010-04-01/Accounts/{sid}/Messages.json", p.serveCreate)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, 20404, "The requested resource "+r.URL.Path+" was not found")
	})
	p.srv = httptest.NewServer(mux)
	return p
}

// Close shuts the provider down.
func (p *Provider) Close() { p.srv.Close() }

// URL returns the base URL to put in sms.Config.URL.
func (p *Provider) URL() string { return p.srv.URL }

// SetStatus makes every following request fail with code (and Retry-After
// when retryAfter is not empty), with Twilio-style error JSON. SetStatus(0,
// "") or SetStatus(201, "") restores normal behaviour.
func (p *Provider) SetStatus(code int, retryAfter string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if code >= 200 && code < 300 {
		code = 0
	}
	p.status, p.retryAfter = code, retryAfter
}

// FailNext makes the next n requests fail with code (see SetStatus), then
// lets requests through again. It takes precedence over SetStatus.
func (p *Provider) FailNext(n, code int, retryAfter string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failN, p.failStatus, p.failAfter = n, code, retryAfter
}

// Messages returns the accepted messages in arrival order.
func (p *Provider) Messages() []Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.messages)
}

// WaitFor blocks until at least n messages were accepted, or ctx is done.
func (p *Provider) WaitFor(ctx context.Context, n int) error {
	for {
		p.mu.Lock()
		got, changed := len(p.messages), p.changed
		p.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("smstest: %d of %d messages arrived: %w", got, n, ctx.Err())
		}
	}
}

func (p *Provider) serveCreate(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	status, retryAfter := p.status, p.retryAfter
	if p.failN > 0 {
		p.failN--
		status, retryAfter = p.failStatus, p.failAfter
	}
	p.mu.Unlock()
	if status != 0 {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		writeError(w, status, 20000+status, http.StatusText(status))
		return
	}

	user, pass, ok := r.BasicAuth()
	if !ok || user != p.accountSID || pass != p.authToken || r.PathValue("sid") != p.accountSID {
		writeError(w, http.StatusUnauthorized, 20003, "Authenticate")
		return
	}
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, 20001, "Malformed request body")
		return
	}
	to, from, body := r.PostForm.Get("To"), r.PostForm.Get("From"), r.PostForm.Get("Body")
	switch {
	case to == "":
		writeError(w, http.StatusBadRequest, 21604, "A 'To' phone number is required.")
		return
	case !isE164(to):
		writeError(w, http.StatusBadRequest, 21211, fmt.Sprintf("The 'To' number %s is not a valid phone number.", to))
		return
	case from == "":
		writeError(w, http.StatusBadRequest, 21603, "A 'From' phone number is required.")
		return
	case body == "":
		writeError(w, http.StatusBadRequest, 21602, "Message body is required.")
		return
	case len([]rune(body)) > 1600:
		writeError(w, http.StatusBadRequest, 21617, "The concatenated message body exceeds the 1600 character limit.")
		return
	}

	m := Message{SID: newSID(), To: to, From: from, Body: body, Received: time.Now()}
	p.mu.Lock()
	p.messages = append(p.messages, m)
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()

	writeJSON(w, http.StatusCreated, map[string]any{
		"sid": m.SID, "account_sid": p.accountSID, "to": to, "from": from, "body": body,
		"status": "queued", "num_segments": "1", "direction": "outbound-api",
		"date_created": m.Received.UTC().Format(time.RFC1123Z),
		"uri":          "/2010-04-01/Accounts/" + p.accountSID + "/Messages/" + m.SID + ".json",
	})
}

// writeError answers with Twilio's error JSON.
func writeError(w http.ResponseWriter, status, code int, message string) {
	writeJSON(w, status, map[string]any{
		"code": code, "message": message, "status": status,
		"more_info": fmt.Sprintf("https://www.twilio.com/docs/errors/%d", code),
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// newSID returns a message SID: "SM" and 32 hex digits.
func newSID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return fmt.Sprintf("SM%x", b)
}

// Package slacktest provides a local stand-in for Slack that speaks the two
// protocols Herald uses: incoming webhooks (POST JSON to /services/...,
// answered with "ok") and the Web API method chat.postMessage (answered with
// {"ok":true,...} or {"ok":false,"error":"..."}).
package slacktest

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"time"

	goslack "github.com/slack-go/slack"
)

// Message is one message the server accepted.
type Message struct {
	// Webhook is the name of the incoming webhook the message came through;
	// empty for chat.postMessage.
	Webhook string
	// Channel is the channel chat.postMessage was asked to post to, as given.
	Channel string
	// Token is the token chat.postMessage was called with.
	Token       string
	Text        string
	Attachments []goslack.Attachment
	Received    time.Time
}

// failure is a canned HTTP answer.
type failure struct {
	status     int
	retryAfter string
	body       string
}

// Server is a fake Slack. It knows no tokens, channels or webhooks until told
// (AddToken, AddChannel, WebhookURL). All methods are safe for concurrent use.
type Server struct {
	srv *httptest.Server

	mu         sync.Mutex
	tokens     map[string]bool
	channels   map[string]string // name or id as accepted → channel id
	hooks      map[string]string // webhook path → name
	hookPaths  map[string]string // name → webhook path
	hookErrors map[string]failure
	apiError   string
	status     failure // for every request while status.status != 0
	failN      int
	fail       failure
	messages   []Message
	nextID     int
	changed    chan struct{}
}

// NewServer starts a fake Slack on 127.0.0.1. Call Close when done.
func NewServer() *Server {
	s := &Server{
		tokens:     map[string]bool{},
		channels:   map[string]string{},
		hooks:      map[string]string{},
		hookPaths:  map[string]string{},
		hookErrors: map[string]failure{},
		changed:    make(chan struct{}),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /services/", s.serveWebhook)
	mux.HandleFunc("POST /api/chat.postMessage", s.servePostMessage)
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]any{"ok": false, "error": "unknown_method"})
	})
	s.srv = httptest.NewServer(s.gate(mux))
	return s
}

// Close shuts the server down.
func (s *Server) Close() { s.srv.Close() }

// URL returns the server's base URL ("http://127.0.0.1:port").
func (s *Server) URL() string { return s.srv.URL }

// APIURL returns the Web API base URL to put in slack.Config.APIURL:
// URL() + "/api/".
func (s *Server) APIURL() string { return s.srv.URL + "/api/" }

// AddToken makes token valid for chat.postMessage.
func (s *Server) AddToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[token] = true
}

// AddChannel makes a channel postable: a name ("alerts" or "#alerts"), or an
// id ("C0123", "U0123" for a direct message) used as is.
func (s *Server) AddChannel(channel string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name := strings.TrimPrefix(channel, "#")
	id := name
	if !isID(name) {
		s.nextID++
		id = fmt.Sprintf("C%08d", s.nextID)
	}
	s.channels[name] = id
	s.channels["#"+name] = id
	s.channels[id] = id
}

// WebhookURL returns the incoming-webhook URL of the webhook called name,
// creating it on first use. Like Slack's, the URL holds a random secret.
func (s *Server) WebhookURL(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	path, ok := s.hookPaths[name]
	if !ok {
		path = "/services/T00000000/B" + strings.ToUpper(rand.Text()[:10]) + "/" + rand.Text()
		s.hookPaths[name] = path
		s.hooks[path] = name
	}
	return s.srv.URL + path
}

// SetWebhookError makes the webhook called name answer with status and body,
// as Slack does: 404 "channel_not_found", 410 "channel_is_archived", 403
// "action_prohibited", 400 "invalid_payload". A status of 0 clears it.
func (s *Server) SetWebhookError(name string, status int, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if status == 0 {
		delete(s.hookErrors, name)
		return
	}
	s.hookErrors[name] = failure{status: status, body: body}
}

// SetAPIError makes every chat.postMessage fail with the error code (e.g.
// "internal_error", "channel_not_found"). An empty code clears it.
func (s *Server) SetAPIError(code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apiError = code
}

// SetStatus makes every following request, on any endpoint, get an HTTP
// status as Slack's front end would send it: 429 with a Retry-After header
// when retryAfter is not empty, 5xx with an HTML page. SetStatus(200, "") or
// SetStatus(0, "") restores normal behaviour.
func (s *Server) SetStatus(code int, retryAfter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if code == http.StatusOK {
		code = 0
	}
	s.status = failure{status: code, retryAfter: retryAfter}
}

// FailNext makes the next n requests get code (see SetStatus), then lets
// requests through again. It takes precedence over SetStatus.
func (s *Server) FailNext(n, code int, retryAfter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failN, s.fail = n, failure{status: code, retryAfter: retryAfter}
}

// RateLimit makes the next n requests get 429 with Retry-After: seconds.
func (s *Server) RateLimit(n, seconds int) {
	s.FailNext(n, http.StatusTooManyRequests, fmt.Sprint(seconds))
}

// Messages returns the accepted messages in arrival order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.messages)
}

// WaitFor blocks until at least n messages were accepted, or ctx is done.
func (s *Server) WaitFor(ctx context.Context, n int) error {
	for {
		s.mu.Lock()
		got, changed := len(s.messages), s.changed
		s.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("slacktest: %d of %d messages arrived: %w", got, n, ctx.Err())
		}
	}
}

// record stores an accepted message. The caller holds s.mu.
func (s *Server) record(m Message) {
	m.Received = time.Now()
	s.messages = append(s.messages, m)
	close(s.changed)
	s.changed = make(chan struct{})
}

// gate answers with the configured failure, if any, before the handlers run.
func (s *Server) gate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		f := s.status
		if s.failN > 0 {
			s.failN--
			f = s.fail
		}
		s.mu.Unlock()
		if f.status == 0 {
			next.ServeHTTP(w, r)
			return
		}
		if f.retryAfter != "" {
			w.Header().Set("Retry-After", f.retryAfter)
		}
		switch {
		case f.status == http.StatusTooManyRequests && strings.HasPrefix(r.URL.Path, "/api/"):
			writeJSON(w, f.status, map[string]any{"ok": false, "error": "ratelimited"})
		case f.status >= 500:
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(f.status)
			fmt.Fprintf(w, "<html><body><h1>%d %s</h1></body></html>\n", f.status, http.StatusText(f.status))
		default:
			writeText(w, f.status, strings.ToLower(strings.ReplaceAll(http.StatusText(f.status), " ", "_")))
		}
	})
}

// isID reports whether s looks like a Slack conversation or user id.
func isID(s string) bool {
	if len(s) < 2 || !strings.ContainsRune("CGDU", rune(s[0])) {
		return false
	}
	for _, r := range s[1:] {
		if (r < 'A' || r > 'Z') && (r < '0' || r > '9') {
			return false
		}
	}
	return true
}

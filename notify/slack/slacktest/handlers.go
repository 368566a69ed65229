package slacktest

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	goslack "github.com/slack-go/slack"
)

// serveWebhook handles POST /services/...: Slack's incoming webhooks.
func (s *Server) serveWebhook(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	name, ok := s.hooks[r.URL.Path]
	f, failing := s.hookErrors[name]
	s.mu.Unlock()
	switch {
	case !ok:
		writeText(w, http.StatusNotFound, "no_service")
		return
	case failing:
		writeText(w, f.status, f.body)
		return
	}
	var msg goslack.WebhookMessage
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&msg); err != nil {
		writeText(w, http.StatusBadRequest, "invalid_payload")
		return
	}
	if msg.Text == "" && len(msg.Attachments) == 0 && (msg.Blocks == nil || len(msg.Blocks.BlockSet) == 0) {
		writeText(w, http.StatusBadRequest, "no_text")
		return
	}
	s.mu.Lock()
	s.record(Message{Webhook: name, Channel: msg.Channel, Text: msg.Text, Attachments: msg.Attachments})
	s.mu.Unlock()
	writeText(w, http.StatusOK, "ok")
}

// postMessage is the part of a chat.postMessage request the server reads.
type postMessage struct {
	Token       string               `json:"token"`
	Channel     string               `json:"channel"`
	Text        string               `json:"text"`
	Attachments []goslack.Attachment `json:"attachments"`
	Blocks      json.RawMessage      `json:"blocks"`
}

// servePostMessage handles POST /api/chat.postMessage with a form-encoded or
// JSON body. The token comes from "Authorization: Bearer" or, in a form, the
// token field.
func (s *Server) servePostMessage(w http.ResponseWriter, r *http.Request) {
	req, err := readPostMessage(r)
	if err != nil {
		writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": "invalid_arguments"})
		return
	}
	if bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		req.Token = bearer
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	channel, known := s.channels[req.Channel]
	var apiErr string
	switch {
	case req.Token == "":
		apiErr = "not_authed"
	case !s.tokens[req.Token]:
		apiErr = "invalid_auth"
	case s.apiError != "":
		apiErr = s.apiError
	case req.Channel == "" || !known:
		apiErr = "channel_not_found"
	case req.Text == "" && len(req.Attachments) == 0 && !hasBlocks(req.Blocks):
		apiErr = "no_text"
	case len([]rune(req.Text)) > 40000:
		apiErr = "msg_too_long"
	}
	if apiErr != "" {
		writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": apiErr})
		return
	}
	s.record(Message{Channel: req.Channel, Token: req.Token, Text: req.Text, Attachments: req.Attachments})
	now := time.Now()
	ts := fmt.Sprintf("%d.%06d", now.Unix(), now.Nanosecond()/1000)
	writeJSON(w, http.StatusOK, map[string]any{
		"ok": true, "channel": channel, "ts": ts,
		"message": map[string]any{"type": "message", "text": req.Text, "ts": ts},
	})
}

func readPostMessage(r *http.Request) (postMessage, error) {
	var req postMessage
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/json" {
		err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req)
		return req, err
	}
	if err := r.ParseForm(); err != nil {
		return req, err
	}
	req.Token = r.PostForm.Get("token")
	req.Channel = r.PostForm.Get("channel")
	req.Text = r.PostForm.Get("text")
	if a := r.PostForm.Get("attachments"); a != "" {
		if err := json.Unmarshal([]byte(a), &req.Attachments); err != nil {
			return req, err
		}
	}
	if b := r.PostForm.Get("blocks"); b != "" {
		req.Blocks = json.RawMessage(b)
	}
	return req, nil
}

func hasBlocks(raw json.RawMessage) bool {
	var blocks []json.RawMessage
	return json.Unmarshal(raw, &blocks) == nil && len(blocks) > 0
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeText(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

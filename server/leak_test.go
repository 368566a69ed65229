package server_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/heraldproject/herald/internal/testauth"
	"github.com/heraldproject/herald/internal/testlog"
	"github.com/heraldproject/herald/notify/email/smtptest"
	"github.com/heraldproject/herald/notify/slack/slacktest"
	"github.com/heraldproject/herald/notify/sms/smstest"
	"github.com/heraldproject/herald/notify/webhook/webhooktest"
	"github.com/heraldproject/herald/server"
)

// TestNoSecretLeaks runs the whole flow — successes and failures on every
// channel — with canary secrets (Slack tokens, a Slack webhook URL, a webhook
// URL with a token in its path, a user's webhook signing secret, SMTP and SMS
// credentials, API tokens) and checks that none appears in any log line, any
// API response, or the database file (the secrets stored there are
// encrypted).
func TestNoSecretLeaks(t *testing.T) {
	slk := slacktest.NewServer()
	defer slk.Close()
	slk.AddToken("xoxb-canary-user-token")
	slk.AddChannel("C0OPS")
	mail := smtptest.NewServer(smtptest.Options{Username: "herald", Password: "smtp-canary-password"})
	defer mail.Close()
	smsp := smstest.NewProvider("ACcanary", "sms-canary-auth-token")
	defer smsp.Close()
	hook := webhooktest.NewReceiver()
	defer hook.Close()

	dir := t.TempDir()
	logs := &testlog.Buffer{}
	cfg := testConfig(t, dir,
		"HERALD_SLACK_API_URL="+slk.APIURL(), "HERALD_SLACK_TOKEN=xoxb-canary-bot-token",
		"HERALD_EMAIL_HOST="+mail.Host(), "HERALD_EMAIL_PORT="+strconv.Itoa(mail.Port()), "HERALD_EMAIL_TLS=none",
		"HERALD_EMAIL_FROM=herald@example.com", "HERALD_EMAIL_USERNAME=herald", "HERALD_EMAIL_PASSWORD=smtp-canary-password",
		"HERALD_SMS_URL="+smsp.URL(), "HERALD_SMS_ACCOUNT_SID=ACcanary", "HERALD_SMS_AUTH_TOKEN=sms-canary-auth-token",
		"HERALD_SMS_FROM=+15550000000", "HERALD_RETRY_MAX_ATTEMPTS=2", "HERALD_RETRY_DELAYS=50ms",
		"HERALD_SECRETS_KEY=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	s, err := server.Start(context.Background(), cfg, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), "test")
	if err != nil {
		t.Fatal(err)
	}
	h := &instance{t: t, srv: s, base: "http://" + s.Addr()}
	t.Cleanup(h.stop)

	hookURL := strings.Replace(hook.URL(), webhooktest.Path, "/hooks/webhook-canary-path-token", 1)
	slackHook := slk.WebhookURL("canary-slack-hook")
	var responses bytes.Buffer
	record := func(raw []byte) { responses.Write(raw); responses.WriteByte('\n') }
	for _, u := range []map[string]any{
		{"name": "ok", "webhookUrl": hookURL, "webhookSecret": "whsec-canary-webhook-secret", "email": "ok@example.com",
			"phone": "+15551230000", "slack": map[string]any{"channel": "C0OPS", "token": "xoxb-canary-user-token"}},
		{"name": "bad", "email": "bad@example.com", "phone": "+15551230001",
			"slack": map[string]any{"channel": "C0NOPE", "token": "xoxb-canary-user-token"}},
		{"name": "hooked", "slack": map[string]any{"webhookUrl": slackHook}},
	} {
		_, raw := h.do("POST", "/v1/users", u, nil)
		record(raw)
	}
	var tok struct{ Token string }
	record(h.must(http.StatusCreated, "POST", "/v1/tokens", map[string]any{"name": "ci", "scope": "ingest"}, &tok))
	mail.RejectRecipient("bad@example.com")
	slk.SetWebhookError("canary-slack-hook", http.StatusInternalServerError, "boom")
	hook.FailNext(1, http.StatusInternalServerError, "")
	var ids []string
	for range 2 {
		ids = append(ids, h.sendAlert(map[string]any{"target": []string{"@ok", "@bad", "@hooked"}, "severity": "critical", "message": "m"}))
	}
	for _, id := range ids {
		a := h.waitAlert(id, allFinal)
		_, raw := h.do("GET", "/v1/alerts/"+id, nil, nil)
		record(raw)
		if a.Counts["dead"] == 0 || a.Counts["sent"] == 0 {
			t.Fatalf("want both failures and successes to exercise error paths: %v", a.Counts)
		}
	}
	for _, p := range []string{"/v1/users", "/v1/alerts", "/v1/dead-letters", "/v1/tokens", "/v1/stats", "/openapi.json"} {
		_, raw := h.do("GET", p, nil, nil)
		record(raw)
	}
	var dls deadLetterPage
	h.must(http.StatusOK, "GET", "/v1/dead-letters", nil, &dls)
	for _, d := range dls.DeadLetters {
		_, raw := h.do("GET", "/v1/dead-letters/"+d.ID, nil, nil)
		record(raw)
	}
	h.stop()

	canaries := []string{"xoxb-canary-user-token", "xoxb-canary-bot-token", "smtp-canary-password", "sms-canary-auth-token",
		"webhook-canary-path-token", "whsec-canary-webhook-secret", strings.TrimPrefix(slackHook, slk.URL()), tok.Token,
		testauth.AdminToken}
	atRest := []string{"xoxb-canary-user-token", "whsec-canary-webhook-secret"} // encrypted in the database
	db, _ := os.ReadFile(filepath.Join(dir, "herald.db"))
	wal, _ := os.ReadFile(filepath.Join(dir, "herald.db-wal"))
	for _, c := range canaries {
		if strings.Contains(logs.String(), c) {
			i := strings.Index(logs.String(), c)
			t.Errorf("logs leak %q: …%s…", c, logs.String()[max(0, i-200):min(len(logs.String()), i+60)])
		}
		if strings.Contains(responses.String(), c) && c != tok.Token {
			t.Errorf("API responses leak %q", c)
		}
		if slices.Contains(atRest, c) && (bytes.Contains(db, []byte(c)) || bytes.Contains(wal, []byte(c))) {
			t.Errorf("the database holds %q in plain text", c)
		}
	}
	if logs.String() == "" || responses.Len() == 0 {
		t.Fatal("nothing was captured")
	}
}

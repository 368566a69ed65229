package server_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/heraldproject/herald/bus"
	"github.com/heraldproject/herald/notify/email/smtptest"
	"github.com/heraldproject/herald/notify/slack/slacktest"
	"github.com/heraldproject/herald/notify/sms/smstest"
	"github.com/heraldproject/herald/notify/webhook/webhooktest"
)

// TestEndToEnd starts the real server (embedded broker + SQLite), builds a
// directory over HTTP, posts alerts, and sees them arrive at a real SMTP
// server, a Slack fake speaking both the incoming-webhook and
// chat.postMessage protocols, a Twilio-style SMS provider and a webhook
// receiver; then every delivery must show as sent.
func TestEndToEnd(t *testing.T) {
	hook := webhooktest.NewReceiver()
	defer hook.Close()
	slk := slacktest.NewServer()
	defer slk.Close()
	slk.AddToken("xoxb-bot")
	slk.AddChannel("C0OPS")
	mail := smtptest.NewServer(smtptest.Options{})
	defer mail.Close()
	smsp := smstest.NewProvider("AC123", "sms-secret")
	defer smsp.Close()

	h := start(t, testConfig(t, t.TempDir(),
		"HERALD_SLACK_API_URL="+slk.APIURL(),
		"HERALD_SLACK_TOKEN=xoxb-bot",
		"HERALD_EMAIL_HOST="+mail.Host(),
		"HERALD_EMAIL_PORT="+strconv.Itoa(mail.Port()),
		"HERALD_EMAIL_FROM=herald@example.com",
		"HERALD_EMAIL_TLS=none",
		"HERALD_SMS_URL="+smsp.URL(),
		"HERALD_SMS_ACCOUNT_SID=AC123",
		"HERALD_SMS_AUTH_TOKEN=sms-secret",
		"HERALD_SMS_FROM=+15550000000",
	))

	alice := h.createUser(map[string]any{"name": "alice", "email": "alice@example.com", "webhookUrl": hook.URL()})
	bob := h.createUser(map[string]any{"name": "bob", "phone": "+15551234567",
		"slack": map[string]any{"webhookUrl": slk.WebhookURL("bob")}})
	carol := h.createUser(map[string]any{"name": "carol", "slack": map[string]any{"channel": "C0OPS"}, "department": "ops"})
	h.createUser(map[string]any{"name": "dave"}) // no contact at all
	oncall := h.createGroup("oncall", alice, bob, carol)

	// The group holds alice again: she is told once per channel.
	var acc idOut
	h.must(http.StatusAccepted, "POST", "/v1/alerts", map[string]any{
		"target": []string{"@alice", "@@oncall"}, "severity": "fatal", "title": "db-1 down",
		"message": "primary database is not answering", "source": "prometheus",
		"labels": map[string]string{"service": "db", "region": "eu-1"},
	}, &acc)
	if acc.UserCount != 3 || acc.ID == "" {
		t.Fatalf("accepted = %+v, want 3 users", acc)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for name, wait := range map[string]func(context.Context, int) error{
		"webhook": hook.WaitFor, "slack": slk.WaitFor, "email": mail.WaitFor, "sms": smsp.WaitFor,
	} {
		n := 1
		if name == "slack" {
			n = 2 // bob's webhook and carol's channel
		}
		if err := wait(ctx, n); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}

	a := h.waitAlert(acc.ID, allFinal)
	want := map[string]bool{"alice/webhook": true, "alice/email": true, "bob/slack": true, "bob/sms": true, "carol/slack": true}
	if len(a.Deliveries) != len(want) {
		t.Fatalf("deliveries = %+v, want %d", a.Deliveries, len(want))
	}
	for _, d := range a.Deliveries {
		if !want[d.Recipient+"/"+d.Channel] {
			t.Errorf("unexpected delivery %s/%s", d.Recipient, d.Channel)
		}
		if d.Status != "sent" || d.Attempts != 1 || d.SentAt == nil || d.LastError != "" {
			t.Errorf("delivery %s/%s = %+v, want sent on the first attempt", d.Recipient, d.Channel, d)
		}
	}
	if a.Counts["sent"] != 5 {
		t.Errorf("counts = %v", a.Counts)
	}

	// What each endpoint received.
	got := hook.Received()[0]
	p := got.Payload
	if got.IdempotencyKey != p.DeliveryID || p.AlertID != acc.ID || p.Recipient != "alice" ||
		p.Severity != "critical" || p.Title != "db-1 down" || p.Labels["service"] != "db" || p.Attempt != 1 {
		t.Errorf("webhook request = %+v", got)
	}
	if m := mail.Messages()[0]; len(m.To) != 1 || m.To[0] != "alice@example.com" ||
		!strings.Contains(m.Subject, "db-1 down") || !strings.Contains(m.Body, "primary database is not answering") {
		t.Errorf("email = %+v", m)
	}
	if m := smsp.Messages()[0]; m.To != "+15551234567" || m.From != "+15550000000" || !strings.Contains(m.Body, "db-1 down") {
		t.Errorf("sms = %+v", m)
	}
	var viaHook, viaAPI bool
	for _, m := range slk.Messages() {
		viaHook = viaHook || m.Webhook == "bob"
		viaAPI = viaAPI || (m.Channel == "C0OPS" && m.Token == "xoxb-bot")
	}
	if !viaHook || !viaAPI {
		t.Errorf("slack messages = %+v, want one via bob's webhook and one via chat.postMessage to C0OPS", slk.Messages())
	}

	// Explicit channels: email to bob, who has no address, is a dead delivery
	// with the reason; sms to him goes out.
	h.must(http.StatusAccepted, "POST", "/v1/alerts", map[string]any{
		"target": []string{"@bob"}, "severity": "warning", "message": "disk 91%", "channels": []string{"sms", "email"},
	}, &acc)
	a = h.waitAlert(acc.ID, allFinal)
	for _, d := range a.Deliveries {
		switch d.Channel {
		case "sms":
			if d.Status != "sent" {
				t.Errorf("sms delivery = %+v", d)
			}
		case "email":
			if d.Status != "dead" || !strings.Contains(d.LastError, "no contact for channel email") {
				t.Errorf("email delivery = %+v, want dead with a reason", d)
			}
		default:
			t.Errorf("unexpected channel %s", d.Channel)
		}
	}

	// A user with no contacts is reported as unreachable, not silently skipped.
	var unreach struct {
		Unreachable []string `json:"unreachable"`
	}
	h.must(http.StatusAccepted, "POST", "/v1/alerts", map[string]any{"target": []string{"@dave", "@alice"},
		"severity": "info", "message": "fyi"}, &acc)
	h.waitAlert(acc.ID, allFinal)
	h.must(http.StatusOK, "GET", "/v1/alerts/"+acc.ID, nil, &unreach)
	if len(unreach.Unreachable) != 1 || unreach.Unreachable[0] != "dave" {
		t.Errorf("unreachable = %v, want [dave]", unreach.Unreachable)
	}

	// The list shows all three alerts, newest first, paged.
	var page struct {
		Alerts     []alertOut `json:"alerts"`
		NextCursor string     `json:"nextCursor"`
	}
	h.must(http.StatusOK, "GET", "/v1/alerts?limit=2", nil, &page)
	if len(page.Alerts) != 2 || page.Alerts[0].ID != acc.ID || page.NextCursor == "" {
		t.Fatalf("first page = %+v", page)
	}
	next := page.NextCursor
	page.Alerts, page.NextCursor = nil, ""
	h.must(http.StatusOK, "GET", "/v1/alerts?limit=2&cursor="+next, nil, &page)
	if len(page.Alerts) != 1 || page.NextCursor != "" {
		t.Fatalf("second page = %+v", page)
	}

	// The group lists its members.
	var g struct {
		Members []struct{ Name string } `json:"members"`
	}
	h.must(http.StatusOK, "GET", "/v1/groups/"+oncall, nil, &g)
	if len(g.Members) != 3 {
		t.Errorf("members = %+v", g.Members)
	}
	// The Slack token is never returned.
	raw := h.must(http.StatusOK, "GET", "/v1/users", nil, nil)
	if strings.Contains(string(raw), "sms-secret") || strings.Contains(string(raw), "xoxb") {
		t.Errorf("users list leaks a secret: %s", raw)
	}
	fmt.Fprintln(testOut(t), "end to end: 5 channels × recipients delivered and recorded")
}

// TestProducedAlertNamesWhoItMissed produces alerts straight to the alerts
// topic (as a Kafka tool may) whose targets reach nobody: the API would
// refuse them, so the fan-out stage says so in the alert's unreachable list
// instead of storing an alert that told no one and says nothing.
func TestProducedAlertNamesWhoItMissed(t *testing.T) {
	h := start(t, testConfig(t, t.TempDir()))
	hook := webhooktest.NewReceiver()
	defer hook.Close()
	h.createUser(map[string]any{"name": "alice", "webhookUrl": hook.URL()})
	h.createGroup("empty")
	cl, ctx := h.kafka()
	const value = `{"id":"produced-1","target":["@alice","@nobody","@@nogroup","@@empty","bob"],"severity":"error","message":"from a tool"}`
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: bus.TopicAlerts, Value: []byte(value)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Unreachable []string `json:"unreachable"`
	}
	h.waitAlert("produced-1", func(a *alertOut) bool { return len(a.Deliveries) == 1 })
	h.must(http.StatusOK, "GET", "/v1/alerts/produced-1", nil, &got)
	want := []string{"@nobody (unknown)", "@@nogroup (unknown)", "@@empty (no members)"}
	if len(got.Unreachable) != 4 || !slices.Equal(got.Unreachable[:3], want) || !strings.HasPrefix(got.Unreachable[3], "bob (not a target") {
		t.Fatalf("unreachable = %q, want %q and bob's", got.Unreachable, want)
	}
	if err := hook.WaitFor(ctx, 1); err != nil {
		t.Fatalf("alice was not told: %v", err)
	}
}

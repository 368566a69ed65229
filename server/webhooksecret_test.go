package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldproject/herald/internal/testredis"
	"github.com/heraldproject/herald/notify/webhook"
	"github.com/heraldproject/herald/notify/webhook/webhooktest"
)

const (
	serverSecret = "server-wide-signing-secret"
	aliceSecret  = "alice-own-webhook-secret-0123456789"
	aliceSecret2 = "alice-rotated-webhook-secret-9876543210"
)

// TestWebhookSecretPerUser: a user's own webhookSecret signs the webhook
// requests Herald sends them, and the receiver verifies it with
// webhook.Verify; users without one get the server's webhook.signingSecret.
// Changing or removing the secret takes effect at once, and the API never
// returns it. It runs with the in-process cache and with Redis, where the
// cached contacts (secret included) must be sealed.
func TestWebhookSecretPerUser(t *testing.T) {
	t.Run("memory", func(t *testing.T) { webhookSecretFlow(t) })
	t.Run("redis", func(t *testing.T) {
		addr, _ := testredis.Start(t)
		webhookSecretFlow(t, "HERALD_REDIS_ADDR="+addr)
		raw := redis.NewClient(&redis.Options{Addr: addr})
		defer raw.Close()
		ctx := context.Background()
		keys, err := raw.Keys(ctx, "herald:user:*").Result()
		if err != nil || len(keys) == 0 {
			t.Fatalf("no cached users in Redis: %v, %v", keys, err)
		}
		for _, k := range keys {
			v, err := raw.Get(ctx, k).Result()
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(v, "enc:v2:") || strings.Contains(v, "secret") || strings.Contains(v, "127.0.0.1") {
				t.Errorf("Redis %s holds contacts in clear text: %.60s…", k, v)
			}
		}
	})
}

func webhookSecretFlow(t *testing.T, env ...string) {
	hook := webhooktest.NewReceiver()
	defer hook.Close()
	h := start(t, testConfig(t, t.TempDir(), append([]string{"HERALD_WEBHOOK_SIGNING_SECRET=" + serverSecret,
		"HERALD_SECRETS_KEY=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}, env...)...))
	defer h.stop()

	var alice struct {
		ID               string `json:"id"`
		HasWebhookSecret bool   `json:"hasWebhookSecret"`
	}
	raw := h.must(http.StatusCreated, "POST", "/v1/users", map[string]any{"name": "alice",
		"webhookUrl": hook.BaseURL() + "/alice", "webhookSecret": aliceSecret}, &alice)
	if !alice.HasWebhookSecret || strings.Contains(string(raw), aliceSecret) {
		t.Fatalf("create answered %s: want hasWebhookSecret and no secret", raw)
	}
	h.createUser(map[string]any{"name": "bob", "webhookUrl": hook.BaseURL() + "/bob"})

	// send alerts @alice and @bob and returns the requests each received.
	send := func() map[string]webhooktest.Request {
		t.Helper()
		id := h.sendAlert(map[string]any{"target": []string{"@alice", "@bob"}, "severity": "error", "message": "m"})
		h.waitAlert(id, allFinal)
		out := map[string]webhooktest.Request{}
		for _, r := range hook.Received() {
			if r.Payload.AlertID == id {
				out[strings.TrimPrefix(r.Path, "/")] = r
			}
		}
		if len(out) != 2 {
			t.Fatalf("alert %s reached %d of 2 receivers", id, len(out))
		}
		return out
	}
	verify := func(secret string, r webhooktest.Request) error {
		return webhook.Verify(secret, r.Header.Get(webhook.SignatureHeader), r.Body, time.Now(), 5*time.Minute)
	}
	check := func(step, aliceWant, aliceNot string) {
		t.Helper()
		got := send()
		if err := verify(aliceWant, got["alice"]); err != nil {
			t.Errorf("%s: alice's request does not verify with the expected secret: %v", step, err)
		}
		if verify(aliceNot, got["alice"]) == nil {
			t.Errorf("%s: alice's request verifies with a secret that should no longer sign it", step)
		}
		if err := verify(serverSecret, got["bob"]); err != nil {
			t.Errorf("%s: bob's request does not verify with the server's secret: %v", step, err)
		}
	}
	check("own secret", aliceSecret, serverSecret)

	raw = h.must(http.StatusOK, "PATCH", "/v1/users/"+alice.ID, map[string]any{"webhookSecret": aliceSecret2}, nil)
	if strings.Contains(string(raw), aliceSecret2) || !strings.Contains(string(raw), `"hasWebhookSecret":true`) {
		t.Fatalf("patch answered %s", raw)
	}
	check("changed secret", aliceSecret2, aliceSecret)

	// The secret cannot outlive the URL it signs for.
	if code, raw := h.do("PATCH", "/v1/users/"+alice.ID, map[string]any{"webhookUrl": ""}, nil); code != http.StatusUnprocessableEntity ||
		!strings.Contains(string(raw), "webhookSecret") {
		t.Fatalf("clearing the URL under a secret: %d %s", code, raw)
	}

	raw = h.must(http.StatusOK, "PATCH", "/v1/users/"+alice.ID, map[string]any{"webhookSecret": ""}, nil)
	if !strings.Contains(string(raw), `"hasWebhookSecret":false`) {
		t.Fatalf("patch answered %s", raw)
	}
	check("secret removed", serverSecret, aliceSecret2)

	for _, p := range []string{"/v1/users", "/v1/users/" + alice.ID} {
		if _, raw := h.do("GET", p, nil, nil); strings.Contains(string(raw), "alice-") {
			t.Errorf("GET %s shows a secret: %s", p, raw)
		}
	}
}

// TestUnreadableSecret: Herald restarted without the secrets key its users'
// webhook secrets were sealed with. The user with a secret is still read
// (the fan-out does not stall), their delivery is dead-lettered saying why
// instead of going out unsigned, and everyone else is delivered.
func TestUnreadableSecret(t *testing.T) {
	hook := webhooktest.NewReceiver()
	defer hook.Close()
	dir := t.TempDir()
	h := start(t, testConfig(t, dir, "HERALD_SECRETS_KEY=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="))
	h.createUser(map[string]any{"name": "alice", "webhookUrl": hook.BaseURL() + "/alice", "webhookSecret": aliceSecret})
	h.createUser(map[string]any{"name": "bob", "webhookUrl": hook.BaseURL() + "/bob"})
	h.stop()

	h = start(t, testConfig(t, dir)) // no secrets.key
	id := h.sendAlert(map[string]any{"target": []string{"@alice", "@bob"}, "severity": "error", "message": "m"})
	a := h.waitAlert(id, allFinal)
	for _, d := range a.Deliveries {
		switch d.Recipient {
		case "alice":
			if d.Status != "dead" || !strings.Contains(d.LastError, "cannot be decrypted") || d.DeadID == "" {
				t.Errorf("alice's delivery = %+v, want dead saying the secret cannot be decrypted", d)
			}
		case "bob":
			if d.Status != "sent" {
				t.Errorf("bob's delivery = %+v, want sent", d)
			}
		}
	}
	for _, r := range hook.Received() {
		if r.Path == "/alice" {
			t.Errorf("alice was sent a request without her secret: %s", r.Header.Get(webhook.SignatureHeader))
		}
	}
	if len(a.Deliveries) != 2 {
		t.Fatalf("deliveries = %+v", a.Deliveries)
	}
}

package webhook_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/notify"
	"github.com/heraldproject/herald/notify/webhook"
	"github.com/heraldproject/herald/notify/webhook/webhooktest"
)

func TestSignature(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"deliveryId":"d1"}`)
	h := webhook.Sign("s3cret", now, body)
	if err := webhook.Verify("s3cret", h, body, now.Add(time.Minute), 5*time.Minute); err != nil {
		t.Fatalf("valid signature rejected: %v", err)
	}
	for name, check := range map[string]func() error{
		"wrong secret":  func() error { return webhook.Verify("other", h, body, now, 5*time.Minute) },
		"changed body":  func() error { return webhook.Verify("s3cret", h, []byte(`{"deliveryId":"d2"}`), now, 5*time.Minute) },
		"replayed late": func() error { return webhook.Verify("s3cret", h, body, now.Add(10*time.Minute), 5*time.Minute) },
		"malformed":     func() error { return webhook.Verify("s3cret", "v1=abc", body, now, 5*time.Minute) },
	} {
		if check() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestSignedDelivery(t *testing.T) {
	rcv := webhooktest.NewReceiver()
	defer rcv.Close()
	n := webhook.New(webhook.Config{SigningSecret: "s3cret"}, nil)
	m := &notify.Message{DeliveryID: "d1", AlertID: "a1", Recipient: &herald.User{Name: "a", WebhookURL: rcv.URL()},
		Severity: herald.SeverityInfo, Text: "hi", Attempt: 1}
	if _, err := n.Notify(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	r := rcv.Received()[0]
	if r.Status != http.StatusOK || r.Header.Get(webhook.SignatureHeader) == "" {
		t.Fatalf("request %+v carries no signature", r)
	}
	if err := webhook.Verify("s3cret", r.Header.Get(webhook.SignatureHeader), r.Body, time.Now(), time.Minute); err != nil {
		t.Fatalf("receiver could not verify: %v", err)
	}
}

// TestSigningSecretPerRecipient: a recipient's own secret signs their
// requests; others get the server's secret; with neither, requests are
// unsigned.
func TestSigningSecretPerRecipient(t *testing.T) {
	rcv := webhooktest.NewReceiver()
	defer rcv.Close()
	send := func(n *webhook.Notifier, u *herald.User) webhooktest.Request {
		t.Helper()
		m := &notify.Message{DeliveryID: "d-" + u.Name, AlertID: "a1", Recipient: u, Severity: herald.SeverityInfo, Text: "hi", Attempt: 1}
		if _, err := n.Notify(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		got := rcv.Received()
		return got[len(got)-1]
	}
	verify := func(secret string, r webhooktest.Request) error {
		return webhook.Verify(secret, r.Header.Get(webhook.SignatureHeader), r.Body, time.Now(), time.Minute)
	}
	own := &herald.User{Name: "own", WebhookURL: rcv.URL(), WebhookSecret: "alice-own-secret-0123456789"}
	plain := &herald.User{Name: "plain", WebhookURL: rcv.URL()}

	global := webhook.New(webhook.Config{SigningSecret: "server-wide-secret"}, nil)
	r := send(global, own)
	if err := verify("alice-own-secret-0123456789", r); err != nil {
		t.Errorf("own secret: %v", err)
	}
	if verify("server-wide-secret", r) == nil {
		t.Error("a recipient with their own secret got the server's signature")
	}
	if err := verify("server-wide-secret", send(global, plain)); err != nil {
		t.Errorf("server secret for a recipient without one: %v", err)
	}

	none := webhook.New(webhook.Config{}, nil)
	if err := verify("alice-own-secret-0123456789", send(none, own)); err != nil {
		t.Errorf("own secret without a server secret: %v", err)
	}
	if h := send(none, plain).Header.Get(webhook.SignatureHeader); h != "" {
		t.Errorf("no secret anywhere, yet signed: %q", h)
	}
}

package deliver

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/heraldproject/herald"
)

// TestBreaker checks an endpoint's breaker opens after BreakerFailures
// transient failures in a row (a permanent one does not count), refuses
// while open, lets a probe through after BreakerOpen and closes when it
// succeeds, telling onBreaker each time with the endpoint's name.
func TestBreaker(t *testing.T) {
	var mu sync.Mutex
	var told []string
	b := newBackpressure(Limits{BreakerFailures: 3, BreakerOpen: 100 * time.Millisecond}, func(ep string, open bool) {
		mu.Lock()
		defer mu.Unlock()
		told = append(told, ep+map[bool]string{true: " open", false: " closed"}[open])
	})
	const ep = "webhook:http://hooks.example"
	cb := b.breaker(ep)
	if cb != b.breaker(ep) {
		t.Fatal("a second breaker for one endpoint")
	}
	fail := func() (bool, error) { return false, errors.New("503") }
	for range 2 {
		_, _ = cb.Execute(fail)
	}
	_, _ = cb.Execute(func() (bool, error) { return false, errPermanent{errors.New("404")} })
	if cb.State() != gobreaker.StateClosed {
		t.Fatalf("open after 2 transient failures and a permanent one")
	}
	for range 3 {
		_, _ = cb.Execute(fail)
	}
	if _, err := cb.Execute(func() (bool, error) { return true, nil }); !errors.Is(err, gobreaker.ErrOpenState) {
		t.Fatalf("an open breaker let a send through: %v", err)
	}
	time.Sleep(150 * time.Millisecond)
	if _, err := cb.Execute(func() (bool, error) { return true, nil }); err != nil {
		t.Fatalf("the probe after BreakerOpen: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{ep + " open", ep + " closed"}; strings.Join(told, ",") != strings.Join(want, ",") {
		t.Fatalf("onBreaker told %q, want %q", told, want)
	}
	if b := newBackpressure(Limits{}, nil); b.breaker(ep) != nil {
		t.Error("a breaker with BreakerFailures 0")
	}
}

func TestLoggable(t *testing.T) {
	if got := loggable("slack:https://hooks.slack.com/services/T0/B0/XYZ"); strings.Contains(got, "XYZ") || strings.Contains(got, "hooks.slack.com") {
		t.Errorf("loggable shows a Slack webhook URL: %q", got)
	}
	if got := loggable("webhook:https://hooks.example"); got != "webhook:https://hooks.example" {
		t.Errorf("loggable(webhook) = %q", got)
	}
	if got := loggable("webhook:https://hooks.example/api/webhooks/1/TOKEN"); strings.Contains(got, "TOKEN") ||
		!strings.Contains(got, "hooks.example") {
		t.Errorf("loggable(webhook URL with a path) = %q, want its host without the path", got)
	}
}

// TestEndpoints checks webhook URLs on one host have breakers of their own
// (their query left out), while Retry-After and rate limits stay per host.
func TestEndpoints(t *testing.T) {
	a := &herald.User{WebhookURL: "https://hooks.example/tenant-a?sig=1"}
	a2 := &herald.User{WebhookURL: "https://hooks.example/tenant-a?sig=2"}
	b := &herald.User{WebhookURL: "https://hooks.example/tenant-b"}
	epA, brA := endpoints(herald.ChannelWebhook, a)
	_, brA2 := endpoints(herald.ChannelWebhook, a2)
	epB, brB := endpoints(herald.ChannelWebhook, b)
	if brA != brA2 {
		t.Error("one URL with two queries has two breakers")
	}
	if brA == brB {
		t.Error("two paths on one host share a breaker")
	}
	if epA != epB || epA != "webhook:https://hooks.example" {
		t.Errorf("endpoints %q and %q, want both webhook:https://hooks.example (one for Retry-After and rate limits)", epA, epB)
	}
	if ep, br := endpoints(herald.ChannelSMS, &herald.User{Phone: "+15551234567"}); ep != "sms" || br != ep {
		t.Errorf("SMS: endpoint %q, breaker %q; want the provider's, sms", ep, br)
	}
}

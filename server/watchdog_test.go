package server_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/heraldproject/herald/notify/webhook/webhooktest"
	"github.com/heraldproject/herald/watchdog"
)

// TestSelfAlert: deliveries dying make Herald alert its operators through its
// own pipeline, once per check per floor period, however long it goes on.
func TestSelfAlert(t *testing.T) {
	broken := webhooktest.NewReceiver()
	defer broken.Close()
	broken.SetStatus(http.StatusBadRequest, "")
	ops := webhooktest.NewReceiver()
	defer ops.Close()
	h := start(t, testConfig(t, t.TempDir(), "HERALD_SELF_ALERT_TARGET=@@ops", "HERALD_SELF_ALERT_INTERVAL=200ms",
		"HERALD_SELF_ALERT_FLOOR=1h", "HERALD_SELF_ALERT_MIN_ATTEMPTS=1"))
	h.createUser(map[string]any{"name": "alice", "webhookUrl": broken.URL()})
	h.createGroup("ops", h.createUser(map[string]any{"name": "oncall", "webhookUrl": ops.URL()}))
	for round := range 3 {
		for range 3 {
			h.sendAlert(map[string]any{"target": []string{"@alice"}, "severity": "error", "message": "m"})
		}
		time.Sleep(700 * time.Millisecond)
		if round == 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			err := ops.WaitFor(ctx, 1)
			cancel()
			if err != nil {
				t.Fatalf("no self-alert reached @@ops: %v", err)
			}
		}
	}
	time.Sleep(time.Second)
	checks := map[string]int{}
	for _, r := range ops.Received() {
		p := r.Payload
		if p.Source != watchdog.Source || p.Labels["herald_self"] != "true" || p.Recipient != "oncall" {
			t.Errorf("unexpected delivery to ops: %+v", p)
		}
		checks[p.Labels["check"]]++
	}
	if checks["dead_letters"] != 1 {
		t.Errorf("dead_letters self-alerts = %d, want exactly 1 within the floor (all: %v)", checks["dead_letters"], checks)
	}
	for c, n := range checks {
		if n > 1 {
			t.Errorf("check %s alerted %d times within its floor", c, n)
		}
	}
}

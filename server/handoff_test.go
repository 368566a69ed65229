package server_test

import (
	"testing"
	"time"

	"github.com/heraldproject/herald/notify/webhook/webhooktest"
)

// TestHandoffSpillsBehindSlowEndpoint: a webhook that takes seconds to
// answer holds up the in-memory queue's batch; deliveries to others fanned
// out once that batch has been sending for half a second go through Kafka
// (the queue spills) and arrive before the slow one is answered; once the
// sending stage has caught up, the queue takes deliveries in memory again.
func TestHandoffSpillsBehindSlowEndpoint(t *testing.T) {
	slow, fast := webhooktest.NewReceiver(), webhooktest.NewReceiver()
	defer slow.Close()
	defer fast.Close()
	slow.SetDelay(6 * time.Second)
	h := start(t, testConfig(t, t.TempDir()))
	h.createUser(map[string]any{"name": "slow", "webhookUrl": slow.URL()})
	h.createUser(map[string]any{"name": "fast", "webhookUrl": fast.URL()})
	metric := func(name string) float64 {
		fams, _ := h.scrape()
		v, _ := value(fams, name, map[string]string{"channel": "webhook"})
		return v
	}
	h.sendAlert(map[string]any{"target": []string{"@slow"}, "severity": "info", "message": "slow"})
	for begun := time.Now(); metric("herald_handoff_queued") == 0; { // until the slow send is in hand
		if time.Since(begun) > 20*time.Second {
			t.Fatal("the slow delivery never reached the hand-off queue")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(700 * time.Millisecond) // past the queue's 500 ms wait
	const n = 5
	for range n {
		h.sendAlert(map[string]any{"target": []string{"@fast"}, "severity": "info", "message": "fast"})
	}
	deadline := time.Now().Add(30 * time.Second)
	for fast.Unique() < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if fast.Unique() < n {
		t.Fatalf("%d of %d deliveries to the fast endpoint arrived", fast.Unique(), n)
	}
	if slow.Unique() != 0 {
		t.Fatal("the slow endpoint answered before the fast deliveries arrived: they waited behind it")
	}
	if got := metric("herald_handoff_spilled_total"); got < n {
		t.Fatalf("herald_handoff_spilled_total = %v, want at least %d", got, n)
	}
	for (slow.Unique() == 0 || metric("herald_handoff_spilling") != 0) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if slow.Unique() != 1 || metric("herald_handoff_spilling") != 0 {
		t.Fatalf("slow endpoint got %d, spilling %v: want the slow delivery sent and the queue in memory again",
			slow.Unique(), metric("herald_handoff_spilling"))
	}
	// In memory again: the next delivery is not spilled.
	spilled := metric("herald_handoff_spilled_total")
	h.sendAlert(map[string]any{"target": []string{"@fast"}, "severity": "info", "message": "after"})
	for fast.Unique() < n+1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if fast.Unique() != n+1 || metric("herald_handoff_spilled_total") != spilled {
		t.Fatalf("after catching up: fast endpoint got %d of %d, spilled %v (was %v)", fast.Unique(), n+1,
			metric("herald_handoff_spilled_total"), spilled)
	}
}

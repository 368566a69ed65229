package server_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/fanout"
	"github.com/heraldproject/herald/notify/webhook/webhooktest"
)

// TestRestartMidStream stops the server while alerts are being accepted and
// delivered, starts a new one on the same data dir, and checks that the
// directory survived and that every accepted alert reached every recipient
// exactly once (counted by Idempotency-Key at the receiver).
func TestRestartMidStream(t *testing.T) {
	hook := webhooktest.NewReceiver()
	defer hook.Close()
	hook.SetDelay(2 * time.Millisecond) // keep deliveries in flight at the stop
	dir := t.TempDir()

	h := start(t, testConfig(t, dir))
	var users []string
	for _, name := range []string{"ann", "ben", "cat", "dan"} {
		users = append(users, h.createUser(map[string]any{"name": name, "webhookUrl": hook.URL()}))
	}
	h.createGroup("everyone", users...)

	const total = 240
	var (
		mu       sync.Mutex
		accepted []string
	)
	post := func(h *instance, n int) {
		var wg sync.WaitGroup
		jobs := make(chan int)
		for range 8 {
			wg.Go(func() {
				for range jobs {
					var out idOut
					code, _ := h.do("POST", "/v1/alerts", map[string]any{"target": []string{"@@everyone"},
						"severity": "error", "message": "m"}, &out)
					if code == http.StatusAccepted {
						mu.Lock()
						accepted = append(accepted, out.ID)
						mu.Unlock()
					}
				}
			})
		}
		for i := range n {
			jobs <- i
		}
		close(jobs)
		wg.Wait()
	}

	post(h, total/2)
	// Stop at once: fan-out and deliveries of the first half are in flight.
	h.stop()
	sentBefore := hook.Unique()

	h = start(t, testConfig(t, dir))
	var list struct {
		Users []struct{ Name string } `json:"users"`
	}
	h.must(http.StatusOK, "GET", "/v1/users", nil, &list)
	if len(list.Users) != 4 {
		t.Fatalf("after restart, users = %+v", list.Users)
	}
	post(h, total/2)

	mu.Lock()
	want := len(accepted) * len(users)
	mu.Unlock()
	if len(accepted) != total {
		t.Fatalf("accepted %d of %d alerts", len(accepted), total)
	}
	deadline := time.Now().Add(60 * time.Second)
	for hook.Unique() < want && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("delivered %d before the stop, %d in all; receiver saw %d duplicates", sentBefore, hook.Unique(), hook.Duplicates())
	for _, a := range accepted {
		for _, u := range users {
			id := fanout.DeliveryID(a, u, herald.ChannelWebhook)
			if n := hook.Count(id); n != 1 {
				t.Errorf("delivery %s (alert %s, user %s) received %d times, want exactly 1", id, a, u, n)
			}
		}
	}
	if hook.Unique() != want || hook.Duplicates() != 0 {
		t.Fatalf("receiver: %d unique, %d duplicates; want %d unique, 0 duplicates", hook.Unique(), hook.Duplicates(), want)
	}
}

// TestDrain: a stopping server refuses new alerts with 503 (so clients retry
// elsewhere) and says it is not ready, while reads still work.
func TestDrain(t *testing.T) {
	h := start(t, testConfig(t, t.TempDir()))
	h.createUser(map[string]any{"name": "alice", "webhookUrl": "http://127.0.0.1:1/x"})
	h.srv.Drain()
	code, raw := h.do("POST", "/v1/alerts", map[string]any{"target": []string{"@alice"}, "severity": "info", "message": "m"}, nil)
	if code != http.StatusServiceUnavailable || !strings.Contains(string(raw), "shutting down") {
		t.Fatalf("ingest while draining: %d %s", code, raw)
	}
	if code, _ := h.do("GET", "/readyz", nil, nil); code != http.StatusServiceUnavailable {
		t.Fatalf("readyz while draining: %d", code)
	}
	h.must(http.StatusOK, "GET", "/v1/users", nil, nil)
}

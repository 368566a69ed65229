package server_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/heraldproject/herald/internal/testpg"
	"github.com/heraldproject/herald/internal/testredis"
	"github.com/heraldproject/herald/notify/webhook/webhooktest"
)

// TestRedisCacheAndOutage runs Herald on PostgreSQL with a Redis cache:
// contacts are cached and invalidated on change, and when Redis dies mid-run
// delivery goes on through the database with nothing lost.
func TestRedisCacheAndOutage(t *testing.T) {
	addr, stopRedis := testredis.Start(t)
	hook := webhooktest.NewReceiver()
	defer hook.Close()
	other := webhooktest.NewReceiver()
	defer other.Close()
	h := start(t, testConfig(t, t.TempDir(), "HERALD_REDIS_ADDR="+addr, "HERALD_STORE_DRIVER=postgres",
		"HERALD_STORE_DSN="+testpg.DSN(t)))
	alice := h.createUser(map[string]any{"name": "alice", "webhookUrl": hook.URL()})
	for i := range 3 {
		h.createUser(map[string]any{"name": fmt.Sprint("m", i), "webhookUrl": hook.URL()})
	}
	send := func(n int) []string {
		var ids []string
		for range n {
			ids = append(ids, h.sendAlert(map[string]any{"target": []string{"@alice", "@m0", "@m1", "@m2"},
				"severity": "error", "message": "m"}))
		}
		return ids
	}
	ids := send(20)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := hook.WaitFor(ctx, 80); err != nil {
		t.Fatal(err)
	}
	// With Redis, every send is marked there, for the rest of the fleet.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		fams, _ := h.scrape()
		_, n := value(fams, "herald_cache_operation_duration_seconds", map[string]string{"op": "mark_sent"})
		if n >= 80 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sends marked in Redis, want 80", n)
		}
	}
	// A change of contact is seen at once, though alice is cached.
	h.must(http.StatusOK, "PATCH", "/v1/users/"+alice, map[string]any{"webhookUrl": other.URL()}, nil)
	id := h.sendAlert(map[string]any{"target": []string{"@alice"}, "severity": "info", "message": "moved"})
	if err := other.WaitFor(ctx, 1); err != nil {
		t.Fatalf("delivery after the contact change did not go to the new URL: %v", err)
	}
	h.waitAlert(id, allFinal)

	// Redis dies; alerts keep flowing through the database.
	stopRedis()
	ids = append(ids, send(20)...)
	for _, id := range ids {
		a := h.waitAlert(id, allFinal)
		for _, d := range a.Deliveries {
			if d.Status != "sent" {
				t.Fatalf("delivery %+v not sent with Redis down", d)
			}
		}
	}
	if got := hook.Unique() + other.Unique(); got != 40*4+1 {
		t.Fatalf("received %d distinct deliveries, want %d", got, 40*4+1)
	}
}

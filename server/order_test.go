package server_test

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// TestRecipientSendsInOrder: with the default deliver.recipientConcurrency
// (1) a recipient never has two sends in flight — each starts after the one
// before it got its answer, so they arrive in order — while recording the
// outcomes overlaps the next send. With 16, several may be in flight.
func TestRecipientSendsInOrder(t *testing.T) {
	for _, c := range []struct {
		perRecipient string
		wantMax1     bool
	}{{"", true}, {"16", false}} {
		name := "default"
		if c.perRecipient != "" {
			name = "recipientConcurrency=" + c.perRecipient
		}
		t.Run(name, func(t *testing.T) {
			var (
				mu                   sync.Mutex
				inFlight, most, sent int
			)
			hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				inFlight++
				most = max(most, inFlight)
				mu.Unlock()
				time.Sleep(5 * time.Millisecond) // a slow receiver makes overlap visible
				mu.Lock()
				inFlight--
				sent++
				mu.Unlock()
				w.WriteHeader(http.StatusOK)
			}))
			defer hook.Close()
			var env []string
			if c.perRecipient != "" {
				env = append(env, "HERALD_DELIVER_RECIPIENT_CONCURRENCY="+c.perRecipient)
			}
			h := start(t, testConfig(t, t.TempDir(), env...))
			h.createUser(map[string]any{"name": "ann", "webhookUrl": hook.URL + "/ann"})
			const alerts = 60
			var ids []string
			for range alerts {
				ids = append(ids, h.sendAlert(map[string]any{"target": []string{"@ann"}, "severity": "info", "message": "m"}))
			}
			for _, id := range ids {
				h.waitAlert(id, allFinal)
			}
			mu.Lock()
			defer mu.Unlock()
			t.Logf("%d sends, at most %d in flight at once", sent, most)
			if sent < alerts {
				t.Fatalf("%d of %d sends arrived", sent, alerts)
			}
			if c.wantMax1 && most != 1 {
				t.Fatalf("%d sends to one recipient were in flight at once; the default keeps them one after another", most)
			}
		})
	}
}

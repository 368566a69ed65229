package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestRecipientSendsInOrder: one recipient's notifications about the same
// alert stream (the same labels) are sent one after another — each starts
// after the one before it got its answer, so they arrive in order — while
// different streams overlap, up to deliver.recipientConcurrency (by
// default automatic: all of the channel's 64 sends for a recipient alone in
// its batch, as here). Recording outcomes overlaps the next send either way.
func TestRecipientSendsInOrder(t *testing.T) {
	for _, c := range []struct {
		name   string
		env    []string
		labels func(i int) map[string]string
		// most bounds the sends in flight at once; overlap requires more
		// than one at some point.
		most    int
		overlap bool
	}{
		{name: "no labels: one stream", most: 1},
		{name: "two streams", labels: func(i int) map[string]string { return map[string]string{"stream": strconv.Itoa(i % 2)} },
			most: 2, overlap: true},
		{name: "a stream per alert", labels: func(i int) map[string]string { return map[string]string{"n": strconv.Itoa(i)} },
			most: 64, overlap: true},
		{name: "a stream per alert, recipientConcurrency=4", env: []string{"HERALD_DELIVER_RECIPIENT_CONCURRENCY=4"},
			labels: func(i int) map[string]string { return map[string]string{"n": strconv.Itoa(i)} }, most: 4, overlap: true},
		{name: "a stream per alert, recipientConcurrency=1", env: []string{"HERALD_DELIVER_RECIPIENT_CONCURRENCY=1"},
			labels: func(i int) map[string]string { return map[string]string{"n": strconv.Itoa(i)} }, most: 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			var (
				mu             sync.Mutex
				inFlight, most int
				got            = map[string][]int{} // labels -> alert numbers in arrival order
			)
			hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var p struct {
					Message string            `json:"message"`
					Labels  map[string]string `json:"labels"`
				}
				if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
					t.Errorf("webhook payload: %v", err)
				}
				n, _ := strconv.Atoi(p.Message)
				mu.Lock()
				inFlight++
				most = max(most, inFlight)
				stream := fmt.Sprint(p.Labels) // sorted by key
				got[stream] = append(got[stream], n)
				mu.Unlock()
				time.Sleep(10 * time.Millisecond) // a slow receiver makes overlap visible
				mu.Lock()
				inFlight--
				mu.Unlock()
				w.WriteHeader(http.StatusOK)
			}))
			defer hook.Close()
			h := start(t, testConfig(t, t.TempDir(), c.env...))
			h.createUser(map[string]any{"name": "ann", "webhookUrl": hook.URL + "/ann"})
			const alerts = 60
			var ids []string
			for i := range alerts {
				a := map[string]any{"target": []string{"@ann"}, "severity": "info", "message": fmt.Sprint(i)}
				if c.labels != nil {
					a["labels"] = c.labels(i)
				}
				ids = append(ids, h.sendAlert(a))
			}
			for _, id := range ids {
				h.waitAlert(id, allFinal)
			}
			mu.Lock()
			defer mu.Unlock()
			sent := 0
			for stream, ns := range got {
				sent += len(ns)
				for i := 1; i < len(ns); i++ {
					if ns[i] < ns[i-1] {
						t.Fatalf("stream %q arrived out of order: %v", stream, ns)
					}
				}
			}
			t.Logf("%d sends, at most %d in flight at once", sent, most)
			if sent < alerts {
				t.Fatalf("%d of %d sends arrived", sent, alerts)
			}
			if most > c.most {
				t.Fatalf("%d sends to one recipient were in flight at once, want at most %d", most, c.most)
			}
			if c.overlap && most < 2 {
				t.Fatalf("sends of different streams never overlapped")
			}
		})
	}
}

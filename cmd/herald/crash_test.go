package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/fanout"
	"github.com/heraldproject/herald/notify/webhook/webhooktest"
)

// TestCrash kills `herald serve` with SIGKILL at random moments while a few
// thousand alerts with several recipients each flow to a webhook receiver,
// restarting it on the same data dir each time. After the last restart every
// delivery must arrive at least once; duplicates (allowed only around a
// kill) are counted and reported.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts a child process many times")
	}
	const (
		alerts     = 2000
		recipients = 4
		kills      = 12
	)
	bin := buildBinary(t)
	hook := webhooktest.NewReceiver()
	defer hook.Close()
	dir := t.TempDir()
	httpAddr, kafkaAddr := freeAddr(t), freeAddr(t)
	env := []string{"HERALD_RETRY_DELAYS=100ms,500ms", "HERALD_LOG_LEVEL=warn"}
	c := startChildAt(t, bin, dir, httpAddr, kafkaAddr, env...)

	var users []string
	for i := range recipients {
		out := c.post(t, "/v1/users", fmt.Sprintf(`{"name":"r%d","webhookUrl":%q}`, i, hook.URL()))
		users = append(users, out["id"].(string))
	}
	g := c.post(t, "/v1/groups", `{"name":"crew"}`)["id"].(string)
	for _, u := range users {
		req, _ := http.NewRequest("PUT", c.base+"/v1/groups/"+g+"/members/"+u, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusNoContent {
			t.Fatalf("subscribe: %v %v", err, resp)
		}
		resp.Body.Close()
	}

	// Post every alert until accepted; the Idempotency-Key makes a retry after
	// a kill (when the answer may have been lost) the same alert.
	ids := make([]string, alerts)
	var posted atomic.Int64
	var retries atomic.Int64
	postAll := func() {
		var wg sync.WaitGroup
		next := make(chan int)
		for range 8 {
			wg.Go(func() {
				for i := range next {
					body := `{"target":["@@crew"],"severity":"error","message":"crash test"}`
					for {
						req, _ := http.NewRequest("POST", "http://"+httpAddr+"/v1/alerts", strings.NewReader(body))
						req.Header.Set("Content-Type", "application/json")
						req.Header.Set("Idempotency-Key", fmt.Sprint("crash-", i))
						resp, err := http.DefaultClient.Do(req)
						if err == nil {
							var out struct{ ID string }
							derr := json.NewDecoder(resp.Body).Decode(&out)
							resp.Body.Close()
							if resp.StatusCode == http.StatusAccepted && derr == nil {
								ids[i] = out.ID
								posted.Add(1)
								break
							}
						}
						retries.Add(1)
						time.Sleep(50 * time.Millisecond)
					}
				}
			})
		}
		for i := range alerts {
			next <- i
		}
		close(next)
		wg.Wait()
	}
	done := make(chan struct{})
	go func() { postAll(); close(done) }()

	for k := range kills {
		time.Sleep(time.Duration(200+rand.IntN(600)) * time.Millisecond)
		if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-c.exited
		t.Logf("kill %d: %d alerts accepted, %d deliveries received", k+1, posted.Load(), hook.Unique())
		c = startChildAt(t, bin, dir, httpAddr, kafkaAddr, env...)
	}
	select {
	case <-done:
	case <-time.After(3 * time.Minute):
		t.Fatalf("posting did not finish: %d accepted", posted.Load())
	}

	want := webhookDeliveries(ids, users)
	missing := waitDelivered(t, hook, want, 3*time.Minute)
	unexpected := 0
	for _, k := range hook.Keys() {
		if !want[k] {
			unexpected++
		}
	}
	t.Logf("crash test: %d kills, %d alerts × %d recipients = %d deliveries; lost %d; duplicates %d; "+
		"unexpected %d; client retries %d", kills, alerts, recipients, len(want), missing, hook.Duplicates(), unexpected,
		retries.Load())
	if missing != 0 {
		t.Fatalf("%d of %d deliveries never arrived", missing, len(want))
	}
	if unexpected != 0 {
		t.Fatalf("%d deliveries arrived that no accepted alert accounts for (a retried post made a second alert?)", unexpected)
	}
	// A duplicate can only come from a send whose outcome was not yet
	// recorded at a kill: one in flight or answered and waiting for its
	// group commit, together at most twice deliver.concurrency (64) per
	// channel.
	if d := hook.Duplicates(); d > kills*2*64 {
		t.Fatalf("%d duplicates for %d kills: more than in-flight work explains", d, kills)
	}
}

// webhookDeliveries is the set of delivery ids the webhook receiver must see
// for the given alerts and recipients.
func webhookDeliveries(alertIDs, userIDs []string) map[string]bool {
	want := map[string]bool{}
	for _, a := range alertIDs {
		for _, u := range userIDs {
			want[fanout.DeliveryID(a, u, herald.ChannelWebhook)] = true
		}
	}
	return want
}

// waitDelivered waits up to limit for every wanted delivery id to reach the
// receiver and returns how many never did.
func waitDelivered(t *testing.T, hook *webhooktest.Receiver, want map[string]bool, limit time.Duration) int {
	start := time.Now()
	deadline := start.Add(limit)
	lastLog := start
	for {
		missing := 0
		for id := range want {
			if hook.Count(id) == 0 {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			if missing == 0 {
				t.Logf("every delivery arrived %v after the last alert was accepted", time.Since(start).Round(100*time.Millisecond))
			}
			return missing
		}
		if time.Since(lastLog) >= 10*time.Second {
			lastLog = time.Now()
			t.Logf("waiting: %d of %d deliveries still missing after %v", missing, len(want), time.Since(start).Round(time.Second))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

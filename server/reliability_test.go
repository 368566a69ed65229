package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/heraldproject/herald/bus"
	"github.com/heraldproject/herald/notify/email/smtptest"
	"github.com/heraldproject/herald/notify/webhook/webhooktest"
)

type deadLetterOut struct {
	ID         string `json:"id"`
	Kind       string `json:"kind"`
	DeliveryID string `json:"deliveryId"`
	AlertID    string `json:"alertId"`
	Channel    string `json:"channel"`
	Reason     string `json:"reason"`
	Attempts   int    `json:"attempts"`
	Source     string `json:"source"`
	Payload    string `json:"payload"`
	History    []struct {
		Attempt int       `json:"attempt"`
		At      time.Time `json:"at"`
		Error   string    `json:"error"`
	} `json:"history"`
}

type deadLetterPage struct {
	DeadLetters []deadLetterOut `json:"deadLetters"`
	NextCursor  string          `json:"nextCursor"`
}

func (h *instance) sendAlert(body map[string]any) string {
	h.t.Helper()
	var acc idOut
	h.must(http.StatusAccepted, "POST", "/v1/alerts", body, &acc)
	return acc.ID
}

// waitDeadLetters polls the dead-letter list (with query q) until it holds n.
func (h *instance) waitDeadLetters(q string, n int) []deadLetterOut {
	h.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var page deadLetterPage
		h.must(http.StatusOK, "GET", "/v1/dead-letters?limit=500"+q, nil, &page)
		if len(page.DeadLetters) >= n {
			return page.DeadLetters
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("dead letters%s: have %d, want %d: %+v", q, len(page.DeadLetters), n, page.DeadLetters)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestOutage: the receiver fails for a stretch shorter than the retry budget,
// then recovers: everything is delivered, attempts are spaced by the
// configured delays, and nothing is dead-lettered. A longer outage yields
// dead letters that list every attempt; replaying them delivers them with
// their delivery ids.
func TestOutage(t *testing.T) {
	hook := webhooktest.NewReceiver()
	defer hook.Close()
	delays := []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond}
	h := start(t, testConfig(t, t.TempDir(), "HERALD_RETRY_MAX_ATTEMPTS=4", "HERALD_RETRY_DELAYS=200ms,400ms,800ms",
		"HERALD_BREAKER_FAILURES=0"))
	var users []string
	for i := range 5 {
		users = append(users, h.createUser(map[string]any{"name": fmt.Sprint("u", i), "webhookUrl": hook.URL()}))
	}
	h.createGroup("all", users...)

	t.Run("short outage", func(t *testing.T) {
		hook.SetStatus(http.StatusInternalServerError, "")
		var ids []string
		for range 10 {
			ids = append(ids, h.sendAlert(map[string]any{"target": []string{"@@all"}, "severity": "error", "message": "m"}))
		}
		// While retrying, a delivery is failed with its next attempt time.
		h.waitAlert(ids[0], func(a *alertOut) bool {
			for _, d := range a.Deliveries {
				if d.Status == "failed" && d.NextAt != nil && strings.Contains(d.LastError, "HTTP 500") {
					return true
				}
			}
			return false
		})
		// Two attempts each fail (first try and the 200ms retry), then recovery.
		deadline := time.Now().Add(10 * time.Second)
		for countStatus(hook, http.StatusInternalServerError) < 2*len(ids)*len(users) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		hook.SetStatus(http.StatusOK, "")
		for _, id := range ids {
			a := h.waitAlert(id, allFinal)
			for _, d := range a.Deliveries {
				if d.Status != "sent" {
					t.Fatalf("delivery %+v not sent after a short outage", d)
				}
			}
		}
		// Spacing: consecutive requests for one delivery at least 80% of the
		// configured delay apart (the jitter is ±20%).
		byKey := map[string][]time.Time{}
		for _, r := range hook.Received() {
			byKey[r.IdempotencyKey] = append(byKey[r.IdempotencyKey], r.Received)
		}
		checked := 0
		for key, ts := range byKey {
			for i := 1; i < len(ts); i++ {
				min := time.Duration(float64(delays[min(i-1, len(delays)-1)]) * 0.8)
				if gap := ts[i].Sub(ts[i-1]); gap < min {
					t.Errorf("delivery %s: attempt %d came %v after the previous, want at least %v", key, i+1, gap, min)
				}
				checked++
			}
		}
		if checked == 0 {
			t.Fatal("no retried delivery to check the spacing of")
		}
		var page deadLetterPage
		h.must(http.StatusOK, "GET", "/v1/dead-letters", nil, &page)
		if len(page.DeadLetters) != 0 {
			t.Fatalf("dead letters after a short outage: %+v", page.DeadLetters)
		}
	})

	t.Run("long outage then replay", func(t *testing.T) {
		hook.SetStatus(http.StatusServiceUnavailable, "")
		id := h.sendAlert(map[string]any{"target": []string{"@@all"}, "severity": "critical", "message": "long"})
		dls := h.waitDeadLetters("&alertId="+id, len(users))
		for _, d := range dls {
			full := h.deadLetter(d.ID)
			if full.Kind != "delivery" || full.Channel != "webhook" || full.Attempts != 4 || len(full.History) != 4 ||
				!strings.Contains(full.Reason, "gave up after 4 attempts") {
				t.Fatalf("dead letter = %+v", full)
			}
			for _, a := range full.History {
				if !strings.Contains(a.Error, "HTTP 503") || a.At.IsZero() {
					t.Fatalf("attempt %+v does not say when and why", a)
				}
			}
		}
		a := h.waitAlert(id, allFinal)
		byID := map[string]bool{}
		for _, d := range dls {
			byID[d.ID] = true
		}
		for _, d := range a.Deliveries {
			if d.Status != "dead" || !byID[d.DeadID] {
				t.Fatalf("delivery %+v, want dead naming its dead letter", d)
			}
		}
		// Time filters.
		var page deadLetterPage
		h.must(http.StatusOK, "GET", "/v1/dead-letters?since="+time.Now().Add(time.Hour).UTC().Format(time.RFC3339), nil, &page)
		if len(page.DeadLetters) != 0 {
			t.Fatalf("since the future: %d dead letters", len(page.DeadLetters))
		}
		h.must(http.StatusOK, "GET", "/v1/dead-letters?channel=webhook&until="+time.Now().Add(time.Hour).UTC().Format(time.RFC3339), nil, &page)
		if len(page.DeadLetters) != len(users) {
			t.Fatalf("until the future: %d dead letters, want %d", len(page.DeadLetters), len(users))
		}
		hook.SetStatus(http.StatusOK, "")
		// Replay one by id, the rest by filter.
		h.must(http.StatusAccepted, "POST", "/v1/dead-letters/"+dls[0].ID+"/replay", nil, nil)
		var bulk struct {
			Replayed int `json:"replayed"`
		}
		h.must(http.StatusOK, "POST", "/v1/dead-letters/replay", map[string]any{"alertId": id}, &bulk)
		if bulk.Replayed != len(users)-1 {
			t.Fatalf("bulk replay replayed %d, want %d", bulk.Replayed, len(users)-1)
		}
		a = h.waitAlert(id, func(a *alertOut) bool {
			for _, d := range a.Deliveries {
				if d.Status != "sent" {
					return false
				}
			}
			return true
		})
		for _, d := range a.Deliveries {
			if hook.Count(d.ID) != 1 {
				t.Errorf("replayed delivery %s received %d times, want once with the same id", d.ID, hook.Count(d.ID))
			}
		}
		// Replaying again is refused: the deliveries are sent.
		code, raw := h.do("POST", "/v1/dead-letters/"+dls[0].ID+"/replay", nil, nil)
		if code != http.StatusConflict {
			t.Fatalf("second replay: %d %s, want 409", code, raw)
		}
	})
}

func (h *instance) deadLetter(id string) deadLetterOut {
	h.t.Helper()
	var d deadLetterOut
	h.must(http.StatusOK, "GET", "/v1/dead-letters/"+id, nil, &d)
	return d
}

func countStatus(r *webhooktest.Receiver, code int) int {
	n := 0
	for _, q := range r.Received() {
		if q.Status == code {
			n++
		}
	}
	return n
}

// Test429: a 429 with Retry-After: 2 means no request reaches that endpoint
// before 2s have passed, for this delivery or any other.
func Test429(t *testing.T) {
	hook := webhooktest.NewReceiver()
	defer hook.Close()
	h := start(t, testConfig(t, t.TempDir(), "HERALD_RETRY_DELAYS=100ms"))
	h.createUser(map[string]any{"name": "alice", "webhookUrl": hook.URL()})
	h.createUser(map[string]any{"name": "bob", "webhookUrl": hook.URL() + "/bob"})
	hook.FailNext(1, http.StatusTooManyRequests, "2")
	first := h.sendAlert(map[string]any{"target": []string{"@alice"}, "severity": "error", "message": "one"})
	deadline := time.Now().Add(10 * time.Second)
	for len(hook.Received()) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	// While the endpoint is holding us off, more alerts to it must wait too.
	second := h.sendAlert(map[string]any{"target": []string{"@bob"}, "severity": "error", "message": "two"})
	h.waitAlert(first, allFinal)
	h.waitAlert(second, allFinal)
	reqs := hook.Received()
	if reqs[0].Status != http.StatusTooManyRequests {
		t.Fatalf("first request answered %d", reqs[0].Status)
	}
	for _, r := range reqs[1:] {
		if gap := r.Received.Sub(reqs[0].Received); gap < 2*time.Second {
			t.Errorf("request for %s arrived %v after the 429, want at least 2s", r.Payload.Recipient, gap)
		}
	}
	if len(reqs) != 3 {
		t.Errorf("requests = %d, want 3 (429, then one per delivery)", len(reqs))
	}
}

// TestPermanentFailures: 400/404/410 from a webhook and a rejected SMTP
// recipient go straight to the DLQ after one attempt, with the reason.
func TestPermanentFailures(t *testing.T) {
	hook := webhooktest.NewReceiver()
	defer hook.Close()
	mail := smtptest.NewServer(smtptest.Options{})
	defer mail.Close()
	mail.RejectRecipient("gone@example.com")
	h := start(t, testConfig(t, t.TempDir(), "HERALD_EMAIL_HOST="+mail.Host(),
		"HERALD_EMAIL_PORT="+strconv.Itoa(mail.Port()), "HERALD_EMAIL_FROM=herald@example.com", "HERALD_EMAIL_TLS=none"))
	h.createUser(map[string]any{"name": "alice", "webhookUrl": hook.URL()})
	h.createUser(map[string]any{"name": "gone", "email": "gone@example.com"})

	for _, code := range []int{400, 404, 410} {
		hook.FailNext(1, code, "")
		id := h.sendAlert(map[string]any{"target": []string{"@alice"}, "severity": "error", "message": "m"})
		dls := h.waitDeadLetters("&alertId="+id, 1)
		d := h.deadLetter(dls[0].ID)
		if d.Attempts != 1 || len(d.History) != 1 || !strings.Contains(d.Reason, "HTTP "+strconv.Itoa(code)) {
			t.Errorf("HTTP %d: dead letter = %+v, want one attempt with the status as reason", code, d)
		}
		a := h.waitAlert(id, allFinal)
		if a.Deliveries[0].Status != "dead" {
			t.Errorf("HTTP %d: delivery = %+v", code, a.Deliveries[0])
		}
	}
	id := h.sendAlert(map[string]any{"target": []string{"@gone"}, "severity": "error", "message": "m"})
	dls := h.waitDeadLetters("&channel=email", 1)
	if dls[0].AlertID != id || dls[0].Attempts != 1 || !strings.Contains(dls[0].Reason, "550") {
		t.Errorf("rejected recipient: dead letter = %+v, want one attempt and the 550 reason", dls[0])
	}
}

// kafka returns a Kafka client of the server's broker, as a Kafka tool
// would be, and a context bounding what the test does with it.
func (h *instance) kafka() (*kgo.Client, context.Context) {
	h.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(h.srv.KafkaAddrs()...))
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(cl.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	h.t.Cleanup(cancel)
	return cl, ctx
}

// TestPoison produces garbage onto every Herald topic: each becomes a dead
// letter, and the pipeline keeps flowing.
func TestPoison(t *testing.T) {
	hook := webhooktest.NewReceiver()
	defer hook.Close()
	h := start(t, testConfig(t, t.TempDir()))
	h.createUser(map[string]any{"name": "alice", "webhookUrl": hook.URL()})
	cl, ctx := h.kafka()
	var recs []*kgo.Record
	topics := bus.Topics([]time.Duration{50 * time.Millisecond, 100 * time.Millisecond})
	for _, topic := range topics {
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte("x"), Value: []byte("\x00garbage on " + topic)})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	dls := h.waitDeadLetters("", len(topics))
	seen := map[string]bool{}
	for _, d := range dls {
		if d.Kind != "record" || d.Reason == "" || !strings.HasPrefix(d.Payload, "\x00garbage on ") {
			t.Errorf("dead letter = %+v", d)
		}
		seen[strings.SplitN(d.Source, "/", 2)[0]] = true
	}
	for _, topic := range topics {
		if !seen[topic] {
			t.Errorf("garbage on %s did not become a dead letter", topic)
		}
	}
	// A bulk replay says which it skipped because they have nowhere to go
	// back to: the DLQ's and the retry tiers'.
	var bulk struct{ Replayed, Skipped, NotReplayable int }
	h.must(http.StatusOK, "POST", "/v1/dead-letters/replay", map[string]any{}, &bulk)
	notReplayable := 0
	for _, topic := range topics {
		if topic == bus.TopicDLQ || strings.HasPrefix(topic, "herald.retry.") {
			notReplayable++
		}
	}
	if bulk.NotReplayable != notReplayable || bulk.Skipped != notReplayable || bulk.Replayed != len(topics)-notReplayable {
		t.Errorf("bulk replay %+v, want %d not replayable (and skipped), %d replayed", bulk, notReplayable, len(topics)-notReplayable)
	}
	// Garbage replayed is garbage again: new dead letters, behind the
	// oldest ones that cannot be replayed. A bulk replay of one pages past
	// those to the first it can replay.
	h.waitDeadLetters("", len(topics)+bulk.Replayed)
	var one struct{ Replayed, Skipped, NotReplayable int }
	h.must(http.StatusOK, "POST", "/v1/dead-letters/replay", map[string]any{"limit": 1}, &one)
	if one.Replayed != 1 || one.NotReplayable != notReplayable {
		t.Errorf("bulk replay of one %+v, want 1 replayed past %d not replayable", one, notReplayable)
	}
	// One that cannot be replayed is discarded instead.
	var dlq string
	for _, d := range dls {
		if strings.HasPrefix(d.Source, bus.TopicDLQ+"/") {
			dlq = d.ID
		}
	}
	if code, raw := h.do("DELETE", "/v1/dead-letters/"+dlq, nil, nil); code != http.StatusNoContent {
		t.Fatalf("DELETE /v1/dead-letters/%s = %d: %s", dlq, code, raw)
	}
	if code, _ := h.do("GET", "/v1/dead-letters/"+dlq, nil, nil); code != http.StatusNotFound {
		t.Errorf("GET a discarded dead letter = %d, want 404", code)
	}
	if code, _ := h.do("DELETE", "/v1/dead-letters/"+dlq, nil, nil); code != http.StatusNotFound {
		t.Errorf("DELETE it again = %d, want 404", code)
	}
	id := h.sendAlert(map[string]any{"target": []string{"@alice"}, "severity": "info", "message": "still flowing"})
	if a := h.waitAlert(id, allFinal); a.Deliveries[0].Status != "sent" {
		t.Fatalf("after the garbage: %+v", a.Deliveries)
	}
}

// TestIdempotentIngest: the same Idempotency-Key returns the first alert's
// id and creates nothing new; the key reused for a different alert is a 422
// naming what differs, and nothing is lost or sent twice.
func TestIdempotentIngest(t *testing.T) {
	hook := webhooktest.NewReceiver()
	defer hook.Close()
	h := start(t, testConfig(t, t.TempDir()))
	h.createUser(map[string]any{"name": "alice", "webhookUrl": hook.URL()})
	const first = `{"target":["@alice"],"severity":"error","message":"m","labels":{"a":"1","b":"2"}}`
	postBody := func(key, body string) (int, string, string, string) {
		req, _ := http.NewRequest("POST", h.base+"/v1/alerts", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var out idOut
		if resp.StatusCode == http.StatusAccepted {
			if err := json.Unmarshal(raw, &out); err != nil {
				t.Fatal(err)
			}
		}
		return resp.StatusCode, out.ID, resp.Header.Get("Idempotent-Replayed"), string(raw)
	}
	post := func(key, body string) (string, string) {
		t.Helper()
		code, id, replayed, raw := postBody(key, body)
		if code != http.StatusAccepted {
			t.Fatalf("POST /v1/alerts (key %s) = %d: %s", key, code, raw)
		}
		return id, replayed
	}
	a1, _ := post("order-42", first)
	a2, _ := post("order-42", first) // possibly before fan-out recorded the first
	h.waitAlert(a1, allFinal)
	a3, replayed := post("order-42", first)
	// A retry is the same alert however its JSON is spelled: labels in
	// another order, a severity alias, spaces around a target, a target
	// twice.
	a4, replayed4 := post("order-42", `{"labels":{"b":"2","a":"1"},"message":"m","severity":"ERROR","target":[" @alice ","@alice"]}`)
	b, _ := post("order-43", first)
	if a1 != a2 || a1 != a3 || a1 != a4 || replayed != "true" || replayed4 != "true" || b == a1 {
		t.Fatalf("ids %s %s %s %s (replayed %q %q), other key %s", a1, a2, a3, a4, replayed, replayed4, b)
	}
	// Another alert with a used key would be taken for a retry and never
	// sent: it is refused, without saying which field differs.
	for body, field := range map[string]string{
		`{"target":["@alice"],"severity":"error","message":"m2","labels":{"a":"1","b":"2"}}`:            "message",
		`{"target":["@alice"],"severity":"critical","message":"m","labels":{"a":"1","b":"2"}}`:          "severity",
		`{"target":["@alice"],"severity":"error","message":"m","labels":{"a":"1"}}`:                     "labels",
		`{"target":["@alice"],"severity":"error","message":"m","labels":{"a":"1","b":"2"},"title":"t"}`: "title",
	} {
		code, _, _, raw := postBody("order-42", body)
		if code != http.StatusUnprocessableEntity || !strings.Contains(raw, "header.Idempotency-Key") ||
			!strings.Contains(raw, a1) {
			t.Errorf("key reused with another %s: %d %s; want 422 naming the header and %s", field, code, raw, a1)
		}
	}
	h.waitAlert(b, allFinal)
	time.Sleep(200 * time.Millisecond)
	var list struct {
		Alerts []alertOut `json:"alerts"`
	}
	h.must(http.StatusOK, "GET", "/v1/alerts", nil, &list)
	if len(list.Alerts) != 2 || hook.Unique() != 2 || hook.Duplicates() != 0 {
		t.Fatalf("alerts %d, receiver %d unique %d duplicates; want 2, 2, 0", len(list.Alerts), hook.Unique(), hook.Duplicates())
	}
}

// TestDrainDelay checks that once told to stop, the API keeps its listener
// open for http.drainDelay, answering ingest and /readyz with 503 (so a
// client or load balancer learns to go elsewhere) before it closes.
func TestDrainDelay(t *testing.T) {
	h := start(t, testConfig(t, t.TempDir(), "HERALD_HTTP_DRAIN_DELAY=2s"))
	h.createUser(map[string]any{"name": "a", "webhookUrl": "http://127.0.0.1:1/hook"})
	srv := h.srv
	h.srv = nil // closed here
	closed := make(chan error, 1)
	began := time.Now()
	go func() { closed <- srv.Close(context.Background()) }()
	var ingest, ready int
	for deadline := time.Now().Add(1500 * time.Millisecond); time.Now().Before(deadline) && (ingest != 503 || ready != 503); {
		ingest, _ = h.do("POST", "/v1/alerts", map[string]any{"target": []string{"@a"}, "severity": "info", "message": "m"}, nil)
		ready, _ = h.do("GET", "/readyz", nil, nil)
		time.Sleep(20 * time.Millisecond)
	}
	if ingest != 503 || ready != 503 {
		t.Fatalf("while draining: POST /v1/alerts %d, /readyz %d; want 503 and 503", ingest, ready)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took < 2*time.Second {
		t.Errorf("Close took %s, want at least the 2s drain delay", took)
	}
}

// TestBreakerPerURL checks one failing path of a receiver that serves many
// (a multi-tenant endpoint) opens its own breaker only: another path on the
// same host is still sent to at once.
func TestBreakerPerURL(t *testing.T) {
	var bad, good atomic.Int64
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/bad" {
			bad.Add(1)
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		good.Add(1)
	}))
	defer recv.Close()
	h := start(t, testConfig(t, t.TempDir(), "HERALD_BREAKER_FAILURES=2", "HERALD_RETRY_DELAYS=10s"))
	h.createUser(map[string]any{"name": "bad", "webhookUrl": recv.URL + "/bad"})
	h.createUser(map[string]any{"name": "good", "webhookUrl": recv.URL + "/good"})
	for i := range 2 {
		h.sendAlert(map[string]any{"target": []string{"@bad"}, "severity": "error", "message": fmt.Sprint("fails ", i)})
	}
	for deadline := time.Now().Add(10 * time.Second); bad.Load() < 2; {
		if time.Now().After(deadline) {
			t.Fatalf("the failing path got %d requests, want 2", bad.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The failing URL's breaker is open now (2 failures in a row).
	began := time.Now()
	id := h.sendAlert(map[string]any{"target": []string{"@good"}, "severity": "error", "message": "gets through"})
	a := h.waitAlert(id, allFinal)
	if len(a.Deliveries) != 1 || a.Deliveries[0].Status != "sent" || good.Load() != 1 {
		t.Fatalf("the healthy path's delivery: %+v (%d requests), want sent", a.Deliveries, good.Load())
	}
	if took := time.Since(began); took > 10*time.Second {
		t.Fatalf("the healthy path's delivery took %s: held up by the other path's breaker (open 30s)", took)
	}
}

// TestAlertRetention checks alerts.retention from outside: a sent alert is
// gone (404, and out of the list) once it is older than the retention, while
// one whose delivery is still being retried stays however old it gets.
func TestAlertRetention(t *testing.T) {
	hook := webhooktest.NewReceiver()
	defer hook.Close()
	var failing atomic.Int64
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		failing.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer down.Close()
	cfg := testConfig(t, t.TempDir(), "HERALD_RETRY_DELAYS=1m", "HERALD_RETRY_MAX_ATTEMPTS=2")
	// Far below the floor config.Load enforces (cache.sentTTL and
	// kafka.retention, 168h), set directly to see a prune within seconds.
	cfg.Alerts.Retention = 2 * time.Second
	h := start(t, cfg)
	h.createUser(map[string]any{"name": "up", "webhookUrl": hook.URL()})
	h.createUser(map[string]any{"name": "down", "webhookUrl": down.URL})
	sent := h.sendAlert(map[string]any{"target": []string{"@up"}, "severity": "info", "message": "kept 2s"})
	retrying := h.sendAlert(map[string]any{"target": []string{"@down"}, "severity": "info", "message": "waits a minute to retry"})
	h.waitAlert(sent, allFinal)
	h.waitAlert(retrying, func(a *alertOut) bool { return len(a.Deliveries) == 1 && a.Deliveries[0].Status == "failed" })
	for deadline := time.Now().Add(15 * time.Second); ; {
		code, _ := h.do("GET", "/v1/alerts/"+sent, nil, nil)
		if code == http.StatusNotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /v1/alerts/%s = %d 15s after it was sent; want 404 (alerts.retention 2s)", sent, code)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var list struct {
		Alerts []alertOut `json:"alerts"`
	}
	h.must(http.StatusOK, "GET", "/v1/alerts", nil, &list)
	if len(list.Alerts) != 1 || list.Alerts[0].ID != retrying {
		t.Fatalf("alerts listed after pruning: %+v; want only the one still being retried", list.Alerts)
	}
	if a := h.waitAlert(retrying, func(*alertOut) bool { return true }); a.Deliveries[0].Status != "failed" {
		t.Fatalf("the retried alert's delivery: %+v", a.Deliveries)
	}
}

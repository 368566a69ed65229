package server_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/heraldproject/herald/notify/webhook/webhooktest"
)

// amPayload is an Alertmanager webhook payload as Alertmanager 0.25 posts it:
// one group with two firing alerts and one resolved.
const amPayload = `{
  "receiver": "herald",
  "status": "firing",
  "alerts": [
    {
      "status": "firing",
      "labels": {"alertname": "HighErrorRate", "job": "checkout", "instance": "checkout-1:8080", "severity": "critical"},
      "annotations": {"summary": "checkout 5xx above 5%", "description": "checkout-1 answers 12% of requests with 5xx"},
      "startsAt": "2026-03-01T10:02:13.512Z",
      "endsAt": "0001-01-01T00:00:00Z",
      "generatorURL": "http://prometheus:9090/graph?g0.expr=job%3Acheckout%3A5xx_ratio+%3E+0.05\u0026g0.tab=1",
      "fingerprint": "5c0f7b0e8a3d2f11"
    },
    {
      "status": "firing",
      "labels": {"alertname": "HighLatency", "job": "checkout", "instance": "checkout-2:8080", "severity": "warning"},
      "annotations": {"summary": "checkout p99 above 1s"},
      "startsAt": "2026-03-01T10:03:43Z",
      "endsAt": "0001-01-01T00:00:00Z",
      "generatorURL": "http://prometheus:9090/graph?g0.expr=up",
      "fingerprint": "9e11d0c2b7a4f380"
    },
    {
      "status": "resolved",
      "labels": {"alertname": "InstanceDown", "job": "checkout", "instance": "checkout-3:8080", "severity": "page"},
      "annotations": {"summary": "checkout-3 is down", "description": "checkout-3 did not answer scrapes for 5m"},
      "startsAt": "2026-03-01T09:40:00Z",
      "endsAt": "2026-03-01T10:01:00Z",
      "generatorURL": "http://prometheus:9090/graph?g0.expr=up+%3D%3D+0",
      "fingerprint": "27d4c1e09f5ab6c2"
    }
  ],
  "groupLabels": {"job": "checkout"},
  "commonLabels": {"job": "checkout"},
  "commonAnnotations": {},
  "externalURL": "http://alertmanager:9093",
  "version": "4",
  "groupKey": "{}:{job=\"checkout\"}",
  "truncatedAlerts": 0
}`

type amAccepted struct {
	Accepted int `json:"accepted"`
	Ignored  int `json:"ignored"`
	Alerts   []struct {
		ID          string `json:"id"`
		Fingerprint string `json:"fingerprint"`
		Status      string `json:"status"`
		UserCount   int    `json:"userCount"`
		Replayed    bool   `json:"replayed"`
	} `json:"alerts"`
}

// received lists what the receiver got as "recipient|severity|title",
// sorted.
func received(hook *webhooktest.Receiver) []string {
	var out []string
	for _, r := range hook.Received() {
		out = append(out, r.Payload.Recipient+"|"+r.Payload.Severity+"|"+r.Payload.Title)
	}
	slices.Sort(out)
	return out
}

// TestAlertmanagerWebhook posts a realistic Alertmanager payload to a full
// Herald (embedded broker, SQLite, real webhook deliveries): each alert
// reaches everyone in the target group with the right title and severity;
// the same payload again (Alertmanager's retry or repeat) notifies nobody;
// the resolved alert firing again notifies; resolved=ignore drops resolved
// alerts and counts them; alertmanager.maxAlerts bounds a payload.
func TestAlertmanagerWebhook(t *testing.T) {
	hook := webhooktest.NewReceiver()
	defer hook.Close()
	h := start(t, testConfig(t, t.TempDir(), "HERALD_ALERTMANAGER_MAX_ALERTS=3"))
	alice := h.createUser(map[string]any{"name": "alice", "webhookUrl": hook.URL()})
	bob := h.createUser(map[string]any{"name": "bob", "webhookUrl": hook.URL()})
	h.createGroup("oncall", alice, bob)

	const path = "/v1/integrations/alertmanager?target=@@oncall"
	var acc amAccepted
	h.must(http.StatusAccepted, "POST", path, amPayload, &acc)
	if acc.Accepted != 3 || acc.Ignored != 0 || len(acc.Alerts) != 3 {
		t.Fatalf("accepted = %+v", acc)
	}
	for _, a := range acc.Alerts {
		if a.ID == "" || a.UserCount != 2 || a.Replayed {
			t.Fatalf("accepted alert = %+v", a)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := hook.WaitFor(ctx, 6); err != nil {
		t.Fatal(err)
	}
	for _, a := range acc.Alerts {
		h.waitAlert(a.ID, allFinal)
	}
	want := []string{
		"alice|critical|checkout 5xx above 5%", "alice|info|[RESOLVED] checkout-3 is down", "alice|warning|checkout p99 above 1s",
		"bob|critical|checkout 5xx above 5%", "bob|info|[RESOLVED] checkout-3 is down", "bob|warning|checkout p99 above 1s",
	}
	if got := received(hook); !slices.Equal(got, want) {
		t.Fatalf("received:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, r := range hook.Received() {
		p := r.Payload
		if p.Source != "alertmanager" || p.Labels["job"] != "checkout" || p.Labels["generatorURL"] == "" {
			t.Errorf("delivery = %+v", p)
		}
		if p.Severity == "critical" && p.Message != "checkout-1 answers 12% of requests with 5xx" {
			t.Errorf("message = %q", p.Message)
		}
	}

	// Alertmanager sends the same payload again (a retry, or the next
	// repeat_interval): same ids, nobody told twice.
	var again amAccepted
	h.must(http.StatusAccepted, "POST", path, amPayload, &again)
	for i, a := range again.Alerts {
		if !a.Replayed || a.ID != acc.Alerts[i].ID || a.UserCount != 2 {
			t.Errorf("repeat %d = %+v, want replayed %s", i, a, acc.Alerts[i].ID)
		}
	}

	// The resolved alert fires again (a new start): a new alert.
	refire := strings.Replace(amPayload, `"status": "resolved"`, `"status": "firing"`, 1)
	refire = strings.Replace(refire, `"2026-03-01T09:40:00Z"`, `"2026-03-01T11:00:00Z"`, 1)
	var re amAccepted
	h.must(http.StatusAccepted, "POST", path, refire, &re)
	if re.Alerts[2].Replayed || re.Alerts[2].ID == acc.Alerts[2].ID || !re.Alerts[0].Replayed || !re.Alerts[1].Replayed {
		t.Fatalf("fired again = %+v", re)
	}
	if err := hook.WaitFor(ctx, 8); err != nil {
		t.Fatal(err)
	}
	h.waitAlert(re.Alerts[2].ID, allFinal)

	// resolved=ignore: a resolved alert not seen before is dropped, and
	// counted.
	resolvedOnly := `{"version":"4","status":"resolved","alerts":[{"status":"resolved","labels":{"alertname":"Gone"},` +
		`"startsAt":"2026-03-01T08:00:00Z","endsAt":"2026-03-01T08:05:00Z","fingerprint":"00000000000000aa"}]}`
	var ign amAccepted
	h.must(http.StatusAccepted, "POST", path+"&resolved=ignore", resolvedOnly, &ign)
	if ign.Accepted != 0 || ign.Ignored != 1 || len(ign.Alerts) != 0 {
		t.Fatalf("resolved=ignore = %+v", ign)
	}

	// alertmanager.maxAlerts=3: a fourth alert makes the payload too large.
	four := strings.Replace(amPayload, `"alerts": [`, `"alerts": [{"status":"firing","labels":{"alertname":"X"},"startsAt":"2026-03-01T10:00:00Z"},`, 1)
	if raw := h.must(http.StatusRequestEntityTooLarge, "POST", path, four, nil); !strings.Contains(string(raw), "the limit is 3") {
		t.Errorf("4 alerts: %s", raw)
	}

	time.Sleep(300 * time.Millisecond) // time for anything unexpected to arrive
	if n := len(hook.Received()); n != 8 || hook.Duplicates() != 0 {
		t.Fatalf("%d webhook requests (%d duplicates), want 8: %s", n, hook.Duplicates(), strings.Join(received(hook), "\n"))
	}
	refired := received(hook)
	if !slices.Contains(refired, "alice|critical|checkout-3 is down") || !slices.Contains(refired, "bob|critical|checkout-3 is down") {
		t.Errorf("received %v, want checkout-3 down again for alice and bob", refired)
	}
	var stored struct {
		Source string            `json:"source"`
		Labels map[string]string `json:"labels"`
		Target []string          `json:"target"`
	}
	h.must(http.StatusOK, "GET", "/v1/alerts/"+acc.Alerts[0].ID, nil, &stored)
	if stored.Source != "alertmanager" || stored.Labels["generatorURL"] == "" || len(stored.Target) != 1 || stored.Target[0] != "@@oncall" {
		t.Errorf("stored alert = %+v", stored)
	}
	fmt.Fprintln(testOut(t), "alertmanager: 3 alerts × 2 users delivered once; repeat absorbed; re-fire delivered")
}

// TestAlertmanagerLabelTarget: without ?target, each alert's herald_target
// label says who is told.
func TestAlertmanagerLabelTarget(t *testing.T) {
	hook := webhooktest.NewReceiver()
	defer hook.Close()
	h := start(t, testConfig(t, t.TempDir()))
	h.createUser(map[string]any{"name": "alice", "webhookUrl": hook.URL()})
	h.createUser(map[string]any{"name": "bob", "webhookUrl": hook.URL()})
	body := strings.Replace(amPayload, `"instance": "checkout-1:8080",`, `"instance": "checkout-1:8080", "herald_target": "@alice",`, 1)
	body = strings.Replace(body, `"instance": "checkout-2:8080",`, `"instance": "checkout-2:8080", "herald_target": "@bob",`, 1)
	body = strings.Replace(body, `"instance": "checkout-3:8080",`, `"instance": "checkout-3:8080", "herald_target": "@alice,@bob",`, 1)
	var acc amAccepted
	h.must(http.StatusAccepted, "POST", "/v1/integrations/alertmanager", body, &acc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := hook.WaitFor(ctx, 4); err != nil {
		t.Fatal(err)
	}
	for _, a := range acc.Alerts {
		h.waitAlert(a.ID, allFinal)
	}
	want := []string{"alice|critical|checkout 5xx above 5%", "alice|info|[RESOLVED] checkout-3 is down",
		"bob|info|[RESOLVED] checkout-3 is down", "bob|warning|checkout p99 above 1s"}
	if got := received(hook); !slices.Equal(got, want) {
		t.Fatalf("received %v, want %v", got, want)
	}
}

// TestAlertmanagerBadInput: bad payloads are 4xx problems naming the field,
// and nothing of a rejected payload is produced — not even its good alerts.
func TestAlertmanagerBadInput(t *testing.T) {
	h := start(t, testConfig(t, t.TempDir()))
	h.createUser(map[string]any{"name": "alice", "webhookUrl": "http://127.0.0.1:1/hook"})

	alert := func(i int) string {
		return fmt.Sprintf(`{"status":"firing","labels":{"alertname":"A%d"},"startsAt":"2026-03-01T10:00:00Z","fingerprint":"%016x"}`, i, i)
	}
	alerts := func(n int, bad string) string {
		var as []string
		for i := range n {
			as = append(as, alert(i))
		}
		if bad != "" {
			as[7] = bad
		}
		return `{"version":"4","alerts":[` + strings.Join(as, ",") + `]}`
	}
	const am = "/v1/integrations/alertmanager"
	cases := []struct {
		name, path, body string
		status           int
		mention          string
	}{
		{"malformed json", am + "?target=@alice", `{"alerts":[`, 400, "unexpected end of JSON"},
		{"empty body", am + "?target=@alice", ``, 400, "body"},
		{"missing alerts", am + "?target=@alice", `{"version":"4","receiver":"herald"}`, 422, "alerts"},
		{"no alerts", am + "?target=@alice", `{"version":"4","alerts":[]}`, 422, "body.alerts"},
		{"alerts wrong type", am + "?target=@alice", `{"alerts":"all of them"}`, 422, "expected array"},
		{"version", am + "?target=@alice", `{"version":"3","alerts":[` + alert(0) + `]}`, 422, "body.version"},
		{"labels wrong type at 7", am + "?target=@alice", alerts(10, `{"status":"firing","labels":["a"],"startsAt":"2026-03-01T10:00:00Z"}`), 422, "body.alerts[7].labels"},
		{"status wrong at 7", am + "?target=@alice", alerts(10, `{"status":"active","labels":{"alertname":"A"},"startsAt":"2026-03-01T10:00:00Z"}`), 422, "body.alerts[7].status"},
		{"startsAt wrong type at 7", am + "?target=@alice", alerts(10, `{"status":"firing","labels":{"alertname":"A"},"startsAt":1740000000}`), 422, "body.alerts[7].startsAt"},
		{"1001 alerts", am + "?target=@alice", alerts(1001, ""), 413, "body.alerts"},
		{"no target", am, alerts(10, ""), 422, "herald_target"},
		{"no target at 7", am, strings.ReplaceAll(alerts(10, `{"status":"firing","labels":{"job":"x","alertname":"A"},"startsAt":"2026-03-01T10:00:00Z"}`),
			`{"alertname":"A`, `{"herald_target":"@alice","alertname":"A`), 422, "body.alerts[7].labels.herald_target"},
		{"unknown target", am + "?target=@alice&target=@@ghosts", alerts(10, ""), 422, "@@ghosts"},
		{"unknown label target at 7", am, strings.ReplaceAll(alerts(10, `{"status":"firing","labels":{"job":"x","herald_target":"@carol","alertname":"A"},"startsAt":"2026-03-01T10:00:00Z"}`),
			`{"alertname":"A`, `{"herald_target":"@alice","alertname":"A`), 422, "@carol"},
		{"bad target", am + "?target=alice", alerts(10, ""), 422, "@user or @@group"},
		{"bad resolved", am + "?target=@alice&resolved=sometimes", alerts(10, ""), 422, "query.resolved"},
		{"invalid utf-8", am + "?target=@alice", alerts(10, `{"status":"firing","labels":{"alertname":"`+"\xff\xfe"+`"},"startsAt":"2026-03-01T10:00:00Z"}`), 400, "UTF-8"},
		{"oversized", am + "?target=@alice", `{"alerts":[{"status":"firing","labels":{"alertname":"` + strings.Repeat("x", 1<<20) + `"}}]}`, 413, "too large"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest("POST", h.base+tc.path, bytes.NewReader([]byte(tc.body)))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			raw := expectProblem(t, req, tc.status)
			if !strings.Contains(string(raw), tc.mention) {
				t.Errorf("problem does not mention %q: %s", tc.mention, truncate(raw))
			}
		})
	}

	// Nothing rejected was produced: after a valid alert has gone all the
	// way through, it is the only alert Herald has recorded.
	var acc idOut
	h.must(http.StatusAccepted, "POST", "/v1/alerts", map[string]any{"target": []string{"@alice"}, "severity": "info", "message": "ok"}, &acc)
	h.waitAlert(acc.ID, func(*alertOut) bool { return true })
	time.Sleep(200 * time.Millisecond)
	var list struct {
		Alerts []alertOut `json:"alerts"`
	}
	h.must(http.StatusOK, "GET", "/v1/alerts", nil, &list)
	if len(list.Alerts) != 1 || list.Alerts[0].ID != acc.ID {
		t.Fatalf("alerts recorded = %+v, want only %s", list.Alerts, acc.ID)
	}
}

package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldproject/herald/notify/webhook/webhooktest"
)

// TestLogRulesEndToEnd: an error loop of 50 identical lines pages once (a
// windowed rule deduped by service) and the 49 others are counted as
// suppressed; a rule without a window alerts once per matching line; lines
// no rule matches tell nobody.
func TestLogRulesEndToEnd(t *testing.T) {
	hook := webhooktest.NewReceiver()
	defer hook.Close()
	h := start(t, testConfig(t, t.TempDir()))
	h.createUser(map[string]any{"name": "alice", "webhookUrl": hook.BaseURL() + "/alice"})
	h.createUser(map[string]any{"name": "bob", "webhookUrl": hook.BaseURL() + "/bob"})

	var storm struct {
		ID     string `json:"id"`
		Window string `json:"window"`
		Source string `json:"source"`
	}
	h.must(http.StatusCreated, "POST", "/v1/rules", map[string]any{
		"name": "checkout-errors", "source": "log", "match": `service == "checkout" && levelRank >= 3`,
		"targets": []string{"@alice"}, "severity": "error", "window": "1m", "dedupeKey": "{{.service}}",
		"title":   "{{.service}} is logging {{.level}}s",
		"message": "{{.message}} (order {{.attributes.order}})",
		"example": map[string]any{"service": "checkout", "level": "error", "message": "boom", "attributes": map[string]string{"order": "A-1"}},
	}, &storm)
	if storm.Window != "1m0s" || storm.Source != "log" {
		t.Fatalf("created rule %+v", storm)
	}
	h.must(http.StatusCreated, "POST", "/v1/rules", map[string]any{
		"name": "billing-critical", "source": "log", "match": `service == "billing" && level == "critical"`,
		"targets": []string{"@bob"}, "severity": "critical", "title": "billing: {{.message}}", "message": "{{.message}}",
	}, nil)

	var lines []string
	// 50 lines within one minute bucket, in the past (future times are
	// bucketed at now).
	base := time.Now().UTC().Truncate(time.Minute).Add(-10*time.Minute + 10*time.Second)
	for i := range 50 {
		lines = append(lines, fmt.Sprintf(`{"time":%q,"service":"checkout","level":"error","message":"payment gateway timeout","attributes":{"order":"A-%d"}}`,
			base.Add(time.Duration(i)*100*time.Millisecond).Format(time.RFC3339Nano), i))
	}
	for i := range 10 {
		lines = append(lines, fmt.Sprintf(`{"time":%q,"service":"checkout","level":"warn","message":"slow payment %d"}`, base.Format(time.RFC3339Nano), i),
			fmt.Sprintf(`{"time":%q,"service":"search","level":"error","message":"index lag %d"}`, base.Format(time.RFC3339Nano), i))
	}
	for i := range 3 {
		lines = append(lines, fmt.Sprintf(`{"time":%q,"service":"billing","level":"fatal","message":"ledger mismatch %d"}`, base.Format(time.RFC3339Nano), i))
	}
	code, _, raw := h.post("/v1/logs", []byte(strings.Join(lines, "\n")), "Content-Type", "application/x-ndjson")
	if code != http.StatusAccepted {
		t.Fatalf("POST /v1/logs: %d %s", code, raw)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := hook.WaitFor(ctx, 4); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // a storm that got through would arrive now
	got := map[string][]webhooktest.Request{}
	for _, r := range hook.Received() {
		got[r.Path] = append(got[r.Path], r)
	}
	if len(got["/alice"]) != 1 || len(got["/bob"]) != 3 || len(hook.Received()) != 4 {
		t.Fatalf("webhooks: %d to alice, %d to bob, %d in all; want 1, 3, 4", len(got["/alice"]), len(got["/bob"]), len(hook.Received()))
	}
	a := got["/alice"][0].Payload
	if a.Title != "checkout is logging errors" || a.Message != "payment gateway timeout (order A-0)" || a.Severity != "error" ||
		a.Labels["rule"] != "checkout-errors" || a.Labels["service"] != "checkout" || a.Labels["level"] != "error" ||
		a.Labels["log_id"] == "" || a.Source != "checkout" {
		t.Fatalf("storm notification %+v", a)
	}
	titles := map[string]bool{}
	for _, r := range got["/bob"] {
		titles[r.Payload.Title] = true
	}
	if len(titles) != 3 || !titles["billing: ledger mismatch 0"] {
		t.Fatalf("billing titles %v", titles)
	}
	fams, _ := h.scrape()
	if n, _ := value(fams, "herald_log_rule_suppressed_total", map[string]string{"rule": "checkout-errors"}); n != 49 {
		t.Fatalf("suppressed checkout-errors matches = %v, want 49", n)
	}
	if n, _ := value(fams, "herald_log_rule_suppressed_total", map[string]string{"rule": "billing-critical"}); n != 0 {
		t.Fatalf("suppressed billing-critical matches = %v, want 0", n)
	}

	// The same storm a minute later (the next window) pages once more.
	lines = lines[:0]
	for i := range 5 {
		lines = append(lines, fmt.Sprintf(`{"time":%q,"service":"checkout","level":"error","message":"payment gateway timeout","attributes":{"order":"B-%d"}}`,
			base.Add(time.Minute+time.Duration(i)*time.Second).Format(time.RFC3339Nano), i))
	}
	if code, _, raw := h.post("/v1/logs", []byte(strings.Join(lines, "\n")), "Content-Type", "application/x-ndjson"); code != http.StatusAccepted {
		t.Fatalf("POST /v1/logs: %d %s", code, raw)
	}
	if err := hook.WaitFor(ctx, 5); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	all := hook.Received()
	if len(all) != 5 {
		t.Fatalf("%d webhooks after the next window's storm, want 5", len(all))
	}
	// The next window's alert says how many lines the first one stood for.
	next := all[len(all)-1].Payload
	if want := "payment gateway timeout (order B-0)\n\n(49 more matching lines since " + base.Format(time.RFC3339) + " not alerted on: " +
		"rule checkout-errors alerts once per 1m0s per dedupe key.)"; next.Message != want {
		t.Fatalf("next window's message %q, want %q", next.Message, want)
	}
	fams, _ = h.scrape()
	if n, _ := value(fams, "herald_log_rule_suppressed_total", map[string]string{"rule": "checkout-errors"}); n != 53 {
		t.Fatalf("suppressed checkout-errors matches = %v, want 53", n)
	}
}

// TestLogRuleDryRunAndRefusals: POST /v1/rules/test tries a log record;
// bad windows and log examples are 422s naming the field.
func TestLogRuleDryRunAndRefusals(t *testing.T) {
	h := start(t, testConfig(t, t.TempDir()))
	h.createUser(map[string]any{"name": "alice", "webhookUrl": "https://hooks.example.com/alice"})
	rule := map[string]any{"name": "r", "source": "log", "match": `levelRank >= 2 && attributes.region == "kr"`,
		"targets": []string{"@alice"}, "severity": "warning", "title": "{{.service}}: {{.message}}", "message": "{{.message}}",
		"dedupeKey": "{{.service}}", "window": "5m"}
	var out struct {
		Results []struct {
			Matched bool   `json:"matched"`
			Error   string `json:"error"`
			Alert   *struct {
				Title  string            `json:"title"`
				Labels map[string]string `json:"labels"`
			} `json:"alert"`
		} `json:"results"`
		Unmatched int `json:"unmatched"`
	}
	h.must(http.StatusOK, "POST", "/v1/rules/test", map[string]any{"source": "log", "rule": rule,
		"log": map[string]any{"service": "checkout", "level": "warn", "message": "slow", "attributes": map[string]string{"region": "kr"},
			"traceId": strings.Repeat("AB", 16)}}, &out)
	if len(out.Results) != 1 || !out.Results[0].Matched || out.Results[0].Alert.Title != "checkout: slow" ||
		out.Results[0].Alert.Labels["trace_id"] != strings.Repeat("ab", 16) {
		t.Fatalf("dry run %+v", out)
	}
	for _, c := range []struct {
		name  string
		patch map[string]any
		want  string
	}{
		{"window not a duration", map[string]any{"window": "soon"}, "body.window"},
		{"window too short", map[string]any{"window": "10ms"}, "body.window"},
		{"window too long", map[string]any{"window": "48h"}, "body.window"},
		{"window on an event rule", map[string]any{"source": "event", "match": `type == "x"`, "title": "", "message": "m", "dedupeKey": ""}, "body.window"},
		{"event field in a log rule", map[string]any{"match": `data.total > 1`}, "body.match"},
		{"bad example level", map[string]any{"example": map[string]any{"service": "s", "level": "loud"}}, "body.example.level"},
		{"example without service", map[string]any{"example": map[string]any{"message": "m"}}, "body.example.service"},
	} {
		body := map[string]any{}
		for k, v := range rule {
			body[k] = v
		}
		for k, v := range c.patch {
			body[k] = v
		}
		code, raw := h.do("POST", "/v1/rules", body, nil)
		if code != http.StatusUnprocessableEntity || !strings.Contains(string(raw), c.want) {
			t.Errorf("%s: %d %s, want 422 naming %s", c.name, code, raw, c.want)
		}
	}
	// A stored log rule's window changes with PATCH, and can be removed.
	var created struct {
		ID     string `json:"id"`
		Window string `json:"window"`
	}
	h.must(http.StatusCreated, "POST", "/v1/rules", rule, &created)
	h.must(http.StatusOK, "PATCH", "/v1/rules/"+created.ID, map[string]any{"window": "2m"}, &created)
	if created.Window != "2m0s" {
		t.Fatalf("window after PATCH %q", created.Window)
	}
	created.Window = "" // omitted when none
	h.must(http.StatusOK, "PATCH", "/v1/rules/"+created.ID, map[string]any{"window": ""}, &created)
	if created.Window != "" {
		t.Fatalf("window after removing it %q", created.Window)
	}
	if code, raw := h.do("PATCH", "/v1/rules/"+created.ID, map[string]any{"window": "1y"}, nil); code != http.StatusUnprocessableEntity ||
		!strings.Contains(string(raw), "body.window") {
		t.Fatalf("PATCH a bad window: %d %s", code, raw)
	}

	// Keys of alerts made by log rules are reserved.
	code, _, raw := h.post("/v1/alerts", []byte(`{"severity":"info","message":"m","target":["@alice"]}`),
		"Content-Type", "application/json", "Idempotency-Key", "log:pre-empt")
	if code != http.StatusUnprocessableEntity || !strings.Contains(string(raw), "log:") {
		t.Fatalf("POST /v1/alerts with a log: key: %d %s", code, raw)
	}
}

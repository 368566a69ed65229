package api_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/api"
)

func post(t *testing.T, h http.Handler, path, contentType, body string) (int, []byte) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w.Code, w.Body.Bytes()
}

type eventsAnswer struct {
	Events    int      `json:"events"`
	EventIDs  []string `json:"eventIds"`
	Unmatched int      `json:"unmatched"`
	Test      bool     `json:"test"`
	Alerts    []struct {
		ID, Rule, EventID string
		UserCount         int
		Replayed          bool
		Notes             []string
	} `json:"alerts"`
	RuleErrors []struct{ Rule, Message string } `json:"ruleErrors"`
}

func mustCreateRule(t *testing.T, h http.Handler, body string) {
	t.Helper()
	if code, raw := post(t, h, "/v1/rules", "application/json", body); code != http.StatusCreated {
		t.Fatalf("create rule: %d %s", code, raw)
	}
}

// TestEventsRules: a rule matches an event, renders the alert, targets
// resolve; a retried event produces nothing new; an unmatched event is
// counted; a failing expression is reported; a failing template falls back.
func TestEventsRules(t *testing.T) {
	h, _, rec := amServer(t)
	mustCreateRule(t, h, `{"name":"big-orders","source":"event","match":"type == \"order.created\" && data.total > 100",
		"targets":["@alice","@@oncall"],"severity":"warning","title":"Order {{.data.id}} ({{.data.total}})",
		"message":"{{.data.customer | upper}} ordered {{len .data.items}} items"}`)
	mustCreateRule(t, h, `{"name":"broken-template","source":"event","match":"type == \"order.broken\"",
		"targets":["@bob"],"severity":"error","message":"{{index .data.items 5}}"}`)
	ev := `{"id":"o-1","type":"order.created","source":"shop","data":{"id":"o-1","total":250,"customer":"carol","items":[1,2,3]}}`
	code, raw := post(t, h, "/v1/events", "application/json", ev)
	if code != http.StatusAccepted {
		t.Fatalf("status %d: %s", code, raw)
	}
	var ans eventsAnswer
	if err := json.Unmarshal(raw, &ans); err != nil {
		t.Fatal(err)
	}
	if ans.Events != 1 || ans.Unmatched != 0 || len(ans.Alerts) != 1 || ans.Alerts[0].Rule != "big-orders" ||
		ans.Alerts[0].UserCount != 2 || rec.count() != 1 {
		t.Fatalf("answer %s, %d records", raw, rec.count())
	}
	var al herald.Alert
	if err := json.Unmarshal(rec.all()[0].Value, &al); err != nil {
		t.Fatal(err)
	}
	if al.Title != "Order o-1 (250)" || al.Message != "CAROL ordered 3 items" || al.Severity != herald.SeverityWarning ||
		al.Labels["rule"] != "big-orders" || al.Labels["event_type"] != "order.created" || al.Labels["event_id"] != "o-1" ||
		al.Source != "shop" || len(al.Recipients) != 2 || al.ID != ans.Alerts[0].ID {
		t.Fatalf("alert %+v", al)
	}

	// Retried: same alert id, nothing produced. (The store has no record of
	// the first alert here — no fan-out — so the id, not a replay, shows it.)
	code, raw = post(t, h, "/v1/events", "application/json", ev)
	var again eventsAnswer
	_ = json.Unmarshal(raw, &again)
	if code != http.StatusAccepted || again.Alerts[0].ID != ans.Alerts[0].ID {
		t.Fatalf("retry: %d %s", code, raw)
	}

	// A batch: one small order (no match), one broken template (fallback),
	// one whose expression fails (string total: reported, no match).
	before := rec.count()
	code, raw = post(t, h, "/v1/events", "application/json", `[
		{"type":"order.created","data":{"total":5}},
		{"id":"b-1","type":"order.broken","data":{"items":[]}},
		{"id":"s-1","type":"order.created","data":{"total":"lots"}}]`)
	if code != http.StatusAccepted {
		t.Fatalf("batch: %d %s", code, raw)
	}
	var b eventsAnswer
	_ = json.Unmarshal(raw, &b)
	if b.Events != 3 || b.Unmatched != 2 || len(b.Alerts) != 1 || b.Alerts[0].Rule != "broken-template" ||
		len(b.Alerts[0].Notes) == 0 || len(b.RuleErrors) != 1 || b.EventIDs[0] == "" || rec.count() != before+1 {
		t.Fatalf("batch answer %s", raw)
	}
	al = herald.Alert{}
	if err := json.Unmarshal(rec.all()[before].Value, &al); err != nil {
		t.Fatal(err)
	}
	if al.Title != "broken-template" || !strings.Contains(al.Message, "template failed") {
		t.Fatalf("fallback alert %+v", al)
	}

	// CloudEvents, structured and batch.
	ce := `{"specversion":"1.0","id":"ce-1","source":"/shop","type":"order.created","time":"2026-03-01T10:00:00Z",` +
		`"datacontenttype":"application/json","data":{"id":"ce-1","total":101,"customer":"dan","items":[]}}`
	if code, raw := post(t, h, "/v1/events", "application/cloudevents+json", ce); code != http.StatusAccepted ||
		!strings.Contains(string(raw), `"rule":"big-orders"`) {
		t.Fatalf("cloudevent: %d %s", code, raw)
	}
	if code, raw := post(t, h, "/v1/events", "application/cloudevents-batch+json", "["+ce+"]"); code != http.StatusAccepted {
		t.Fatalf("cloudevents batch: %d %s", code, raw)
	}
	for _, bad := range []struct{ ct, body, mention string }{
		{"application/cloudevents+json", `{"id":"x","source":"s","type":"t"}`, "specversion"},
		{"application/cloudevents+json", `{"specversion":"0.3","id":"x","source":"s","type":"t"}`, "specversion"},
		{"application/cloudevents+json", `{"specversion":"1.0","source":"s","type":"t"}`, "id"},
		{"application/json", `{"data":{}}`, "type"},
		{"application/json", `{"type":"t","data":[1]}`, "object"},
		{"application/json", `{"type":"t","time":"yesterday"}`, "time"},
		{"application/json", `[]`, "no events"},
		{"application/json", strings.Repeat("[", 40) + strings.Repeat("]", 40), "nested"},
	} {
		code, raw := post(t, h, "/v1/events", bad.ct, bad.body)
		if code != http.StatusUnprocessableEntity || !strings.Contains(string(raw), bad.mention) {
			t.Errorf("%s %s: %d %s; want 422 naming %s", bad.ct, bad.body, code, raw, bad.mention)
		}
	}
	if code, raw := post(t, h, "/v1/events", "text/plain", `{"type":"t"}`); code != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain: %d %s", code, raw)
	}
	many := "[" + strings.TrimSuffix(strings.Repeat(`{"type":"t"},`, 101), ",") + "]"
	if code, raw := post(t, h, "/v1/events", "application/json", many); code != http.StatusRequestEntityTooLarge {
		t.Errorf("101 events: %d %s", code, raw)
	}
}

const s3Put = `{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"ap-northeast-2",
	"eventTime":"2026-03-01T10:00:00.000Z","eventName":"ObjectCreated:Put",
	"s3":{"s3SchemaVersion":"1.0","bucket":{"name":"uploads","arn":"arn:aws:s3:::uploads"},
	"object":{"key":"reports/positive/q1+summary.pdf","size":1024,"eTag":"d41d8cd98f00b204e9800998ecf8427e","sequencer":"0055AED6DCD90281E5"}}}]}`

// TestS3Notifications: records routed by key prefix, the test event, SNS
// envelopes, and the refusal of subscription confirmations.
func TestS3Notifications(t *testing.T) {
	h, _, rec := amServer(t)
	mustCreateRule(t, h, `{"name":"positive","source":"s3","match":"key startsWith \"reports/positive/\"",
		"targets":["@alice"],"severity":"info","title":"New report {{basename .key}}","message":"s3://{{.bucket}}/{{.key}} ({{.size}} bytes)"}`)
	mustCreateRule(t, h, `{"name":"negative","source":"s3","match":"key startsWith \"reports/negative/\"",
		"targets":["@bob"],"severity":"warning","message":"{{.key}}"}`)
	code, raw := post(t, h, "/v1/integrations/s3", "application/json", s3Put)
	if code != http.StatusAccepted || !strings.Contains(string(raw), `"rule":"positive"`) || rec.count() != 1 {
		t.Fatalf("s3: %d %s", code, raw)
	}
	var al herald.Alert
	_ = json.Unmarshal(rec.all()[0].Value, &al)
	if al.Title != "New report q1 summary.pdf" || al.Message != "s3://uploads/reports/positive/q1 summary.pdf (1024 bytes)" ||
		al.Labels["s3_key"] != "reports/positive/q1 summary.pdf" || al.Recipients[0] != "id-alice" {
		t.Fatalf("alert %+v", al)
	}
	// The same record inside SNS: same event id, same alert id.
	msg, _ := json.Marshal(s3Put)
	sns := `{"Type":"Notification","MessageId":"m-1","TopicArn":"arn:aws:sns:x","Message":` + string(msg) + `}`
	code, raw2 := post(t, h, "/v1/integrations/s3", "text/plain; charset=UTF-8", sns)
	if code != http.StatusAccepted {
		t.Fatalf("sns: %d %s", code, raw2)
	}
	var a1, a2 eventsAnswer
	_ = json.Unmarshal(raw, &a1)
	_ = json.Unmarshal(raw2, &a2)
	if a1.Alerts[0].ID != a2.Alerts[0].ID {
		t.Fatalf("the same record gave two alert ids: %s / %s", raw, raw2)
	}
	if code, raw := post(t, h, "/v1/integrations/s3", "application/json",
		`{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-03-01T10:00:00Z","Bucket":"uploads","RequestId":"r","HostId":"h"}`); code != http.StatusAccepted || !strings.Contains(string(raw), `"test":true`) {
		t.Fatalf("test event: %d %s", code, raw)
	}
	if code, raw := post(t, h, "/v1/integrations/s3", "application/json",
		`{"Type":"SubscriptionConfirmation","SubscribeURL":"http://169.254.169.254/latest","Token":"t"}`); code != http.StatusUnprocessableEntity ||
		!strings.Contains(string(raw), "confirm") {
		t.Fatalf("subscription confirmation: %d %s", code, raw)
	}
	if code, raw := post(t, h, "/v1/integrations/s3", "application/json", `{"Records":[{"eventSource":"aws:sqs"}]}`); code != http.StatusUnprocessableEntity {
		t.Fatalf("bad record: %d %s", code, raw)
	}
}

// TestRuleValidation: a rule that would fail is refused at creation, naming
// the field.
func TestRuleValidation(t *testing.T) {
	h, _, _ := amServer(t)
	base := map[string]any{"name": "r", "source": "event", "match": "true", "targets": []string{"@alice"},
		"severity": "info", "message": "m"}
	for _, tc := range []struct {
		field string
		value any
		loc   string
	}{
		{"match", "type ==", "body.match"},
		{"match", "type + 1", "body.match"},
		{"match", "nosuchvar == 1", "body.match"},
		{"match", `repeat("x", 1000000000) != ""`, "body.match"},
		{"match", "all(data.a, {any(data.b, {true})})", "body.match"},
		{"match", "data.x", ""}, // any-typed is fine at compile time
		{"message", "{{.data.x", "body.message"},
		{"message", "{{nosuchfunc 1}}", "body.message"},
		{"message", `{{define "a"}}{{template "a"}}{{end}}x`, "body.message"},
		{"message", "{{range 1000000000}}x{{end}}", "body.message"},
		{"message", "{{range .data.a}}{{range .b}}{{end}}{{end}}", "body.message"},
		{"message", `{{printf "%999999999d" 1}}`, "body.message"},
		{"message", `{{call .data.f}}`, "body.message"},
		{"title", "{{.data.x", "body.title"},
		{"targets", []string{"@ghost"}, "body.targets"},
		{"targets", []string{"alice"}, "body.targets[0]"},
		{"severity", "urgent", "body.severity"},
		{"source", "kafka", "body.source"},
	} {
		body := map[string]any{}
		for k, v := range base {
			body[k] = v
		}
		body[tc.field] = tc.value
		j, _ := json.Marshal(body)
		code, raw := post(t, h, "/v1/rules", "application/json", string(j))
		if tc.loc == "" {
			if code != http.StatusCreated {
				t.Errorf("%s %v: %d %s, want 201", tc.field, tc.value, code, raw)
			}
			continue
		}
		if code != http.StatusUnprocessableEntity || !strings.Contains(string(raw), tc.loc) {
			t.Errorf("%s %v: %d %s; want 422 at %s", tc.field, tc.value, code, raw, tc.loc)
		}
	}
	// An example event is rendered strictly.
	code, raw := post(t, h, "/v1/rules", "application/json", `{"name":"ex","source":"event","match":"true","targets":["@alice"],
		"severity":"info","message":"{{index .data.items 3}}","example":{"type":"t","data":{"items":[1]}}}`)
	if code != http.StatusUnprocessableEntity || !strings.Contains(string(raw), "example") {
		t.Errorf("example that fails: %d %s", code, raw)
	}
}

// TestRuleDryRunAndChanges: /v1/rules/test reports without producing;
// PATCH and DELETE take effect on the next event.
func TestRuleDryRunAndChanges(t *testing.T) {
	h, _, rec := amServer(t)
	code, raw := post(t, h, "/v1/rules", "application/json", `{"name":"big","source":"event","match":"data.total > 100",
		"targets":["@alice"],"severity":"critical","message":"total {{.data.total}}"}`)
	if code != http.StatusCreated {
		t.Fatal(code, string(raw))
	}
	var r struct{ ID string }
	_ = json.Unmarshal(raw, &r)
	code, raw = post(t, h, "/v1/rules/test", "application/json", `{"event":{"type":"x","data":{"total":500}}}`)
	if code != http.StatusOK || !strings.Contains(string(raw), `"matched":true`) || !strings.Contains(string(raw), `total 500`) {
		t.Fatalf("dry run: %d %s", code, raw)
	}
	code, raw = post(t, h, "/v1/rules/test", "application/json", `{"source":"s3","s3":`+s3Put+`,
		"rule":{"name":"try","source":"s3","match":"size > 1000","targets":["@bob"],"severity":"info","message":"{{.key}}"}}`)
	if code != http.StatusOK || !strings.Contains(string(raw), `"matched":true`) || !strings.Contains(string(raw), "q1 summary.pdf") {
		t.Fatalf("dry run of an unsaved s3 rule: %d %s", code, raw)
	}
	if rec.count() != 0 {
		t.Fatal("a dry run produced")
	}
	req := httptest.NewRequest(http.MethodPatch, "/v1/rules/"+r.ID, strings.NewReader(`{"enabled":false}`))
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"enabled":false`) {
		t.Fatalf("patch: %d %s", w.Code, w.Body)
	}
	code, raw = post(t, h, "/v1/events", "application/json", `{"type":"x","data":{"total":500}}`)
	if code != http.StatusAccepted || !strings.Contains(string(raw), `"unmatched":1`) || rec.count() != 0 {
		t.Fatalf("event after disabling: %d %s", code, raw)
	}
	req = httptest.NewRequest(http.MethodDelete, "/v1/rules/"+r.ID, nil)
	w = httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusNoContent {
		t.Fatalf("delete: %d %s", w.Code, w.Body)
	}
	req = httptest.NewRequest(http.MethodGet, "/v1/rules", nil)
	w = httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusOK || strings.Contains(w.Body.String(), r.ID) {
		t.Fatalf("list after delete: %d %s", w.Code, w.Body)
	}
}

// TestEventsOpenAPI: the event routes document the bodies they read.
func TestEventsOpenAPI(t *testing.T) {
	h, _, _ := amServer(t)
	req := httptest.NewRequest(http.MethodGet, "/openapi.json", nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	var doc struct {
		Paths map[string]map[string]struct {
			RequestBody struct {
				Content map[string]any `json:"content"`
			} `json:"requestBody"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	c := doc.Paths["/v1/events"]["post"].RequestBody.Content
	for _, ct := range []string{"application/json", "application/cloudevents+json", "application/cloudevents-batch+json"} {
		if c[ct] == nil {
			t.Errorf("/v1/events documents no %s body: %v", ct, c)
		}
	}
	for _, p := range []string{"/v1/rules", "/v1/rules/{id}", "/v1/rules/test", "/v1/integrations/s3"} {
		if doc.Paths[p] == nil {
			t.Errorf("%s not documented", p)
		}
	}
}

// TestRulesReloadAcrossProcesses: a rule made through one API server is
// used by another over the same store within its reload interval.
func TestRulesReloadAcrossProcesses(t *testing.T) {
	h1, st, _ := amServer(t)
	rec2 := &recorder{}
	h2 := (&api.Server{Store: st, Producer: rec2, Logger: slog.New(slog.DiscardHandler), Version: "test",
		RulesReload: 50 * time.Millisecond}).Handler()
	ev := `{"id":"e-1","type":"ping"}`
	if code, raw := post(t, h2, "/v1/events", "application/json", ev); code != http.StatusAccepted ||
		!strings.Contains(string(raw), `"unmatched":1`) {
		t.Fatalf("before the rule: %d %s", code, raw)
	}
	mustCreateRule(t, h1, `{"name":"pings","source":"event","match":"type == \"ping\"","targets":["@bob"],"severity":"info","message":"pong"}`)
	deadline := time.Now().Add(5 * time.Second)
	for rec2.count() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the other server never used the new rule")
		}
		time.Sleep(60 * time.Millisecond)
		post(t, h2, "/v1/events", "application/json", ev)
	}
}

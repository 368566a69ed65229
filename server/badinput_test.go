package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestBadInput sends every endpoint malformed JSON, wrong types, unknown
// fields, unknown targets, oversized bodies and other mistakes. Each must be a
// clear 4xx application/problem+json naming the problem, never a 5xx, and no
// rejected alert may be half-accepted.
func TestBadInput(t *testing.T) {
	h := start(t, testConfig(t, t.TempDir()))
	alice := h.createUser(map[string]any{"name": "alice", "webhookUrl": "http://127.0.0.1:1/hook"})
	group := h.createGroup("ops", alice)

	big := `{"name":"` + strings.Repeat("x", 1<<20) + `"}`
	bigAlert := `{"target":["@alice"],"severity":"info","message":"` + strings.Repeat("x", 1<<20) + `"}`
	manyTargets, _ := json.Marshal(map[string]any{"target": strings.Split(strings.Repeat("@alice,", 1001), ",")[:1001],
		"severity": "info", "message": "m"})
	manyLabels := map[string]string{}
	for i := range 65 {
		manyLabels[fmt.Sprint("k", i)] = "v"
	}

	cases := []struct {
		name, method, path string
		body               string
		header             map[string]string
		status             int
		mention            string
	}{
		// users
		{"user malformed json", "POST", "/v1/users", `{"name":`, nil, 400, "unexpected end of JSON"},
		{"user wrong type", "POST", "/v1/users", `{"name":5}`, nil, 422, "expected string"},
		{"user unknown field", "POST", "/v1/users", `{"name":"x","nickname":"y"}`, nil, 422, "nickname"},
		{"user missing name", "POST", "/v1/users", `{}`, nil, 422, "name"},
		{"user empty body", "POST", "/v1/users", ``, nil, 400, "body"},
		{"user array body", "POST", "/v1/users", `[]`, nil, 422, "expected object"},
		{"user bad name", "POST", "/v1/users", `{"name":"has space"}`, nil, 422, "name"},
		{"user bad email", "POST", "/v1/users", `{"name":"x","email":"nope"}`, nil, 422, "email"},
		{"user bad phone", "POST", "/v1/users", `{"name":"x","phone":"555-1234"}`, nil, 422, "phone"},
		{"user webhook scheme", "POST", "/v1/users", `{"name":"x","webhookUrl":"ftp://host/x"}`, nil, 422, "http or https"},
		{"user slack both", "POST", "/v1/users", `{"name":"x","slack":{"webhookUrl":"https://hooks.example.com/a","channel":"C1"}}`, nil, 422, "not both"},
		{"user duplicate", "POST", "/v1/users", `{"name":"alice"}`, nil, 409, "already exists"},
		{"user webhook secret short", "POST", "/v1/users", `{"name":"x","webhookUrl":"https://h.example.com/","webhookSecret":"short-canary"}`, nil, 422, "16 to 256 characters"},
		{"user webhook secret long", "POST", "/v1/users", `{"name":"x","webhookUrl":"https://h.example.com/","webhookSecret":"canary` + strings.Repeat("s", 251) + `"}`, nil, 422, "16 to 256 characters"},
		{"user webhook secret control", "POST", "/v1/users", `{"name":"x","webhookUrl":"https://h.example.com/","webhookSecret":"canary-with\na-newline"}`, nil, 422, "control characters"},
		{"user webhook secret looks sealed", "POST", "/v1/users", `{"name":"x","webhookUrl":"https://h.example.com/","webhookSecret":"enc:v2:00000000:AAAAAAAAAAAAAAAAAAAAAA"}`, nil, 422, "enc:"},
		{"user slack token looks sealed", "POST", "/v1/users", `{"name":"x","slack":{"channel":"#ops","token":"enc:v1:AAAAAAAAAAAA"}}`, nil, 422, "enc:"},
		{"user webhook secret no url", "POST", "/v1/users", `{"name":"x","webhookSecret":"canary-0123456789abcdef"}`, nil, 422, "webhookUrl"},
		{"user webhook secret number", "POST", "/v1/users", `{"name":"x","webhookUrl":"https://h.example.com/","webhookSecret":1234567890123456789}`, nil, 422, "expected string"},
		{"user slack token long", "POST", "/v1/users", `{"name":"x","slack":{"channel":"C1","token":"xoxb-canary` + strings.Repeat("t", 250) + `"}}`, nil, 422, "at most 256"},
		{"user oversized", "POST", "/v1/users", big, nil, 413, "too large"},
		{"user not json", "POST", "/v1/users", `name=alice`, map[string]string{"Content-Type": "text/plain"}, 415, "content type"},
		{"get missing user", "GET", "/v1/users/nope", "", nil, 404, "nope"},
		{"delete missing user", "DELETE", "/v1/users/nope", "", nil, 404, "nope"},
		{"patch missing user", "PATCH", "/v1/users/nope", `{"email":"a@b.co"}`, nil, 404, "nope"},
		{"patch bad phone", "PATCH", "/v1/users/" + alice, `{"phone":"12"}`, nil, 422, "phone"},
		{"patch wrong type", "PATCH", "/v1/users/" + alice, `{"email":true}`, nil, 422, "expected string"},
		{"patch unknown field", "PATCH", "/v1/users/" + alice, `{"id":"other"}`, nil, 422, "id"},
		{"patch webhook secret short", "PATCH", "/v1/users/" + alice, `{"webhookSecret":"canary"}`, nil, 422, "body.webhookSecret"},
		{"patch webhook secret without url", "PATCH", "/v1/users/" + alice, `{"webhookUrl":"","webhookSecret":"canary-0123456789abcdef"}`, nil, 422, "set webhookUrl too"},
		{"list users limit 0", "GET", "/v1/users?limit=0", "", nil, 422, "limit"},
		{"list users limit text", "GET", "/v1/users?limit=abc", "", nil, 422, "limit"},
		{"list users bad cursor", "GET", "/v1/users?cursor=***", "", nil, 422, "cursor"},
		// groups
		{"group malformed json", "POST", "/v1/groups", `{"name":"g"`, nil, 400, "unexpected end of JSON"},
		{"group unknown field", "POST", "/v1/groups", `{"name":"g","owner":"x"}`, nil, 422, "owner"},
		{"group bad name", "POST", "/v1/groups", `{"name":"@@g"}`, nil, 422, "name"},
		{"group duplicate", "POST", "/v1/groups", `{"name":"ops"}`, nil, 409, "already exists"},
		{"group wrong type", "POST", "/v1/groups", `{"name":"g","description":[]}`, nil, 422, "expected string"},
		{"get missing group", "GET", "/v1/groups/nope", "", nil, 404, "nope"},
		{"delete missing group", "DELETE", "/v1/groups/nope", "", nil, 404, "nope"},
		{"subscribe missing group", "PUT", "/v1/groups/nope/members/" + alice, "", nil, 404, "group"},
		{"subscribe missing user", "PUT", "/v1/groups/" + group + "/members/nope", "", nil, 404, "user"},
		{"unsubscribe missing user", "DELETE", "/v1/groups/" + group + "/members/nope", "", nil, 404, "user"},
		// alerts
		{"alert malformed json", "POST", "/v1/alerts", `{"target":["@alice"]`, nil, 400, "unexpected end of JSON"},
		{"alert target not array", "POST", "/v1/alerts", `{"target":"@alice","severity":"info","message":"m"}`, nil, 422, "expected array"},
		{"alert empty targets", "POST", "/v1/alerts", `{"target":[],"severity":"info","message":"m"}`, nil, 422, "target"},
		{"alert unknown user", "POST", "/v1/alerts", `{"target":["@alice","@ghost"],"severity":"info","message":"m"}`, nil, 422, "@ghost"},
		{"alert unknown group", "POST", "/v1/alerts", `{"target":["@@ghosts"],"severity":"info","message":"m"}`, nil, 422, "@@ghosts"},
		{"alert bad target", "POST", "/v1/alerts", `{"target":["alice"],"severity":"info","message":"m"}`, nil, 422, "@user or @@group"},
		{"alert bad severity", "POST", "/v1/alerts", `{"target":["@alice"],"severity":"urgent","message":"m"}`, nil, 422, "severity"},
		{"alert severity number", "POST", "/v1/alerts", `{"target":["@alice"],"severity":3,"message":"m"}`, nil, 422, "expected string"},
		{"alert missing message", "POST", "/v1/alerts", `{"target":["@alice"],"severity":"info"}`, nil, 422, "message"},
		{"alert blank message", "POST", "/v1/alerts", `{"target":["@alice"],"severity":"info","message":"   "}`, nil, 422, "blank"},
		{"alert long message", "POST", "/v1/alerts", `{"target":["@alice"],"severity":"info","message":"` + strings.Repeat("x", 16385) + `"}`, nil, 422, "message"},
		{"alert long title", "POST", "/v1/alerts", `{"target":["@alice"],"severity":"info","message":"m","title":"` + strings.Repeat("t", 513) + `"}`, nil, 422, "title"},
		{"alert bad channel", "POST", "/v1/alerts", `{"target":["@alice"],"severity":"info","message":"m","channels":["pager"]}`, nil, 422, "pager"},
		{"alert channel twice", "POST", "/v1/alerts", `{"target":["@alice"],"severity":"info","message":"m","channels":["sms","sms"]}`, nil, 422, "twice"},
		{"alert too many labels", "POST", "/v1/alerts", mustJSON(map[string]any{"target": []string{"@alice"}, "severity": "info", "message": "m", "labels": manyLabels}), nil, 422, "labels"},
		{"alert label not string", "POST", "/v1/alerts", `{"target":["@alice"],"severity":"info","message":"m","labels":{"a":1}}`, nil, 422, "expected string"},
		{"alert unknown field", "POST", "/v1/alerts", `{"target":["@alice"],"severity":"info","message":"m","priority":1}`, nil, 422, "priority"},
		{"alert too many targets", "POST", "/v1/alerts", string(manyTargets), nil, 422, "target"},
		{"alert oversized", "POST", "/v1/alerts", bigAlert, nil, 413, "too large"},
		{"alert long idempotency key", "POST", "/v1/alerts", `{"target":["@alice"],"severity":"info","message":"m"}`,
			map[string]string{"Idempotency-Key": strings.Repeat("k", 256)}, 422, "Idempotency-Key"},
		{"alert idempotency key reserved", "POST", "/v1/alerts", `{"target":["@alice"],"severity":"info","message":"m"}`,
			map[string]string{"Idempotency-Key": "alertmanager:abc:firing:2026-01-01T00:00:00Z:x"}, 422, "reserved"},
		{"alert idempotency key reserved for rules", "POST", "/v1/alerts", `{"target":["@alice"],"severity":"info","message":"m"}`,
			map[string]string{"Idempotency-Key": "event:x"}, 422, "reserved"},
		// rules
		{"rule bad expr", "POST", "/v1/rules", rule(`"match":"type ==="`), nil, 422, "body.match"},
		{"rule expr not bool", "POST", "/v1/rules", rule(`"match":"type + \"x\""`), nil, 422, "bool"},
		{"rule expr unknown variable", "POST", "/v1/rules", rule(`"match":"typo == 1"`), nil, 422, "typo"},
		{"rule expr nested predicates", "POST", "/v1/rules", rule(`"match":"all(data.a, {any(data.b, {true})})"`), nil, 422, "predicate"},
		{"rule expr too long", "POST", "/v1/rules", rule(`"match":"` + strings.Repeat("1 + ", 1100) + `1 > 0"`), nil, 422, "match"},
		{"rule bad template", "POST", "/v1/rules", rule(`"message":"{{.data.x"`), nil, 422, "body.message"},
		{"rule template unknown func", "POST", "/v1/rules", rule(`"title":"{{exec 1}}"`), nil, 422, "exec"},
		{"rule template recursion", "POST", "/v1/rules", rule(`"message":"{{define \"a\"}}{{template \"a\" .}}{{end}}{{template \"a\" .}}"`), nil, 422, "not allowed"},
		{"rule template loops", "POST", "/v1/rules", rule(`"message":"{{range .data.a}}{{range .data.b}}x{{end}}{{end}}"`), nil, 422, "nested"},
		{"rule template loops over a number", "POST", "/v1/rules", rule(`"message":"{{with 1000000000}}{{range .}}{{end}}{{end}}"`), nil, 422, "range"},
		{"rule template overflows", "POST", "/v1/rules", rule(`"message":"{{printf \"%999999999d\" 1}}"`), nil, 422, "printf"},
		{"rule template fails on example", "POST", "/v1/rules", rule(`"message":"{{index .data.items 9}}","example":{"type":"t","data":{"items":[]}}`), nil, 422, "example"},
		{"rule unknown target", "POST", "/v1/rules", rule(`"targets":["@ghost"]`), nil, 422, "@ghost"},
		{"rule bad source", "POST", "/v1/rules", rule(`"source":"kafka"`), nil, 422, "source"},
		{"rule bad severity", "POST", "/v1/rules", rule(`"severity":"urgent"`), nil, 422, "severity"},
		{"rule unknown field", "POST", "/v1/rules", rule(`"priority":1`), nil, 422, "priority"},
		{"get missing rule", "GET", "/v1/rules/nope", "", nil, 404, "nope"},
		{"patch missing rule", "PATCH", "/v1/rules/nope", `{"enabled":false}`, nil, 404, "nope"},
		{"dry run without event", "POST", "/v1/rules/test", `{}`, nil, 422, "event"},
		// events
		{"event malformed json", "POST", "/v1/events", `{"type":`, nil, 422, "JSON"},
		{"event missing type", "POST", "/v1/events", `{"data":{}}`, nil, 422, "type"},
		{"event data not object", "POST", "/v1/events", `{"type":"t","data":"x"}`, nil, 422, "object"},
		{"event deep json", "POST", "/v1/events", `{"type":"t","data":` + strings.Repeat(`{"a":`, 40) + "1" + strings.Repeat("}", 40) + `}`, nil, 422, "nested"},
		{"event invalid utf-8", "POST", "/v1/events", "{\"type\":\"t\xff\"}", nil, 400, "UTF-8"},
		{"event oversize batch", "POST", "/v1/events", "[" + strings.TrimSuffix(strings.Repeat(`{"type":"t"},`, 101), ",") + "]", nil, 413, "at most 100"},
		{"event too many values", "POST", "/v1/events", `{"type":"t","data":{"a":[` + strings.TrimSuffix(strings.Repeat("1,", 10001), ",") + `]}}`, nil, 413, "values"},
		{"event oversized", "POST", "/v1/events", `{"type":"t","data":{"s":"` + strings.Repeat("x", 1<<20) + `"}}`, nil, 413, "too large"},
		{"cloudevent bad specversion", "POST", "/v1/events", `{"specversion":"0.3","id":"1","source":"s","type":"t"}`,
			map[string]string{"Content-Type": "application/cloudevents+json"}, 422, "specversion"},
		{"event wrong media type", "POST", "/v1/events", `{"type":"t"}`, map[string]string{"Content-Type": "text/xml"}, 415, "media type"},
		{"s3 not a notification", "POST", "/v1/integrations/s3", `{"hello":1}`, nil, 422, "Records"},
		{"s3 subscription confirmation", "POST", "/v1/integrations/s3", `{"Type":"SubscriptionConfirmation","SubscribeURL":"http://169.254.169.254/"}`, nil, 422, "confirm"},
		{"s3 bad key encoding", "POST", "/v1/integrations/s3", `{"Records":[{"eventSource":"aws:s3","eventName":"x","s3":{"bucket":{"name":"b"},"object":{"key":"%zz"}}}]}`, nil, 422, "key"},
		{"get missing alert", "GET", "/v1/alerts/nope", "", nil, 404, "nope"},
		{"list alerts bad cursor", "GET", "/v1/alerts?cursor=bm9wZQ", "", nil, 422, "cursor"},
		{"list alerts limit too big", "GET", "/v1/alerts?limit=100000", "", nil, 422, "limit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.body != "" {
				body = bytes.NewReader([]byte(tc.body))
			}
			req, err := http.NewRequest(tc.method, h.base+tc.path, body)
			if err != nil {
				t.Fatal(err)
			}
			if tc.method == "POST" || tc.method == "PATCH" {
				req.Header.Set("Content-Type", "application/json")
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			raw := expectProblem(t, req, tc.status)
			if !strings.Contains(strings.ToLower(string(raw)), strings.ToLower(tc.mention)) {
				t.Errorf("problem does not mention %q: %s", tc.mention, truncate(raw))
			}
			if strings.Contains(string(raw), "canary") {
				t.Errorf("problem echoes a secret: %s", truncate(raw))
			}
		})
	}

	// Nothing rejected was half-accepted: a valid alert sent after all the
	// rejected ones is the only alert Herald ever records.
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

// rule is a valid rule with one field changed (a JSON member, added last
// so it wins).
func rule(member string) string {
	return `{"name":"r","source":"event","match":"true","targets":["@alice"],"severity":"info","message":"m",` + member + `}`
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func truncate(b []byte) string {
	if len(b) > 400 {
		return string(b[:400]) + "…"
	}
	return string(b)
}

package server_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldproject/herald/internal/testauth"
	"github.com/heraldproject/herald/notify/webhook/webhooktest"
	"github.com/heraldproject/herald/server"
)

// TestAuthMatrix sends every route with no token, a bad token, a revoked
// token, a token of each scope and a user-bound token, and checks who gets
// in.
func TestAuthMatrix(t *testing.T) {
	h := start(t, testConfig(t, t.TempDir(), "HERALD_AUTH_METRICS_PUBLIC=false"))
	alice := h.createUser(map[string]any{"name": "alice", "webhookUrl": "http://127.0.0.1:1/x"})
	bob := h.createUser(map[string]any{"name": "bob"})
	group := h.createGroup("g")
	alert := h.sendAlert(map[string]any{"target": []string{"@alice"}, "severity": "info", "message": "m"})
	h.waitAlert(alert, func(*alertOut) bool { return true })
	var rule idOut
	h.must(http.StatusCreated, "POST", "/v1/rules", map[string]any{"name": "r", "source": "event", "match": "false",
		"targets": []string{"@alice"}, "severity": "info", "message": "m"}, &rule)

	mint := func(scope, user string) (secret, id string) {
		var out struct{ ID, Token string }
		body := map[string]any{"name": scope + "-token", "scope": scope}
		if user != "" {
			body["userId"] = user
		}
		h.must(http.StatusCreated, "POST", "/v1/tokens", body, &out)
		if !strings.HasPrefix(out.Token, "hrl_") {
			t.Fatalf("token secret %q", out.Token)
		}
		return out.Token, out.ID
	}
	ingest, _ := mint("ingest", "")
	read, _ := mint("read", "")
	admin, _ := mint("admin", "")
	userBound, _ := mint("read", alice)
	revoked, revokedID := mint("admin", "")
	h.must(http.StatusNoContent, "DELETE", "/v1/tokens/"+revokedID, nil, nil)

	type route struct {
		method, path, body, need string
	}
	routes := []route{
		{"GET", "/healthz", "", ""},
		{"GET", "/readyz", "", ""},
		{"GET", "/openapi.json", "", ""},
		{"GET", "/metrics", "", "read"},
		{"POST", "/v1/alerts", `{"target":["@alice"],"severity":"info","message":"m"}`, "ingest"},
		{"POST", "/v1/integrations/alertmanager?target=@alice", `{"version":"4","alerts":[{"status":"firing",` +
			`"labels":{"alertname":"A"},"startsAt":"2026-03-01T10:00:00Z","fingerprint":"1a30ba71cca2921f"}]}`, "ingest"},
		{"POST", "/v1/events", `{"type":"t"}`, "ingest"},
		{"POST", "/v1/integrations/s3", `{"Service":"Amazon S3","Event":"s3:TestEvent"}`, "ingest"},
		{"POST", "/v1/rules", `{"name":"r2","source":"event","match":"false","targets":["@alice"],"severity":"info","message":"m"}`, "admin"},
		{"GET", "/v1/rules", "", "admin"},
		{"GET", "/v1/rules/" + rule.ID, "", "admin"},
		{"PATCH", "/v1/rules/" + rule.ID, `{"enabled":false}`, "admin"},
		{"DELETE", "/v1/rules/nope", "", "admin"},
		{"POST", "/v1/rules/test", `{"event":{"type":"t"}}`, "admin"},
		{"POST", "/v1/logs", `{"service":"s","message":"m"}`, "ingest"},
		{"POST", "/otlp/v1/logs", `{"resourceLogs":[]}`, "ingest"},
		{"GET", "/v1/logs", "", "read"},
		{"GET", "/v1/alerts", "", "read"},
		{"GET", "/v1/alerts/" + alert, "", "read"},
		{"GET", "/v1/dead-letters", "", "read"},
		{"GET", "/v1/dead-letters/nope", "", "read"},
		{"GET", "/v1/stats", "", "read"},
		{"POST", "/v1/dead-letters/nope/replay", "", "admin"},
		{"DELETE", "/v1/dead-letters/nope", "", "admin"},
		{"POST", "/v1/dead-letters/replay", `{}`, "admin"},
		{"POST", "/v1/users", `{"name":"x` + "\"}", "admin"},
		{"GET", "/v1/users", "", "admin"},
		{"GET", "/v1/users/" + bob, "", "admin"},
		{"PATCH", "/v1/users/" + bob, `{"department":"ops"}`, "admin"},
		{"DELETE", "/v1/users/nope", "", "admin"},
		{"POST", "/v1/groups", `{"name":"h"}`, "admin"},
		{"GET", "/v1/groups", "", "admin"},
		{"GET", "/v1/groups/" + group, "", "admin"},
		{"DELETE", "/v1/groups/nope", "", "admin"},
		{"PUT", "/v1/groups/" + group + "/members/" + bob, "", "admin"},
		{"DELETE", "/v1/groups/" + group + "/members/" + bob, "", "admin"},
		{"POST", "/v1/tokens", `{"name":"n","scope":"read"}`, "admin"},
		{"GET", "/v1/tokens", "", "admin"},
		{"DELETE", "/v1/tokens/nope", "", "admin"},
	}
	callers := []struct{ name, header, scope string }{
		{"none", "", ""},
		{"bad", "Bearer hrl_not-a-real-token", ""},
		{"malformed", "Basic YWxpY2U6cHc=", ""},
		{"revoked", "Bearer " + revoked, ""},
		{"ingest", "Bearer " + ingest, "ingest"},
		{"read", "Bearer " + read, "read"},
		{"read, scheme in lower case", "bearer " + read, "read"},
		{"admin", "Bearer " + admin, "admin"},
		{"user-bound", "Bearer " + userBound, "user"},
	}
	// Every operation the OpenAPI document lists is in the matrix, so a new
	// route cannot escape it.
	var doc struct {
		Paths      map[string]map[string]any `json:"paths"`
		Components struct {
			SecuritySchemes map[string]struct{ Type, Scheme string } `json:"securitySchemes"`
		} `json:"components"`
		Security []map[string][]string `json:"security"`
	}
	h.must(http.StatusOK, "GET", "/openapi.json", nil, &doc)
	// The document says how to authenticate, so /docs and generated
	// clients can.
	if b := doc.Components.SecuritySchemes["bearer"]; b.Type != "http" || b.Scheme != "bearer" || len(doc.Security) != 1 {
		t.Errorf("OpenAPI security: schemes %+v, security %v; want bearer", doc.Components.SecuritySchemes, doc.Security)
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if sec, ok := doc.Paths[p]["get"].(map[string]any)["security"].([]any); !ok || len(sec) != 0 {
			t.Errorf("OpenAPI %s security = %v, want [] (no token)", p, doc.Paths[p]["get"].(map[string]any)["security"])
		}
	}
	for path, ops := range doc.Paths {
		pattern := regexp.MustCompile("^" + regexp.MustCompile(`\\\{[^}]+\\\}`).ReplaceAllString(regexp.QuoteMeta(path), `[^/]+`) + `(\?.*)?$`)
		for method := range ops {
			if !slices.Contains([]string{"get", "put", "post", "patch", "delete"}, method) {
				continue
			}
			found := false
			for _, rt := range routes {
				if strings.EqualFold(rt.method, method) && pattern.MatchString(rt.path) {
					found = true
				}
			}
			if !found {
				t.Errorf("%s %s is in the OpenAPI document but not in the auth matrix", strings.ToUpper(method), path)
			}
		}
	}
	client := &http.Client{Timeout: 10 * time.Second} // sends only the header given
	for _, rt := range routes {
		for _, c := range callers {
			var body io.Reader
			if rt.body != "" {
				body = bytes.NewReader([]byte(rt.body))
			}
			req, _ := http.NewRequest(rt.method, h.base+rt.path, body)
			if rt.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			if c.header != "" {
				req.Header.Set("Authorization", c.header)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var want string
			switch {
			case rt.need == "":
				want = "in"
			case c.scope == "":
				want = "401"
			case c.scope == "user":
				want = "403"
			case c.scope == "admin" || c.scope == rt.need:
				want = "in"
			default:
				want = "403"
			}
			got := "in"
			if resp.StatusCode == 401 || resp.StatusCode == 403 {
				got = strconv.Itoa(resp.StatusCode)
			}
			if got != want {
				t.Errorf("%s %s as %s: %d %s; want %s", rt.method, rt.path, c.name, resp.StatusCode, raw, want)
			}
			if resp.StatusCode == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s %s as %s: 401 without WWW-Authenticate", rt.method, rt.path, c.name)
			}
			if (resp.StatusCode == 401 || resp.StatusCode == 403) && resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("%s %s as %s: not problem+json", rt.method, rt.path, c.name)
			}
		}
	}
	// The user-bound token reads its own user, and nothing else.
	req, _ := http.NewRequest("GET", h.base+"/v1/users/"+alice, nil)
	req.Header.Set("Authorization", "Bearer "+userBound)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("user-bound token reading its own user: %d", resp.StatusCode)
	}
	// Tokens are listed without secrets, with last-used times recorded.
	var list struct {
		Tokens []map[string]any `json:"tokens"`
	}
	raw := h.must(http.StatusOK, "GET", "/v1/tokens", nil, &list)
	for _, s := range []string{ingest, read, admin, userBound, testauth.AdminToken} {
		if strings.Contains(string(raw), s) {
			t.Fatal("GET /v1/tokens shows a secret")
		}
	}
	if len(list.Tokens) != 7 { // bootstrap + 5 minted + 1 made in the matrix
		t.Errorf("tokens listed = %d", len(list.Tokens))
	}
}

// TestTokenRateLimit: a token past its budget gets 429 with Retry-After.
func TestTokenRateLimit(t *testing.T) {
	h := start(t, testConfig(t, t.TempDir(), "HERALD_AUTH_RATE=1", "HERALD_AUTH_BURST=3"))
	codes := map[int]int{}
	var retryAfter string
	for range 6 {
		resp, err := http.Get(h.base + "/v1/users")
		if err != nil {
			t.Fatal(err)
		}
		codes[resp.StatusCode]++
		if resp.StatusCode == http.StatusTooManyRequests {
			retryAfter = resp.Header.Get("Retry-After")
		}
		resp.Body.Close()
	}
	if codes[200] != 3 || codes[429] != 3 || retryAfter == "" {
		t.Fatalf("statuses %v, Retry-After %q; want 3 × 200 then 429 with Retry-After", codes, retryAfter)
	}
	// Health checks are not rate limited or authenticated.
	resp, err := http.Get(h.base + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", err, resp)
	}
	resp.Body.Close()
}

// TestOutboundPolicy: with private addresses denied (the default when scaled
// out), a webhook pointing into Herald's own network is refused and
// dead-lettered with the reason; an allow-listed address still works.
func TestOutboundPolicy(t *testing.T) {
	hook := webhooktest.NewReceiver()
	defer hook.Close()
	h := start(t, testConfig(t, t.TempDir(), "HERALD_OUTBOUND_PRIVATE_ADDRESSES=deny"))
	h.createUser(map[string]any{"name": "inside", "webhookUrl": hook.URL()})
	id := h.sendAlert(map[string]any{"target": []string{"@inside"}, "severity": "info", "message": "m"})
	a := h.waitAlert(id, allFinal)
	if d := a.Deliveries[0]; d.Status != "dead" || !strings.Contains(d.LastError, "outbound") || d.Attempts != 1 {
		t.Fatalf("delivery to loopback = %+v, want dead at once with the policy as reason", d)
	}
	if len(hook.Received()) != 0 {
		t.Fatal("the refused webhook was called")
	}
	h.stop()
	h = start(t, testConfig(t, t.TempDir(), "HERALD_OUTBOUND_PRIVATE_ADDRESSES=deny", "HERALD_OUTBOUND_ALLOW=127.0.0.0/8"))
	h.createUser(map[string]any{"name": "inside", "webhookUrl": hook.URL()})
	id = h.sendAlert(map[string]any{"target": []string{"@inside"}, "severity": "info", "message": "m"})
	if d := h.waitAlert(id, allFinal).Deliveries[0]; d.Status != "sent" {
		t.Fatalf("allow-listed delivery = %+v", d)
	}
}

// TestAdminTokenRotation checks a new HERALD_ADMIN_TOKEN revokes the one set
// before (changing a leaked value must shut it out), and that a revoked
// value set again is refused at start.
func TestAdminTokenRotation(t *testing.T) {
	dir := t.TempDir()
	const first, second = "hrl_first-admin-token-0123456789", "hrl_second-admin-token-0123456789"
	status := func(h *instance, token string) int {
		req, _ := http.NewRequest("GET", h.base+"/v1/tokens", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	h := start(t, testConfig(t, dir, "HERALD_ADMIN_TOKEN="+first))
	if got := status(h, first); got != http.StatusOK {
		t.Fatalf("first token: %d", got)
	}
	h.stop()
	h = start(t, testConfig(t, dir, "HERALD_ADMIN_TOKEN="+second))
	if got := status(h, second); got != http.StatusOK {
		t.Fatalf("second token: %d", got)
	}
	if got := status(h, first); got != http.StatusUnauthorized {
		t.Fatalf("the replaced token answers %d, want 401", got)
	}
	h.stop()
	_, err := server.Start(context.Background(), testConfig(t, dir, "HERALD_ADMIN_TOKEN="+first), testLogger(t), "test")
	if err == nil || !strings.Contains(err.Error(), "HERALD_ADMIN_TOKEN is a token that was revoked") {
		t.Fatalf("start with a revoked admin token: %v", err)
	}
}

package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldproject/herald/notify/webhook/webhooktest"
)

type eventsOut struct {
	Events    int `json:"events"`
	Unmatched int `json:"unmatched"`
	Alerts    []struct {
		ID       string `json:"id"`
		Rule     string `json:"rule"`
		Replayed bool   `json:"replayed"`
	} `json:"alerts"`
}

// postAs sends a raw body with a content type and decodes a 2xx answer.
func (h *instance) postAs(path, contentType, body string, want int, out any) {
	h.t.Helper()
	req, err := http.NewRequest("POST", h.base+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		var p map[string]any
		_ = jsonDecode(resp, &p)
		h.t.Fatalf("POST %s: %d, want %d: %v", path, resp.StatusCode, want, p)
	}
	if out != nil {
		if err := jsonDecode(resp, out); err != nil {
			h.t.Fatal(err)
		}
	}
}

// TestEventsEndToEnd: a rule turns a domain event into a rendered webhook
// notification; an S3 notification is routed by key prefix to two groups;
// a retried event (and a retried S3 record) is delivered once.
func TestEventsEndToEnd(t *testing.T) {
	hook := webhooktest.NewReceiver()
	defer hook.Close()
	h := start(t, testConfig(t, t.TempDir()))
	alice := h.createUser(map[string]any{"name": "alice", "webhookUrl": hook.BaseURL() + "/alice"})
	bob := h.createUser(map[string]any{"name": "bob", "webhookUrl": hook.BaseURL() + "/bob"})
	carol := h.createUser(map[string]any{"name": "carol", "webhookUrl": hook.BaseURL() + "/carol"})
	h.createGroup("sales", alice)
	h.createGroup("positive", bob)
	h.createGroup("negative", carol)

	h.must(http.StatusCreated, "POST", "/v1/rules", map[string]any{
		"name": "big-orders", "source": "event", "match": `type == "order.created" && data.total > 100`,
		"targets": []string{"@@sales"}, "severity": "warning",
		"title":   "Order {{.data.orderId}}: {{.data.total}} {{.data.currency}}",
		"message": "{{.data.customer}} ordered {{len .data.items}} items",
	}, nil)
	for _, cat := range []string{"positive", "negative"} {
		h.must(http.StatusCreated, "POST", "/v1/rules", map[string]any{
			"name": cat + "-reports", "source": "s3", "match": `key startsWith "reports/` + cat + `/"`,
			"targets": []string{"@@" + cat}, "severity": "info",
			"title": "New " + cat + " report", "message": "s3://{{.bucket}}/{{.key}} ({{.size}} bytes)",
		}, nil)
	}

	order := `{"id":"order-1001","type":"order.created","source":"order-service",
		"data":{"orderId":"1001","total":12900,"currency":"KRW","customer":"user-1001","items":[{"sku":"a"},{"sku":"b"}]}}`
	var first, retry eventsOut
	h.postAs("/v1/events", "application/json", order, http.StatusAccepted, &first)
	if len(first.Alerts) != 1 || first.Alerts[0].Rule != "big-orders" {
		t.Fatalf("event answer %+v", first)
	}
	h.waitAlert(first.Alerts[0].ID, allFinal)
	h.postAs("/v1/events", "application/json", order, http.StatusAccepted, &retry)
	if len(retry.Alerts) != 1 || retry.Alerts[0].ID != first.Alerts[0].ID || !retry.Alerts[0].Replayed {
		t.Fatalf("retried event answer %+v, want the first alert, replayed", retry)
	}

	s3 := func(key, seq string) string {
		return `{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"ap-northeast-2",
			"eventTime":"2026-03-01T10:00:00.000Z","eventName":"ObjectCreated:Put",
			"s3":{"bucket":{"name":"uploads","arn":"arn:aws:s3:::uploads"},
			"object":{"key":"` + key + `","size":2048,"eTag":"abc","sequencer":"` + seq + `"}}}]}`
	}
	var pos, neg, other, posAgain eventsOut
	h.postAs("/v1/integrations/s3", "application/json", s3("reports/positive/q1+report.pdf", "01"), http.StatusAccepted, &pos)
	h.postAs("/v1/integrations/s3", "application/json", s3("reports/negative/q1.pdf", "02"), http.StatusAccepted, &neg)
	h.postAs("/v1/integrations/s3", "application/json", s3("misc/readme.txt", "03"), http.StatusAccepted, &other)
	if len(pos.Alerts) != 1 || pos.Alerts[0].Rule != "positive-reports" || len(neg.Alerts) != 1 ||
		neg.Alerts[0].Rule != "negative-reports" || other.Unmatched != 1 || len(other.Alerts) != 0 {
		t.Fatalf("s3 answers %+v %+v %+v", pos, neg, other)
	}
	h.waitAlert(pos.Alerts[0].ID, allFinal)
	h.postAs("/v1/integrations/s3", "application/json", s3("reports/positive/q1+report.pdf", "01"), http.StatusAccepted, &posAgain)
	if !posAgain.Alerts[0].Replayed {
		t.Fatalf("redelivered S3 record not replayed: %+v", posAgain)
	}
	h.waitAlert(neg.Alerts[0].ID, allFinal)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := hook.WaitFor(ctx, 3); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // a duplicate would arrive now
	got := map[string][]webhooktest.Request{}
	for _, r := range hook.Received() {
		got[r.Path] = append(got[r.Path], r)
	}
	if len(hook.Received()) != 3 || len(got["/alice"]) != 1 || len(got["/bob"]) != 1 || len(got["/carol"]) != 1 {
		t.Fatalf("webhooks by path: %d requests: %v", len(hook.Received()), got)
	}
	a := got["/alice"][0].Payload
	if a.Title != "Order 1001: 12900 KRW" || a.Message != "user-1001 ordered 2 items" || a.Severity != "warning" ||
		a.Labels["rule"] != "big-orders" || a.Labels["event_id"] != "order-1001" || a.Source != "order-service" {
		t.Fatalf("order notification %+v", a)
	}
	if b := got["/bob"][0].Payload; b.Title != "New positive report" ||
		b.Message != "s3://uploads/reports/positive/q1 report.pdf (2048 bytes)" || b.Labels["s3_key"] != "reports/positive/q1 report.pdf" {
		t.Fatalf("positive report notification %+v", b)
	}
	if c := got["/carol"][0].Payload; c.Title != "New negative report" {
		t.Fatalf("negative report notification %+v", c)
	}
}

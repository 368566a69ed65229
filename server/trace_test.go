package server_test

import (
	"context"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/heraldproject/herald/notify/webhook/webhooktest"
	"github.com/heraldproject/herald/server"
)

// startTraced starts a server whose spans go to the returned exporter, and
// a webhook receiver.
func startTraced(t *testing.T) (*instance, *tracetest.InMemoryExporter, *webhooktest.Receiver) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	hook := webhooktest.NewReceiver()
	t.Cleanup(hook.Close)
	s, err := server.Start(context.Background(), testConfig(t, t.TempDir()), testLogger(t), "test", server.WithTracerProvider(tp))
	if err != nil {
		t.Fatal(err)
	}
	h := &instance{t: t, srv: s, base: "http://" + s.Addr()}
	t.Cleanup(h.stop)
	return h, exp, hook
}

// TestTrace follows one alert: the herald.accept span of the HTTP request is
// the parent of the herald.fanout span (across the alerts topic), which is the
// parent of one herald.deliver span per delivery (across the deliveries
// topic) — all in one trace.
func TestTrace(t *testing.T) {
	h, exp, hook := startTraced(t)
	h.createUser(map[string]any{"name": "a", "webhookUrl": hook.URL()})
	h.createUser(map[string]any{"name": "b", "webhookUrl": hook.URL()})
	id := h.sendAlert(map[string]any{"target": []string{"@a", "@b"}, "severity": "error", "message": "traced"})
	h.waitAlert(id, allFinal)

	byName := map[string][]tracetest.SpanStub{}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		byName = map[string][]tracetest.SpanStub{}
		for _, sp := range exp.GetSpans() {
			byName[sp.Name] = append(byName[sp.Name], sp)
		}
		if len(byName["herald.deliver"]) >= 2 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(byName["herald.accept"]) != 1 || len(byName["herald.fanout"]) != 1 || len(byName["herald.deliver"]) != 2 {
		t.Fatalf("spans: accept %d, fanout %d, deliver %d; want 1, 1, 2",
			len(byName["herald.accept"]), len(byName["herald.fanout"]), len(byName["herald.deliver"]))
	}
	accept, fan := byName["herald.accept"][0], byName["herald.fanout"][0]
	if fan.Parent.SpanID() != accept.SpanContext.SpanID() || fan.SpanContext.TraceID() != accept.SpanContext.TraceID() {
		t.Errorf("fanout span's parent is %v, want the accept span %v", fan.Parent.SpanID(), accept.SpanContext.SpanID())
	}
	for _, d := range byName["herald.deliver"] {
		if d.Parent.SpanID() != fan.SpanContext.SpanID() || d.SpanContext.TraceID() != accept.SpanContext.TraceID() {
			t.Errorf("deliver span's parent is %v, want the fanout span %v", d.Parent.SpanID(), fan.SpanContext.SpanID())
		}
	}
	var ok bool
	for _, a := range accept.Attributes {
		ok = ok || (string(a.Key) == "herald.alert_id" && a.Value.AsString() == id)
	}
	if !ok {
		t.Errorf("accept span does not name the alert: %v", accept.Attributes)
	}
}

// TestTraceJoinsCaller checks a caller's W3C traceparent makes Herald's
// herald.accept span a child of the caller's span, in the caller's trace.
func TestTraceJoinsCaller(t *testing.T) {
	h, exp, hook := startTraced(t)
	h.createUser(map[string]any{"name": "a", "webhookUrl": hook.URL()})
	const traceID, parentID = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	code, _, body := h.post("/v1/alerts", []byte(`{"target":["@a"],"severity":"info","message":"joined"}`),
		"Content-Type", "application/json", "traceparent", "00-"+traceID+"-"+parentID+"-01")
	if code != 202 {
		t.Fatalf("POST /v1/alerts = %d %s", code, body)
	}
	for _, sp := range exp.GetSpans() {
		if sp.Name != "herald.accept" {
			continue
		}
		if got := sp.SpanContext.TraceID().String(); got != traceID {
			t.Errorf("accept span's trace is %s, want the caller's %s", got, traceID)
		}
		if got := sp.Parent.SpanID().String(); got != parentID || !sp.Parent.IsRemote() {
			t.Errorf("accept span's parent is %s (remote %v), want the caller's span %s", got, sp.Parent.IsRemote(), parentID)
		}
		return
	}
	t.Fatal("no herald.accept span")
}

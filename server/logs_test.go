package server_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	otellog "go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"

	"github.com/heraldproject/herald/internal/testauth"
)

type logOut struct {
	ID         string            `json:"id"`
	Time       time.Time         `json:"time"`
	Service    string            `json:"service"`
	Level      string            `json:"level"`
	Message    string            `json:"message"`
	Attributes map[string]string `json:"attributes"`
	TraceID    string            `json:"traceId"`
	SpanID     string            `json:"spanId"`
}

type logsOut struct {
	Records    []logOut `json:"records"`
	NextCursor string   `json:"nextCursor"`
}

// waitLogs polls GET /v1/logs?query until it returns at least n records.
func (h *instance) waitLogs(query string, n int) []logOut {
	h.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last []byte
	for time.Now().Before(deadline) {
		var out logsOut
		code, raw := h.do("GET", "/v1/logs?"+query, nil, &out)
		last = raw
		if code != http.StatusOK {
			h.t.Fatalf("GET /v1/logs?%s: %d %s", query, code, raw)
		}
		if len(out.Records) >= n {
			return out.Records
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.t.Fatalf("GET /v1/logs?%s: fewer than %d records: %s", query, n, last)
	return nil
}

// post sends body with the given headers and returns status and body.
func (h *instance) post(path string, body []byte, headers ...string) (int, http.Header, []byte) {
	h.t.Helper()
	req, err := http.NewRequest("POST", h.base+path, bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, raw
}

func gz(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestLogsEndToEnd posts logs as NDJSON, JSON, OTLP JSON and through the
// real OpenTelemetry Go log exporter (OTLP protobuf, gzip), and finds each
// through GET /v1/logs; after a restart they are all still there.
func TestLogsEndToEnd(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	h := start(t, cfg)
	ctx := context.Background()

	// NDJSON, one with no time (the receive time), one with Unix seconds.
	ndjson := `{"time":"2026-03-01T10:00:00.5Z","service":"checkout","level":"error","message":"payment gateway timeout after 30s","attributes":{"order":"A-1"},"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"eee19b7ec3c1b174"}

{"service":"checkout","message":"cart saved","level":"DEBUG"}
{"time":1772359200.25,"service":"search","level":"warn","message":"slow query: 1.2s for /products?q=shoes"}
`
	code, _, raw := h.post("/v1/logs", []byte(ndjson), "Content-Type", "application/x-ndjson")
	if code != http.StatusAccepted || strings.TrimSpace(string(raw)) != `{"accepted":3}` {
		t.Fatalf("POST NDJSON: %d %s", code, raw)
	}
	// JSON array, gzip.
	code, _, raw = h.post("/v1/logs", gz(t, []byte(`{"records":[{"service":"billing","message":"invoice 77 sent"},{"service":"billing","level":"critical","message":"ledger mismatch"}]}`)),
		"Content-Type", "application/json", "Content-Encoding", "gzip")
	if code != http.StatusAccepted {
		t.Fatalf("POST JSON gzip: %d %s", code, raw)
	}

	// OTLP JSON, as the Collector's otlphttp exporter sends with encoding: json.
	otlpJSON := `{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"inventory"}},
	{"key":"host.name","value":{"stringValue":"node-7"}}]},"scopeLogs":[{"scope":{"name":"x"},"logRecords":[
	{"timeUnixNano":"1772359200000000000","severityNumber":17,"severityText":"ERROR","body":{"stringValue":"stock sync failed for sku 991"},
	 "attributes":[{"key":"retries","value":{"intValue":"3"}}],"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203331"},
	{"observedTimeUnixNano":"1772359201000000000","body":{"kvlistValue":{"values":[{"key":"event","value":{"stringValue":"restock"}}]}}}
	]}]}]}`
	code, hdr, raw := h.post("/otlp/v1/logs", []byte(otlpJSON), "Content-Type", "application/json")
	if code != http.StatusOK || hdr.Get("Content-Type") != "application/json" || strings.Contains(string(raw), "rejected") {
		t.Fatalf("POST OTLP JSON: %d %s %s", code, hdr.Get("Content-Type"), raw)
	}

	// The real OpenTelemetry Go SDK and OTLP/HTTP log exporter (protobuf,
	// gzip), pointed at Herald as a Collector would be.
	exp, err := otlploghttp.New(ctx, otlploghttp.WithEndpointURL(h.base+"/otlp/v1/logs"),
		otlploghttp.WithCompression(otlploghttp.GzipCompression),
		otlploghttp.WithHeaders(map[string]string{"Authorization": "Bearer " + testauth.AdminToken}))
	if err != nil {
		t.Fatal(err)
	}
	lp := sdklog.NewLoggerProvider(sdklog.WithProcessor(sdklog.NewBatchProcessor(exp)),
		sdklog.WithResource(resource.NewSchemaless(attribute.String("service.name", "shipping"),
			attribute.String("deployment.environment", "test"))))
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	sctx := trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid,
		TraceFlags: trace.FlagsSampled}))
	logger := lp.Logger("herald-test")
	for i := range 3 {
		var r otellog.Record
		r.SetTimestamp(time.Now())
		r.SetSeverity(otellog.SeverityWarn)
		r.SetSeverityText("WARN")
		r.SetBody(attribute.StringValue(fmt.Sprintf("label printer %d jammed", i)))
		r.AddAttributes(attribute.String("printer", fmt.Sprint(i)), attribute.Int("tray", 2))
		logger.Emit(sctx, r)
	}
	if err := lp.ForceFlush(ctx); err != nil {
		t.Fatalf("OTLP exporter flush: %v", err)
	}
	if err := lp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	check := func(h *instance) {
		t.Helper()
		got := h.waitLogs("q=gateway+timeout", 1)
		if r := got[0]; r.Service != "checkout" || r.Level != "error" || r.Attributes["order"] != "A-1" ||
			r.TraceID != "5b8efff798038103d269b633813fc60c" || r.SpanID != "eee19b7ec3c1b174" ||
			!r.Time.Equal(time.Date(2026, 3, 1, 10, 0, 0, 5e8, time.UTC)) {
			t.Errorf("NDJSON record = %+v", r)
		}
		if got := h.waitLogs("q=cart&service=checkout", 1); got[0].Level != "debug" || time.Since(got[0].Time) > time.Hour {
			t.Errorf("record without time = %+v (want receive time, level debug)", got[0])
		}
		if got := h.waitLogs("q=products+shoes", 1); got[0].Level != "warning" || got[0].Time.Unix() != 1772359200 {
			t.Errorf("record with Unix seconds = %+v", got[0])
		}
		if got := h.waitLogs("q=ledger&level=critical", 1); got[0].Service != "billing" {
			t.Errorf("gzip JSON record = %+v", got[0])
		}
		got = h.waitLogs("q=sku+991", 1)
		if r := got[0]; r.Service != "inventory" || r.Level != "error" || r.Attributes["host.name"] != "node-7" ||
			r.Attributes["retries"] != "3" || r.TraceID != "0af7651916cd43dd8448eb211c80319c" || r.SpanID != "b7ad6b7169203331" {
			t.Errorf("OTLP JSON record = %+v", r)
		}
		if got := h.waitLogs("q=restock", 1); got[0].Message != `{"event":"restock"}` || got[0].Time.Unix() != 1772359201 {
			t.Errorf("OTLP kvlist body = %+v", got[0])
		}
		got = h.waitLogs("service=shipping&q=printer+jammed", 3)
		for _, r := range got {
			if r.Level != "warning" || r.TraceID != tid.String() || r.SpanID != sid.String() ||
				r.Attributes["deployment.environment"] != "test" || r.Attributes["tray"] != "2" {
				t.Errorf("OTel SDK record = %+v", r)
			}
		}
		// Everything, newest first, in pages.
		var all []logOut
		q := "limit=4"
		for range 10 {
			var page logsOut
			h.must(http.StatusOK, "GET", "/v1/logs?"+q, nil, &page)
			all = append(all, page.Records...)
			if page.NextCursor == "" {
				break
			}
			q = "limit=4&cursor=" + url.QueryEscape(page.NextCursor)
		}
		if len(all) != 10 {
			t.Fatalf("paged through %d records, want 10", len(all))
		}
		for i := 1; i < len(all); i++ {
			if all[i].Time.After(all[i-1].Time) {
				t.Fatalf("page order: %v after %v", all[i].Time, all[i-1].Time)
			}
		}
	}
	check(h)
	h.stop()
	check(start(t, cfg))
}

package api_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	collogs "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/api"
	"github.com/heraldproject/herald/store"
)

// checkProduced checks that every produced record is a valid log record
// with an id and a time, keyed by its service.
func checkProduced(t *testing.T, recs []*kgo.Record) {
	t.Helper()
	for _, r := range recs {
		var lr herald.LogRecord
		if err := json.Unmarshal(r.Value, &lr); err != nil {
			t.Fatalf("produced %q: %v", r.Value, err)
		}
		if err := lr.Validate(); err != nil || lr.ID == "" || lr.Time.IsZero() || string(r.Key) != lr.Service {
			t.Fatalf("produced invalid record %q: %v", r.Value, err)
		}
	}
}

func logServer(t testing.TB, maxBatch int) (http.Handler, *recorder) {
	st, err := store.Open(context.Background(), store.Options{DSN: filepath.Join(t.TempDir(), "h.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	rec := &recorder{}
	srv := &api.Server{Store: st, Producer: rec, Logger: slog.New(slog.DiscardHandler), Version: "fuzz",
		LogsMaxBatch: maxBatch, LogsMaxBodyBytes: 1 << 20}
	return srv.Handler(), rec
}

// FuzzLogBatch posts arbitrary bodies to POST /v1/logs as NDJSON and as
// JSON: every answer is a 202 or a 4xx problem, never a 5xx; records are
// produced only on 202, exactly as many as accepted, each valid.
func FuzzLogBatch(f *testing.F) {
	h, rec := logServer(f, 20)
	for _, s := range []string{
		`{"service":"api","message":"m"}`,
		"{\"service\":\"api\",\"message\":\"a\"}\n{\"service\":\"db\",\"level\":\"warn\",\"message\":\"b\",\"time\":1772359200.5}\n",
		`[{"service":"api","message":"m","attributes":{"k":"v"},"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174"}]`,
		`{"records":[{"service":"api","message":"m","time":"2026-03-01T10:00:00Z","level":"TRACE"}]}`,
		`{"records":{}}`, `[]`, `[[[]]]`, `{"service":"a\u0000","message":"m"}`, `{"service":"s","message":"m","time":-1}`,
		`{"service":"s","message":"m","time":"0000-01-01T00:00:00Z"}`, `{"service":"s","message":"m","level":"fatal","extra":1}`,
		`{"service":"s","message":"\ud800"}`, "\xff", "", "{", "\n\n\n", `{"service":"s","message":"m"}{"service":"s","message":"m"}`,
		strings.Repeat(`{"service":"s","message":"m"}`+"\n", 21),
	} {
		f.Add(true, s)
		f.Add(false, s)
	}
	f.Fuzz(func(t *testing.T, ndjson bool, body string) {
		before := rec.count()
		req := httptest.NewRequest(http.MethodPost, "/v1/logs", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if ndjson {
			req.Header.Set("Content-Type", "application/x-ndjson")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		code := w.Code
		if code >= 500 || (code >= 400 && w.Header().Get("Content-Type") != "application/problem+json") {
			t.Fatalf("POST %q: %d %s", body, code, w.Body)
		}
		produced := rec.all()[before:]
		if code != http.StatusAccepted {
			if len(produced) != 0 {
				t.Fatalf("POST %q: %d but %d records produced", body, code, len(produced))
			}
			return
		}
		var out struct{ Accepted int }
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || out.Accepted != len(produced) || out.Accepted == 0 {
			t.Fatalf("POST %q: %s but %d produced", body, w.Body, len(produced))
		}
		checkProduced(t, produced)
	})
}

func otlpSeed() *collogs.ExportLogsServiceRequest {
	str := func(s string) *commonpb.AnyValue {
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: s}}
	}
	return &collogs.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{{Key: "service.name", Value: str("checkout")},
			{Key: "host", Value: str("h1")}}},
		ScopeLogs: []*logspb.ScopeLogs{{LogRecords: []*logspb.LogRecord{
			{TimeUnixNano: uint64(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).UnixNano()), SeverityNumber: logspb.SeverityNumber_SEVERITY_NUMBER_ERROR,
				Body: str("payment failed"), TraceId: make([]byte, 16), SpanId: []byte{1, 2, 3, 4, 5, 6, 7, 8},
				Attributes: []*commonpb.KeyValue{{Key: "n", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: 3}}}}},
			{SeverityText: "warn", Body: &commonpb.AnyValue{Value: &commonpb.AnyValue_KvlistValue{KvlistValue: &commonpb.KeyValueList{
				Values: []*commonpb.KeyValue{{Key: "a", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: 1.5}}}}}}}},
		}}},
	}}}
}

// FuzzOTLPLogs posts arbitrary bodies to POST /otlp/v1/logs as protobuf and
// as JSON: never a 5xx; every answer is in the request's encoding; records
// are produced only on 200, each valid.
func FuzzOTLPLogs(f *testing.F) {
	h, rec := logServer(f, 20)
	pb, err := proto.Marshal(otlpSeed())
	if err != nil {
		f.Fatal(err)
	}
	js, err := protojson.Marshal(otlpSeed())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(false, pb)
	f.Add(true, js)
	f.Add(true, []byte(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203331","timeUnixNano":"18446744073709551615"}]}]}]}`))
	f.Add(true, []byte(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"bytesValue":"/w=="},"attributes":[{"key":"","value":{}}]}]}]}]}`))
	f.Add(false, []byte{0x0a, 0x02, 0x12, 0x00})
	f.Add(false, []byte("\xff\xff"))
	f.Add(true, []byte("{"))
	f.Fuzz(func(t *testing.T, isJSON bool, body []byte) {
		before := rec.count()
		req := httptest.NewRequest(http.MethodPost, "/otlp/v1/logs", strings.NewReader(string(body)))
		ct := "application/x-protobuf"
		if isJSON {
			ct = "application/json"
		}
		req.Header.Set("Content-Type", ct)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code >= 500 || w.Header().Get("Content-Type") != ct {
			t.Fatalf("POST %s %q: %d %s %s", ct, body, w.Code, w.Header().Get("Content-Type"), w.Body)
		}
		produced := rec.all()[before:]
		if w.Code != http.StatusOK && len(produced) != 0 {
			t.Fatalf("POST %q: %d but %d records produced", body, w.Code, len(produced))
		}
		checkProduced(t, produced)
	})
}

// FuzzLogQuery sends arbitrary search parameters to GET /v1/logs over a
// SQLite store holding records, and arbitrary text straight to the store's
// search: never a 5xx, never an error but EINVALID.
func FuzzLogQuery(f *testing.F) {
	st, err := store.Open(context.Background(), store.Options{DSN: filepath.Join(f.TempDir(), "h.db")})
	if err != nil {
		f.Fatal(err)
	}
	defer st.Close()
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var seed []*herald.LogRecord
	for i, m := range []string{"connection refused", "GET /users 200", "NEAR(a b)", `"quoted" AND OR NOT *`, "ünïcödé wörds 日本語"} {
		seed = append(seed, &herald.LogRecord{ID: "l" + string(rune('a'+i)), Time: base.Add(time.Duration(i) * time.Second),
			Service: "svc", Level: herald.SeverityInfo, Message: m})
	}
	if _, err := st.InsertLogs(context.Background(), seed); err != nil {
		f.Fatal(err)
	}
	h := (&api.Server{Store: st, Producer: &recorder{}, Logger: slog.New(slog.DiscardHandler), Version: "fuzz"}).Handler()
	for _, q := range []string{"connection", `"`, `a" OR "b`, "NEAR(a b)", "*", "col:x", "^a", "a*b*", "-x", "日本", "(", "AND", "'; DROP TABLE logs; --", "a\x00b"} {
		f.Add(q, "svc", "info", "", "10")
	}
	f.Add("", "", "urgent", "", "0")
	f.Add("x", "", "", "bm9wZQ", "1001")
	f.Add("x", "", "", "MTc3MjMyMzIwMDAwMDAwMDAwMDpsYg", "1")
	f.Fuzz(func(t *testing.T, q, service, level, cursor, limit string) {
		v := url.Values{"q": {q}, "service": {service}, "level": {level}, "cursor": {cursor}, "limit": {limit}}
		req := httptest.NewRequest(http.MethodGet, "/v1/logs?"+v.Encode(), nil)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code >= 500 || (w.Code >= 400 && w.Header().Get("Content-Type") != "application/problem+json") {
			t.Fatalf("GET %s: %d %s", v.Encode(), w.Code, w.Body)
		}
		if _, err := st.SearchLogs(context.Background(), store.LogQuery{Text: q, Service: service, Limit: 5}); err != nil &&
			herald.ErrorCode(err) != herald.EINVALID {
			t.Fatalf("SearchLogs(%q): %v", q, err)
		}
	})
}

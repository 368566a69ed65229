package tracing_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/heraldproject/herald/tracing"
)

func TestExportURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:4318":                      "http://127.0.0.1:4318/v1/traces",
		"http://127.0.0.1:4318/":                     "http://127.0.0.1:4318/v1/traces",
		"https://otel.example:4318":                  "https://otel.example:4318/v1/traces",
		"http://127.0.0.1:4318/v1/traces":            "http://127.0.0.1:4318/v1/traces",
		"https://gateway.example/tenant-a/v1/traces": "https://gateway.example/tenant-a/v1/traces",
	} {
		got, err := tracing.ExportURL(in)
		if err != nil || got != want {
			t.Errorf("ExportURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"127.0.0.1:4318", "localhost:4318", "ftp://collector:4318", "http://", "grpc://c:4317", "%zz"} {
		if got, err := tracing.ExportURL(in); err == nil || !strings.Contains(err.Error(), "must be an http:// or https:// URL") {
			t.Errorf("ExportURL(%q) = %q, %v; want an error naming the form", in, got, err)
		}
	}
}

// TestSetupExportsToCollector sends a span to a collector given by its base
// URL, as docs/OBSERVABILITY.md shows, and checks it arrives where OTLP/HTTP
// collectors take spans.
func TestSetupExportsToCollector(t *testing.T) {
	var mu sync.Mutex
	var paths []string
	var bodies int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		paths = append(paths, r.Method+" "+r.URL.Path+" "+r.Header.Get("Content-Type"))
		if len(b) > 0 {
			bodies++
		}
		mu.Unlock()
		if r.URL.Path != tracing.TracesPath {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer srv.Close()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	tp, shutdown, err := tracing.Setup(context.Background(), srv.URL, 1, "test", log)
	if err != nil {
		t.Fatal(err)
	}
	_, span := tracing.Tracer(tp).Start(context.Background(), "herald.accept")
	span.End()
	if err := shutdown(context.Background()); err != nil {
		t.Fatalf("shutdown (flushes the span): %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(paths) != 1 || paths[0] != "POST /v1/traces application/x-protobuf" || bodies != 1 {
		t.Fatalf("collector saw %q (%d with a body), want one POST of the span to /v1/traces", paths, bodies)
	}
	if logs.Len() != 0 {
		t.Errorf("logged on a successful export: %s", logs.String())
	}
}

func TestSetupRefusesBadEndpoint(t *testing.T) {
	if _, _, err := tracing.Setup(context.Background(), "127.0.0.1:4318", 1, "test", nil); err == nil {
		t.Fatal("Setup accepted an endpoint with no scheme")
	}
}

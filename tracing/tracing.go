// Package tracing sets up OpenTelemetry tracing: off by default, or spans
// exported over OTLP/HTTP to tracing.endpoint. One trace follows an alert
// from the HTTP request (herald.accept) through the fan-out stage
// (herald.fanout) to each delivery attempt (herald.deliver), the span context
// travelling in Kafka record headers.
package tracing

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Name is the instrumentation scope of Herald's spans.
const Name = "github.com/heraldproject/herald"

// TracesPath is where an OTLP/HTTP collector takes spans; an endpoint
// given without a path gets it (as OTEL_EXPORTER_OTLP_ENDPOINT does).
const TracesPath = "/v1/traces"

// ExportURL is the URL spans are sent to for endpoint: an http or https URL
// of an OTLP/HTTP collector, either its base (http://127.0.0.1:4318, to
// which TracesPath is added) or the full traces URL, used as given.
func ExportURL(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("tracing.endpoint %q must be an http:// or https:// URL with a host, like http://127.0.0.1:4318", endpoint)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = TracesPath
	}
	return u.String(), nil
}

// Setup returns a tracer provider exporting to endpoint (see ExportURL),
// sampling ratio of root traces, and its shutdown. An empty endpoint
// returns a no-op provider. OpenTelemetry's own errors (a failed export)
// and diagnostics go to log: OpenTelemetry keeps them process-wide, so the
// last Setup with an endpoint sets where they go.
func Setup(ctx context.Context, endpoint string, ratio float64, version string, log *slog.Logger) (trace.TracerProvider, func(context.Context) error, error) {
	if endpoint == "" {
		return noop.NewTracerProvider(), func(context.Context) error { return nil }, nil
	}
	u, err := ExportURL(endpoint)
	if err != nil {
		return nil, nil, fmt.Errorf("tracing: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "tracing")
	otel.SetLogger(logr.FromSlogHandler(log.Handler()))
	otel.SetErrorHandler(&errorLog{log: log, endpoint: u, every: time.Minute})
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(u))
	if err != nil {
		return nil, nil, fmt.Errorf("tracing: %w", err)
	}
	res := resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName("herald"), semconv.ServiceVersion(version))
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
	)
	return tp, tp.Shutdown, nil
}

// errorLog logs OpenTelemetry's errors: the first at once, then at most one
// a period with the number left unlogged, so a collector that is down for an
// hour writes a line a minute, not one per export.
type errorLog struct {
	log      *slog.Logger
	endpoint string
	every    time.Duration

	mu      sync.Mutex
	last    time.Time
	dropped int
}

// Handle implements otel.ErrorHandler.
func (e *errorLog) Handle(err error) {
	e.mu.Lock()
	now := time.Now()
	if !e.last.IsZero() && now.Sub(e.last) < e.every {
		e.dropped++
		e.mu.Unlock()
		return
	}
	dropped := e.dropped
	e.last, e.dropped = now, 0
	e.mu.Unlock()
	e.log.Warn("tracing failed; spans that cannot be exported are dropped", "endpoint", e.endpoint, "err", err,
		"errors_not_logged", dropped)
}

// Tracer returns Herald's tracer from tp, or a no-op tracer for nil.
func Tracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	return tp.Tracer(Name)
}

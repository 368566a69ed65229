// Package tracing sets up OpenTelemetry tracing: off by default, or spans
// exported over OTLP/HTTP to tracing.endpoint. One trace follows an alert
// from the HTTP request (herald.accept) through the fan-out stage
// (herald.fanout) to each delivery attempt (herald.deliver), the span context
// travelling in Kafka record headers.
package tracing

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Name is the instrumentation scope of Herald's spans.
const Name = "github.com/heraldproject/herald"

// Setup returns a tracer provider exporting to endpoint (an OTLP/HTTP URL
// such as http://127.0.0.1:4318), sampling ratio of root traces, and its
// shutdown. An empty endpoint returns a no-op provider.
func Setup(ctx context.Context, endpoint string, ratio float64, version string) (trace.TracerProvider, func(context.Context) error, error) {
	if endpoint == "" {
		return noop.NewTracerProvider(), func(context.Context) error { return nil }, nil
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(endpoint))
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

// Tracer returns Herald's tracer from tp, or a no-op tracer for nil.
func Tracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	return tp.Tracer(Name)
}

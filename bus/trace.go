package bus

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/propagation"
)

// traceContext carries W3C trace context (traceparent, tracestate) in record
// headers, so one trace follows an alert from the HTTP request through every
// topic to each delivery.
var traceContext = propagation.TraceContext{}

type headerCarrier struct{ r *kgo.Record }

func (c headerCarrier) Get(key string) string { return Header(c.r, key) }

func (c headerCarrier) Set(key, value string) {
	for i, h := range c.r.Headers {
		if h.Key == key {
			c.r.Headers[i].Value = []byte(value)
			return
		}
	}
	c.r.Headers = append(c.r.Headers, kgo.RecordHeader{Key: key, Value: []byte(value)})
}

func (c headerCarrier) Keys() []string {
	ks := make([]string, len(c.r.Headers))
	for i, h := range c.r.Headers {
		ks[i] = h.Key
	}
	return ks
}

// InjectTrace writes ctx's span context into r's headers.
func InjectTrace(ctx context.Context, r *kgo.Record) { traceContext.Inject(ctx, headerCarrier{r}) }

// ExtractTrace returns ctx carrying the span context found in r's headers.
func ExtractTrace(ctx context.Context, r *kgo.Record) context.Context {
	return traceContext.Extract(ctx, headerCarrier{r})
}

// Package api is Herald's HTTP API: JSON over net/http with huma, which
// validates requests against the same Go types it turns into the OpenAPI 3.1
// document served at /openapi.json, so the document cannot drift from the
// code. Every error is an RFC 9457 application/problem+json response, mapped
// from herald.Error codes in one place (problem).
package api

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
	jsonv2 "github.com/go-json-experiment/json"
	jsonv1 "github.com/go-json-experiment/json/v1"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/auth"
	"github.com/heraldproject/herald/cache"
	"github.com/heraldproject/herald/event"
	"github.com/heraldproject/herald/metrics"
	"github.com/heraldproject/herald/rules"
	"github.com/heraldproject/herald/store"
	"github.com/heraldproject/herald/tracing"
)

// Producer is what the API needs from Kafka: a durable, acknowledged write.
type Producer interface {
	Produce(ctx context.Context, recs ...*kgo.Record) error
	Ping(ctx context.Context) error
}

// MaxBodyBytes is the largest request body accepted (413 beyond it).
const MaxBodyBytes = 1 << 20

// Server serves the API. Fields must be set before Handler is called.
type Server struct {
	Store    *store.Store
	Producer Producer
	// Cache is told about directory changes so no process serves stale
	// contacts; nil means no cache.
	Cache  cache.Cache
	Logger *slog.Logger
	// LogRequests is which requests get an access line at info (the rest
	// get theirs at debug): "all"; "errors" (the zero value), those
	// answered 400 or more or taking a second or more; "none".
	LogRequests string
	// humaOnly turns off the fast path of POST /v1/alerts (tests compare
	// the two).
	humaOnly bool
	// fastAnswered counts the requests the fast path answered (for tests).
	fastAnswered atomic.Int64
	// Version is reported in the OpenAPI document.
	Version string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// ProduceTimeout bounds waiting for the broker on ingest (default 10s).
	ProduceTimeout time.Duration
	// MaxRecordRecipients is the most recipient ids an alert record carries
	// (0: 10,000, about 390 KB). An alert to more is produced with its
	// targets only, and the fan-out stage resolves them again: a record
	// naming 60,000 people (2.3 MB) was refused by the broker, whose
	// records are limited to 1 MB by default.
	MaxRecordRecipients int
	// Metrics is served at /metrics and recorded into; nil serves none.
	Metrics *metrics.Metrics
	// Lag reports consumer lag for /v1/stats; nil leaves it out.
	Lag LagSource
	// Channels are the channels this deployment has configured: GET
	// /v1/stats lists them before their first outcome.
	Channels []herald.Channel
	// Tracer starts the herald.accept span of each alert (nil: no tracing).
	Tracer trace.Tracer
	// Auth checks bearer tokens; nil turns authentication off.
	Auth *auth.Authenticator
	// MetricsPublic serves /metrics without a token.
	MetricsPublic bool
	// HealthOnly serves only /healthz and /readyz (a worker process without
	// the api role).
	HealthOnly bool
	// IdempotencyWindow is how long an Idempotency-Key keeps returning the
	// first alert's id (default 24h).
	IdempotencyWindow time.Duration
	// AlertmanagerMaxAlerts is the most alerts one Alertmanager webhook
	// payload may carry (default DefaultAlertmanagerMaxAlerts).
	AlertmanagerMaxAlerts int
	// EventsMaxBatch is the most events one POST /v1/events (or records
	// one S3 notification) may carry (default event.DefaultMaxBatch).
	EventsMaxBatch int
	// Rules holds the compiled rules events are evaluated against; nil
	// makes one over Store that checks for changes every RulesReload
	// (default 2s).
	Rules       *rules.Set
	RulesReload time.Duration
	// LogsMaxBatch is the most records one log request (POST /v1/logs or
	// OTLP) may carry (default DefaultLogsMaxBatch).
	LogsMaxBatch int
	// LogsMaxBodyBytes is the largest log request body, after decompression
	// (default DefaultLogsMaxBodyBytes).
	LogsMaxBodyBytes int64

	draining atomic.Bool
	// decoding bounds the log requests being decoded and encoded at once
	// to the number of CPUs: more only holds more decoded records in
	// memory while they wait for a core.
	decoding chan struct{}
	// queryParams are the query parameters of each API route (queryParams).
	queryParams map[string][]string
}

// Drain makes ingest answer 503 from now on, so a stopping server takes no
// new work while it finishes what it has.
func (s *Server) Drain() { s.draining.Store(true) }

// Handler returns the HTTP handler for the whole API.
func (s *Server) Handler() http.Handler {
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.ProduceTimeout == 0 {
		s.ProduceTimeout = 10 * time.Second
	}
	if s.Tracer == nil {
		s.Tracer = tracing.Tracer(nil)
	}
	if s.IdempotencyWindow == 0 {
		s.IdempotencyWindow = 24 * time.Hour
	}
	if s.AlertmanagerMaxAlerts == 0 {
		s.AlertmanagerMaxAlerts = DefaultAlertmanagerMaxAlerts
	}
	if s.EventsMaxBatch == 0 {
		s.EventsMaxBatch = event.DefaultMaxBatch
	}
	if s.Rules == nil {
		s.Rules = &rules.Set{Load: s.Store, Every: cmp.Or(s.RulesReload, 2*time.Second), Logger: s.Logger}
	}
	if s.LogsMaxBatch == 0 {
		s.LogsMaxBatch = DefaultLogsMaxBatch
	}
	if s.LogsMaxBodyBytes == 0 {
		s.LogsMaxBodyBytes = DefaultLogsMaxBodyBytes
	}
	s.decoding = make(chan struct{}, runtime.GOMAXPROCS(0))
	mux := http.NewServeMux()
	cfg := huma.DefaultConfig("Herald", s.Version)
	cfg.Info.Description = "Herald takes in alerts and tells the right people over Slack, email, SMS and webhooks, " +
		"with a durable record of every delivery attempt."
	cfg.CreateHooks = nil // no $schema links in responses
	cfg.DocsPath = "/docs"
	// Request bodies are decoded on the json/v2 engine with encoding/json's
	// semantics (huma decodes each body twice: to validate, then into the
	// input type). cfg.Formats is huma's shared map: replaced, not changed.
	jsonFormat := huma.DefaultJSONFormat
	jsonFormat.Unmarshal = func(data []byte, v any) error {
		return jsonv2.Unmarshal(data, v, jsonv1.DefaultOptionsV1())
	}
	cfg.Formats = map[string]huma.Format{"application/json": jsonFormat, "json": jsonFormat}
	cfg.Transformers = append(cfg.Transformers, quietErrorValues)
	// Bearer tokens, so /docs can authorize and generated clients know;
	// the health routes say they need none (api/health.go).
	if cfg.Components.SecuritySchemes == nil {
		cfg.Components.SecuritySchemes = map[string]*huma.SecurityScheme{}
	}
	cfg.Components.SecuritySchemes["bearer"] = &huma.SecurityScheme{Type: "http", Scheme: "bearer",
		Description: "an API token (hrl_…): POST /v1/tokens, herald token create, or <data-dir>/admin.token"}
	cfg.Security = []map[string][]string{{"bearer": {}}}
	a := humago.New(mux, cfg)
	s.registerHealth(a)
	if s.Metrics != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(s.Metrics.Gatherer(), promhttp.HandlerOpts{Registry: s.Metrics.Registry}))
	}
	if s.HealthOnly {
		return s.middleware(s.authorize(mux, mux))
	}
	s.registerUsers(a)
	s.registerGroups(a)
	s.registerAlerts(a)
	s.registerAlertmanager(a)
	s.registerEvents(a)
	s.registerRules(a)
	s.registerLogs(a, mux)
	s.registerDeadLetters(a)
	s.registerStats(a)
	s.registerTokens(a)
	s.queryParams = queryParams(a.OpenAPI())
	return s.middleware(s.authorize(mux, s.acceptAlertsFast(mux)))
}

// queryParams lists, by route pattern ("GET /v1/alerts"), the query
// parameters each operation of doc takes.
func queryParams(doc *huma.OpenAPI) map[string][]string {
	out := make(map[string][]string)
	for path, item := range doc.Paths {
		for method, op := range map[string]*huma.Operation{http.MethodGet: item.Get, http.MethodPost: item.Post,
			http.MethodPut: item.Put, http.MethodPatch: item.Patch, http.MethodDelete: item.Delete} {
			if op == nil {
				continue
			}
			names := []string{}
			for _, p := range op.Parameters {
				if p.In == "query" {
					names = append(names, p.Name)
				}
			}
			out[method+" "+path] = names
		}
	}
	return out
}

// unknownQuery returns the first query parameter of a GET request r that
// its route does not take, and the ones it takes; "" when all are known (or
// the route takes no query parameters, or is not an API operation). A misspelled filter (?chanel=) would
// otherwise be ignored and answer everything.
func (s *Server) unknownQuery(pattern string, r *http.Request) (string, []string) {
	if r.URL.RawQuery == "" || r.Method != http.MethodGet {
		return "", nil // a POST's stray parameter filters nothing
	}
	names := s.queryParams[pattern]
	if len(names) == 0 {
		// Only routes with filters: a stray parameter elsewhere (a probe's
		// cache-buster on /readyz) filters nothing.
		return "", nil
	}
	for k := range r.URL.Query() {
		if !slices.Contains(names, k) {
			return k, names
		}
	}
	return "", nil
}

// problem turns an error into the problem+json response for it. It is the
// one place where error codes become HTTP statuses.
func (s *Server) problem(ctx context.Context, err error) error {
	var se huma.StatusError
	if errors.As(err, &se) {
		return err
	}
	msg := herald.ErrorMessage(err)
	switch herald.ErrorCode(err) {
	case herald.EINVALID:
		return huma.Error422UnprocessableEntity(msg)
	case herald.ENOTFOUND:
		return huma.Error404NotFound(msg)
	case herald.ECONFLICT:
		return huma.Error409Conflict(msg)
	case herald.EUNAVAILABLE:
		return huma.Error503ServiceUnavailable(msg)
	case herald.EUNAUTHORIZED:
		return huma.Error401Unauthorized(msg)
	case herald.EFORBIDDEN:
		return huma.Error403Forbidden(msg)
	case herald.ETOOMANY:
		return huma.Error429TooManyRequests(msg)
	}
	s.Logger.ErrorContext(ctx, "internal error", "request_id", RequestID(ctx), "err", err)
	return huma.Error500InternalServerError("internal error; see the server log for request " + RequestID(ctx))
}

// quietErrorValues is a huma transformer: the value an error detail
// echoes back is kept only when it is short and harmless. Huma echoes the
// whole object an unexpected property is in, and the raw body JSON it
// could not parse, so a rejected user would come back with its
// webhookSecret or Slack token in the answer (and a 1 MiB body as a 1 MiB
// error). Objects, arrays, raw bodies and the values of fields whose names
// say they are secret are left out; other strings are clipped to 256 bytes.
func quietErrorValues(_ huma.Context, _ string, v any) (any, error) {
	em, ok := v.(*huma.ErrorModel)
	if !ok {
		return v, nil
	}
	for _, d := range em.Errors {
		if d != nil {
			d.Value = quietValue(d.Location, d.Value)
		}
	}
	return v, nil
}

func quietValue(location string, v any) any {
	loc := strings.ToLower(location)
	if loc == "body" || strings.Contains(loc, "secret") || strings.Contains(loc, "token") ||
		strings.Contains(loc, "password") || strings.Contains(loc, "authorization") {
		return nil
	}
	switch v := v.(type) {
	case string:
		return clip(v)
	case bool, int, int64, float64:
		return v
	}
	return nil
}

// invalid is a 422 naming the offending field.
func invalid(location, msg string, value any) error {
	return huma.Error422UnprocessableEntity("validation failed", &huma.ErrorDetail{
		Location: location, Message: msg, Value: value,
	})
}

// directoryChanged invalidates cached directory reads after a change.
func (s *Server) directoryChanged(ctx context.Context) {
	if s.Cache == nil {
		return
	}
	if err := s.Cache.InvalidateUsers(ctx); err != nil {
		s.Logger.WarnContext(ctx, "cache invalidation failed; cached contacts expire within cache.userTTL",
			"request_id", RequestID(ctx), "err", err)
	}
}

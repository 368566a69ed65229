package api

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/propagation"
)

type requestIDKey struct{}

// RequestID returns the request id carried by ctx, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// validRequestID accepts a caller's X-Request-Id when it is short and plain.
func validRequestID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, r := range s {
		if r < 0x21 || r > 0x7e {
			return false
		}
	}
	return true
}

type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// readBody is a request body the middleware has read into memory; a handler
// can take its bytes (bodyBytes) without reading it again.
type readBody struct {
	*bytes.Reader
	b []byte
}

func (*readBody) Close() error { return nil }

// bodyBytes returns r's body as bytes, leaving r.Body to be read from the
// start by a later handler.
func bodyBytes(r *http.Request) ([]byte, error) {
	if rb, ok := r.Body.(*readBody); ok {
		return rb.b, nil
	}
	b, err := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(b))
	return b, err
}

// middleware gives every request an id (X-Request-Id, the caller's if sane),
// logs it, and turns a panic into a 500 problem instead of a dropped
// connection.
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			id = uuid.Must(uuid.NewV7()).String()
		}
		w.Header().Set("X-Request-Id", id)
		// Bodies: at most MaxBodyBytes, and valid UTF-8 (a JSON decoder would
		// silently turn bad bytes into U+FFFD).
		// Log ingest reads its own (bigger, possibly gzip or protobuf) body.
		if r.Body != nil && r.ContentLength != 0 && !ownsBody(r) && (r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch) {
			b, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
			switch {
			case err != nil:
				writeProblem(w, http.StatusBadRequest, "could not read the request body")
				return
			case len(b) > MaxBodyBytes:
				writeProblem(w, http.StatusRequestEntityTooLarge, "request body is too large: the limit is 1 MiB")
				return
			case !utf8.Valid(b):
				writeProblem(w, http.StatusBadRequest, "request body is not valid UTF-8")
				return
			case hasNUL(b):
				// PostgreSQL cannot store U+0000 in text; refused here, it
				// can never reach a store write and stall a partition.
				writeProblem(w, http.StatusUnprocessableEntity, `request body contains a NUL character (\u0000), which Herald does not accept in any field`)
				return
			}
			r.Body = &readBody{Reader: bytes.NewReader(b), b: b}
			r.ContentLength = int64(len(b))
		}
		// Herald reads JSON only. curl -d sends a form content type by
		// default; read such bodies (and unlabelled ones) as the JSON they are.
		if ct := r.Header.Get("Content-Type"); r.ContentLength != 0 &&
			(ct == "" || strings.HasPrefix(ct, "application/x-www-form-urlencoded")) {
			r.Header.Set("Content-Type", "application/json")
		}
		ctx := context.WithValue(r.Context(), requestIDKey{}, id)
		if r.Header.Get("Traceparent") != "" {
			// A caller's W3C trace context: Herald's spans join its trace.
			ctx = propagation.TraceContext{}.Extract(ctx, propagation.HeaderCarrier(r.Header))
		}
		r = r.WithContext(ctx)
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				s.Logger.Error("panic serving request", "request_id", id, "panic", p, "stack", string(debug.Stack()))
				if sw.status == 0 {
					w.Header().Set("Content-Type", "application/problem+json")
					w.WriteHeader(http.StatusInternalServerError)
					_, _ = w.Write([]byte(`{"title":"Internal Server Error","status":500,"detail":"internal error; see the server log for request ` + id + `"}`))
				}
				return
			}
			route := r.Pattern
			if route == "" {
				route = "unmatched"
			}
			code := strconv.Itoa(sw.status)
			s.Metrics.HTTPRequest(route, code)
			switch route {
			case "POST /v1/alerts":
				if sw.Header().Get("Idempotent-Replayed") == "true" {
					// Accepted before: no new record to count.
					s.Metrics.IngestDuration("alert", code, time.Since(start))
				} else {
					s.Metrics.Ingested("alert", code, time.Since(start))
				}
			case "POST /v1/integrations/alertmanager":
				// One request, many alerts: the handler counts the alerts
				// it produced (Accepted).
				s.Metrics.IngestDuration("alertmanager", code, time.Since(start))
			case "POST /v1/events":
				s.Metrics.IngestDuration("event", code, time.Since(start))
			case "POST /v1/integrations/s3":
				s.Metrics.IngestDuration("s3", code, time.Since(start))
			case "POST /v1/logs", "POST /otlp/v1/logs":
				// Many records per request: the handler counts them.
				s.Metrics.IngestDuration("log", code, time.Since(start))
			}
			took := time.Since(start)
			if lvl := s.accessLevel(r.URL.Path, sw.status, took); s.Logger.Enabled(ctx, lvl) {
				s.Logger.Log(ctx, lvl, "http request", "request_id", id, "method", r.Method, "path", r.URL.Path,
					"status", sw.status, "bytes", sw.bytes, "duration", took)
			}
		}()
		next.ServeHTTP(sw, r)
	})
}

// slowRequest is how long a request takes before log.requests=errors
// logs it at info like a failed one.
const slowRequest = time.Second

// accessLevel is the level of a request's access line (LogRequests).
// Health checks and scrapes are at debug whatever the setting: they come
// every few seconds and say nothing. At thousands of alerts a second a line
// per request was 2% of the CPU and most of the log; the store keeps every
// alert, and a failure or a slow request is what an operator looks for.
func (s *Server) accessLevel(path string, status int, took time.Duration) slog.Level {
	switch {
	case path == "/healthz" || path == "/readyz" || path == "/metrics":
		return slog.LevelDebug
	case s.LogRequests == "all":
		return slog.LevelInfo
	case s.LogRequests == "none":
		return slog.LevelDebug
	case status >= 400 || took >= slowRequest:
		return slog.LevelInfo
	}
	return slog.LevelDebug
}

// hasNUL reports whether a JSON body holds U+0000: a raw zero byte, or a
// \u0000 escape (not an escaped backslash followed by "u0000").
func hasNUL(b []byte) bool {
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case 0:
			return true
		case '\\':
			if i+1 < len(b) && b[i+1] == 'u' && i+6 <= len(b) && string(b[i+2:i+6]) == "0000" {
				return true
			}
			i++ // skip the escaped character
		}
	}
	return false
}

package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/auth"
)

// scopeFor says what a route needs: "" for public routes, else a scope.
func (s *Server) scopeFor(pattern, path string) string {
	switch {
	case pattern == "" || pattern == "GET /healthz" || pattern == "GET /readyz":
		return ""
	case strings.HasPrefix(path, "/openapi") || strings.HasPrefix(path, "/docs") || strings.HasPrefix(path, "/schemas"):
		return ""
	case pattern == "GET /metrics":
		if s.MetricsPublic {
			return ""
		}
		return herald.ScopeRead
	case pattern == "POST /v1/alerts", pattern == "POST /v1/integrations/alertmanager",
		pattern == "POST /v1/events", pattern == "POST /v1/integrations/s3",
		pattern == "POST /v1/logs", pattern == "POST /otlp/v1/logs":
		return herald.ScopeIngest
	case pattern == "GET /v1/alerts", pattern == "GET /v1/alerts/{id}", pattern == "GET /v1/dead-letters",
		pattern == "GET /v1/dead-letters/{id}", pattern == "GET /v1/stats", pattern == "GET /v1/logs":
		return herald.ScopeRead
	}
	return herald.ScopeAdmin
}

// authorize checks the bearer token against what the route needs, and
// answers requests no route matches (404, 405) in problem+json.
func (s *Server) authorize(mux *http.ServeMux, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern == "" {
			unmatched(h, w, r)
			return
		}
		// The route, for the request metrics of an answer given here.
		r.Pattern = pattern
		// Once the caller may use the route, a query parameter it does not
		// take is refused.
		next := next
		if name, takes := s.unknownQuery(pattern, r); name != "" {
			next = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				writeProblemDetails(w, http.StatusUnprocessableEntity, "unknown query parameter "+strconv.Quote(clip(name))+
					"; this route takes "+strings.Join(takes, ", "),
					[]*huma.ErrorDetail{{Location: "query." + clip(name), Message: "unknown query parameter"}})
			})
		}
		if s.Auth == nil {
			next.ServeHTTP(w, r)
			return
		}
		need := s.scopeFor(pattern, r.URL.Path)
		if need == "" {
			next.ServeHTTP(w, r)
			return
		}
		t, err := s.Auth.Check(r.Context(), r.Header.Get("Authorization"))
		if err != nil {
			if herald.ErrorCode(err) != herald.EUNAUTHORIZED {
				s.Logger.ErrorContext(r.Context(), "token check failed", "request_id", RequestID(r.Context()), "err", err)
				writeProblem(w, http.StatusServiceUnavailable, "could not check the token; retry")
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="herald"`)
			writeProblem(w, http.StatusUnauthorized, herald.ErrorMessage(err))
			return
		}
		if ok, wait := s.Auth.Allow(t); !ok {
			w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
			writeProblem(w, http.StatusTooManyRequests, "this token's request rate limit is exhausted; retry after the Retry-After seconds")
			return
		}
		if t.UserID != "" {
			// A user-bound token reads only what is its user's.
			if r.Method != http.MethodGet || pattern != "GET /v1/users/{id}" ||
				strings.TrimPrefix(r.URL.Path, "/v1/users/") != t.UserID {
				writeProblem(w, http.StatusForbidden, "this token is bound to user "+t.UserID+" and can read only that user")
				return
			}
			if !auth.Allows(t.Scope, herald.ScopeRead) {
				writeProblem(w, http.StatusForbidden, "this token's scope is "+t.Scope+"; this needs read")
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		if !auth.Allows(t.Scope, need) {
			writeProblem(w, http.StatusForbidden, "this token's scope is "+t.Scope+"; this needs "+need)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// unmatched answers a request no route takes: h is what the mux would
// serve (its 404, or its 405 with the Allow header), turned into
// problem+json.
func unmatched(h http.Handler, w http.ResponseWriter, r *http.Request) {
	rec := &statusRecorder{header: http.Header{}}
	h.ServeHTTP(rec, r)
	if rec.status == http.StatusMethodNotAllowed {
		allow := rec.header.Get("Allow")
		w.Header().Set("Allow", allow)
		writeProblem(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s is not allowed on %s; allowed: %s", clip(r.Method), clip(r.URL.Path), allow))
		return
	}
	writeProblem(w, http.StatusNotFound, fmt.Sprintf("no route %s %s; the API is described at /docs and /openapi.json", clip(r.Method), clip(r.URL.Path)))
}

// statusRecorder keeps the status and headers a handler writes, and drops
// its body.
type statusRecorder struct {
	header http.Header
	status int
}

func (s *statusRecorder) Header() http.Header { return s.header }

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	s.WriteHeader(http.StatusOK)
	return len(b), nil
}

func writeProblem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"title": http.StatusText(status), "status": status, "detail": detail})
}

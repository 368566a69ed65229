package api_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/api"
	"github.com/heraldproject/herald/store"
)

// recorder stands in for Kafka: it keeps what the API produced, so the fuzz
// target can check that an accepted alert was really handed on.
type recorder struct {
	mu   sync.Mutex
	recs []*kgo.Record
}

func (r *recorder) Produce(_ context.Context, recs ...*kgo.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, recs...)
	return nil
}

func (r *recorder) Ping(context.Context) error { return nil }

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.recs)
}

// FuzzAlertAPI posts arbitrary bodies to POST /v1/alerts (and /v1/users):
// every answer must be 2xx or a 4xx problem, never a 5xx, and an alert is
// produced exactly when the answer is 202.
func FuzzAlertAPI(f *testing.F) {
	st, err := store.Open(context.Background(), store.Options{DSN: filepath.Join(f.TempDir(), "h.db")})
	if err != nil {
		f.Fatal(err)
	}
	defer st.Close()
	if err := st.CreateUser(context.Background(), &herald.User{ID: "u1", Name: "alice", WebhookURL: "http://127.0.0.1/x"}); err != nil {
		f.Fatal(err)
	}
	rec := &recorder{}
	srv := &api.Server{Store: st, Producer: rec, Logger: slog.New(slog.DiscardHandler), Version: "fuzz"}
	h := srv.Handler()
	for _, s := range []string{
		`{"target":["@alice"],"severity":"error","message":"m"}`,
		`{"target":["@alice","@@ops"],"severity":"warn","message":"m","labels":{"a":"b"},"channels":["sms"]}`,
		`{"target":"@alice"}`, `{"target":[1]}`, `{"severity":{"a":[[[[[]]]]]}}`, `{"message":"\ud800"}`,
		`{"target":["@alice"],"severity":"info","message":"m","labels":{"k":"` + strings.Repeat("v", 2000) + `"}}`,
		`{"target":["@alice"],"severity":"info","message":1e999}`, "{", "", "\xff",
	} {
		f.Add("/v1/alerts", s)
	}
	f.Add("/v1/users", `{"name":"bob","webhookUrl":"javascript:alert(1)"}`)
	f.Add("/v1/users", `{"name":"bob","slack":{"token":"x"}}`)
	f.Fuzz(func(t *testing.T, path, body string) {
		if path != "/v1/alerts" && path != "/v1/users" {
			path = "/v1/alerts"
		}
		before := rec.count()
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		code := w.Code
		if code >= 500 {
			t.Fatalf("POST %s %q: %d %s", path, body, code, w.Body)
		}
		if code >= 400 && w.Header().Get("Content-Type") != "application/problem+json" {
			t.Fatalf("POST %s %q: %d without problem+json", path, body, code)
		}
		if path == "/v1/alerts" && (code == http.StatusAccepted) != (rec.count() == before+1) {
			t.Fatalf("POST %q: status %d but %d records produced", body, code, rec.count()-before)
		}
	})
}

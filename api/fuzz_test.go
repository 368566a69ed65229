package api_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
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

func (r *recorder) all() []*kgo.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.recs)
}

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

// amPayload is a payload as Alertmanager 0.25+ posts it: two firing alerts
// and one resolved, grouped by alertname.
const amPayload = `{"receiver":"herald","status":"firing","alerts":[` +
	`{"status":"firing","labels":{"alertname":"DiskFull","instance":"db-1:9100","job":"node","severity":"critical"},` +
	`"annotations":{"summary":"Disk full on db-1","description":"/var is 99% full"},"startsAt":"2026-03-01T10:00:00.123Z",` +
	`"endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://prometheus:9090/graph?g0.expr=disk_free+%3C+0.01\u0026g0.tab=1","fingerprint":"1a30ba71cca2921f"},` +
	`{"status":"firing","labels":{"alertname":"DiskFull","instance":"db-2:9100","job":"node","severity":"warning"},` +
	`"annotations":{"summary":"Disk filling on db-2"},"startsAt":"2026-03-01T10:01:00Z","endsAt":"0001-01-01T00:00:00Z",` +
	`"generatorURL":"http://prometheus:9090/graph","fingerprint":"2b41cb82ddb3a32e"},` +
	`{"status":"resolved","labels":{"alertname":"DiskFull","instance":"db-3:9100","job":"node","severity":"page"},` +
	`"annotations":{"summary":"Disk full on db-3"},"startsAt":"2026-03-01T09:00:00Z","endsAt":"2026-03-01T09:30:00Z",` +
	`"generatorURL":"","fingerprint":"3c52dc93eec4b43f"}],` +
	`"groupLabels":{"alertname":"DiskFull"},"commonLabels":{"alertname":"DiskFull","job":"node"},"commonAnnotations":{},` +
	`"externalURL":"http://alertmanager:9093","version":"4","groupKey":"{}:{alertname=\"DiskFull\"}","truncatedAlerts":0}`

// FuzzAlertmanagerPayload posts arbitrary query strings and bodies to POST
// /v1/integrations/alertmanager: every answer must be a 202 or a 4xx problem,
// never a 5xx; nothing may be produced unless the answer is 202, and then
// exactly one record per new alert id in the answer (none for ignored or
// replayed alerts).
func FuzzAlertmanagerPayload(f *testing.F) {
	st, err := store.Open(context.Background(), store.Options{DSN: filepath.Join(f.TempDir(), "h.db")})
	if err != nil {
		f.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	if err := st.CreateUser(ctx, &herald.User{ID: "u1", Name: "alice", WebhookURL: "http://127.0.0.1/x"}); err != nil {
		f.Fatal(err)
	}
	if err := st.CreateGroup(ctx, &herald.Group{ID: "g1", Name: "oncall"}); err != nil {
		f.Fatal(err)
	}
	rec := &recorder{}
	srv := &api.Server{Store: st, Producer: rec, Logger: slog.New(slog.DiscardHandler), Version: "fuzz", AlertmanagerMaxAlerts: 50}
	h := srv.Handler()
	f.Add("target=@alice", amPayload)
	f.Add("target=@alice&target=@@oncall&resolved=ignore", amPayload)
	f.Add("target=@alice,@@oncall", strings.Replace(amPayload, `"page"`, `"urgent"`, 1))
	f.Add("", strings.ReplaceAll(amPayload, `"job":"node"`, `"job":"node","herald_target":"@alice, @@oncall"`))
	f.Add("", amPayload)
	f.Add("target=@ghost", amPayload)
	f.Add("target=alice", amPayload)
	f.Add("resolved=maybe&target=@alice", amPayload)
	f.Add("target=@alice", `{"version":"4","alerts":[]}`)
	f.Add("target=@alice", `{"version":"5","alerts":[{"status":"firing","startsAt":"2026-03-01T10:00:00Z","labels":{"alertname":"A"}}]}`)
	f.Add("target=@alice", `{"alerts":[{"status":"firing","startsAt":"yesterday","labels":{"alertname":"A"}}]}`)
	f.Add("target=@alice", `{"alerts":[{"status":"pending","startsAt":"2026-03-01T10:00:00Z","labels":{"alertname":"A"}}]}`)
	f.Add("target=@alice", `{"alerts":[{"status":"firing","startsAt":"2026-03-01T10:00:00Z","labels":{"alertname":5}}]}`)
	f.Add("target=@alice", `{"alerts":[{"status":"firing","startsAt":"2026-03-01T10:00:00Z","labels":{"":"x"}}]}`)
	f.Add("target=@alice", `{"alerts":[{"status":"firing","startsAt":"2026-03-01T10:00:00Z"}]}`)
	f.Add("target=@alice", `{"alerts":null}`)
	f.Add("target=@alice", `{"alerts":{"status":"firing"}}`)
	f.Add("target=@alice", `{"alerts":[{"status":"firing","startsAt":"2026-03-01T10:00:00Z","labels":{"alertname":"A"},"annotations":{"summary":"`+strings.Repeat("s", 600)+`"}}]}`)
	f.Add("target=@alice", `{"alerts":[`+strings.Repeat(`{"status":"firing","startsAt":"2026-03-01T10:00:00Z","labels":{"alertname":"A"}},`, 50)+
		`{"status":"firing","startsAt":"2026-03-01T10:00:00Z","labels":{"alertname":"A"}}]}`)
	f.Add("target=@alice", "{")
	f.Add("target=@alice", "\xff")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, query, body string) {
		before := rec.count()
		req := httptest.NewRequest(http.MethodPost, "/v1/integrations/alertmanager", strings.NewReader(body))
		req.URL.RawQuery = query
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		code, produced := w.Code, rec.count()-before
		if code >= 500 {
			t.Fatalf("POST ?%s %q: %d %s", query, body, code, w.Body)
		}
		if code >= 400 && w.Header().Get("Content-Type") != "application/problem+json" {
			t.Fatalf("POST ?%s %q: %d without problem+json", query, body, code)
		}
		if code != http.StatusAccepted {
			if produced != 0 {
				t.Fatalf("POST ?%s %q: status %d but %d records produced", query, body, code, produced)
			}
			return
		}
		var out struct {
			Accepted int `json:"accepted"`
			Ignored  int `json:"ignored"`
			Alerts   []struct {
				ID       string `json:"id"`
				Replayed bool   `json:"replayed"`
			} `json:"alerts"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
			t.Fatalf("POST ?%s %q: 202 with %q: %v", query, body, w.Body, err)
		}
		fresh := map[string]bool{}
		for _, a := range out.Alerts {
			if a.ID == "" {
				t.Fatalf("POST ?%s %q: an accepted alert without id: %s", query, body, w.Body)
			}
			if !a.Replayed {
				fresh[a.ID] = true
			}
		}
		if out.Accepted != len(out.Alerts) || out.Accepted+out.Ignored == 0 || produced != len(fresh) {
			t.Fatalf("POST ?%s %q: %s but %d records produced", query, body, w.Body, produced)
		}
	})
}

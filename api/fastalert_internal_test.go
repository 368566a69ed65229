package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/internal/teststore"
	"github.com/heraldproject/herald/store"
)

// keptRecords stands in for Kafka, keeping what was produced; fail makes
// Produce fail.
type keptRecords struct {
	mu   sync.Mutex
	recs []*kgo.Record
	fail bool
}

func (k *keptRecords) Produce(_ context.Context, recs ...*kgo.Record) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.fail {
		return errors.New("broker down")
	}
	k.recs = append(k.recs, recs...)
	return nil
}

func (k *keptRecords) Ping(context.Context) error { return nil }

func (k *keptRecords) take() []*kgo.Record {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := k.recs
	k.recs = nil
	return out
}

// fastAndHuma returns two handlers on one store, with and without the fast
// path of POST /v1/alerts, and their producers.
func fastAndHuma(tb testing.TB, st *store.Store) (fastSrv *Server, fast, slow http.Handler, fastRecs, slowRecs *keptRecords) {
	tb.Helper()
	fastRecs, slowRecs = &keptRecords{}, &keptRecords{}
	log := slog.New(slog.DiscardHandler)
	fastSrv = &Server{Store: st, Producer: fastRecs, Logger: log, Version: "test"}
	fast = fastSrv.Handler()
	slow = (&Server{Store: st, Producer: slowRecs, Logger: log, Version: "test", humaOnly: true}).Handler()
	return fastSrv, fast, slow, fastRecs, slowRecs
}

var (
	uuidRE    = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	createdRE = regexp.MustCompile(`"createdAt":"[^"]*"`)
)

// answer is what a client sees of a response, fresh ids and times masked,
// and a problem's errors sorted: huma lists unexpected properties in map
// order, which differs between two runs of one request.
func answer(w *httptest.ResponseRecorder) string {
	h := w.Header()
	body := w.Body.String()
	var problem map[string]any
	if h.Get("Content-Type") == "application/problem+json" && json.Unmarshal(w.Body.Bytes(), &problem) == nil {
		if errs, ok := problem["errors"].([]any); ok {
			slices.SortFunc(errs, func(a, b any) int {
				ja, _ := json.Marshal(a)
				jb, _ := json.Marshal(b)
				return strings.Compare(string(ja), string(jb))
			})
		}
		sorted, _ := json.Marshal(problem)
		body = string(sorted)
	}
	s := strings.Join([]string{http.StatusText(w.Code), h.Get("Content-Type"), h.Get("Location"),
		h.Get("Idempotent-Replayed"), h.Get("Retry-After"), body}, "|")
	return uuidRE.ReplaceAllString(s, "<id>")
}

// recordsOf is what was produced, fresh ids and times masked.
func recordsOf(recs []*kgo.Record) string {
	var b strings.Builder
	for _, r := range recs {
		b.WriteString(r.Topic + " " + string(r.Key) + " " + string(r.Value) + "\n")
		for _, h := range r.Headers {
			if h.Key != "request_id" {
				b.WriteString(" " + h.Key + "=" + string(h.Value))
			}
		}
	}
	return createdRE.ReplaceAllString(uuidRE.ReplaceAllString(b.String(), "<id>"), `"createdAt":"<t>"`)
}

// sameAnswers posts body with the headers to both handlers (fast served by
// srv) and fails unless the records produced are the same and so are the
// answers: all of them when the fast path answered; status and content type
// when it handed the request to huma, which then answered on both sides
// (huma's own answers to some bad bodies differ between two runs, in the
// order and even the locations of their errors, as it walks a map). It
// returns the status and whether the fast path answered.
func sameAnswers(t *testing.T, srv *Server, fast, slow http.Handler, fastRecs, slowRecs *keptRecords, body string,
	header http.Header) (code int, answered bool) {
	t.Helper()
	before := srv.fastAnswered.Load()
	serve := func(h http.Handler) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/v1/alerts", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		for k, vs := range header {
			req.Header[k] = vs
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	f, s := serve(fast), serve(slow)
	answered = srv.fastAnswered.Load() > before
	if af, as := answer(f), answer(s); af != as && (answered || f.Code != s.Code ||
		f.Header().Get("Content-Type") != s.Header().Get("Content-Type")) {
		t.Fatalf("POST %q %v (fast path answered: %v):\nfast path: %s\nhuma:      %s", body, header, answered, af, as)
	}
	if rf, rs := recordsOf(fastRecs.take()), recordsOf(slowRecs.take()); rf != rs {
		t.Fatalf("POST %q %v produced:\nfast path: %s\nhuma:      %s", body, header, rf, rs)
	}
	return f.Code, answered
}

// TestFastAlertPathAnswersAsHuma: POST /v1/alerts answers and produces the
// same with the fast path as huma alone does, for valid alerts and for every
// kind of bad one (which the fast path hands to huma).
func TestFastAlertPathAnswersAsHuma(t *testing.T) {
	st := teststore.SQLite(t, &herald.User{ID: "u1", Name: "alice", WebhookURL: "http://127.0.0.1/x"},
		&herald.User{ID: "u2", Name: "bob", WebhookURL: "http://127.0.0.1/y"})
	ctx := context.Background()
	if err := st.CreateGroup(ctx, &herald.Group{ID: "g1", Name: "ops"}); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"u1", "u2"} {
		if err := st.AddMember(ctx, "g1", u); err != nil {
			t.Fatal(err)
		}
	}
	// An alert sent with a key and fanned out: the same key again is a
	// replay.
	stored := &herald.Alert{ID: "01a24d48-8a66-7ca5-8ab0-0751b04f5465", Severity: herald.SeverityError, Message: "m",
		Targets: []string{"@alice"}, IdempotencyKey: "k-stored", CreatedAt: time.Now()}
	if err := st.RecordFanouts(ctx, []*store.Fanout{{Alert: stored, UserCount: 1}}); err != nil {
		t.Fatal(err)
	}
	srv, fast, slow, fastRecs, slowRecs := fastAndHuma(t, st)
	ok := `{"target":["@alice"],"severity":"error","message":"m"}`
	for _, tc := range []struct {
		body   string
		header http.Header
		want   int
		fast   bool // answered by the fast path, not handed to huma
	}{
		{ok, nil, 202, true},
		{`{"target":["@alice","@@ops"],"severity":"warn","message":"disk full","title":"t","source":"s",` +
			`"labels":{"host":"db-1","team":"storage"},"channels":["webhook"]}`, nil, 202, true},
		{` { "message" : "é ü ✓", "severity":"CRITICAL", "target":["@@ops"] , "labels":{}, "channels":[] } `, nil, 202, true},
		{ok, http.Header{"Idempotency-Key": {"k-1"}}, 202, true},
		{ok, http.Header{"Idempotency-Key": {"k-stored"}}, 202, true},
		{ok, http.Header{"Accept": {"*/*"}}, 202, true},
		{ok, http.Header{"Accept": {"application/json"}}, 202, true},
		{ok, http.Header{"Accept": {"application/cbor"}}, 202, false},
		{ok, http.Header{"Content-Type": {"application/json; charset=utf-8"}}, 202, false},
		{ok, http.Header{"Idempotency-Key": {strings.Repeat("k", 256)}}, 422, false},
		{ok, http.Header{"Idempotency-Key": {"alertmanager:x"}}, 422, false},
		{ok, http.Header{"Idempotency-Key": {"event:x"}}, 422, false},
		{`{"target":["@alice"],"severity":"error","message":"m","title":null}`, nil, 202, false},
		{`{"target":["@alice"],"severity":"error","message":"m","extra":1}`, nil, 422, false},
		{`{"target":["@alice"],"severity":"error","message":"m","message":"n"}`, nil, 0, false},
		{`{"Target":["@alice"],"severity":"error","message":"m"}`, nil, 202, false}, // huma matches names as encoding/json does
		{`{"target":["@alice"],"message":"m"}`, nil, 422, false},
		{`{"target":[],"severity":"error","message":"m"}`, nil, 422, false},
		{`{"target":["@nobody"],"severity":"error","message":"m"}`, nil, 422, false},
		{`{"target":"@alice","severity":"error","message":"m"}`, nil, 422, false},
		{`{"target":[1],"severity":"error","message":"m"}`, nil, 422, false},
		{`{"target":["@alice"],"severity":"bad","message":"m"}`, nil, 422, false},
		{`{"target":["@alice"],"severity":"  error          x","message":"m"}`, nil, 422, false},
		{`{"target":["@alice"],"severity":"error","message":""}`, nil, 422, false},
		{`{"target":["@alice"],"severity":"error","message":"   "}`, nil, 422, false},
		{`{"target":["@alice"],"severity":"error","message":"m","title":"` + strings.Repeat("t", 513) + `"}`, nil, 422, false},
		{`{"target":["@alice"],"severity":"error","message":"m","channels":["sms","sms"]}`, nil, 422, false},
		{`{"target":["@alice"],"severity":"error","message":"m","channels":["webhook","slack","email","sms","push"]}`, nil, 422, false},
		{`{"target":["@alice"],"severity":"error","message":"m","labels":{"k":1}}`, nil, 422, false},
		{`{"target":["@alice"],"severity":"error","message":"m","labels":{"k":{"a":"b"}}}`, nil, 422, false},
		{`{"target":["@alice"],"severity":"error","message":"m","labels":{"k":"` + strings.Repeat("v", 1025) + `"}}`, nil, 422, false},
		{`{"target":["@alice"],"severity":"error","message":"m"} {}`, nil, 0, false},
		{`{"target":["@alice"],"severity":"error","message":"\ud800"}`, nil, 0, false},
		{`[]`, nil, 0, false}, {`{}`, nil, 422, false}, {`null`, nil, 0, false}, {`{`, nil, 0, false},
	} {
		code, answered := sameAnswers(t, srv, fast, slow, fastRecs, slowRecs, tc.body, tc.header)
		if tc.want != 0 && code != tc.want {
			t.Errorf("POST %q %v: %d, want %d", tc.body, tc.header, code, tc.want)
		}
		if answered != tc.fast {
			t.Errorf("POST %q %v: answered by the fast path %v, want %v", tc.body, tc.header, answered, tc.fast)
		}
	}
}

// TestFastAlertPathBrokerDown: when the broker refuses the record, the fast
// path answers 503 as huma does, and nothing was produced.
func TestFastAlertPathBrokerDown(t *testing.T) {
	st := teststore.SQLite(t, &herald.User{ID: "u1", Name: "alice", WebhookURL: "http://127.0.0.1/x"})
	srv, fast, slow, fastRecs, slowRecs := fastAndHuma(t, st)
	fastRecs.fail, slowRecs.fail = true, true
	if code, answered := sameAnswers(t, srv, fast, slow, fastRecs, slowRecs, `{"target":["@alice"],"severity":"error","message":"m"}`, nil); code != http.StatusServiceUnavailable || !answered {
		t.Fatalf("broker down: %d (fast path answered: %v), want 503 from the fast path", code, answered)
	}
}

// FuzzAlertFastPath: for any body, the fast path of POST /v1/alerts answers
// and produces as huma alone does.
func FuzzAlertFastPath(f *testing.F) {
	st := teststore.SQLite(f, &herald.User{ID: "u1", Name: "alice", WebhookURL: "http://127.0.0.1/x"})
	srv, fast, slow, fastRecs, slowRecs := fastAndHuma(f, st)
	for _, s := range []string{
		`{"target":["@alice"],"severity":"error","message":"m"}`,
		`{"target":["@alice"],"severity":"warn","message":"m","title":"t","source":"s","labels":{"a":"b"},"channels":["sms"]}`,
		`{"target":["@alice"],"severity":"error","message":"m","labels":null}`,
		`{"target":["@alice"],"severity":"error","message":"m","labels":{"a":"b","a":"c"}}`,
		`{"target":["@alice"],"severity":"error","message":"m\u00e9\n\t\"x\""}`,
	} {
		f.Add(s, "")
		f.Add(s, "k1")
	}
	f.Fuzz(func(t *testing.T, body, key string) {
		var h http.Header
		if key != "" {
			if !json.Valid([]byte(`"`+key+`"`)) || strings.ContainsAny(key, "\r\n\x00") {
				return // not a header value a client can send
			}
			h = http.Header{"Idempotency-Key": {key}}
		}
		sameAnswers(t, srv, fast, slow, fastRecs, slowRecs, body, h)
	})
}

// TestFastAlertPathReplays: the fast path answers a key already used with
// the earlier alert, marked replayed, and produces nothing.
func TestFastAlertPathReplays(t *testing.T) {
	st := teststore.SQLite(t, &herald.User{ID: "u1", Name: "alice", WebhookURL: "http://127.0.0.1/x"})
	id := "01a24d48-8a66-7ca5-8ab0-0751b04f5465"
	if err := st.RecordFanouts(context.Background(), []*store.Fanout{{Alert: &herald.Alert{ID: id,
		Severity: herald.SeverityError, Message: "m", Targets: []string{"@alice"}, IdempotencyKey: "k",
		CreatedAt: time.Now()}, UserCount: 1}}); err != nil {
		t.Fatal(err)
	}
	srv, fast, _, recs, _ := fastAndHuma(t, st)
	req := httptest.NewRequest(http.MethodPost, "/v1/alerts", strings.NewReader(`{"target":["@alice"],"severity":"error","message":"m"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", "k")
	w := httptest.NewRecorder()
	fast.ServeHTTP(w, req)
	if w.Code != http.StatusAccepted || w.Header().Get("Idempotent-Replayed") != "true" ||
		w.Header().Get("Location") != "/v1/alerts/"+id || !strings.Contains(w.Body.String(), id) ||
		len(recs.take()) != 0 || srv.fastAnswered.Load() != 1 {
		t.Fatalf("replay: %d %v %s (fast path answered %d)", w.Code, w.Header(), w.Body, srv.fastAnswered.Load())
	}
}

// TestKeyedAlertsRacing: two different alerts sent with one
// Idempotency-Key before either is recorded (nothing is fanned out here)
// are both accepted with ids of their own, so both are sent; a retry of
// either, spelled differently, gets its id again, before they are recorded
// and after (the older one too, though the lookup by key finds the newer);
// a third alert with the key is a 422 naming the newest.
func TestKeyedAlertsRacing(t *testing.T) {
	st := teststore.SQLite(t, &herald.User{ID: "u1", Name: "alice", WebhookURL: "http://127.0.0.1/x"},
		&herald.User{ID: "u2", Name: "bob", WebhookURL: "http://127.0.0.1/y"})
	srv, fast, slow, recs, slowRecs := fastAndHuma(t, st)
	srv.IdempotencyWindow = time.Hour
	post := func(h http.Handler, key, body string) (int, string, string) {
		t.Helper()
		req := httptest.NewRequest(http.MethodPost, "/v1/alerts", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", key)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		var out struct{ ID string }
		if w.Code == http.StatusAccepted && (json.Unmarshal(w.Body.Bytes(), &out) != nil || out.ID == "") {
			t.Fatalf("POST %s = %d %s", body, w.Code, w.Body)
		}
		return w.Code, out.ID, w.Body.String()
	}
	const (
		first  = `{"target":["@alice","@bob"],"severity":"error","message":"disk full","labels":{"x":"1","y":"2"}}`
		second = `{"target":["@alice","@bob"],"severity":"error","message":"disk full again","labels":{"x":"1","y":"2"}}`
		retry  = `{"labels":{"y":"2","x":"1"},"message":"disk full","severity":"ERROR","target":["@bob"," @alice","@bob"]}`
		third  = `{"target":["@alice"],"severity":"error","message":"disk full"}`
	)
	for name, h := range map[string]http.Handler{"fast path": fast, "huma": slow} {
		key := "k-race " + name
		_, a, _ := post(h, key, first)
		_, b, _ := post(h, key, second)
		_, a2, _ := post(h, key, retry)
		if a == b || a2 != a {
			t.Errorf("%s: ids %s, %s and the first's retry %s; want two ids, the retry with the first's", name, a, b, a2)
		}
		// The fan-out stage records both, the second one later.
		t0 := time.Now().Add(-time.Minute)
		for i, r := range []struct {
			id, msg string
		}{{a, "disk full"}, {b, "disk full again"}} {
			al := &herald.Alert{ID: r.id, Severity: herald.SeverityError, Message: r.msg, Targets: []string{"@alice", "@bob"},
				Labels: map[string]string{"x": "1", "y": "2"}, IdempotencyKey: key, CreatedAt: t0.Add(time.Duration(i) * time.Second)}
			if err := st.RecordFanouts(context.Background(), []*store.Fanout{{Alert: al, UserCount: 2}}); err != nil {
				t.Fatal(err)
			}
		}
		if code, a3, raw := post(h, key, retry); code != http.StatusAccepted || a3 != a {
			t.Errorf("%s: the older alert's retry after both were recorded = %d %s %s; want 202 with %s", name, code, a3, raw, a)
		}
		if code, b3, raw := post(h, key, second); code != http.StatusAccepted || b3 != b {
			t.Errorf("%s: the newer alert's retry = %d %s %s; want 202 with %s", name, code, b3, raw, b)
		}
		if code, _, raw := post(h, key, third); code != http.StatusUnprocessableEntity || !strings.Contains(raw, b) {
			t.Errorf("%s: a third alert with the key = %d %s; want 422 naming %s", name, code, raw, b)
		}
	}
	if n, m := len(recs.take()), len(slowRecs.take()); n != 3 || m != 3 {
		t.Errorf("records produced %d and %d, want 3 each (the fan-out stage stores the retry's once)", n, m)
	}
}

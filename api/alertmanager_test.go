package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/api"
	"github.com/heraldproject/herald/internal/teststore"
	"github.com/heraldproject/herald/store"
)

// amServer is an API over a real SQLite store with alice, bob and the group
// oncall (both), producing into a recorder.
func amServer(t *testing.T) (http.Handler, *store.Store, *recorder) {
	t.Helper()
	ctx := context.Background()
	st := teststore.SQLite(t, &herald.User{ID: "id-alice", Name: "alice", WebhookURL: "http://127.0.0.1/alice"},
		&herald.User{ID: "id-bob", Name: "bob", WebhookURL: "http://127.0.0.1/bob"})
	if err := st.CreateGroup(ctx, &herald.Group{ID: "g1", Name: "oncall"}); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"id-alice", "id-bob"} {
		if err := st.AddMember(ctx, "g1", u); err != nil {
			t.Fatal(err)
		}
	}
	rec := &recorder{}
	srv := &api.Server{Store: st, Producer: rec, Logger: slog.New(slog.DiscardHandler), Version: "test"}
	return srv.Handler(), st, rec
}

func postAM(t *testing.T, h http.Handler, query, body string) (int, []byte) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/v1/integrations/alertmanager?"+query, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w.Code, w.Body.Bytes()
}

type amAnswer struct {
	Accepted int `json:"accepted"`
	Ignored  int `json:"ignored"`
	Alerts   []struct {
		ID          string   `json:"id"`
		Fingerprint string   `json:"fingerprint"`
		Status      string   `json:"status"`
		UserCount   int      `json:"userCount"`
		Replayed    bool     `json:"replayed"`
		Notes       []string `json:"notes"`
	} `json:"alerts"`
}

// TestAlertmanagerMapping: what each Alertmanager alert becomes — title,
// message, severity, labels, source, targets, recipients — and the counts in
// the answer.
func TestAlertmanagerMapping(t *testing.T) {
	h, _, rec := amServer(t)
	code, raw := postAM(t, h, "target=@@oncall", amPayload)
	if code != http.StatusAccepted {
		t.Fatalf("status %d: %s", code, raw)
	}
	var ans amAnswer
	if err := json.Unmarshal(raw, &ans); err != nil {
		t.Fatal(err)
	}
	if ans.Accepted != 3 || ans.Ignored != 0 || len(ans.Alerts) != 3 || ans.Alerts[0].Fingerprint != "1a30ba71cca2921f" ||
		ans.Alerts[2].Status != "resolved" || ans.Alerts[0].UserCount != 2 {
		t.Fatalf("answer = %s", raw)
	}
	recs := rec.all()
	if len(recs) != 3 {
		t.Fatalf("%d records produced, want 3", len(recs))
	}
	want := []struct {
		title, message string
		sev            herald.Severity
	}{
		{"Disk full on db-1", "/var is 99% full", herald.SeverityCritical},
		{"Disk filling on db-2", "Disk filling on db-2", herald.SeverityWarning},
		{"[RESOLVED] Disk full on db-3", "Disk full on db-3", herald.SeverityInfo},
	}
	for i, r := range recs {
		var a herald.Alert
		if err := json.Unmarshal(r.Value, &a); err != nil {
			t.Fatal(err)
		}
		w := want[i]
		if a.ID != ans.Alerts[i].ID || string(r.Key) != string(a.Stream()) || a.Title != w.title || a.Message != w.message ||
			a.Severity != w.sev || a.Source != "alertmanager" || len(a.Recipients) != 2 ||
			len(a.Targets) != 1 || a.Targets[0] != "@@oncall" || a.Labels["instance"] == "" ||
			!strings.HasPrefix(a.IdempotencyKey, "alertmanager:"+ans.Alerts[i].Fingerprint+":"+ans.Alerts[i].Status+":") {
			t.Errorf("alert %d = %+v", i, a)
		}
	}
	var first herald.Alert
	_ = json.Unmarshal(recs[0].Value, &first)
	if first.Labels["generatorURL"] != "http://prometheus:9090/graph?g0.expr=disk_free+%3C+0.01&g0.tab=1" {
		t.Errorf("generatorURL label = %q", first.Labels["generatorURL"])
	}

	// Before fan-out has recorded them, a retry yields the same ids (and
	// fan-out stores each id once).
	code, raw = postAM(t, h, "target=@@oncall", amPayload)
	var again amAnswer
	if err := json.Unmarshal(raw, &again); code != http.StatusAccepted || err != nil || len(again.Alerts) != 3 {
		t.Fatalf("retry: %d %s", code, raw)
	}
	for i := range again.Alerts {
		if again.Alerts[i].ID != ans.Alerts[i].ID || again.Alerts[i].Replayed {
			t.Errorf("retry alert %d = %+v, want id %s", i, again.Alerts[i], ans.Alerts[i].ID)
		}
	}
}

// recordAll stores the produced alerts as the fan-out stage would.
func recordAll(t *testing.T, st *store.Store, rec *recorder) {
	t.Helper()
	var fos []*store.Fanout
	for _, r := range rec.all() {
		var a herald.Alert
		if err := json.Unmarshal(r.Value, &a); err != nil {
			t.Fatal(err)
		}
		fos = append(fos, &store.Fanout{Alert: &a, UserCount: len(a.Recipients)})
	}
	if err := st.RecordFanouts(context.Background(), fos); err != nil {
		t.Fatal(err)
	}
}

// TestAlertmanagerIdempotency: once recorded, the same notification is
// answered with the first ids and produces nothing; resolved=ignore drops
// resolved alerts with a count; the alert firing again (new startsAt), or
// for other targets, is new.
func TestAlertmanagerIdempotency(t *testing.T) {
	h, st, rec := amServer(t)
	code, raw := postAM(t, h, "target=@@oncall", amPayload)
	var first amAnswer
	if err := json.Unmarshal(raw, &first); code != http.StatusAccepted || err != nil {
		t.Fatalf("%d %s", code, raw)
	}
	recordAll(t, st, rec)
	n := rec.count()

	code, raw = postAM(t, h, "target=@@oncall", amPayload)
	var again amAnswer
	if err := json.Unmarshal(raw, &again); code != http.StatusAccepted || err != nil || again.Accepted != 3 || rec.count() != n {
		t.Fatalf("repeat: %d %s, %d new records", code, raw, rec.count()-n)
	}
	for i, a := range again.Alerts {
		if !a.Replayed || a.ID != first.Alerts[i].ID || a.UserCount != 2 {
			t.Errorf("repeat alert %d = %+v, want replayed %s", i, a, first.Alerts[i].ID)
		}
	}

	code, raw = postAM(t, h, "target=@@oncall&resolved=ignore", amPayload)
	var ign amAnswer
	if err := json.Unmarshal(raw, &ign); code != http.StatusAccepted || err != nil || ign.Accepted != 2 || ign.Ignored != 1 ||
		len(ign.Alerts) != 2 || rec.count() != n {
		t.Fatalf("resolved=ignore: %d %s", code, raw)
	}

	// db-3 fires again: a new start, a new alert.
	refire := strings.Replace(amPayload, `"status":"resolved","labels"`, `"status":"firing","labels"`, 1)
	refire = strings.Replace(refire, `"startsAt":"2026-03-01T09:00:00Z"`, `"startsAt":"2026-03-01T11:00:00Z"`, 1)
	code, raw = postAM(t, h, "target=@@oncall", refire)
	var re amAnswer
	if err := json.Unmarshal(raw, &re); code != http.StatusAccepted || err != nil || rec.count() != n+1 ||
		re.Alerts[2].Replayed || re.Alerts[2].ID == first.Alerts[2].ID || !re.Alerts[0].Replayed {
		t.Fatalf("fired again: %d %s, %d new records", code, raw, rec.count()-n)
	}

	// The same alerts for someone else are their own notifications.
	code, raw = postAM(t, h, "target=@alice", amPayload)
	var other amAnswer
	if err := json.Unmarshal(raw, &other); code != http.StatusAccepted || err != nil || rec.count() != n+4 ||
		other.Alerts[0].Replayed || other.Alerts[0].UserCount != 1 {
		t.Fatalf("other target: %d %s, %d new records", code, raw, rec.count()-n)
	}
}

// TestAlertmanagerTargets: targets from the query (repeated or
// comma-separated) win over labels; without them each alert's herald_target
// label says; without either the answer says how to set one.
func TestAlertmanagerTargets(t *testing.T) {
	h, _, rec := amServer(t)
	labelled := strings.Replace(amPayload, `"instance":"db-1:9100"`, `"instance":"db-1:9100","herald_target":"@alice"`, 1)
	labelled = strings.Replace(labelled, `"instance":"db-2:9100"`, `"instance":"db-2:9100","herald_target":" @bob , @alice"`, 1)
	labelled = strings.Replace(labelled, `"instance":"db-3:9100"`, `"instance":"db-3:9100","herald_target":"@@oncall"`, 1)
	for _, tc := range []struct {
		query, body string
		users       []int
	}{
		{"target=@alice&target=@bob", amPayload, []int{2, 2, 2}},
		{"target=@alice,@@oncall", amPayload, []int{2, 2, 2}},
		{"target=@bob", labelled, []int{1, 1, 1}},
		{"", labelled, []int{1, 2, 2}},
	} {
		code, raw := postAM(t, h, tc.query, tc.body)
		var ans amAnswer
		if err := json.Unmarshal(raw, &ans); code != http.StatusAccepted || err != nil {
			t.Fatalf("?%s: %d %s", tc.query, code, raw)
		}
		for i, a := range ans.Alerts {
			if a.UserCount != tc.users[i] {
				t.Errorf("?%s: alert %d reached %d users, want %d", tc.query, i, a.UserCount, tc.users[i])
			}
		}
	}
	n := rec.count()
	for _, tc := range []struct{ query, body, mention string }{
		{"", amPayload, "body.alerts[0].labels.herald_target"},
		{"", strings.Replace(labelled, `"herald_target":"@@oncall"`, `"herald_target":" , "`, 1), "body.alerts[2].labels.herald_target"},
		{"", strings.Replace(labelled, `"herald_target":"@@oncall"`, `"herald_target":"@@ghosts"`, 1), "@@ghosts"},
		{"target=@ghost", amPayload, "query.target"},
		{"target=", amPayload, "add ?target=@user"},
		{"target=alice", amPayload, "query.target[0]"},
	} {
		code, raw := postAM(t, h, tc.query, tc.body)
		if code != http.StatusUnprocessableEntity || !strings.Contains(string(raw), tc.mention) {
			t.Errorf("?%s: %d %s; want 422 naming %s", tc.query, code, raw, tc.mention)
		}
	}
	if rec.count() != n {
		t.Errorf("%d records produced by rejected payloads", rec.count()-n)
	}
}

// TestAlertmanagerSeverity: Herald's names and aliases, common
// Alertmanager values, and a default for the rest.
func TestAlertmanagerSeverity(t *testing.T) {
	h, _, rec := amServer(t)
	for label, want := range map[string]herald.Severity{
		"critical": herald.SeverityCritical, "Page": herald.SeverityCritical, "fatal": herald.SeverityCritical,
		"error": herald.SeverityError, "high": herald.SeverityError, "warning": herald.SeverityWarning,
		"warn": herald.SeverityWarning, "info": herald.SeverityInfo, "none": herald.SeverityInfo,
		"urgent": herald.SeverityWarning, "": herald.SeverityWarning,
	} {
		body := `{"version":"4","alerts":[{"status":"firing","startsAt":"2026-03-01T10:00:00Z",` +
			`"labels":{"alertname":"A","severity":"` + label + `"}}]}`
		if code, raw := postAM(t, h, "target=@alice", body); code != http.StatusAccepted {
			t.Fatalf("severity %q: %d %s", label, code, raw)
		}
		recs := rec.all()
		var a herald.Alert
		if err := json.Unmarshal(recs[len(recs)-1].Value, &a); err != nil {
			t.Fatal(err)
		}
		if a.Severity != want || a.Title != "A" || a.Message != "A" {
			t.Errorf("severity %q: alert %+v, want %s", label, a, want)
		}
	}
}

// TestAlertmanagerBadPayloads: every rejection is a 4xx problem naming the
// field, and a bad alert anywhere rejects the whole payload: nothing is
// produced.
func TestAlertmanagerBadPayloads(t *testing.T) {
	h, _, rec := amServer(t)
	alert := func(extra string) string {
		return `{"status":"firing","startsAt":"2026-03-01T10:00:00Z","labels":{"alertname":"A"` + extra + `}}`
	}
	many := func(n int) string {
		return `{"alerts":[` + strings.TrimSuffix(strings.Repeat(alert("")+",", n), ",") + `]}`
	}
	eighth := func(bad string) string {
		var as []string
		for i := range 10 {
			if i == 7 {
				as = append(as, bad)
				continue
			}
			as = append(as, strings.Replace(alert(""), `"A"`, `"A`+strings.Repeat("x", i)+`"`, 1))
		}
		return `{"version":"4","alerts":[` + strings.Join(as, ",") + `]}`
	}
	for _, tc := range []struct {
		name, body string
		status     int
		mention    string
	}{
		{"not json", `{"alerts":[`, 400, "unexpected end of JSON"},
		{"not an object", `[]`, 422, "expected object"},
		{"missing alerts", `{"version":"4","status":"firing"}`, 422, "alerts"},
		{"null alerts", `{"alerts":null}`, 422, "alerts"},
		{"empty alerts", `{"alerts":[]}`, 422, "body.alerts"},
		{"alerts not array", `{"alerts":{}}`, 422, "expected array"},
		{"version", `{"version":"5","alerts":[` + alert("") + `]}`, 422, "body.version"},
		{"version type", `{"version":4,"alerts":[` + alert("") + `]}`, 422, "body.version"},
		{"too many alerts", many(1001), 413, "body.alerts"},
		{"status", eighth(`{"status":"pending","startsAt":"2026-03-01T10:00:00Z","labels":{"alertname":"A"}}`), 422, "body.alerts[7].status"},
		{"missing startsAt", eighth(`{"status":"firing","labels":{"alertname":"A"}}`), 422, `startsAt to be present","location":"body.alerts[7]"`},
		{"bad startsAt", eighth(`{"status":"firing","startsAt":"yesterday","labels":{"alertname":"A"}}`), 422, "body.alerts[7].startsAt"},
		{"label type", eighth(`{"status":"firing","startsAt":"2026-03-01T10:00:00Z","labels":{"alertname":5}}`), 422, "body.alerts[7].labels.alertname"},
		{"labels type", eighth(`{"status":"firing","startsAt":"2026-03-01T10:00:00Z","labels":"A"}`), 422, "body.alerts[7].labels"},
		{"nothing to say", eighth(`{"status":"firing","startsAt":"2026-03-01T10:00:00Z","labels":{"job":"x"}}`), 422, "body.alerts[7].annotations.description"},
		{"fingerprint too long", eighth(`{"status":"firing","startsAt":"2026-03-01T10:00:00Z","labels":{"alertname":"A"},"fingerprint":"` + strings.Repeat("f", 129) + `"}`), 422, "body.alerts[7].fingerprint"},
		{"invalid utf-8", `{"alerts":[{"status":"firing","startsAt":"2026-03-01T10:00:00Z","labels":{"alertname":"` + "\xff" + `"}}]}`, 400, "UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := rec.count()
			code, raw := postAM(t, h, "target=@alice", tc.body)
			if code != tc.status || !strings.Contains(string(raw), tc.mention) {
				t.Fatalf("%d %s; want %d naming %q", code, truncate(raw), tc.status, tc.mention)
			}
			if rec.count() != n {
				t.Fatalf("%d records produced", rec.count()-n)
			}
		})
	}
	// The limit is the server's: 1000 alerts are fine.
	if code, raw := postAM(t, h, "target=@alice", many(1000)); code != http.StatusAccepted {
		t.Fatalf("1000 alerts: %d %s", code, truncate(raw))
	}
}

// TestAlertmanagerClipping: oversized content is clipped, not refused
// (Alertmanager does not retry a 4xx, so a refusal would lose the whole
// group), and the answer's notes say what was clipped or left out.
func TestAlertmanagerClipping(t *testing.T) {
	h, _, rec := amServer(t)
	labels := `"alertname":"Big","severity":"page","":"empty-name","` + strings.Repeat("n", 200) + `":"long-name","a_long":"` +
		strings.Repeat("é", 600) + `"`
	for i := range 70 {
		labels += fmt.Sprintf(`,"k%02d":"x"`, i)
	}
	body := `{"alerts":[` +
		`{"status":"firing","startsAt":"2026-03-01T10:00:00Z","labels":{` + labels + `},"annotations":{"summary":"` +
		strings.Repeat("s", 600) + `","description":"` + strings.Repeat("d", 20000) + `"}},` +
		`{"status":"resolved","startsAt":"2026-03-01T10:00:00Z","labels":{"alertname":"R"},"annotations":{"summary":"` +
		strings.Repeat("r", 512) + `"}}]}`
	code, raw := postAM(t, h, "target=@alice", body)
	var ans amAnswer
	if err := json.Unmarshal(raw, &ans); code != http.StatusAccepted || err != nil || len(ans.Alerts) != 2 {
		t.Fatalf("%d %s", code, truncate(raw))
	}
	notes := strings.Join(ans.Alerts[0].Notes, "\n")
	for _, want := range []string{`label "" left out`, `label "` + strings.Repeat("n", 200) + `" left out`, "label a_long clipped", "labels left out", "annotations.summary clipped from 600 to 512",
		"annotations.description clipped from 20000 to 16384"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes %q lack %q", notes, want)
		}
	}
	if !strings.Contains(strings.Join(ans.Alerts[1].Notes, ""), "clipped from 512 to 501") {
		t.Errorf("resolved notes = %q", ans.Alerts[1].Notes)
	}
	recs := rec.all()
	if len(recs) != 2 {
		t.Fatalf("%d records produced", len(recs))
	}
	var a, r herald.Alert
	if json.Unmarshal(recs[0].Value, &a) != nil || json.Unmarshal(recs[1].Value, &r) != nil {
		t.Fatal("undecodable records")
	}
	if n := utf8.RuneCountInString(a.Title); n != 512 || !strings.HasSuffix(a.Title, "…") {
		t.Errorf("title %d characters", n)
	}
	if n := utf8.RuneCountInString(a.Message); n != 16384 {
		t.Errorf("message %d characters", n)
	}
	if len(a.Labels) != 64 || a.Labels["alertname"] != "Big" || a.Labels["severity"] != "page" || a.Severity != herald.SeverityCritical ||
		len(a.Labels["a_long"]) > 1024 || !utf8.ValidString(a.Labels["a_long"]) || !strings.HasSuffix(a.Labels["a_long"], "…") {
		t.Errorf("labels: %d, alertname %q, severity %q/%s, v %d bytes", len(a.Labels), a.Labels["alertname"], a.Labels["severity"],
			a.Severity, len(a.Labels["a_long"]))
	}
	if n := utf8.RuneCountInString(r.Title); n != 512 || !strings.HasPrefix(r.Title, "[RESOLVED] ") {
		t.Errorf("resolved title %d characters: %.30s", n, r.Title)
	}
}

// TestAlertmanagerGeneratorURL: a generatorURL too long for a label is left
// out and the answer says so, rather than the alert being refused.
func TestAlertmanagerGeneratorURL(t *testing.T) {
	h, _, rec := amServer(t)
	long := "http://prometheus:9090/graph?g0.expr=" + strings.Repeat("x", 1100)
	body := `{"alerts":[{"status":"firing","startsAt":"2026-03-01T10:00:00Z","labels":{"alertname":"A"},"generatorURL":"` + long + `"}]}`
	code, raw := postAM(t, h, "target=@alice", body)
	var ans amAnswer
	if err := json.Unmarshal(raw, &ans); code != http.StatusAccepted || err != nil || len(ans.Alerts[0].Notes) != 1 ||
		!strings.Contains(ans.Alerts[0].Notes[0], "generatorURL not copied") {
		t.Fatalf("%d %s", code, raw)
	}
	var a herald.Alert
	if err := json.Unmarshal(rec.all()[0].Value, &a); err != nil || a.Labels["generatorURL"] != "" {
		t.Fatalf("alert = %+v, %v", a, err)
	}
}

func truncate(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}

package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/heraldproject/herald/notify/webhook/webhooktest"
)

// scrape reads /metrics and parses it.
func (h *instance) scrape() (map[string]*dto.MetricFamily, []byte) {
	h.t.Helper()
	resp, err := http.Get(h.base + "/metrics")
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(raw))
	if err != nil {
		h.t.Fatalf("parse /metrics: %v", err)
	}
	return fams, raw
}

// value sums the samples of family name whose labels include want.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (sum float64, count uint64) {
	f := fams[name]
	if f == nil {
		return 0, 0
	}
next:
	for _, m := range f.GetMetric() {
		for k, v := range want {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Histogram != nil:
			sum += m.GetHistogram().GetSampleSum()
			count += m.GetHistogram().GetSampleCount()
		}
	}
	return sum, count
}

func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool is required in CI (Debian package prometheus)")
		}
		t.Skip("SKIPPING: promtool not installed (apt-get install prometheus)")
	}
	return p
}

// TestMetrics runs a known workload and checks that counters and histograms
// moved by exactly the expected amounts, that promtool accepts the output,
// and that every metric the shipped alert rules and dashboard use is one
// Herald exports.
func TestMetrics(t *testing.T) {
	hook := webhooktest.NewReceiver()
	defer hook.Close()
	h := start(t, testConfig(t, t.TempDir(), "HERALD_RETRY_DELAYS=100ms", "HERALD_BREAKER_FAILURES=0"))
	h.createUser(map[string]any{"name": "a", "webhookUrl": hook.URL()})
	h.createUser(map[string]any{"name": "b", "webhookUrl": hook.URL()})
	hook.FailNext(1, http.StatusInternalServerError, "")
	var ids []string
	for range 3 {
		ids = append(ids, h.sendAlert(map[string]any{"target": []string{"@a", "@b"}, "severity": "error", "message": "m"}))
	}
	h.do("POST", "/v1/alerts", map[string]any{"target": []string{"@nobody"}, "severity": "error", "message": "m"}, nil)
	for _, id := range ids {
		h.waitAlert(id, allFinal)
	}
	// Outcomes are counted right after they are recorded, and batches once
	// their offsets are committed; give the last ones a moment.
	var fams map[string]*dto.MetricFamily
	var raw []byte
	deadline := time.Now().Add(10 * time.Second)
	for {
		fams, raw = h.scrape()
		s, _ := value(fams, "herald_deliveries_total", map[string]string{"outcome": "sent"})
		_, n := value(fams, "herald_consumer_record_wait_seconds", map[string]string{"group": "herald-deliver-webhook"})
		if (s == 6 && n == 7) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		sum    float64
		count  uint64
	}{
		{"herald_records_ingested_total", map[string]string{"kind": "alert"}, 3, 0},
		{"herald_ingest_request_duration_seconds", map[string]string{"code": "202"}, -1, 3},
		{"herald_ingest_request_duration_seconds", map[string]string{"code": "422"}, -1, 1},
		{"herald_fanout_deliveries", nil, 6, 3},
		{"herald_deliveries_total", map[string]string{"channel": "webhook", "outcome": "sent"}, 6, 0},
		{"herald_deliveries_total", map[string]string{"channel": "webhook", "outcome": "failed"}, 1, 0},
		{"herald_deliveries_total", map[string]string{"outcome": "dead"}, 0, 0},
		{"herald_retries_total", map[string]string{"tier": "herald.retry.100ms"}, 1, 0},
		{"herald_delivery_latency_seconds", map[string]string{"channel": "webhook"}, -1, 6},
		// Every alert record waited, and so did every delivery record: six
		// first attempts and the retry when it came back from its tier.
		{"herald_consumer_record_wait_seconds", map[string]string{"group": "herald-fanout"}, -1, 3},
		{"herald_consumer_record_wait_seconds", map[string]string{"group": "herald-deliver-webhook"}, -1, 7},
		{"herald_dead_letters_total", nil, 0, 0},
		{"herald_http_requests_total", map[string]string{"route": "POST /v1/users", "code": "201"}, 2, 0},
		{"herald_build_info", nil, 1, 0},
		// Without Redis, the sending stage keeps no sent marks: they would
		// tell it nothing the store does not (deliver.Sender.SentMarks).
		{"herald_cache_operation_duration_seconds", map[string]string{"op": "mark_sent"}, -1, 0},
	} {
		sum, count := value(fams, c.name, c.labels)
		if (c.sum >= 0 && sum != c.sum) || count != c.count {
			t.Errorf("%s%v = sum %v count %d; want sum %v count %d", c.name, c.labels, sum, count, c.sum, c.count)
		}
	}
	for group, want := range map[string]float64{"herald-fanout": 3, "herald-deliver-webhook": 7} {
		labels := map[string]string{"group": group}
		records, batches := value(fams, "herald_consumer_batch_records", labels)
		_, timed := value(fams, "herald_consumer_batch_duration_seconds", labels)
		if records != want || batches < 1 || batches > uint64(want) || timed != batches {
			t.Errorf("%s: %v records in %d batches, %d timed; want %v records in 1 to %v, each timed",
				group, records, batches, timed, want, want)
		}
	}
	if _, n := value(fams, "herald_store_operation_duration_seconds", map[string]string{"op": "record_fanouts"}); n < 1 {
		t.Errorf("no store operation observed")
	}
	if fams["herald_consumer_lag"] == nil || fams["herald_kafka_connects_total"] == nil {
		t.Errorf("consumer lag or franz-go client metrics missing")
	}

	cmd := exec.Command(promtool(t), "check", "metrics")
	cmd.Stdin = bytes.NewReader(raw)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}

	// Every herald_* metric named by the rules and the dashboard exists.
	var exprs []string
	rules, err := os.ReadFile(filepath.Join("..", "deploy", "prometheus", "herald-rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	exprs = append(exprs, string(rules))
	var dash struct {
		Panels []struct {
			Targets []struct{ Expr string } `json:"targets"`
		} `json:"panels"`
	}
	db, err := os.ReadFile(filepath.Join("..", "deploy", "grafana", "herald.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(db, &dash); err != nil {
		t.Fatal(err)
	}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	exported := map[string]bool{}
	for name, f := range fams {
		exported[name] = true
		if f.GetType() == dto.MetricType_HISTOGRAM {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				exported[name+s] = true
			}
		}
	}
	// Families with no samples yet (labelled vectors never touched) are
	// absent from a scrape; these are exported all the same.
	for _, lazy := range []string{"herald_circuit_breakers_open", "herald_dead_letters_total", "herald_store_errors_total"} {
		exported[lazy] = true
	}
	used := regexp.MustCompile(`herald_[a-z0-9_]+`)
	checked := 0
	for _, e := range exprs {
		for _, name := range used.FindAllString(e, -1) {
			checked++
			if !exported[name] && !strings.HasPrefix(name, "herald_test") {
				t.Errorf("rules or dashboard use %s, which Herald does not export", name)
			}
		}
	}
	if checked < 15 {
		t.Fatalf("only %d metric references found in the rules and dashboard", checked)
	}
}

// TestPrometheusRules runs promtool on the shipped rules and their unit tests
// (lag and failure-ratio rules firing and not firing, and the others).
func TestPrometheusRules(t *testing.T) {
	pt := promtool(t)
	dir := filepath.Join("..", "deploy", "prometheus")
	for _, args := range [][]string{{"check", "rules", "herald-rules.yml"}, {"test", "rules", "herald-rules.test.yml"}} {
		cmd := exec.Command(pt, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("promtool %v: %v\n%s", args, err, out)
		}
	}
}

// TestLagRisesAndFalls makes the webhook sender fall behind (a slow receiver,
// one recipient at a time) and watches herald_consumer_lag rise and fall: on
// the webhook topic when delivery records go through Kafka, and on the
// alerts topic when they are handed on in memory (fanout.handoff), where the
// alerts wait uncommitted until their deliveries are sent.
func TestLagRisesAndFalls(t *testing.T) {
	for _, c := range []struct{ handoff, group string }{{"false", "herald-deliver-webhook"}, {"true", "herald-fanout"}} {
		t.Run("handoff="+c.handoff, func(t *testing.T) {
			hook := webhooktest.NewReceiver()
			defer hook.Close()
			hook.SetDelay(150 * time.Millisecond)
			h := start(t, testConfig(t, t.TempDir(), "HERALD_DELIVER_CONCURRENCY=1", "HERALD_FANOUT_HANDOFF="+c.handoff))
			h.createUser(map[string]any{"name": "slow", "webhookUrl": hook.URL()})
			for range 20 {
				h.sendAlert(map[string]any{"target": []string{"@slow"}, "severity": "info", "message": "m"})
			}
			lag := func() float64 {
				fams, _ := h.scrape()
				v, _ := value(fams, "herald_consumer_lag", map[string]string{"group": c.group})
				return v
			}
			var peak float64
			deadline := time.Now().Add(30 * time.Second)
			for time.Now().Before(deadline) && peak < 10 {
				peak = max(peak, lag())
				time.Sleep(100 * time.Millisecond)
			}
			if peak < 10 {
				t.Fatalf("%s lag peaked at %v, want it to rise to at least 10 with 20 slow deliveries queued", c.group, peak)
			}
			for time.Now().Before(deadline) {
				if lag() == 0 && hook.Unique() == 20 {
					t.Logf("%s lag rose to %v and fell back to 0", c.group, peak)
					return
				}
				time.Sleep(200 * time.Millisecond)
			}
			t.Fatalf("%s lag did not fall back to 0 (now %v, %d delivered)", c.group, lag(), hook.Unique())
		})
	}
}

// TestRequestMetricsLabels checks the request metrics name the route of an
// answer given before the route's handler runs (401, 403), that an
// idempotent replay is not counted as a record ingested, and that a 404
// from the store is not a store error.
func TestRequestMetricsLabels(t *testing.T) {
	h := start(t, testConfig(t, t.TempDir()))
	h.createUser(map[string]any{"name": "a", "webhookUrl": "http://127.0.0.1:1/hook"})
	req, _ := http.NewRequest("GET", h.base+"/v1/stats", nil)
	req.Header.Set("Authorization", "Bearer hrl_not-a-token")
	expectProblem(t, req, http.StatusUnauthorized)
	alert := []byte(`{"target":["@a"],"severity":"info","message":"once"}`)
	for i := range 3 {
		code, hdr, body := h.post("/v1/alerts", alert, "Content-Type", "application/json", "Idempotency-Key", "k-1")
		if code != http.StatusAccepted || (i > 0) != (hdr.Get("Idempotent-Replayed") == "true") {
			t.Fatalf("POST /v1/alerts #%d = %d, Idempotent-Replayed %q: %s", i+1, code, hdr.Get("Idempotent-Replayed"), body)
		}
		if i == 0 {
			// A replay is recognised once the fan-out stage has stored the
			// first alert.
			var acc idOut
			if err := json.Unmarshal(body, &acc); err != nil {
				t.Fatal(err)
			}
			h.waitAlert(acc.ID, func(*alertOut) bool { return true })
		}
	}
	if code, body := h.do("PATCH", "/v1/users/no-such-user", map[string]any{"department": "x"}, nil); code != http.StatusNotFound {
		t.Fatalf("PATCH of a missing user = %d %s", code, body)
	}
	fams, _ := h.scrape()
	if n, _ := value(fams, "herald_store_errors_total", nil); n != 0 {
		t.Errorf("herald_store_errors_total = %v after a 404, want 0: a caller's mistake is not a store error", n)
	}
	if n, _ := value(fams, "herald_http_requests_total", map[string]string{"route": "GET /v1/stats", "code": "401"}); n != 1 {
		t.Errorf("herald_http_requests_total{route=\"GET /v1/stats\",code=\"401\"} = %v, want 1", n)
	}
	if n, _ := value(fams, "herald_http_requests_total", map[string]string{"route": "unmatched"}); n != 0 {
		t.Errorf("%v requests counted as unmatched, want 0", n)
	}
	if n, _ := value(fams, "herald_records_ingested_total", map[string]string{"kind": "alert"}); n != 1 {
		t.Errorf("herald_records_ingested_total{kind=\"alert\"} = %v after one alert sent three times with one key, want 1", n)
	}
	if _, n := value(fams, "herald_ingest_request_duration_seconds", map[string]string{"kind": "alert", "code": "202"}); n != 3 {
		t.Errorf("ingest request durations observed: %d, want 3", n)
	}
}

// TestStats checks GET /v1/stats: what was ingested and sent, per-channel
// outcomes, every configured channel listed before its first outcome (Slack
// here) and none that is not (email, SMS), and dead letters waiting.
func TestStats(t *testing.T) {
	hook := webhooktest.NewReceiver()
	defer hook.Close()
	h := start(t, testConfig(t, t.TempDir()))
	h.createUser(map[string]any{"name": "a", "webhookUrl": hook.URL()})
	h.waitAlert(h.sendAlert(map[string]any{"target": []string{"@a"}, "severity": "info", "message": "m"}), allFinal)
	var st struct {
		AlertsIngested     float64 `json:"alertsIngested"`
		DeliveriesSent     float64 `json:"deliveriesSent"`
		DeadLettersPending int     `json:"deadLettersPending"`
		Channels           map[string]struct {
			Outcomes     map[string]float64 `json:"outcomes"`
			BreakersOpen float64            `json:"breakersOpen"`
		} `json:"channels"`
		Lag map[string]int64 `json:"lag"`
	}
	h.must(http.StatusOK, "GET", "/v1/stats", nil, &st)
	if st.AlertsIngested != 1 || st.DeliveriesSent != 1 || st.DeadLettersPending != 0 {
		t.Errorf("stats %+v, want 1 alert ingested, 1 delivery sent, no dead letters", st)
	}
	if st.Channels["webhook"].Outcomes["sent"] != 1 {
		t.Errorf("webhook outcomes %v, want sent 1", st.Channels["webhook"].Outcomes)
	}
	if _, ok := st.Channels["slack"]; !ok {
		t.Errorf("channels %v: Slack is configured but not listed", st.Channels)
	}
	for _, ch := range []string{"email", "sms"} {
		if _, ok := st.Channels[ch]; ok {
			t.Errorf("channels %v list %s, which is not configured", st.Channels, ch)
		}
	}
	if _, ok := st.Lag["herald-fanout"]; !ok {
		t.Errorf("lag %v has no herald-fanout group", st.Lag)
	}
}

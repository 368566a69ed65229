package logs_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/bus"
	"github.com/heraldproject/herald/internal/teststore"
	"github.com/heraldproject/herald/logs"
	"github.com/heraldproject/herald/metrics"
	"github.com/heraldproject/herald/rules"
)

// producer records what is produced, or fails while fail is set.
type producer struct {
	mu   sync.Mutex
	fail bool
	recs []*kgo.Record
}

func (p *producer) Produce(_ context.Context, recs ...*kgo.Record) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail {
		return errors.New("broker down")
	}
	p.recs = append(p.recs, recs...)
	return nil
}

func (p *producer) alerts(t *testing.T) []*herald.Alert {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*herald.Alert
	for _, r := range p.recs {
		if r.Topic != bus.TopicAlerts {
			continue
		}
		var al herald.Alert
		if err := json.Unmarshal(r.Value, &al); err != nil {
			t.Fatal(err)
		}
		out = append(out, &al)
	}
	return out
}

func counter(t *testing.T, m *metrics.Metrics, name string, labels map[string]string) float64 {
	t.Helper()
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, mt := range f.GetMetric() {
			for k, v := range labels {
				ok := false
				for _, l := range mt.GetLabel() {
					ok = ok || (l.GetName() == k && l.GetValue() == v)
				}
				if !ok {
					continue next
				}
			}
			sum += mt.GetCounter().GetValue()
		}
	}
	return sum
}

func logRec(t *testing.T, i int, service, level, msg string) *kgo.Record {
	t.Helper()
	v, err := json.Marshal(map[string]any{"id": fmt.Sprintf("l-%d", i), "service": service, "level": level, "message": msg,
		"time": time.Date(2026, 3, 1, 10, 0, 5, 0, time.UTC).Add(time.Duration(i) * time.Millisecond), "attributes": map[string]string{"n": msg}})
	if err != nil {
		t.Fatal(err)
	}
	return &kgo.Record{Topic: bus.TopicLogs, Key: []byte(service), Value: v, Offset: int64(i)}
}

// TestAlerterStormAndRetry: a failed produce fails the batch (so it is
// retried) after the records are stored; the retry makes the alert once;
// a storm within the window makes one alert and counts the rest; a rule
// that fails on a record counts as no match.
func TestAlerterStormAndRetry(t *testing.T) {
	ctx := context.Background()
	st := teststore.SQLite(t)
	for _, r := range []*herald.Rule{
		{ID: "r-storm", Name: "storm", Source: herald.RuleSourceLog, Match: `service == "checkout" && levelRank >= 3`,
			Targets: []string{"@alice"}, Severity: herald.SeverityError, Message: "{{.message}}", DedupeKey: "{{.service}}",
			Window: time.Minute, Enabled: true},
		{ID: "r-broken", Name: "broken", Source: herald.RuleSourceLog, Match: `int(attributes.n) > 3`,
			Targets: []string{"@alice"}, Severity: herald.SeverityInfo, Message: "m", Enabled: true},
	} {
		if err := st.CreateRule(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	p := &producer{fail: true}
	m := metrics.New("test")
	log := slog.New(slog.DiscardHandler)
	ix := &logs.Indexer{Store: st, Producer: p, Logger: log, Alerter: &logs.Alerter{
		Rules: &rules.Set{Load: st, Every: time.Hour, Logger: log}, Store: st, Producer: p, Metrics: m, Logger: log,
		IdempotencyWindow: 24 * time.Hour}}
	var batch []*kgo.Record
	for i := range 20 {
		batch = append(batch, logRec(t, i, "checkout", "error", "gateway timeout"))
	}
	batch = append(batch, logRec(t, 20, "checkout", "info", "ok"))
	if err := ix.Handle(ctx, batch); err == nil {
		t.Fatal("a failed produce did not fail the batch")
	}
	if n, err := st.CountLogs(ctx); err != nil || n != 21 {
		t.Fatalf("stored %d, %v; want the 21 records stored before the rules ran", n, err)
	}
	p.mu.Lock()
	p.fail = false
	p.mu.Unlock()
	if err := ix.Handle(ctx, batch); err != nil { // the consumer's retry
		t.Fatal(err)
	}
	als := p.alerts(t)
	if len(als) != 1 || als[0].Message != "gateway timeout" || als[0].Labels["log_id"] != "l-0" || als[0].ID == "" {
		t.Fatalf("alerts %+v, want one of the first line", als)
	}
	if n := counter(t, m, "herald_log_rule_suppressed_total", map[string]string{"rule": "storm"}); n != 19 {
		t.Fatalf("suppressed = %v, want 19", n)
	}
	if n := counter(t, m, "herald_rule_errors_total", map[string]string{"source": "log", "stage": "match"}); n < 21 {
		t.Fatalf("match errors = %v, want one per record per evaluation", n)
	}
	// The same batch again (a crash before the offsets were committed):
	// nothing new is produced.
	if err := ix.Handle(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if als := p.alerts(t); len(als) != 1 {
		t.Fatalf("%d alerts after the batch was redone, want 1", len(als))
	}
}

// TestAlertFutureTimeClamped: a record dated well after now is bucketed at
// now, so it cannot occupy (and silence) a future window; a record within
// the skew keeps its own bucket.
func TestAlertFutureTimeClamped(t *testing.T) {
	c, err := rules.Compile(&herald.Rule{ID: "r", Name: "r", Source: herald.RuleSourceLog, Match: "true",
		Targets: []string{"@a"}, Severity: herald.SeverityError, Message: "{{.message}}", DedupeKey: "{{.service}}",
		Window: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 1, 10, 0, 30, 0, time.UTC)
	rec := func(at time.Time) *herald.LogRecord {
		return &herald.LogRecord{ID: "x", Time: at, Service: "s", Level: herald.SeverityError, Message: "m"}
	}
	present, _ := logs.Alert(c, rec(now), now)
	future, _ := logs.Alert(c, rec(now.Add(time.Hour)), now)
	soon, _ := logs.Alert(c, rec(now.Add(45*time.Second)), now)
	if future.IdempotencyKey != present.IdempotencyKey {
		t.Fatalf("a record an hour ahead keys %q, want now's %q", future.IdempotencyKey, present.IdempotencyKey)
	}
	if soon.IdempotencyKey == present.IdempotencyKey {
		t.Fatal("a record within the skew lost its own (next) bucket")
	}
}

// TestAlerterBackfillPastRetention: with alerts.retention set, a record of a
// windowed rule whose window closed before the retention's cutoff (old logs
// sent late) makes no alert, since the window's alert may have been pruned;
// without retention, or within it, it alerts.
func TestAlerterBackfillPastRetention(t *testing.T) {
	ctx := context.Background()
	recTime := time.Date(2026, 3, 1, 10, 0, 5, 0, time.UTC) // logRec's
	for _, tc := range []struct {
		name      string
		now       time.Time
		retention time.Duration
		want      int
	}{
		{"no retention", recTime.Add(30 * 24 * time.Hour), 0, 1},
		{"within retention", recTime.Add(24 * time.Hour), 168 * time.Hour, 1},
		{"past retention", recTime.Add(8 * 24 * time.Hour), 168 * time.Hour, 0},
		// The window (10:00-11:00) began before the cutoff though the record
		// is after it: the window's alert may be gone.
		{"window began before the cutoff", recTime.Add(168*time.Hour + 2*time.Second), 168 * time.Hour, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := teststore.SQLite(t)
			if err := st.CreateRule(ctx, &herald.Rule{ID: "r-w", Name: "windowed", Source: herald.RuleSourceLog,
				Match: `levelRank >= 3`, Targets: []string{"@alice"}, Severity: herald.SeverityError, Message: "{{.message}}",
				DedupeKey: "{{.service}}", Window: time.Hour, Enabled: true}); err != nil {
				t.Fatal(err)
			}
			p := &producer{}
			log := slog.New(slog.DiscardHandler)
			ix := &logs.Indexer{Store: st, Producer: p, Logger: log, Alerter: &logs.Alerter{
				Rules: &rules.Set{Load: st, Every: time.Hour, Logger: log}, Store: st, Producer: p, Metrics: metrics.New("test"),
				Logger: log, IdempotencyWindow: 24 * time.Hour, AlertsRetention: tc.retention, Now: func() time.Time { return tc.now }}}
			if err := ix.Handle(ctx, []*kgo.Record{logRec(t, 0, "checkout", "error", "late")}); err != nil {
				t.Fatal(err)
			}
			if n := len(p.alerts(t)); n != tc.want {
				t.Fatalf("%d alerts, want %d", n, tc.want)
			}
		})
	}
}

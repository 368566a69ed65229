package logs

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/bus"
	"github.com/heraldproject/herald/metrics"
	"github.com/heraldproject/herald/rules"
	"github.com/heraldproject/herald/store"
)

// Alerter evaluates the enabled log rules against stored log records and
// produces one alert per match to the alerts topic, with storm control: a
// match whose idempotency key (rules.Compiled.LogIdempotencyKey) already
// made an alert — earlier in the batch, or recorded by the fan-out stage
// within the rule's window (or idempotency.window for a rule without one) —
// makes none, and is counted as suppressed (herald_log_rule_suppressed_total,
// and in the message of the next alert of a windowed rule for the same
// dedupe: "N more matching lines since …"). Alert ids derive from the keys,
// so a batch evaluated twice (a crash before the offsets were committed)
// tells nobody twice. Safe for concurrent use if its fields are.
type Alerter struct {
	Rules    *rules.Set
	Store    *store.Store
	Producer Producer
	Metrics  *metrics.Metrics
	Logger   *slog.Logger
	// IdempotencyWindow is how long an alert of a rule without a window
	// holds its dedupe key (idempotency.window; default 24h).
	IdempotencyWindow time.Duration
	// AlertsRetention is alerts.retention (0: alerts are kept). A record
	// of a windowed rule whose window began before the retention's cutoff
	// (a back-fill of old logs) makes no alert: the window's alert may have
	// been pruned, and would be sent again.
	AlertsRetention time.Duration
	// ProduceTimeout bounds the wait for the broker (default 30s).
	ProduceTimeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// recent holds the keys this process produced alerts for in the last
	// recentTTL, until the fan-out stage has recorded them: a storm spread
	// over several batches is suppressed (and counted) at once.
	mu     sync.Mutex
	recent map[string]time.Time // key → when to forget it
	// pending counts the matches of windowed rules suppressed since the
	// last alert for their dedupe, for the next alert to say.
	pending map[string]*pendingCount
}

// Bounds on Alerter.recent.
const (
	recentTTL = time.Minute
	maxRecent = 100_000
)

// planned is one match waiting for its id.
type planned struct {
	c  *rules.Compiled
	al *herald.Alert
	at time.Time // the record's time
}

// Evaluate runs the enabled log rules over recs. A rule that fails on a
// record counts as no match (herald_rule_errors_total{source="log"}); an
// error (the store or the broker failed) means the batch must be retried.
func (a *Alerter) Evaluate(ctx context.Context, recs []*herald.LogRecord) error {
	set, err := a.Rules.Enabled(ctx, herald.RuleSourceLog)
	if err != nil {
		return fmt.Errorf("logs: rules: %w", err)
	}
	if len(set) == 0 || len(recs) == 0 {
		return nil
	}
	matches := map[string]int{} // rule id → matches
	var plans []*planned
	now := a.now()
	for _, c := range set {
		failed := 0
		var lastErr error
		for _, lr := range recs {
			ok, err := c.MatchLog(lr)
			if err != nil {
				failed++
				lastErr = err
				continue
			}
			if !ok {
				continue
			}
			matches[c.Rule.ID]++
			al, notes := Alert(c, lr, now)
			if len(notes) > 0 {
				a.Metrics.RuleError(herald.RuleSourceLog, "render")
			}
			plans = append(plans, &planned{c: c, al: al, at: lr.Time})
		}
		if failed > 0 {
			for range failed {
				a.Metrics.RuleError(herald.RuleSourceLog, "match")
			}
			a.Logger.WarnContext(ctx, "log rule failed on records; counted as no match", "rule", c.Rule.Name,
				"rule_id", c.Rule.ID, "records", failed, "err", lastErr)
		}
	}
	if len(plans) == 0 {
		return nil
	}
	produce, err := a.assign(ctx, plans)
	if err != nil {
		return err
	}
	if len(produce) > 0 {
		a.notePending(produce)
		if err := a.produce(ctx, produce); err != nil {
			return err // counted when the batch is retried
		}
		a.remember(produce)
	}
	a.settlePending(plans, produce)
	made := map[string]int{}
	for _, pl := range produce {
		made[pl.c.Rule.ID]++
	}
	for _, c := range set {
		if n := matches[c.Rule.ID] - made[c.Rule.ID]; n > 0 {
			a.Metrics.LogRuleSuppressed(c.Rule.Name, n)
		}
	}
	if len(produce) == 0 {
		return nil
	}
	a.Metrics.Accepted("alert", len(produce))
	a.Logger.InfoContext(ctx, "log rules made alerts", "records", len(recs), "matches", len(plans), "alerts", len(produce))
	return nil
}

// assign keeps the first match of each idempotency key, drops the keys
// that already made an alert, and gives the rest their ids, recipients and
// creation time.
func (a *Alerter) assign(ctx context.Context, plans []*planned) ([]*planned, error) {
	seen := map[string]bool{}
	var first []*planned
	var keys []string
	for _, pl := range plans {
		if k := pl.al.IdempotencyKey; !seen[k] {
			seen[k] = true
			first = append(first, pl)
			keys = append(keys, k)
		}
	}
	at := a.now().UTC()
	a.mu.Lock()
	first, keys = slices.DeleteFunc(first, func(pl *planned) bool { return at.Before(a.recent[pl.al.IdempotencyKey]) }), keys[:0]
	a.mu.Unlock()
	for _, pl := range first {
		keys = append(keys, pl.al.IdempotencyKey)
	}
	if len(keys) == 0 {
		return nil, nil
	}
	prevs, err := a.Store.AlertsByIdempotencyKeys(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("logs: idempotency keys: %w", err)
	}
	holds := cmp.Or(a.IdempotencyWindow, 24*time.Hour)
	resolved := map[string]*resolvedTargets{}
	var out []*planned
	for _, pl := range first {
		if w := pl.c.Rule.Window; w > 0 && a.AlertsRetention > 0 &&
			time.Unix(0, rules.WindowBucket(pl.at, w)*int64(w)).Before(at.Add(-a.AlertsRetention)) {
			// The window began before the cutoff: its alert, made at its
			// first record, may be pruned already.
			continue
		}
		prev := prevs[pl.al.IdempotencyKey]
		// A windowed key names its window: any alert with it is one in the
		// window. A key without one holds for idempotency.window.
		if prev != nil && (pl.c.Rule.Window > 0 || at.Sub(prev.CreatedAt) < holds) {
			continue
		}
		rt := resolved[pl.c.Rule.ID]
		if rt == nil {
			if rt, err = a.resolve(ctx, pl.c.Rule); err != nil {
				return nil, err
			}
			resolved[pl.c.Rule.ID] = rt
		}
		pl.al.ID = store.IdempotentAlertID(pl.al.IdempotencyKey, prev)
		pl.al.CreatedAt = at
		pl.al.Recipients = rt.ids
		out = append(out, pl)
	}
	return out, nil
}

func (a *Alerter) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// remember notes the keys of alerts produced, forgetting expired ones (or,
// past maxRecent, all: the store still answers for them).
func (a *Alerter) remember(plans []*planned) {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.recent == nil || len(a.recent)+len(plans) > maxRecent {
		maps.DeleteFunc(a.recent, func(_ string, until time.Time) bool { return !now.Before(until) })
		if a.recent == nil || len(a.recent)+len(plans) > maxRecent {
			a.recent = map[string]time.Time{}
		}
	}
	for _, pl := range plans {
		a.recent[pl.al.IdempotencyKey] = now.Add(recentTTL)
	}
}

type resolvedTargets struct{ ids []string }

// resolve resolves a rule's targets; targets deleted since the rule was
// made are left out (and logged): the record is valid, the rule is stale.
func (a *Alerter) resolve(ctx context.Context, r *herald.Rule) (*resolvedTargets, error) {
	parsed := make([]herald.Target, 0, len(r.Targets))
	for _, t := range r.Targets {
		if pt, err := herald.ParseTarget(t); err == nil {
			parsed = append(parsed, pt)
		}
	}
	ids, unknown, err := a.Store.Resolve(ctx, parsed)
	if err != nil {
		return nil, fmt.Errorf("logs: resolve targets of rule %s: %w", r.Name, err)
	}
	if len(unknown) > 0 {
		a.Logger.WarnContext(ctx, "log rule names targets that no longer exist", "rule", r.Name, "rule_id", r.ID,
			"unknown", strings.Join(unknown, ", "))
	}
	return &resolvedTargets{ids: ids}, nil
}

// produce writes each alert as one record on the alerts topic, keyed by its
// id, and returns once the broker acknowledged every one.
func (a *Alerter) produce(ctx context.Context, plans []*planned) error {
	recs := make([]*kgo.Record, 0, len(plans))
	for _, pl := range plans {
		v, err := json.Marshal(pl.al)
		if err != nil {
			return fmt.Errorf("logs: encode alert %s: %w", pl.al.ID, err)
		}
		rec := &kgo.Record{Topic: bus.TopicAlerts, Key: pl.al.Stream(), Value: v,
			Headers: []kgo.RecordHeader{{Key: bus.HeaderAlertID, Value: []byte(pl.al.ID)}}}
		bus.InjectTrace(ctx, rec)
		recs = append(recs, rec)
	}
	timeout := a.ProduceTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := a.Producer.Produce(pctx, recs...); err != nil {
		return fmt.Errorf("logs: produce %d alerts: %w", len(recs), err)
	}
	return nil
}

// MaxFutureSkew is how far after now a record's time may lie and still
// choose its window bucket; a record dated later (a wrong clock, or a
// sender trying to occupy a future bucket and so silence it) is bucketed at
// now.
const MaxFutureSkew = time.Minute

// Alert renders log rule c's alert for lr (without id, recipients or
// creation time) with its idempotency key, and the notes of its rendering.
// Its labels are rule, service, level, log_id and, when the record has one,
// trace_id; its source is the record's service. now clamps future record
// times (MaxFutureSkew).
func Alert(c *rules.Compiled, lr *herald.LogRecord, now time.Time) (*herald.Alert, []string) {
	r := c.RenderLog(lr)
	labels := map[string]string{"rule": c.Rule.Name, "service": lr.Service, "level": string(lr.Level), "log_id": lr.ID}
	if lr.TraceID != "" {
		labels["trace_id"] = lr.TraceID
	}
	al := &herald.Alert{Severity: c.Rule.Severity, Title: r.Title, Message: r.Message, Source: lr.Service,
		Labels: labels, Targets: slices.Clone(c.Rule.Targets)}
	keyed := lr
	if c.Rule.Window > 0 && lr.Time.After(now.Add(MaxFutureSkew)) {
		clamped := *lr
		clamped.Time = now
		keyed = &clamped
	}
	al.IdempotencyKey = c.LogIdempotencyKey(keyed, r.DedupeKey)
	return al, r.Notes
}

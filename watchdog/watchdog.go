// Package watchdog makes Herald watch itself: every interval it checks
// consumer lag, the delivery failure ratio and dead-letter growth, and when
// one is over its threshold it sends an alert through Herald's own pipeline
// to a configured target (say @@ops).
//
// It cannot page about itself in a loop: each check alerts at most once per
// floor period, and the alert id is derived from the check and the period, so
// several processes running the watchdog produce one alert, not several.
package watchdog

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/bus"
	"github.com/heraldproject/herald/store"
)

// Source is the alerts' source field; the label herald_self=true marks them.
const Source = "herald-watchdog"

var namespace = uuid.MustParse("0e9d7c61-5a2b-4f83-b1e4-6c7d8a9f0b23")

// LagSource reports consumer lag.
type LagSource interface {
	Samples(ctx context.Context) ([]bus.LagSample, error)
}

// Counts reports cumulative delivery outcomes (sent, failed, dead).
type Counts func() (sent, failed, dead float64)

// Producer writes records durably.
type Producer interface {
	Produce(ctx context.Context, recs ...*kgo.Record) error
}

// Watchdog checks Herald's health and alerts about it.
type Watchdog struct {
	Store    *store.Store
	Producer Producer
	Lag      LagSource
	Counts   Counts
	// Target is who is told, e.g. "@@ops".
	Target string
	// Every is how often to check; Floor is the least time between two
	// alerts of one check.
	Every, Floor time.Duration
	// Thresholds.
	MaxLag       int64
	MaxFailRatio float64
	// MinFailures is the fewest attempts in a period for the ratio to count.
	MinFailures float64
	Logger      *slog.Logger
	Now         func() time.Time

	last               map[string]time.Time
	prevSent, prevFail float64
	prevDead, prevDLQ  float64
	primed             bool
}

// Finding is a check over its threshold.
type Finding struct {
	Check    string
	Severity herald.Severity
	Message  string
}

// Run checks every w.Every until ctx ends.
func (w *Watchdog) Run(ctx context.Context) {
	t := time.NewTicker(w.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for _, f := range w.Check(ctx) {
				if err := w.alert(ctx, f); err != nil {
					w.Logger.Warn("watchdog could not send its alert", "check", f.Check, "err", err)
				}
			}
		}
	}
}

// Check runs every check once and returns those over threshold. The first
// call only records the baseline that growth is measured from; call it once
// at start, before traffic.
func (w *Watchdog) Check(ctx context.Context) []Finding {
	var out []Finding
	if w.Lag != nil {
		if samples, err := w.Lag.Samples(ctx); err == nil {
			byGroup := map[string]int64{}
			for _, s := range samples {
				if strings.HasPrefix(s.Group, bus.DelayGroupPrefix) {
					continue // deliveries waiting for their retry time on purpose
				}
				byGroup[s.Group] += s.Lag
			}
			// One finding naming every group behind: the floor lets one
			// alert of a check through per period.
			var behind []string
			for _, g := range slices.Sorted(maps.Keys(byGroup)) {
				if n := byGroup[g]; n > w.MaxLag {
					behind = append(behind, fmt.Sprintf("%s is %d records behind", g, n))
				}
			}
			if len(behind) > 0 {
				out = append(out, Finding{Check: "consumer_lag", Severity: herald.SeverityWarning,
					Message: fmt.Sprintf("consumer group %s (threshold %d)", strings.Join(behind, ", "), w.MaxLag)})
			}
		}
	}
	if w.Counts != nil {
		sent, failed, dead := w.Counts()
		dlq := 0.0
		if n, err := w.Store.PendingDeadLetters(ctx); err == nil {
			dlq = float64(n)
		}
		if w.primed {
			ds, df, dd := sent-w.prevSent, failed-w.prevFail, dead-w.prevDead
			if total := ds + df + dd; total >= w.MinFailures && total > 0 && (df+dd)/total > w.MaxFailRatio {
				out = append(out, Finding{Check: "failure_ratio", Severity: herald.SeverityWarning,
					Message: fmt.Sprintf("%.1f%% of %.0f delivery attempts failed in the last %s (threshold %.1f%%)",
						100*(df+dd)/total, total, w.Every, 100*w.MaxFailRatio)})
			}
			if grew := dlq - w.prevDLQ; grew > 0 {
				out = append(out, Finding{Check: "dead_letters", Severity: herald.SeverityError,
					Message: fmt.Sprintf("%.0f new dead letters in the last %s (%.0f waiting); see `herald dlq list`", grew, w.Every, dlq)})
			}
		}
		w.prevSent, w.prevFail, w.prevDead, w.prevDLQ, w.primed = sent, failed, dead, dlq, true
	}
	return out
}

// alert sends f to the target unless this check alerted within the floor.
func (w *Watchdog) alert(ctx context.Context, f Finding) error {
	now := w.Now()
	if w.last == nil {
		w.last = map[string]time.Time{}
	}
	if t, ok := w.last[f.Check]; ok && now.Sub(t) < w.Floor {
		return nil
	}
	t, err := herald.ParseTarget(w.Target)
	if err != nil {
		return err
	}
	ids, unknown, err := w.Store.Resolve(ctx, []herald.Target{t})
	if err != nil {
		return err
	}
	if len(unknown) > 0 || len(ids) == 0 {
		return fmt.Errorf("target %s reaches nobody", w.Target)
	}
	period := now.Truncate(w.Floor)
	a := herald.Alert{
		ID:       uuid.NewSHA1(namespace, fmt.Appendf(nil, "%s/%d", f.Check, period.Unix())).String(),
		Severity: f.Severity, Title: "Herald: " + f.Check, Message: f.Message, Source: Source,
		Labels:  map[string]string{"herald_self": "true", "check": f.Check},
		Targets: []string{t.String()}, Recipients: ids, CreatedAt: now.UTC(),
	}
	v, err := json.Marshal(a)
	if err != nil {
		return err
	}
	if err := w.Producer.Produce(ctx, &kgo.Record{Topic: bus.TopicAlerts, Key: a.Stream(), Value: v,
		Headers: []kgo.RecordHeader{{Key: bus.HeaderAlertID, Value: []byte(a.ID)}}}); err != nil {
		return err
	}
	w.last[f.Check] = now
	w.Logger.Warn("watchdog alert sent", "check", f.Check, "alert_id", a.ID, "target", w.Target, "message", f.Message)
	return nil
}

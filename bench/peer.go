package bench

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// peers measures each peer the way the accept scenario measures Herald.
func (r *runner) peers(ctx context.Context) ([]Result, error) {
	var out []Result
	for _, p := range r.o.Peers {
		res, err := r.alertmanager(ctx, p)
		if err != nil {
			return out, fmt.Errorf("peer %s at %s: %w", p.Kind, p.URL, err)
		}
		out = append(out, res)
	}
	return out, nil
}

// alertmanager posts alerts, each a single-alert array with a unique label,
// to Alertmanager's POST /api/v2/alerts from o.Concurrency clients, and
// counts at the receiver each alert's first notification. Alertmanager must
// route them to a webhook receiver pointing at this run's receiver
// (--receiver-addr) with group_by on the bench_id label and group_wait 0s,
// as bench/peers/alertmanager.sh configures it; it may put several alerts
// in one notification. Accept → received counts from the alert's startsAt,
// which Alertmanager sets when it accepts an alert that has none.
func (r *runner) alertmanager(ctx context.Context, p Peer) (Result, error) {
	t := r.newTarget(ctx, p.URL, "", 0)
	if code, err := t.api.do(ctx, "GET", "/api/v2/status", nil, nil); err != nil || code != 200 {
		return Result{}, fmt.Errorf("GET /api/v2/status: status %d, %v (is Alertmanager running?)", code, err)
	}
	key := r.roundKey(ScenarioPeer + "-" + p.Kind)
	// bench_id is unique to the run and the round, not just the alert's
	// number: Alertmanager groups by it, and an alert in a group notified
	// before (an earlier round's) waits group_interval (5m) to be sent.
	body := func(i int) any {
		return []map[string]any{{
			"labels":      map[string]string{"alertname": "HeraldBench", labelKey: key, labelID: key + "-" + strconv.Itoa(i)},
			"annotations": map[string]string{"summary": "bench " + strconv.Itoa(i)},
		}}
	}
	stop := t.sample(ctx)
	start := time.Now()
	res := r.closedLoop(ctx, ScenarioPeer, "peer: "+p.Kind+", 1 notification per alert", t.api, "/api/v2/alerts",
		r.o.Requests, body)
	res.Fanout = 1
	r.inRound(&res)
	r.awaitNotifications(ctx, &res, key, res.Requests, start)
	res.Process = stop()
	return res, nil
}

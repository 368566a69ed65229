package bench

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// accept posts alerts to one user, whose webhook is the receiver, from
// o.Concurrency clients: accept throughput and latency, and alerts in →
// notifications out.
func (r *runner) accept(ctx context.Context) (Result, error) {
	key := r.roundKey(ScenarioAccept)
	name := "bench-" + key
	if _, err := r.createUser(ctx, name); err != nil {
		return Result{}, err
	}
	stop := r.herald.sample(ctx)
	start := time.Now()
	res := r.closedLoop(ctx, ScenarioAccept, "accept: herald, 1 recipient", r.herald.api, "/v1/alerts", r.o.Requests,
		alertBody("@"+name, key))
	res.Fanout = 1
	r.inRound(&res)
	r.awaitNotifications(ctx, &res, key, res.Requests, start)
	res.Process = stop()
	return res, nil
}

// fanoutLoad posts alerts to a group of o.Fanout users from o.Concurrency
// clients; o.Requests bounds the deliveries, not the alerts.
func (r *runner) fanoutLoad(ctx context.Context) (Result, error) {
	group, setup, err := r.fanoutGroup(ctx)
	if err != nil {
		return Result{}, err
	}
	key := r.key(ScenarioFanout)
	stop := r.herald.sample(ctx)
	start := time.Now()
	res := r.closedLoop(ctx, ScenarioFanout, fmt.Sprintf("accept: herald, fan-out %d", r.o.Fanout), r.herald.api,
		"/v1/alerts", max(1, r.o.Requests/r.o.Fanout), alertBody("@@"+group, key))
	res.Fanout, res.SetupS = r.o.Fanout, setup.Seconds()
	r.awaitNotifications(ctx, &res, key, res.Requests*r.o.Fanout, start)
	res.Process = stop()
	return res, nil
}

// rates offers alerts to a group of o.Fanout users at each of o.Rates per
// second (open loop), one step after another; each step waits for its
// notifications (at most o.Drain) before the next starts.
func (r *runner) rates(ctx context.Context) ([]Result, error) {
	group, setup, err := r.fanoutGroup(ctx)
	if err != nil {
		return nil, err
	}
	fanout := max(r.o.Fanout, 1)
	c := r.herald.api
	var out []Result
	for i, rate := range r.o.Rates {
		// The step's index too: a rate given twice is two steps, each
		// counting its own notifications.
		key := r.key(fmt.Sprintf("%s-%d-%g", ScenarioRates, i, rate))
		stop := r.herald.sample(ctx)
		start := time.Now()
		res := r.openLoop(ctx, ScenarioRates, fmt.Sprintf("end to end: herald at %g/s, fan-out %d", rate, fanout),
			c, "/v1/alerts", rate, alertBody("@@"+group, key))
		res.Fanout, res.SetupS = fanout, setup.Seconds()
		r.awaitNotifications(ctx, &res, key, res.Requests*fanout, start)
		res.Process = stop()
		out = append(out, res)
		setup = 0
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
	}
	return out, nil
}

// bigGroup sends one alert to a group of o.GroupSize users (created first,
// concurrently): the time until every notification arrived and deliveries
// per second.
func (r *runner) bigGroup(ctx context.Context) (Result, error) {
	begin := time.Now()
	group := fmt.Sprintf("bench-%s-g%d", r.tag, r.o.GroupSize)
	if err := r.createGroup(ctx, group, r.o.GroupSize); err != nil {
		return Result{}, err
	}
	setup := time.Since(begin)
	key := r.key(ScenarioGroup)
	scenario := fmt.Sprintf("deliveries: herald, 1 alert to %d", r.o.GroupSize)
	stop := r.herald.sample(ctx)
	var t tally
	start := time.Now()
	code, err := r.herald.api.do(ctx, http.MethodPost, "/v1/alerts", alertBody("@@"+group, key)(1), nil)
	t.record(time.Since(start), code, err)
	res := t.result(ScenarioGroup, scenario, time.Since(start))
	res.Fanout, res.SetupS = r.o.GroupSize, setup.Seconds()
	if res.Requests == 1 {
		r.awaitNotifications(ctx, &res, key, r.o.GroupSize, start)
	}
	res.Process = stop()
	return res, nil
}

// fanoutGroup creates, once per run, the group of o.Fanout users the
// fan-out and rates scenarios post to, and says how long that took.
func (r *runner) fanoutGroup(ctx context.Context) (string, time.Duration, error) {
	if r.fanout != "" {
		return r.fanout, 0, nil
	}
	start := time.Now()
	name := fmt.Sprintf("bench-%s-f%d", r.tag, max(r.o.Fanout, 1))
	if err := r.createGroup(ctx, name, max(r.o.Fanout, 1)); err != nil {
		return "", 0, err
	}
	r.fanout = name
	return name, time.Since(start), nil
}

// createUser creates a user whose webhook is the receiver and returns its id.
func (r *runner) createUser(ctx context.Context, name string) (string, error) {
	var u struct{ ID string }
	err := r.herald.api.must(ctx, http.MethodPost, "/v1/users", map[string]any{"name": name, "webhookUrl": r.rcv.url()},
		&u, http.StatusCreated)
	if err != nil {
		return "", fmt.Errorf("create user (is Herald running at %s?): %w", r.herald.api.base, err)
	}
	return u.ID, nil
}

// createGroup creates a group of size new users from o.Concurrency clients,
// within o.SetupTimeout, reporting progress.
func (r *runner) createGroup(ctx context.Context, name string, size int) error {
	ctx, cancel := context.WithTimeoutCause(ctx, r.o.SetupTimeout,
		fmt.Errorf("creating group %s took longer than --setup-timeout %s", name, r.o.SetupTimeout))
	defer cancel()
	var g struct{ ID string }
	if err := r.herald.api.must(ctx, http.MethodPost, "/v1/groups", map[string]any{"name": name}, &g,
		http.StatusCreated); err != nil {
		return fmt.Errorf("create group (is Herald running at %s?): %w", r.herald.api.base, err)
	}
	var next, made atomic.Int64
	start := time.Now()
	stop := r.progress("setup "+name, func() string {
		n := made.Load()
		return fmt.Sprintf("%d of %d members (%.0f/s)", n, size, float64(n)/time.Since(start).Seconds())
	})
	defer stop()
	var once sync.Once
	var first error
	var wg sync.WaitGroup
	for range min(r.o.Concurrency, size) {
		wg.Go(func() {
			for i := int(next.Add(1)); i <= size && ctx.Err() == nil; i = int(next.Add(1)) {
				if err := r.addMember(ctx, g.ID, fmt.Sprintf("%s-%d", name, i)); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
				made.Add(1)
			}
		})
	}
	wg.Wait()
	if first == nil && context.Cause(ctx) != nil && made.Load() < int64(size) {
		first = context.Cause(ctx)
	}
	return first
}

func (r *runner) addMember(ctx context.Context, groupID, user string) error {
	id, err := r.createUser(ctx, user)
	if err != nil {
		return err
	}
	return r.herald.api.must(ctx, http.MethodPut, "/v1/groups/"+groupID+"/members/"+id, nil, nil,
		http.StatusNoContent)
}

package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"
)

// alertBody returns Herald alerts to target, labelled with the scenario key
// and their number.
func alertBody(target, key string) func(i int) any {
	return func(i int) any {
		return map[string]any{"target": []string{target}, "severity": "error", "message": "bench " + strconv.Itoa(i),
			"labels": map[string]string{labelKey: key, labelID: strconv.Itoa(i)}}
	}
}

// bareHandler measures a net/http handler that decodes the JSON and
// answers 202: the HTTP ceiling of this machine and load generator.
func (r *runner) bareHandler(ctx context.Context) (Result, error) {
	s, err := serve(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var v map[string]any
		if json.NewDecoder(req.Body).Decode(&v) != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"id":"x","userCount":1}`))
	}))
	if err != nil {
		return Result{}, err
	}
	defer s.close()
	c := r.client(s.url(), "")
	return r.closedLoop(ctx, ScenarioHandler, "baseline: bare HTTP handler", c, "/", r.o.Requests,
		alertBody("@x", r.key(ScenarioHandler))), nil
}

// relay serves a handler that decodes the alert and POSTs it fanout times
// (concurrently, each with its own Idempotency-Key) to the receiver before
// answering, keeping nothing.
func (r *runner) relay(fanout int) (*srv, func(), error) {
	// MaxConnsPerHost: past it requests wait for a connection instead of
	// dialling more; unbounded, an overloaded open-loop step ran out of
	// file descriptors and counted failures instead of queueing.
	out := &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: max(r.o.Concurrency*2, 512), MaxIdleConns: 1024,
			MaxConnsPerHost: max(r.o.Concurrency*2, 1024)}}
	hook := r.rcv.url()
	s, err := serve(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var v map[string]any
		if json.NewDecoder(req.Body).Decode(&v) != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		v["createdAt"] = time.Now()
		b, _ := json.Marshal(v)
		post := func(n int) error {
			rq, err := http.NewRequestWithContext(req.Context(), http.MethodPost, hook, bytes.NewReader(b))
			if err != nil {
				return err
			}
			rq.Header.Set("Content-Type", "application/json")
			if fanout > 1 {
				labels, _ := v["labels"].(map[string]any)
				rq.Header.Set("Idempotency-Key", fmt.Sprintf("%v/%d", labels[labelID], n))
			}
			resp, err := out.Do(rq)
			if err != nil {
				return err
			}
			resp.Body.Close()
			return nil
		}
		errs := make(chan error, fanout)
		for n := range fanout {
			go func() { errs <- post(n) }()
		}
		failed := false
		for range fanout {
			if <-errs != nil {
				failed = true
			}
		}
		if failed {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	if err != nil {
		return nil, nil, err
	}
	return s, func() { s.close(); out.CloseIdleConnections() }, nil
}

// relayScenario is the bare relay baseline's row label.
const relayScenario = "baseline: bare relay"

// bareRelay measures a handler that decodes the alert and POSTs it to the
// receiver before answering, keeping nothing: the ceiling for alerts in →
// notifications out. again marks the second measurement of a run (its
// notifications are counted apart from the first's).
func (r *runner) bareRelay(ctx context.Context, again bool) (Result, error) {
	s, done, err := r.relay(1)
	if err != nil {
		return Result{}, err
	}
	defer done()
	key, scenario := r.key(ScenarioRelay), relayScenario
	if again {
		key, scenario = key+"-again", scenario+" (again, at the end)"
	}
	start := time.Now()
	res := r.closedLoop(ctx, ScenarioRelay, scenario, r.client(s.url(), ""), "/",
		r.o.Requests, alertBody("@x", key))
	res.Fanout = 1
	r.awaitNotifications(ctx, &res, key, res.Requests, start)
	return res, nil
}

// srv is a loopback HTTP server for a baseline.
type srv struct {
	s  *http.Server
	ln net.Listener
}

func serve(h http.Handler) (*srv, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bench: listen: %w", err)
	}
	s := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.Serve(ln) }()
	return &srv{s: s, ln: ln}, nil
}

func (s *srv) url() string { return "http://" + s.ln.Addr().String() }
func (s *srv) close()      { _ = s.s.Close() }

// relayRates offers alerts to the bare relay at each of o.Rates, each fanned
// out to o.Fanout POSTs: what accept → received latency looks like against
// offered load when nothing is recorded (the plot's baseline).
func (r *runner) relayRates(ctx context.Context) ([]Result, error) {
	fanout := max(r.o.Fanout, 1)
	s, done, err := r.relay(fanout)
	if err != nil {
		return nil, err
	}
	defer done()
	c := r.client(s.url(), "")
	var out []Result
	for i, rate := range r.o.Rates {
		key := r.key(fmt.Sprintf("%s-%d-%g", ScenarioRelayRates, i, rate)) // as in rates
		start := time.Now()
		res := r.openLoop(ctx, ScenarioRelayRates, fmt.Sprintf("baseline: bare relay at %g/s, fan-out %d", rate, fanout),
			c, "/", rate, alertBody("@x", key))
		res.Fanout = fanout
		r.awaitNotifications(ctx, &res, key, res.Requests*fanout, start)
		out = append(out, res)
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
	}
	return out, nil
}

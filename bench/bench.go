// Package bench measures a running Herald over real HTTP on loopback, next to
// baselines measured by the same load generator in the same run, so results
// are ratios that hold on a noisy machine:
//
//   - a bare net/http JSON handler (the HTTP ceiling),
//   - a bare relay that decodes an alert and POSTs it on to the benchmark's
//     webhook receiver, keeping nothing (the ceiling for alerts in →
//     notifications out),
//   - a raw franz-go produce → consume loop against the same embedded broker
//     Herald uses (records/s),
//   - raw batched inserts into SQLite with the driver and pragmas Herald's
//     store uses (rows/s),
//   - and, when given, a peer (Prometheus Alertmanager) driven with the same
//     alerts and measured the same way.
//
// Herald itself is measured for accept (closed loop at a fixed concurrency),
// fan-out, end to end at fixed offered rates (open loop), and one alert to a
// large group. While Herald and the peer are loaded their resident memory and
// CPU are sampled once a second from their /metrics (or /proc for --pid).
//
// Every scenario is bounded in count and in time and stops by itself; every
// load target must be on loopback.
package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// Scenario names, as given to Options.Scenarios (and --scenarios).
const (
	ScenarioHandler = "handler" // baseline: bare HTTP handler
	ScenarioRelay   = "relay"   // baseline: bare relay to the receiver
	// ScenarioRelayRates is the bare relay fanning each alert out to
	// Options.Fanout POSTs, open loop at each of Options.Rates: the baseline
	// line of the latency plot.
	ScenarioRelayRates = "relay-rates"
	ScenarioKafka      = "kafka"  // baseline: raw franz-go produce → consume
	ScenarioStore      = "store"  // baseline: raw batched SQLite inserts
	ScenarioPeer       = "peer"   // each Options.Peers, driven like Herald
	ScenarioAccept     = "accept" // Herald: closed loop, one recipient per alert
	ScenarioFanout     = "fanout" // Herald: closed loop, a group of Options.Fanout
	ScenarioRates      = "rates"  // Herald: open loop at each of Options.Rates, fan-out Options.Fanout
	ScenarioGroup      = "group"  // Herald: one alert to a group of Options.GroupSize
	// ScenarioLogs posts Options.LogRecords log records as NDJSON,
	// Options.LogBatch per request, and measures records per second until
	// the last is searchable.
	ScenarioLogs = "logs"
)

// Scenarios returns every scenario name in the order they run: baselines
// first, then the peer (while Herald is idle), then Herald, the heaviest
// last.
func Scenarios() []string {
	return []string{ScenarioHandler, ScenarioRelay, ScenarioRelayRates, ScenarioKafka, ScenarioStore, ScenarioPeer,
		ScenarioAccept, ScenarioFanout, ScenarioRates, ScenarioGroup, ScenarioLogs}
}

// DefaultScenarios are the scenarios that need nothing but a running Herald.
// The peer scenario is added when Options.Peers is not empty.
func DefaultScenarios() []string {
	return []string{ScenarioHandler, ScenarioRelay, ScenarioRelayRates, ScenarioKafka, ScenarioStore, ScenarioAccept,
		ScenarioFanout, ScenarioRates, ScenarioGroup, ScenarioLogs}
}

// Peer is another alerting system measured beside Herald.
type Peer struct {
	// Kind says which protocol it speaks; only "alertmanager" (Prometheus
	// Alertmanager's API v2, notifying the receiver by webhook) is known.
	Kind string `json:"kind"`
	// URL is its base URL, e.g. http://127.0.0.1:9093.
	URL string `json:"url"`
}

// ParsePeer reads "kind=url", e.g. "alertmanager=http://127.0.0.1:9093".
func ParsePeer(s string) (Peer, error) {
	kind, url, ok := strings.Cut(s, "=")
	if !ok || kind == "" || url == "" {
		return Peer{}, fmt.Errorf("bench: peer %q: want kind=url, e.g. alertmanager=http://127.0.0.1:9093", s)
	}
	if kind != "alertmanager" {
		return Peer{}, fmt.Errorf("bench: peer %q: unknown kind %q (known: alertmanager)", s, kind)
	}
	return Peer{Kind: kind, URL: strings.TrimRight(url, "/")}, nil
}

// Options configures a run. The zero value of a field means its default.
type Options struct {
	// Server is the Herald API base URL; Token a token with the admin scope.
	Server, Token string
	// Scenarios to run (names above); empty means DefaultScenarios, plus
	// the peer scenario when Peers is set.
	Scenarios []string
	// Concurrency is how many clients post at once in closed-loop scenarios
	// and create users at once in the group scenario (default 32).
	Concurrency int
	// Requests and Duration bound each scenario, and each step of the rates
	// scenario (whichever comes first; defaults 20000 and 20s).
	Requests int
	Duration time.Duration
	// Fanout is the group size of the fan-out scenario and of every step of
	// the rates scenario (default 10).
	Fanout int
	// Rates are the offered loads, in alerts per second, of the rates
	// scenario (default 250, 500, 1000, 2000).
	Rates []float64
	// GroupSize is the group of the group scenario (default 10000).
	GroupSize int
	// Drain bounds the wait for notifications after a scenario's last
	// request (default 2m).
	Drain time.Duration
	// SetupTimeout bounds creating users and groups (default 10m).
	SetupTimeout time.Duration
	// KafkaRecords bounds the raw franz-go baseline (default 200000).
	KafkaRecords int
	// StoreRows and StoreBatch bound the raw SQLite baseline (defaults
	// 200000 rows, 500 per transaction).
	StoreRows, StoreBatch int
	// LogRecords and LogBatch bound the logs scenario (defaults 200000
	// records, 1000 per request); Duration bounds it too.
	LogRecords, LogBatch int
	// Peers are measured by the peer scenario.
	Peers []Peer
	// Rounds is how many times the peer and accept scenarios are measured,
	// alternating (default 1): the first time in their place in the order,
	// the rest after every other scenario. Herald's ratio to a peer is the
	// median of the rounds' ratios: on a shared machine whose speed moves
	// from one minute to the next, one pair measured minutes apart can be
	// off by a quarter.
	Rounds int
	// BetweenRounds, if set, is a shell command run before each round
	// after the first (bench/peers/alertmanager.sh restarts Alertmanager
	// with empty storage, so no round's peer holds an earlier round's
	// alerts). Its failure ends the rounds.
	BetweenRounds string
	// ReceiverAddr is where the webhook receiver listens (default
	// 127.0.0.1:0, any free port). A peer configured ahead of the run needs
	// a fixed one.
	ReceiverAddr string
	// PID, if set, is Herald's process id: its /proc entries are read for
	// memory and CPU when its /metrics has no process metrics.
	PID int
	// Progress receives a line a second while a scenario runs; nil is quiet.
	Progress io.Writer
}

// withDefaults fills unset fields.
func (o Options) withDefaults() Options {
	o.Concurrency = cmp.Or(o.Concurrency, 32)
	o.Requests = cmp.Or(o.Requests, 20000)
	o.Duration = cmp.Or(o.Duration, 20*time.Second)
	o.Fanout = cmp.Or(o.Fanout, 10)
	if len(o.Rates) == 0 {
		o.Rates = []float64{250, 500, 1000, 2000}
	}
	o.GroupSize = cmp.Or(o.GroupSize, 10000)
	o.Drain = cmp.Or(o.Drain, 2*time.Minute)
	o.SetupTimeout = cmp.Or(o.SetupTimeout, 10*time.Minute)
	o.KafkaRecords = cmp.Or(o.KafkaRecords, 200000)
	o.StoreRows = cmp.Or(o.StoreRows, 200000)
	o.StoreBatch = cmp.Or(o.StoreBatch, 500)
	o.LogRecords = cmp.Or(o.LogRecords, 200000)
	o.LogBatch = cmp.Or(o.LogBatch, 1000)
	o.ReceiverAddr = cmp.Or(o.ReceiverAddr, "127.0.0.1:0")
	o.Rounds = cmp.Or(o.Rounds, 1)
	if len(o.Scenarios) == 0 {
		o.Scenarios = DefaultScenarios()
		if len(o.Peers) > 0 {
			o.Scenarios = append(o.Scenarios, ScenarioPeer)
		}
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	return o
}

// check validates options that withDefaults filled.
func (o Options) check(ctx context.Context) error {
	var errs []error
	for _, s := range o.Scenarios {
		if !slices.Contains(Scenarios(), s) {
			errs = append(errs, fmt.Errorf("unknown scenario %q (known: %s)", s, strings.Join(Scenarios(), ", ")))
		}
	}
	if o.Concurrency < 1 || o.Requests < 1 || o.Duration <= 0 || o.Fanout < 0 || o.GroupSize < 1 ||
		o.KafkaRecords < 1 || o.StoreRows < 1 || o.StoreBatch < 1 || o.LogRecords < 1 || o.LogBatch < 1 {
		errs = append(errs, errors.New("concurrency, requests, duration, group size, kafka records, store rows and batch must be positive"))
	}
	if o.Rounds < 1 || o.Rounds > maxRounds {
		errs = append(errs, fmt.Errorf("rounds %d: must be 1 to %d", o.Rounds, maxRounds))
	}
	for _, r := range o.Rates {
		if r <= 0 {
			errs = append(errs, fmt.Errorf("rate %v: must be positive", r))
		}
	}
	if slices.Contains(o.Scenarios, ScenarioPeer) && len(o.Peers) == 0 {
		errs = append(errs, errors.New("the peer scenario needs a peer (--peer alertmanager=http://127.0.0.1:9093)"))
	}
	if o.needsHerald() {
		if err := checkLoopback(ctx, o.Server); err != nil {
			errs = append(errs, err)
		}
	}
	for _, p := range o.Peers {
		if err := checkLoopback(ctx, p.URL); err != nil {
			errs = append(errs, err)
		}
	}
	if err := checkLoopback(ctx, "http://"+o.ReceiverAddr); err != nil {
		errs = append(errs, fmt.Errorf("receiver: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}

func (o Options) needsHerald() bool {
	for _, s := range o.Scenarios {
		if s == ScenarioAccept || s == ScenarioFanout || s == ScenarioRates || s == ScenarioGroup || s == ScenarioLogs {
			return true
		}
	}
	return false
}

// Result is one scenario's (or one rate step's) numbers. Count fields are
// in Unit: requests (alerts posted) for HTTP scenarios, records for the
// Kafka baseline, rows for the store baseline.
type Result struct {
	// Scenario describes the measurement, e.g. "accept: herald, 1 recipient".
	Scenario string `json:"scenario"`
	// Name is the scenario name it belongs to (ScenarioAccept, ...).
	Name string `json:"name"`
	// Unit says what Requests counts.
	Unit string `json:"unit"`
	// OfferedPerS is the offered load of an open-loop step, per second.
	OfferedPerS float64 `json:"offeredPerSecond,omitempty"`
	// Fanout is how many notifications each request should cause.
	Fanout         int            `json:"fanout,omitempty"`
	Requests       int            `json:"requests"`
	Errors         int            `json:"errors"`
	ErrorsByStatus map[string]int `json:"errorsByStatus,omitempty"`
	// ErrorSamples holds, for each kind of ErrorsByStatus that was an error
	// rather than a status ("transport"), the first such error's text.
	ErrorSamples map[string]string `json:"errorSamples,omitempty"`
	RequestsPerS float64           `json:"requestsPerSecond"`
	// Latencies of a request (accept), a record's produce, or a batch's
	// transaction. Open-loop latencies count from when the request was due,
	// so a stalled server is not hidden by a stalled generator.
	P50ms float64 `json:"p50Ms"`
	P90ms float64 `json:"p90Ms"`
	P99ms float64 `json:"p99Ms"`
	MaxMs float64 `json:"maxMs"`
	// Expected notifications (requests × fan-out); Notifications received
	// by the receiver (records consumed, for Kafka), per second from the
	// first request to the last arrival, and accept → received latency.
	Expected        int     `json:"expectedNotifications,omitempty"`
	Notifications   int     `json:"notifications"`
	NotificationsPS float64 `json:"notificationsPerSecond"`
	E2EP50ms        float64 `json:"endToEndP50Ms"`
	E2EP99ms        float64 `json:"endToEndP99Ms"`
	// SetupS is how long the scenario's users and groups took to create.
	SetupS float64 `json:"setupSeconds,omitempty"`
	// Round is which of Options.Rounds measured it (peer and accept only,
	// and only when there are several).
	Round int `json:"round,omitempty"`
	// Process is the measured system's memory and CPU while loaded.
	Process *Process `json:"process,omitempty"`
	// Err is why the scenario did not finish.
	Err string `json:"error,omitempty"`
}

// Ratio compares two results of the same run; Name says which, numerator
// first ("accept req/s: herald / bare handler").
type Ratio struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
}

// Report is a whole run.
type Report struct {
	At      time.Time `json:"at"`
	Options Settings  `json:"options"`
	Results []Result  `json:"results"`
	Ratios  []Ratio   `json:"ratios"`
	// Notes say what was not measured and why.
	Notes []string `json:"notes"`
}

// Settings are the options a report was made with (without the token).
type Settings struct {
	Server       string    `json:"server"`
	Scenarios    []string  `json:"scenarios"`
	Concurrency  int       `json:"concurrency"`
	Requests     int       `json:"requests"`
	Duration     string    `json:"duration"`
	Fanout       int       `json:"fanout"`
	Rates        []float64 `json:"rates"`
	GroupSize    int       `json:"groupSize"`
	Drain        string    `json:"drain"`
	KafkaRecords int       `json:"kafkaRecords"`
	StoreRows    int       `json:"storeRows"`
	StoreBatch   int       `json:"storeBatch"`
	LogRecords   int       `json:"logRecords"`
	LogBatch     int       `json:"logBatch"`
	Peers        []Peer    `json:"peers,omitempty"`
	Rounds       int       `json:"rounds,omitempty"`
	// BetweenRounds is Options.BetweenRounds.
	BetweenRounds string `json:"betweenRounds,omitempty"`
	PID           int    `json:"pid,omitempty"`
}

func (o Options) settings() Settings {
	return Settings{Server: o.Server, Scenarios: o.Scenarios, Concurrency: o.Concurrency, Requests: o.Requests,
		Duration: o.Duration.String(), Fanout: o.Fanout, Rates: o.Rates, GroupSize: o.GroupSize,
		Drain: o.Drain.String(), KafkaRecords: o.KafkaRecords, StoreRows: o.StoreRows, StoreBatch: o.StoreBatch,
		LogRecords: o.LogRecords, LogBatch: o.LogBatch, Peers: o.Peers, Rounds: o.Rounds,
		BetweenRounds: o.BetweenRounds, PID: o.PID}
}

// Run runs the selected scenarios in a fixed order (baselines first) and
// returns what was measured. A scenario that fails is reported in its
// Result.Err and in the returned error, and the run goes on with the rest.
func Run(ctx context.Context, o Options) (*Report, error) {
	o = o.withDefaults()
	rep := &Report{At: time.Now().UTC(), Options: o.settings()}
	if err := o.check(ctx); err != nil {
		return rep, err
	}
	r, err := newRunner(ctx, o)
	if err != nil {
		return rep, err
	}
	defer r.close()
	if r.herald.proc == nil && o.needsHerald() {
		rep.Notes = append(rep.Notes, "Herald's memory and CPU were not sampled: its /metrics has no process metrics "+
			"(or needs a token with the read scope) and no --pid was given")
	}
	var errs []error
	for _, name := range Scenarios() {
		if !slices.Contains(o.Scenarios, name) {
			continue
		}
		rs, err := r.measure(ctx, name)
		if err != nil {
			errs = append(errs, err)
		}
		rep.Results = append(rep.Results, rs...)
		if ctx.Err() != nil {
			break
		}
	}
	for r.round = 2; r.round <= o.Rounds && ctx.Err() == nil; r.round++ {
		if err := r.betweenRounds(ctx); err != nil {
			errs = append(errs, err)
			break
		}
		for _, name := range []string{ScenarioPeer, ScenarioAccept} {
			if !slices.Contains(o.Scenarios, name) || ctx.Err() != nil {
				continue
			}
			rs, err := r.measure(ctx, name)
			if err != nil {
				errs = append(errs, err)
			}
			rep.Results = append(rep.Results, rs...)
		}
	}
	if o.Rounds > 1 {
		rep.Notes = append(rep.Notes, roundsNotes(rep.Results)...)
	}
	// The bare relay and the raw store inserts again at the end, when
	// something is compared with them: on a shared machine a baseline
	// sampled once, minutes before the numbers it divides, can be off by a
	// quarter; ratios use the mean of the two, and a note gives both.
	for _, b := range r.baselinesAgain(o.Scenarios) {
		if ctx.Err() != nil {
			break
		}
		fmt.Fprintf(o.Progress, "scenario %s (again, at the end)\n", b.name)
		res, err := b.run(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s again: %w", b.name, err))
			res = Result{Scenario: b.scenario + " (again, at the end)", Name: b.name, Err: err.Error()}
		}
		rep.Results = append(rep.Results, res)
		if note := againNote(rep.Results, b); note != "" {
			rep.Notes = append(rep.Notes, note)
		}
	}
	rep.Ratios = ratios(rep.Results)
	for _, res := range rep.Results {
		if note := waitsNote(res); note != "" {
			rep.Notes = append(rep.Notes, note)
		}
		if note := errorsNote(res); note != "" {
			rep.Notes = append(rep.Notes, note)
		}
		if res.ErrorsByStatus["429"] > 0 {
			rep.Notes = append(rep.Notes, res.Scenario+": answered 429 (rate limited): start Herald with HERALD_AUTH_RATE=0")
		}
	}
	if err := errors.Join(errs...); err != nil {
		return rep, fmt.Errorf("bench: %w", err)
	}
	return rep, ctx.Err()
}

// errorsNote says what a scenario's failed requests were, by kind (an HTTP
// status, or "transport" with the first such error's text), so a run with
// errors explains them; "" when there were none.
func errorsNote(res Result) string {
	if res.Errors == 0 || len(res.ErrorsByStatus) == 0 {
		return ""
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(res.ErrorsByStatus)) {
		p := fmt.Sprintf("%s %d", k, res.ErrorsByStatus[k])
		if s := res.ErrorSamples[k]; s != "" {
			p += fmt.Sprintf(" (the first: %s)", s)
		}
		parts = append(parts, p)
	}
	return fmt.Sprintf("%s: %d requests failed: %s", res.Scenario, res.Errors, strings.Join(parts, ", "))
}

// baselineAgain is a baseline measured a second time at the end of a run.
type baselineAgain struct {
	name, scenario, unit string
	run                  func(context.Context) (Result, error)
}

// baselinesAgain lists the baselines the run measures that a Herald
// scenario's ratio is taken to: the bare relay (accept, fanout, group,
// peer) and the raw store inserts (logs).
func (r *runner) baselinesAgain(scenarios []string) []baselineAgain {
	has := func(names ...string) bool {
		return slices.ContainsFunc(scenarios, func(s string) bool { return slices.Contains(names, s) })
	}
	var out []baselineAgain
	if has(ScenarioRelay) && has(ScenarioAccept, ScenarioFanout, ScenarioGroup, ScenarioPeer) {
		out = append(out, baselineAgain{ScenarioRelay, relayScenario, "requests/s",
			func(ctx context.Context) (Result, error) { return r.bareRelay(ctx, true) }})
	}
	if has(ScenarioStore) && has(ScenarioLogs) {
		out = append(out, baselineAgain{ScenarioStore, r.storeScenario(), "rows/s",
			func(ctx context.Context) (Result, error) { return r.rawStore(ctx, true) }})
	}
	return out
}

// againNote says what a baseline measured each time, when it was measured
// more than once.
func againNote(rs []Result, b baselineAgain) string {
	var rates []string
	for _, r := range rs {
		if r.Name == b.name && r.Err == "" {
			rates = append(rates, fmt.Sprintf("%.0f", r.RequestsPerS))
		}
	}
	if len(rates) < 2 {
		return ""
	}
	return strings.TrimPrefix(b.scenario, "baseline: ") + ": " + strings.Join(rates, " and ") + " " + b.unit +
		" at the start and the end of the run; ratios to it use the mean"
}

// runner holds what the scenarios of one run share.
type runner struct {
	o      Options
	rcv    *receiver
	hc     *http.Client     // setup calls and reads
	fc     *fasthttp.Client // the load (client.post)
	herald *target
	tag    string // makes this run's names and labels unique
	round  int    // of the peer and accept scenarios, from 1
	fanout string // the fan-out group's name, once created
}

// target is a system under test: its API and where its memory and CPU are
// read (nil: not sampled).
type target struct {
	api  *client
	proc procReader
	from string
	// waits reads the waits between stages (nil: not read).
	waits func(ctx context.Context) (map[string]histogram, error)
}

func newRunner(ctx context.Context, o Options) (*runner, error) {
	rcv, err := newReceiver(o.ReceiverAddr)
	if err != nil {
		return nil, err
	}
	hc := &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: o.Concurrency * 2, MaxIdleConns: o.Concurrency * 4}}
	r := &runner{o: o, rcv: rcv, hc: hc, fc: newLoadClient(maxInFlight + 2*o.Concurrency),
		tag: strconv.FormatInt(time.Now().UnixNano()/1e6%1e9, 36), round: 1}
	r.herald = &target{api: r.client(strings.TrimRight(o.Server, "/"), o.Token)}
	if o.needsHerald() { // only then is o.Server known to be on loopback
		r.herald = r.newTarget(ctx, r.herald.api.base, o.Token, o.PID)
	}
	return r, nil
}

// newTarget finds how to read a system's memory and CPU: its /metrics
// when that has process metrics, else /proc for pid.
func (r *runner) newTarget(ctx context.Context, base, token string, pid int) *target {
	t := &target{api: r.client(base, token)}
	m := metricsReader(r.hc, base+"/metrics", token)
	if _, _, err := m(ctx); err == nil {
		t.proc, t.from = m, "metrics"
		t.waits = waitsReader(r.hc, base+"/metrics", token)
	} else if pid > 0 {
		t.proc, t.from = pidReader(pid), "proc"
	}
	return t
}

// client returns a client of the API at base that sends the load with the
// run's load client.
func (r *runner) client(base, token string) *client {
	return &client{hc: r.hc, fc: r.fc, base: base, token: token}
}

func (r *runner) close() {
	r.rcv.close()
	r.hc.CloseIdleConnections()
	r.fc.CloseIdleConnections()
}

// measure runs one named scenario, saying so in Progress; a failure is
// also among the results returned, as a Result with Err. A round after the
// first is named in both.
func (r *runner) measure(ctx context.Context, name string) ([]Result, error) {
	progress, label, round := name, name, 0
	if r.round > 1 {
		progress = fmt.Sprintf("%s (round %d of %d)", name, r.round, r.o.Rounds)
		label, round = fmt.Sprintf("%s, round %d", name, r.round), r.round
	}
	fmt.Fprintf(r.o.Progress, "scenario %s\n", progress)
	rs, err := r.scenario(ctx, name)
	if err != nil {
		rs = append(rs, Result{Scenario: name, Name: name, Round: round, Err: err.Error()})
		return rs, fmt.Errorf("%s: %w", label, err)
	}
	return rs, nil
}

// scenario runs one named scenario.
func (r *runner) scenario(ctx context.Context, name string) ([]Result, error) {
	one := func(res Result, err error) ([]Result, error) { return []Result{res}, err }
	switch name {
	case ScenarioHandler:
		return one(r.bareHandler(ctx))
	case ScenarioRelay:
		return one(r.bareRelay(ctx, false))
	case ScenarioRelayRates:
		return r.relayRates(ctx)
	case ScenarioKafka:
		return one(r.rawKafka(ctx))
	case ScenarioStore:
		return one(r.rawStore(ctx, false))
	case ScenarioPeer:
		return r.peers(ctx)
	case ScenarioAccept:
		return one(r.accept(ctx))
	case ScenarioFanout:
		return one(r.fanoutLoad(ctx))
	case ScenarioRates:
		return r.rates(ctx)
	case ScenarioGroup:
		return one(r.bigGroup(ctx))
	case ScenarioLogs:
		return one(r.logs(ctx))
	}
	return nil, fmt.Errorf("unknown scenario %q", name)
}

// key is the label value that marks one scenario's alerts, so the receiver
// counts each scenario apart even when an earlier one is still draining.
func (r *runner) key(name string) string { return r.tag + "-" + name }

// betweenRounds runs Options.BetweenRounds, if set, its output going to
// Progress.
func (r *runner) betweenRounds(ctx context.Context) error {
	if r.o.BetweenRounds == "" {
		return nil
	}
	fmt.Fprintf(r.o.Progress, "between rounds: %s\n", r.o.BetweenRounds)
	cmd := exec.CommandContext(ctx, "sh", "-c", r.o.BetweenRounds)
	cmd.Stdout, cmd.Stderr = r.o.Progress, r.o.Progress
	cmd.WaitDelay = 10 * time.Second // a background child holding the output open
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("before round %d: %s: %w", r.round, r.o.BetweenRounds, err)
	}
	// Kept-alive connections to a server the command restarted are dead;
	// the load's POSTs are not sent twice, so each would count an error.
	r.fc.CloseIdleConnections()
	r.hc.CloseIdleConnections()
	return nil
}

// maxRounds bounds Options.Rounds.
const maxRounds = 20

// inRound marks res as measured in the runner's current round, when the run
// has several: its Round, and its row's label.
func (r *runner) inRound(res *Result) {
	if r.o.Rounds > 1 {
		res.Round = r.round
		res.Scenario += fmt.Sprintf(" (round %d of %d)", r.round, r.o.Rounds)
	}
}

// roundKey is key(name), unique to the runner's round after the first.
func (r *runner) roundKey(name string) string {
	if r.round > 1 {
		name += "-round" + strconv.Itoa(r.round)
	}
	return r.key(name)
}

package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldproject/herald/internal/testnet"
)

// fakeAlertmanager speaks the part of Prometheus Alertmanager's protocol the
// peer scenario uses: POST /api/v2/alerts (an array of alerts; startsAt set
// on acceptance when absent), GET /api/v2/status, GET /metrics, and webhook
// notifications (version 4 payloads, an "alerts" array) to hook. Like
// Alertmanager it batches several alerts into one notification, and it
// notifies some alerts twice, which the receiver must count once. Like
// Alertmanager routing by group_by: ['bench_id'] with group_interval 5m, it
// holds (here: never sends) a new alert whose bench_id was notified before.
type fakeAlertmanager struct {
	*httptest.Server
	hook     string
	mu       sync.Mutex
	pending  []map[string]any
	notified map[any]bool // bench_id values
	done     chan struct{}
	wg       sync.WaitGroup
}

func newFakeAlertmanager(t *testing.T, hook string) *fakeAlertmanager {
	f := &fakeAlertmanager{hook: hook, done: make(chan struct{}), notified: map[any]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v2/status", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "{}") })
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %g\n"+
			"process_resident_memory_bytes 4.194304e+07\n", float64(time.Now().UnixMilli())/1000)
	})
	mux.HandleFunc("POST /api/v2/alerts", func(w http.ResponseWriter, r *http.Request) {
		var as []map[string]any
		if err := json.NewDecoder(r.Body).Decode(&as); err != nil || len(as) == 0 {
			http.Error(w, "bad alerts", http.StatusBadRequest)
			return
		}
		now := time.Now().UTC().Format(time.RFC3339Nano)
		f.mu.Lock()
		for _, a := range as {
			labels, _ := a["labels"].(map[string]any)
			if f.notified[labels[labelID]] {
				continue // its group waits for group_interval
			}
			f.notified[labels[labelID]] = true
			if _, ok := a["startsAt"]; !ok {
				a["startsAt"] = now
			}
			a["status"] = "firing"
			f.pending = append(f.pending, a)
		}
		f.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	})
	f.Server = httptest.NewServer(mux)
	f.wg.Go(f.notify)
	t.Cleanup(func() { close(f.done); f.wg.Wait(); f.Close() })
	return f
}

// notify sends what is pending every few milliseconds, at most 7 alerts per
// notification, repeating the first alert of every batch in the next one.
func (f *fakeAlertmanager) notify() {
	var again map[string]any
	for {
		select {
		case <-f.done:
			return
		case <-time.After(3 * time.Millisecond):
		}
		f.mu.Lock()
		batch := f.pending[:min(len(f.pending), 7)]
		f.pending = f.pending[len(batch):]
		f.mu.Unlock()
		if again != nil {
			batch = append([]map[string]any{again}, batch...)
			again = nil
		}
		if len(batch) == 0 {
			continue
		}
		again = batch[len(batch)-1]
		b, _ := json.Marshal(map[string]any{"version": "4", "status": "firing", "receiver": "bench", "alerts": batch})
		if resp, err := http.Post(f.hook, "application/json", bytes.NewReader(b)); err == nil {
			resp.Body.Close()
		}
	}
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	return testnet.FreeAddr(t)
}

// TestBenchPeerAlertmanager drives a fake Alertmanager beside the bare relay:
// each alert counted once although notifications batch and repeat them,
// memory and CPU read from its /metrics, the ratio to the relay reported.
func TestBenchPeerAlertmanager(t *testing.T) {
	recv := freeAddr(t)
	am := newFakeAlertmanager(t, "http://"+recv+"/hook")
	rep, err := Run(context.Background(), Options{Scenarios: []string{ScenarioRelay, ScenarioPeer}, Concurrency: 4,
		Requests: 300, Duration: 10 * time.Second, Drain: 10 * time.Second, ReceiverAddr: recv,
		Peers: []Peer{{Kind: "alertmanager", URL: am.URL}}})
	if err != nil {
		t.Fatal(err)
	}
	// The relay, the peer, and the relay again at the end.
	if len(rep.Results) != 3 || rep.Results[2].Name != ScenarioRelay || rep.Results[2].Notifications != 300 ||
		rep.Results[0].Notifications != 300 || rep.Results[2].NotificationsPS <= 0 {
		t.Fatalf("results: %+v", rep.Results)
	}
	p := rep.Results[1]
	if p.Name != ScenarioPeer || p.Requests != 300 || p.Errors != 0 || p.Notifications != 300 || p.Expected != 300 ||
		p.NotificationsPS <= 0 || p.E2EP99ms <= 0 {
		t.Errorf("peer: %+v", p)
	}
	if p.Process == nil || p.Process.From != "metrics" || p.Process.PeakRSSMB != 40 {
		t.Errorf("peer process: %+v", p.Process)
	}
	if len(rep.Ratios) != 1 || rep.Ratios[0].Name != "notifications/s: alertmanager / bare relay" {
		t.Fatalf("ratios: %+v", rep.Ratios)
	}
	// Divided by the mean of the two relay runs.
	mean := (rep.Results[0].NotificationsPS + rep.Results[2].NotificationsPS) / 2
	if want := p.NotificationsPS / mean; math.Abs(rep.Ratios[0].Value-want) > 1e-9 {
		t.Errorf("ratio %v, want %v (the peer over the mean of %v and %v)", rep.Ratios[0].Value, want,
			rep.Results[0].NotificationsPS, rep.Results[2].NotificationsPS)
	}
	if len(rep.Notes) == 0 || !strings.Contains(strings.Join(rep.Notes, "\n"), "bare relay: ") {
		t.Errorf("notes: %q", rep.Notes)
	}
	var table bytes.Buffer
	Table(&table, rep)
	if !strings.Contains(table.String(), "peer: alertmanager") || !strings.Contains(table.String(), "300/300") {
		t.Errorf("table:\n%s", table.String())
	}
}

// TestBenchBaselinesRawKafkaStore runs the two raw baselines small: every
// record produced is consumed, every row inserted.
func TestBenchBaselinesRawKafkaStore(t *testing.T) {
	rep, err := Run(context.Background(), Options{Scenarios: []string{ScenarioKafka, ScenarioStore},
		KafkaRecords: 1500, StoreRows: 1234, StoreBatch: 100, Duration: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	k, s := rep.Results[0], rep.Results[1]
	if k.Unit != "records" || k.Requests != 1500 || k.Notifications != 1500 || k.NotificationsPS <= 0 {
		t.Errorf("kafka: %+v", k)
	}
	if s.Unit != "rows" || s.Requests != 1234 || s.RequestsPerS <= 0 || s.P99ms <= 0 {
		t.Errorf("store: %+v", s)
	}
}

// TestBenchLoopbackOnly: no load leaves this machine.
func TestBenchLoopbackOnly(t *testing.T) {
	for _, o := range []Options{
		{Server: "http://192.0.2.1:8080", Scenarios: []string{ScenarioAccept}},
		{Scenarios: []string{ScenarioPeer}, Peers: []Peer{{Kind: "alertmanager", URL: "http://192.0.2.1:9093"}}},
		{Scenarios: []string{ScenarioHandler}, ReceiverAddr: "192.0.2.1:0"},
	} {
		if _, err := Run(context.Background(), o); err == nil || !strings.Contains(err.Error(), "loopback") {
			t.Errorf("%+v: %v", o, err)
		}
	}
	if _, err := Run(context.Background(), Options{Scenarios: []string{"traces"}}); err == nil {
		t.Error("unknown scenario accepted")
	}
	if _, err := ParsePeer("zabbix=http://127.0.0.1:1"); err == nil {
		t.Error("unknown peer kind accepted")
	}
}

// TestBenchProcessReaders reads this process from /proc and parses the
// Prometheus process metrics.
func TestBenchProcessReaders(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	rss, cpu, err := pidReader(os.Getpid())(context.Background())
	if err != nil || rss < 1<<20 || cpu < 0 {
		t.Errorf("proc: rss %v cpu %v: %v", rss, cpu, err)
	}
	rss, cpu, err = parseProcessMetrics(strings.NewReader("# HELP x\nprocess_cpu_seconds_total 12.5\n" +
		"process_resident_memory_bytes 1.048576e+08\nprocess_virtual_memory_bytes 1e9\n"))
	if err != nil || rss != 100<<20 || cpu != 12.5 {
		t.Errorf("metrics: rss %v cpu %v: %v", rss, cpu, err)
	}
	if _, _, err := parseProcessMetrics(strings.NewReader("go_goroutines 5\n")); err == nil {
		t.Error("metrics without process metrics accepted")
	}
}

// TestBenchPlot writes the latency plot: well-formed SVG with a point per
// series and step, and an error when there is nothing to plot.
func TestBenchPlot(t *testing.T) {
	rep := &Report{At: time.Now(), Results: []Result{{Name: ScenarioHandler, RequestsPerS: 1000}}}
	if err := WritePlot(io.Discard, rep); err == nil {
		t.Error("plot without rates results")
	}
	for i, rate := range []float64{250, 500, 1000} {
		rep.Results = append(rep.Results, Result{Name: ScenarioRates, OfferedPerS: rate, Fanout: 10, P50ms: 2,
			P99ms: float64(10 * (i + 1)), E2EP50ms: 30, E2EP99ms: 2000 * float64(i+1), NotificationsPS: 2400})
	}
	var b bytes.Buffer
	if err := WritePlot(&b, rep); err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(bytes.NewReader(b.Bytes()))
	for {
		if _, err := d.Token(); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("not XML: %v\n%s", err, b.String())
		}
	}
	if n := strings.Count(b.String(), "<circle"); n != 12 {
		t.Errorf("%d points, want 12", n)
	}
	// With the relay at the same rates: its line too, in the legend.
	for _, rate := range []float64{250, 500, 1000} {
		rep.Results = append(rep.Results, Result{Name: ScenarioRelayRates, OfferedPerS: rate, Fanout: 10, E2EP99ms: 3})
	}
	b.Reset()
	if err := WritePlot(&b, rep); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(b.String(), "<circle"); n != 15 || !strings.Contains(b.String(), "bare relay") {
		t.Errorf("%d points with the relay, want 15; relay in the legend: %v", n, strings.Contains(b.String(), "bare relay"))
	}
	for _, want := range []string{"fan-out 10", "1 s", "10 ms", "2400/s"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("plot lacks %q", want)
		}
	}
}

// TestBenchStoreAgainMean: with the raw store inserts measured twice, the
// logs ratio divides by their mean and a note gives both.
func TestBenchStoreAgainMean(t *testing.T) {
	rs := []Result{
		{Name: ScenarioStore, RequestsPerS: 100_000},
		{Name: ScenarioLogs, RequestsPerS: 60_000},
		{Name: ScenarioStore, RequestsPerS: 140_000},
		{Name: ScenarioStore, RequestsPerS: 1, Err: "failed"},
	}
	var got float64
	for _, r := range ratios(rs) {
		if strings.HasPrefix(r.Name, "log records/s") {
			got = r.Value
		}
	}
	if got != 0.5 {
		t.Errorf("logs ratio %v, want 0.5 (60,000 over the mean 120,000)", got)
	}
	r := &runner{o: Options{StoreBatch: 500}}
	bs := r.baselinesAgain([]string{ScenarioStore, ScenarioLogs})
	if len(bs) != 1 || bs[0].name != ScenarioStore {
		t.Fatalf("baselines again: %+v", bs)
	}
	if note := againNote(rs, bs[0]); note != "raw SQLite inserts, 500 per tx: 100000 and 140000 rows/s at the start and the end of the run; ratios to it use the mean" {
		t.Errorf("note: %q", note)
	}
	if bs := r.baselinesAgain([]string{ScenarioStore, ScenarioAccept}); len(bs) != 0 {
		t.Errorf("store measured again without logs: %+v", bs)
	}
}

// TestBenchPeerRounds measures the fake Alertmanager in two rounds: each
// round's alerts counted apart, its rows labelled with the round, the
// command between rounds run once; a failing command ends the rounds.
func TestBenchPeerRounds(t *testing.T) {
	recv := freeAddr(t)
	am := newFakeAlertmanager(t, "http://"+recv+"/hook")
	marks := filepath.Join(t.TempDir(), "marks")
	rep, err := Run(context.Background(), Options{Scenarios: []string{ScenarioPeer}, Concurrency: 4, Rounds: 2,
		Requests: 200, Duration: 10 * time.Second, Drain: 10 * time.Second, ReceiverAddr: recv,
		Peers: []Peer{{Kind: "alertmanager", URL: am.URL}}, BetweenRounds: "echo between >> " + marks})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(marks); err != nil || string(b) != "between\n" {
		t.Errorf("between rounds: %q, %v; want one run", b, err)
	}
	if len(rep.Results) != 2 {
		t.Fatalf("results: %+v", rep.Results)
	}
	for i, r := range rep.Results {
		if r.Name != ScenarioPeer || r.Round != i+1 || r.Notifications != 200 || r.Expected != 200 ||
			!strings.HasSuffix(r.Scenario, fmt.Sprintf("(round %d of 2)", i+1)) {
			t.Errorf("round %d: %+v", i+1, r)
		}
	}
	if rep.Options.Rounds != 2 {
		t.Errorf("settings: %+v", rep.Options)
	}

	rep, err = Run(context.Background(), Options{Scenarios: []string{ScenarioPeer}, Concurrency: 4, Rounds: 3,
		Requests: 50, Duration: 10 * time.Second, Drain: 10 * time.Second, ReceiverAddr: recv,
		Peers: []Peer{{Kind: "alertmanager", URL: am.URL}}, BetweenRounds: "exit 3"})
	if err == nil || !strings.Contains(err.Error(), "before round 2") || len(rep.Results) != 1 {
		t.Errorf("a failing command between rounds: %v, %d results; want an error and round 1 only", err, len(rep.Results))
	}
}

// TestRatiosRounds takes Herald's ratio to a peer as the median of the
// rounds' ratios, each round's accept over the same round's peer, and says
// each in a note.
func TestRatiosRounds(t *testing.T) {
	peer := func(round int, notif float64) Result {
		return Result{Name: ScenarioPeer, Scenario: fmt.Sprintf("peer: alertmanager, 1 notification per alert (round %d of 3)", round),
			Round: round, RequestsPerS: notif, NotificationsPS: notif}
	}
	accept := func(round int, notif float64) Result {
		return Result{Name: ScenarioAccept, Round: round, RequestsPerS: notif, NotificationsPS: notif}
	}
	// Rounds 1.5, 1.0 and 1.2: the median is 1.2; a pooled ratio
	// (7,000 against 5,500) would be 1.27.
	rs := []Result{peer(1, 2000), accept(1, 3000), peer(2, 2000), accept(2, 2000), peer(3, 1500), accept(3, 1800)}
	var got float64
	for _, r := range ratios(rs) {
		if r.Name == "notifications/s, 1 recipient: herald / alertmanager" {
			got = r.Value
		}
	}
	if math.Abs(got-1.2) > 1e-9 {
		t.Errorf("herald / alertmanager %v, want the median 1.2; ratios %+v", got, ratios(rs))
	}
	notes := roundsNotes(rs)
	if len(notes) != 1 || !strings.Contains(notes[0], "round 1: 1.500 (3000 against 2000), round 2: 1.000") ||
		!strings.Contains(notes[0], "round 3: 1.200") {
		t.Errorf("notes: %q", notes)
	}
	// A round whose accept failed has no ratio; the rest still count.
	rs[3].Err = "boom"
	for _, r := range ratios(rs) {
		if r.Name == "notifications/s, 1 recipient: herald / alertmanager" && math.Abs(r.Value-1.35) > 1e-9 {
			t.Errorf("without round 2: %v, want 1.35 (the median of 1.5 and 1.2)", r.Value)
		}
	}
	if notes := roundsNotes(rs); len(notes) != 1 || !strings.Contains(notes[0], "round 2: no ratio") {
		t.Errorf("notes without round 2: %q", notes)
	}
	for _, tc := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{4, 1}, 2.5}, {[]float64{5, 1, 3}, 3}} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// TestErrorsNote: failed requests are reported by kind, a transport error
// with the first one's text, and a result without errors has no note.
func TestErrorsNote(t *testing.T) {
	var tl tally
	tl.record(time.Millisecond, 202, nil)
	tl.record(0, 0, errors.New("the server closed connection before returning the first response byte"))
	tl.record(0, 0, errors.New("a later one"))
	tl.record(time.Millisecond, 503, nil)
	res := tl.result("herald", "accept: herald, 1 recipient", time.Second)
	want := "accept: herald, 1 recipient: 3 requests failed: 503 1, transport 2 (the first: the server closed connection " +
		"before returning the first response byte)"
	if got := errorsNote(res); got != want {
		t.Fatalf("note = %q\nwant   %q", got, want)
	}
	if res.Requests != 1 || res.Errors != 3 {
		t.Fatalf("requests %d, errors %d; want 1 and 3", res.Requests, res.Errors)
	}
	var ok tally
	ok.record(time.Millisecond, 202, nil)
	if got := errorsNote(ok.result("herald", "accept", time.Second)); got != "" {
		t.Fatalf("note without errors = %q", got)
	}
}

// stalledDeadline is a context past its deadline whose timer has not fired
// yet (Err nil), as a loaded machine leaves one for a moment.
type stalledDeadline struct {
	context.Context
	at time.Time
}

func (c stalledDeadline) Deadline() (time.Time, bool) { return c.at, true }

// TestPostCutOff: a load request at or past its scenario's deadline is cut
// off (context.DeadlineExceeded, which the closed loop counts as neither a
// success nor an error), whether or not the context's timer has fired, and
// one still unanswered at the deadline is cut off too; neither is sent as a
// failure.
func TestPostCutOff(t *testing.T) {
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		time.Sleep(300 * time.Millisecond)
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	c := &client{base: srv.URL, fc: newLoadClient(4)}
	past := stalledDeadline{Context: context.Background(), at: time.Now().Add(-time.Millisecond)}
	if code, err := c.post(past, "/", map[string]int{"a": 1}); !errors.Is(err, context.DeadlineExceeded) || code != 0 {
		t.Fatalf("past the deadline, timer not fired: %d, %v; want context.DeadlineExceeded", code, err)
	}
	if n := got.Load(); n != 0 {
		t.Fatalf("the server got %d requests past the deadline", n)
	}
	soon := stalledDeadline{Context: context.Background(), at: time.Now().Add(50 * time.Millisecond)}
	if code, err := c.post(soon, "/", map[string]int{"a": 1}); !errors.Is(err, context.DeadlineExceeded) || code != 0 {
		t.Fatalf("unanswered at the deadline: %d, %v; want context.DeadlineExceeded", code, err)
	}
}

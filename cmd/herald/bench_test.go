package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/heraldproject/herald/bench"
	"github.com/heraldproject/herald/internal/testauth"
)

// TestBenchSmoke runs every default scenario of `herald bench` briefly, at
// small sizes, against a child Herald: it must work, not be fast. Every
// scenario that delivers must have delivered what it accepted, every
// baseline must have measured a rate, and Herald's memory and CPU must have
// been read from its /metrics. A rate given twice is two steps, each counting
// only its own notifications (they once shared a key: the second step
// counted the first's too).
func TestBenchSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	c := startChild(t, buildBinary(t), t.TempDir(), "HERALD_AUTH_RATE=0")
	dir := t.TempDir()
	out, plot := filepath.Join(dir, "bench.json"), filepath.Join(dir, "latency.svg")
	var stdout, stderr bytes.Buffer
	env := []string{"HERALD_SERVER=" + c.base, "HERALD_TOKEN=" + testauth.AdminToken}
	if code := run([]string{"bench", "--concurrency", "4", "--requests", "200", "--duration", "20s", "--drain", "30s",
		"--fanout", "5", "--rates", "100,200,100", "--group-size", "50", "--kafka-records", "2000", "--store-rows", "2000",
		"--store-batch", "100", "--log-records", "3000", "--log-batch", "500", "--json", out, "--plot", plot}, env, &stdout, &stderr); code != 0 {
		t.Fatalf("bench: %s %s", stdout.String(), stderr.String())
	}
	t.Log("\n" + stdout.String())
	var rep bench.Report
	b, _ := os.ReadFile(out)
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("results %s: %v", b, err)
	}
	var names []string
	for _, r := range rep.Results {
		names = append(names, r.Name)
		if r.Err != "" || r.Requests == 0 || r.Errors != 0 || r.RequestsPerS <= 0 {
			t.Errorf("%s: %d %s at %.0f/s, %d errors, error %q", r.Scenario, r.Requests, r.Unit, r.RequestsPerS,
				r.Errors, r.Err)
		}
		if r.Expected > 0 && (r.Notifications != r.Expected || r.NotificationsPS <= 0) {
			t.Errorf("%s: %d notifications (%.0f/s), want %d", r.Scenario, r.Notifications, r.NotificationsPS, r.Expected)
		}
		if r.Unit == "requests" && r.Name != bench.ScenarioHandler && r.Expected != r.Requests*r.Fanout {
			t.Errorf("%s: expected %d notifications for %d requests at fan-out %d", r.Scenario, r.Expected,
				r.Requests, r.Fanout)
		}
		herald := slices.Contains([]string{bench.ScenarioAccept, bench.ScenarioFanout, bench.ScenarioRates,
			bench.ScenarioGroup, bench.ScenarioLogs}, r.Name)
		if herald && (r.Process == nil || r.Process.PeakRSSMB <= 0) {
			t.Errorf("%s: Herald's memory and CPU not read: %+v", r.Scenario, r.Process)
		}
		// Where its alerts waited: before the fan-out and before sending.
		if herald && r.Name != bench.ScenarioLogs && r.Process != nil {
			groups := map[string]bool{}
			for _, w := range r.Process.Waits {
				groups[w.Group] = w.Records > 0 && w.P99ms >= w.P50ms
			}
			if !groups["herald-fanout"] || !groups["herald-deliver-webhook"] {
				t.Errorf("%s: stage waits %+v, want the fan-out's and the webhook sender's", r.Scenario, r.Process.Waits)
			}
		}
	}
	// The bare relay and the raw store inserts again at the end: ratios to them
	// use the mean of both.
	want := []string{"handler", "relay", "relay-rates", "relay-rates", "relay-rates", "kafka", "store", "accept", "fanout", "rates", "rates", "rates", "group", "logs", "relay", "store"}
	if !slices.Equal(names, want) {
		t.Errorf("scenarios %v, want %v", names, want)
	}
	if !slices.ContainsFunc(rep.Ratios, func(r bench.Ratio) bool { return strings.HasPrefix(r.Name, "log records/s") }) {
		t.Errorf("no logs ratio: %+v", rep.Ratios)
	}
	if len(rep.Ratios) < 6 {
		t.Errorf("ratios: %+v", rep.Ratios)
	}
	if svg, err := os.ReadFile(plot); err != nil || !strings.HasPrefix(string(svg), "<svg") ||
		strings.Count(string(svg), "<circle") != 15 { // 4 Herald series × 3 steps, the relay's line × 3
		t.Errorf("plot: %v\n%s", err, svg)
	}
}

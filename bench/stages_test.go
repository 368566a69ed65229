package bench

import (
	"context"
	"math"
	"strings"
	"testing"
)

// TestStageWaits reads two scrapes of Herald's wait histogram and takes
// the quantiles of what happened between them, as histogram_quantile would.
func TestStageWaits(t *testing.T) {
	const before = `# HELP herald_consumer_record_wait_seconds …
# TYPE herald_consumer_record_wait_seconds histogram
herald_consumer_record_wait_seconds_bucket{group="herald-fanout",le="0.001"} 10
herald_consumer_record_wait_seconds_bucket{group="herald-fanout",le="0.002"} 10
herald_consumer_record_wait_seconds_bucket{group="herald-fanout",le="0.005"} 10
herald_consumer_record_wait_seconds_bucket{group="herald-fanout",le="+Inf"} 10
herald_consumer_record_wait_seconds_sum{group="herald-fanout"} 0.005
herald_consumer_record_wait_seconds_count{group="herald-fanout"} 10
herald_consumer_record_wait_seconds_bucket{group="herald-logs",le="0.001"} 4
herald_consumer_record_wait_seconds_bucket{group="herald-logs",le="0.002"} 4
herald_consumer_record_wait_seconds_bucket{group="herald-logs",le="0.005"} 4
herald_consumer_record_wait_seconds_bucket{group="herald-logs",le="+Inf"} 4
herald_consumer_batch_records_bucket{group="herald-fanout",le="1"} 10
`
	// Since: 100 fan-out records, 50 within 1 ms, 40 in (1, 2] ms, 9 in
	// (2, 5] ms, 1 over 5 ms; a deliver group seen for the first time; no
	// new log records.
	const after = `herald_consumer_record_wait_seconds_bucket{group="herald-fanout",le="0.001"} 60
herald_consumer_record_wait_seconds_bucket{group="herald-fanout",le="0.002"} 100
herald_consumer_record_wait_seconds_bucket{group="herald-fanout",le="0.005"} 109
herald_consumer_record_wait_seconds_bucket{group="herald-fanout",le="+Inf"} 110
herald_consumer_record_wait_seconds_bucket{group="herald-deliver-webhook",le="0.001"} 0
herald_consumer_record_wait_seconds_bucket{group="herald-deliver-webhook",le="0.002"} 0
herald_consumer_record_wait_seconds_bucket{group="herald-deliver-webhook",le="0.005"} 4
herald_consumer_record_wait_seconds_bucket{group="herald-deliver-webhook",le="+Inf"} 4
herald_consumer_record_wait_seconds_bucket{group="herald-logs",le="0.001"} 4
herald_consumer_record_wait_seconds_bucket{group="herald-logs",le="0.002"} 4
herald_consumer_record_wait_seconds_bucket{group="herald-logs",le="0.005"} 4
herald_consumer_record_wait_seconds_bucket{group="herald-logs",le="+Inf"} 4
`
	b, err := parseWaits(strings.NewReader(before))
	if err != nil {
		t.Fatal(err)
	}
	a, err := parseWaits(strings.NewReader(after))
	if err != nil {
		t.Fatal(err)
	}
	got := stageWaits(b, a)
	if len(got) != 2 || got[0].Group != "herald-fanout" || got[1].Group != "herald-deliver-webhook" {
		t.Fatalf("waits %+v: want the fan-out and deliver groups, in the pipeline's order, and not the idle logs group", got)
	}
	near := func(what string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-9 {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	f := got[0]
	if f.Records != 100 {
		t.Errorf("fan-out records %d, want 100", f.Records)
	}
	near("fan-out p50", f.P50ms, 1)               // rank 50: the top of the first bucket
	near("fan-out p99", f.P99ms, 2+3*(99-90.0)/9) // rank 99: the top of (2, 5] ms
	d := got[1]
	near("deliver p50", d.P50ms, 2+3*0.5) // rank 2 of 4, all in (2, 5] ms
	if d.Records != 4 {
		t.Errorf("deliver records %d, want 4", d.Records)
	}
	// The +Inf bucket gives the highest finite bound.
	inf := histogram{0.001: 0, 0.005: 1, math.Inf(1): 10}
	near("p99 beyond the last bound", inf.quantile(.99), 0.005)

	if _, err := parseWaits(strings.NewReader(`herald_consumer_record_wait_seconds_bucket{le="0.1"} 3` + "\n")); err == nil {
		t.Error("a bucket line without a group was accepted")
	}
	note := waitsNote(Result{Scenario: "s", Process: &Process{Waits: got}})
	if !strings.Contains(note, "herald-fanout 1.0 / 5.0 ms (100 records)") {
		t.Errorf("note %q", note)
	}
}

// TestStageWaitsSettle: the end of a scenario reads until the counts stop
// growing (the last batches are counted after their notifications arrive),
// and a Herald restarted between the reads gives what it counted since.
func TestStageWaitsSettle(t *testing.T) {
	counts := []float64{5, 8, 9, 9, 12}
	reads := 0
	read := func(context.Context) (map[string]histogram, error) {
		n := counts[min(reads, len(counts)-1)]
		reads++
		return map[string]histogram{"g": {0.001: n, math.Inf(1): n}}, nil
	}
	got, err := settled(t.Context(), read)
	if err != nil || got["g"][math.Inf(1)] != 9 || reads != 4 {
		t.Fatalf("settled at %v after %d reads (%v); want 9 after 4", got["g"][math.Inf(1)], reads, err)
	}

	before := map[string]histogram{"g": {0.001: 50, math.Inf(1): 50}}
	after := map[string]histogram{"g": {0.001: 3, math.Inf(1): 4}}
	if w := stageWaits(before, after); len(w) != 1 || w[0].Records != 4 {
		t.Errorf("after a restart: %+v, want the 4 records counted since", w)
	}
}

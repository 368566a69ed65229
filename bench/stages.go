package bench

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// waitMetric is Herald's histogram of the time from a record's production
// to the start of its handling, by consumer group: where an alert waits
// between stages.
const waitMetric = "herald_consumer_record_wait_seconds"

// StageWait is how long the records a scenario made waited in Kafka before
// one consumer group handled them (herald_consumer_record_wait_seconds,
// the difference between its values at the scenario's start and end).
// The quantiles are interpolated within the histogram's buckets, as
// Prometheus's histogram_quantile does, so they are approximate.
type StageWait struct {
	Group   string  `json:"group"`
	Records int     `json:"records"`
	P50ms   float64 `json:"p50Ms"`
	P99ms   float64 `json:"p99Ms"`
}

// histogram is one group's cumulative bucket counts, by upper bound.
type histogram map[float64]float64

// waitsReader reads waitMetric's buckets from a /metrics URL, by group.
func waitsReader(hc *http.Client, url, token string) func(ctx context.Context) (map[string]histogram, error) {
	return func(ctx context.Context) (hs map[string]histogram, err error) {
		err = scrape(ctx, hc, url, token, func(r io.Reader) error {
			hs, err = parseWaits(r)
			return err
		})
		return hs, err
	}
}

// parseWaits finds waitMetric's bucket lines in the Prometheus text format:
// name{group="…",le="…"} count.
func parseWaits(r io.Reader) (map[string]histogram, error) {
	out := make(map[string]histogram)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), waitMetric+"_bucket{")
		if !ok {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		var group, le string
		for l := range strings.SplitSeq(labels, ",") {
			k, v, _ := strings.Cut(l, "=")
			v = strings.Trim(v, `"`)
			switch k {
			case "group":
				group = v
			case "le":
				le = v
			}
		}
		bound, err1 := strconv.ParseFloat(le, 64) // "+Inf" parses as +Inf
		n, err2 := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if group == "" || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%s: unexpected line %q", waitMetric, sc.Text())
		}
		if out[group] == nil {
			out[group] = make(histogram)
		}
		out[group][bound] = n
	}
	return out, sc.Err()
}

// settled reads the waits until two reads 100 ms apart agree (at most 2 s):
// Herald counts a batch once its offsets are committed, after its
// notifications have arrived, so the last batches of a scenario are
// counted a moment after it ends.
func settled(ctx context.Context, read func(context.Context) (map[string]histogram, error)) (map[string]histogram, error) {
	prev, err := read(ctx)
	for range 20 {
		if err != nil {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return prev, nil
		case <-time.After(100 * time.Millisecond):
		}
		var cur map[string]histogram
		if cur, err = read(ctx); err == nil && total(cur) == total(prev) {
			return cur, nil
		}
		prev = cur
	}
	return prev, err
}

// total is how many records every group has counted.
func total(hs map[string]histogram) float64 {
	var n float64
	for _, h := range hs {
		n += h[math.Inf(1)]
	}
	return n
}

// stageWaits is what happened between two reads: per group with records,
// how many and their wait's p50 and p99, in the pipeline's order (the
// fan-out, the senders, the rest by name).
func stageWaits(before, after map[string]histogram) []StageWait {
	var out []StageWait
	for group, h := range after {
		d := make(histogram, len(h))
		for le, n := range h {
			d[le] = n - before[group][le]
		}
		if d[math.Inf(1)] < 0 { // Herald restarted between the reads: all since
			d = h
		}
		total := d[math.Inf(1)]
		if total <= 0 {
			continue
		}
		out = append(out, StageWait{Group: group, Records: int(total),
			P50ms: d.quantile(.5) * 1000, P99ms: d.quantile(.99) * 1000})
	}
	stage := func(group string) int {
		switch {
		case group == "herald-fanout":
			return 0
		case strings.HasPrefix(group, "herald-deliver-"):
			return 1
		}
		return 2
	}
	slices.SortFunc(out, func(a, b StageWait) int {
		return cmp.Or(cmp.Compare(stage(a.Group), stage(b.Group)), cmp.Compare(a.Group, b.Group))
	})
	return out
}

// quantile interpolates the q-quantile within the bucket that holds it, as
// Prometheus's histogram_quantile: from the bucket's lower bound (0 for the
// first) to its upper; in the +Inf bucket, the highest finite bound.
func (h histogram) quantile(q float64) float64 {
	bounds := slices.Sorted(func(yield func(float64) bool) {
		for le := range h {
			if !yield(le) {
				return
			}
		}
	})
	rank := q * h[math.Inf(1)]
	lower, below := 0.0, 0.0
	for _, le := range bounds {
		n := h[le]
		if n >= rank { // n > below: rank > 0 (callers skip empty histograms) and rank > below
			if math.IsInf(le, 1) {
				return lower
			}
			return lower + (le-lower)*(rank-below)/(n-below)
		}
		lower, below = le, n
	}
	return lower
}

// waitsNote says where a scenario's records waited between stages.
func waitsNote(res Result) string {
	if res.Process == nil || len(res.Process.Waits) == 0 {
		return ""
	}
	var parts []string
	for _, w := range res.Process.Waits {
		parts = append(parts, fmt.Sprintf("%s %.1f / %.1f ms (%d records)", w.Group, w.P50ms, w.P99ms, w.Records))
	}
	return res.Scenario + ": wait in Kafka before each stage, p50 / p99: " + strings.Join(parts, "; ")
}

package bench

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Table writes the report as an aligned table, then the ratios and notes.
func Table(w io.Writer, rep *Report) {
	fmt.Fprintf(w, "%-46s %8s %8s %6s %9s %8s %8s %8s %8s %9s %9s %9s %9s %7s %5s\n", "scenario", "unit", "count",
		"errors", "rate/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "notified", "notif/s", "e2e p50", "e2e p99",
		"RSS MB", "CPU")
	for _, r := range rep.Results {
		if r.Err != "" {
			fmt.Fprintf(w, "%-46s ERROR: %s\n", r.Scenario, r.Err)
			continue
		}
		rss, cpu := "-", "-"
		if r.Process != nil {
			rss, cpu = strconv.FormatFloat(r.Process.PeakRSSMB, 'f', 0, 64), strconv.FormatFloat(r.Process.CPUCores, 'f', 2, 64)
		}
		notified, notifPS, e50, e99 := "-", "-", "-", "-"
		if r.Expected > 0 {
			notified = fmt.Sprintf("%d/%d", r.Notifications, r.Expected)
			notifPS, e50, e99 = num(r.NotificationsPS), num(r.E2EP50ms), num(r.E2EP99ms)
		}
		fmt.Fprintf(w, "%-46s %8s %8d %6d %9s %8s %8s %8s %8s %9s %9s %9s %9s %7s %5s\n", r.Scenario, r.Unit, r.Requests,
			r.Errors, num(r.RequestsPerS), num(r.P50ms), num(r.P90ms), num(r.P99ms), num(r.MaxMs), notified, notifPS,
			e50, e99, rss, cpu)
	}
	if len(rep.Ratios) > 0 {
		fmt.Fprintln(w, "\nratios (same run):")
		for _, r := range rep.Ratios {
			fmt.Fprintf(w, "  %-66s %8.3f\n", r.Name, r.Value)
		}
	}
	for _, n := range rep.Notes {
		fmt.Fprintln(w, "note:", n)
	}
}

// num prints a number with fewer decimals the larger it is.
func num(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v < 10:
		return strconv.FormatFloat(v, 'f', 2, 64)
	case v < 1000:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

// ratios compares Herald's results with the baselines and peers of the
// same run.
func ratios(rs []Result) []Ratio {
	first := func(name string) *Result {
		for i := range rs {
			if rs[i].Name == name && rs[i].Err == "" {
				return &rs[i]
			}
		}
		return nil
	}
	var out []Ratio
	add := func(name string, a, b *Result, num, den func(*Result) float64) {
		if a == nil || b == nil || num(a) <= 0 || den(b) <= 0 {
			return
		}
		out = append(out, Ratio{Name: name, Value: num(a) / den(b)})
	}
	reqs := func(r *Result) float64 { return r.RequestsPerS }
	notif := func(r *Result) float64 { return r.NotificationsPS }
	handler, relay, kafka, store := first(ScenarioHandler), meanOf(rs, ScenarioRelay), first(ScenarioKafka), meanOf(rs, ScenarioStore)
	accept, fanout, group := first(ScenarioAccept), first(ScenarioFanout), first(ScenarioGroup)
	add("log records/s until searchable: herald / raw SQLite rows/s", first(ScenarioLogs), store, reqs, reqs)
	add("accept req/s: herald / bare handler", accept, handler, reqs, reqs)
	add("accept req/s: herald / bare relay", accept, relay, reqs, reqs)
	add("notifications/s, 1 recipient: herald / bare relay", accept, relay, notif, notif)
	add("deliveries/s, fan-out: herald / bare relay", fanout, relay, notif, notif)
	add("deliveries/s, one alert to a big group: herald / bare relay", group, relay, notif, notif)
	if best := bestDelivery(rs); best != nil {
		add("best herald deliveries/s / raw franz-go records/s", best, kafka, notif, notif)
		add("best herald deliveries/s / raw SQLite rows/s", best, store, notif, reqs)
	}
	for i := range rs {
		r := &rs[i]
		if r.Name == ScenarioRates && r.Err == "" && r.OfferedPerS > 0 {
			out = append(out, Ratio{Name: fmt.Sprintf("end to end at %g/s: deliveries/s / offered deliveries/s",
				r.OfferedPerS), Value: r.NotificationsPS / (r.OfferedPerS * float64(max(r.Fanout, 1)))})
		}
		if r.Name == ScenarioPeer && r.Err == "" {
			add("accept req/s: herald / "+peerName(r), accept, r, reqs, reqs)
			add("notifications/s, 1 recipient: herald / "+peerName(r), accept, r, notif, notif)
			add("notifications/s: "+peerName(r)+" / bare relay", r, relay, notif, notif)
		}
	}
	return out
}

// meanOf is the named scenario's results averaged (rates only), for a
// baseline measured more than once; nil when there is none.
func meanOf(rs []Result, name string) *Result {
	var m Result
	n := 0
	for _, r := range rs {
		if r.Name == name && r.Err == "" {
			if n == 0 {
				m = r
			} else {
				m.RequestsPerS += r.RequestsPerS
				m.NotificationsPS += r.NotificationsPS
			}
			n++
		}
	}
	if n == 0 {
		return nil
	}
	m.RequestsPerS /= float64(n)
	m.NotificationsPS /= float64(n)
	return &m
}

// bestDelivery is Herald's result with the most notifications per second.
func bestDelivery(rs []Result) *Result {
	var best *Result
	for i := range rs {
		r := &rs[i]
		herald := r.Name == ScenarioAccept || r.Name == ScenarioFanout || r.Name == ScenarioRates || r.Name == ScenarioGroup
		if herald && r.Err == "" && (best == nil || r.NotificationsPS > best.NotificationsPS) {
			best = r
		}
	}
	return best
}

func peerName(r *Result) string {
	name, _, _ := strings.Cut(strings.TrimPrefix(r.Scenario, "peer: "), ",")
	return name
}

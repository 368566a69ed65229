package bench

import (
	"fmt"
	"io"
	"slices"
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
	reqs, notif := requestsPerS, notificationsPerS
	handler, relay, kafka, store := first(ScenarioHandler), meanOf(rs, ScenarioRelay), first(ScenarioKafka), meanOf(rs, ScenarioStore)
	// Accept measured in several rounds: the mean, as for the relay.
	accept, fanout, group := meanOf(rs, ScenarioAccept), first(ScenarioFanout), first(ScenarioGroup)
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
	}
	for _, p := range peerRounds(rs) {
		if v := median(p.ratios(reqs)); v > 0 {
			out = append(out, Ratio{Name: "accept req/s: herald / " + p.name, Value: v})
		}
		if v := median(p.ratios(notif)); v > 0 {
			out = append(out, Ratio{Name: "notifications/s, 1 recipient: herald / " + p.name, Value: v})
		}
		add("notifications/s: "+p.name+" / bare relay", meanOf(p.results(), ScenarioPeer), relay, notif, notif)
	}
	return out
}

// requestsPerS and notificationsPerS are the rates ratios compare.
func requestsPerS(r *Result) float64      { return r.RequestsPerS }
func notificationsPerS(r *Result) float64 { return r.NotificationsPS }

// peerRound is one round's peer result and Herald's accept result of the
// same round (nil if it failed).
type peerRound struct{ peer, accept *Result }

// peerResults are one peer's rounds, in order.
type peerResults struct {
	name   string
	rounds []peerRound
}

// peerRounds pairs each peer's results with Herald's accept results of the
// same round (Result.Round; 0 for both in a run of one round).
func peerRounds(rs []Result) []*peerResults {
	var out []*peerResults
	for i := range rs {
		p := &rs[i]
		if p.Name != ScenarioPeer || p.Err != "" {
			continue
		}
		name := peerName(p)
		j := slices.IndexFunc(out, func(pr *peerResults) bool { return pr.name == name })
		if j < 0 {
			out = append(out, &peerResults{name: name})
			j = len(out) - 1
		}
		var a *Result
		for k := range rs {
			if rs[k].Name == ScenarioAccept && rs[k].Err == "" && rs[k].Round == p.Round {
				a = &rs[k]
				break
			}
		}
		out[j].rounds = append(out[j].rounds, peerRound{peer: p, accept: a})
	}
	return out
}

// ratios returns Herald's accept result over the peer's, by f, for each
// round that has both.
func (p *peerResults) ratios(f func(*Result) float64) []float64 {
	var out []float64
	for _, r := range p.rounds {
		if r.accept != nil && f(r.accept) > 0 && f(r.peer) > 0 {
			out = append(out, f(r.accept)/f(r.peer))
		}
	}
	return out
}

// results returns the peer's results, one a round.
func (p *peerResults) results() []Result {
	out := make([]Result, len(p.rounds))
	for i, r := range p.rounds {
		out[i] = *r.peer
	}
	return out
}

// median is the middle of vs (the mean of the middle two for an even
// count); 0 for none.
func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(vs))
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

// roundsNotes says, for each peer measured in several rounds, Herald's ratio
// to it in each round and the rates behind it.
func roundsNotes(rs []Result) []string {
	var out []string
	for _, p := range peerRounds(rs) {
		if len(p.rounds) < 2 || len(p.ratios(notificationsPerS)) == 0 {
			continue // one round, or Herald not measured
		}
		var each []string
		for _, r := range p.rounds {
			if r.accept == nil || r.peer.NotificationsPS <= 0 {
				each = append(each, fmt.Sprintf("round %d: no ratio", r.peer.Round))
				continue
			}
			each = append(each, fmt.Sprintf("round %d: %.3f (%.0f against %.0f)", r.peer.Round,
				r.accept.NotificationsPS/r.peer.NotificationsPS, r.accept.NotificationsPS, r.peer.NotificationsPS))
		}
		out = append(out, "notifications/s, 1 recipient: herald / "+p.name+" by round, alternating: "+
			strings.Join(each, ", ")+"; the ratio above is their median")
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

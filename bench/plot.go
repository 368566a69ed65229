package bench

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Plot geometry, in SVG user units.
const (
	plotW, plotH                          = 780, 470
	padL, padR, padT, padB                = 80, 200, 56, 78
	plotAreaW, plotAreaH          float64 = plotW - padL - padR, plotH - padT - padB
	minPlotMs                             = 0.1
	seriesAccept, seriesDelivered         = "#1f5fbf", "#c0392b"
	seriesRelay                           = "#777777"
)

// series is one line of the plot.
type series struct {
	label, color string
	dashed       bool
	value        func(*Result) float64
}

// WritePlot writes an SVG of the rates scenario's latency against offered
// load: accept p50/p99 and accept → received p50/p99, both axes
// logarithmic, with the deliveries per second achieved under each step.
// It fails when the report has no rates results.
func WritePlot(w io.Writer, rep *Report) error {
	var pts, relayPts []*Result
	for i := range rep.Results {
		r := &rep.Results[i]
		if r.Err != "" || r.OfferedPerS <= 0 {
			continue
		}
		switch r.Name {
		case ScenarioRates:
			pts = append(pts, r)
		case ScenarioRelayRates:
			relayPts = append(relayPts, r)
		}
	}
	if len(pts) == 0 {
		return errors.New("bench: plot: no results of the rates scenario")
	}
	ss := []series{
		{"accept p99", seriesAccept, false, func(r *Result) float64 { return r.P99ms }},
		{"accept p50", seriesAccept, true, func(r *Result) float64 { return r.P50ms }},
		{"accept → received p99", seriesDelivered, false, func(r *Result) float64 { return r.E2EP99ms }},
		{"accept → received p50", seriesDelivered, true, func(r *Result) float64 { return r.E2EP50ms }},
	}
	// The bare relay at the same offered loads, fanning out the same way:
	// what accept → received costs when nothing is recorded.
	rs := []series{{"bare relay → received p99", seriesRelay, true, func(r *Result) float64 { return r.E2EP99ms }}}
	xlo, xhi := math.Inf(1), math.Inf(-1)
	ylo, yhi := math.Inf(1), math.Inf(-1)
	for _, set := range []struct {
		pts []*Result
		ss  []series
	}{{pts, ss}, {relayPts, rs}} {
		for _, p := range set.pts {
			xlo, xhi = math.Min(xlo, p.OfferedPerS), math.Max(xhi, p.OfferedPerS)
			for _, s := range set.ss {
				v := math.Max(s.value(p), minPlotMs)
				ylo, yhi = math.Min(ylo, v), math.Max(yhi, v)
			}
		}
	}
	ax := logAxis{lo: math.Log10(xlo / 1.3), hi: math.Log10(xhi * 1.3), size: plotAreaW}
	ay := logAxis{lo: math.Floor(math.Log10(ylo)), hi: math.Ceil(math.Log10(yhi)), size: plotAreaH}
	if ay.hi == ay.lo {
		ay.hi++
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" `+
		`font-family="sans-serif" font-size="12">`+"\n", plotW, plotH, plotW, plotH)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", plotW, plotH)
	fanout := max(pts[0].Fanout, 1)
	text(&b, padL, 24, "start", 15, fmt.Sprintf("herald bench: latency against offered load (fan-out %d)", fanout))
	text(&b, padL, 42, "start", 11, fmt.Sprintf("%s, %s; open loop, latency from when each alert was due",
		rep.At.Format("2006-01-02"), rep.Options.Server))
	grid(&b, ax, ay, pts)
	for _, s := range ss {
		line(&b, s, ax, ay, pts)
	}
	if len(relayPts) > 0 {
		line(&b, rs[0], ax, ay, relayPts)
		ss = append(ss, rs...)
	}
	legend(&b, ss)
	b.WriteString("</svg>\n")
	_, err := w.Write(b.Bytes())
	return err
}

// logAxis maps log10 values lo..hi onto 0..size.
type logAxis struct{ lo, hi, size float64 }

func (a logAxis) at(v float64) float64 { return (math.Log10(v) - a.lo) / (a.hi - a.lo) * a.size }

func px(ax logAxis, v float64) float64 { return padL + ax.at(v) }
func py(ay logAxis, v float64) float64 { return padT + plotAreaH - ay.at(math.Max(v, minPlotMs)) }

func grid(b *bytes.Buffer, ax, ay logAxis, pts []*Result) {
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="%g" height="%g" fill="none" stroke="#888"/>`+"\n", padL, padT,
		plotAreaW, plotAreaH)
	for d := ay.lo; d <= ay.hi; d++ {
		v := math.Pow(10, d)
		y := py(ay, v)
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%g" y2="%.1f" stroke="#ddd"/>`+"\n", padL, y, padL+plotAreaW, y)
		text(b, padL-6, y+4, "end", 11, msLabel(v))
	}
	for _, p := range pts {
		x := px(ax, p.OfferedPerS)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%g" stroke="#eee"/>`+"\n", x, padT, x, padT+plotAreaH)
		text(b, x, padT+plotAreaH+16, "middle", 11, strconv.FormatFloat(p.OfferedPerS, 'f', -1, 64))
		text(b, x, padT+plotAreaH+30, "middle", 10, fmt.Sprintf("%.0f/s", p.NotificationsPS))
	}
	text(b, padL+plotAreaW/2, plotH-18, "middle", 12, "offered alerts per second (below: deliveries per second received)")
	fmt.Fprintf(b, `<text transform="translate(18 %g) rotate(-90)" text-anchor="middle" font-size="12">latency (log scale)</text>`+"\n",
		padT+plotAreaH/2)
}

func line(b *bytes.Buffer, s series, ax, ay logAxis, pts []*Result) {
	var d strings.Builder
	for i, p := range pts {
		cmd := "L"
		if i == 0 {
			cmd = "M"
		}
		fmt.Fprintf(&d, "%s%.1f %.1f ", cmd, px(ax, p.OfferedPerS), py(ay, s.value(p)))
	}
	dash := ""
	if s.dashed {
		dash = ` stroke-dasharray="5 4"`
	}
	fmt.Fprintf(b, `<path d="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", strings.TrimSpace(d.String()),
		s.color, dash)
	for _, p := range pts {
		fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"><title>%s at %g/s: %s</title></circle>`+"\n",
			px(ax, p.OfferedPerS), py(ay, s.value(p)), s.color, s.label, p.OfferedPerS, msLabel(s.value(p)))
	}
}

func legend(b *bytes.Buffer, ss []series) {
	x := float64(plotW - padR + 16)
	for i, s := range ss {
		y := float64(padT + 10 + 20*i)
		dash := ""
		if s.dashed {
			dash = ` stroke-dasharray="5 4"`
		}
		fmt.Fprintf(b, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="%s" stroke-width="2"%s/>`+"\n", x, y, x+24, y,
			s.color, dash)
		text(b, x+30, y+4, "start", 11, s.label)
	}
}

func text(b *bytes.Buffer, x, y float64, anchor string, size int, s string) {
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="%s" font-size="%d">`, x, y, anchor, size)
	_ = xml.EscapeText(b, []byte(s))
	b.WriteString("</text>\n")
}

// msLabel prints a latency in ms or s.
func msLabel(v float64) string {
	if v >= 1000 {
		return strconv.FormatFloat(v/1000, 'g', 3, 64) + " s"
	}
	return strconv.FormatFloat(v, 'g', 3, 64) + " ms"
}

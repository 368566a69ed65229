package api

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
	dto "github.com/prometheus/client_model/go"

	"github.com/heraldproject/herald/bus"
)

// LagSource reports consumer lag.
type LagSource interface {
	Samples(ctx context.Context) ([]bus.LagSample, error)
}

// ChannelStats is one channel's health.
type ChannelStats struct {
	Outcomes     map[string]float64 `json:"outcomes" doc:"deliveries by outcome since this process started"`
	BreakersOpen float64            `json:"breakersOpen" doc:"endpoints with an open circuit breaker"`
}

// Stats is a summary for dashboards and the console.
type Stats struct {
	UptimeSeconds      float64                 `json:"uptimeSeconds"`
	AlertsIngested     float64                 `json:"alertsIngested" doc:"since this process started"`
	AlertsPerSecond    float64                 `json:"alertsPerSecond" doc:"average since this process started"`
	DeliveriesSent     float64                 `json:"deliveriesSent"`
	DeliveriesPerSec   float64                 `json:"deliveriesPerSecond"`
	Channels           map[string]ChannelStats `json:"channels"`
	Lag                map[string]int64        `json:"lag" doc:"records behind, per consumer group"`
	DeadLettersPending int                     `json:"deadLettersPending" doc:"dead letters never replayed"`
}

func (s *Server) registerStats(a huma.API) {
	started := time.Now()
	huma.Register(a, huma.Operation{
		OperationID: "stats", Method: http.MethodGet, Path: "/v1/stats", Tags: []string{"observability"},
		Summary: "Rates, lag, dead letters and per-channel health",
	}, func(ctx context.Context, _ *struct{}) (*struct{ Body Stats }, error) {
		up := time.Since(started).Seconds()
		st := Stats{UptimeSeconds: up, Channels: map[string]ChannelStats{}, Lag: map[string]int64{}}
		for _, ch := range s.Channels {
			st.channel(string(ch)) // listed, with no outcomes, before its first
		}
		if s.Metrics != nil {
			fams, err := s.Metrics.Registry.Gather()
			if err != nil {
				return nil, s.problem(ctx, err)
			}
			for _, f := range fams {
				for _, m := range f.GetMetric() {
					l := labels(m)
					switch f.GetName() {
					case "herald_records_ingested_total":
						if l["kind"] == "alert" {
							st.AlertsIngested += m.GetCounter().GetValue()
						}
					case "herald_deliveries_total":
						c := st.channel(l["channel"])
						c.Outcomes[l["outcome"]] += m.GetCounter().GetValue()
						if l["outcome"] == "sent" {
							st.DeliveriesSent += m.GetCounter().GetValue()
						}
					case "herald_circuit_breakers_open":
						c := st.channel(l["channel"])
						c.BreakersOpen = m.GetGauge().GetValue()
						st.Channels[l["channel"]] = c
					}
				}
			}
			st.AlertsPerSecond, st.DeliveriesPerSec = st.AlertsIngested/up, st.DeliveriesSent/up
		}
		if s.Lag != nil {
			samples, err := s.Lag.Samples(ctx)
			if err == nil {
				for _, x := range samples {
					st.Lag[x.Group] += x.Lag
				}
			}
		}
		n, err := s.Store.PendingDeadLetters(ctx)
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		st.DeadLettersPending = n
		return &struct{ Body Stats }{Body: st}, nil
	})
}

func (st *Stats) channel(name string) ChannelStats {
	c, ok := st.Channels[name]
	if !ok {
		c = ChannelStats{Outcomes: map[string]float64{}}
		st.Channels[name] = c
	}
	return c
}

func labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, p := range m.GetLabel() {
		out[p.GetName()] = p.GetValue()
	}
	return out
}

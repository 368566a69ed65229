package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/heraldproject/herald/bench"
)

func benchCmd(environ []string) *cobra.Command {
	c := newAPIClient()
	var o bench.Options
	var jsonPath, plotPath, rates string
	var peers []string
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure a running Herald on loopback beside baselines (and peers) measured in the same run",
		Long: `Drives a running Herald on loopback over HTTP and measures it next to baselines
measured in the same run, so results read as ratios on a noisy machine. It prints
progress while it runs, then a table (and the ratios); --json writes the same as
JSON, --plot an SVG of latency against offered load.

Scenarios (--scenarios, comma-separated; default: all but peer, plus peer when
--peer is given), in the order they run:
  handler  baseline: a bare net/http handler that decodes the alert (HTTP ceiling)
  relay    baseline: a bare relay that decodes the alert and POSTs it to the
           benchmark's webhook receiver (ceiling for alerts in -> notifications out);
           measured again at the end when accept, fanout, group or peer ran, and
           ratios to it use the mean of the two
  relay-rates  baseline: the bare relay POSTing each alert --fanout times, open
           loop at each of --rates (the plot's baseline line)
  kafka    baseline: raw franz-go produce (acks=all) -> consume (consumer group)
           against Herald's embedded broker in a temp dir, connected in memory as
           Herald's own clients are; --kafka-records
  store    baseline: raw batched inserts of delivery rows into SQLite (Herald's
           driver and pragmas) in a temp dir; --store-rows, --store-batch;
           measured again at the end when logs ran, and the logs ratio uses the
           mean of the two
  peer     each --peer (Prometheus Alertmanager), driven with the same alerts at
           --concurrency and measured the same way (bench/peers/alertmanager.sh)
  accept   Herald: POST /v1/alerts at --concurrency to one user whose webhook is
           the receiver: req/s, p50/p90/p99/max, notifications/s, accept->received
  fanout   Herald: the same to a group of --fanout users
  rates    Herald, end to end: alerts to a group of --fanout users at each of
           --rates alerts/s (open loop), one step after another
  group    Herald, deliveries: one alert to a group of --group-size users, created
           first over the API from --concurrency clients
  logs     Herald: --log-records log records as NDJSON, --log-batch per POST
           /v1/logs from --concurrency clients, then a marker per service, polled
           with GET /v1/logs: records/s until the last is searchable, compared
           with the store baseline

Every scenario (every rate step) stops at --requests or --duration, whichever
comes first, then waits at most --drain for its notifications. Herald's (and a
peer's) peak RSS and CPU are sampled once a second from its /metrics, or from
/proc/<pid> with --pid. Targets must be on loopback. Start Herald with
HERALD_AUTH_RATE=0, or the per-token rate limit (1000/s) answers 429. Users and
groups and log records the benchmark creates are left in Herald: use a throwaway
--data-dir.`,
		Example: `  HERALD_AUTH_RATE=0 herald serve --data-dir /tmp/hb &
  herald bench --token "$(cat /tmp/hb/admin.token)" --json bench.json --plot latency.svg
  herald bench --scenarios accept,rates --rates 100,200 --fanout 1 --duration 10s
  bench/peers/alertmanager.sh --token "$(cat /tmp/hb/admin.token)"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if o.Rates, err = parseRates(rates); err != nil {
				return err
			}
			for _, p := range peers {
				peer, err := bench.ParsePeer(p)
				if err != nil {
					return err
				}
				o.Peers = append(o.Peers, peer)
			}
			if o.Fanout == 0 { // --fanout 0: no fanout scenario; rates at fan-out 1
				if len(o.Scenarios) == 0 {
					o.Scenarios = bench.DefaultScenarios()
					if len(o.Peers) > 0 {
						o.Scenarios = append(o.Scenarios, bench.ScenarioPeer)
					}
				}
				o.Scenarios = slices.DeleteFunc(o.Scenarios, func(s string) bool { return s == bench.ScenarioFanout })
				o.Fanout = 1
			}
			o.Server, o.Token, o.Progress = c.base, c.token, cmd.ErrOrStderr()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			rep, runErr := bench.Run(ctx, o)
			bench.Table(cmd.OutOrStdout(), rep)
			return errors.Join(runErr, writeReport(rep, jsonPath, plotPath))
		},
	}
	clientFlags(cmd, c, environ)
	f := cmd.Flags()
	f.StringSliceVar(&o.Scenarios, "scenarios", nil, "scenarios to run, comma-separated (default: all but peer; peer too with --peer)")
	f.IntVar(&o.Concurrency, "concurrency", 32, "concurrent clients of closed-loop scenarios and of user creation")
	f.IntVar(&o.Requests, "requests", 20000, "at most this many requests per scenario and rate step")
	f.DurationVar(&o.Duration, "duration", 20*time.Second, "at most this long per scenario and rate step")
	f.IntVar(&o.Fanout, "fanout", 10, "group size of the fanout and rates scenarios (0: no fanout scenario, rates at fan-out 1)")
	f.StringVar(&rates, "rates", "250,500,1000,2000", "offered loads of the rates scenario, alerts/s, comma-separated")
	f.IntVar(&o.GroupSize, "group-size", 10000, "group size of the group scenario")
	f.DurationVar(&o.Drain, "drain", 2*time.Minute, "at most this long to wait for a scenario's notifications")
	f.DurationVar(&o.SetupTimeout, "setup-timeout", 10*time.Minute, "at most this long to create a scenario's users")
	f.IntVar(&o.KafkaRecords, "kafka-records", 200000, "records of the kafka baseline")
	f.IntVar(&o.StoreRows, "store-rows", 200000, "rows of the store baseline")
	f.IntVar(&o.StoreBatch, "store-batch", 500, "rows per transaction of the store baseline")
	f.IntVar(&o.LogRecords, "log-records", 200000, "log records the logs scenario posts")
	f.IntVar(&o.LogBatch, "log-batch", 1000, "log records per request of the logs scenario")
	f.StringArrayVar(&peers, "peer", nil, "a peer to measure, kind=url (repeatable; kind: alertmanager)")
	f.IntVar(&o.Rounds, "rounds", 1, "measure the peer and accept scenarios this many times, alternating; ratios to a peer are the median of the rounds'")
	f.StringVar(&o.BetweenRounds, "between-rounds", "", "a shell command run before each round after the first (e.g. one that restarts the peer)")
	f.StringVar(&o.ReceiverAddr, "receiver-addr", "127.0.0.1:0", "where the webhook receiver listens (fix it for a peer configured beforehand)")
	f.IntVar(&o.PID, "pid", 0, "Herald's process id, to read memory and CPU from /proc when /metrics has none")
	f.StringVar(&jsonPath, "json", "", "also write the results as JSON to this file")
	f.StringVar(&plotPath, "plot", "", "write an SVG of latency against offered load (rates scenario) to this file")
	return cmd
}

// parseRates reads "250,500,1000".
func parseRates(s string) ([]float64, error) {
	var out []float64
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("--rates: %q is not a positive number", f)
		}
		out = append(out, v)
	}
	return out, nil
}

// writeReport writes the JSON and the plot when asked for.
func writeReport(rep *bench.Report, jsonPath, plotPath string) error {
	if jsonPath != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return fmt.Errorf("encode results: %w", err)
		}
		if err := os.WriteFile(jsonPath, b, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", jsonPath, err)
		}
	}
	if plotPath != "" {
		f, err := os.Create(plotPath)
		if err != nil {
			return fmt.Errorf("write %s: %w", plotPath, err)
		}
		if err := errors.Join(bench.WritePlot(f, rep), f.Close()); err != nil {
			return fmt.Errorf("write %s: %w", plotPath, err)
		}
	}
	return nil
}

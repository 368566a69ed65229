package main

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/heraldproject/herald/bench"
)

func benchCmd(environ []string) *cobra.Command {
	c := newAPIClient()
	var o bench.Options
	var jsonPath string
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure a running Herald over HTTP, beside a bare HTTP handler and a bare relay measured in the same run",
		Long: `Drives a running Herald on loopback and measures accept throughput and latency,
alerts in -> notifications out (to a webhook receiver run by the benchmark), and
optionally a fan-out scenario; the same load generator first measures a bare
net/http JSON handler and a bare relay (decode, POST to the same receiver), so
results can be read as ratios. Every scenario stops at --requests or --duration.`,
		Example: `  herald bench --token "$(cat herald-data/admin.token)" --concurrency 32 --requests 20000 --fanout 10 --json bench.json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Server, o.Token, o.Progress = c.base, c.token, cmd.ErrOrStderr()
			rs, err := bench.Run(cmd.Context(), o)
			bench.Table(cmd.OutOrStdout(), rs)
			if err != nil {
				return err
			}
			if jsonPath != "" {
				b, _ := json.MarshalIndent(map[string]any{"at": time.Now().UTC(), "options": map[string]any{
					"concurrency": o.Concurrency, "requests": o.Requests, "duration": o.Duration.String(), "fanout": o.Fanout},
					"results": rs}, "", "  ")
				if err := os.WriteFile(jsonPath, b, 0o644); err != nil {
					return fmt.Errorf("write %s: %w", jsonPath, err)
				}
			}
			return nil
		},
	}
	clientFlags(cmd, c, environ)
	cmd.Flags().IntVar(&o.Concurrency, "concurrency", 32, "concurrent clients")
	cmd.Flags().IntVar(&o.Requests, "requests", 20000, "at most this many requests per scenario")
	cmd.Flags().DurationVar(&o.Duration, "duration", 20*time.Second, "at most this long per scenario")
	cmd.Flags().IntVar(&o.Fanout, "fanout", 10, "group size of the fan-out scenario (0 skips it)")
	cmd.Flags().StringVar(&jsonPath, "json", "", "also write the results as JSON to this file")
	return cmd
}

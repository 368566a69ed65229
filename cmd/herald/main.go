// Command herald runs the Herald alerting and notification service.
//
//	herald serve            run every role in one process (embedded broker + SQLite)
//	herald broker           run the embedded Kafka broker alone, for several processes
//	herald dlq list|show|replay  browse and replay dead letters of a running Herald
//	herald token create|list|revoke  manage API tokens of a running Herald
//	herald secrets keygen|rotate  make an encryption key; re-encrypt stored secrets under it
//	herald bench            measure a running Herald beside bare baselines
//	herald config keys      list every config key with its environment variable
//	herald version          print the version
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/heraldproject/herald/bus"
	"github.com/heraldproject/herald/config"
	"github.com/heraldproject/herald/gctune"
	"github.com/heraldproject/herald/server"
)

func main() { os.Exit(run(os.Args[1:], os.Environ(), os.Stdout, os.Stderr)) }

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// run is main without the process: arguments, environment and output in, exit
// code out.
func run(args, environ []string, stdout, stderr io.Writer) int {
	root := &cobra.Command{
		Use:   "herald",
		Short: "Herald: alerts in, the right people told over Slack, email, SMS and webhooks",
		Long: `Herald takes in alerts, decides who must be told, and tells them over Slack,
email, SMS and webhooks, with a durable record of every delivery attempt.

Start it with "herald serve"; it needs no other service. Every setting is a
flag, a HERALD_* environment variable, or a key in the YAML file given with
--config ("herald config keys" lists them all).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(serveCmd(environ, stderr), brokerCmd(environ, stderr), configCmd(stdout), dlqCmd(environ), tokenCmd(environ), secretsCmd(environ, stderr), benchCmd(environ), &cobra.Command{
		Use: "version", Short: "Print the version",
		Run: func(cmd *cobra.Command, _ []string) { fmt.Fprintln(cmd.OutOrStdout(), "herald", version()) },
	})
	if err := root.Execute(); err != nil {
		fmt.Fprintln(stderr, "herald:", err)
		return 1
	}
	return 0
}

func serveCmd(environ []string, stderr io.Writer) *cobra.Command {
	var configPath string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run Herald: API, fan-out and every channel's sender, with an embedded broker and SQLite",
		Example: `  herald serve
  herald serve --data-dir /var/lib/herald --http-addr 0.0.0.0:8080
  HERALD_RETRY_MAX_ATTEMPTS=5 herald serve --config herald.yaml`,
		Args: cobra.NoArgs,
	}
	flags := map[string]string{ // flag name → config key
		"data-dir":      "dataDir",
		"http-addr":     "http.addr",
		"kafka-addr":    "kafka.addr",
		"log-level":     "log.level",
		"log-format":    "log.format",
		"roles":         "roles",
		"kafka-brokers": "kafka.brokers",
	}
	cmd.Flags().StringVar(&configPath, "config", "", "YAML config file (env HERALD_CONFIG)")
	cmd.Flags().String("data-dir", "./herald-data", "where the broker log and the database live (env HERALD_DATA_DIR)")
	cmd.Flags().String("http-addr", "127.0.0.1:8080", "address the HTTP API listens on (env HERALD_HTTP_ADDR)")
	cmd.Flags().String("kafka-addr", "127.0.0.1:9092", "address the embedded Kafka broker listens on (env HERALD_KAFKA_ADDR)")
	cmd.Flags().String("log-level", "info", "debug, info, warn or error (env HERALD_LOG_LEVEL)")
	cmd.Flags().String("log-format", "text", "text or json (env HERALD_LOG_FORMAT)")
	cmd.Flags().String("kafka-brokers", "", "external Kafka seed brokers, comma-separated; empty runs the embedded broker (env HERALD_KAFKA_BROKERS)")
	cmd.Flags().String("roles", "api,fanout,deliver,retry,dlq,logs", "the parts this process runs, comma-separated (env HERALD_ROLES)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if configPath == "" {
			configPath = lookup(environ, "HERALD_CONFIG")
		}
		overrides := map[string]any{}
		for name, key := range flags {
			if f := cmd.Flags().Lookup(name); f.Changed {
				overrides[key] = f.Value.String()
				if name == "roles" || name == "kafka-brokers" {
					overrides[key] = strings.Split(f.Value.String(), ",")
				}
			}
		}
		cfg, err := config.Load(configPath, environ, overrides)
		if err != nil {
			return err
		}
		log := newLogger(stderr, cfg.Log)
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		defer tuneGC(ctx, int64(cfg.GC.MemoryMB)<<20, environ, log)()
		return server.Run(ctx, cfg, log, version())
	}
	return cmd
}

// tuneGC runs gctune for memory bytes of budget until ctx ends or the
// returned stop is called (stop waits for it), unless the config or the
// environment leaves the collector to Go.
func tuneGC(ctx context.Context, memory int64, environ []string, log *slog.Logger) (stop func()) {
	if why := gctune.Disabled(memory, environ); why != "" {
		log.Debug("garbage collector left to Go", "why", why)
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := gctune.Run(ctx, gctune.Options{Memory: memory, Logger: log}); err != nil {
			log.Warn("garbage collector left to Go", "err", err)
		}
	}()
	return func() { cancel(); <-done }
}

func brokerCmd(environ []string, stderr io.Writer) *cobra.Command {
	var addr, dir string
	var partitions int
	cmd := &cobra.Command{
		Use:   "broker",
		Short: "Run the embedded Kafka broker alone, so several Herald processes (and kcat) can share it",
		Long: `Runs the embedded Kafka-protocol broker (franz-go kfake) on its own, persisting
to --data-dir, with every Herald topic created (retry tiers from retry.delays), keeping records
for kafka.retention (HERALD_KAFKA_RETENTION, default 168h).
Point Herald processes at it with --kafka-brokers / HERALD_KAFKA_BROKERS. It is
meant for a developer machine; production uses a real Kafka cluster.`,
		Example: `  herald broker --addr 127.0.0.1:9092 --data-dir ./herald-broker
  HERALD_KAFKA_BROKERS=127.0.0.1:9092 herald serve --roles api`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(lookup(environ, "HERALD_CONFIG"), environ, nil)
			if err != nil {
				return err
			}
			log := newLogger(stderr, cfg.Log)
			b, err := bus.StartBroker(bus.BrokerOptions{Addr: addr, DataDir: dir, Partitions: int32(partitions),
				Topics: bus.Topics(cfg.Retry.Delays), Logger: log, Retention: cfg.Kafka.Retention})
			if err != nil {
				return err
			}
			log.Info("broker started", "kafka", b.Addrs(), "data_dir", dir, "partitions", partitions,
				"retention", cfg.Kafka.Retention)
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			<-ctx.Done()
			b.Close()
			log.Info("broker stopped")
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:9092", "address to listen on")
	cmd.Flags().StringVar(&dir, "data-dir", "./herald-broker", "where topics, records and group offsets persist")
	cmd.Flags().IntVar(&partitions, "partitions", 4, "partitions per topic")
	return cmd
}

func configCmd(stdout io.Writer) *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Inspect configuration"}
	cmd.AddCommand(&cobra.Command{
		Use: "keys", Short: "List every config key with its environment variable",
		Run: func(*cobra.Command, []string) {
			for _, k := range config.Keys() {
				fmt.Fprintf(stdout, "%-22s %s\n", k, config.EnvName(k))
			}
		},
	})
	return cmd
}

func newLogger(w io.Writer, c config.Log) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.Level)) // validated by config
	opts := &slog.HandlerOptions{Level: lvl}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func lookup(environ []string, name string) string {
	for _, kv := range environ {
		if len(kv) > len(name) && kv[:len(name)] == name && kv[len(name)] == '=' {
			return kv[len(name)+1:]
		}
	}
	return ""
}

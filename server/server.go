// Package server runs every Herald role in one process: the embedded broker,
// the store, the HTTP API, the fan-out stage and one sender per channel. It is
// the wiring; each part lives in its own package.
package server

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"path/filepath"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kprom"
	"go.opentelemetry.io/otel/trace"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/api"
	"github.com/heraldproject/herald/auth"
	"github.com/heraldproject/herald/bus"
	"github.com/heraldproject/herald/cache"
	"github.com/heraldproject/herald/config"
	"github.com/heraldproject/herald/deadletter"
	"github.com/heraldproject/herald/deliver"
	"github.com/heraldproject/herald/fanout"
	"github.com/heraldproject/herald/handoff"
	"github.com/heraldproject/herald/logs"
	"github.com/heraldproject/herald/metrics"
	"github.com/heraldproject/herald/notify"
	"github.com/heraldproject/herald/retention"
	"github.com/heraldproject/herald/route"
	"github.com/heraldproject/herald/rules"
	"github.com/heraldproject/herald/secrets"
	"github.com/heraldproject/herald/store"
	"github.com/heraldproject/herald/tracing"
	"github.com/heraldproject/herald/watchdog"
)

// Server is a running Herald. Create it with Start; stop it with Close.
type Server struct {
	cfg    *config.Config
	log    *slog.Logger
	broker *bus.Broker
	store  *store.Store
	// prod is the API's producer; sprod the stages'. Apart, an accepted
	// alert's produce does not queue behind a fan-out batch's records in
	// one client's produce requests (accept p99 at 1,000 alerts/s with
	// fan-out 10: 6.9-8.5 ms against 7.4-10.7 ms; docs/BENCHMARKS.md).
	prod    *bus.Producer
	sprod   *bus.Producer
	api     *api.Server
	http    *http.Server
	httpLn  net.Listener
	pprof   *http.Server
	stop    context.CancelFunc // stops consumers polling
	work    context.Context    // outlives stop; bounds the last batches
	endWork context.CancelFunc
	wg      sync.WaitGroup
	cons    []*bus.Consumer
	delays  []*bus.Delay
	handoff *handoff.Handoff // nil: delivery records go through Kafka
	brokers []string
	cache   cache.Cache
	metrics *metrics.Metrics
	lag     *bus.Lag
	tp      trace.TracerProvider
	// tpShutdown flushes a provider Start created; nil for one given.
	tpShutdown func(context.Context) error
	errs       chan error
}

// Option changes how Start builds a Server.
type Option func(*Server)

// WithTracerProvider makes the server record spans into tp instead of the
// one tracing.endpoint configures (tests use an in-memory exporter).
func WithTracerProvider(tp trace.TracerProvider) Option { return func(s *Server) { s.tp = tp } }

// Start brings up the parts this process runs (cfg.Roles) and returns once
// the HTTP server is listening and the consumers have been started. With no
// kafka.brokers it starts the embedded broker; otherwise it checks the
// cluster and creates missing topics. On error, whatever was started is
// stopped.
func Start(ctx context.Context, cfg *config.Config, log *slog.Logger, version string, opts ...Option) (_ *Server, err error) {
	s := &Server{cfg: cfg, log: log, errs: make(chan error, 16)}
	for _, o := range opts {
		o(s)
	}
	defer func() {
		if err != nil {
			_ = s.Close(context.Background())
		}
	}()
	topics := bus.Topics(cfg.Retry.Delays)
	s.metrics = metrics.New(version)
	if s.tp == nil {
		s.tp, s.tpShutdown, err = tracing.Setup(ctx, cfg.Tracing.Endpoint, cfg.Tracing.SampleRatio, version, log)
		if err != nil {
			return nil, err
		}
	}
	tracer := tracing.Tracer(s.tp)
	kopts := bus.ClientOptions{
		Brokers: cfg.Kafka.Brokers, Logger: log, SessionTimeout: cfg.Kafka.SessionTimeout,
		RebalanceTimeout: cfg.Kafka.RebalanceTimeout,
		TLS: bus.TLS{Enabled: cfg.Kafka.TLS.Enabled, CAFile: cfg.Kafka.TLS.CAFile, CertFile: cfg.Kafka.TLS.CertFile,
			KeyFile: cfg.Kafka.TLS.KeyFile, InsecureSkipVerify: cfg.Kafka.TLS.InsecureSkipVerify},
		SASL: bus.SASL{Mechanism: cfg.Kafka.SASL.Mechanism, Username: cfg.Kafka.SASL.Username, Password: cfg.Kafka.SASL.Password},
	}
	if len(kopts.Brokers) == 0 {
		s.broker, err = bus.StartBroker(bus.BrokerOptions{Addr: cfg.Kafka.Addr, DataDir: filepath.Join(cfg.DataDir, "kafka"),
			Partitions: int32(cfg.Kafka.Partitions), Topics: topics, Logger: log, Retention: cfg.Kafka.Retention})
		if err != nil {
			return nil, err
		}
		kopts.Brokers = s.broker.Addrs()
		kopts.Dial = s.broker.Dial
	}
	s.brokers = kopts.Brokers
	ectx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = bus.EnsureTopics(ectx, kopts, topics, int32(cfg.Kafka.Partitions), int16(cfg.Kafka.ReplicationFactor))
	cancel()
	if err != nil {
		return nil, err
	}
	storeDSN := cfg.StoreDSN()
	key, _ := cfg.Secrets.KeyBytes()          // validated with the config
	prev, _ := cfg.Secrets.PreviousKeyBytes() // validated with the config
	if key == nil {
		log.Warn("secrets.key is not set: users' Slack tokens and webhook secrets are stored unencrypted")
	}
	s.store, err = store.Open(ctx, store.Options{Driver: cfg.Store.Driver, DSN: storeDSN, Logger: log,
		Observe: s.metrics.StoreOp, SecretsKey: key, PreviousSecretsKeys: prev, ResolveCacheTTL: cfg.Store.ResolveCacheTTL,
		CommitLinger: cfg.Store.CommitLinger})
	if err != nil {
		return nil, err
	}
	var authn *auth.Authenticator
	if cfg.Auth.Disabled {
		log.Warn("AUTHENTICATION IS OFF: anyone who can reach " + cfg.HTTP.Addr + " can page everyone; allowed only on loopback")
	} else {
		admin, err := auth.Bootstrap(ctx, s.store, cfg.DataDir, cfg.Auth.AdminToken)
		if err != nil {
			return nil, err
		}
		if admin != "" {
			log.Warn("created the first admin token; it is shown only this once and saved (mode 0600)",
				"token", admin, "file", filepath.Join(cfg.DataDir, "admin.token"))
		}
		authn = auth.New(s.store, auth.Options{Rate: cfg.Auth.Rate, Burst: cfg.Auth.Burst, Logger: log})
	}
	var c cache.Cache = cache.NewMemory(100_000, cfg.Cache.UserTTL)
	if cfg.Redis.Addr != "" {
		seal, err := secrets.New(key, prev...)
		if err != nil {
			return nil, err
		}
		if seal == nil {
			log.Warn("secrets.key is not set: contacts cached in Redis are stored unencrypted")
		}
		rc := cache.NewRedis(cfg.Redis.Addr, cfg.Redis.Prefix, cfg.Cache.UserTTL, cache.WithSealer(seal),
			cache.WithAuth(cfg.Redis.Username, cfg.Redis.Password))
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err = rc.Ping(pctx)
		cancel()
		switch {
		case cache.AuthFailed(err):
			rc.Close()
			return nil, fmt.Errorf("redis at %s refused Herald's credentials (redis.password, redis.username, or those in "+
				"a redis:// redis.addr): %w", cfg.Redis.Redacted(), err)
		case err != nil:
			log.Warn("redis does not answer; the database serves what the cache would until it does",
				"redis", cfg.Redis.Redacted(), "err", err)
		}
		c = rc
	}
	guard := cache.NewGuard(c, log.With("component", "cache"), 5*time.Second)
	guard.Observe = s.metrics.CacheOp
	s.cache = guard
	s.lag, err = bus.NewLag(kopts)
	if err != nil {
		return nil, err
	}
	s.metrics.Registry.MustRegister(s.lag)
	popts := s.withClient(kopts, "herald-producer")
	s.prod, err = bus.NewProducer(popts)
	if err != nil {
		return nil, err
	}
	if err := s.prod.Ping(ctx); err != nil {
		return nil, fmt.Errorf("kafka brokers %v do not answer: %w", s.brokers, err)
	}
	s.sprod, err = bus.NewProducer(s.withClient(kopts, "herald-stage-producer"))
	if err != nil {
		return nil, err
	}

	notifiers, enabled, err := notifiers(cfg)
	if err != nil {
		return nil, err
	}
	routes, err := cfg.Routes.Map()
	if err != nil {
		return nil, err
	}

	var stopCtx context.Context
	stopCtx, s.stop = context.WithCancel(context.WithoutCancel(ctx))
	s.work, s.endWork = context.WithCancel(context.WithoutCancel(ctx))

	// With both stages here, the sending stage is told which deliveries the
	// fan-out stage has just created, and does not read their state.
	var fresh *deliver.Fresh
	if cfg.Has("fanout") && cfg.Has("deliver") {
		fresh = deliver.NewFresh(freshDeliveries)
	}
	// With both stages here, the fan-out stage hands delivery records to
	// the senders in memory (handoff.Handoff), unless fanout.handoff is
	// off; they go through Kafka when a channel's queue is full.
	if cfg.Has("fanout") && cfg.Has("deliver") && cfg.Fanout.Handoff {
		s.handoff = handoff.New(handoff.Options{Kafka: s.sprod, Committed: s.lag.Committed, EndOffsets: s.lag.EndOffsets,
			Logger: log.With("stage", "handoff")})
	}
	if cfg.Has("deliver") {
		// Sent marks only where a fleet shares them (Redis): in this
		// process alone they would tell the sending stage nothing the
		// store does not (deliver.Sender.SentMarks), at 1–1.5% of the CPU.
		var sentMarks deliver.SentMarks
		if cfg.Redis.Addr != "" {
			sentMarks = s.cache
		}
		for _, ch := range herald.Channels {
			l := cfg.Limits.For(ch)
			snd := &deliver.Sender{
				Channel: ch, Notifier: notifiers[ch], Store: s.store, Producer: s.sprod, Cache: s.cache,
				SentMarks: sentMarks, SentTTL: cfg.Cache.SentTTL, Metrics: s.metrics, Tracer: tracer,
				Retry: deliver.Retry{MaxAttempts: cfg.Retry.MaxAttempts, Delays: cfg.Retry.Delays},
				Limits: deliver.Limits{Rate: l.Rate, PerEndpoint: l.PerEndpoint, Burst: l.Burst,
					BreakerFailures: cfg.Breaker.Failures, BreakerOpen: cfg.Breaker.OpenTimeout},
				Concurrency: cmp.Or(l.Concurrency, cfg.Deliver.Concurrency), RecipientConcurrency: cfg.Deliver.RecipientConcurrency, Timeout: cfg.Deliver.Timeout,
				Logger: log.With("stage", "deliver"), Now: time.Now, Fresh: fresh,
			}
			// Another process may have handled what this one is given
			// after a rebalance: what fan-out told it no longer holds.
			onRebalance := func(o *bus.ConsumerOptions) { o.OnRebalance = fresh.Clear } // nil-safe
			group := "herald-deliver-" + string(ch)
			if err := s.consume(stopCtx, kopts, group, []string{bus.DeliveryTopic(ch)}, snd.Handle, onRebalance); err != nil {
				return nil, err
			}
			// A channel limited per endpoint (Slack's 1/s) keeps its
			// topic when other processes may send too (an external
			// Kafka): keyed by recipient, an endpoint's deliveries are
			// sent by one process, which its limiter then bounds; handed
			// on in memory, every fan-out worker would send to it.
			if s.handoff != nil && (s.broker != nil || l.PerEndpoint == 0) {
				s.handoff.Add(string(ch), bus.DeliveryTopic(ch), group, snd.Handle, s.onBatch(group))
			}
		}
		if s.handoff != nil {
			s.metrics.Registry.MustRegister(s.handoff)
			s.handoff.Start(s.work)
		}
	}
	if cfg.Has("fanout") {
		var prod fanout.Producer = s.sprod
		if s.handoff != nil {
			prod = s.handoff
		}
		fo := &fanout.Fanout{Store: s.store, Producer: prod, Router: &route.Router{Routes: routes, Enabled: enabled},
			Logger: log.With("stage", "fanout"), Metrics: s.metrics, Tracer: tracer, Cache: s.cache}
		if fresh != nil { // not a nil *deliver.Fresh in the interface
			fo.Fresh = fresh
		}
		if err := s.consume(stopCtx, kopts, "herald-fanout", []string{bus.TopicAlerts}, fo.Handle,
			func(o *bus.ConsumerOptions) { o.Linger = cfg.Fanout.Linger }); err != nil {
			return nil, err
		}
		if cfg.Alerts.Retention > 0 {
			pr := &retention.Pruner{What: "alerts", Retention: cfg.Alerts.Retention, Logger: log.With("stage", "fanout"),
				Prune: func(ctx context.Context, cutoff time.Time) (int, error) { return s.store.PruneAlerts(ctx, cutoff, 0) }}
			s.wg.Go(func() { pr.Run(stopCtx) })
		}
	}
	if cfg.Has("dlq") {
		rec := &deadletter.Recorder{Store: s.store, Logger: log.With("stage", "dlq"), Metrics: s.metrics}
		if err := s.consume(stopCtx, kopts, "herald-dlq", []string{bus.TopicDLQ}, rec.Handle); err != nil {
			return nil, err
		}
	}
	// One rule set for the API (events) and the logs role (log rules): a
	// rule changed here is seen by both at once, elsewhere within
	// rules.reloadInterval.
	ruleSet := &rules.Set{Load: s.store, Every: cfg.Rules.ReloadInterval, Logger: log.With("component", "rules")}
	if cfg.Has("logs") {
		ix := &logs.Indexer{Store: s.store, Producer: s.sprod, Logger: log.With("stage", "logs"),
			Alerter: &logs.Alerter{Rules: ruleSet, Store: s.store, Producer: s.sprod, Metrics: s.metrics,
				Logger: log.With("stage", "logs"), IdempotencyWindow: cfg.Idempotency.Window,
				AlertsRetention: cfg.Alerts.Retention}}
		// Big polls: one store transaction per poll is what makes log
		// ingest fast.
		if err := s.consume(stopCtx, kopts, "herald-logs", []string{bus.TopicLogs}, ix.Handle,
			func(o *bus.ConsumerOptions) { o.MaxPollRecords = 5000 }); err != nil {
			return nil, err
		}
		pr := &retention.Pruner{What: "log records", Retention: cfg.Logs.Retention, Logger: log.With("stage", "logs"),
			Prune: func(ctx context.Context, cutoff time.Time) (int, error) { return s.store.PruneLogs(ctx, cutoff, 5000) }}
		s.wg.Go(func() { pr.Run(stopCtx) })
	}
	if cfg.Has("retry") {
		for _, d := range cfg.Retry.Delays {
			dopts := s.withClient(kopts, bus.DelayGroupPrefix+bus.TierName(d))
			dl, err := bus.NewDelay(bus.DelayOptions{ClientOptions: dopts, Topic: bus.RetryTopic(d), Producer: s.sprod})
			if err != nil {
				return nil, err
			}
			s.delays = append(s.delays, dl)
			s.wg.Go(func() {
				if err := dl.Run(stopCtx, s.work); err != nil {
					s.errs <- fmt.Errorf("delay %s: %w", bus.RetryTopic(d), err)
				}
			})
		}
	}

	if authn != nil {
		s.wg.Go(func() { authn.Run(stopCtx, 30*time.Second) })
	}
	s.api = &api.Server{Auth: authn, MetricsPublic: cfg.Auth.MetricsPublic, Channels: enabled, Store: s.store, Producer: s.prod, Cache: s.cache, Metrics: s.metrics, Lag: s.lag, Tracer: tracer, Logger: log.With("stage", "api"), LogRequests: cfg.Log.Requests, Version: version,
		IdempotencyWindow: cfg.Idempotency.Window, AlertmanagerMaxAlerts: cfg.Alertmanager.MaxAlerts, HealthOnly: !cfg.Has("api"),
		EventsMaxBatch: cfg.Events.MaxBatch, Rules: ruleSet, RulesReload: cfg.Rules.ReloadInterval,
		LogsMaxBatch: cfg.Logs.MaxBatch, LogsMaxBodyBytes: cfg.Logs.MaxBodyBytes}
	// In api processes, and in those that send (whose delivery counts the
	// failure-ratio check reads: an api-only process of a fleet sends
	// nothing); alert ids come from the check and the period, so several
	// processes make one alert.
	if sa := cfg.SelfAlert; sa.Target != "" && (cfg.Has("api") || cfg.Has("deliver")) {
		wd := &watchdog.Watchdog{Store: s.store, Producer: s.sprod, Lag: s.lag, Counts: s.metrics.DeliveryTotals,
			Target: sa.Target, Every: sa.Interval, Floor: sa.Floor, MaxLag: sa.MaxLag, MaxFailRatio: sa.MaxFailureRatio,
			MinFailures: float64(sa.MinAttempts), Logger: log.With("stage", "watchdog"), Now: time.Now}
		wd.Check(ctx) // the baseline: later checks alert on growth from here
		s.wg.Go(func() { wd.Run(stopCtx) })
	}
	s.httpLn, err = net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		return nil, fmt.Errorf("http: listen on %s: %w", cfg.HTTP.Addr, err)
	}
	s.http = &http.Server{
		Handler:           s.api.Handler(),
		ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout,
		ReadTimeout:       cfg.HTTP.ReadTimeout,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	scheme := "http"
	if cfg.HTTP.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.HTTP.TLSCert, cfg.HTTP.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("http tls: %w", err)
		}
		s.http.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
		s.httpLn = tls.NewListener(s.httpLn, s.http.TLSConfig)
		scheme = "https"
	}
	go func() {
		if err := s.http.Serve(s.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.errs <- fmt.Errorf("http: %w", err)
		}
	}()
	if addr := cfg.Debug.PprofAddr; addr != "" {
		if err := s.startPprof(addr); err != nil {
			return nil, err
		}
	}
	kafkaMode := "embedded, keeping records " + cfg.Kafka.Retention.String()
	if s.broker == nil {
		kafkaMode = "external"
	}
	args := []any{
		"http", scheme + "://" + s.httpLn.Addr().String(),
		"roles", cfg.Roles,
		"kafka", s.brokers, "kafka_mode", kafkaMode,
		"data_dir", cfg.DataDir,
		"store", cfg.Store.Driver, "store_path", redactedDSN(cfg.Store.Driver, storeDSN),
	}
	if cfg.Store.Driver == "sqlite" {
		args = append(args, "store_logs_path", store.LogFile(storeDSN))
	}
	if cfg.Has("fanout") {
		kept := "forever (alerts.retention 0)"
		if cfg.Alerts.Retention > 0 {
			kept = cfg.Alerts.Retention.String() + " once done"
		}
		args = append(args, "alerts_kept", kept)
	}
	log.Info("herald started", append(args,
		"channels", enabled,
		"cache", cacheKind(cfg),
		"openapi", scheme+"://"+s.httpLn.Addr().String()+"/openapi.json")...)
	return s, nil
}

// startPprof serves net/http/pprof on its own listener, apart from the API
// (no auth there: keep it on loopback).
func (s *Server) startPprof(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("debug.pprofAddr: listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	s.pprof = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.pprof.Serve(ln) }()
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsLoopback() {
		s.log.Warn("pprof is listening on a non-loopback address without authentication", "addr", ln.Addr().String())
	}
	s.log.Info("pprof listening", "url", "http://"+ln.Addr().String()+"/debug/pprof/")
	return nil
}

// withClient names a Kafka client and gives it its own franz-go metrics
// (kprom, herald_kafka_*, labelled by client_id).
func (s *Server) withClient(o bus.ClientOptions, id string) bus.ClientOptions {
	o.ClientID = id
	o.Hooks = []kgo.Hook{kprom.NewMetrics("herald_kafka", kprom.Registry(s.metrics.Registry), kprom.WithClientLabel())}
	return o
}

// redactedDSN is where the data lives, without a password.
func redactedDSN(driver, dsn string) string {
	if driver == "sqlite" {
		return dsn
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "(postgres)"
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	return u.String()
}

// freshDeliveries bounds the deliveries the fan-out stage tells the sending
// stage about (deliver.Fresh): a backlog longer than this reads the state of
// the oldest from the store, as every delivery did before.
const freshDeliveries = 100_000

// consume runs handler h in consumer group group; opts adjust the consumer's
// options (batch size, rebalance hook).
func (s *Server) consume(stop context.Context, kopts bus.ClientOptions, group string, topics []string, h bus.Handler,
	opts ...func(*bus.ConsumerOptions)) error {
	kopts = s.withClient(kopts, group)
	co := bus.ConsumerOptions{ClientOptions: kopts, Group: group, Topics: topics, OnBatch: s.onBatch(group)}
	for _, o := range opts {
		o(&co)
	}
	c, err := bus.NewConsumer(co)
	if err != nil {
		return err
	}
	s.cons = append(s.cons, c)
	s.wg.Go(func() {
		if err := c.Run(stop, s.work, h); err != nil {
			s.errs <- fmt.Errorf("%s: %w", group, err)
		}
	})
	return nil
}

// onBatch observes group's batches in the consumer metrics: the records'
// waits before handling, and the batch's size and time.
func (s *Server) onBatch(group string) func(recs []*kgo.Record, began time.Time, took time.Duration) {
	cm := s.metrics.Consumer(group)
	return func(recs []*kgo.Record, began time.Time, took time.Duration) {
		for _, r := range recs {
			cm.Waited(began.Sub(r.Timestamp))
		}
		cm.Handled(len(recs), took)
	}
}

// notifiers builds one notifier per channel. A channel that is not configured
// gets a notifier that fails every delivery permanently, saying so, so that
// records on its topic are drained into dead deliveries with a reason instead
// of piling up.
func notifiers(cfg *config.Config) (map[herald.Channel]notify.Notifier, []herald.Channel, error) {
	ns, enabled, err := channelNotifiers(cfg)
	if err != nil {
		return nil, nil, err
	}
	for _, ch := range herald.Channels {
		if ns[ch] == nil {
			reason := fmt.Errorf("channel %s is not configured on this server", ch)
			ns[ch] = notify.NotifierFunc(func(context.Context, *notify.Message) (bool, error) { return false, reason })
		}
	}
	return ns, enabled, nil
}

// Metrics returns the process's metrics registry.
func (s *Server) Metrics() *metrics.Metrics { return s.metrics }

// Addr returns the address the API listens on.
func (s *Server) Addr() string { return s.httpLn.Addr().String() }

// KafkaAddrs returns the brokers in use (the embedded broker's address in
// single-node mode).
func (s *Server) KafkaAddrs() []string { return s.brokers }

// Err reports a part that failed while running (the HTTP server, a consumer).
func (s *Server) Err() <-chan error { return s.errs }

// Drain makes ingest and readiness answer 503 (the first step of Close).
func (s *Server) Drain() {
	if s.api != nil {
		s.api.Drain()
	}
}

// Close stops gracefully: ingest answers 503, the HTTP server drains, the
// consumers finish and commit the batch in hand, the producer flushes, and
// the store and broker close. ctx bounds the whole stop; work still running
// when it ends is abandoned uncommitted and redone after the next start.
func (s *Server) Close(ctx context.Context) error {
	var errs []error
	if s.api != nil {
		s.api.Drain()
		if d := min(s.cfg.HTTP.DrainDelay, s.cfg.ShutdownTimeout/2); d > 0 && s.http != nil {
			s.log.Info("draining: ingest and /readyz answer 503 until the listener closes", "for", d)
			select {
			case <-time.After(d):
			case <-ctx.Done():
			}
		}
	}
	if s.http != nil {
		hctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		if err := s.http.Shutdown(hctx); err != nil {
			// Connections that never sent a request (a client's spare dial)
			// or slow requests: close them; ingest has been refusing since
			// Drain, so nothing accepted is lost.
			s.log.Warn("http connections still open at shutdown; closing them", "err", err)
			_ = s.http.Close()
		}
		cancel()
	}
	if s.pprof != nil {
		_ = s.pprof.Close()
	}
	if s.stop != nil {
		s.stop()
		done := make(chan struct{})
		go func() { s.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			s.endWork()
			<-done
		}
		s.endWork()
	}
	if s.handoff != nil { // after the fan-out stage, which waited for what it handed on
		s.handoff.Close()
	}
	for _, c := range s.cons {
		c.Close()
	}
	for _, d := range s.delays {
		d.Close()
	}
	if s.lag != nil {
		s.lag.Close()
	}
	for _, p := range []*bus.Producer{s.sprod, s.prod} {
		if p != nil {
			if err := p.Close(ctx); err != nil {
				errs = append(errs, fmt.Errorf("producer flush: %w", err))
			}
		}
	}
	if s.cache != nil {
		_ = s.cache.Close()
	}
	if s.store != nil {
		if err := s.store.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if s.broker != nil {
		s.broker.Close()
	}
	if s.tpShutdown != nil {
		if err := s.tpShutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("tracing flush: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Run starts Herald and serves until ctx is cancelled or a part fails, then
// stops gracefully within cfg.ShutdownTimeout.
func Run(ctx context.Context, cfg *config.Config, log *slog.Logger, version string) error {
	s, err := Start(ctx, cfg, log, version)
	if err != nil {
		return err
	}
	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	case runErr = <-s.Err():
		log.Error("a part failed; shutting down", "err", runErr)
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	start := time.Now()
	if err := s.Close(sctx); err != nil {
		return errors.Join(runErr, err)
	}
	log.Info("stopped", "took", time.Since(start).Round(time.Millisecond))
	return runErr
}

func cacheKind(cfg *config.Config) string {
	if cfg.Redis.Addr != "" {
		return "redis " + cfg.Redis.Redacted()
	}
	return "memory"
}

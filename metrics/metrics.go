// Package metrics holds Herald's Prometheus metrics: one registry per
// process, with names that follow Prometheus conventions (herald_ prefix,
// base units, _total counters). Every stage records into it; GET /metrics
// serves it.
//
// A nil *Metrics is valid and records nothing, so packages can be used (and
// tested) without metrics.
package metrics

import (
	"runtime"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/heraldproject/herald"
)

// Outcomes of a delivery record.
const (
	OutcomeSent      = "sent"
	OutcomeFailed    = "failed" // transient failure, will retry
	OutcomeDead      = "dead"   // dead-lettered
	OutcomeDuplicate = "skipped_duplicate"
	OutcomeDeferred  = "deferred" // held back by Retry-After or an open breaker
)

// Metrics is the process's metrics. Its methods are safe for concurrent use.
type Metrics struct {
	Registry *prometheus.Registry

	ingested          *prometheus.CounterVec
	ingestDuration    *prometheus.HistogramVec
	httpRequests      *prometheus.CounterVec
	fanoutSize        prometheus.Histogram
	deliveries        *prometheus.CounterVec
	deliveryLatency   *prometheus.HistogramVec
	retries           *prometheus.CounterVec
	deadLetters       *prometheus.CounterVec
	breakersOpen      *prometheus.GaugeVec
	rateLimitWait     *prometheus.CounterVec
	storeDuration     *prometheus.HistogramVec
	storeErrors       *prometheus.CounterVec
	cacheErrors       *prometheus.CounterVec
	cacheDuration     *prometheus.HistogramVec
	unmatched         *prometheus.CounterVec
	logRuleSuppressed *prometheus.CounterVec
	ruleErrors        *prometheus.CounterVec
	consumerWait      *prometheus.HistogramVec
	consumerBatch     *prometheus.HistogramVec
	consumerRecords   *prometheus.HistogramVec
}

// New registers Herald's metrics, the Go runtime and process collectors and
// build info in a new registry.
func New(version string) *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{Registry: r}
	f := func(c prometheus.Collector) { r.MustRegister(c) }
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	bi := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "herald_build_info",
		Help: "Always 1; labels say which Herald build is running."}, []string{"version", "goversion"})
	bi.WithLabelValues(version, runtime.Version()).Set(1)
	f(bi)
	latency := []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}
	m.ingested = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "herald_records_ingested_total",
		Help: "Records accepted into Herald, by kind."}, []string{"kind"})
	m.ingestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "herald_ingest_request_duration_seconds",
		Help: "Time to answer an ingest request, by kind and HTTP status code.", Buckets: latency}, []string{"kind", "code"})
	m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "herald_http_requests_total",
		Help: "HTTP requests answered, by route and status code."}, []string{"route", "code"})
	m.fanoutSize = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "herald_fanout_deliveries",
		Help: "Deliveries made per alert by the fan-out stage.", Buckets: prometheus.ExponentialBuckets(1, 4, 9)})
	m.deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "herald_deliveries_total",
		Help: "Delivery records handled, by channel and outcome (sent, failed, dead, skipped_duplicate, deferred)."},
		[]string{"channel", "outcome"})
	m.deliveryLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "herald_delivery_latency_seconds",
		Help: "Time from an alert's acceptance to a delivery's success, by channel.", Buckets: latency}, []string{"channel"})
	m.retries = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "herald_retries_total",
		Help: "Deliveries sent to a delay tier, by tier topic."}, []string{"tier"})
	m.deadLetters = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "herald_dead_letters_total",
		Help: "Dead letters made, by channel (empty for undecodable records)."}, []string{"channel"})
	m.breakersOpen = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "herald_circuit_breakers_open",
		Help: "Endpoints whose circuit breaker is open (or half-open), by channel."}, []string{"channel"})
	m.rateLimitWait = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "herald_rate_limit_wait_seconds_total",
		Help: "Time spent waiting for rate-limit tokens, by channel."}, []string{"channel"})
	m.storeDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "herald_store_operation_duration_seconds",
		Help: "Store write transactions, by operation.", Buckets: latency}, []string{"op"})
	m.storeErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "herald_store_errors_total",
		Help: "Store write transactions that failed, by operation."}, []string{"op"})
	m.cacheErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "herald_cache_errors_total",
		Help: "Cache (Redis) calls that failed, by operation; the store answered instead."}, []string{"op"})
	m.cacheDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "herald_cache_operation_duration_seconds",
		Help: "Cache (Redis or in-process) calls, by operation.", Buckets: latency}, []string{"op"})
	m.unmatched = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "herald_events_unmatched_total",
		Help: "Events accepted that no enabled rule matched (nobody was told), by source (event, s3)."}, []string{"source"})
	m.ruleErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "herald_rule_errors_total",
		Help: "Rule evaluations that failed, by source (event, s3, log) and stage: match (the expression failed on the event or log record: no match), " +
			"render (a template failed or was clipped: the alert went out with a fallback or clipped text)."},
		[]string{"source", "stage"})
	m.logRuleSuppressed = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "herald_log_rule_suppressed_total",
		Help: "Log-rule matches that made no new alert because an alert with the same dedupe key was already made " +
			"(within the rule's window, or idempotency.window without one), by rule name. A batch redone after a crash " +
			"counts again."}, []string{"rule"})
	// Stage waits are a few milliseconds when all is well: finer buckets.
	wait := []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 1800}
	m.consumerWait = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "herald_consumer_record_wait_seconds",
		Help: "Time from a record's Kafka timestamp (when it was produced) to the start of its handling, by consumer " +
			"group: its wait in Kafka, fetching and lingering included. A clock difference between the producing " +
			"and the consuming host counts in it.", Buckets: wait}, []string{"group"})
	m.consumerBatch = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "herald_consumer_batch_duration_seconds",
		Help:    "Time to handle a batch of records and commit its offsets, retries included, by consumer group.",
		Buckets: wait}, []string{"group"})
	m.consumerRecords = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "herald_consumer_batch_records",
		Help: "Records per batch handled, by consumer group.", Buckets: prometheus.ExponentialBuckets(1, 4, 8)},
		[]string{"group"})
	for _, c := range []prometheus.Collector{m.consumerWait, m.consumerBatch, m.consumerRecords, m.unmatched, m.ruleErrors, m.logRuleSuppressed, m.ingested, m.ingestDuration, m.httpRequests, m.fanoutSize, m.deliveries,
		m.deliveryLatency, m.retries, m.deadLetters, m.breakersOpen, m.rateLimitWait, m.storeDuration, m.storeErrors,
		m.cacheErrors, m.cacheDuration} {
		f(c)
	}
	return m
}

// Consumer records one consumer group's batches. The zero value records
// nothing.
type Consumer struct{ wait, took, size prometheus.Observer }

// Consumer returns the batch metrics of a consumer group.
func (m *Metrics) Consumer(group string) Consumer {
	if m == nil {
		return Consumer{}
	}
	return Consumer{m.consumerWait.WithLabelValues(group), m.consumerBatch.WithLabelValues(group),
		m.consumerRecords.WithLabelValues(group)}
}

// Waited observes one record's wait between its production and the start
// of its handling (a negative wait, from clocks apart, as none).
func (c Consumer) Waited(d time.Duration) {
	if c.wait != nil {
		c.wait.Observe(max(d, 0).Seconds())
	}
}

// Handled observes a batch of n records handled and committed in took.
func (c Consumer) Handled(n int, took time.Duration) {
	if c.took != nil {
		c.took.Observe(took.Seconds())
		c.size.Observe(float64(n))
	}
}

// EventsUnmatched counts n events of source that no rule matched.
func (m *Metrics) EventsUnmatched(source string, n int) {
	if m == nil || n == 0 {
		return
	}
	m.unmatched.WithLabelValues(source).Add(float64(n))
}

// LogRuleSuppressed counts n matches of the log rule named rule that made
// no new alert (storm control).
func (m *Metrics) LogRuleSuppressed(rule string, n int) {
	if m == nil || n == 0 {
		return
	}
	m.logRuleSuppressed.WithLabelValues(rule).Add(float64(n))
}

// RuleError counts a rule evaluation of source that failed at stage (match
// or render).
func (m *Metrics) RuleError(source, stage string) {
	if m == nil {
		return
	}
	m.ruleErrors.WithLabelValues(source, stage).Inc()
}

// Ingested counts an accepted record of kind (alert, event, log) and the
// request's latency.
func (m *Metrics) Ingested(kind, code string, d time.Duration) {
	if m == nil {
		return
	}
	if code == "202" {
		m.ingested.WithLabelValues(kind).Inc()
	}
	m.ingestDuration.WithLabelValues(kind, code).Observe(d.Seconds())
}

// Accepted counts n records of kind accepted by one request (an
// Alertmanager payload carries many alerts).
func (m *Metrics) Accepted(kind string, n int) {
	if m == nil || n == 0 {
		return
	}
	m.ingested.WithLabelValues(kind).Add(float64(n))
}

// IngestDuration records how long an ingest request of kind (alert,
// alertmanager) took to answer, without counting records.
func (m *Metrics) IngestDuration(kind, code string, d time.Duration) {
	if m == nil {
		return
	}
	m.ingestDuration.WithLabelValues(kind, code).Observe(d.Seconds())
}

// HTTPRequest counts an answered request.
func (m *Metrics) HTTPRequest(route, code string) {
	if m == nil {
		return
	}
	m.httpRequests.WithLabelValues(route, code).Inc()
}

// Fanout observes the deliveries made for one alert.
func (m *Metrics) Fanout(deliveries int) {
	if m == nil {
		return
	}
	m.fanoutSize.Observe(float64(deliveries))
}

// Delivery counts a delivery record's outcome.
func (m *Metrics) Delivery(channel, outcome string) {
	if m == nil {
		return
	}
	m.deliveries.WithLabelValues(channel, outcome).Inc()
}

// Sent observes the accept-to-sent latency of a delivery.
func (m *Metrics) Sent(channel string, latency time.Duration) {
	if m == nil {
		return
	}
	m.deliveryLatency.WithLabelValues(channel).Observe(latency.Seconds())
}

// Retry counts a delivery sent to a delay tier.
func (m *Metrics) Retry(tier string) {
	if m == nil {
		return
	}
	m.retries.WithLabelValues(tier).Inc()
}

// DeadLetter counts a dead letter.
func (m *Metrics) DeadLetter(channel string) {
	if m == nil {
		return
	}
	m.deadLetters.WithLabelValues(channel).Inc()
}

// BreakerOpened and BreakerClosed track open breakers.
func (m *Metrics) BreakerOpened(channel string) {
	if m != nil {
		m.breakersOpen.WithLabelValues(channel).Inc()
	}
}

// BreakerClosed is the counterpart of BreakerOpened.
func (m *Metrics) BreakerClosed(channel string) {
	if m != nil {
		m.breakersOpen.WithLabelValues(channel).Dec()
	}
}

// RateLimitWait adds time spent waiting for tokens.
func (m *Metrics) RateLimitWait(channel string, d time.Duration) {
	if m != nil && d > 0 {
		m.rateLimitWait.WithLabelValues(channel).Add(d.Seconds())
	}
}

// StoreOp observes a store write transaction.
func (m *Metrics) StoreOp(op string, d time.Duration, err error) {
	if m == nil {
		return
	}
	m.storeDuration.WithLabelValues(op).Observe(d.Seconds())
	// A caller's mistake the store refused (no such user, a name taken) is
	// an answer, not a store error.
	if herald.ErrorCode(err) == herald.EINTERNAL {
		m.storeErrors.WithLabelValues(op).Inc()
	}
}

// CacheOp observes a cache call.
func (m *Metrics) CacheOp(op string, d time.Duration, err error) {
	if m == nil {
		return
	}
	m.cacheDuration.WithLabelValues(op).Observe(d.Seconds())
	if err != nil {
		m.cacheErrors.WithLabelValues(op).Inc()
	}
}

// Gatherer is what /metrics serves: the registry, with one correction for
// franz-go's kprom, which names some gauges *_total (a counter suffix):
// those lose the suffix, so the output passes `promtool check metrics`.
func (m *Metrics) Gatherer() prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		fams, err := m.Registry.Gather()
		for _, f := range fams {
			if f.GetType() != dto.MetricType_COUNTER && strings.HasSuffix(f.GetName(), "_total") {
				f.Name = proto.String(strings.TrimSuffix(f.GetName(), "_total"))
			}
		}
		return fams, err
	})
}

// DeliveryTotals returns this process's cumulative delivery outcomes.
func (m *Metrics) DeliveryTotals() (sent, failed, dead float64) {
	if m == nil {
		return 0, 0, 0
	}
	fams, err := m.Registry.Gather()
	if err != nil {
		return 0, 0, 0
	}
	for _, f := range fams {
		if f.GetName() != "herald_deliveries_total" {
			continue
		}
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() != "outcome" {
					continue
				}
				switch l.GetValue() {
				case OutcomeSent:
					sent += s.GetCounter().GetValue()
				case OutcomeFailed:
					failed += s.GetCounter().GetValue()
				case OutcomeDead:
					dead += s.GetCounter().GetValue()
				}
			}
		}
	}
	return sent, failed, dead
}

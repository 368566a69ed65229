// Package config is Herald's one typed configuration: defaults, a YAML file,
// HERALD_* environment variables and command-line flags, in that order of
// precedence (later wins), checked in one Validate step.
//
// Every key is reachable from the environment: the key's path, camelCase
// split into words, upper-cased and joined by underscores, after HERALD_.
// For example retry.maxAttempts is HERALD_RETRY_MAX_ATTEMPTS and dataDir is
// HERALD_DATA_DIR. Lists are comma-separated: HERALD_RETRY_DELAYS=100ms,300ms.
package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/tracing"
)

// Config is everything Herald can be told.
type Config struct {
	// DataDir holds the embedded broker's log and the SQLite database.
	DataDir string `koanf:"dataDir"`
	// ShutdownTimeout bounds a graceful stop.
	ShutdownTimeout time.Duration `koanf:"shutdownTimeout"`
	// Roles are the parts this process runs: api, fanout, deliver, retry,
	// dlq, logs (default all).
	Roles       []string    `koanf:"roles"`
	HTTP        HTTP        `koanf:"http"`
	Store       Store       `koanf:"store"`
	Kafka       Kafka       `koanf:"kafka"`
	Log         Log         `koanf:"log"`
	Routes      Routes      `koanf:"routes"`
	Retry       Retry       `koanf:"retry"`
	Deliver     Deliver     `koanf:"deliver"`
	Fanout      Fanout      `koanf:"fanout"`
	Breaker     Breaker     `koanf:"breaker"`
	Limits      Limits      `koanf:"limits"`
	Idempotency Idempotency `koanf:"idempotency"`
	Redis       Redis       `koanf:"redis"`
	Cache       Cache       `koanf:"cache"`
	Tracing     Tracing     `koanf:"tracing"`
	SelfAlert   SelfAlert   `koanf:"selfAlert"`
	Auth        Auth        `koanf:"auth"`
	Secrets     Secrets     `koanf:"secrets"`
	Outbound    Outbound    `koanf:"outbound"`
	Debug       Debug       `koanf:"debug"`
	GC          GC          `koanf:"gc"`
	Webhook     Webhook     `koanf:"webhook"`
	Slack       Slack       `koanf:"slack"`
	Email       Email       `koanf:"email"`
	SMS         SMS         `koanf:"sms"`

	// Alertmanager configures POST /v1/integrations/alertmanager.
	Alertmanager Alertmanager `koanf:"alertmanager"`
	// Events configures POST /v1/events and /v1/integrations/s3.
	Events Events `koanf:"events"`
	// Rules configures the rules that turn events into alerts.
	Rules Rules `koanf:"rules"`
	// Logs configures log ingest (POST /v1/logs, OTLP) and the logs role.
	Logs Logs `koanf:"logs"`
	// Alerts configures how long alerts are kept.
	Alerts Alerts `koanf:"alerts"`
}

// alertsRetentionFloor is the shortest alerts.retention that is safe, and
// what sets it. A pruned alert's id comes back for the next alert with its
// idempotency key (a retry within idempotency.window would be sent again),
// its deliveries' ids with it (a sent mark still in Redis, cache.sentTTL,
// would keep the new alert from being sent), and its record, while the
// embedded broker still holds it (kafka.retention), would be fanned out
// again if read again; a log rule fires once per window (up to 24h) only
// while the window's alert is stored; a retry waits out its delay on its
// tier. Every process of a fleet should have the same values: each checks
// only its own.
func alertsRetentionFloor(c *Config) (time.Duration, string) {
	floor, why := 24*time.Hour, "the longest log-rule window, 24h"
	type setting struct {
		d    time.Duration
		name string
	}
	// A retry record due after its alert was pruned would find no delivery;
	// a delay is drawn up to 20% longer.
	longest := c.Retry.Longest() * 6 / 5
	settings := []setting{{c.Idempotency.Window, "idempotency.window"}, {longest, "the longest of retry.delays, plus its 20% jitter"}}
	if c.Redis.Addr != "" { // sent marks live only in Redis
		settings = append(settings, setting{c.Cache.SentTTL, "cache.sentTTL"})
	}
	for _, f := range settings {
		if f.d > floor {
			floor, why = f.d, f.name
		}
	}
	if len(c.Kafka.Brokers) == 0 && c.Kafka.Retention > floor {
		floor, why = c.Kafka.Retention, "kafka.retention"
	}
	return floor, why
}

// Alerts configures the stored alerts.
type Alerts struct {
	// Retention is how long an alert is kept once it is done (every
	// delivery sent or dead, no dead letter waiting to be replayed), with
	// its deliveries, attempts and dead letters; older ones are pruned in
	// batches by the fanout role. 0 keeps every alert; otherwise at least
	// the longest of 24h, idempotency.window, the longest retry delay,
	// cache.sentTTL (with Redis) and kafka.retention (embedded broker).
	Retention time.Duration `koanf:"retention"`
}

// Logs configures log ingest and storage.
type Logs struct {
	// MaxBatch is the most records one request may carry (413 beyond).
	MaxBatch int `koanf:"maxBatch"`
	// MaxBodyBytes is the largest request body, after decompression (413
	// beyond).
	MaxBodyBytes int64 `koanf:"maxBodyBytes"`
	// Retention is how long a stored record is kept; older ones are pruned
	// in batches.
	Retention time.Duration `koanf:"retention"`
}

// HTTP configures the API server.
type HTTP struct {
	Addr string `koanf:"addr"`
	// ReadHeaderTimeout and ReadTimeout bound how long a client may take to
	// send its headers and its whole request (slow clients are cut off).
	ReadHeaderTimeout time.Duration `koanf:"readHeaderTimeout"`
	ReadTimeout       time.Duration `koanf:"readTimeout"`
	// TLSCert and TLSKey (PEM files) make the API serve HTTPS.
	TLSCert string `koanf:"tlsCert"`
	TLSKey  string `koanf:"tlsKey"`
	// DrainDelay is how long, once told to stop, the API keeps answering
	// with /readyz and ingest at 503 before it closes its listener, so load
	// balancers and clients move to another instance (default 1s; 0 closes
	// at once; at most half of shutdownTimeout).
	DrainDelay time.Duration `koanf:"drainDelay"`
}

// Store says which database holds Herald's state.
type Store struct {
	// Driver is sqlite (default) or postgres.
	Driver string `koanf:"driver"`
	// DSN is the database: for sqlite a file (default <dataDir>/herald.db),
	// for postgres a connection string.
	DSN string `koanf:"dsn"`
	// ResolveCacheTTL is how long a process reuses what a target name
	// (@user, @@group) resolved to when accepting alerts (default 1s; 0
	// turns it off). Directory changes made through the process are seen at
	// once; those made through another process of a fleet within this TTL.
	ResolveCacheTTL time.Duration `koanf:"resolveCacheTTL"`
	// CommitLinger is how long the group commit of delivery outcomes waits
	// for more outcomes when it has fewer than 16 (default 500µs; 0: commit
	// each group at once). Sends are not delayed by it: only the recording
	// of their outcomes, which it makes cheaper.
	CommitLinger time.Duration `koanf:"commitLinger"`
}

// StoreDSN returns the database to open: store.dsn, or for sqlite
// <dataDir>/herald.db when store.dsn is empty.
func (c *Config) StoreDSN() string {
	if c.Store.Driver == "sqlite" && c.Store.DSN == "" {
		return filepath.Join(c.DataDir, "herald.db")
	}
	return c.Store.DSN
}

// Kafka configures the broker.
type Kafka struct {
	// Brokers are the seed brokers of an external Kafka cluster; empty means
	// the embedded broker.
	Brokers []string `koanf:"brokers"`
	// Addr is where the embedded broker listens (loopback).
	Addr string `koanf:"addr"`
	// Partitions is the partition count of each topic Herald creates.
	Partitions int `koanf:"partitions"`
	// ReplicationFactor of topics Herald creates on an external cluster
	// (-1: the cluster's default).
	ReplicationFactor int `koanf:"replicationFactor"`
	// SessionTimeout is how long the group waits for a silent member before
	// giving its partitions to others.
	SessionTimeout time.Duration `koanf:"sessionTimeout"`
	// RebalanceTimeout is how long the group waits for every member to
	// rejoin once a rebalance starts; a member still busy with its batch
	// after it is dropped and its batch redone elsewhere.
	RebalanceTimeout time.Duration `koanf:"rebalanceTimeout"`
	// Retention is how long the embedded broker keeps records (Kafka's
	// log.retention.ms); an external cluster's topics keep their own.
	Retention time.Duration `koanf:"retention"`
	TLS       KafkaTLS      `koanf:"tls"`
	SASL      KafkaSASL     `koanf:"sasl"`
}

// KafkaTLS configures TLS to the brokers.
type KafkaTLS struct {
	Enabled            bool   `koanf:"enabled"`
	CAFile             string `koanf:"caFile"`
	CertFile           string `koanf:"certFile"`
	KeyFile            string `koanf:"keyFile"`
	InsecureSkipVerify bool   `koanf:"insecureSkipVerify"`
}

// KafkaSASL configures SASL authentication to the brokers.
type KafkaSASL struct {
	// Mechanism is "" (none), plain, scram-sha-256, scram-sha-512 or
	// aws-msk-iam (credentials from the standard AWS_* environment).
	Mechanism string `koanf:"mechanism"`
	Username  string `koanf:"username"`
	Password  string `koanf:"password"`
}

// Log configures logging.
type Log struct {
	Level  string `koanf:"level"`  // debug, info, warn, error
	Format string `koanf:"format"` // text or json
	// Requests is which HTTP requests get an access line at info: "all",
	// "errors" (status 400 and up, and requests slower than a second;
	// the rest at debug) or "none" (all at debug).
	Requests string `koanf:"requests"`
}

// Routes lists, per severity, the channels its alerts go to. An empty list
// means every channel the recipient can be reached on.
type Routes struct {
	Info     []string `koanf:"info"`
	Warning  []string `koanf:"warning"`
	Error    []string `koanf:"error"`
	Critical []string `koanf:"critical"`
}

// Retry bounds delivery attempts.
type Retry struct {
	MaxAttempts int             `koanf:"maxAttempts"`
	Delays      []time.Duration `koanf:"delays"`
}

// Longest is the longest of Delays (0 without any).
func (r Retry) Longest() time.Duration {
	return slices.Max(append([]time.Duration{0}, r.Delays...))
}

// Fanout configures the fan-out stage.
type Fanout struct {
	// Linger is how long the stage waits for more alerts when a fetch
	// brought fewer than a full batch (default 2ms; 0: not at all). Each
	// batch costs a store transaction and an offset commit however many
	// alerts it holds; at moderate rates alerts come one at a time.
	Linger time.Duration `koanf:"linger"`
	// Handoff, in a process that runs both the fanout and deliver roles,
	// hands delivery records to this process's senders in memory instead
	// of through their Kafka topics (default true; handoff.Handoff). The
	// alert batch is committed only once every delivery handed on is sent
	// and recorded, so nothing is lost in a crash.
	Handoff bool `koanf:"handoff"`
}

// Deliver configures the senders.
type Deliver struct {
	// Concurrency is how many deliveries each channel sends at once
	// (default 64).
	Concurrency int `koanf:"concurrency"`
	// RecipientConcurrency is how many of one recipient's deliveries are in
	// flight at once. The default, 0, is automatic: the channel's sends
	// shared equally among the recipients of a batch, at least 16 each, so
	// one endpoint taking every alert gets all of them and a slow endpoint
	// cannot take every send from the recipients batched with it.
	// Deliveries of one alert stream (the same labels, or the same targets
	// for unlabelled alerts: an alert and its resolution) always go one
	// after another, in order, retries aside; 1 puts all of a recipient's in
	// one line. Channels rate-limited per endpoint (Slack) always use 1.
	RecipientConcurrency int `koanf:"recipientConcurrency"`
	// Timeout bounds one attempt.
	Timeout time.Duration `koanf:"timeout"`
}

// Breaker configures the circuit breaker kept per endpoint.
type Breaker struct {
	// Failures is how many transient failures in a row open the breaker
	// (0 turns breakers off).
	Failures int `koanf:"failures"`
	// OpenTimeout is how long an open breaker refuses before it lets one
	// probe through.
	OpenTimeout time.Duration `koanf:"openTimeout"`
}

// Limit is a token bucket: messages per second for a whole channel (Rate)
// and per endpoint (PerEndpoint), 0 meaning unlimited, with Burst; and the
// channel's sends in flight at once (Concurrency, 0 meaning
// deliver.concurrency).
type Limit struct {
	Rate        float64 `koanf:"rate"`
	PerEndpoint float64 `koanf:"perEndpoint"`
	Burst       int     `koanf:"burst"`
	// Concurrency bounds the channel's sends in flight (0: deliver.concurrency).
	// Email defaults to 32: every email is its own SMTP connection to one
	// relay, and relays cap connections per client (Postfix: 50).
	Concurrency int `koanf:"concurrency"`
}

// Limits are the token buckets of each channel.
type Limits struct {
	Webhook Limit `koanf:"webhook"`
	Slack   Limit `koanf:"slack"`
	Email   Limit `koanf:"email"`
	SMS     Limit `koanf:"sms"`
}

// For returns the limit of channel c.
func (l Limits) For(c herald.Channel) Limit {
	switch c {
	case herald.ChannelSlack:
		return l.Slack
	case herald.ChannelEmail:
		return l.Email
	case herald.ChannelSMS:
		return l.SMS
	}
	return l.Webhook
}

// Redis configures the shared cache of a fleet. Empty Addr means an
// in-process cache.
type Redis struct {
	// Addr is host:port, or a URL: redis://[user:password@]host:port[/db],
	// rediss:// for TLS.
	Addr string `koanf:"addr"`
	// Password (and Username, for Redis ACLs) authenticate; they override
	// those of an Addr URL. Kept out of logs.
	Username string `koanf:"username"`
	Password string `koanf:"password"`
	Prefix   string `koanf:"prefix"`
}

// Redacted is Addr as it may be logged: a URL's credentials (all between
// "://" and the last "@", even in a URL that does not parse) replaced by
// "xxxxx".
func (r Redis) Redacted() string {
	scheme, rest, ok := strings.Cut(r.Addr, "://")
	if !ok {
		return r.Addr
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		return scheme + "://xxxxx" + rest[at:]
	}
	return r.Addr
}

// Cache configures cached lookups.
type Cache struct {
	// UserTTL bounds how long a user's contacts are served from the cache.
	UserTTL time.Duration `koanf:"userTTL"`
	// SentTTL is how long a delivery's sent mark is kept in Redis (without
	// Redis no sent marks are kept: deliver.Sender.SentMarks).
	SentTTL time.Duration `koanf:"sentTTL"`
}

// Debug configures diagnostics meant for operators, off by default.
type Debug struct {
	// PprofAddr, when set, serves net/http/pprof on its own listener (keep it
	// on loopback: profiles reveal internals and cost CPU while taken).
	PprofAddr string `koanf:"pprofAddr"`
}

// GC configures how often `herald serve` runs the Go garbage collector.
type GC struct {
	// MemoryMB is a budget, in MiB, for the Go heap and the runtime's
	// other memory: after every collection GOGC is set to as much as 200
	// (a collection once the heap is three times what is live) as keeps
	// them within it, and never below 100 (Go's default). 0, or GOGC or
	// GOMEMLIMIT in the environment, leaves the collector to Go.
	MemoryMB int `koanf:"memoryMB"`
}

// Outbound is the policy for connections to user-supplied URLs (webhooks,
// Slack webhooks).
type Outbound struct {
	// PrivateAddresses is allow, deny, or auto (deny when kafka.brokers is
	// set, i.e. scaled out; allow in single-node mode).
	PrivateAddresses string `koanf:"privateAddresses"`
	// Allow lists CIDR prefixes or addresses allowed even when private
	// addresses are denied.
	Allow []string `koanf:"allow"`
}

// Policy returns the outbound policy.
func (c *Config) Policy() (deny bool, allow []netip.Prefix, err error) {
	switch c.Outbound.PrivateAddresses {
	case "deny":
		deny = true
	case "auto":
		deny = len(c.Kafka.Brokers) > 0
	case "allow":
	default:
		return false, nil, fmt.Errorf("config: outbound.privateAddresses must be allow, deny or auto, not %q", c.Outbound.PrivateAddresses)
	}
	for _, a := range c.Outbound.Allow {
		p, perr := netip.ParsePrefix(a)
		if perr != nil {
			ip, ierr := netip.ParseAddr(a)
			if ierr != nil {
				return false, nil, fmt.Errorf("config: outbound.allow: %q is not an address or CIDR prefix", a)
			}
			p = netip.PrefixFrom(ip, ip.BitLen())
		}
		allow = append(allow, p)
	}
	return deny, allow, nil
}

// Secrets configures encryption of secrets at rest and in the Redis cache.
type Secrets struct {
	// Key is 32 random bytes, base64-encoded (herald secrets keygen, or
	// openssl rand -base64 32); when set, users' Slack tokens and webhook
	// secrets are stored encrypted (AES-256-GCM), and so are the contacts
	// cached in Redis.
	Key string `koanf:"key"`
	// PreviousKeys are keys in the same form that only decrypt: values
	// encrypted under them stay readable until `herald secrets rotate`
	// re-encrypts them under Key. Comma-separated in the environment.
	PreviousKeys []string `koanf:"previousKeys"`
}

// KeyBytes decodes Key (nil when unset).
func (s Secrets) KeyBytes() ([]byte, error) {
	if s.Key == "" {
		return nil, nil
	}
	return decodeKey("secrets.key", s.Key)
}

// PreviousKeyBytes decodes PreviousKeys.
func (s Secrets) PreviousKeyBytes() ([][]byte, error) {
	var out [][]byte
	for i, k := range s.PreviousKeys {
		b, err := decodeKey(fmt.Sprintf("secrets.previousKeys[%d]", i), k)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

func decodeKey(name, v string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
	if err != nil || len(b) != 32 {
		return nil, fmt.Errorf("config: %s must be 32 bytes, base64-encoded (herald secrets keygen, or openssl rand -base64 32)", name)
	}
	return b, nil
}

// Auth configures API authentication.
type Auth struct {
	// Disabled turns token checks off; allowed only when http.addr is a
	// loopback address.
	Disabled bool `koanf:"disabled"`
	// AdminToken makes this secret an admin token (also HERALD_ADMIN_TOKEN),
	// for automation and tests; otherwise the first start makes one and
	// writes it to <dataDir>/admin.token.
	AdminToken string `koanf:"adminToken"`
	// MetricsPublic serves /metrics without a token.
	MetricsPublic bool `koanf:"metricsPublic"`
	// Rate and Burst limit each token's requests per second (0: unlimited).
	Rate  float64 `koanf:"rate"`
	Burst int     `koanf:"burst"`
}

// SelfAlert makes Herald alert about its own health through its own
// channels (off unless Target is set).
type SelfAlert struct {
	// Target is who is told, e.g. "@@ops".
	Target string `koanf:"target"`
	// Interval is how often the checks run; Floor is the least time between
	// two alerts of one check.
	Interval time.Duration `koanf:"interval"`
	Floor    time.Duration `koanf:"floor"`
	// MaxLag is the records a consumer group may be behind.
	MaxLag int64 `koanf:"maxLag"`
	// MaxFailureRatio is the share of failed attempts per interval allowed,
	// counted once at least MinAttempts were made.
	MaxFailureRatio float64 `koanf:"maxFailureRatio"`
	MinAttempts     int     `koanf:"minAttempts"`
}

// Tracing configures OpenTelemetry tracing (off unless Endpoint is set).
type Tracing struct {
	// Endpoint is an OTLP/HTTP collector's URL: its base, e.g.
	// http://127.0.0.1:4318 (spans go to /v1/traces there), or the full
	// traces URL, used as given.
	Endpoint string `koanf:"endpoint"`
	// SampleRatio is the share of new traces recorded (0-1).
	SampleRatio float64 `koanf:"sampleRatio"`
}

// Idempotency configures Idempotency-Key handling on ingest.
type Idempotency struct {
	// Window is how long a key keeps returning the first alert's id.
	Window time.Duration `koanf:"window"`
}

// Alertmanager configures the Prometheus Alertmanager webhook ingest
// (POST /v1/integrations/alertmanager).
type Alertmanager struct {
	// MaxAlerts is the most alerts one webhook payload may carry; a larger
	// payload is refused whole (413). Alertmanager's webhook_config max_alerts
	// keeps its payloads under it.
	MaxAlerts int `koanf:"maxAlerts"`
}

// Events configures event ingest (POST /v1/events, /v1/integrations/s3).
type Events struct {
	// MaxBatch is the most events one request may carry (a batch, or the
	// records of one S3 notification); more is refused whole (413).
	MaxBatch int `koanf:"maxBatch"`
}

// Rules configures event rules.
type Rules struct {
	// ReloadInterval is how often each process checks the store for rule
	// changes made by other processes (the process that made a change sees
	// it at once).
	ReloadInterval time.Duration `koanf:"reloadInterval"`
}

// Webhook configures the webhook channel.
type Webhook struct {
	Timeout time.Duration `koanf:"timeout"`
	// SigningSecret, when set, signs every webhook request with
	// HMAC-SHA256 (header Herald-Signature; see docs/SECURITY.md).
	SigningSecret string `koanf:"signingSecret"`
}

// Slack configures the Slack channel.
type Slack struct {
	// APIURL is the Web API base (tests point it at a local server).
	APIURL string `koanf:"apiUrl"`
	// Token is the bot token used for users whose Slack contact names a
	// channel but no token.
	Token   string        `koanf:"token"`
	Timeout time.Duration `koanf:"timeout"`
}

// Email configures the SMTP channel. It is enabled when Host is set.
type Email struct {
	Host     string `koanf:"host"`
	Port     int    `koanf:"port"`
	Username string `koanf:"username"`
	Password string `koanf:"password"`
	From     string `koanf:"from"`
	// TLS is none, opportunistic, starttls (mandatory) or tls (implicit).
	TLS     string        `koanf:"tls"`
	Timeout time.Duration `koanf:"timeout"`
}

// SMS configures the Twilio-style SMS channel. It is enabled when AccountSID
// is set.
type SMS struct {
	URL        string        `koanf:"url"`
	AccountSID string        `koanf:"accountSid"`
	AuthToken  string        `koanf:"authToken"`
	From       string        `koanf:"from"`
	Timeout    time.Duration `koanf:"timeout"`
}

func defaults() map[string]any {
	return map[string]any{
		"dataDir":                      "./herald-data",
		"shutdownTimeout":              "15s",
		"http.addr":                    "127.0.0.1:8080",
		"http.readHeaderTimeout":       "10s",
		"http.readTimeout":             "30s",
		"http.drainDelay":              "1s",
		"outbound.privateAddresses":    "auto",
		"roles":                        []string{"api", "fanout", "deliver", "retry", "dlq", "logs"},
		"store.driver":                 "sqlite",
		"store.resolveCacheTTL":        "1s",
		"store.commitLinger":           "500us",
		"kafka.replicationFactor":      -1,
		"kafka.sessionTimeout":         "45s",
		"kafka.rebalanceTimeout":       "60s",
		"kafka.addr":                   "127.0.0.1:9092",
		"kafka.partitions":             4,
		"kafka.retention":              "168h",
		"log.level":                    "info",
		"log.format":                   "text",
		"log.requests":                 "errors",
		"retry.maxAttempts":            5,
		"retry.delays":                 []string{"1s", "10s", "1m", "5m"},
		"breaker.failures":             5,
		"breaker.openTimeout":          "30s",
		"limits.slack.perEndpoint":     1,
		"limits.slack.burst":           3,
		"limits.email.concurrency":     32,
		"idempotency.window":           "24h",
		"alertmanager.maxAlerts":       1000,
		"events.maxBatch":              100,
		"rules.reloadInterval":         "2s",
		"logs.maxBatch":                10000,
		"logs.maxBodyBytes":            16 << 20,
		"logs.retention":               "168h",
		"alerts.retention":             "0s",
		"redis.prefix":                 "herald:",
		"cache.userTTL":                "1m",
		"cache.sentTTL":                "168h",
		"tracing.sampleRatio":          1.0,
		"selfAlert.interval":           "30s",
		"auth.metricsPublic":           true,
		"auth.rate":                    1000,
		"auth.burst":                   2000,
		"selfAlert.floor":              "15m",
		"selfAlert.maxLag":             1000,
		"selfAlert.maxFailureRatio":    0.05,
		"selfAlert.minAttempts":        20,
		"deliver.concurrency":          64,
		"fanout.linger":                "2ms",
		"fanout.handoff":               true,
		"gc.memoryMB":                  192,
		"deliver.recipientConcurrency": 0,
		"deliver.timeout":              "30s",
		"webhook.timeout":              "10s",
		"slack.apiUrl":                 "https://slack.com/api/",
		"slack.timeout":                "10s",
		"email.tls":                    "opportunistic",
		"email.timeout":                "15s",
		"sms.url":                      "https://api.twilio.com",
		"sms.timeout":                  "10s",
	}
}

// Load reads defaults, then the YAML file at path (if not empty), then the
// environment (environ, in os.Environ form), then overrides (flags the user
// set, by key), and validates the result. Unknown HERALD_* variables and
// unknown keys in the file are errors, so a typo does not go unnoticed.
func Load(path string, environ []string, overrides map[string]any) (*Config, error) {
	k := koanf.New(".")
	if err := k.Load(confmap.Provider(defaults(), "."), nil); err != nil {
		return nil, fmt.Errorf("config: defaults: %w", err)
	}
	if path != "" {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		fk := koanf.New(".")
		if err := fk.Load(file.Provider(path), yaml.Parser()); err != nil {
			return nil, fmt.Errorf("config: %s: %w", path, err)
		}
		if unknown := unknownKeys(fk); len(unknown) > 0 {
			return nil, fmt.Errorf("config: %s: unknown keys %s (see `herald config keys`)", path, strings.Join(unknown, ", "))
		}
		if err := k.Merge(fk); err != nil {
			return nil, fmt.Errorf("config: %s: %w", path, err)
		}
	}
	envKeys := EnvKeys()
	listKeys := make(map[string]bool)
	walk(reflect.TypeFor[Config](), "", func(key string, t reflect.Type) { listKeys[key] = t.Kind() == reflect.Slice })
	var unknown []string
	err := k.Load(env.Provider(".", env.Opt{
		Prefix:      "HERALD_",
		EnvironFunc: func() []string { return environ },
		TransformFunc: func(name, v string) (string, any) {
			key, ok := envKeys[name]
			if alias, isAlias := envAliases[name]; isAlias {
				key, ok = alias, true
			}
			if !ok {
				if !notSetting(name) {
					unknown = append(unknown, name)
				}
				return "", nil
			}
			if listKeys[key] {
				return key, splitList(v)
			}
			return key, v
		},
	}), nil)
	if err != nil {
		return nil, fmt.Errorf("config: environment: %w", err)
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("config: unknown environment variables %s (see `herald config keys`)", strings.Join(unknown, ", "))
	}
	for key, v := range overrides {
		if err := k.Set(key, v); err != nil {
			return nil, fmt.Errorf("config: %s: %w", key, err)
		}
	}
	var c Config
	if err := k.UnmarshalWithConf("", &c, koanf.UnmarshalConf{Tag: "koanf"}); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// unknownKeys returns those of a config file's keys that are no setting,
// so a typo in the file stops Herald as one in a HERALD_* variable does.
// Keys are case-sensitive (one in another case would be ignored), so such
// a key is named with the spelling meant.
func unknownKeys(fk *koanf.Koanf) []string {
	known := make(map[string]bool)
	sections := make(map[string]bool) // for a section left empty (its keys commented out)
	folded := make(map[string]string)
	for _, k := range Keys() {
		known[k], folded[strings.ToLower(k)] = true, k
		for i, c := range k {
			if c == '.' {
				sections[k[:i]] = true
			}
		}
	}
	var out []string
	for _, k := range fk.Keys() {
		switch meant, ok := folded[strings.ToLower(k)]; {
		case known[k], sections[k] && emptyValue(fk.Get(k)):
		case ok:
			out = append(out, k+" (did you mean "+meant+"?)")
		default:
			out = append(out, k)
		}
	}
	return out
}

// emptyValue reports whether a section's value in a file is empty: null or
// {}.
func emptyValue(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case map[string]any:
		return len(v) == 0
	}
	return false
}

// redisDB reports whether a redis:// URL's path names a database: none, or
// a number.
func redisDB(path string) bool {
	db := strings.TrimPrefix(path, "/")
	n, err := strconv.Atoi(db)
	return db == "" || (err == nil && n >= 0)
}

// notSetting reports whether a HERALD_ variable is one that is not a
// setting: the config file's path, and what the CLI's client commands
// (herald token, dlq, bench) and the test suite read. Such variables are
// often exported in the shell herald serve starts from, as the README's
// walkthrough does with HERALD_TOKEN.
func notSetting(name string) bool {
	switch name {
	case "HERALD_CONFIG", "HERALD_TOKEN", "HERALD_SERVER", "HERALD_TEST_POSTGRES":
		return true
	}
	return false
}

// Validate checks every setting and reports all problems at once.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("config: "+format, args...)) }
	if c.DataDir == "" {
		bad("dataDir must not be empty")
	}
	for key, addr := range map[string]string{"http.addr": c.HTTP.Addr, "kafka.addr": c.Kafka.Addr} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			bad("%s %q is not host:port", key, addr)
		}
	}
	for _, r := range c.Roles {
		if !slices.Contains(AllRoles, r) {
			bad("roles: unknown role %q (use %s)", r, strings.Join(AllRoles, ", "))
		}
	}
	if len(c.Roles) == 0 {
		bad("roles must name at least one of %s", strings.Join(AllRoles, ", "))
	}
	switch c.Store.Driver {
	case "sqlite":
		// store.dsn is the SQLite file's path; a PostgreSQL DSN here would
		// quietly become a local file of that name.
		if d := strings.ToLower(c.Store.DSN); strings.HasPrefix(d, "postgres://") || strings.HasPrefix(d, "postgresql://") ||
			(strings.Contains(d, "host=") && strings.Contains(d, "dbname=")) {
			bad("store.dsn is a PostgreSQL DSN but store.driver is sqlite: set store.driver=postgres (HERALD_STORE_DRIVER=postgres)")
		}
	case "postgres":
		if c.Store.DSN == "" {
			bad("store.dsn is required with store.driver postgres")
		}
	default:
		bad("store.driver must be sqlite or postgres, not %q", c.Store.Driver)
	}
	switch c.Kafka.SASL.Mechanism {
	case "plain", "scram-sha-256", "scram-sha-512":
		if c.Kafka.SASL.Username == "" || c.Kafka.SASL.Password == "" {
			bad("kafka.sasl.mechanism %s needs kafka.sasl.username and kafka.sasl.password", c.Kafka.SASL.Mechanism)
		}
		if len(c.Kafka.Brokers) == 0 {
			bad("kafka.sasl is for a Kafka cluster (kafka.brokers); the embedded broker takes no SASL")
		}
	case "aws-msk-iam":
		if len(c.Kafka.Brokers) == 0 {
			bad("kafka.sasl is for a Kafka cluster (kafka.brokers); the embedded broker takes no SASL")
		}
	case "":
	default:
		bad("kafka.sasl.mechanism must be plain, scram-sha-256, scram-sha-512 or aws-msk-iam, not %q", c.Kafka.SASL.Mechanism)
	}
	if c.Kafka.SessionTimeout < time.Second {
		bad("kafka.sessionTimeout must be at least 1s")
	}
	if c.Kafka.RebalanceTimeout < time.Second {
		bad("kafka.rebalanceTimeout must be at least 1s")
	}
	if c.Kafka.Partitions < 1 || c.Kafka.Partitions > 1024 {
		bad("kafka.partitions must be between 1 and 1024, not %d", c.Kafka.Partitions)
	}
	if c.Kafka.Retention < time.Hour {
		bad("kafka.retention must be at least 1h, not %s", c.Kafka.Retention)
	}
	if longest := c.Retry.Longest(); len(c.Kafka.Brokers) == 0 && longest >= c.Kafka.Retention {
		bad("kafka.retention (%s) must be longer than every retry delay (%s): a retry waits on its delay topic", c.Kafka.Retention, longest)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level must be debug, info, warn or error, not %q", c.Log.Level)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		bad("log.format must be text or json, not %q", c.Log.Format)
	}
	switch c.Log.Requests {
	case "all", "errors", "none":
	default:
		bad("log.requests must be all, errors or none, not %q", c.Log.Requests)
	}
	if _, err := c.Routes.Map(); err != nil {
		errs = append(errs, err)
	}
	if c.Retry.MaxAttempts < 1 || c.Retry.MaxAttempts > 100 {
		bad("retry.maxAttempts must be between 1 and 100, not %d", c.Retry.MaxAttempts)
	}
	if len(c.Retry.Delays) == 0 || len(c.Retry.Delays) > 16 {
		bad("retry.delays must list 1 to 16 durations")
	}
	for _, d := range c.Retry.Delays {
		if d <= 0 {
			bad("retry.delays must be positive durations, not %s", d)
		}
	}
	if c.Tracing.SampleRatio < 0 || c.Tracing.SampleRatio > 1 {
		bad("tracing.sampleRatio must be between 0 and 1")
	}
	if c.Tracing.Endpoint != "" {
		if _, err := tracing.ExportURL(c.Tracing.Endpoint); err != nil {
			bad("%s", err.Error())
		}
	}
	if c.SelfAlert.Target != "" {
		if _, err := herald.ParseTarget(c.SelfAlert.Target); err != nil {
			bad("selfAlert.target: %s", herald.ErrorMessage(err))
		}
		if c.SelfAlert.Interval <= 0 || c.SelfAlert.Floor <= 0 {
			bad("selfAlert.interval and selfAlert.floor must be positive")
		}
		if c.SelfAlert.MaxLag < 1 {
			bad("selfAlert.maxLag must be at least 1 record, not %d", c.SelfAlert.MaxLag)
		}
		if c.SelfAlert.MaxFailureRatio <= 0 || c.SelfAlert.MaxFailureRatio > 1 {
			bad("selfAlert.maxFailureRatio is a share between 0 and 1 (0.05 for 5%%), not %g", c.SelfAlert.MaxFailureRatio)
		}
		if c.SelfAlert.MinAttempts < 1 {
			bad("selfAlert.minAttempts must be at least 1, not %d", c.SelfAlert.MinAttempts)
		}
	}
	if t := c.Auth.AdminToken; t != "" && (len(t) < 20 || strings.ContainsAny(t, " \t\r\n")) {
		bad("auth.adminToken (HERALD_ADMIN_TOKEN) must be at least 20 characters without spaces: it is an admin token " +
			"(openssl rand -base64 32 makes one)")
	}
	if a := c.Redis.Addr; strings.Contains(a, "://") {
		// A URL only with "://": "redis:6379" is a host named redis.
		u, err := url.Parse(a)
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" ||
			!redisDB(u.Path) {
			bad("redis.addr %s must be redis://[user:password@]host:port[/db] (rediss:// for TLS), with a "+
				"password that has no / # ? %% in it (or give it as redis.password)", c.Redis.Redacted())
		}
	} else if a != "" {
		if _, _, err := net.SplitHostPort(a); err != nil {
			bad("redis.addr must be host:port or a redis:// or rediss:// URL, not %q", a)
		}
	}
	if (c.HTTP.TLSCert == "") != (c.HTTP.TLSKey == "") {
		bad("http.tlsCert and http.tlsKey must be set together")
	}
	if c.HTTP.ReadHeaderTimeout <= 0 || c.HTTP.ReadTimeout <= 0 {
		bad("http.readHeaderTimeout and http.readTimeout must be positive")
	}
	if c.HTTP.DrainDelay < 0 {
		bad("http.drainDelay must be 0 or more, not %s", c.HTTP.DrainDelay)
	}
	if c.Auth.Disabled {
		host, _, _ := net.SplitHostPort(c.HTTP.Addr)
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			bad("auth.disabled is allowed only when http.addr is a loopback address, not %q", c.HTTP.Addr)
		}
	}
	if _, _, err := c.Policy(); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.Secrets.KeyBytes(); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.Secrets.PreviousKeyBytes(); err != nil {
		errs = append(errs, err)
	}
	if len(c.Secrets.PreviousKeys) > 0 && c.Secrets.Key == "" {
		bad("secrets.previousKeys needs secrets.key: the current key, which encrypts (previous keys only decrypt)")
	}
	if c.Auth.Rate < 0 || c.Auth.Burst < 0 {
		bad("auth.rate and auth.burst must not be negative")
	}
	if c.Breaker.Failures < 0 {
		bad("breaker.failures must not be negative")
	}
	for _, ch := range herald.Channels {
		l := c.Limits.For(ch)
		if l.Rate < 0 || l.PerEndpoint < 0 || l.Burst < 0 || l.Concurrency < 0 {
			bad("limits.%s must not be negative", ch)
		}
	}
	if c.Deliver.RecipientConcurrency < 0 {
		bad("deliver.recipientConcurrency must be 0 (automatic) or more, not %d", c.Deliver.RecipientConcurrency)
	}
	if c.Alertmanager.MaxAlerts < 1 || c.Alertmanager.MaxAlerts > 100000 {
		bad("alertmanager.maxAlerts must be between 1 and 100000, not %d", c.Alertmanager.MaxAlerts)
	}
	if c.Events.MaxBatch < 1 || c.Events.MaxBatch > 10000 {
		bad("events.maxBatch must be between 1 and 10000, not %d", c.Events.MaxBatch)
	}
	if c.Logs.MaxBatch < 1 || c.Logs.MaxBatch > 1000000 {
		bad("logs.maxBatch must be between 1 and 1000000, not %d", c.Logs.MaxBatch)
	}
	if c.Logs.MaxBodyBytes < 1024 || c.Logs.MaxBodyBytes > 1<<30 {
		bad("logs.maxBodyBytes must be between 1024 and 1073741824, not %d", c.Logs.MaxBodyBytes)
	}
	if c.Logs.Retention < time.Second {
		bad("logs.retention must be at least 1s, not %s", c.Logs.Retention)
	}
	if r := c.Alerts.Retention; r < 0 {
		bad("alerts.retention must be 0 (keep every alert) or a positive duration, not %s", r)
	} else if floor, why := alertsRetentionFloor(c); r > 0 && r < floor {
		bad("alerts.retention must be 0 (keep every alert) or at least %s (%s), not %s", floor, why, r)
	}
	if c.GC.MemoryMB < 0 || c.GC.MemoryMB > 1<<30 {
		bad("gc.memoryMB must be between 0 and %d (MiB), not %d", 1<<30, c.GC.MemoryMB)
	}
	if c.Fanout.Linger < 0 || c.Fanout.Linger > time.Second {
		bad("fanout.linger must be between 0 and 1s, not %s", c.Fanout.Linger)
	}
	if c.Deliver.Concurrency < 1 {
		bad("deliver.concurrency must be at least 1")
	}
	if c.Store.ResolveCacheTTL < 0 {
		bad("store.resolveCacheTTL must not be negative (0 turns the cache off)")
	}
	if c.Store.CommitLinger < 0 || c.Store.CommitLinger > time.Second {
		bad("store.commitLinger must be between 0 and 1s, not %s", c.Store.CommitLinger)
	}
	for key, d := range map[string]time.Duration{"shutdownTimeout": c.ShutdownTimeout, "deliver.timeout": c.Deliver.Timeout,
		"webhook.timeout": c.Webhook.Timeout, "slack.timeout": c.Slack.Timeout, "email.timeout": c.Email.Timeout,
		"sms.timeout": c.SMS.Timeout, "breaker.openTimeout": c.Breaker.OpenTimeout,
		"idempotency.window": c.Idempotency.Window, "cache.userTTL": c.Cache.UserTTL, "cache.sentTTL": c.Cache.SentTTL,
		"rules.reloadInterval": c.Rules.ReloadInterval} {
		if d <= 0 {
			bad("%s must be a positive duration", key)
		}
	}
	switch c.Email.TLS {
	case "none", "opportunistic", "starttls", "tls":
	default:
		bad("email.tls must be none, opportunistic, starttls or tls, not %q", c.Email.TLS)
	}
	if c.Email.Host != "" && c.Email.From == "" {
		bad("email.from is required when email.host is set")
	}
	if c.SMS.AccountSID != "" && (c.SMS.AuthToken == "" || c.SMS.From == "") {
		bad("sms.authToken and sms.from are required when sms.accountSid is set")
	}
	return errors.Join(errs...)
}

// AllRoles are the parts of Herald a process can run.
var AllRoles = []string{"api", "fanout", "deliver", "retry", "dlq", "logs"}

// Has reports whether this process runs role r.
func (c *Config) Has(r string) bool { return slices.Contains(c.Roles, r) }

// Map returns the routes as severity → channels, checking every name.
func (r Routes) Map() (map[herald.Severity][]herald.Channel, error) {
	out := make(map[herald.Severity][]herald.Channel)
	for sev, names := range map[herald.Severity][]string{herald.SeverityInfo: r.Info, herald.SeverityWarning: r.Warning,
		herald.SeverityError: r.Error, herald.SeverityCritical: r.Critical} {
		for _, n := range names {
			ch, err := herald.ParseChannel(strings.TrimSpace(n))
			if err != nil {
				return nil, fmt.Errorf("config: routes.%s: %w", sev, err)
			}
			out[sev] = append(out[sev], ch)
		}
	}
	return out, nil
}

// envAliases are short names kept for variables users type often.
var envAliases = map[string]string{"HERALD_ADMIN_TOKEN": "auth.adminToken"}

// EnvKeys maps every HERALD_* variable name to its config key.
func EnvKeys() map[string]string {
	out := make(map[string]string)
	walk(reflect.TypeFor[Config](), "", func(key string, _ reflect.Type) { out[EnvName(key)] = key })
	return out
}

// Keys lists every config key in declaration order.
func Keys() []string {
	var out []string
	walk(reflect.TypeFor[Config](), "", func(key string, _ reflect.Type) { out = append(out, key) })
	return out
}

func splitList(v string) []string {
	var out []string
	for part := range strings.SplitSeq(v, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

func walk(t reflect.Type, prefix string, fn func(key string, t reflect.Type)) {
	for f := range t.Fields() {
		key := prefix + f.Tag.Get("koanf")
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[time.Duration]() {
			walk(f.Type, key+".", fn)
			continue
		}
		fn(key, f.Type)
	}
}

// EnvName returns the environment variable for a config key:
// "retry.maxAttempts" → "HERALD_RETRY_MAX_ATTEMPTS".
func EnvName(key string) string {
	var b strings.Builder
	b.WriteString("HERALD")
	for part := range strings.SplitSeq(key, ".") {
		b.WriteByte('_')
		rs := []rune(part)
		for i, r := range rs {
			if unicode.IsUpper(r) && i > 0 && (unicode.IsLower(rs[i-1]) || i+1 < len(rs) && unicode.IsLower(rs[i+1])) {
				b.WriteByte('_')
			}
			b.WriteRune(unicode.ToUpper(r))
		}
	}
	return b.String()
}

package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"
)

func TestEnvName(t *testing.T) {
	for key, want := range map[string]string{
		"dataDir":                  "HERALD_DATA_DIR",
		"http.addr":                "HERALD_HTTP_ADDR",
		"kafka.addr":               "HERALD_KAFKA_ADDR",
		"retry.maxAttempts":        "HERALD_RETRY_MAX_ATTEMPTS",
		"retry.delays":             "HERALD_RETRY_DELAYS",
		"slack.apiUrl":             "HERALD_SLACK_API_URL",
		"sms.accountSid":           "HERALD_SMS_ACCOUNT_SID",
		"shutdownTimeout":          "HERALD_SHUTDOWN_TIMEOUT",
		"limits.slack.perEndpoint": "HERALD_LIMITS_SLACK_PER_ENDPOINT",
		"breaker.openTimeout":      "HERALD_BREAKER_OPEN_TIMEOUT",
	} {
		if got := EnvName(key); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", key, got, want)
		}
	}
}

func TestDefaults(t *testing.T) {
	c, err := Load("", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "./herald-data" || c.HTTP.Addr != "127.0.0.1:8080" || c.Retry.MaxAttempts != 5 ||
		!slices.Equal(c.Retry.Delays, []time.Duration{time.Second, 10 * time.Second, time.Minute, 5 * time.Minute}) ||
		c.Limits.Slack.PerEndpoint != 1 || c.Idempotency.Window != 24*time.Hour || c.Alertmanager.MaxAlerts != 1000 ||
		c.Deliver.Concurrency != 64 || c.Limits.Email.Concurrency != 32 || c.Limits.Webhook.Concurrency != 0 ||
		c.Fanout.Linger != 2*time.Millisecond {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestPrecedence(t *testing.T) {
	path := filepath.Join(t.TempDir(), "herald.yaml")
	yaml := "dataDir: /from/file\nhttp:\n  addr: 127.0.0.1:1111\nretry:\n  maxAttempts: 7\n  delays: [2s]\nroutes:\n  critical: [sms, email]\n"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"HERALD_HTTP_ADDR=127.0.0.1:2222", "HERALD_RETRY_DELAYS=100ms,300ms", "PATH=/bin"}
	c, err := Load(path, env, map[string]any{"dataDir": "/from/flag"})
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "/from/flag" {
		t.Errorf("dataDir = %q, want the flag's", c.DataDir)
	}
	if c.HTTP.Addr != "127.0.0.1:2222" {
		t.Errorf("http.addr = %q, want the env's", c.HTTP.Addr)
	}
	if c.Retry.MaxAttempts != 7 {
		t.Errorf("retry.maxAttempts = %d, want the file's", c.Retry.MaxAttempts)
	}
	if !slices.Equal(c.Retry.Delays, []time.Duration{100 * time.Millisecond, 300 * time.Millisecond}) {
		t.Errorf("retry.delays = %v", c.Retry.Delays)
	}
	if !slices.Equal(c.Routes.Critical, []string{"sms", "email"}) {
		t.Errorf("routes.critical = %v", c.Routes.Critical)
	}
}

func TestInvalid(t *testing.T) {
	for _, tc := range []struct {
		env  string
		want string
	}{
		{"HERALD_RETRY_MAX_ATTEMPTS=0", "retry.maxAttempts"},
		{"HERALD_LOG_REQUESTS=some", "log.requests must be all, errors or none"},
		{"HERALD_FANOUT_LINGER=2s", "fanout.linger must be between 0 and 1s"},
		{"HERALD_GC_MEMORY_MB=-1", "gc.memoryMB must be between 0 and"},
		{"HERALD_DELIVER_RECIPIENT_CONCURRENCY=-1", "deliver.recipientConcurrency must be 0 (automatic) or more, not -1"},
		{"HERALD_HTTP_ADDR=nonsense", "http.addr"},
		{"HERALD_ROUTES_CRITICAL=pager", "routes.critical"},
		{"HERALD_EMAIL_TLS=maybe", "email.tls"},
		{"HERALD_ALERTMANAGER_MAX_ALERTS=0", "alertmanager.maxAlerts"},
		{"HERALD_LIMITS_SMS_CONCURRENCY=-1", "limits.sms must not be negative"},
		{"HERALD_DATADIR=/x", "unknown environment variables HERALD_DATADIR"},
		{"HERALD_RETRY_DELAYS=soon", "retry.delays"},
		{"HERALD_KAFKA_RETENTION=10m", "kafka.retention must be at least 1h"},
		{"HERALD_ALERTS_RETENTION=1h", "alerts.retention must be 0 (keep every alert) or at least 168h0m0s (kafka.retention), not 1h0m0s"},
		{"HERALD_ALERTS_RETENTION=100h HERALD_KAFKA_BROKERS=k:9092 HERALD_REDIS_ADDR=127.0.0.1:6379", "at least 168h0m0s (cache.sentTTL)"},
		{"HERALD_ALERTS_RETENTION=30h HERALD_KAFKA_BROKERS=k:9092 HERALD_RETRY_DELAYS=1s,40h", "at least 48h0m0s (the longest of retry.delays, plus its 20% jitter)"},
		{"HERALD_ALERTS_RETENTION=-1s", "alerts.retention must be 0"},
		{"HERALD_ALERTS_RETENTION=30h HERALD_KAFKA_RETENTION=48h", "at least 48h0m0s (kafka.retention)"},
		{"HERALD_ALERTS_RETENTION=2h HERALD_CACHE_SENT_TTL=1h HERALD_KAFKA_BROKERS=k:9092", "at least 24h0m0s (the longest log-rule window, 24h)"},
		{"HERALD_ALERTS_RETENTION=200h HERALD_IDEMPOTENCY_WINDOW=300h", "at least 300h0m0s (idempotency.window)"},
		{"HERALD_RETRY_DELAYS=1s,200h", "kafka.retention (168h0m0s) must be longer than every retry delay (200h0m0s)"},
		{"HERALD_SECRETS_KEY=c2hvcnQ=", "secrets.key must be 32 bytes"},
		{"HERALD_SECRETS_PREVIOUS_KEYS=" + testKeyA, "secrets.previousKeys needs secrets.key"},
		{"HERALD_STORE_DSN=postgres://u:pw@127.0.0.1:5432/herald", "store.dsn is a PostgreSQL DSN but store.driver is sqlite"},
		{"HERALD_STORE_DSN=postgresql://db/herald", "set store.driver=postgres"},
		{"HERALD_REDIS_ADDR=redis://:hunter2@/x", "redis.addr redis://xxxxx@/x must be redis://[user:password@]host:port[/db]"},
		{"HERALD_REDIS_ADDR=nonsense", "redis.addr must be host:port or a redis:// or rediss:// URL"},
		{"HERALD_REDIS_ADDR=redis://u:pa/ss@host:6379", "redis.addr redis://xxxxx@host:6379 must be"},
		{"HERALD_KAFKA_BROKERS=k:9092 HERALD_KAFKA_SASL_MECHANISM=plain", "kafka.sasl.mechanism plain needs kafka.sasl.username and kafka.sasl.password"},
		{"HERALD_KAFKA_SASL_MECHANISM=scram-sha-256 HERALD_KAFKA_SASL_USERNAME=u HERALD_KAFKA_SASL_PASSWORD=p", "the embedded broker takes no SASL"},
		{"HERALD_ADMIN_TOKEN=a", "auth.adminToken (HERALD_ADMIN_TOKEN) must be at least 20 characters"},
		{"HERALD_TRACING_ENDPOINT=127.0.0.1:4318", "tracing.endpoint \"127.0.0.1:4318\" must be an http:// or https:// URL"},
		{"HERALD_TRACING_ENDPOINT=ftp://collector:4318", "must be an http:// or https:// URL"},
		{"HERALD_SELF_ALERT_TARGET=@@ops HERALD_SELF_ALERT_MAX_FAILURE_RATIO=5", "selfAlert.maxFailureRatio is a share between 0 and 1 (0.05 for 5%), not 5"},
		{"HERALD_SELF_ALERT_TARGET=@@ops HERALD_SELF_ALERT_MAX_LAG=-1", "selfAlert.maxLag must be at least 1 record, not -1"},
		{"HERALD_SELF_ALERT_TARGET=@@ops HERALD_SELF_ALERT_MIN_ATTEMPTS=0", "selfAlert.minAttempts must be at least 1"},
	} {
		_, err := Load("", strings.Fields(tc.env), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want mention of %q", tc.env, err, tc.want)
		}
	}
}

// TestAlertsRetention: a retention at the floor loads; 0 keeps every alert.
func TestAlertsRetention(t *testing.T) {
	for _, env := range []string{"HERALD_ALERTS_RETENTION=168h", "HERALD_ALERTS_RETENTION=0s",
		"HERALD_ALERTS_RETENTION=24h HERALD_CACHE_SENT_TTL=1h HERALD_KAFKA_BROKERS=k:9092"} {
		if _, err := Load("", strings.Fields(env), nil); err != nil {
			t.Errorf("%s: %v", env, err)
		}
	}
}

// TestRedisAddr checks the forms redis.addr takes: host:port (a host may be
// named redis), or a URL, whose credentials are never shown.
func TestRedisAddr(t *testing.T) {
	for _, a := range []string{"redis:6379", "rediss:6380", "127.0.0.1:6379", "redis://:pw@redis:6379/2", "rediss://u:pw@cache.example:6380"} {
		if _, err := Load("", []string{"HERALD_REDIS_ADDR=" + a}, nil); err != nil {
			t.Errorf("%s: %v", a, err)
		}
	}
	for a, want := range map[string]string{
		"redis://:pw@redis:6379/2": "redis://xxxxx@redis:6379/2",
		"redis://u:pa/ss#x@h:6379": "redis://xxxxx@h:6379",
		"redis:6379":               "redis:6379",
	} {
		if got := (Redis{Addr: a}).Redacted(); got != want {
			t.Errorf("Redacted(%q) = %q, want %q", a, got, want)
		}
	}
}

// TestClientVariables checks the variables the CLI's client commands read,
// exported in the shell as the README's walkthrough does, do not stop
// herald serve from starting.
func TestClientVariables(t *testing.T) {
	if _, err := Load("", []string{"HERALD_TOKEN=hrl_x", "HERALD_SERVER=http://127.0.0.1:8080", "HERALD_CONFIG="}, nil); err != nil {
		t.Fatal(err)
	}
}

const (
	testKeyA = "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="
	testKeyB = "QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI="
	testKeyC = "Q0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0M="
)

func TestSecretsKeys(t *testing.T) {
	c, err := Load("", []string{"HERALD_SECRETS_KEY=" + testKeyC, "HERALD_SECRETS_PREVIOUS_KEYS=" + testKeyB + ", " + testKeyA}, nil)
	if err != nil {
		t.Fatal(err)
	}
	prev, err := c.Secrets.PreviousKeyBytes()
	if err != nil || len(prev) != 2 || string(prev[0]) != strings.Repeat("B", 32) || string(prev[1]) != strings.Repeat("A", 32) {
		t.Fatalf("previous keys from the environment = %q, %v", prev, err)
	}
	path := filepath.Join(t.TempDir(), "herald.yaml")
	yaml := "secrets:\n  key: " + testKeyB + "\n  previousKeys:\n    - " + testKeyA + "\n"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err = Load(path, nil, nil); err != nil || len(c.Secrets.PreviousKeys) != 1 {
		t.Fatalf("previous keys from a file = %v, %v", c, err)
	}
	_, err = Load("", []string{"HERALD_SECRETS_KEY=" + testKeyA, "HERALD_SECRETS_PREVIOUS_KEYS=" + testKeyB + ",bm9wZQ=="}, nil)
	if err == nil || !strings.Contains(err.Error(), "secrets.previousKeys[1]") {
		t.Fatalf("a bad previous key: %v", err)
	}
}

// TestFileUnknownKeys checks a typo in the config file stops Herald, naming
// the key, as a typo in a HERALD_* variable does; a key in another case
// (which would be ignored) is named with the spelling meant.
func TestFileUnknownKeys(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("route:\n  critical: [sms]\nretry: {maxAtempts: 1, delays: [1s]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(bad, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "unknown keys") || !strings.Contains(err.Error(), "retry.maxAtempts") ||
		!strings.Contains(err.Error(), "route.critical") {
		t.Fatalf("err = %v, want the unknown keys route.critical and retry.maxAtempts named", err)
	}
	empty := filepath.Join(dir, "empty.yaml")
	if err := os.WriteFile(empty, []byte("tracing:\n  # endpoint: http://127.0.0.1:4318\nredis: {}\nretry:\n  maxAttempts: 4\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := Load(empty, nil, nil); err != nil || c.Retry.MaxAttempts != 4 {
		t.Fatalf("sections left empty: %v", err)
	}
	cased := filepath.Join(dir, "cased.yaml")
	if err := os.WriteFile(cased, []byte("retry: {maxattempts: 4}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(cased, nil, nil); err == nil || !strings.Contains(err.Error(), "retry.maxattempts (did you mean retry.maxAttempts?)") {
		t.Fatalf("a key in another case: err = %v", err)
	}
}

// TestREADMEConfigKeys checks every key of the README's example config file
// is a setting.
func TestREADMEConfigKeys(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var block string
	for part := range strings.SplitSeq(string(readme), "```yaml\n") {
		if strings.HasPrefix(part, "dataDir:") {
			block, _, _ = strings.Cut(part, "```")
		}
	}
	if block == "" {
		t.Fatal("no yaml block starting with dataDir: in README.md")
	}
	path := filepath.Join(t.TempDir(), "readme.yaml")
	if err := os.WriteFile(path, []byte(block), 0o600); err != nil {
		t.Fatal(err)
	}
	fk := koanf.New(".")
	if err := fk.Load(file.Provider(path), yaml.Parser()); err != nil {
		t.Fatalf("the README's config file does not parse: %v", err)
	}
	if len(fk.Keys()) < 20 {
		t.Fatalf("the README's config file has %d keys; the block found is not it", len(fk.Keys()))
	}
	if unknown := unknownKeys(fk); len(unknown) > 0 {
		t.Fatalf("the README's config file has unknown keys %v", unknown)
	}
}

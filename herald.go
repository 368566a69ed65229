// Package herald holds the domain types shared by every part of Herald: alerts,
// severities, targets, deliveries, users, groups, and the error type that every
// layer returns and the HTTP layer maps to status codes in one place.
package herald

import (
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Severity orders alerts from least to most urgent.
type Severity string

// Severities, from least to most urgent. Debug is below Info and exists so log
// levels (DEBUG, TRACE) map onto the same scale.
const (
	SeverityDebug    Severity = "debug"
	SeverityInfo     Severity = "info"
	SeverityWarning  Severity = "warning"
	SeverityError    Severity = "error"
	SeverityCritical Severity = "critical"
)

var severityAliases = map[string]Severity{
	"trace":    SeverityDebug,
	"debug":    SeverityDebug,
	"info":     SeverityInfo,
	"normal":   SeverityInfo,
	"warning":  SeverityWarning,
	"warn":     SeverityWarning,
	"error":    SeverityError,
	"critical": SeverityCritical,
	"fatal":    SeverityCritical,
}

// ParseSeverity accepts a severity or one of its aliases (normal, warn, fatal,
// DEBUG, TRACE), case-insensitively, and returns the canonical severity.
func ParseSeverity(s string) (Severity, error) {
	if sev, ok := severityAliases[strings.ToLower(strings.TrimSpace(s))]; ok {
		return sev, nil
	}
	return "", Errorf(EINVALID, "unknown severity %q: use info, warning, error or critical (aliases: normal, warn, fatal, debug, trace)", s)
}

// Rank orders severities: debug 0, info 1, warning 2, error 3, critical 4.
func (s Severity) Rank() int {
	switch s {
	case SeverityDebug:
		return 0
	case SeverityInfo:
		return 1
	case SeverityWarning:
		return 2
	case SeverityError:
		return 3
	case SeverityCritical:
		return 4
	}
	return -1
}

// Channel names a way of reaching a person.
type Channel string

// The channels Herald delivers over.
const (
	ChannelWebhook Channel = "webhook"
	ChannelSlack   Channel = "slack"
	ChannelEmail   Channel = "email"
	ChannelSMS     Channel = "sms"
)

// Channels lists every channel in a stable order.
var Channels = []Channel{ChannelWebhook, ChannelSlack, ChannelEmail, ChannelSMS}

// ParseChannel returns the channel named s.
func ParseChannel(s string) (Channel, error) {
	for _, c := range Channels {
		if string(c) == s {
			return c, nil
		}
	}
	return "", Errorf(EINVALID, "unknown channel %q: use webhook, slack, email or sms", s)
}

// NamePattern is what user and group names look like: they are addressed as
// @name and @@name in alert targets, so they carry no spaces or '@'.
const NamePattern = `^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`

var nameRE = regexp.MustCompile(NamePattern)

// ValidName reports whether s can name a user or a group.
func ValidName(s string) bool { return nameRE.MatchString(s) }

// Target is one entry of an alert's target list: a user (@name) or a group
// (@@name).
type Target struct {
	Name  string
	Group bool
}

// ParseTarget parses "@alice" or "@@oncall".
func ParseTarget(s string) (Target, error) {
	var t Target
	switch {
	case strings.HasPrefix(s, "@@"):
		t = Target{Name: s[2:], Group: true}
	case strings.HasPrefix(s, "@"):
		t = Target{Name: s[1:]}
	default:
		return t, Errorf(EINVALID, "target %q must be @user or @@group", s)
	}
	if !ValidName(t.Name) {
		return t, Errorf(EINVALID, "target %q: name must match %s", s, NamePattern)
	}
	return t, nil
}

// String returns the target as written in an alert.
func (t Target) String() string {
	if t.Group {
		return "@@" + t.Name
	}
	return "@" + t.Name
}

// SlackContact is how a user is reached on Slack: an incoming-webhook URL, or a
// channel (or member id) posted to with chat.postMessage using Token, or the
// globally configured bot token when Token is empty.
type SlackContact struct {
	WebhookURL string `json:"webhookUrl,omitempty"`
	Channel    string `json:"channel,omitempty"`
	Token      string `json:"token,omitempty"`
}

// Empty reports whether the contact names no way to reach Slack.
func (s SlackContact) Empty() bool { return s.WebhookURL == "" && s.Channel == "" }

// User is a person (or a system) that can be told about alerts. Its JSON
// form holds secrets (Slack token, webhook secret) and is for caches, never
// for API responses.
type User struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Email      string `json:"email,omitempty"`
	Phone      string `json:"phone,omitempty"`
	WebhookURL string `json:"webhookUrl,omitempty"`
	// WebhookSecret, when set, signs this user's webhook requests instead
	// of the server's webhook.signingSecret.
	WebhookSecret string       `json:"webhookSecret,omitempty"`
	Slack         SlackContact `json:"slack,omitzero"`
	Department    string       `json:"department,omitempty"`
	CreatedAt     time.Time    `json:"createdAt"`
	UpdatedAt     time.Time    `json:"updatedAt"`
	// SecretErr is set when a stored secret (Slack token, webhook secret)
	// could not be decrypted — a missing or wrong secrets key: one
	// *SecretError per field, joined. Those fields are then empty; the
	// notifier that needs one fails permanently with this reason (see
	// UnreadableSecret) instead of sending unsigned or as someone else.
	SecretErr error `json:"-"`
}

// Stored secret fields of a user, as named by SecretError.
const (
	SecretSlackToken    = "slack.token"
	SecretWebhookSecret = "webhookSecret"
)

// SecretError says which stored secret of a user could not be decrypted.
type SecretError struct {
	Field string // SecretSlackToken or SecretWebhookSecret
	Err   error
}

func (e *SecretError) Error() string {
	return "the recipient's " + e.Field + " cannot be decrypted (secrets.key missing or wrong): " + e.Err.Error()
}

func (e *SecretError) Unwrap() error { return e.Err }

// UnreadableSecret returns why the user's stored secret field could not be
// decrypted, or nil when it could (or there is none).
func (u *User) UnreadableSecret(field string) error {
	if u.SecretErr == nil {
		return nil
	}
	errs := []error{u.SecretErr}
	if j, ok := u.SecretErr.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for _, err := range errs {
		if se, ok := err.(*SecretError); ok && se.Field == field {
			return se
		}
	}
	return nil
}

// Reaches reports whether the user has a contact for channel c.
func (u *User) Reaches(c Channel) bool {
	switch c {
	case ChannelWebhook:
		return u.WebhookURL != ""
	case ChannelSlack:
		return !u.Slack.Empty()
	case ChannelEmail:
		return u.Email != ""
	case ChannelSMS:
		return u.Phone != ""
	}
	return false
}

// Group is a named set of users, addressed as @@name.
type Group struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	CreatedAt   time.Time `json:"createdAt"`
}

// Alert is one accepted alert. It travels on the alerts topic as JSON and is
// stored by the fan-out stage.
type Alert struct {
	ID       string            `json:"id"`
	Severity Severity          `json:"severity"`
	Title    string            `json:"title,omitempty"`
	Message  string            `json:"message"`
	Source   string            `json:"source,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	Targets  []string          `json:"target"`
	Channels []Channel         `json:"channels,omitempty"`
	// Recipients are the user ids the targets resolved to when the alert was
	// accepted; the fan-out stage resolves Targets itself when this is empty
	// (records produced by other tools, and alerts to more people than a
	// record carries: api.Server.MaxRecordRecipients).
	Recipients []string `json:"recipients,omitempty"`
	// IdempotencyKey is the client's Idempotency-Key header, if any.
	IdempotencyKey string    `json:"idempotencyKey,omitempty"`
	CreatedAt      time.Time `json:"createdAt"`
}

// Stream returns the alert's stream key: a 64-bit FNV-1a hash, in hex, of
// its sorted labels, or of its sorted targets when it has no labels. Alerts
// of one stream — the same labels, so an alert and its resolution — are
// keyed alike on herald.alerts and marked alike on delivery records
// (bus.HeaderStream), so a recipient gets them one after another, in the
// order Herald accepted them (retries aside); other streams may overtake.
func (a *Alert) Stream() []byte {
	// The input is built with strconv rather than fmt (1-2% of the API's
	// CPU); its bytes, and so every stream key, are what
	// fmt.Fprintf(h, "%d:%s%d:%s", ...) wrote before.
	var buf []byte
	if len(a.Labels) > 0 {
		for _, k := range slices.Sorted(maps.Keys(a.Labels)) {
			// Lengths first, so no two label sets hash the same input.
			v := a.Labels[k]
			buf = strconv.AppendInt(buf, int64(len(k)), 10)
			buf = append(append(buf, ':'), k...)
			buf = strconv.AppendInt(buf, int64(len(v)), 10)
			buf = append(append(buf, ':'), v...)
		}
	} else {
		buf = append(buf, "targets"...)
		for _, t := range slices.Sorted(slices.Values(a.Targets)) {
			buf = strconv.AppendInt(buf, int64(len(t)), 10)
			buf = append(append(buf, ':'), t...)
		}
	}
	h := fnv.New64a()
	_, _ = h.Write(buf)
	var sum [8]byte
	return hex.AppendEncode(make([]byte, 0, 16), h.Sum(sum[:0]))
}

// AlertRecord is a stored alert with what became of it.
type AlertRecord struct {
	Alert
	// UserCount is how many distinct users the targets resolved to.
	UserCount int
	// Unreachable names the recipients who had no contact for any chosen
	// channel, so no delivery could be made for them.
	Unreachable []string
	// StoredAt is when the fan-out stage recorded the alert.
	StoredAt time.Time
	// FanningOut is true while the fan-out stage is still recording the
	// alert's deliveries: an alert with many recipients (a big group) is
	// recorded in parts, and Deliveries then holds the parts recorded so
	// far. It stays true if the fan-out was interrupted, until the alert's
	// record is handled again and the fan-out resumed.
	FanningOut bool
	Deliveries []*Delivery
}

// DeliveryStatus is where a delivery stands.
type DeliveryStatus string

// Delivery statuses: pending until the first attempt ends, failed while it will
// be retried, sent or dead at the end.
const (
	StatusPending DeliveryStatus = "pending"
	StatusSent    DeliveryStatus = "sent"
	StatusFailed  DeliveryStatus = "failed"
	StatusDead    DeliveryStatus = "dead"
)

// Final reports whether no more attempts will be made.
func (s DeliveryStatus) Final() bool { return s == StatusSent || s == StatusDead }

// Delivery is one (alert, recipient, channel) and what became of it.
type Delivery struct {
	ID            string         `json:"id"`
	AlertID       string         `json:"alertId"`
	RecipientID   string         `json:"recipientId"`
	Recipient     string         `json:"recipient"`
	Channel       Channel        `json:"channel"`
	Status        DeliveryStatus `json:"status"`
	Attempts      int            `json:"attempts"`
	LastError     string         `json:"lastError,omitempty"`
	CreatedAt     time.Time      `json:"createdAt"`
	UpdatedAt     time.Time      `json:"updatedAt"`
	SentAt        *time.Time     `json:"sentAt,omitempty"`
	NextAttemptAt *time.Time     `json:"nextAttemptAt,omitempty"`
	// DeadLetterID names the dead letter of a dead delivery.
	DeadLetterID string `json:"deadLetterId,omitempty"`
	// BudgetBase is the number of attempts made before the last replay; the
	// retry budget counts attempts beyond it.
	BudgetBase int `json:"-"`
}

// Attempt is one try at a delivery and how it ended.
type Attempt struct {
	Attempt int       `json:"attempt"`
	At      time.Time `json:"at"`
	// Error is empty for the attempt that succeeded.
	Error string `json:"error,omitempty"`
}

// Dead letter kinds.
const (
	// DeadDelivery is a delivery that failed permanently or ran out of
	// attempts.
	DeadDelivery = "delivery"
	// DeadRecord is a record that could not be decoded or processed.
	DeadRecord = "record"
)

// DeadLetter is a delivery or record Herald gave up on, with why.
type DeadLetter struct {
	ID          string
	Kind        string
	DeliveryID  string
	AlertID     string
	Channel     Channel
	RecipientID string
	Recipient   string
	Reason      string
	Attempts    int
	// Source is topic/partition/offset of the record that died.
	Source     string
	Key        []byte
	Payload    []byte
	CreatedAt  time.Time
	ReplayedAt *time.Time
	Replays    int
	// History lists every attempt of a dead delivery.
	History []Attempt
}

// DeliveryTask is the record the fan-out stage produces on a channel's
// deliveries topic for each delivery: everything the sender needs except the
// recipient's contact details, which it reads fresh from the directory (so
// secrets such as Slack tokens never travel through Kafka).
type DeliveryTask struct {
	DeliveryID  string            `json:"deliveryId"`
	AlertID     string            `json:"alertId"`
	RecipientID string            `json:"recipientId"`
	Recipient   string            `json:"recipient"`
	Channel     Channel           `json:"channel"`
	Severity    Severity          `json:"severity"`
	Title       string            `json:"title,omitempty"`
	Message     string            `json:"message"`
	Source      string            `json:"source,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	CreatedAt   time.Time         `json:"createdAt"`
	// Attempt is the number of attempts already made.
	Attempt int `json:"attempt"`
}

// Token scopes. admin allows everything; the others allow what they name.
const (
	ScopeIngest = "ingest" // post alerts (and events, logs)
	ScopeRead   = "read"   // query alerts, deliveries, dead letters, stats
	ScopeAdmin  = "admin"  // directory, dead-letter replay, tokens
)

// Token is an API token. Only a hash of its secret is stored; the secret is
// shown once, when the token is created.
type Token struct {
	ID    string
	Name  string
	Scope string
	// UserID binds the token to one user: it can read only what is theirs.
	UserID     string
	CreatedAt  time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
}

// Error codes. The HTTP layer maps each to one status code.
const (
	EINVALID      = "invalid"      // the caller sent something wrong (400/422)
	ENOTFOUND     = "not_found"    // the thing asked for does not exist (404)
	ECONFLICT     = "conflict"     // the request clashes with existing state (409)
	EUNAVAILABLE  = "unavailable"  // a dependency is down or shutting down (503)
	EUNAUTHORIZED = "unauthorized" // no valid credentials (401)
	EFORBIDDEN    = "forbidden"    // valid credentials, not allowed (403)
	ETOOMANY      = "too_many"     // rate limited (429)
	EINTERNAL     = "internal"     // a bug or an unexpected failure (500)
)

// Error is Herald's error type: a code for machines and a message for people.
// Messages are safe to show to API callers.
type Error struct {
	Code    string
	Message string
}

// Error implements error.
func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Rule sources: what kind of input a rule is evaluated against.
const (
	// RuleSourceEvent rules see domain events posted to /v1/events.
	RuleSourceEvent = "event"
	// RuleSourceS3 rules see S3 event notification records posted to
	// /v1/integrations/s3.
	RuleSourceS3 = "s3"
	// RuleSourceLog rules see log records (POST /v1/logs, OTLP), evaluated
	// by the logs role after each batch is stored.
	RuleSourceLog = "log"
)

// Rule turns matching events into alerts: when Match (an expression over
// the event) is true, an alert with the rendered Title and Message goes to
// Targets at Severity. Rules are kept in the store and compiled by package
// rules.
type Rule struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Source is RuleSourceEvent, RuleSourceS3 or RuleSourceLog.
	Source string `json:"source"`
	// Match is an expr-lang expression over the event that yields a bool.
	Match    string   `json:"match"`
	Targets  []string `json:"targets"`
	Severity Severity `json:"severity"`
	// Title and Message are Go text/template templates over the event.
	Title   string `json:"title,omitempty"`
	Message string `json:"message"`
	// DedupeKey, when set, is a template whose rendering replaces the event
	// id in the alert's idempotency key, so events that render the same key
	// notify once within the idempotency window.
	DedupeKey string `json:"dedupeKey,omitempty"`
	// Window (log rules only; 0 for none) makes matches with the same
	// dedupe key within one window-aligned interval of record time one
	// alert: the idempotency key carries floor(record time / Window).
	Window    time.Duration `json:"window,omitempty"`
	Enabled   bool          `json:"enabled"`
	CreatedAt time.Time     `json:"createdAt"`
	UpdatedAt time.Time     `json:"updatedAt"`
}

// Event is a domain event or an S3 object notification, as rules see it.
// Data is decoded JSON (maps, slices, strings, float64, bool, nil).
type Event struct {
	ID      string         `json:"id"`
	Type    string         `json:"type"`
	Source  string         `json:"source,omitempty"`
	Subject string         `json:"subject,omitempty"`
	Time    string         `json:"time,omitempty"`
	Data    map[string]any `json:"data"`
}

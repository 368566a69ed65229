package herald

import (
	"encoding/hex"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits on a log record. They bound what one record may cost the broker,
// the store and the search index; see LogRecord.Validate.
const (
	// MaxLogService is the longest service name, in bytes.
	MaxLogService = 128
	// MaxLogMessage is the longest message, in bytes.
	MaxLogMessage = 32 << 10
	// MaxLogAttributes is the most attributes a record may carry.
	MaxLogAttributes = 64
	// MaxLogAttributeKey is the longest attribute name, in bytes.
	MaxLogAttributeKey = 128
	// MaxLogAttributeValue is the longest attribute value, in bytes.
	MaxLogAttributeValue = 4096
	// DefaultLogLevel is the level of a record that names none.
	DefaultLogLevel = SeverityInfo
)

// Log record times must fall within these bounds (time is stored as Unix
// nanoseconds, which end in 2262).
var (
	minLogTime = time.Unix(0, 0).UTC()
	maxLogTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// LogRecord is one log line of a service: what Herald stores and indexes for
// search. It is the value of a record on the logs topic (JSON), keyed by
// Service.
type LogRecord struct {
	// ID identifies the record; given at accept (UUIDv7), so a redelivered
	// record is stored once.
	ID string `json:"id,omitempty"`
	// Time is when the line was logged (the receive time when the sender
	// gave none).
	Time time.Time `json:"time"`
	// Service names what logged it.
	Service string `json:"service"`
	// Level is a severity: debug (trace and debug), info, warning, error,
	// critical.
	Level Severity `json:"level"`
	// Message is the log line.
	Message string `json:"message"`
	// Attributes are string key/value pairs (at most MaxLogAttributes).
	Attributes map[string]string `json:"attributes,omitempty"`
	// TraceID (32 hex digits) and SpanID (16 hex digits) tie the line to a
	// trace; both optional.
	TraceID string `json:"traceId,omitempty"`
	SpanID  string `json:"spanId,omitempty"`
}

// FieldError says what is wrong with one field of a log record.
type FieldError struct {
	// Field is the field's name as it appears in the JSON form ("service",
	// "attributes.k").
	Field string
	// Message says what is wrong.
	Message string
	// Value is the offending value, when showing it helps (clipped).
	Value any
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// ParseLogLevel reads a log level: Herald's severities and their aliases
// (ParseSeverity), plus "" (DefaultLogLevel).
func ParseLogLevel(s string) (Severity, error) {
	if strings.TrimSpace(s) == "" {
		return DefaultLogLevel, nil
	}
	return ParseSeverity(s)
}

// Validate checks r against the limits, normalising what has one right form
// (trace and span ids lower-case). It returns the first problem as a
// *FieldError, or nil. A zero Time is valid (the receiver fills it).
func (r *LogRecord) Validate() error {
	switch {
	case strings.TrimSpace(r.Service) == "":
		return &FieldError{Field: "service", Message: "is required: name the service that logged the line"}
	case len(r.Service) > MaxLogService:
		return &FieldError{Field: "service", Message: fmt.Sprintf("is %d bytes; at most %d", len(r.Service), MaxLogService), Value: ClipLog(r.Service, 64)}
	case !printable(r.Service):
		return &FieldError{Field: "service", Message: "must be valid UTF-8 without control characters", Value: ClipLog(r.Service, 64)}
	}
	if r.Level.Rank() < 0 {
		return &FieldError{Field: "level", Message: fmt.Sprintf("unknown level %q: use debug, info, warning, error or critical (aliases: trace, normal, warn, fatal)", ClipLog(string(r.Level), 64)), Value: ClipLog(string(r.Level), 64)}
	}
	if len(r.Message) > MaxLogMessage {
		return &FieldError{Field: "message", Message: fmt.Sprintf("is %d bytes; at most %d", len(r.Message), MaxLogMessage)}
	}
	if !utf8.ValidString(r.Message) {
		return &FieldError{Field: "message", Message: "is not valid UTF-8"}
	}
	if strings.IndexByte(r.Message, 0) >= 0 {
		return &FieldError{Field: "message", Message: `contains a NUL character (\u0000), which cannot be stored`}
	}
	if !r.Time.IsZero() && (r.Time.Before(minLogTime) || !r.Time.Before(maxLogTime)) {
		return &FieldError{Field: "time", Message: "is out of range: give a time between 1970 and 2200", Value: r.Time.UTC().Format(time.RFC3339Nano)}
	}
	if len(r.Attributes) > MaxLogAttributes {
		return &FieldError{Field: "attributes", Message: fmt.Sprintf("has %d entries; at most %d", len(r.Attributes), MaxLogAttributes)}
	}
	for k, v := range r.Attributes {
		switch {
		case k == "" || len(k) > MaxLogAttributeKey:
			return &FieldError{Field: "attributes", Message: fmt.Sprintf("attribute names are 1-%d bytes", MaxLogAttributeKey), Value: ClipLog(k, 64)}
		case !printable(k):
			return &FieldError{Field: "attributes", Message: "attribute names must be valid UTF-8 without control characters", Value: ClipLog(k, 64)}
		case len(v) > MaxLogAttributeValue:
			return &FieldError{Field: "attributes." + k, Message: fmt.Sprintf("is %d bytes; at most %d", len(v), MaxLogAttributeValue)}
		case !utf8.ValidString(v):
			return &FieldError{Field: "attributes." + k, Message: "is not valid UTF-8"}
		case strings.IndexByte(v, 0) >= 0:
			return &FieldError{Field: "attributes." + k, Message: `contains a NUL character (\u0000), which cannot be stored`}
		}
	}
	traceID, err := hexID(r.TraceID, 16)
	if err != nil {
		return &FieldError{Field: "traceId", Message: "must be 32 hex digits", Value: ClipLog(r.TraceID, 64)}
	}
	spanID, err := hexID(r.SpanID, 8)
	if err != nil {
		return &FieldError{Field: "spanId", Message: "must be 16 hex digits", Value: ClipLog(r.SpanID, 64)}
	}
	r.TraceID, r.SpanID = traceID, spanID
	return nil
}

// hexID checks an optional id of n bytes in hex and lower-cases it.
func hexID(s string, n int) (string, error) {
	if s == "" {
		return "", nil
	}
	if len(s) != 2*n {
		return "", fmt.Errorf("want %d hex digits", 2*n)
	}
	if _, err := hex.DecodeString(s); err != nil {
		return "", err
	}
	return strings.ToLower(s), nil
}

// printable reports whether s is valid UTF-8 without control characters.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// ClipLog shortens s to at most n bytes on a character boundary, ending in
// "…" when it was cut; for echoing a caller's value in a message.
func ClipLog(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := max(n-len("…"), 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strings.ToValidUTF8(s[:cut], "") + "…"
}

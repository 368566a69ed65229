package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/heraldproject/herald"
)

// Bounds on a log rule's window.
const (
	// MinWindow is the shortest window a log rule may have.
	MinWindow = time.Second
	// MaxWindow is the longest: a day, the default idempotency.window.
	MaxWindow = 24 * time.Hour
)

// LogKeyPrefix starts the idempotency key of every alert a log rule makes.
const LogKeyPrefix = "log:"

// checkWindow checks a rule's window: only log rules have one, and it lies
// within [MinWindow, MaxWindow].
func checkWindow(r *herald.Rule) error {
	switch {
	case r.Window == 0:
		return nil
	case r.Source != herald.RuleSourceLog:
		return fmt.Errorf("only log rules have a window (this rule's source is %s)", r.Source)
	case r.Window < MinWindow || r.Window > MaxWindow:
		return fmt.Errorf("the window is %s; give one from %s to %s", r.Window, MinWindow, MaxWindow)
	}
	return nil
}

// LogEnv is what a log rule's expression and templates see of a record:
//
//	id          string             the record's id
//	time        string             when it was logged, RFC 3339 (UTC)
//	service     string             what logged it
//	level       string             debug, info, warning, error or critical
//	levelRank   int                the level as a number: debug 0, info 1,
//	                               warning 2, error 3, critical 4, so
//	                               levelRank >= 2 is "warning or worse"
//	message     string             the log line
//	attributes  map[string]string  (absent names read as "")
//	traceId     string             32 hex digits, or ""
//	spanId      string             16 hex digits, or ""
//
// Attributes are shared, not copied.
func LogEnv(lr *herald.LogRecord) map[string]any {
	attrs := lr.Attributes
	if attrs == nil {
		attrs = map[string]string{}
	}
	t := ""
	if !lr.Time.IsZero() {
		t = lr.Time.UTC().Format(time.RFC3339Nano)
	}
	return map[string]any{"id": lr.ID, "time": t, "service": lr.Service, "level": string(lr.Level),
		"levelRank": lr.Level.Rank(), "message": lr.Message, "attributes": attrs, "traceId": lr.TraceID,
		"spanId": lr.SpanID}
}

// MatchLog reports whether the log rule's expression holds for lr. An error
// (the expression failed on this record) means no match.
func (c *Compiled) MatchLog(lr *herald.LogRecord) (bool, error) {
	return c.match.Eval(LogEnv(lr))
}

// TryRenderLog is TryRender for a log record.
func (c *Compiled) TryRenderLog(lr *herald.LogRecord, strict bool) error {
	return c.tryRender(LogEnv(lr), strict)
}

// RenderLog is Render for a log record: it never fails; a message template
// that fails gives way to the log line itself.
func (c *Compiled) RenderLog(lr *herald.LogRecord) Rendered {
	return c.render(LogEnv(lr), func() string {
		return fmt.Sprintf("Rule %s matched a %s log of %s (record %s): %s", c.Rule.Name, lr.Level, lr.Service, lr.ID,
			clipString(lr.Message, 2000))
	})
}

// LogIdempotencyKey is the idempotency key of the alert the log rule makes
// of lr, given the rendered dedupe key (Rendered.DedupeKey):
//
//	log:<rule id>:<hash of the dedupe>[:<floor(record time / window)>]
//
// The dedupe is the rendered dedupe key when there is one; otherwise, for a
// rule with a window, the rule itself (every match of the rule in a window
// shares one alert); otherwise the record's id (each matching line alerts).
// The bucket makes every record whose time falls in the same window-aligned
// interval (counted from the Unix epoch) share the key, in every process and
// after restarts, without shared state: matches with one dedupe make at most
// one alert per bucket, so at most two in any interval one window long (one
// each side of a bucket edge).
func (c *Compiled) LogIdempotencyKey(lr *herald.LogRecord, dedupe string) string {
	h := sha256.New()
	switch {
	case dedupe != "":
		h.Write([]byte("dedupe\x00" + dedupe))
	case c.Rule.Window > 0:
		h.Write([]byte("rule\x00"))
	default:
		h.Write([]byte("record\x00" + lr.ID))
	}
	if w := c.Rule.Window; w > 0 {
		h.Write([]byte("\x00window " + w.String())) // a changed window starts afresh
	}
	key := LogKeyPrefix + c.Rule.ID + ":" + hex.EncodeToString(h.Sum(nil)[:16])
	if w := c.Rule.Window; w > 0 {
		key += ":" + strconv.FormatInt(WindowBucket(lr.Time, w), 10)
	}
	return key
}

// WindowBucket is the number of the window-aligned interval t falls in:
// floor(t / window) in Unix nanoseconds.
func WindowBucket(t time.Time, window time.Duration) int64 {
	n, w := t.UnixNano(), int64(window)
	b := n / w
	if n%w < 0 {
		b--
	}
	return b
}

// clipString shortens s to at most n bytes on a character boundary.
func clipString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strings.ToValidUTF8(s[:cut], "") + "…"
}

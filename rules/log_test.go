package rules_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/rules"
)

func logRule(match, dedupe string, window time.Duration) *herald.Rule {
	return &herald.Rule{ID: "r-log", Name: "checkout-errors", Source: herald.RuleSourceLog, Match: match,
		Targets: []string{"@a"}, Severity: herald.SeverityError, Title: "{{.service}}: {{.level}}",
		Message: "{{.message}} ({{.attributes.region}})", DedupeKey: dedupe, Window: window, Enabled: true}
}

func logRecord(id, service string, level herald.Severity, msg string) *herald.LogRecord {
	return &herald.LogRecord{ID: id, Time: time.Date(2026, 3, 1, 10, 0, 30, 0, time.UTC), Service: service, Level: level,
		Message: msg, Attributes: map[string]string{"region": "kr"}, TraceID: strings.Repeat("ab", 16)}
}

func TestLogRuleMatch(t *testing.T) {
	lr := logRecord("l-1", "checkout", herald.SeverityError, "payment failed: timeout")
	for expr, want := range map[string]bool{
		`service == "checkout" && levelRank >= 3`: true,
		`levelRank >= 2`:                                      true,
		`level == "error"`:                                    true,
		`levelRank >= 4`:                                      false,
		`message contains "timeout"`:                          true,
		`message matches "^payment"`:                          true,
		`attributes.region == "kr"`:                           true,
		`attributes["missing"] == ""`:                         true,
		`traceId != "" && time startsWith "2026-03-01T10:00"`: true,
		`id == "l-1" && spanId == ""`:                         true,
	} {
		c, err := rules.Compile(logRule(expr, "", 0))
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		if got, err := c.MatchLog(lr); err != nil || got != want {
			t.Errorf("%s = %v, %v; want %v", expr, got, err, want)
		}
	}
	for _, expr := range []string{`data.total > 1`, `type == "x"`, `levelRank > "warning"`, `attributes.region > 1`} {
		if _, err := rules.Compile(logRule(expr, "", 0)); err == nil {
			t.Errorf("%s: accepted for a log rule", expr)
		}
	}
	// An event rule does not see log fields.
	ev := rule(`service == "checkout"`, "", "m")
	if _, err := rules.Compile(ev); err == nil {
		t.Error("an event rule compiled an expression over a log field")
	}
}

func TestLogRuleRender(t *testing.T) {
	c, err := rules.Compile(logRule("true", "{{.service}}", time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	lr := logRecord("l-1", "checkout", herald.SeverityError, "payment failed")
	r := c.RenderLog(lr)
	if r.Title != "checkout: error" || r.Message != "payment failed (kr)" || r.DedupeKey != "checkout" || len(r.Notes) != 0 {
		t.Fatalf("rendered %+v", r)
	}
	if err := c.TryRenderLog(lr, true); err != nil {
		t.Fatal(err)
	}
	// A message template that fails falls back to the log line.
	bad := logRule("true", "", 0)
	bad.Message = `{{index .attributes.region 99}}`
	if c, err = rules.Compile(bad); err != nil {
		t.Fatal(err)
	}
	if r := c.RenderLog(lr); !strings.Contains(r.Message, "payment failed") || len(r.Notes) == 0 {
		t.Fatalf("fallback %+v", r)
	}
	if err := c.TryRenderLog(lr, true); err == nil {
		t.Fatal("strict rendering of a failing template passed")
	}
}

func TestLogIdempotencyKey(t *testing.T) {
	at := func(id, service string, sec int) *herald.LogRecord {
		lr := logRecord(id, service, herald.SeverityError, "x")
		lr.Time = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC).Add(time.Duration(sec) * time.Second)
		return lr
	}
	win, err := rules.Compile(logRule("true", "{{.service}}", time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	key := func(c *rules.Compiled, lr *herald.LogRecord) string {
		return c.LogIdempotencyKey(lr, c.RenderLog(lr).DedupeKey)
	}
	a, b := key(win, at("1", "checkout", 0)), key(win, at("2", "checkout", 59))
	if a != b || !strings.HasPrefix(a, "log:r-log:") {
		t.Fatalf("same dedupe, same window: %q %q", a, b)
	}
	if c := key(win, at("3", "checkout", 60)); c == a {
		t.Fatal("the next window shares the key")
	}
	if c := key(win, at("4", "billing", 1)); c == a {
		t.Fatal("another dedupe shares the key")
	}
	perLine, err := rules.Compile(logRule("true", "", 0))
	if err != nil {
		t.Fatal(err)
	}
	if key(perLine, at("1", "checkout", 0)) == key(perLine, at("2", "checkout", 0)) {
		t.Fatal("without dedupe key or window, two records share a key")
	}
	if key(perLine, at("1", "checkout", 0)) != key(perLine, at("1", "checkout", 0)) {
		t.Fatal("the key of one record is not stable")
	}
	ruleWide, err := rules.Compile(logRule("true", "", time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if key(ruleWide, at("1", "checkout", 0)) != key(ruleWide, at("2", "billing", 30)) {
		t.Fatal("a window without dedupe key: matches in one window do not share a key")
	}
	if b := rules.WindowBucket(time.Unix(119, 0), time.Minute); b != 1 {
		t.Fatalf("bucket = %d", b)
	}
}

func TestLogRuleWindowRefused(t *testing.T) {
	for _, r := range []*herald.Rule{
		logRule("true", "", time.Millisecond),
		logRule("true", "", 25*time.Hour),
		logRule("true", "", -time.Minute),
		func() *herald.Rule { r := rule("true", "", "m"); r.Window = time.Minute; return r }(),
	} {
		_, err := rules.Compile(r)
		var fe *rules.FieldError
		if !errors.As(err, &fe) || fe.Field != "window" {
			t.Errorf("window %v on a %s rule: %v, want a window FieldError", r.Window, r.Source, err)
		}
	}
}

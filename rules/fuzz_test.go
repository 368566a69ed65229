package rules_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/rules"
)

// fuzzEvent decodes data as an event's data (anything not an object gives
// an empty one).
func fuzzEvent(data string) *herald.Event {
	ev := &herald.Event{ID: "e-1", Type: "order.created", Source: "fuzz", Data: map[string]any{}}
	_ = json.Unmarshal([]byte(data), &ev.Data)
	if ev.Data == nil {
		ev.Data = map[string]any{}
	}
	return ev
}

// fuzzLog decodes data as a log record (anything else gives a plain one).
func fuzzLog(data string) *herald.LogRecord {
	lr := &herald.LogRecord{ID: "l-1", Service: "fuzz", Level: herald.SeverityError, Message: data}
	_ = json.Unmarshal([]byte(data), lr)
	return lr
}

// FuzzRuleTemplate compiles hostile message templates and renders them over
// hostile data: never a panic, never a hang (each rendering well under a
// second), never more than the alert's message limit.
func FuzzRuleTemplate(f *testing.F) {
	for _, s := range [][2]string{
		{"{{.data.customer | upper}} ordered {{len .data.items}} items", `{"customer":"a","items":[1,2]}`},
		{"{{range .data.items}}{{.}}{{end}}", `{"items":["x","y"]}`},
		{`{{define "a"}}{{template "a" .}}{{end}}{{template "a" .}}`, `{}`},
		{"{{range .data.a}}{{range .data.a}}{{end}}{{end}}", `{"a":[1,2,3]}`},
		{`{{printf "%0999999999d" 1}}`, `{}`},
		{"{{range $i, $x := .data.a}}{{json $.data}}{{end}}", `{"a":[1,2,3,4,5,6,7,8,9,10]}`},
		{"{{index .data.a 99}}", `{"a":[]}`},
		{"{{.data.a.b.c}}", `{"a":null}`},
		{"{{with 100000000}}{{range .}}{{end}}{{end}}", `{}`},
		{"{{truncate 3 .data.s}}{{default \"none\" .data.x}}{{basename .subject}}", `{"s":"abcdef"}`},
		{"{{slice .data.s 1 1000000}}", `{"s":"abc"}`},
		{"{{html .data.s}}{{js .data.s}}{{urlquery .data.s}}", `{"s":"<a href='x'>"}`},
		{"{{.service}} {{.level}}: {{truncate 80 .message}}", `{"service":"checkout","level":"error","message":"boom"}`},
		{"{{range $k, $v := .attributes}}{{$k}}={{$v}} {{end}}", `{"attributes":{"a":"1","b":"2"}}`},
		{"{{index .attributes \"http.status\"}}{{.traceId}}", `{"attributes":{"http.status":"500"}}`},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, tmpl, data string) {
		defer watchdog(tmpl, data)()
		c, err := rules.Compile(&herald.Rule{ID: "r", Name: "r", Source: herald.RuleSourceEvent, Match: "true",
			Targets: []string{"@a"}, Severity: herald.SeverityInfo, Title: tmpl, Message: tmpl, DedupeKey: tmpl})
		if err != nil {
			return
		}
		start := time.Now()
		r := c.Render(fuzzEvent(data))
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("rendering %q took %v", tmpl, d)
		}
		if lc, err := rules.Compile(&herald.Rule{ID: "r", Name: "r", Source: herald.RuleSourceLog, Match: "true",
			Targets: []string{"@a"}, Severity: herald.SeverityInfo, Title: tmpl, Message: tmpl, DedupeKey: tmpl}); err == nil {
			start := time.Now()
			lr := lc.RenderLog(fuzzLog(data))
			if d := time.Since(start); d > 3*time.Second || lr.Message == "" || utf8.RuneCountInString(lr.Message) > 16<<10 {
				t.Fatalf("log rendering %q took %v, gave %d characters", tmpl, d, utf8.RuneCountInString(lr.Message))
			}
		}
		if n := utf8.RuneCountInString(r.Message); n > 16<<10 || r.Message == "" {
			t.Fatalf("message of %d characters", n)
		}
		if utf8.RuneCountInString(r.Title) > 512 || !utf8.ValidString(r.Message) || !utf8.ValidString(r.Title) {
			t.Fatalf("title %q", r.Title)
		}
	})
}

// FuzzRuleExpr compiles hostile match expressions and evaluates them over
// hostile data: never a panic, never a hang.
func FuzzRuleExpr(f *testing.F) {
	for _, s := range [][2]string{
		{`type == "order.created" && data.total > 100`, `{"total":250}`},
		{`any(data.tags, {# == "vip"})`, `{"tags":["vip"]}`},
		{`key startsWith "reports/positive/"`, `{"key":"reports/positive/a"}`},
		{`1..100000000 | len > 0`, `{}`},
		{`all(data.a, {any(data.a, {true})})`, `{"a":[1,2,3]}`},
		{`data.total > "x"`, `{"total":1}`},
		{`len(data.s) > 3 && data.s matches "^(a+)+$"`, `{"s":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab"}`},
		{`data.a.b.c == 1`, `{"a":null}`},
		{`repeat("x", 1000000000) != ""`, `{}`},
		{`map(data.a, {# * 2})[0] == 2`, `{"a":[1]}`},
		{`service == "checkout" && levelRank >= 3`, `{"service":"checkout","level":"error"}`},
		{`message matches "(a+)+$" && attributes.k == "v"`, `{"message":"aaaaaaaaaaaaaaaaaaaaaaaaaaaab","attributes":{"k":"v"}}`},
		{`any(keys(attributes), {# startsWith "http."})`, `{"attributes":{"http.status":"500"}}`},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, expr, data string) {
		defer watchdog(expr, data)()
		for _, src := range []string{herald.RuleSourceEvent, herald.RuleSourceS3, herald.RuleSourceLog} {
			c, err := rules.Compile(&herald.Rule{ID: "r", Name: "r", Source: src, Match: expr,
				Targets: []string{"@a"}, Severity: herald.SeverityInfo, Message: "m"})
			if err != nil {
				continue
			}
			start := time.Now()
			if src == herald.RuleSourceLog {
				_, _ = c.MatchLog(fuzzLog(data))
			} else {
				_, _ = c.Match(fuzzEvent(data))
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("evaluating %q took %v", expr, d)
			}
		}
	})
}

// watchdog crashes the fuzzing process when one input runs for 10s, so the
// fuzzer reports (and keeps) the input that hangs instead of stalling.
func watchdog(in, data string) (stop func()) {
	t := time.AfterFunc(10*time.Second, func() { panic(fmt.Sprintf("hang on %q with data %q", in, data)) })
	return func() { t.Stop() }
}

package rules_test

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/rules"
)

// bigData is an event as large as the API lets one be: 10,000 values.
func bigData() map[string]any {
	items := make([]any, 9000)
	for i := range items {
		items[i] = strings.Repeat("x", 100)
	}
	return map[string]any{"items": items, "s": strings.Repeat("y", 500_000), "n": float64(3)}
}

func rule(match, title, message string) *herald.Rule {
	return &herald.Rule{ID: "r1", Name: "r", Source: herald.RuleSourceEvent, Match: match, Targets: []string{"@a"},
		Severity: herald.SeverityInfo, Title: title, Message: message, Enabled: true}
}

func TestHostileTemplatesAreBounded(t *testing.T) {
	ev := &herald.Event{ID: "e", Type: "t", Data: bigData()}
	for _, msg := range []string{
		"{{range .data.items}}{{.}}{{end}}",                     // output over the limit: clipped
		"{{range $i, $x := .data.items}}{{json $.data}}{{end}}", // work over the budget: fallback
		"{{range .data.items}}{{$x := upper $.data.s}}{{end}}",  // work without output
		"{{range .data.items}}{{replace \"y\" \"yy\" $.data.s}}{{end}}",
		`{{printf "%256s%256s" .data.s .data.s}}`,
		"{{json .}}",
	} {
		c, err := rules.Compile(rule("true", "", msg))
		if err != nil {
			t.Fatalf("%s: %v", msg, err)
		}
		start := time.Now()
		r := c.Render(ev)
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s: took %v", msg, d)
		}
		if utf8.RuneCountInString(r.Message) > 16<<10 || len(r.Notes) == 0 {
			t.Errorf("%s: %d characters, notes %v", msg, utf8.RuneCountInString(r.Message), r.Notes)
		}
	}
}

func TestTemplateRefusals(t *testing.T) {
	for _, msg := range []string{
		`{{define "a"}}{{template "a" .}}{{end}}{{template "a" .}}`,
		`{{block "b" .}}x{{end}}`,
		"{{range .data.a}}{{range .data.b}}{{end}}{{end}}",
		"{{range 100000000}}{{end}}",
		"{{with 100000000}}{{range .}}{{end}}{{end}}",
		"{{$n := 100000000}}{{range $n}}{{end}}",
		"{{range (len .data.s)}}{{end}}",
		"{{range .data.a}}{{end}}{{range .data.a}}{{end}}{{range .data.a}}{{end}}{{range .data.a}}{{end}}{{range .data.a}}{{end}}",
		`{{printf "%*d" 1000000000 1}}`,
		`{{printf "%.1000000f" 1.0}}`,
		"{{call .data.f}}",
		strings.Repeat("x", rules.MaxTemplateBytes+1),
		"{{exec \"ls\"}}",
	} {
		if _, err := rules.Compile(rule("true", "", msg)); err == nil {
			t.Errorf("%.80s: accepted", msg)
		} else {
			var fe *rules.FieldError
			if !errors.As(err, &fe) || fe.Field != "message" {
				t.Errorf("%.80s: %v, want a message FieldError", msg, err)
			}
		}
	}
}

func TestExpressions(t *testing.T) {
	ev := &herald.Event{ID: "e", Type: "order.created", Data: map[string]any{"total": float64(250), "tags": []any{"vip"}}}
	for expr, want := range map[string]bool{
		`type == "order.created" && data.total > 100`: true,
		`data.total < 100`:                            false,
		`"vip" in data.tags`:                          true,
		`any(data.tags, {# == "vip"})`:                true,
		`type startsWith "order."`:                    true,
		`data.missing == nil`:                         true,
	} {
		c, err := rules.Compile(rule(expr, "", "m"))
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		if got, err := c.Match(ev); err != nil || got != want {
			t.Errorf("%s = %v, %v; want %v", expr, got, err, want)
		}
	}
	for _, expr := range []string{
		"1..10000000 | len > 0", // memory budget at run time
		`data.total > "x"`,      // runtime type error
	} {
		c, err := rules.Compile(rule(expr, "", "m"))
		if err != nil {
			continue // refused at compile time is fine too
		}
		if _, err := c.Match(ev); err == nil {
			t.Errorf("%s: no error", expr)
		}
	}
	for _, expr := range []string{"type", "1 +", "undefinedVar", `repeat("x", 10)`, `toJSON(data)`,
		"all(data.tags, {any(data.tags, {true})})", strings.Repeat("1 + ", 300) + "1 > 0"} {
		if _, err := rules.Compile(rule(expr, "", "m")); err == nil {
			t.Errorf("%.60s: accepted", expr)
		}
	}
	s3 := rule(`key startsWith "reports/positive/" && size > 10`, "", "{{.key}}")
	s3.Source = herald.RuleSourceS3
	c, err := rules.Compile(s3)
	if err != nil {
		t.Fatal(err)
	}
	ok, err := c.Match(&herald.Event{Data: map[string]any{"key": "reports/positive/a.pdf", "size": float64(11)}})
	if err != nil || !ok {
		t.Fatalf("s3 match = %v, %v", ok, err)
	}
}

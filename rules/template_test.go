package rules

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestTemplateMissingAndDeadline: a missing value prints as nothing (not
// "<no value>") and is reported as errMissing; a rendering that spends its
// time in text/template's own builtins is abandoned at the deadline.
func TestTemplateMissingAndDeadline(t *testing.T) {
	tm, err := ParseTemplate("k", "order-{{.data.orderId}}")
	if err != nil {
		t.Fatal(err)
	}
	text, _, err := tm.Execute(map[string]any{"data": map[string]any{}}, 1000)
	if text != "order-" || !errors.Is(err, errMissing) {
		t.Fatalf("missing value: %q, %v", text, err)
	}
	slow, err := ParseTemplate("m", "{{range $.data.items}}"+strings.Repeat(`{{if eq $.data.a $.data.b}}{{end}}`, 110)+"{{end}}")
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", 300_000)
	items := make([]any, 5000)
	for i := range items {
		items[i] = i
	}
	start := time.Now()
	_, _, err = slow.Execute(map[string]any{"data": map[string]any{"items": items, "a": big, "b": strings.Clone(big)}}, 1000)
	if el := time.Since(start); !errors.Is(err, errDeadline) || el > 2*time.Second {
		t.Fatalf("slow template: %v after %v, want errDeadline near %v", err, el, renderTimeout)
	}
}

// TestExprCost: what lets a short expression do unbounded work is refused
// at compile time; ordinary rules compile.
func TestExprCost(t *testing.T) {
	for _, bad := range []string{
		`let s="aaaaaaaaaa"; let t=replace(s,"a",s); len(t)>0`,
		`let s = data.s; len(s) > 0`,
		`replace(data.s, "a", "bb") != ""`,
		`all(1..90000, {upper(data.s) != ""})`,
		`any(0..len(data.s), {# > 3})`,
		`data.s` + strings.Repeat(` + data.s`, 20) + ` != ""`,
	} {
		if _, err := CompileExpr("event", bad); err == nil {
			t.Errorf("compiled %q", bad)
		}
	}
	for _, good := range []string{
		`type == "order.created" && data.total > 100`,
		`any(data.items, {.sku == "x"})`,
		`all(1..10, {# > 0}) && upper(type) == "X"`,
		`type + ":" + source == "a:b"`,
	} {
		if _, err := CompileExpr("event", good); err != nil {
			t.Errorf("%q: %v", good, err)
		}
	}
}

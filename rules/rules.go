// Package rules turns events and log records into alerts: a rule's match
// expression (expr-lang/expr) decides whether an event (or, for log rules,
// a log record; see LogEnv) concerns it, and its title,
// message and dedupe-key templates (text/template) say what the alert says.
//
// Both are sandboxed. Expressions are type-checked against the event's shape
// at compile time, bounded in size and syntax-tree nodes, may not nest
// predicates, cannot call repeat/toJSON/fromJSON, and run with a memory
// budget. Templates are bounded in size, cannot define or call templates
// (no recursion), may not nest {{range}} or range over anything but the
// event's data, call only a fixed set of functions (call refused, printf
// widths bounded), and render within a work budget, a deadline and an output
// limit. Everything a rule does is therefore bounded by the size of the
// event, which the API bounds in turn.
package rules

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/heraldproject/herald"
)

// Limits on what a rendering produces, in bytes before the alert API's
// character limits clip it further.
const (
	maxTitleOutput    = 2048
	maxMessageOutput  = 64 << 10
	maxDedupeOutput   = 512
	maxTitleChars     = 512
	maxMessageChars   = 16 << 10
	maxRuleNameLength = 64
)

// FieldError says which field of a rule is wrong, and why.
type FieldError struct {
	Field string // match, title, message, dedupeKey, source, severity, window
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }

func (e *FieldError) Unwrap() error { return e.Err }

// Compiled is a rule ready to evaluate. It is safe for concurrent use.
type Compiled struct {
	Rule    *herald.Rule
	match   *Expr
	title   *Template
	message *Template
	dedupe  *Template
}

// Compile checks a rule's source and severity and compiles its expression
// and templates, then renders them once against a sample event (every
// field empty) so a template that cannot render whatever the event — one
// that runs out of its budget, or calls what it may not — is refused now
// rather than at the first event. Errors are *FieldError.
func Compile(r *herald.Rule) (*Compiled, error) {
	switch r.Source {
	case herald.RuleSourceEvent, herald.RuleSourceS3, herald.RuleSourceLog:
	default:
		return nil, &FieldError{"source", fmt.Errorf("source %q: use event, s3 or log", r.Source)}
	}
	if err := checkWindow(r); err != nil {
		return nil, &FieldError{"window", err}
	}
	c := &Compiled{Rule: r}
	var err error
	if c.match, err = CompileExpr(r.Source, r.Match); err != nil {
		return nil, &FieldError{"match", err}
	}
	if strings.TrimSpace(r.Message) == "" {
		return nil, &FieldError{"message", errors.New("a message template is needed")}
	}
	for _, t := range []struct {
		field, text string
		dst         **Template
	}{{"title", r.Title, &c.title}, {"message", r.Message, &c.message}, {"dedupeKey", r.DedupeKey, &c.dedupe}} {
		if t.text == "" {
			continue
		}
		if *t.dst, err = ParseTemplate(t.field, t.text); err != nil {
			return nil, &FieldError{t.field, err}
		}
	}
	if err := c.tryRender(sampleEnv(r.Source), false); err != nil {
		return nil, err
	}
	return c, nil
}

// TryRender renders every template of the rule against ev. With strict, any
// failure is an error (an example event given by the rule's author must
// render); without, only failures that do not depend on the event's data
// are: the work budget, the deadline, a forbidden call.
func (c *Compiled) TryRender(ev *herald.Event, strict bool) error {
	return c.tryRender(Env(c.Rule.Source, ev), strict)
}

func (c *Compiled) tryRender(env map[string]any, strict bool) error {
	for _, t := range []struct {
		field string
		t     *Template
		max   int
	}{{"title", c.title, maxTitleOutput}, {"message", c.message, maxMessageOutput}, {"dedupeKey", c.dedupe, maxDedupeOutput}} {
		if t.t == nil {
			continue
		}
		_, _, err := t.t.Execute(env, t.max)
		if err != nil && (strict || errors.Is(err, errBudget) || errors.Is(err, errDeadline) || errors.Is(err, errForbidden)) {
			return &FieldError{t.field, err}
		}
	}
	return nil
}

// Match reports whether the rule's expression holds for ev. An error (the
// expression failed on this event's data, e.g. compared a string with a
// number) means no match.
func (c *Compiled) Match(ev *herald.Event) (bool, error) {
	return c.match.Eval(Env(c.Rule.Source, ev))
}

// Rendered is what a rule says about one event.
type Rendered struct {
	Title   string
	Message string
	// DedupeKey is the rendered dedupe-key template, "" without one.
	DedupeKey string
	// Notes say what went wrong or was clipped while rendering; the alert
	// is produced anyway, with a fallback text where a template failed.
	Notes []string
}

// Render renders the rule's templates for ev. It never fails: a template
// that fails gives way to a fallback (title: the rule's name; message: what
// matched, and why the template failed) and a note; output over the limits
// is clipped, with a note.
func (c *Compiled) Render(ev *herald.Event) Rendered {
	return c.render(Env(c.Rule.Source, ev), func() string {
		return fmt.Sprintf("Rule %s matched event %s (type %s).", c.Rule.Name, ev.ID, ev.Type)
	})
}

// render renders the templates over env; fallback describes the match for
// a message whose template failed.
func (c *Compiled) render(env map[string]any, fallback func() string) Rendered {
	var r Rendered
	run := func(field string, t *Template, maxBytes, maxChars int) (string, bool) {
		if t == nil {
			return "", true
		}
		s, clipped, err := t.Execute(env, maxBytes)
		if errors.Is(err, errMissing) && field != "dedupeKey" {
			err = nil // the missing value printed as nothing
		}
		if err != nil {
			r.Notes = append(r.Notes, fmt.Sprintf("the %s template failed: %s", field, clipErr(err)))
			return "", false
		}
		if utf8.RuneCountInString(s) > maxChars {
			s, clipped = string([]rune(s)[:maxChars-1])+"…", true
		}
		if clipped {
			r.Notes = append(r.Notes, fmt.Sprintf("the %s was clipped to its limit", field))
		}
		return s, true
	}
	title, okTitle := run("title", c.title, maxTitleOutput, maxTitleChars)
	msg, okMsg := run("message", c.message, maxMessageOutput, maxMessageChars)
	key, okKey := run("dedupeKey", c.dedupe, maxDedupeOutput, maxDedupeOutput)
	if !okTitle || (!okMsg && title == "") {
		title = c.Rule.Name
	}
	if !okMsg || strings.TrimSpace(msg) == "" {
		if okMsg {
			r.Notes = append(r.Notes, "the message template rendered nothing")
		}
		msg = fallback()
		if len(r.Notes) > 0 {
			msg += " " + strings.Join(r.Notes, "; ")
		}
		if m := []rune(msg); len(m) > maxMessageChars {
			msg = string(m[:maxMessageChars-1]) + "…"
		}
	}
	if !okKey {
		key = "" // the event's own id dedupes instead
	}
	r.Title, r.Message, r.DedupeKey = strings.TrimSpace(title), msg, key
	return r
}

// clipErr shortens an error for a note.
func clipErr(err error) string {
	s := err.Error()
	if len(s) > 300 {
		s = strings.ToValidUTF8(s[:300], "") + "…"
	}
	return s
}

// ValidName reports whether s can name a rule: like user and group names.
func ValidName(s string) bool { return herald.ValidName(s) && len(s) <= maxRuleNameLength }

package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/url"
	"path"
	"strings"
	"text/template"
	"text/template/parse"
	"time"
	"unicode/utf8"
)

// Limits on templates. They hold at creation (a template over them is
// refused) and at every rendering (a rendering that would pass them stops).
const (
	// MaxTemplateBytes is the longest title or message template.
	MaxTemplateBytes = 4096
	// MaxRanges is how many {{range}} actions one template may hold; they
	// may not nest.
	MaxRanges = 4
	// maxFormatWidth is the largest width or precision printf accepts.
	maxFormatWidth = 256
	// renderBudget is how many bytes the template functions of one
	// rendering may take in and give out together.
	renderBudget = 4 << 20
	// renderTimeout bounds one rendering; it is checked at every function
	// call and every write.
	renderTimeout = 250 * time.Millisecond
	// renderGrace is how much longer than renderTimeout Execute waits for a
	// rendering that does not check the deadline itself.
	renderGrace = 50 * time.Millisecond
)

// Errors a rendering stops with. errOutputLimit keeps what was written
// before it (clipped); the others make the rule's alert use the fallback.
var (
	errOutputLimit = errors.New("output limit reached")
	// errMissing: the template used a value the data does not have (it
	// printed as nothing). Not a failure for a title or message; a dedupe
	// key with a hole in it would merge unrelated events, so there it is.
	errMissing   = errors.New("the template used a field the data does not have")
	errBudget    = errors.New("the template did too much work (renderBudget)")
	errDeadline  = errors.New("the template took too long")
	errForbidden = errors.New("not allowed in a rule template")
)

// budget is the allowance of one rendering, shared by its function calls
// and its writer.
type budget struct {
	left     int
	deadline time.Time
}

func (b *budget) charge(n int) error {
	b.left -= n + 1
	switch {
	case b.left < 0:
		return errBudget
	case time.Now().After(b.deadline):
		return errDeadline
	}
	return nil
}

// limitWriter keeps at most max bytes and then fails every write, which
// stops the template.
type limitWriter struct {
	buf bytes.Buffer
	max int
	b   *budget
}

func (w *limitWriter) Write(p []byte) (int, error) {
	if err := w.b.charge(len(p)); err != nil {
		return 0, err
	}
	if room := w.max - w.buf.Len(); len(p) > room {
		w.buf.Write(p[:max(room, 0)])
		return 0, errOutputLimit
	}
	return w.buf.Write(p)
}

// funcNames are the functions a rule template may call: text/template's
// comparison and logic builtins, its printing and escaping builtins replaced
// by bounded versions, call refused, and a few string helpers. Each is bound
// to the budget of one rendering by funcs.
var funcNames = []string{"printf", "print", "println", "html", "js", "urlquery", "call",
	"upper", "lower", "title", "trim", "trimPrefix", "trimSuffix", "hasPrefix", "hasSuffix", "contains",
	"replace", "join", "default", "truncate", "json", "basename", "quote", "urldecode"}

// parseFuncs stand in for the real functions at parse time, where only the
// names (and that they are functions) matter.
var parseFuncs = func() template.FuncMap {
	m := template.FuncMap{}
	for name, fn := range funcs(&budget{}) {
		m[name] = fn
	}
	return m
}()

// str turns a template value into text as {{.}} would print it.
func str(v any) string {
	switch s := v.(type) {
	case string:
		return s
	case nil:
		return ""
	case fmt.Stringer:
		return s.String()
	}
	return fmt.Sprint(v)
}

// funcs returns the template functions bound to b.
func funcs(b *budget) template.FuncMap {
	// out charges for a result and returns it.
	out := func(in int, s string) (string, error) {
		if err := b.charge(in + len(s)); err != nil {
			return "", err
		}
		return s, nil
	}
	one := func(f func(string) string) func(any) (string, error) {
		return func(v any) (string, error) {
			s := str(v)
			if err := b.charge(len(s)); err != nil {
				return "", err
			}
			return out(0, f(s))
		}
	}
	two := func(f func(string, string) string) func(any, any) (string, error) {
		return func(a, v any) (string, error) {
			x, s := str(a), str(v)
			if err := b.charge(len(x) + len(s)); err != nil {
				return "", err
			}
			return out(0, f(x, s))
		}
	}
	test := func(f func(string, string) bool) func(any, any) (bool, error) {
		return func(a, v any) (bool, error) {
			x, s := str(a), str(v)
			return f(s, x), b.charge(len(x) + len(s))
		}
	}
	return template.FuncMap{
		"printf": func(format string, args ...any) (string, error) {
			if err := checkFormat(format); err != nil {
				return "", err
			}
			for _, a := range args {
				if err := b.charge(len(str(a))); err != nil {
					return "", err
				}
			}
			return out(len(format), fmt.Sprintf(format, args...))
		},
		"print":    func(args ...any) (string, error) { return out(0, fmt.Sprint(args...)) },
		"println":  func(args ...any) (string, error) { return out(0, fmt.Sprintln(args...)) },
		"html":     one(html.EscapeString),
		"js":       one(template.JSEscapeString),
		"urlquery": one(url.QueryEscape),
		"call":     func(...any) (string, error) { return "", fmt.Errorf("call is %w", errForbidden) },
		"upper":    one(strings.ToUpper),
		"lower":    one(strings.ToLower),
		"title": one(func(s string) string {
			r, n := utf8.DecodeRuneInString(s)
			return strings.ToUpper(string(r)) + s[n:]
		}),
		"trim":       one(strings.TrimSpace),
		"trimPrefix": two(func(p, s string) string { return strings.TrimPrefix(s, p) }),
		"trimSuffix": two(func(p, s string) string { return strings.TrimSuffix(s, p) }),
		"hasPrefix":  test(strings.HasPrefix),
		"hasSuffix":  test(strings.HasSuffix),
		"contains":   test(strings.Contains),
		"replace": func(old, new, v any) (string, error) {
			o, n, s := str(old), str(new), str(v)
			if err := b.charge(len(o) + len(n) + len(s)); err != nil {
				return "", err
			}
			if o == "" || strings.Count(s, o)*len(n) > renderBudget {
				return "", errBudget
			}
			return out(0, strings.ReplaceAll(s, o, n))
		},
		"join": func(sep any, list any) (string, error) {
			items, ok := list.([]any)
			if !ok {
				return out(0, str(list))
			}
			var sb strings.Builder
			for i, it := range items {
				if i > 0 {
					sb.WriteString(str(sep))
				}
				sb.WriteString(str(it))
				if err := b.charge(sb.Len()); err != nil {
					return "", err
				}
			}
			return out(0, sb.String())
		},
		"default": func(def, v any) any {
			if s, ok := v.(string); v == nil || (ok && s == "") {
				return def
			}
			return v
		},
		"truncate": func(n int, v any) (string, error) {
			s := str(v)
			if err := b.charge(len(s)); err != nil {
				return "", err
			}
			if n < 1 || utf8.RuneCountInString(s) <= n {
				return s, nil
			}
			return string([]rune(s)[:n-1]) + "…", nil
		},
		"json": func(v any) (string, error) {
			j, err := json.Marshal(v)
			if err != nil {
				return "", fmt.Errorf("json: %w", err)
			}
			return out(0, string(j))
		},
		"basename": one(path.Base),
		"quote":    one(func(s string) string { return fmt.Sprintf("%q", s) }),
		"urldecode": one(func(s string) string {
			if d, err := url.QueryUnescape(s); err == nil {
				return d
			}
			return s
		}),
	}
}

// checkFormat refuses printf formats that could make a huge string from
// little: a width or precision over maxFormatWidth, or one taken from the
// arguments (*).
func checkFormat(format string) error {
	if len(format) > MaxTemplateBytes {
		return errBudget
	}
	n := 0 // the number being read, in a directive
	for i := 0; i < len(format); i++ {
		c := format[i]
		switch {
		case c == '*':
			return fmt.Errorf("printf: a * width is %w", errForbidden)
		case c >= '0' && c <= '9':
			if n = n*10 + int(c-'0'); n > maxFormatWidth {
				return fmt.Errorf("printf: widths and precisions above %d are %w", maxFormatWidth, errForbidden)
			}
		default:
			n = 0
		}
	}
	return nil
}

// Template is a parsed rule template, checked against the limits. It is
// safe for concurrent use.
type Template struct {
	t *template.Template
}

// ParseTemplate parses text as a rule template. It refuses, with a message
// that says why: a template over MaxTemplateBytes, a syntax error, a function
// that does not exist, {{define}}, {{block}} and {{template}} (recursion),
// nested {{range}}, a {{range}} over a number (a loop that reads no data), and
// more than MaxRanges ranges.
func ParseTemplate(name, text string) (*Template, error) {
	if len(text) > MaxTemplateBytes {
		return nil, fmt.Errorf("the template is %d bytes; at most %d", len(text), MaxTemplateBytes)
	}
	if !utf8.ValidString(text) {
		return nil, errors.New("the template is not valid UTF-8")
	}
	t, err := template.New(name).Option("missingkey=zero").Funcs(parseFuncs).Parse(text)
	if err != nil {
		return nil, err
	}
	if len(t.Templates()) > 1 {
		return nil, fmt.Errorf("{{define}} and {{block}} are %w", errForbidden)
	}
	if t.Tree == nil || t.Root == nil {
		return &Template{t: t}, nil
	}
	ranges := 0
	if err := checkNode(t.Root, 0, &ranges); err != nil {
		return nil, err
	}
	return &Template{t: t}, nil
}

// checkNode walks a template's parse tree enforcing ParseTemplate's rules.
func checkNode(n parse.Node, inRange int, ranges *int) error {
	switch n := n.(type) {
	case nil:
		return nil
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Nodes {
			if err := checkNode(c, inRange, ranges); err != nil {
				return err
			}
		}
	case *parse.TemplateNode:
		return fmt.Errorf("{{template}} is %w", errForbidden)
	case *parse.RangeNode:
		*ranges++
		switch {
		case inRange > 0:
			return fmt.Errorf("nested {{range}} is %w", errForbidden)
		case *ranges > MaxRanges:
			return fmt.Errorf("at most %d {{range}} actions", MaxRanges)
		}
		if n.Pipe == nil || len(n.Pipe.Cmds) != 1 || len(n.Pipe.Cmds[0].Args) != 1 {
			return fmt.Errorf("{{range}} over a computed value is %w: range over a field of the event (.data.items) or a variable", errForbidden)
		}
		// Only the event's own data is ranged over: a field, or a field of
		// a variable ($.data.items, $e.items). A variable or dot alone may
		// hold a number ({{with 1000000000}}{{range .}}), a loop over
		// nothing that would never end.
		switch a := n.Pipe.Cmds[0].Args[0].(type) {
		case *parse.FieldNode, *parse.ChainNode:
		case *parse.VariableNode:
			if len(a.Ident) < 2 && a.Ident[0] != "$" {
				return fmt.Errorf("{{range %s}} is %w: range over a field of the event (.data.items, $.data.items)", a, errForbidden)
			}
		default:
			return fmt.Errorf("{{range}} over %s is %w: range over a field of the event (.data.items) or a variable",
				n.Pipe.Cmds[0].Args[0], errForbidden)
		}
		if err := checkNode(n.List, inRange+1, ranges); err != nil {
			return err
		}
		return checkNode(n.ElseList, inRange, ranges)
	case *parse.IfNode:
		if err := checkNode(n.List, inRange, ranges); err != nil {
			return err
		}
		return checkNode(n.ElseList, inRange, ranges)
	case *parse.WithNode:
		if err := checkNode(n.List, inRange, ranges); err != nil {
			return err
		}
		return checkNode(n.ElseList, inRange, ranges)
	}
	return nil
}

// Execute renders the template with data, writing at most max bytes. It
// returns what was written; clipped is true when the output reached max
// (the rendering stopped there, which is not an error). Any other failure
// (a function error, the budget, the deadline) is returned as err.
//
// The deadline is also enforced from outside: text/template's own builtins
// (eq, index, len, if, range) do not pass through the budget, so the
// rendering runs on its own goroutine and Execute gives up on it with
// errDeadline shortly after renderTimeout. (The goroutine then runs to its
// end, which the input limits bound, and its output is discarded.)
//
// A value the data does not have prints as nothing (text/template would
// print "<no value>"); err is then errMissing, with text as rendered.
func (t *Template) Execute(data any, maxBytes int) (text string, clipped bool, err error) {
	type result struct {
		text    string
		clipped bool
		err     error
	}
	done := make(chan result, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- result{err: fmt.Errorf("rules: template failed: %v", p)}
			}
		}()
		text, clipped, err := t.execute(data, maxBytes)
		done <- result{text, clipped, err}
	}()
	timer := time.NewTimer(renderTimeout + renderGrace)
	defer timer.Stop()
	select {
	case r := <-done:
		return r.text, r.clipped, r.err
	case <-timer.C:
		return "", false, errDeadline
	}
}

// execute renders the template on the calling goroutine.
func (t *Template) execute(data any, maxBytes int) (text string, clipped bool, err error) {
	b := &budget{left: renderBudget, deadline: time.Now().Add(renderTimeout)}
	c, err := t.t.Clone()
	if err != nil {
		return "", false, fmt.Errorf("rules: clone template: %w", err)
	}
	c.Funcs(funcs(b))
	w := &limitWriter{max: maxBytes, b: b}
	err = c.Execute(w, data)
	text = strings.ToValidUTF8(w.buf.String(), "")
	// NUL cannot be stored (PostgreSQL text), whatever printf made.
	text = strings.ReplaceAll(text, "\x00", "")
	missing := strings.Contains(text, noValue)
	if missing {
		text = strings.ReplaceAll(text, noValue, "")
	}
	if errors.Is(err, errOutputLimit) {
		return text, true, nil
	}
	if err == nil && missing {
		err = errMissing
	}
	return text, false, err
}

// noValue is what text/template prints for a value the data does not have.
const noValue = "<no value>"

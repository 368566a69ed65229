package notify

import (
	"maps"
	"slices"
	"strings"
	"unicode/utf8"
)

// subjectRunes bounds the length of a subject line.
const subjectRunes = 100

// Subject renders a one-line summary of m for an email subject or a chat
// headline: "[CRITICAL] Disk full on db-1". It uses the title, or the first
// line of the text when there is no title, cut to about 100 runes.
func Subject(m *Message) string {
	return strings.TrimSpace("[" + severityLabel(m) + "] " + Truncate(Headline(m), subjectRunes))
}

// Headline returns m's title, or the first non-blank line of its text when
// the title is empty, with surrounding space trimmed.
func Headline(m *Message) string {
	if t := strings.TrimSpace(m.Title); t != "" {
		return t
	}
	for line := range strings.Lines(m.Text) {
		if line = strings.TrimSpace(line); line != "" {
			return line
		}
	}
	return ""
}

// PlainText renders m as a plain-text body: the title, the text, then the
// severity, source, labels (sorted by key), alert id and delivery id, one per
// line. Empty parts are left out.
func PlainText(m *Message) string {
	var b strings.Builder
	if t := strings.TrimSpace(m.Title); t != "" {
		b.WriteString(t + "\n\n")
	}
	if t := strings.TrimSpace(m.Text); t != "" {
		b.WriteString(t + "\n\n")
	}
	field := func(name, value string) {
		if value != "" {
			b.WriteString(name + ": " + value + "\n")
		}
	}
	field("Severity", string(m.Severity))
	field("Source", m.Source)
	if len(m.Labels) > 0 {
		b.WriteString("Labels:\n")
		for _, k := range slices.Sorted(maps.Keys(m.Labels)) {
			b.WriteString("  " + k + "=" + m.Labels[k] + "\n")
		}
	}
	field("Alert", m.AlertID)
	field("Delivery", m.DeliveryID)
	return b.String()
}

// Truncate cuts s to at most n runes, ending it with "…" when it was cut. It
// never splits a rune. n < 1 gives "".
func Truncate(s string, n int) string {
	if n < 1 {
		return ""
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i, count := 0, 0
	for i = range s {
		if count == n-1 {
			break
		}
		count++
	}
	return strings.TrimRightFunc(s[:i], isSpace) + "…"
}

func isSpace(r rune) bool { return r == ' ' || r == '\t' || r == '\n' || r == '\r' }

// severityLabel is the upper-cased severity, or ALERT when it is unset.
func severityLabel(m *Message) string {
	if m.Severity == "" {
		return "ALERT"
	}
	return strings.ToUpper(string(m.Severity))
}

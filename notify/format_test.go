package notify_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/notify"
)

func TestSubject(t *testing.T) {
	long := strings.Repeat("é", 150)
	tests := []struct {
		name string
		m    notify.Message
		want string
	}{
		{"title", notify.Message{Severity: herald.SeverityCritical, Title: "Disk full", Text: "db-1 at 99%"}, "[CRITICAL] Disk full"},
		{"first line of text", notify.Message{Severity: herald.SeverityWarning, Text: "\n  load high \nsecond line"}, "[WARNING] load high"},
		{"no severity", notify.Message{Title: "x"}, "[ALERT] x"},
		{"empty", notify.Message{Severity: herald.SeverityInfo}, "[INFO]"},
		{"long title cut", notify.Message{Severity: herald.SeverityError, Title: long}, "[ERROR] " + strings.Repeat("é", 99) + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := notify.Subject(&tt.m)
			if got != tt.want {
				t.Errorf("Subject = %q, want %q", got, tt.want)
			}
			if !utf8.ValidString(got) {
				t.Errorf("Subject is not valid UTF-8")
			}
		})
	}
}

func TestPlainText(t *testing.T) {
	m := &notify.Message{
		DeliveryID: "d-1", AlertID: "a-1", Severity: herald.SeverityError,
		Title: "Disk full", Text: "db-1 at 99%\nact now", Source: "prometheus",
		Labels: map[string]string{"team": "db", "env": "prod", "az": "eu-1"},
	}
	want := "Disk full\n\ndb-1 at 99%\nact now\n\n" +
		"Severity: error\nSource: prometheus\nLabels:\n  az=eu-1\n  env=prod\n  team=db\n" +
		"Alert: a-1\nDelivery: d-1\n"
	if got := notify.PlainText(m); got != want {
		t.Errorf("PlainText =\n%s\nwant\n%s", got, want)
	}
	minimal := notify.PlainText(&notify.Message{Text: "hi", DeliveryID: "d"})
	if minimal != "hi\n\nDelivery: d\n" {
		t.Errorf("minimal PlainText = %q", minimal)
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"hello", 10, "hello"},
		{"hello", 5, "hello"},
		{"hello world", 6, "hello…"},
		{"hello world", 7, "hello…"}, // trailing space trimmed before the ellipsis
		{"héllo wörld", 4, "hél…"},
		{"日本語のテキスト", 3, "日本…"},
		{"👍👍👍", 2, "👍…"},
		{"abc", 1, "…"},
		{"abc", 0, ""},
		{"", 3, ""},
	}
	for _, tt := range tests {
		got := notify.Truncate(tt.in, tt.n)
		if got != tt.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
		if !utf8.ValidString(got) || utf8.RuneCountInString(got) > max(tt.n, 0) {
			t.Errorf("Truncate(%q, %d) = %q: invalid or too long", tt.in, tt.n, got)
		}
	}
}

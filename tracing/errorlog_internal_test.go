package tracing

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestErrorLogThrottles checks a collector that stays down writes one line
// a period, saying how many errors it did not log.
func TestErrorLogThrottles(t *testing.T) {
	var buf bytes.Buffer
	e := &errorLog{log: slog.New(slog.NewTextHandler(&buf, nil)), endpoint: "http://c/v1/traces", every: time.Hour}
	for range 5 {
		e.Handle(errors.New("traces export: failed to send: 503"))
	}
	if n := strings.Count(buf.String(), "tracing failed"); n != 1 {
		t.Fatalf("logged %d lines for 5 errors within the period, want 1:\n%s", n, buf.String())
	}
	e.mu.Lock()
	e.last = time.Now().Add(-2 * time.Hour)
	e.mu.Unlock()
	e.Handle(errors.New("traces export: failed to send: 503"))
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], "errors_not_logged=4") || !strings.Contains(lines[1], "endpoint=http://c/v1/traces") {
		t.Fatalf("after the period: %q, want a second line counting the 4 errors not logged", lines)
	}
}

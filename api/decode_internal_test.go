package api

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/heraldproject/herald"
)

// TestDecodeSlots checks that no more log requests are decoded at once than
// there are slots, that a request waiting for one gives up with its context,
// and that a slot is free again once its request is done.
func TestDecodeSlots(t *testing.T) {
	s := &Server{decoding: make(chan struct{}, 1), Now: time.Now, Logger: slog.New(slog.DiscardHandler)}
	inside := make(chan struct{})
	release := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := s.encodeLogs(context.Background(), func() []*herald.LogRecord {
			close(inside)
			<-release
			return nil
		})
		done <- err
	}()
	<-inside
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	ran := false
	one := func() []*herald.LogRecord {
		ran = true
		return []*herald.LogRecord{{Service: "a", Level: herald.SeverityInfo, Message: "one"}}
	}
	if _, err := s.encodeLogs(ctx, one); err == nil || ran {
		t.Fatalf("second request with the only slot taken: err %v, ran %v; want an error and not run", err, ran)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if kr, err := s.encodeLogs(context.Background(), one); err != nil || !ran || len(kr) != 1 {
		t.Fatalf("after the slot was freed: err %v, ran %v, %d records", err, ran, len(kr))
	}
}

// TestLogRecordsDropsDecoded checks that encoding a request's records lets
// go of the decoded ones, so they are not held while the broker answers.
func TestLogRecordsDropsDecoded(t *testing.T) {
	s := &Server{Now: time.Now, Logger: slog.New(slog.DiscardHandler)}
	recs := []*herald.LogRecord{
		{Service: "a", Level: herald.SeverityInfo, Message: "one"},
		{Service: "b", Level: herald.SeverityInfo, Message: "two"},
	}
	kr, err := s.logRecords(context.Background(), recs)
	if err != nil {
		t.Fatal(err)
	}
	if len(kr) != 2 || string(kr[0].Key) != "a" || string(kr[1].Key) != "b" || len(kr[0].Value) == 0 {
		t.Fatalf("records %v", kr)
	}
	for i, r := range recs {
		if r != nil {
			t.Errorf("recs[%d] still held after encoding", i)
		}
	}
}

// TestAccessLevelSlow: with log.requests=errors a request that took a second
// or more is logged at info like a failed one; health checks never are.
func TestAccessLevelSlow(t *testing.T) {
	s := &Server{LogRequests: "errors"}
	for _, tc := range []struct {
		path   string
		status int
		took   time.Duration
		want   slog.Level
	}{
		{"/v1/alerts", 202, 999 * time.Millisecond, slog.LevelDebug},
		{"/v1/alerts", 202, time.Second, slog.LevelInfo},
		{"/v1/alerts", 503, time.Millisecond, slog.LevelInfo},
		{"/readyz", 503, 2 * time.Second, slog.LevelDebug},
	} {
		if got := s.accessLevel(tc.path, tc.status, tc.took); got != tc.want {
			t.Errorf("%s %d in %s: %s, want %s", tc.path, tc.status, tc.took, got, tc.want)
		}
	}
}

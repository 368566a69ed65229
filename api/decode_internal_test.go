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
	s := &Server{decoding: make(chan struct{}, 1)}
	inside := make(chan struct{})
	release := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.decode(context.Background(), func() error {
			close(inside)
			<-release
			return nil
		})
	}()
	<-inside
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	ran := false
	if err := s.decode(ctx, func() error { ran = true; return nil }); err == nil || ran {
		t.Fatalf("second request with the only slot taken: err %v, ran %v; want an error and not run", err, ran)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := s.decode(context.Background(), func() error { ran = true; return nil }); err != nil || !ran {
		t.Fatalf("after the slot was freed: err %v, ran %v", err, ran)
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

package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/internal/teststore"
	"github.com/heraldproject/herald/store"
)

// BenchmarkInsertLogs stores log records on SQLite in batches of 2000 (one
// transaction each, as the logs role does per poll); rows/s is the figure.
func BenchmarkInsertLogs(b *testing.B) {
	s := teststore.SQLite(b)
	const batch = 2000
	lines := benchLogLines(time.Now())
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.InsertLogs(context.Background(), lines(batch)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkPruneLogs runs log retention over 200,000 records of which none
// is due, the common case between two prunes (every tenth of logs.retention):
// the time of one prune that finds nothing to delete.
func BenchmarkPruneLogs(b *testing.B) {
	now := time.Now()
	s := teststore.Open(b, store.Options{DSN: filepath.Join(b.TempDir(), "herald.db"), Now: func() time.Time { return now }})
	lines := benchLogLines(now)
	for range 100 {
		if _, err := s.InsertLogs(context.Background(), lines(2000)); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		if n, err := s.PruneLogs(context.Background(), now.Add(-time.Hour), 5000); err != nil || n != 0 {
			b.Fatal(n, err)
		}
	}
}

// benchLogLines returns a generator of log records, numbered on from 1 and
// timed 1 ns apart from now: access-log lines with words from one in every
// record ("completed") to one in all ("request <n>").
func benchLogLines(now time.Time) func(count int) []*herald.LogRecord {
	n := 0
	return func(count int) []*herald.LogRecord {
		recs := make([]*herald.LogRecord, count)
		for i := range recs {
			n++
			recs[i] = &herald.LogRecord{ID: fmt.Sprintf("r%012d", n), Time: now.Add(time.Duration(n)), Service: fmt.Sprint("svc-", n%8),
				Level: herald.SeverityInfo, Message: fmt.Sprintf("request %d GET /api/v1/orders/%d completed status=200 duration=%dms user=u%d", n, n%9973, n%500, n%1000),
				Attributes: map[string]string{"host": fmt.Sprint("node-", n%16)}}
		}
		return recs
	}
}

// BenchmarkSearchLogs searches 400,000 stored records (the same lines as
// BenchmarkInsertLogs) for words from one in every record to one in 400,000,
// 100 results a page, newest first.
//
//	go test ./store -run '^$' -bench SearchLogs -benchtime 20x
func BenchmarkSearchLogs(b *testing.B) {
	ctx := context.Background()
	s := teststore.SQLite(b)
	now := time.Now()
	lines := benchLogLines(now)
	// A word in one record, the oldest: nothing among the newest has it.
	if _, err := s.InsertLogs(ctx, []*herald.LogRecord{{ID: "first", Time: now, Service: "svc-0",
		Level: herald.SeverityInfo, Message: "listening on :8080 after coldstart"}}); err != nil {
		b.Fatal(err)
	}
	for range 200 {
		if _, err := s.InsertLogs(ctx, lines(2000)); err != nil {
			b.Fatal(err)
		}
	}
	for _, q := range []store.LogQuery{
		{Text: "completed"},                   // every record
		{Text: "dur*"},                        // every record, by prefix
		{Text: "completed", Service: "svc-3"}, // one in 8
		{Text: "u999"},                        // one in 1,000
		{Text: "orders 9972"},                 // one in 9,973
		{Text: "request 123"},                 // one record
		{Text: "coldstart"},                   // one record, the oldest
		{Text: "coldstart", Service: "svc-0", MinLevel: herald.SeverityInfo},
	} {
		name := q.Text
		if q.Service != "" {
			name += " service=" + q.Service
		}
		if q.MinLevel != "" {
			name += " level=" + string(q.MinLevel)
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				got, err := s.SearchLogs(ctx, q)
				if err != nil || len(got) == 0 {
					b.Fatalf("%d records, %v", len(got), err)
				}
			}
		})
	}
}

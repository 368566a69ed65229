package logs_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/bus"
	"github.com/heraldproject/herald/internal/teststore"
	"github.com/heraldproject/herald/logs"
	"github.com/heraldproject/herald/store"
)

// TestDecode: records from Herald's API keep their id; records produced
// straight to the topic get a stable id from where they are, the key as
// service and the record time; invalid ones are errors (dead-lettered).
func TestDecode(t *testing.T) {
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	rec := func(v string) *kgo.Record {
		return &kgo.Record{Topic: "herald.logs", Partition: 2, Offset: 41, Key: []byte("kcat"), Value: []byte(v), Timestamp: at}
	}
	lr, err := logs.Decode(rec(`{"id":"01a2","service":"api","level":"error","message":"m","time":"2026-01-01T00:00:00Z"}`))
	if err != nil || lr.ID != "01a2" || lr.Service != "api" || lr.Level != herald.SeverityError || lr.Time.Year() != 2026 {
		t.Fatalf("API record = %+v, %v", lr, err)
	}
	a, err := logs.Decode(rec(`{"message":"from kcat","level":"WARN"}`))
	if err != nil || a.Service != "kcat" || !a.Time.Equal(at) || a.Level != herald.SeverityWarning || a.ID == "" {
		t.Fatalf("kcat record = %+v, %v", a, err)
	}
	b, _ := logs.Decode(rec(`{"message":"from kcat"}`))
	if b.ID != a.ID || b.Level != herald.SeverityInfo {
		t.Fatalf("same place, different id: %q %q (level %q)", a.ID, b.ID, b.Level)
	}
	for _, bad := range []string{`nope`, `{"message":"m","level":"loud"}`, `{"message":"m","traceId":"zz"}`, `[]`} {
		if _, err := logs.Decode(rec(bad)); err == nil {
			t.Errorf("Decode(%s) accepted", bad)
		}
	}
}

// TestIndexerHandle: a poll is stored whole, its undecodable records
// dead-lettered, and stored once when it is handled again (a redelivery),
// a record produced straight to the topic (no id, no time) too; a store
// that fails fails the batch.
func TestIndexerHandle(t *testing.T) {
	ctx := context.Background()
	s := teststore.SQLite(t)
	p := &producer{}
	ix := &logs.Indexer{Store: s, Producer: p, Logger: slog.New(slog.DiscardHandler)}
	var recs []*kgo.Record
	for i := range 2345 {
		recs = append(recs, logRec(t, i, "api", "info", fmt.Sprintf("request %d done", i)))
	}
	recs[10].Value = []byte("not json")
	recs[2100].Value = []byte(`{"message":"m","level":"loud"}`)
	// Produced straight to the topic: the id and time come from the record.
	recs = append(recs, &kgo.Record{Topic: bus.TopicLogs, Key: []byte("kcat"), Value: []byte(`{"message":"from kcat"}`),
		Offset: 9000, Timestamp: time.Date(2026, 3, 1, 11, 0, 0, 0, time.UTC)})
	for range 2 {
		if err := ix.Handle(ctx, recs); err != nil {
			t.Fatal(err)
		}
		if n, err := s.CountLogs(ctx); err != nil || n != 2344 {
			t.Fatalf("%d records stored, %v; want 2344", n, err)
		}
	}
	var dead []string
	for _, r := range p.recs {
		if r.Topic != bus.TopicDLQ {
			t.Fatalf("produced to %s", r.Topic)
		}
		dead = append(dead, bus.Header(r, bus.HeaderSource))
	}
	src := func(i int) string { return fmt.Sprintf("%s/0/%d", bus.TopicLogs, i) }
	if want := []string{src(10), src(2100), src(10), src(2100)}; !slices.Equal(dead, want) { // each Handle's
		t.Fatalf("dead letters from %v, want %v", dead, want)
	}
	got, err := s.SearchLogs(ctx, store.LogQuery{Text: "request 2344"})
	if err != nil || len(got) != 1 {
		t.Fatalf("last record searched: %v, %v", got, err)
	}

	closed, err := store.Open(ctx, store.Options{DSN: filepath.Join(t.TempDir(), "h.db")})
	if err != nil {
		t.Fatal(err)
	}
	if err := closed.Close(); err != nil {
		t.Fatal(err)
	}
	ix.Store = closed
	if err := ix.Handle(ctx, recs); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Handle on a closed store: %v", err)
	}
}

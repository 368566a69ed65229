package store

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/heraldproject/herald"
)

// TestLogIndexMigration: migration 8 rebuilds the log search index (without
// column sizes) from the stored records, and its Down rebuilds the old one;
// searches find the same records at either version, and records stored
// after the migration are indexed too.
func TestLogIndexMigration(t *testing.T) {
	ctx := context.Background()
	s := testSQLiteOneFile(t)
	now := time.Now().UTC()
	var recs []*herald.LogRecord
	for i := range 300 {
		recs = append(recs, &herald.LogRecord{ID: fmt.Sprintf("r%04d", i), Time: now.Add(time.Duration(i)), Service: "api",
			Level: herald.SeverityInfo, Message: fmt.Sprintf("request %d finished with code c%d", i, i%3)})
	}
	if _, err := s.InsertLogs(ctx, recs); err != nil {
		t.Fatal(err)
	}
	count := func(text string) int {
		t.Helper()
		got, err := s.SearchLogs(ctx, LogQuery{Text: text, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		return len(got)
	}
	columnsize := func() bool {
		var n int
		if err := s.w.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE name = 'logs_fts_docsize'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1 // the docsize table exists only with column sizes
	}
	check := func(stage string, wantSizes bool) {
		t.Helper()
		if got := columnsize(); got != wantSizes {
			t.Fatalf("%s: column sizes stored %v, want %v", stage, got, wantSizes)
		}
		if n := count("c1"); n != 100 {
			t.Fatalf("%s: %d records with c1, want 100", stage, n)
		}
		if n := count("request 7"); n != 1 {
			t.Fatalf("%s: %d records with request 7, want 1", stage, n)
		}
	}
	check("at the latest version", false)

	p := sqliteMigrations(t, s)
	if _, err := p.DownTo(ctx, 7); err != nil {
		t.Fatal(err)
	}
	check("after migrating down to 7", true)
	if _, err := p.Up(ctx); err != nil {
		t.Fatal(err)
	}
	check("after migrating up again", false)

	// Deleting records (retention) takes them out of the index.
	if _, err := s.w.ExecContext(ctx, `DELETE FROM logs WHERE message LIKE '% c1'`); err != nil {
		t.Fatal(err)
	}
	if n := count("c1"); n != 0 {
		t.Fatalf("%d deleted records still found", n)
	}
}

// TestLogTableMigration: migration 9 rebuilds the log table with logs_newest
// unique and both indexes ascending, keeping every record and its seq (the
// search index's key); a redelivered batch is still stored once, searches
// and pages find the same records at version 8 and 9, and Down restores the
// old indexes.
func TestLogTableMigration(t *testing.T) {
	ctx := context.Background()
	s := testSQLiteOneFile(t)
	p := sqliteMigrations(t, s)
	if _, err := p.DownTo(ctx, 8); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	batch := func(from int) []*herald.LogRecord {
		var recs []*herald.LogRecord
		for i := from; i < from+150; i++ {
			recs = append(recs, &herald.LogRecord{ID: fmt.Sprintf("r%04d", i), Time: now.Add(time.Duration(i % 200)),
				Service: fmt.Sprint("svc-", i%2), Level: herald.SeverityInfo, Message: fmt.Sprintf("request %d code c%d", i, i%3)})
		}
		return recs
	}
	if n, err := s.InsertLogs(ctx, batch(0)); err != nil || n != 150 {
		t.Fatalf("insert at version 8: %d, %v", n, err)
	}
	seqs := func() string {
		t.Helper()
		var got string
		if err := s.w.QueryRowContext(ctx, `SELECT group_concat(seq || ':' || id, ',') FROM (SELECT seq, id FROM logs ORDER BY seq)`).Scan(&got); err != nil {
			t.Fatal(err)
		}
		return got
	}
	indexes := func() string {
		t.Helper()
		var got string
		if err := s.w.QueryRowContext(ctx, `SELECT group_concat(sql, ' | ') FROM (SELECT sql FROM sqlite_master
			WHERE tbl_name = 'logs' AND type = 'index' ORDER BY name)`).Scan(&got); err != nil {
			t.Fatal(err)
		}
		return got
	}
	// search returns the ids a query finds, two pages of 40.
	search := func(q LogQuery) []string {
		t.Helper()
		q.Limit = 40
		var ids []string
		for range 2 {
			got, err := s.SearchLogs(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range got {
				ids = append(ids, r.ID)
			}
			if len(got) == 0 {
				break
			}
			last := got[len(got)-1]
			q.After = &LogCursor{Time: last.Time, ID: last.ID}
		}
		return ids
	}
	// intact runs FTS5's own check of the search index against the table.
	intact := func(stage string) {
		t.Helper()
		if _, err := s.w.ExecContext(ctx, `INSERT INTO logs_fts(logs_fts, rank) VALUES ('integrity-check', 1)`); err != nil {
			t.Fatalf("%s: search index: %v", stage, err)
		}
	}
	queries := []LogQuery{{}, {Text: "c1"}, {Service: "svc-1"}, {Text: "code", Service: "svc-0"}}
	before, wantSeqs := make([][]string, len(queries)), seqs()
	for i, q := range queries {
		before[i] = search(q)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatal(err)
	}
	// Version 9's two, and logs_stored from version 13.
	const want = "CREATE UNIQUE INDEX logs_newest ON logs(time, id) | CREATE INDEX logs_service ON logs(service, time, id) | " +
		"CREATE INDEX logs_stored ON logs(stored_at)"
	if got := indexes(); got != want {
		t.Fatalf("indexes at the latest version:\n%s\nwant\n%s", got, want)
	}
	if got := seqs(); got != wantSeqs {
		t.Fatalf("records after migrating up: %.200s…, want %.200s…", got, wantSeqs)
	}
	intact("after migrating up")
	for i, q := range queries {
		if got := search(q); !slices.Equal(got, before[i]) {
			t.Fatalf("%+v after migrating up: %v, want %v", q, got, before[i])
		}
	}
	// A redelivered batch is skipped; a new one is stored and indexed.
	if n, err := s.InsertLogs(ctx, batch(0)); err != nil || n != 0 {
		t.Fatalf("redelivered batch: %d new, %v; want 0", n, err)
	}
	if n, err := s.InsertLogs(ctx, batch(150)); err != nil || n != 150 {
		t.Fatalf("new batch: %d new, %v; want 150", n, err)
	}
	if got := search(LogQuery{Text: "request 299"}); !slices.Equal(got, []string{"r0299"}) {
		t.Fatalf("request 299: %v", got)
	}
	// An id at a second time is a record of its own at version 9; going
	// down keeps the first.
	again := batch(7)[:1]
	again[0].Time = again[0].Time.Add(time.Hour)
	again[0].Message = "moved record"
	if n, err := s.InsertLogs(ctx, again); err != nil || n != 1 {
		t.Fatalf("an id at a second time: %d new, %v; want 1", n, err)
	}
	if _, err := p.DownTo(ctx, 8); err != nil {
		t.Fatal(err)
	}
	intact("after migrating down")
	if got := search(LogQuery{Text: "moved"}); len(got) != 0 {
		t.Fatalf("the second record of an id after migrating down: %v", got)
	}
	if got := search(LogQuery{Text: "request 7"}); !slices.Equal(got, []string{"r0007"}) {
		t.Fatalf("request 7 after migrating down: %v", got)
	}
	// id's own UNIQUE index has no SQL of its own, so it is not listed.
	const old = "CREATE INDEX logs_newest ON logs(time DESC, id DESC) | CREATE INDEX logs_service ON logs(service, time DESC, id DESC)"
	if got := indexes(); got != old {
		t.Fatalf("indexes after migrating down:\n%s\nwant\n%s", got, old)
	}
	if n, err := s.InsertLogs(ctx, batch(0)); err != nil || n != 0 {
		t.Fatalf("redelivered batch at version 8: %d new, %v; want 0", n, err)
	}
	if got := search(LogQuery{Text: "c1"}); len(got) != 80 {
		t.Fatalf("c1 at version 8: %d records, want 80 (two pages)", len(got))
	}
}

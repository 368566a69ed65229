package store

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/heraldproject/herald"
)

// TestLogIndexMigration: migration 8 rebuilds the log search index (without
// column sizes) from the stored records, and its Down rebuilds the old one;
// searches find the same records at either version, and records stored
// after the migration are indexed too.
func TestLogIndexMigration(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, Options{DSN: filepath.Join(t.TempDir(), "h.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
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

	sub, err := fs.Sub(migrations, "migrations/sqlite")
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, s.w.DB, sub, goose.WithAllowOutofOrder(true))
	if err != nil {
		t.Fatal(err)
	}
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

package store

import (
	"context"
	"testing"
)

// TestSQLitePragmas checks the settings the writer and the readers run with,
// as the connections report them (modernc.org/sqlite applies _pragma values
// in its own order, and a misspelt one is silently ignored).
func TestSQLitePragmas(t *testing.T) {
	ctx := context.Background()
	s := testSQLite(t)
	for _, c := range []struct {
		db     string
		pragma string
		want   string
	}{
		{"writer", "journal_mode", "wal"},
		{"writer", "synchronous", "1"}, // NORMAL
		{"writer", "temp_store", "2"},  // MEMORY
		{"writer", "foreign_keys", "1"},
		{"reader", "query_only", "1"},
		{"reader", "journal_mode", "wal"},
	} {
		db := s.w.DB
		if c.db == "reader" {
			db = s.r.DB
		}
		var got string
		if err := db.QueryRowContext(ctx, "PRAGMA "+c.pragma).Scan(&got); err != nil {
			t.Fatalf("%s: PRAGMA %s: %v", c.db, c.pragma, err)
		}
		if got != c.want {
			t.Errorf("%s: PRAGMA %s = %s, want %s", c.db, c.pragma, got, c.want)
		}
	}
}

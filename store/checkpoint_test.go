package store_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/heraldproject/herald/store"
)

// TestCheckpointer: what is written reaches the database file from the
// checkpointer's connection soon after, long before the writer's own
// automatic checkpoint (10,000 pages) would copy it.
func TestCheckpointer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "h.db")
	s, err := store.Open(context.Background(), store.Options{DSN: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	size := func() int64 {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	time.Sleep(1200 * time.Millisecond) // the migrations' pages are copied
	before := size()
	lines := benchLogLines(time.Now())
	// One transaction per file: the log cannot be checkpointed and started
	// over part way through it, so it holds all of it (about half of the
	// records are this file's; the rest go to store.LogFile).
	if _, err := s.InsertLogs(context.Background(), lines(10000)); err != nil {
		t.Fatal(err)
	}
	wal, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	if wal.Size() < 1<<20 {
		t.Fatalf("the log holds %d bytes after 10,000 records; the test needs more", wal.Size())
	}
	// The database's size as readers see it (through the log).
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var pages, pageSize int64
	if err := db.QueryRow(`PRAGMA page_count`).Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`PRAGMA page_size`).Scan(&pageSize); err != nil {
		t.Fatal(err)
	}
	if pages*pageSize <= before {
		t.Fatalf("%d pages of %d bytes, the file %d bytes before the inserts: the test needs more", pages, pageSize, before)
	}
	deadline := time.Now().Add(10 * time.Second)
	for size() < pages*pageSize {
		if time.Now().After(deadline) {
			t.Fatalf("database file %d bytes (%d before the inserts), %d in all: the log was not checkpointed",
				size(), before, pages*pageSize)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

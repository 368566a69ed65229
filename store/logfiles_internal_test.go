package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/heraldproject/herald"
)

// pageAll pages through q (its Limit a page) and returns the ids found, in
// order; it fails the test on a short page before the last.
func pageAll(t *testing.T, s *Store, q LogQuery) []string {
	t.Helper()
	var ids []string
	for {
		page, err := s.SearchLogs(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page {
			ids = append(ids, r.ID)
		}
		if len(page) < q.Limit {
			return ids
		}
		last := page[len(page)-1]
		q.After = &LogCursor{Time: last.Time, ID: last.ID}
	}
}

// newestFirst is what a search of recs (filtered by keep) must return.
func newestFirst(recs []*herald.LogRecord, keep func(*herald.LogRecord) bool) []string {
	var sorted []*herald.LogRecord
	for _, r := range recs {
		if keep(r) {
			sorted = append(sorted, r)
		}
	}
	slices.SortFunc(sorted, func(x, y *herald.LogRecord) int {
		if c := y.Time.Compare(x.Time); c != 0 {
			return c
		}
		return strings.Compare(y.ID, x.ID)
	})
	ids := make([]string, len(sorted))
	for i, r := range sorted {
		ids[i] = r.ID
	}
	return ids
}

// TestLogFilesTies: records whose times tie, spread over both files and
// ten batches, page newest first (then by id) exactly as one file would.
func TestLogFilesTies(t *testing.T) {
	s := testSQLite(t)
	rng := rand.New(rand.NewPCG(1, 2))
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var all []*herald.LogRecord
	for b := range 10 {
		var batch []*herald.LogRecord
		for range 150 {
			n := rng.IntN(1 << 30)
			batch = append(batch, &herald.LogRecord{ID: fmt.Sprintf("r%x", n), Time: base.Add(time.Duration(rng.IntN(50))),
				Service: fmt.Sprint("svc-", n%3), Level: herald.SeverityInfo, Message: fmt.Sprintf("batch %d word%d", b, n%2)})
		}
		if _, err := s.InsertLogs(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
		all = append(all, batch...)
	}
	for _, q := range []LogQuery{{Limit: 13}, {Limit: 37}, {Text: "word1", Limit: 13}, {Text: "word0", Service: "svc-2", Limit: 37}} {
		want := newestFirst(all, func(r *herald.LogRecord) bool {
			return (q.Text == "" || strings.HasSuffix(r.Message, q.Text)) && (q.Service == "" || r.Service == q.Service)
		})
		if got := pageAll(t, s, q); !slices.Equal(got, want) {
			t.Errorf("%+v: %d records, want %d (first difference at %d)", q, len(got), len(want),
				slices.IndexFunc(got, func(id string) bool { return !slices.Contains(want, id) }))
		}
	}
}

// TestLogFilesUpgrade: records stored before the second log file existed
// and redelivered after it (stored again there) are found once, in full
// pages.
func TestLogFilesUpgrade(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "h.db")
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var recs []*herald.LogRecord
	for i := range 100 {
		recs = append(recs, &herald.LogRecord{ID: fmt.Sprintf("r%03d", i), Time: base.Add(time.Duration(i)), Service: "api",
			Level: herald.SeverityInfo, Message: "before the upgrade"})
	}
	old, err := Open(ctx, Options{DSN: path, singleLogFile: true})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := old.InsertLogs(ctx, recs); err != nil || n != 100 {
		t.Fatalf("before: %d, %v", n, err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, Options{DSN: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n, err := s.InsertLogs(ctx, recs)
	if err != nil || n < 30 || n > 70 {
		t.Fatalf("redelivered after: %d new, %v; want about half (the second file's)", n, err)
	}
	want := newestFirst(recs, func(*herald.LogRecord) bool { return true })
	for _, q := range []LogQuery{{Limit: 30}, {Text: "upgrade", Limit: 30}, {Limit: 100}} {
		if got := pageAll(t, s, q); !slices.Equal(got, want) {
			t.Errorf("%+v: %d records %v…, want %d", q, len(got), got[:min(len(got), 5)], len(want))
		}
	}
}

// TestLogFileMissing: a start that finds the log file gone after it was
// made says so (its records are lost unless it is restored); the first
// start, and the first after an upgrade from one file, do not.
func TestLogFileMissing(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "h.db")
	var logged bytes.Buffer
	open := func(o Options) {
		t.Helper()
		o.DSN, o.Logger = path, slog.New(slog.NewTextHandler(&logged, nil))
		s, err := Open(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	open(Options{singleLogFile: true}) // a data dir from before the split
	open(Options{})                    // the upgrade makes the log file
	open(Options{})
	if strings.Contains(logged.String(), "log file is missing") {
		t.Fatalf("warned before the file was lost:\n%s", logged.String())
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(LogFile(path) + suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
	}
	open(Options{})
	if !strings.Contains(logged.String(), "log file is missing") {
		t.Fatalf("no warning when the log file was lost:\n%s", logged.String())
	}
}

// TestInLogFileIsFNV: which file a record goes to is the parity of the
// 32-bit FNV-1a hash of its id, as the data dirs already written use; it
// must never change, or a redelivery would land in the other file.
func TestInLogFileIsFNV(t *testing.T) {
	for _, id := range []string{"", "a", "r000000000001", "0198a7c2-5a1e-7d3c-9b1f-d000000001", "k-ab12"} {
		h := fnv.New32a()
		h.Write([]byte(id))
		if got, want := inLogFile(id), h.Sum32()&1 == 1; got != want {
			t.Errorf("inLogFile(%q) = %v, want %v", id, got, want)
		}
	}
}

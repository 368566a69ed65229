package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/store"
)

func logRec(id string, at time.Time, service string, level herald.Severity, msg string) *herald.LogRecord {
	return &herald.LogRecord{ID: id, Time: at, Service: service, Level: level, Message: msg,
		Attributes: map[string]string{"host": "h1"}}
}

func ids(recs []*herald.LogRecord) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return out
}

func TestLogs(t *testing.T) {
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		base := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
		recs := []*herald.LogRecord{
			logRec("l1", base, "api", herald.SeverityInfo, "GET /users took 12ms"),
			logRec("l2", base.Add(time.Second), "api", herald.SeverityError, "database connection refused: dial tcp 10.0.0.1:5432"),
			logRec("l3", base.Add(2*time.Second), "worker", herald.SeverityWarning, "Retrying job 42 after timeout"),
			logRec("l4", base.Add(3*time.Second), "worker", herald.SeverityDebug, "polling queue"),
			logRec("l5", base.Add(4*time.Second), "api", herald.SeverityCritical, "out of memory; CONNECTION pool exhausted"),
		}
		recs[1].TraceID, recs[1].SpanID = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"
		n, err := s.InsertLogs(ctx, recs)
		if err != nil || n != 5 {
			t.Fatalf("InsertLogs = %d, %v", n, err)
		}
		// Redelivery: the same ids are stored once.
		if n, err := s.InsertLogs(ctx, recs[:2]); err != nil || n != 0 {
			t.Fatalf("InsertLogs again = %d, %v; want 0 new", n, err)
		}
		if c, err := s.CountLogs(ctx); err != nil || c != 5 {
			t.Fatalf("CountLogs = %d, %v", c, err)
		}
		cases := []struct {
			name string
			q    store.LogQuery
			want []string
		}{
			{"all newest first", store.LogQuery{}, []string{"l5", "l4", "l3", "l2", "l1"}},
			{"word, any case", store.LogQuery{Text: "connection"}, []string{"l5", "l2"}},
			{"two words", store.LogQuery{Text: "connection refused"}, []string{"l2"}},
			{"prefix", store.LogQuery{Text: "retr*"}, []string{"l3"}},
			{"punctuation ignored", store.LogQuery{Text: `"dial" OR (tcp) -NOT*`}, nil},
			{"number", store.LogQuery{Text: "42"}, []string{"l3"}},
			{"service", store.LogQuery{Service: "worker"}, []string{"l4", "l3"}},
			{"min level", store.LogQuery{MinLevel: herald.SeverityError}, []string{"l5", "l2"}},
			{"min level debug is all", store.LogQuery{MinLevel: herald.SeverityDebug}, []string{"l5", "l4", "l3", "l2", "l1"}},
			{"since until", store.LogQuery{Since: base.Add(time.Second), Until: base.Add(3 * time.Second)}, []string{"l3", "l2"}},
			{"combined", store.LogQuery{Text: "connection", Service: "api", MinLevel: herald.SeverityCritical}, []string{"l5"}},
			{"no match", store.LogQuery{Text: "nothing"}, nil},
		}
		for _, tc := range cases {
			got, err := s.SearchLogs(ctx, tc.q)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if fmt.Sprint(ids(got)) != fmt.Sprint(tc.want) {
				t.Errorf("%s: got %v, want %v", tc.name, ids(got), tc.want)
			}
		}
		got, _ := s.SearchLogs(ctx, store.LogQuery{Text: "refused"})
		if len(got) != 1 || got[0].TraceID != recs[1].TraceID || got[0].SpanID != recs[1].SpanID ||
			got[0].Attributes["host"] != "h1" || !got[0].Time.Equal(base.Add(time.Second)) || got[0].Level != herald.SeverityError {
			t.Fatalf("record read back = %+v", got)
		}

		// Pages: newest first, each page continuing after the last.
		var pages [][]string
		var after *store.LogCursor
		for {
			page, err := s.SearchLogs(ctx, store.LogQuery{Limit: 2, After: after})
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			pages = append(pages, ids(page))
			last := page[len(page)-1]
			after = &store.LogCursor{Time: last.Time, ID: last.ID}
		}
		if fmt.Sprint(pages) != "[[l5 l4] [l3 l2] [l1]]" {
			t.Errorf("pages = %v", pages)
		}

		// Bad queries are EINVALID, never a database error.
		for _, q := range []store.LogQuery{{Text: "!!! ***"}, {Limit: -1}, {Limit: store.MaxLogLimit + 1},
			{Text: "a b c d e f g h i j k l m n o p q"}, {MinLevel: "urgent"}} {
			if _, err := s.SearchLogs(ctx, q); herald.ErrorCode(err) != herald.EINVALID {
				t.Errorf("SearchLogs(%+v): err = %v, want EINVALID", q, err)
			}
		}

		// Retention: records stored before the cutoff go, in batches; the
		// index forgets them too.
		n, err = s.PruneLogs(ctx, time.Now().Add(time.Hour), 2)
		if err != nil || n != 5 {
			t.Fatalf("PruneLogs = %d, %v", n, err)
		}
		if got, err := s.SearchLogs(ctx, store.LogQuery{Text: "connection"}); err != nil || len(got) != 0 {
			t.Fatalf("after prune: %v, %v", ids(got), err)
		}
		if _, err := s.InsertLogs(ctx, recs[:1]); err != nil {
			t.Fatal(err)
		}
		if n, err := s.PruneLogs(ctx, time.Now().Add(-time.Hour), 100); err != nil || n != 0 {
			t.Fatalf("PruneLogs of nothing old = %d, %v", n, err)
		}
		if got, _ := s.SearchLogs(ctx, store.LogQuery{Text: "users"}); len(got) != 1 {
			t.Fatalf("record stored again after prune not found: %v", ids(got))
		}
	})
}

// TestLogsBulk inserts batches larger than one INSERT statement, with
// repeats, and finds each record once.
func TestLogsBulk(t *testing.T) {
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		base := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
		var recs []*herald.LogRecord
		for i := range 300 {
			recs = append(recs, logRec(fmt.Sprintf("b%03d", i), base.Add(time.Duration(i)*time.Millisecond), "bulk",
				herald.SeverityInfo, fmt.Sprintf("bulk line %d word%d", i, i%7)))
		}
		if n, err := s.InsertLogs(ctx, recs[:150]); err != nil || n != 150 {
			t.Fatalf("first 150: %d, %v", n, err)
		}
		if n, err := s.InsertLogs(ctx, recs[75:]); err != nil || n != 150 {
			t.Fatalf("next 225 with 75 repeats: %d new, %v; want 150", n, err)
		}
		if c, _ := s.CountLogs(ctx); c != 300 {
			t.Fatalf("count = %d", c)
		}
		got, err := s.SearchLogs(ctx, store.LogQuery{Text: "bulk word3", Limit: 1000})
		if err != nil || len(got) != 43 {
			t.Fatalf("word3: %d records, %v; want 43", len(got), err)
		}
	})
}

// TestPruneLogsPastSkew: records stored while the clock ran ahead (not yet
// due) at the head of store order do not hold up pruning the ones after
// them.
func TestPruneLogsPastSkew(t *testing.T) {
	ctx := context.Background()
	var clock time.Time
	forEachBackendAt(t, func() time.Time { return clock }, func(t *testing.T, s *store.Store) {
		clock = time.Now().Add(24 * time.Hour) // ahead
		var ahead, due []*herald.LogRecord
		for i := range 5 {
			ahead = append(ahead, logRec(fmt.Sprint("ahead", i), time.Now(), "svc", herald.SeverityInfo, "ahead"))
			due = append(due, logRec(fmt.Sprint("due", i), time.Now(), "svc", herald.SeverityInfo, "due"))
		}
		if _, err := s.InsertLogs(ctx, ahead); err != nil {
			t.Fatal(err)
		}
		clock = time.Now().Add(-48 * time.Hour) // stepped back
		if _, err := s.InsertLogs(ctx, due); err != nil {
			t.Fatal(err)
		}
		n, err := s.PruneLogs(ctx, time.Now().Add(-time.Hour), 2)
		if err != nil || n != 5 {
			t.Fatalf("PruneLogs = %d, %v; want the 5 due records", n, err)
		}
		if c, _ := s.CountLogs(ctx); c != 5 {
			t.Fatalf("%d records left, want the 5 not yet due", c)
		}
	})
}

// TestSearchLogsMatchesModel checks full-text search against a brute-force
// model on data built to stress the SQLite search's windows (see
// searchLogsFTS): words from common to rare, several services, and records
// stored out of time order (some arrive late with old times, some early
// with times ahead of the rest), paged with cursors to the end at several
// limits. Every page must be exactly the model's.
func TestSearchLogsMatchesModel(t *testing.T) {
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		rng := rand.New(rand.NewPCG(7, 11))
		base := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
		// every: in every record; half: every other; w7: one in 7;
		// rare: one in 300; late/early: only in out-of-order records.
		var all []*herald.LogRecord
		for batch := range 8 {
			var recs []*herald.LogRecord
			for i := range 250 {
				n := batch*250 + i
				at := base.Add(time.Duration(n) * time.Millisecond)
				words := []string{"every", fmt.Sprintf("n%d", n)}
				if n%2 == 0 {
					words = append(words, "half")
				}
				if n%7 == 0 {
					words = append(words, "w7")
				}
				if n%300 == 0 {
					words = append(words, "rare")
				}
				switch r := rng.IntN(100); {
				case r < 3: // stored now, stamped long ago
					at = base.Add(-time.Duration(rng.IntN(10000)) * time.Millisecond)
					words = append(words, "late")
				case r < 5: // stamped ahead of everything stored after it
					at = base.Add(time.Duration(3000+rng.IntN(3000)) * time.Millisecond)
					words = append(words, "early")
				case r < 7: // the same time as another record: id breaks the tie
					at = base.Add(time.Duration(rng.IntN(3000)) * time.Millisecond)
				}
				recs = append(recs, logRec(fmt.Sprintf("m%05d", n), at, fmt.Sprintf("svc%d", n%3),
					herald.SeverityInfo, strings.Join(words, " ")))
			}
			if _, err := s.InsertLogs(ctx, recs); err != nil {
				t.Fatal(err)
			}
			all = append(all, recs...)
		}
		slices.SortFunc(all, func(a, b *herald.LogRecord) int {
			if c := b.Time.Compare(a.Time); c != 0 {
				return c
			}
			return strings.Compare(b.ID, a.ID)
		})
		has := func(r *herald.LogRecord, word string) bool {
			for _, w := range strings.Fields(r.Message) {
				if w == word || (strings.HasSuffix(word, "*") && strings.HasPrefix(w, strings.TrimSuffix(word, "*"))) {
					return true
				}
			}
			return false
		}
		for _, c := range []struct{ text, service string }{
			{"every", ""}, {"half", ""}, {"w7", ""}, {"rare", ""}, {"late", ""}, {"early", ""},
			{"half w7", ""}, {"every", "svc1"}, {"w7", "svc2"}, {"n1*", ""}, {"nothing", ""},
		} {
			var want []string
			for _, r := range all {
				ok := c.service == "" || r.Service == c.service
				for _, w := range strings.Fields(c.text) {
					ok = ok && has(r, w)
				}
				if ok {
					want = append(want, r.ID)
				}
			}
			limits := []int{50, 1000}
			if len(want) <= 300 { // small pages too, where paging stays cheap under -race
				limits = append(limits, 9)
			}
			for _, limit := range limits {
				var got []string
				var after *store.LogCursor
				for page := 0; ; page++ {
					recs, err := s.SearchLogs(ctx, store.LogQuery{Text: c.text, Service: c.service, Limit: limit, After: after})
					if err != nil {
						t.Fatalf("%q limit %d page %d: %v", c.text, limit, page, err)
					}
					got = append(got, ids(recs)...)
					if len(recs) < limit || page > len(all) {
						break
					}
					last := recs[len(recs)-1]
					after = &store.LogCursor{Time: last.Time, ID: last.ID}
				}
				if !slices.Equal(got, want) {
					t.Fatalf("%q service %q limit %d: got %d records, want %d; first difference at %d",
						c.text, c.service, limit, len(got), len(want), firstDiff(got, want))
				}
			}
		}
	})
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestLogFiles: on SQLite half the log records (by id) are stored in
// store.LogFile, and every read sees both files as one: counts, searches
// paged newest first across them, a redelivery stored once, retention.
func TestLogFiles(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "h.db")
	clock := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s, err := store.Open(ctx, store.Options{DSN: path, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	lines := benchLogLines(clock)
	recs := lines(1000)
	if n, err := s.InsertLogs(ctx, recs); err != nil || n != 1000 {
		t.Fatalf("insert: %d, %v", n, err)
	}
	if n, err := s.InsertLogs(ctx, recs); err != nil || n != 0 {
		t.Fatalf("redelivered: %d new, %v; want 0", n, err)
	}
	for _, p := range []string{path, store.LogFile(path)} {
		db, err := sql.Open("sqlite", "file:"+p+"?mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM logs`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		db.Close()
		if n < 400 || n > 600 {
			t.Errorf("%s holds %d of 1,000 records; want about half", p, n)
		}
	}
	if n, err := s.CountLogs(ctx); err != nil || n != 1000 {
		t.Fatalf("count: %d, %v", n, err)
	}
	// Every record once, newest first, in pages of 64, with and without
	// words to match.
	for _, q := range []store.LogQuery{{Limit: 64}, {Text: "completed", Limit: 64}, {Text: "completed", Service: "svc-3", Limit: 64}} {
		var got []string
		for {
			page, err := s.SearchLogs(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range page {
				got = append(got, r.ID)
			}
			if len(page) < q.Limit {
				break
			}
			last := page[len(page)-1]
			q.After = &store.LogCursor{Time: last.Time, ID: last.ID}
		}
		var want []string
		for i := len(recs) - 1; i >= 0; i-- { // newest first
			if q.Service == "" || recs[i].Service == q.Service {
				want = append(want, recs[i].ID)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%+v: %d records %.60v…, want %d %.60v…", q, len(got), got, len(want), want)
		}
	}
	clock = clock.Add(time.Hour)
	if n, err := s.PruneLogs(ctx, clock, 100); err != nil || n != 1000 {
		t.Fatalf("prune: %d, %v; want 1000", n, err)
	}
	if n, err := s.CountLogs(ctx); err != nil || n != 0 {
		t.Fatalf("count after prune: %d, %v", n, err)
	}
}

package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/internal/testpg"
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
	for _, driver := range []string{"sqlite", "postgres"} {
		t.Run(driver, func(t *testing.T) {
			clock := time.Now().Add(24 * time.Hour) // ahead
			o := store.Options{DSN: filepath.Join(t.TempDir(), "h.db"), Now: func() time.Time { return clock }}
			if driver == "postgres" {
				o = store.Options{Driver: "postgres", DSN: testpg.DSN(t), Now: o.Now}
			}
			s, err := store.Open(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
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
}

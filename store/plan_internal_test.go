package store

import (
	"context"
	"strings"
	"testing"
)

// TestNewestFirstPlans: the newest-first pages (alerts, dead letters, logs,
// a service's logs), first and later, walk their index backwards (the
// indexes are ascending since migrations 9 and 10) instead of sorting: no
// temporary B-tree. The SQL is the shape the list functions build.
func TestNewestFirstPlans(t *testing.T) {
	ctx := context.Background()
	s := testSQLite(t)
	for _, c := range []struct{ index, sql string }{
		{"alerts_newest", `SELECT id FROM alerts ORDER BY created_at DESC, id DESC LIMIT 10`},
		{"alerts_newest", `SELECT id FROM alerts WHERE (created_at, id) < (1, 'a') ORDER BY created_at DESC, id DESC LIMIT 10`},
		{"dead_letters_newest", `SELECT id FROM dead_letters WHERE 1=1 ORDER BY created_at DESC, id DESC LIMIT 10`},
		{"dead_letters_newest", `SELECT id FROM dead_letters WHERE 1=1 AND channel = 'webhook' AND (created_at, id) < (1, 'a')
			ORDER BY created_at DESC, id DESC LIMIT 10`},
		{"logs_newest", `SELECT l.id FROM logs l WHERE 1=1 ORDER BY l.time DESC, l.id DESC LIMIT 10`},
		{"logs_newest", `SELECT l.id FROM logs l WHERE 1=1 AND (l.time, l.id) < (1, 'a') ORDER BY l.time DESC, l.id DESC LIMIT 10`},
		{"logs_service", `SELECT l.id FROM logs l WHERE 1=1 AND l.service = 'api' AND (l.time, l.id) < (1, 'a')
			ORDER BY l.time DESC, l.id DESC LIMIT 10`},
	} {
		rows, err := s.r.QueryContext(ctx, `EXPLAIN QUERY PLAN `+c.sql)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		got := strings.Join(plan, "; ")
		if !strings.Contains(got, "INDEX "+c.index) || strings.Contains(got, "TEMP B-TREE") {
			t.Errorf("%s\nplan: %s\nwant a walk of %s, no sort", c.sql, got, c.index)
		}
	}
}

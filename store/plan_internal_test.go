package store

import (
	"context"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/heraldproject/herald/internal/testpg"
)

// TestNewestFirstPlans: the newest-first indexes are ascending (migrations 9
// and 10), and the newest-first pages (alerts, dead letters, logs, a
// service's logs), first and later, walk them backwards instead of sorting:
// no temporary B-tree; lookups by idempotency key use their index. The SQL is
// the shape the store's functions build.
func TestNewestFirstPlans(t *testing.T) {
	ctx := context.Background()
	s := testSQLite(t)
	// The plans alone would look the same with descending indexes.
	for name, want := range map[string]string{
		"alerts_newest":       "CREATE INDEX alerts_newest ON alerts(created_at, id)",
		"dead_letters_newest": "CREATE INDEX dead_letters_newest ON dead_letters(created_at, id)",
		"logs_newest":         "CREATE UNIQUE INDEX logs_newest ON logs(time, id)",
		"logs_service":        "CREATE INDEX logs_service ON logs(service, time, id)",
	} {
		var got string
		if err := s.r.QueryRowContext(ctx, `SELECT sql FROM sqlite_master WHERE name = ?`, name).Scan(&got); err != nil || got != want {
			t.Errorf("%s: %q, %v; want %q", name, got, err, want)
		}
	}
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
		// The partial index needs its condition stated (AlertByIdempotencyKey,
		// AlertsByIdempotencyKeys); without it, a scan of every alert.
		{"alerts_idempotency", `SELECT id FROM alerts WHERE idempotency_key = 'k' AND ` + keyed + ` ORDER BY created_at DESC LIMIT 1`},
		{"alerts_idempotency", `SELECT id FROM alerts WHERE idempotency_key = 'k' AND ` + keyed +
			` AND created_at >= 5 ORDER BY created_at DESC LIMIT 32`},
		{"alerts_idempotency", `SELECT id FROM alerts WHERE idempotency_key IN ('k', 'l') AND ` + keyed},
		// Dead letters not replayed: counted (the watchdog, /v1/stats) and
		// replayed in bulk, oldest first, through their partial index.
		{"dead_letters_unreplayed", `SELECT COUNT(*) FROM dead_letters WHERE ` + unreplayed},
		{"dead_letters_unreplayed", `SELECT id FROM dead_letters WHERE 1=1 AND ` + unreplayed + ` ORDER BY created_at, id LIMIT 1000`},
		{"dead_letters_unreplayed", `SELECT id FROM dead_letters WHERE 1=1 AND created_at >= 5 AND ` + unreplayed +
			` ORDER BY created_at DESC, id DESC LIMIT 10`},
		// PruneLogs reads the due records from logs_stored, not the table.
		{"logs_stored", `SELECT seq FROM logs WHERE stored_at < 5 ORDER BY stored_at LIMIT 5000`},
		// PruneAlerts walks the oldest alerts, checking each one's deliveries.
		{"alerts_newest", `SELECT a.id, a.user_count FROM alerts a WHERE a.created_at < 5 AND ` + strings.ReplaceAll(alertDone, "?", "5") +
			` ORDER BY a.created_at, a.id LIMIT 1000`},
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
		if strings.Contains(c.sql, "dead_letters dl") && (!strings.Contains(got, "INDEX deliveries_alert") ||
			!strings.Contains(got, "INDEX dead_letters_alert")) {
			t.Errorf("%s\nplan: %s\nwant each alert's deliveries and dead letters through their alert_id indexes", c.sql, got)
		}
		if !strings.Contains(got, "INDEX "+c.index) || strings.Contains(got, "TEMP B-TREE") {
			t.Errorf("%s\nplan: %s\nwant a walk of %s, no sort", c.sql, got, c.index)
		}
	}
}

// TestPostgresNewestIndexes: migration 10 on PostgreSQL rebuilds the
// newest-first indexes ascending (concurrently, outside a transaction), its
// Down rebuilds them descending, and a page of alerts walks the index
// backwards either way.
func TestPostgresNewestIndexes(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, Options{Driver: "postgres", DSN: testpg.DSN(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	defs := func() string {
		t.Helper()
		var got string
		if err := s.w.QueryRowContext(ctx, `SELECT string_agg(indexname || ' ' || substring(indexdef from 'USING .*'), ' | '
			ORDER BY indexname) FROM pg_indexes WHERE schemaname = current_schema()
			AND indexname IN ('alerts_newest', 'dead_letters_newest')`).Scan(&got); err != nil {
			t.Fatal(err)
		}
		return got
	}
	const asc = "alerts_newest USING btree (created_at, id) | dead_letters_newest USING btree (created_at, id)"
	if got := defs(); got != asc {
		t.Fatalf("indexes:\n%s\nwant\n%s", got, asc)
	}
	sub, err := fs.Sub(migrations, "migrations/postgres")
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, s.w.DB, sub, goose.WithAllowOutofOrder(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.DownTo(ctx, 7); err != nil {
		t.Fatal(err)
	}
	const desc = "alerts_newest USING btree (created_at DESC, id DESC) | " +
		"dead_letters_newest USING btree (created_at DESC, id DESC)"
	if got := defs(); got != desc {
		t.Fatalf("indexes after migrating down:\n%s\nwant\n%s", got, desc)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatal(err)
	}
	if got := defs(); got != asc {
		t.Fatalf("indexes after migrating up again:\n%s\nwant\n%s", got, asc)
	}
	if _, err := s.ListAlerts(ctx, &AlertCursor{CreatedAt: time.Now(), ID: "a"}, 10); err != nil {
		t.Fatal(err)
	}
}

// TestPostgresConcurrentMigrations: workers that start together on a new
// database take turns at the migrations (an advisory lock) instead of
// failing on each other's half-made schema.
func TestPostgresConcurrentMigrations(t *testing.T) {
	ctx := context.Background()
	dsn := testpg.DSN(t)
	errs := make(chan error, 3)
	for range 3 {
		go func() {
			s, err := Open(ctx, Options{Driver: "postgres", DSN: dsn})
			if err == nil {
				err = s.Close()
			}
			errs <- err
		}()
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

package bench

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // the driver Herald's store uses, registered as "sqlite"
)

// sqliteDSN opens path as Herald's store opens its writer: WAL,
// synchronous=NORMAL, a busy timeout, foreign keys on, immediate
// transactions (see store.sqliteDSN).
func sqliteDSN(path string) string {
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	return "file:" + path + "?" + q.Encode()
}

// deliveriesTable is Herald's deliveries table (store/migrations/sqlite)
// without the foreign key to alerts.
const deliveriesTable = `CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY,
    alert_id        TEXT NOT NULL,
    recipient_id    TEXT NOT NULL,
    recipient_name  TEXT NOT NULL,
    channel         TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    sent_at         INTEGER,
    next_attempt_at INTEGER
);
CREATE INDEX deliveries_alert ON deliveries(alert_id);`

// storeScenario is the raw store baseline's row label.
func (r *runner) storeScenario() string {
	return fmt.Sprintf("baseline: raw SQLite inserts, %d per tx", r.o.StoreBatch)
}

// rawStore inserts o.StoreRows delivery rows, o.StoreBatch per transaction,
// into a new SQLite database in a temporary directory, through one
// connection (Herald's store has one writer): rows per second and the
// latency of a batch's transaction. again marks the second measurement, at
// the end of the run.
func (r *runner) rawStore(ctx context.Context, again bool) (Result, error) {
	dir, err := os.MkdirTemp("", "herald-bench-store-")
	if err != nil {
		return Result{}, fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	db, err := sql.Open("sqlite", sqliteDSN(filepath.Join(dir, "bench.db")))
	if err != nil {
		return Result{}, fmt.Errorf("open sqlite: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, deliveriesTable); err != nil {
		return Result{}, fmt.Errorf("create table: %w", err)
	}
	ins, err := db.PrepareContext(ctx, `INSERT INTO deliveries (id, alert_id, recipient_id, recipient_name, channel,
		status, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?)`)
	if err != nil {
		return Result{}, fmt.Errorf("prepare: %w", err)
	}
	defer ins.Close()

	scenario := r.storeScenario()
	if again {
		scenario += " (again, at the end)"
	}
	var rows int
	var shown atomic.Int64
	stop := r.progress(scenario, func() string { return fmt.Sprintf("%d rows", shown.Load()) })
	var lat []time.Duration
	limit, cancel := context.WithTimeout(ctx, r.o.Duration)
	defer cancel()
	start := time.Now()
	for rows < r.o.StoreRows && limit.Err() == nil {
		n := min(r.o.StoreBatch, r.o.StoreRows-rows)
		t := time.Now()
		if err := insertBatch(limit, db, ins, rows, n); err != nil {
			if limit.Err() != nil && ctx.Err() == nil {
				break // the time bound, not a failure
			}
			stop()
			return Result{}, err
		}
		lat = append(lat, time.Since(t))
		rows += n
		shown.Store(int64(rows))
	}
	elapsed := time.Since(start)
	stop()
	slices.Sort(lat)
	res := Result{Scenario: scenario, Name: ScenarioStore, Unit: "rows", Requests: rows,
		RequestsPerS: float64(rows) / elapsed.Seconds(), P50ms: ms(pct(lat, .5)), P90ms: ms(pct(lat, .9)),
		P99ms: ms(pct(lat, .99))}
	if len(lat) > 0 {
		res.MaxMs = ms(lat[len(lat)-1])
	}
	return res, nil
}

// insertBatch inserts rows from..from+n in one transaction.
func insertBatch(ctx context.Context, db *sql.DB, ins *sql.Stmt, from, n int) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	st := tx.StmtContext(ctx, ins)
	now := time.Now().UnixNano()
	alert := "0198a7c2-5a1e-7d3c-9b1f-" + strconv.Itoa(from/100)
	for i := from; i < from+n; i++ {
		id := "0198a7c2-5a1e-7d3c-9b1f-d" + strconv.Itoa(i)
		if _, err := st.ExecContext(ctx, id, alert, "u"+strconv.Itoa(i%1000), "bench-user", "webhook", "pending",
			now, now); err != nil {
			return fmt.Errorf("insert: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

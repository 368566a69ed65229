// Package store keeps Herald's durable state: the directory (users, groups,
// memberships), alerts, deliveries, attempts and dead letters. It is one
// concrete Store over two dialects: SQLite (modernc.org/sqlite, WAL), the
// embedded default, and PostgreSQL (pgx), for scaled-out deployments. Queries
// are written once with ? placeholders and rebound per dialect; migrations are
// per dialect (goose, embedded).
//
// A Store is safe for concurrent use. On SQLite, writes go through one
// connection (SQLite has a single writer) and reads use a pool of their own;
// on PostgreSQL both use one pool.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/secrets"
)

//go:embed migrations
var migrations embed.FS

// Options says which database to open.
type Options struct {
	// Driver is "sqlite" (the default) or "postgres".
	Driver string
	// DSN is the database to open: a file path for SQLite, a PostgreSQL
	// connection string (postgres://user@host:5432/db?sslmode=disable) for
	// PostgreSQL.
	DSN string
	// Readers is the size of the read pool (default 4; PostgreSQL: the
	// whole pool, default 16).
	Readers int
	// Logger receives migration progress; nil discards it.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// SecretsKey (32 bytes), when set, encrypts secrets at rest (users'
	// Slack tokens and webhook signing secrets) with AES-256-GCM; see
	// package secrets.
	SecretsKey []byte
	// PreviousSecretsKeys (32 bytes each) only decrypt: values sealed under
	// them stay readable until RotateSecrets re-seals them under SecretsKey.
	PreviousSecretsKeys [][]byte
	// Observe, if set, is told about every write transaction (for metrics).
	Observe func(op string, d time.Duration, err error)
	// ResolveCacheTTL is how long Resolve may reuse what a user or group
	// name resolved to. Directory writes through this Store clear the cache
	// at once; the TTL bounds how long a write by another process (a fleet
	// on one PostgreSQL database) goes unseen. 0 turns the cache off.
	ResolveCacheTTL time.Duration
	// CommitLinger is how long a group commit of few delivery outcomes
	// waits for more before it commits (RecordDelivery); 0 commits at once.
	CommitLinger time.Duration

	// singleLogFile keeps every log record in the one database file (the
	// log file's own store, and tests of a file's schema on its own).
	singleLogFile bool
}

// Store is Herald's durable state.
type Store struct {
	w       conn // the single writer (SQLite), the pool (PostgreSQL)
	r       conn // readers
	now     func() time.Time
	log     *slog.Logger
	observe func(op string, d time.Duration, err error)
	seal    *secrets.Sealer

	stmts     sync.Map // stmtKey → *sql.Stmt
	multiRows sync.Map // multiRowKey → *multiRowStmt (the writer's)
	groupOnce sync.Once
	group     chan updateReq
	groupDone chan struct{}
	quit      chan struct{}
	resolved  resolveCache
	linger    time.Duration
	ckptDone  chan struct{} // closed when the checkpointer (SQLite) has stopped
	// logs2 holds half the log records (SQLite): those whose id hashes
	// odd, in a database file of their own (LogFile), so a second writer
	// stores and indexes them beside the first, on another core.
	logs2 *Store
}

// HasSchema reports whether the database o names already holds Herald's
// tables, without creating or migrating anything: tools that act on an
// existing installation (herald secrets rotate) check it first, so a mistyped
// DSN is not given a fresh, empty schema.
func HasSchema(ctx context.Context, o Options) (bool, error) {
	switch o.Driver {
	case "", "sqlite":
		if _, err := os.Stat(o.DSN); errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		db, err := sql.Open("sqlite", sqliteDSN(o.DSN, false))
		if err != nil {
			return false, fmt.Errorf("store: %w", err)
		}
		defer db.Close()
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'users'`).Scan(&n); err != nil {
			return false, fmt.Errorf("store: %w", err)
		}
		return n > 0, nil
	case "postgres":
		db, err := sql.Open("pgx", o.DSN)
		if err != nil {
			return false, fmt.Errorf("store: %w", err)
		}
		defer db.Close()
		var ok bool
		if err := db.QueryRowContext(ctx, `SELECT to_regclass('users') IS NOT NULL`).Scan(&ok); err != nil {
			return false, fmt.Errorf("store: postgres: %w", err)
		}
		return ok, nil
	}
	return false, fmt.Errorf("store: unsupported driver %q (use sqlite or postgres)", o.Driver)
}

// Open opens (creating if needed) the database and applies pending migrations.
func Open(ctx context.Context, o Options) (*Store, error) {
	if o.Driver == "" {
		o.Driver = "sqlite"
	}
	if o.DSN == "" {
		return nil, errors.New("store: empty DSN")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	seal, err := secrets.New(o.SecretsKey, o.PreviousSecretsKeys...)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	s := &Store{now: o.Now, log: o.Logger, quit: make(chan struct{}), observe: o.Observe, seal: seal,
		resolved: resolveCache{ttl: o.ResolveCacheTTL}, linger: o.CommitLinger}
	switch o.Driver {
	case "sqlite":
		if err := s.openSQLite(ctx, o); err != nil {
			return nil, err
		}
	case "postgres":
		if err := s.openPostgres(ctx, o); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("store: unsupported driver %q (use sqlite or postgres)", o.Driver)
	}
	return s, nil
}

func (s *Store) openSQLite(ctx context.Context, o Options) error {
	if o.Readers <= 0 {
		o.Readers = 4
	}
	if err := os.MkdirAll(filepath.Dir(o.DSN), 0o750); err != nil {
		return fmt.Errorf("store: create directory: %w", err)
	}
	w, err := sql.Open("sqlite", sqliteDSN(o.DSN, true))
	if err != nil {
		return fmt.Errorf("store: open %s: %w", o.DSN, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	s.w = conn{DB: w}
	if err := s.migrate(ctx, goose.DialectSQLite3, "migrations/sqlite"); err != nil {
		w.Close()
		return err
	}
	r, err := sql.Open("sqlite", sqliteDSN(o.DSN, false))
	if err != nil {
		w.Close()
		return fmt.Errorf("store: open %s: %w", o.DSN, err)
	}
	r.SetMaxOpenConns(o.Readers)
	r.SetMaxIdleConns(o.Readers)
	s.r = conn{DB: r}
	if err := s.startCheckpointer(ctx, o.DSN); err != nil {
		r.Close()
		w.Close()
		return err
	}
	if !o.singleLogFile {
		if err := s.openLogFile(ctx, o); err != nil {
			s.Close()
			return err
		}
	}
	return nil
}

// logFileMade is the bit of the main file's user_version that says its log
// file (LogFile) has been made: a start that finds the bit set and the file
// gone says so, instead of silently starting an empty one.
const logFileMade = 1

// openLogFile opens (making it the first time) the second log file beside
// the SQLite store o names.
func (s *Store) openLogFile(ctx context.Context, o Options) error {
	path := LogFile(o.DSN)
	var version int
	if err := s.w.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return fmt.Errorf("store: %s: %w", o.DSN, err)
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) && version&logFileMade != 0 {
		s.log.Warn("the log file is missing: starting an empty one; the log records that were in it are gone "+
			"unless it is restored beside the main file while Herald is stopped", "file", path, "main", o.DSN)
	}
	lo := o
	lo.DSN, lo.singleLogFile = path, true
	lo.Logger = o.Logger.With("file", path)
	l, err := Open(ctx, lo)
	if err != nil {
		return fmt.Errorf("store: log file %s: %w", path, err)
	}
	s.logs2 = l
	if version&logFileMade == 0 {
		if _, err := s.w.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, version|logFileMade)); err != nil {
			return fmt.Errorf("store: %s: %w", o.DSN, err)
		}
	}
	return nil
}

// LogFile is the second database file of the SQLite store at path: half
// the log records are stored there, written beside the main file's writer.
// Indexing log records for search is the store's largest single cost, and
// SQLite has one writer per file: two files measured +18% log records/s
// until searchable on two cores (docs/BENCHMARKS.md, fix 28).
func LogFile(path string) string { return strings.TrimSuffix(path, ".db") + "-logs.db" }

func (s *Store) openPostgres(ctx context.Context, o Options) error {
	if o.Readers <= 0 {
		o.Readers = 16
	}
	db, err := sql.Open("pgx", o.DSN)
	if err != nil {
		return fmt.Errorf("store: open postgres: %w", err)
	}
	db.SetMaxOpenConns(o.Readers)
	db.SetMaxIdleConns(o.Readers)
	db.SetConnMaxIdleTime(5 * time.Minute)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return fmt.Errorf("store: postgres at %s does not answer: %w", redactDSN(o.DSN), err)
	}
	s.w = conn{DB: db, pg: true}
	s.r = s.w
	if err := s.migrate(ctx, goose.DialectPostgres, "migrations/postgres"); err != nil {
		db.Close()
		return err
	}
	return nil
}

// redactDSN drops the password from a connection string for messages.
func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return "(the configured DSN)"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

func sqliteDSN(path string, writer bool) string {
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "foreign_keys(1)")
	if writer {
		q.Set("_txlock", "immediate")
		q.Add("_pragma", fmt.Sprintf("wal_autocheckpoint(%d)", writerAutoCheckpoint))
		q.Add("_pragma", fmt.Sprintf("journal_size_limit(%d)", walSizeLimit))
		// Statement journals (a multi-row INSERT's, the FTS index's) stay in
		// memory instead of spilling to a temp file past 64 KiB: those
		// writes were 3% of a log batch's time; log inserts +7-11%.
		q.Add("_pragma", "temp_store(MEMORY)")
	} else {
		q.Add("_pragma", "query_only(1)")
	}
	return "file:" + path + "?" + q.Encode()
}

func (s *Store) migrate(ctx context.Context, dialect goose.Dialect, dir string) error {
	sub, err := fs.Sub(migrations, dir)
	if err != nil {
		return fmt.Errorf("store: migrations: %w", err)
	}
	// Out of order: migrations are numbered by the branch that adds them,
	// so a database may already hold a later one when an earlier number
	// arrives; each migration stands on its own, so applying it late is safe.
	opts := []goose.ProviderOption{goose.WithAllowOutofOrder(true)}
	if dialect == goose.DialectPostgres {
		// Workers starting together take turns: the first migrates, the
		// rest wait for its advisory lock and then find nothing pending.
		l, err := s.migrationLock(ctx)
		if err != nil {
			return err
		}
		opts = append(opts, goose.WithSessionLocker(l))
	}
	p, err := goose.NewProvider(dialect, s.w.DB, sub, opts...)
	if err != nil {
		return fmt.Errorf("store: migrations: %w", err)
	}
	if st, err := p.Status(ctx); err == nil {
		s.announcePending(st)
		s.announceRebuild(ctx, st, dialect)
	}
	res, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	for _, r := range res {
		s.log.Info("store migration applied", "version", r.Source.Version, "path", r.Source.Path, "duration", r.Duration)
	}
	return nil
}

// migrationLock is the PostgreSQL advisory lock that serializes migrations:
// one per database and schema (a schema's migrations do not wait for
// another's), tried every second for up to five minutes.
func (s *Store) migrationLock(ctx context.Context) (lock.SessionLocker, error) {
	var where string
	if err := s.w.QueryRowContext(ctx, `SELECT current_database() || '.' || current_schema()`).Scan(&where); err != nil {
		return nil, fmt.Errorf("store: migrations: %w", err)
	}
	h := fnv.New64a()
	h.Write([]byte("herald migrations " + where))
	l, err := lock.NewPostgresSessionLocker(lock.WithLockID(int64(h.Sum64())), lock.WithLockTimeout(1, 300))
	if err != nil {
		return nil, fmt.Errorf("store: migrations: %w", err)
	}
	return l, nil
}

// logRebuilds are the SQLite migrations that rewrite every stored log
// record, each with what it does and how many records it did per second
// here (upgrading a data dir the previous binary made).
var logRebuilds = map[int64]struct {
	what string
	rate int64
}{
	8:  {"rebuilding the log search index", 300_000},
	9:  {"rebuilding the log table with one index fewer", 200_000},
	13: {"indexing the log records by when they were stored", 1_000_000},
}

// announceRebuild says, before it starts, that a pending migration will
// rewrite the stored log records, and roughly how long that takes: the
// migration runs before Herald listens, for as long as the records take.
func (s *Store) announceRebuild(ctx context.Context, st []*goose.MigrationStatus, dialect goose.Dialect) {
	if dialect != goose.DialectSQLite3 {
		return
	}
	var n int64 = -1
	for _, m := range st {
		r, ok := logRebuilds[m.Source.Version]
		if !ok || m.State != goose.StatePending {
			continue
		}
		if n < 0 {
			if err := s.w.QueryRowContext(ctx, `SELECT count(*) FROM logs`).Scan(&n); err != nil {
				return // no logs table yet
			}
		}
		if n == 0 {
			return // nothing to rewrite
		}
		s.log.Info(r.what+" (once, before Herald listens)", "migration", m.Source.Version,
			"records", n, "estimate", (time.Duration(n/r.rate)+1)*time.Second)
	}
}

// announcePending logs the migrations about to be applied, before any runs:
// one may take minutes (a PostgreSQL index built CONCURRENTLY on a large
// table waits for the transactions before it), and Herald listens only
// once they are done.
func (s *Store) announcePending(st []*goose.MigrationStatus) {
	var pending []string
	for _, m := range st {
		if m.State == goose.StatePending {
			pending = append(pending, path.Base(m.Source.Path))
		}
	}
	if len(pending) > 0 {
		s.log.Info("applying store migrations before Herald listens", "pending", pending)
	}
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.r.PingContext(ctx); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	if s.logs2 != nil {
		return s.logs2.Ping(ctx)
	}
	return nil
}

// Close stops the group-commit writer and closes both pools.
func (s *Store) Close() error {
	close(s.quit)
	if s.groupDone != nil {
		<-s.groupDone
	}
	if s.ckptDone != nil {
		<-s.ckptDone
	}
	s.stmts.Range(func(_, v any) bool { v.(*sql.Stmt).Close(); return true })
	var logs2 error
	if s.logs2 != nil {
		logs2 = s.logs2.Close()
	}
	if s.r.DB == s.w.DB {
		return errors.Join(s.w.Close(), logs2)
	}
	return errors.Join(s.r.Close(), s.w.Close(), logs2)
}

// tx runs fn in a write transaction, committing if fn returns nil.
func (s *Store) tx(ctx context.Context, op string, fn func(txn) error) (err error) {
	if s.observe != nil {
		start := time.Now()
		defer func() { s.observe(op, time.Since(start), err) }()
	}
	tx, err := s.w.begin(ctx)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

func nanos(t time.Time) int64 { return t.UnixNano() }

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

func fromNullNanos(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := fromNanos(n.Int64)
	return &t
}

func nullNanos(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixNano(), Valid: true}
}

// isUniqueViolation reports whether err is a UNIQUE/PRIMARY KEY constraint
// failure, in either dialect.
func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505"
	}
	var se interface{ Code() int }
	if errors.As(err, &se) {
		// SQLITE_CONSTRAINT_UNIQUE 2067, SQLITE_CONSTRAINT_PRIMARYKEY 1555
		return se.Code() == 2067 || se.Code() == 1555
	}
	return false
}

func notFound(what, id string) error {
	return herald.Errorf(herald.ENOTFOUND, "%s %q not found", what, id)
}

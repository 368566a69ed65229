// Package store keeps Herald's durable state: the directory (users, groups,
// memberships), alerts and their deliveries. It is one concrete Store with
// per-dialect SQL; SQLite (modernc.org/sqlite, WAL) is the embedded default.
//
// A Store is safe for concurrent use. Writes go through one connection (SQLite
// has a single writer); reads use a small pool of their own.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/heraldproject/herald"
)

//go:embed migrations
var migrations embed.FS

// Options says which database to open.
type Options struct {
	// Driver is "sqlite" (the default).
	Driver string
	// DSN is the database to open. For SQLite it is a file path.
	DSN string
	// Readers is the size of the read pool (default 4).
	Readers int
	// Logger receives migration progress; nil discards it.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Store is Herald's durable state.
type Store struct {
	w   *sql.DB // the single writer
	r   *sql.DB // readers
	now func() time.Time
	log *slog.Logger

	groupOnce sync.Once
	group     chan updateReq
	groupDone chan struct{}
	quit      chan struct{}
}

// Open opens (creating if needed) the database and applies pending migrations.
func Open(ctx context.Context, o Options) (*Store, error) {
	if o.Driver == "" {
		o.Driver = "sqlite"
	}
	if o.Driver != "sqlite" {
		return nil, fmt.Errorf("store: unsupported driver %q (supported: sqlite)", o.Driver)
	}
	if o.DSN == "" {
		return nil, errors.New("store: empty DSN")
	}
	if o.Readers <= 0 {
		o.Readers = 4
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if err := os.MkdirAll(filepath.Dir(o.DSN), 0o750); err != nil {
		return nil, fmt.Errorf("store: create directory: %w", err)
	}
	w, err := sql.Open("sqlite", sqliteDSN(o.DSN, true))
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", o.DSN, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	s := &Store{w: w, now: o.Now, log: o.Logger, quit: make(chan struct{})}
	if err := s.migrate(ctx); err != nil {
		w.Close()
		return nil, err
	}
	r, err := sql.Open("sqlite", sqliteDSN(o.DSN, false))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("store: open %s: %w", o.DSN, err)
	}
	r.SetMaxOpenConns(o.Readers)
	r.SetMaxIdleConns(o.Readers)
	s.r = r
	return s, nil
}

func sqliteDSN(path string, writer bool) string {
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "foreign_keys(1)")
	if writer {
		q.Set("_txlock", "immediate")
	} else {
		q.Add("_pragma", "query_only(1)")
	}
	return "file:" + path + "?" + q.Encode()
}

func (s *Store) migrate(ctx context.Context) error {
	sub, err := fs.Sub(migrations, "migrations/sqlite")
	if err != nil {
		return fmt.Errorf("store: migrations: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, s.w, sub)
	if err != nil {
		return fmt.Errorf("store: migrations: %w", err)
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

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.r.PingContext(ctx); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	return nil
}

// Close stops the group-commit writer and closes both pools.
func (s *Store) Close() error {
	close(s.quit)
	if s.groupDone != nil {
		<-s.groupDone
	}
	return errors.Join(s.r.Close(), s.w.Close())
}

// tx runs fn in a write transaction, committing if fn returns nil.
func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
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
// failure.
func isUniqueViolation(err error) bool {
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

package store

import (
	"context"
	"io/fs"
	"path/filepath"
	"testing"

	"github.com/pressly/goose/v3"
)

// testSQLite opens a store on a new SQLite file in a temporary directory,
// closed when the test ends. (The package's own tests cannot use
// internal/teststore, which imports this package.)
func testSQLite(t *testing.T) *Store {
	t.Helper()
	return openTestSQLite(t, Options{})
}

// testSQLiteOneFile is testSQLite with every log record in the main file,
// for tests of that file's schema on its own.
func testSQLiteOneFile(t *testing.T) *Store {
	t.Helper()
	return openTestSQLite(t, Options{singleLogFile: true})
}

func openTestSQLite(t *testing.T, o Options) *Store {
	t.Helper()
	o.DSN = filepath.Join(t.TempDir(), "h.db")
	s, err := Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// sqliteMigrations is a goose provider of the SQLite migrations on s's
// writer, for tests that migrate down and up again.
func sqliteMigrations(t *testing.T, s *Store) *goose.Provider {
	t.Helper()
	sub, err := fs.Sub(migrations, "migrations/sqlite")
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, s.w.DB, sub, goose.WithAllowOutofOrder(true))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

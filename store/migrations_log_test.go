package store_test

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldproject/herald/store"
)

// TestMigrationsAnnounced: a start that has migrations to apply says so
// before applying them (one may take minutes), naming them; a start with
// none pending says nothing.
func TestMigrationsAnnounced(t *testing.T) {
	dsn := filepath.Join(t.TempDir(), "herald.db")
	open := func() string {
		t.Helper()
		var buf bytes.Buffer
		s, err := store.Open(t.Context(), store.Options{DSN: dsn, Logger: slog.New(slog.NewTextHandler(&buf, nil))})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.String()
	}
	first := open()
	announced := strings.Index(first, "applying store migrations before Herald listens")
	applied := strings.Index(first, "store migration applied")
	if announced < 0 || applied < announced {
		t.Fatalf("first start: no announcement before the migrations ran:\n%s", first)
	}
	if !strings.Contains(first[announced:applied], "00001_init.sql") {
		t.Errorf("announcement does not name the pending migrations:\n%s", first[announced:applied])
	}
	if again := open(); strings.Contains(again, "applying store migrations") {
		t.Errorf("second start announced migrations with none pending:\n%s", again)
	}
}

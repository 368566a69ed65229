package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// SQLite's automatic checkpoint (copying the write-ahead log back into the
// database file) runs inside the commit that takes the log past
// wal_autocheckpoint pages, on the one writer connection: every write waits
// behind it. The store checkpoints from a connection of its own instead, so
// the copy runs beside the writer (on another core when there is one), and
// the writer's own automatic checkpoint only backs it up.
const (
	// checkpointEvery is how often the checkpointer copies the log while
	// there is something to copy.
	checkpointEvery = 100 * time.Millisecond
	// checkpointIdle is how often it looks while there was nothing.
	checkpointIdle = time.Second
	// writerAutoCheckpoint is the writer's own automatic checkpoint, in
	// pages: the backstop for a checkpointer that falls behind (SQLite's
	// default is 1,000).
	writerAutoCheckpoint = 10000
	// walSizeLimit is the size, in bytes, the log file is cut back to when
	// it starts over, so a backlog does not leave it at its largest.
	walSizeLimit = 16 << 20
)

// startCheckpointer opens the checkpointer's connection to the database at
// path and runs it until Close.
func (s *Store) startCheckpointer(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite", sqliteDSN(path, false))
	if err != nil {
		return fmt.Errorf("store: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return fmt.Errorf("store: open %s: %w", path, err)
	}
	s.ckptDone = make(chan struct{})
	// A checkpoint in progress at Close is abandoned, not waited for.
	stop, cancel := context.WithCancel(context.Background())
	go func() { <-s.quit; cancel() }()
	go func() {
		defer close(s.ckptDone)
		defer db.Close()
		var (
			last   [2]int
			failed bool
		)
		t := time.NewTimer(checkpointEvery)
		defer t.Stop()
		for {
			select {
			case <-stop.Done():
				return
			case <-t.C:
			}
			frames, copied, err := checkpoint(stop, db)
			wait := checkpointIdle
			switch {
			case stop.Err() != nil:
				return
			case err != nil:
				if !failed { // once, not every second
					s.log.Warn("SQLite checkpoints failing; the writer checkpoints by itself meanwhile", "err", err)
				}
				failed = true
			case [2]int{frames, copied} != last: // the log moved since the last look
				wait = checkpointEvery
			}
			if err == nil && failed {
				s.log.Info("SQLite checkpoints work again")
				failed = false
			}
			last = [2]int{frames, copied}
			t.Reset(wait)
		}
	}()
	return nil
}

// checkpoint copies what it can of the log without waiting for readers or
// the writer (PASSIVE), and returns how many frames the log holds and how
// many of them are in the database file now.
func checkpoint(ctx context.Context, db *sql.DB) (frames, copied int, err error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var busy int
	if err := db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &copied); err != nil {
		return 0, 0, fmt.Errorf("checkpoint: %w", err)
	}
	return frames, copied, nil
}

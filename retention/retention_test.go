package retention_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldproject/herald/retention"
)

// TestPruner: Run prunes at once with the cutoff now minus the retention,
// again at every tick, logs what it pruned and a failure (and goes on after
// it), and returns when its context ends.
func TestPruner(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	var cutoffs []time.Time
	var logs bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	p := &retention.Pruner{What: "alerts", Retention: time.Hour, Every: 5 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&syncWriter{w: &logs, mu: &mu}, nil)),
		Now:    func() time.Time { return now },
		Prune: func(_ context.Context, cutoff time.Time) (int, error) {
			mu.Lock()
			defer mu.Unlock()
			cutoffs = append(cutoffs, cutoff)
			switch len(cutoffs) {
			case 1:
				return 7, nil
			case 2:
				return 0, errors.New("database is locked")
			case 4:
				cancel()
			}
			return 0, nil
		}}
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(cutoffs) != 4 {
		t.Fatalf("pruned %d times, want 4", len(cutoffs))
	}
	for _, c := range cutoffs {
		if !c.Equal(now.Add(-time.Hour)) {
			t.Errorf("cutoff %s, want %s", c, now.Add(-time.Hour))
		}
	}
	out := logs.String()
	for _, want := range []string{"what=alerts count=7 retention=1h0m0s", `"database is locked"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "retention: pruned"); n != 1 {
		t.Errorf("%d 'pruned' lines, want 1 (nothing pruned is not logged):\n%s", n, out)
	}
}

type syncWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

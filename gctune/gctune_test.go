package gctune

import (
	"context"
	"math"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestLimit(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		name   string
		memory int64
		u      Usage
		want   int64
	}{
		{"small heap: the budget", 192 * mib, Usage{Live: 20 * mib, Other: 10 * mib, Unused: 1 * mib}, 192 * mib},
		{"at the budget", 192 * mib, Usage{Live: 90 * mib, Other: 12 * mib}, 192 * mib},
		{"past it: Go's default", 192 * mib, Usage{Live: 100 * mib, Other: 10 * mib, Unused: 2 * mib}, 212 * mib},
		{"huge", 1, Usage{Live: math.MaxUint64 / 2}, math.MaxInt64},
	} {
		if got := Limit(c.memory, c.u); got != c.want {
			t.Errorf("%s: Limit = %d MiB, want %d MiB", c.name, got/mib, c.want/mib)
		}
	}
}

func TestDisabled(t *testing.T) {
	for _, c := range []struct {
		memory  int64
		environ []string
		want    string
	}{
		{192 << 20, []string{"PATH=/bin", "GOGCX=1"}, ""},
		{0, nil, "gc.memoryMB is 0"},
		{192 << 20, []string{"GOGC=off"}, "GOGC is set"},
		{192 << 20, []string{"HOME=/", "GOMEMLIMIT=1GiB"}, "GOMEMLIMIT is set"},
	} {
		if got := Disabled(c.memory, c.environ); got != c.want {
			t.Errorf("Disabled(%d, %q) = %q, want %q", c.memory, c.environ, got, c.want)
		}
	}
}

// TestRun tunes this test process's collector: the limit is the budget while
// the heap is small, rises above it once the live heap is more than half of
// it, and Go's defaults are back when Run returns.
func TestRun(t *testing.T) {
	const budget = 32 << 20
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, Options{Memory: budget, Interval: 5 * time.Millisecond})
	}()
	waitFor(t, "GOGC 200 and the budget as the limit", func() bool {
		return gcPercent() == Percent && debug.SetMemoryLimit(-1) == budget
	})

	live := make([][]byte, 48)
	for i := range live {
		live[i] = make([]byte, 1<<20)
	}
	waitFor(t, "a limit above twice a 48 MiB live heap", func() bool {
		runtime.GC()
		return debug.SetMemoryLimit(-1) >= 2*48<<20
	})
	runtime.KeepAlive(live)

	cancel()
	<-done
	if p, l := gcPercent(), debug.SetMemoryLimit(-1); p != 100 || l != math.MaxInt64 {
		t.Fatalf("after Run: GOGC %d, limit %d; want Go's defaults", p, l)
	}
}

func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatalf("not within 10 s: %s", what)
}

package gctune

import (
	"context"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

const mib = 1 << 20

func TestPercent(t *testing.T) {
	for _, c := range []struct {
		name   string
		memory int64
		u      Usage
		want   int
	}{
		{"small heap: the most", 192 * mib, Usage{Live: 20 * mib, Scan: 1 * mib, Other: 10 * mib, Unused: 1 * mib}, MaxPercent},
		// (192 - 60 - 12 - 0) / 60 = 2
		{"just fits at the most", 192 * mib, Usage{Live: 60 * mib, Other: 12 * mib}, MaxPercent},
		// (192 - 70 - 12 - 2) / (70 + 2) = 1.5
		{"in between, scan counted", 192 * mib, Usage{Live: 70 * mib, Scan: 2 * mib, Other: 12 * mib, Unused: 2 * mib}, 150},
		{"past the budget: Go's default", 192 * mib, Usage{Live: 100 * mib, Other: 10 * mib, Unused: 2 * mib}, MinPercent},
		{"over it", 192 * mib, Usage{Live: 300 * mib}, MinPercent},
		{"nothing live", 192 * mib, Usage{Other: 5 * mib}, MaxPercent},
		{"no budget", 0, Usage{Live: 1}, MinPercent},
	} {
		if got := Percent(c.memory, c.u); got != c.want {
			t.Errorf("%s: Percent = %d, want %d", c.name, got, c.want)
		}
	}
}

func TestDisabled(t *testing.T) {
	for _, c := range []struct {
		memory  int64
		environ []string
		want    string
	}{
		{192 * mib, []string{"PATH=/bin", "GOGCX=1"}, ""},
		{192 * mib, []string{"GOGC=", "GOMEMLIMIT="}, ""}, // empty: unset, as the runtime reads it
		{0, nil, "gc.memoryMB is 0"},
		{192 * mib, []string{"GOGC=off"}, "GOGC is set"},
		{192 * mib, []string{"HOME=/", "GOMEMLIMIT=1GiB"}, "GOMEMLIMIT is set"},
	} {
		if got := Disabled(c.memory, c.environ); got != c.want {
			t.Errorf("Disabled(%d, %q) = %q, want %q", c.memory, c.environ, got, c.want)
		}
	}
}

// TestSamples checks the runtime reports every metric Usage is made of,
// and that they describe this process.
func TestSamples(t *testing.T) {
	s, err := newSamples()
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	u := s.read()
	if u.Live == 0 || u.Scan == 0 || u.Other == 0 {
		t.Fatalf("usage %+v: want a live heap, scanned roots and other memory", u)
	}
}

// TestRun tunes this test process's collector: GOGC is the most while the
// heap is small against the budget, Go's default once a collection finds
// the live heap too big for it, the most again once it has shrunk, and
// what it was before once Run returns.
func TestRun(t *testing.T) {
	const budget = 96 * mib
	before := debug.SetGCPercent(150)
	defer debug.SetGCPercent(before)
	runtime.GC() // an earlier test's heap is not this one's
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, Options{Memory: budget}) }()
	waitGOGC(t, MaxPercent, nil)

	live := make([][]byte, 64) // 64 MiB live: no room to grow by twice that
	for i := range live {
		live[i] = make([]byte, mib)
	}
	waitGOGC(t, MinPercent, runtime.GC)
	runtime.KeepAlive(live)
	live = nil
	waitGOGC(t, MaxPercent, runtime.GC)

	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if p := gogc(); p != 150 {
		t.Fatalf("after Run: GOGC %d, want the 150 it found", p)
	}
}

// gogc reads GOGC without setting it.
func gogc() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int(s[0].Value.Uint64())
}

// waitGOGC waits up to 10 s for GOGC to be want, calling poke (when not
// nil) between looks.
func waitGOGC(t *testing.T, want int, poke func()) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); gogc() != want; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("GOGC is %d, not %d within 10 s", gogc(), want)
		}
		if poke != nil {
			poke()
		}
	}
}

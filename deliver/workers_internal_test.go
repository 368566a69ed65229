package deliver

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestWorkers: every function runs once; functions that wait for each
// other all run at once (nothing bounds them); and a function given after
// the last one ended runs on a kept goroutine, not a new one.
func TestWorkers(t *testing.T) {
	w := newWorkers()
	const n = 20
	var ran atomic.Int64
	var all sync.WaitGroup
	all.Add(n)
	release := make(chan struct{})
	var done sync.WaitGroup
	for range n {
		done.Add(1)
		w.Go(func() {
			defer done.Done()
			ran.Add(1)
			all.Done()
			<-release // held until all n are running
		})
	}
	all.Wait()
	close(release)
	done.Wait()
	if got := ran.Load(); got != n {
		t.Fatalf("%d runs, want %d", got, n)
	}
	before := w.started.Load()
	if before != n {
		t.Fatalf("%d goroutines for %d functions running at once", before, n)
	}
	for range 50 {
		time.Sleep(2 * time.Millisecond) // the last one is back waiting
		ch := make(chan struct{})
		w.Go(func() { close(ch) })
		<-ch
	}
	if extra := w.started.Load() - before; extra > 10 {
		t.Fatalf("50 functions one after another started %d goroutines: workers are not kept", extra)
	}
}

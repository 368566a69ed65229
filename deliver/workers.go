package deliver

import (
	"sync/atomic"
	"time"
)

// workerIdle is how long an idle worker waits for more work before it ends.
const workerIdle = 10 * time.Second

// workers runs functions on goroutines kept between batches. A goroutine
// started for one send grows its stack as the send goes deep (the HTTP
// client, encoders, metrics); a new goroutine per record had its stack grown
// and copied every time (runtime.newstack was 4.2% of the CPU at 1,000
// alerts/s × 10). A kept goroutine keeps its grown stack while it works (the
// collector may shrink an idle one's). There is no bound: Go starts a new
// goroutine whenever none is idle, and the sender bounds how much runs at
// once.
type workers struct {
	idle    chan func() // unbuffered: a send succeeds only if a worker waits
	started atomic.Int64
}

func newWorkers() *workers { return &workers{idle: make(chan func())} }

// Go runs f on an idle worker, or on a new one when none is idle.
func (w *workers) Go(f func()) {
	select {
	case w.idle <- f:
	default:
		w.started.Add(1)
		go w.run(f)
	}
}

// run runs f, then whatever it is given next, until it has been idle for
// workerIdle.
func (w *workers) run(f func()) {
	t := time.NewTimer(workerIdle)
	defer t.Stop()
	for {
		f()
		f = nil // an idle worker holds nothing of the work it did
		t.Reset(workerIdle)
		select {
		case f = <-w.idle:
		case <-t.C:
			return
		}
	}
}

package deliver

import "sync"

// Fresh remembers the deliveries this process's fan-out stage has just
// created, so the sending stage of the same process knows their state
// (pending, no attempt yet) without reading it: the batch's state read was
// 8% of the CPU while draining fan-out 10 (docs/BENCHMARKS.md).
//
// A delivery is taken at most once: its first record in this process uses
// the known state, and any later record of it (a duplicate from a retried
// fan-out batch, a redelivered batch) reads the store as before. Clear must
// be called whenever the sending stage's partitions move (a rebalance):
// another process may then have handled records this one will see again.
// It holds at most size ids (those not taken soonest are forgotten, and
// their records read the store), so ids whose records another process
// consumes cannot pile up.
//
// The zero value is not usable; use NewFresh. A nil *Fresh holds nothing.
type Fresh struct {
	mu        sync.Mutex
	cur, prev map[string]struct{}
	half      int
}

// NewFresh returns a Fresh holding at most size ids (at least 2).
func NewFresh(size int) *Fresh {
	return &Fresh{cur: make(map[string]struct{}), prev: make(map[string]struct{}), half: max(size/2, 1)}
}

// Add remembers new pending deliveries. Call it before their records can be
// consumed (before they are produced).
func (f *Fresh) Add(ids ...string) {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range ids {
		if len(f.cur) >= f.half {
			// The older generation is forgotten: at most 2×half ids.
			f.prev, f.cur = f.cur, make(map[string]struct{}, f.half)
		}
		f.cur[id] = struct{}{}
	}
}

// Take reports whether id was added and not taken since (nor forgotten),
// and forgets it.
func (f *Fresh) Take(id string) bool {
	if f == nil {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.cur[id]; ok {
		delete(f.cur, id)
		return true
	}
	if _, ok := f.prev[id]; ok {
		delete(f.prev, id)
		return true
	}
	return false
}

// Clear forgets every id.
func (f *Fresh) Clear() {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.cur)
	clear(f.prev)
}

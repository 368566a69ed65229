package bus

import (
	"context"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

// maxPending bounds the entries of a consumer's commit queue. Beyond it, a
// handled batch joins the newest entry (their records committed together,
// once the work of both is done) instead of holding up the poll loop: one
// batch whose deferred work is slow (a send to an endpoint that hangs) must
// not stop the consumer taking the batches behind it.
const maxPending = 64

// deferKey is the context key of a batch's deferred work.
type deferKey struct{}

// deferred is the work a handler deferred for one batch.
type deferred struct {
	mu    sync.Mutex
	waits []func() error
}

// Defer makes the commit of the batch being handled wait for wait, which
// blocks until work the handler started and did not finish (its records
// handed on in memory, say) is done and durable, and returns an error only
// when that work was abandoned (at shutdown). ctx must be the context the
// consumer gave the handler. The consumer goes on to its next batches
// meanwhile, and commits every batch in the order it was handled, only once
// the waits of it and of every batch before it have returned nil: a crash
// meanwhile redelivers the batch, as if its handler had not returned. A
// wait that fails stops the consumer's commits, and Run returns the error.
//
// It reports false when ctx is not a consumer's (the handler was called
// directly): the caller must then wait itself before returning.
func Defer(ctx context.Context, wait func() error) bool {
	d, ok := ctx.Value(deferKey{}).(*deferred)
	if !ok {
		return false
	}
	d.mu.Lock()
	d.waits = append(d.waits, wait)
	d.mu.Unlock()
	return true
}

// pendingBatch is a handled batch whose commit waits for deferred work.
type pendingBatch struct {
	recs  []*kgo.Record
	waits []func() error
	seq   uint64
}

// committer commits handled batches in order, each once its deferred work
// is done. One goroutine (run) waits and commits; the poll loop adds
// batches, and a revoke waits for those added before it.
type committer struct {
	commit func(recs []*kgo.Record) // commits and logs a failure

	mu      sync.Mutex
	changed chan struct{} // closed and replaced whenever the state below changes
	queue   []pendingBatch
	added   uint64 // seq of the newest batch added
	done    uint64 // seq of the newest batch committed
	closed  bool   // no more batches: run returns once the queue is empty
	err     error  // the first deferred work that failed; nothing is committed after it
}

func newCommitter(commit func([]*kgo.Record)) *committer {
	return &committer{commit: commit, changed: make(chan struct{})}
}

// broadcast wakes whoever waits for a change. Call it with mu held.
func (c *committer) broadcast() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// add queues a handled batch (false once deferred work has failed). A
// batch without deferred work behind none with it is committed at once by
// the caller instead (direct).
func (c *committer) add(recs []*kgo.Record, waits []func() error) (direct, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return false, false
	}
	if len(waits) == 0 && len(c.queue) == 0 {
		return true, true
	}
	c.added++
	if n := len(c.queue); n >= maxPending { // n ≥ 2: the newest entry is not the one run is waiting for
		last := &c.queue[n-1]
		last.recs = append(last.recs, recs...)
		last.waits = append(last.waits, waits...)
		last.seq = c.added
	} else {
		c.queue = append(c.queue, pendingBatch{recs: recs, waits: waits, seq: c.added})
	}
	c.broadcast()
	return false, true
}

// failed returns the deferred work's error, if any failed.
func (c *committer) failed() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// run commits queued batches in order until close is called and the queue
// is empty, or deferred work fails.
func (c *committer) run() {
	for {
		c.mu.Lock()
		for len(c.queue) == 0 && !c.closed {
			ch := c.changed
			c.mu.Unlock()
			<-ch
			c.mu.Lock()
		}
		if len(c.queue) == 0 { // closed
			c.mu.Unlock()
			return
		}
		b := c.queue[0]
		c.mu.Unlock()
		var err error
		for _, w := range b.waits {
			if err = w(); err != nil {
				break
			}
		}
		if err == nil {
			c.commit(b.recs)
		}
		c.mu.Lock()
		if err != nil {
			c.err = err
			c.queue = nil
			c.broadcast()
			c.mu.Unlock()
			return
		}
		c.queue = c.queue[1:]
		c.done = b.seq
		c.broadcast()
		c.mu.Unlock()
	}
}

// wait blocks until every batch added so far is committed, deferred work
// failed, or ctx ends.
func (c *committer) wait(ctx context.Context) error {
	c.mu.Lock()
	target := c.added
	for c.done < target && c.err == nil {
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		c.mu.Lock()
	}
	defer c.mu.Unlock()
	return c.err
}

// close tells run to return once the queue is empty.
func (c *committer) close() {
	c.mu.Lock()
	c.closed = true
	c.broadcast()
	c.mu.Unlock()
}

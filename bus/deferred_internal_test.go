package bus

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestCommitterMerges: behind a batch whose deferred work is slow, adding
// batches never blocks (past maxPending they join the newest entry), and
// once the work is done every batch is committed, in order.
func TestCommitterMerges(t *testing.T) {
	var mu sync.Mutex
	var committed []int64
	c := newCommitter(func(recs []*kgo.Record) {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range recs {
			committed = append(committed, r.Offset)
		}
	})
	ran := make(chan struct{})
	go func() { defer close(ran); c.run() }()
	release := make(chan struct{})
	const n = 3 * maxPending
	added := make(chan struct{})
	go func() {
		defer close(added)
		for i := range n {
			var waits []func() error
			if i == 0 {
				waits = append(waits, func() error { <-release; return nil })
			}
			if _, ok := c.add([]*kgo.Record{{Offset: int64(i)}}, waits); !ok {
				t.Errorf("add %d refused", i)
			}
		}
	}()
	select {
	case <-added:
	case <-time.After(10 * time.Second):
		t.Fatal("adding batches blocked behind slow deferred work")
	}
	mu.Lock()
	if len(committed) != 0 {
		t.Fatalf("committed %v before the first batch's work was done", committed)
	}
	mu.Unlock()
	close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.wait(ctx); err != nil {
		t.Fatal(err)
	}
	c.close()
	<-ran
	mu.Lock()
	defer mu.Unlock()
	if len(committed) != n || !slices.IsSorted(committed) {
		t.Fatalf("committed %d offsets (sorted: %v), want all %d in order", len(committed), slices.IsSorted(committed), n)
	}
}

// Package gctune trades a bounded amount of memory for less garbage
// collection in a Herald process.
//
// Go's default collector (GOGC=100) lets the heap grow to twice what was
// live after the last collection. Herald's heap is small and short-lived
// (requests, records in flight), so at that setting the collector runs
// often: 7% of the CPU in a closed-loop profile. Run lets the heap grow to
// three times the live heap (GOGC=200) while the process's Go memory stays
// under a budget, through the runtime's soft memory limit, and raises that
// limit as the live heap grows, so that the collector never runs more often
// than Go's default would.
package gctune

import (
	"context"
	"log/slog"
	"math"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"time"
)

// Percent is the GOGC Run sets while the process's memory is under its
// budget.
const Percent = 200

// Options configure Run.
type Options struct {
	// Memory is the budget in bytes: the Go memory (the runtime's total,
	// less what it has returned to the system) the collector may let the
	// heap grow into before it runs as often as Go's default.
	Memory int64
	// Interval is how often the live heap is read to move the limit
	// (default 250ms).
	Interval time.Duration
	Logger   *slog.Logger
}

// Disabled reports why Run should not tune the collector: memory is not
// positive, or the environment (environ, in os.Environ form) sets GOGC or
// GOMEMLIMIT, which the runtime has applied already and the operator chose.
// It returns "" when Run should.
func Disabled(memory int64, environ []string) string {
	if memory <= 0 {
		return "gc.memoryMB is 0"
	}
	for _, kv := range environ {
		for _, name := range []string{"GOGC", "GOMEMLIMIT"} {
			if strings.HasPrefix(kv, name+"=") {
				return name + " is set"
			}
		}
	}
	return ""
}

// Run sets GOGC to Percent and, until ctx ends, keeps the runtime's soft
// memory limit at Limit for the budget and the memory in use, read every
// Interval; then it restores Go's defaults (GOGC=100, no limit).
func Run(ctx context.Context, o Options) {
	if o.Interval <= 0 {
		o.Interval = 250 * time.Millisecond
	}
	samples := newSamples()
	limit := Limit(o.Memory, samples.read())
	debug.SetMemoryLimit(limit)
	debug.SetGCPercent(Percent)
	if o.Logger != nil {
		o.Logger.Debug("garbage collector tuned", "gogc", Percent, "memory_mb", o.Memory>>20)
	}
	defer func() {
		debug.SetGCPercent(100)
		debug.SetMemoryLimit(math.MaxInt64)
	}()
	t := time.NewTicker(o.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if l := Limit(o.Memory, samples.read()); l != limit {
			limit = l
			debug.SetMemoryLimit(limit)
		}
	}
}

// Usage is what Limit needs from the runtime, in bytes.
type Usage struct {
	// Live is the heap live after the last collection.
	Live uint64
	// Other is the memory the runtime holds besides heap spans (stacks,
	// metadata, buffers): it counts against the limit but does not grow
	// with GOGC.
	Other uint64
	// Unused is memory in heap spans not holding objects (fragmentation).
	Unused uint64
}

// Limit is the soft memory limit for memory bytes of budget: the budget,
// or what Go's default collector would let the process use (twice the live
// heap, plus what is not heap) when that is more, so that Herald never
// collects more often than Go's default.
func Limit(memory int64, u Usage) int64 {
	floor := 2*u.Live + u.Other + u.Unused
	if floor > math.MaxInt64/2 {
		return math.MaxInt64
	}
	return max(memory, int64(floor))
}

// samples reads the runtime metrics Usage is made of.
type samples []metrics.Sample

const (
	mLive     = "/gc/heap/live:bytes"
	mTotal    = "/memory/classes/total:bytes"
	mReleased = "/memory/classes/heap/released:bytes"
	mObjects  = "/memory/classes/heap/objects:bytes"
	mUnused   = "/memory/classes/heap/unused:bytes"
	mFree     = "/memory/classes/heap/free:bytes"
)

func newSamples() samples {
	names := []string{mLive, mTotal, mReleased, mObjects, mUnused, mFree}
	s := make(samples, len(names))
	for i, n := range names {
		s[i].Name = n
	}
	return s
}

func (s samples) read() Usage {
	metrics.Read(s)
	v := make(map[string]uint64, len(s))
	for _, x := range s {
		if x.Value.Kind() == metrics.KindUint64 {
			v[x.Name] = x.Value.Uint64()
		}
	}
	heap := v[mReleased] + v[mObjects] + v[mUnused] + v[mFree]
	var other uint64
	if v[mTotal] > heap {
		other = v[mTotal] - heap
	}
	return Usage{Live: v[mLive], Other: other, Unused: v[mUnused]}
}

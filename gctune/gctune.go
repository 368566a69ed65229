// Package gctune trades a bounded amount of memory for less garbage
// collection in a Herald process.
//
// Go's default collector (GOGC=100) lets the heap grow to about twice what
// was live after the last collection. Herald's heap is small and
// short-lived (requests, records in flight), so at that setting the
// collector runs often: 7% of the CPU in a closed-loop profile. Run sets
// GOGC after every collection: MaxPercent (the heap grows to three times
// what is live) while the heap that allows, with the runtime's other
// memory, fits in a budget; less as it stops fitting; and never below
// MinPercent, Go's default, so the collector never runs more often than
// the default would.
package gctune

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"sync/atomic"
)

// MaxPercent is the GOGC Run sets while the budget allows it; MinPercent
// (Go's default) the lowest it sets.
const (
	MaxPercent = 200
	MinPercent = 100
)

// Options configure Run.
type Options struct {
	// Memory is the budget in bytes: the heap the collector lets grow,
	// and the runtime's memory besides it, stay within it while GOGC is
	// above MinPercent.
	Memory int64
	Logger *slog.Logger
}

// Disabled reports why Run should not tune the collector: memory is not
// positive, or the environment (environ, in os.Environ form) sets GOGC or
// GOMEMLIMIT, which the runtime has applied already and the operator chose
// (an empty value is unset, as the runtime reads it). It returns "" when
// Run should.
func Disabled(memory int64, environ []string) string {
	if memory <= 0 {
		return "gc.memoryMB is 0"
	}
	for _, kv := range environ {
		for _, name := range []string{"GOGC", "GOMEMLIMIT"} {
			if v, ok := strings.CutPrefix(kv, name+"="); ok && v != "" {
				return name + " is set"
			}
		}
	}
	return ""
}

// Run sets GOGC to Percent of the budget and the memory in use now and
// after every collection until ctx ends, then restores the GOGC it found.
// It returns an error, having changed nothing, when the runtime does not
// report the metrics it needs.
func Run(ctx context.Context, o Options) error {
	s, err := newSamples()
	if err != nil {
		return err
	}
	percent := Percent(o.Memory, s.read())
	prev := debug.SetGCPercent(percent)
	defer debug.SetGCPercent(prev)
	if o.Logger != nil {
		o.Logger.Debug("garbage collector tuned", "gogc", percent, "memory_mb", o.Memory>>20)
	}
	cycles := make(chan struct{}, 1)
	var stopped atomic.Bool
	defer stopped.Store(true)
	var arm func()
	arm = func() {
		// A sentinel nothing references: its cleanup runs once a
		// collection has found it unreachable, and arms the next one.
		runtime.AddCleanup(&sentinel{}, func(struct{}) {
			if stopped.Load() {
				return
			}
			select {
			case cycles <- struct{}{}:
			default:
			}
			arm()
		}, struct{}{})
	}
	arm()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-cycles:
		}
		if p := Percent(o.Memory, s.read()); p != percent {
			percent = p
			debug.SetGCPercent(p)
		}
	}
}

// sentinel is allocated on its own (it holds a pointer, so the allocator's
// tiny blocks, which batch pointer-free objects, do not take it).
type sentinel struct {
	_ *byte
	_ [16]byte
}

// Usage is what Percent needs from the runtime, in bytes.
type Usage struct {
	// Live is the heap live after the last collection; Scan the stacks
	// and globals that collection scanned. GOGC sets the heap's growth
	// until the next collection as a share of the two.
	Live, Scan uint64
	// Other is the memory the runtime holds besides heap spans (stacks,
	// metadata, buffers); Unused the memory in heap spans not holding
	// objects (fragmentation). Neither grows with GOGC, but both count
	// against the budget.
	Other, Unused uint64
}

// Percent is the GOGC for memory bytes of budget and usage u: the share of
// u.Live and u.Scan the heap may grow by until the next collection without
// the heap, u.Other and u.Unused going past the budget, between MinPercent
// and MaxPercent.
func Percent(memory int64, u Usage) int {
	base := u.Live + u.Scan
	used := u.Live + u.Other + u.Unused
	if memory <= 0 || used >= uint64(memory) {
		return MinPercent
	}
	if base == 0 {
		return MaxPercent
	}
	p := (uint64(memory) - used) * 100 / base // memory is at most 2^50 (config)
	return int(min(max(p, MinPercent), MaxPercent))
}

// samples reads the runtime metrics Usage is made of, in the order of
// sampleNames.
type samples []metrics.Sample

// The samples' indexes.
const (
	iLive = iota
	iStack
	iGlobals
	iTotal
	iReleased
	iObjects
	iUnused
	iFree
)

var sampleNames = [...]string{
	iLive:     "/gc/heap/live:bytes",
	iStack:    "/gc/scan/stack:bytes",
	iGlobals:  "/gc/scan/globals:bytes",
	iTotal:    "/memory/classes/total:bytes",
	iReleased: "/memory/classes/heap/released:bytes",
	iObjects:  "/memory/classes/heap/objects:bytes",
	iUnused:   "/memory/classes/heap/unused:bytes",
	iFree:     "/memory/classes/heap/free:bytes",
}

// newSamples returns the samples, or an error naming a metric this runtime
// does not report.
func newSamples() (samples, error) {
	s := make(samples, len(sampleNames))
	for i, n := range sampleNames {
		s[i].Name = n
	}
	metrics.Read(s)
	var errs []error
	for _, x := range s {
		if x.Value.Kind() != metrics.KindUint64 {
			errs = append(errs, fmt.Errorf("gctune: the runtime does not report %s", x.Name))
		}
	}
	return s, errors.Join(errs...)
}

func (s samples) read() Usage {
	metrics.Read(s)
	v := func(i int) uint64 { return s[i].Value.Uint64() }
	heap := v(iReleased) + v(iObjects) + v(iUnused) + v(iFree)
	var other uint64
	if total := v(iTotal); total > heap {
		other = total - heap
	}
	return Usage{Live: v(iLive), Scan: v(iStack) + v(iGlobals), Other: other, Unused: v(iUnused)}
}

package logs

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// pendingCount is how many matches of one windowed rule and dedupe this
// process suppressed since the last alert it made for them, and the time
// of the earliest.
type pendingCount struct {
	n     int
	since time.Time
}

// Bounds on Alerter.pending.
const (
	maxPending = 10_000
	// maxAlertMessage is the alert's message limit, in characters.
	maxAlertMessage = 16 << 10
)

// baseKey is a windowed rule's idempotency key without its bucket: the
// rule and the dedupe. Other rules have none.
func baseKey(pl *planned) string {
	if pl.c.Rule.Window <= 0 {
		return ""
	}
	k := pl.al.IdempotencyKey
	return k[:max(strings.LastIndexByte(k, ':'), 0)]
}

// notePending adds to each alert about to be produced how many matches of
// its rule and dedupe were suppressed before it (in this process), e.g.
// "49 more matching lines since 10:00:10Z were not alerted on".
func (a *Alerter) notePending(produce []*planned) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, pl := range produce {
		p := a.pending[baseKey(pl)]
		if p == nil || p.n == 0 {
			continue
		}
		note := fmt.Sprintf("\n\n(%d more matching line%s since %s not alerted on: rule %s alerts once per %s per dedupe key.)",
			p.n, plural(p.n), p.since.UTC().Format(time.RFC3339), pl.c.Rule.Name, pl.c.Rule.Window)
		if utf8.RuneCountInString(pl.al.Message)+utf8.RuneCountInString(note) <= maxAlertMessage {
			pl.al.Message += note
		}
	}
}

// settlePending runs after a batch's alerts were produced: the produced
// alerts' counts start again, and the batch's suppressed matches are added.
func (a *Alerter) settlePending(plans, produce []*planned) {
	made := make(map[*planned]bool, len(produce))
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, pl := range produce {
		made[pl] = true
		delete(a.pending, baseKey(pl))
	}
	for _, pl := range plans {
		k := baseKey(pl)
		if made[pl] || k == "" {
			continue
		}
		if a.pending == nil || len(a.pending) >= maxPending {
			a.pending = map[string]*pendingCount{} // forget rather than grow: the counts are a courtesy
		}
		p := a.pending[k]
		if p == nil {
			p = &pendingCount{since: pl.at}
			a.pending[k] = p
		}
		p.n++
		if pl.at.Before(p.since) {
			p.since = pl.at
		}
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

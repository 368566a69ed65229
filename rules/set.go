package rules

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/heraldproject/herald"
)

// Loader is where a Set reads rules: the store.
type Loader interface {
	// RulesRevision is a number that changes whenever any rule does.
	RulesRevision(ctx context.Context) (int64, error)
	// Rules returns every rule and the revision they are at.
	Rules(ctx context.Context) ([]*herald.Rule, int64, error)
}

// Set keeps the compiled enabled rules in process. It checks the store's
// rules revision at most once per Every (one single-row read), and reloads
// when it moved, recompiling only the rules that changed; Invalidate makes
// the next call check at once (the process that changed a rule calls it).
// Other processes see a change within Every. Safe for concurrent use.
type Set struct {
	Load   Loader
	Every  time.Duration
	Logger *slog.Logger

	mu       sync.Mutex
	checked  time.Time
	rev      int64
	loaded   bool
	compiled map[string]*Compiled // by rule id
	bySource map[string][]*Compiled
}

// Invalidate makes the next Enabled call check the store.
func (s *Set) Invalidate() {
	s.mu.Lock()
	s.checked = time.Time{}
	s.mu.Unlock()
}

// Enabled returns the enabled rules of source, in name order, reloading
// them first when due. When the store cannot be read, the rules last loaded
// are used (and the error returned only if none were ever loaded).
func (s *Set) Enabled(ctx context.Context, source string) ([]*Compiled, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.loaded || time.Since(s.checked) >= s.Every {
		if err := s.reload(ctx); err != nil {
			if !s.loaded {
				return nil, err
			}
			s.Logger.WarnContext(ctx, "rules could not be reloaded; using the rules last loaded", "err", err)
		}
	}
	return s.bySource[source], nil
}

func (s *Set) reload(ctx context.Context) error {
	rev, err := s.Load.RulesRevision(ctx)
	if err != nil {
		return fmt.Errorf("rules: revision: %w", err)
	}
	if s.loaded && rev == s.rev {
		s.checked = time.Now()
		return nil
	}
	all, rev, err := s.Load.Rules(ctx)
	if err != nil {
		return fmt.Errorf("rules: load: %w", err)
	}
	compiled := make(map[string]*Compiled, len(all))
	bySource := map[string][]*Compiled{}
	for _, r := range all {
		c := s.compiled[r.ID]
		if c == nil || !c.Rule.UpdatedAt.Equal(r.UpdatedAt) {
			if c, err = Compile(r); err != nil {
				// Checked when stored; this happens only if the limits
				// tightened since. Say so rather than fail every event.
				s.Logger.ErrorContext(ctx, "stored rule does not compile; it is skipped", "rule", r.Name, "rule_id", r.ID, "err", err)
				continue
			}
		}
		compiled[r.ID] = c
		if r.Enabled {
			bySource[r.Source] = append(bySource[r.Source], c)
		}
	}
	s.compiled, s.bySource, s.rev, s.loaded, s.checked = compiled, bySource, rev, true, time.Now()
	return nil
}

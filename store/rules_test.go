package store_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/store"
)

func TestRules(t *testing.T) {
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		rev0, err := s.RulesRevision(ctx)
		if err != nil {
			t.Fatal(err)
		}
		big := &herald.Rule{ID: "r-big", Name: "big-orders", Source: herald.RuleSourceEvent,
			Match: `type == "order.created" && data.total > 100`, Targets: []string{"@alice", "@@sales"},
			Severity: herald.SeverityWarning, Title: "Order {{.data.id}}", Message: "total {{.data.total}}",
			DedupeKey: "{{.data.id}}", Enabled: true}
		pos := &herald.Rule{ID: "r-pos", Name: "positive-reports", Source: herald.RuleSourceS3,
			Match: `key startsWith "reports/positive/"`, Targets: []string{"@@positive"}, Severity: herald.SeverityInfo,
			Message: "{{.key}}", Enabled: false}
		errs := &herald.Rule{ID: "r-errs", Name: "checkout-errors", Source: herald.RuleSourceLog,
			Match: `service == "checkout" && levelRank >= 3`, Targets: []string{"@alice"}, Severity: herald.SeverityError,
			Message: "{{.message}}", DedupeKey: "{{.service}}", Window: 5 * time.Minute, Enabled: true}
		for _, r := range []*herald.Rule{big, pos, errs} {
			if err := s.CreateRule(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		dup := *big
		dup.ID = "r-other"
		if err := s.CreateRule(ctx, &dup); herald.ErrorCode(err) != herald.ECONFLICT {
			t.Fatalf("duplicate name: err = %v, want conflict", err)
		}
		got, err := s.Rule(ctx, big.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != big.Name || got.Match != big.Match || !slices.Equal(got.Targets, big.Targets) ||
			got.Severity != big.Severity || got.Title != big.Title || got.Message != big.Message ||
			got.DedupeKey != big.DedupeKey || !got.Enabled || got.Source != herald.RuleSourceEvent || got.CreatedAt.IsZero() {
			t.Fatalf("Rule = %+v, want %+v", got, big)
		}
		if got, err := s.Rule(ctx, errs.ID); err != nil || got.Window != 5*time.Minute || got.Source != herald.RuleSourceLog {
			t.Fatalf("log rule = %+v, %v", got, err)
		}
		if err := s.DeleteRule(ctx, errs.ID); err != nil {
			t.Fatal(err)
		}
		rev0 += 2 // the log rule's create and delete
		if _, err := s.Rule(ctx, "nope"); herald.ErrorCode(err) != herald.ENOTFOUND {
			t.Fatalf("missing rule: err = %v", err)
		}
		all, rev, err := s.Rules(ctx)
		if err != nil || len(all) != 2 || all[0].Name != "big-orders" || all[1].Enabled {
			t.Fatalf("Rules = %+v, %v", all, err)
		}
		if rev != rev0+2 {
			t.Fatalf("revision after two creates = %d, want %d", rev, rev0+2)
		}
		before := got.UpdatedAt
		got.Enabled, got.Targets = false, []string{"@bob"}
		if err := s.UpdateRule(ctx, got); err != nil {
			t.Fatal(err)
		}
		if !got.UpdatedAt.After(before) {
			t.Fatalf("UpdatedAt did not move: %v → %v", before, got.UpdatedAt)
		}
		again, _ := s.Rule(ctx, big.ID)
		if again.Enabled || !slices.Equal(again.Targets, []string{"@bob"}) || !again.UpdatedAt.Equal(got.UpdatedAt) {
			t.Fatalf("after update: %+v", again)
		}
		got.Name = "positive-reports"
		if err := s.UpdateRule(ctx, got); herald.ErrorCode(err) != herald.ECONFLICT {
			t.Fatalf("rename onto taken name: err = %v", err)
		}
		missing := *big
		missing.ID = "nope"
		if err := s.UpdateRule(ctx, &missing); herald.ErrorCode(err) != herald.ENOTFOUND {
			t.Fatalf("update missing: err = %v", err)
		}
		if err := s.DeleteRule(ctx, pos.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteRule(ctx, pos.ID); herald.ErrorCode(err) != herald.ENOTFOUND {
			t.Fatalf("delete twice: err = %v", err)
		}
		if n, err := s.CountRules(ctx); err != nil || n != 1 {
			t.Fatalf("CountRules = %d, %v", n, err)
		}
		if rev, _ := s.RulesRevision(ctx); rev != rev0+4 {
			t.Fatalf("revision = %d, want %d (2 creates, 1 update, 1 delete; failed changes do not count)", rev, rev0+4)
		}
	})
}

package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/heraldproject/herald"
)

const ruleColumns = `id, name, source, match_expr, targets, severity, title, message, dedupe_key, window_nanos, enabled, created_at, updated_at`

func scanRule(row scanner) (*herald.Rule, error) {
	var r herald.Rule
	var targets string
	var enabled int
	var created, updated, window int64
	if err := row.Scan(&r.ID, &r.Name, &r.Source, &r.Match, &targets, &r.Severity, &r.Title, &r.Message, &r.DedupeKey,
		&window, &enabled, &created, &updated); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(targets), &r.Targets); err != nil {
		return nil, fmt.Errorf("rule %s: targets: %w", r.ID, err)
	}
	r.Window = time.Duration(window)
	r.Enabled, r.CreatedAt, r.UpdatedAt = enabled != 0, fromNanos(created), fromNanos(updated)
	return &r, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// bumpRules moves the rules revision on, in the transaction of a change.
func bumpRules(ctx context.Context, tx txn) error {
	if _, err := tx.ExecContext(ctx, `UPDATE rules_revision SET revision = revision + 1 WHERE id = 1`); err != nil {
		return fmt.Errorf("store: rules revision: %w", err)
	}
	return nil
}

// CreateRule stores a new rule. r.ID must be set; CreatedAt and UpdatedAt
// are set here. A taken name is an ECONFLICT error.
func (s *Store) CreateRule(ctx context.Context, r *herald.Rule) error {
	now := s.now().UTC()
	r.CreatedAt, r.UpdatedAt = now, now
	targets, err := json.Marshal(r.Targets)
	if err != nil {
		return fmt.Errorf("store: create rule: %w", err)
	}
	return s.tx(ctx, "create_rule", func(tx txn) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO rules (`+ruleColumns+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`,
			r.ID, r.Name, r.Source, r.Match, string(targets), string(r.Severity), r.Title, r.Message, r.DedupeKey,
			int64(r.Window), boolInt(r.Enabled), nanos(now), nanos(now))
		if isUniqueViolation(err) {
			return herald.Errorf(herald.ECONFLICT, "a rule named %q already exists", r.Name)
		}
		if err != nil {
			return fmt.Errorf("store: create rule: %w", err)
		}
		return bumpRules(ctx, tx)
	})
}

// UpdateRule replaces every field of the stored rule r.ID but CreatedAt,
// and sets UpdatedAt. A missing rule is ENOTFOUND; a taken name ECONFLICT.
func (s *Store) UpdateRule(ctx context.Context, r *herald.Rule) error {
	targets, err := json.Marshal(r.Targets)
	if err != nil {
		return fmt.Errorf("store: update rule: %w", err)
	}
	now := s.now().UTC()
	if !now.After(r.UpdatedAt) {
		// UpdatedAt tells compiled rules apart: it must move.
		now = r.UpdatedAt.Add(1)
	}
	err = s.tx(ctx, "update_rule", func(tx txn) error {
		res, err := tx.ExecContext(ctx, `UPDATE rules SET name=?, source=?, match_expr=?, targets=?, severity=?, title=?,
			message=?, dedupe_key=?, window_nanos=?, enabled=?, updated_at=? WHERE id=?`,
			r.Name, r.Source, r.Match, string(targets), string(r.Severity), r.Title, r.Message, r.DedupeKey,
			int64(r.Window), boolInt(r.Enabled), nanos(now), r.ID)
		if isUniqueViolation(err) {
			return herald.Errorf(herald.ECONFLICT, "a rule named %q already exists", r.Name)
		}
		if err != nil {
			return fmt.Errorf("store: update rule: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return notFound("rule", r.ID)
		}
		return bumpRules(ctx, tx)
	})
	if err == nil {
		r.UpdatedAt = now
	}
	return err
}

// DeleteRule deletes a rule; a missing one is ENOTFOUND.
func (s *Store) DeleteRule(ctx context.Context, id string) error {
	return s.tx(ctx, "delete_rule", func(tx txn) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM rules WHERE id = ?`, id)
		if err != nil {
			return fmt.Errorf("store: delete rule: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return notFound("rule", id)
		}
		return bumpRules(ctx, tx)
	})
}

// Rule returns one rule by id.
func (s *Store) Rule(ctx context.Context, id string) (*herald.Rule, error) {
	r, err := scanRule(s.r.QueryRowContext(ctx, `SELECT `+ruleColumns+` FROM rules WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("rule", id)
	}
	if err != nil {
		return nil, fmt.Errorf("store: rule: %w", err)
	}
	return r, nil
}

// Rules returns every rule by name, and the rules revision they are at (see
// RulesRevision). The revision is read first, so it is never newer than
// the rules: at worst a change made between the two reads is loaded twice.
func (s *Store) Rules(ctx context.Context) ([]*herald.Rule, int64, error) {
	tx, err := s.r.DB.BeginTx(ctx, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("store: rules: %w", err)
	}
	defer func() { _ = tx.Rollback() }() // read only: nothing to commit
	t := txn{Tx: tx, pg: s.r.pg}
	var rev int64
	if err := t.QueryRowContext(ctx, `SELECT revision FROM rules_revision WHERE id = 1`).Scan(&rev); err != nil {
		return nil, 0, fmt.Errorf("store: rules revision: %w", err)
	}
	rows, err := t.QueryContext(ctx, `SELECT `+ruleColumns+` FROM rules ORDER BY name`)
	if err != nil {
		return nil, 0, fmt.Errorf("store: rules: %w", err)
	}
	out, err := scanAll(rows, scanRule)
	if err != nil {
		return nil, 0, fmt.Errorf("store: rules: %w", err)
	}
	return out, rev, nil
}

// CountRules counts the stored rules.
func (s *Store) CountRules(ctx context.Context) (int, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM rules`).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count rules: %w", err)
	}
	return n, nil
}

// RulesRevision is a number that every change to rules moves on (create,
// update, delete), in the same transaction; processes compare it with the
// revision their compiled rules are at.
func (s *Store) RulesRevision(ctx context.Context) (int64, error) {
	var rev int64
	if err := s.r.QueryRowContext(ctx, `SELECT revision FROM rules_revision WHERE id = 1`).Scan(&rev); err != nil {
		return 0, fmt.Errorf("store: rules revision: %w", err)
	}
	return rev, nil
}

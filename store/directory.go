package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/heraldproject/herald"
)

const userColumns = `id, name, email, phone, webhook_url, webhook_secret, slack_webhook_url, slack_channel, slack_token, department, created_at, updated_at`

type scanner interface{ Scan(dest ...any) error }

func (s *Store) scanUser(row scanner) (*herald.User, error) {
	var u herald.User
	var created, updated int64
	err := row.Scan(&u.ID, &u.Name, &u.Email, &u.Phone, &u.WebhookURL, &u.WebhookSecret, &u.Slack.WebhookURL,
		&u.Slack.Channel, &u.Slack.Token, &u.Department, &created, &updated)
	if err != nil {
		return nil, err
	}
	u.CreatedAt, u.UpdatedAt = fromNanos(created), fromNanos(updated)
	// An unreadable secret must not make the user unreadable: a fan-out
	// batch or a delivery partition would stall on it. The user comes back
	// with the field empty and SecretErr saying why; the notifier that needs
	// the field refuses to send.
	if tok, err := s.seal.Open(u.Slack.Token); err != nil {
		u.Slack.Token = ""
		u.SecretErr = errors.Join(u.SecretErr, &herald.SecretError{Field: herald.SecretSlackToken, Err: err})
	} else {
		u.Slack.Token = tok
	}
	if sec, err := s.seal.Open(u.WebhookSecret); err != nil {
		u.WebhookSecret = ""
		u.SecretErr = errors.Join(u.SecretErr, &herald.SecretError{Field: herald.SecretWebhookSecret, Err: err})
	} else {
		u.WebhookSecret = sec
	}
	return &u, nil
}

// CreateUser stores a new user. u.ID must be set; CreatedAt and UpdatedAt are
// set here. A taken name is an ECONFLICT error.
func (s *Store) CreateUser(ctx context.Context, u *herald.User) error {
	defer s.resolved.changed()
	now := s.now().UTC()
	u.CreatedAt, u.UpdatedAt = now, now
	_, err := s.w.ExecContext(ctx, `INSERT INTO users (`+userColumns+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)`,
		u.ID, u.Name, u.Email, u.Phone, u.WebhookURL, s.seal.Seal(u.WebhookSecret), u.Slack.WebhookURL, u.Slack.Channel,
		s.seal.Seal(u.Slack.Token), u.Department, nanos(now), nanos(now))
	if isUniqueViolation(err) {
		return herald.Errorf(herald.ECONFLICT, "a user named %q already exists", u.Name)
	}
	if err != nil {
		return fmt.Errorf("store: create user: %w", err)
	}
	return nil
}

// User returns the user with the given id.
func (s *Store) User(ctx context.Context, id string) (*herald.User, error) {
	st, err := s.stmt(ctx, s.r, `SELECT `+userColumns+` FROM users WHERE id = ?`)
	if err != nil {
		return nil, fmt.Errorf("store: user: %w", err)
	}
	u, err := s.scanUser(st.QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("user", id)
	}
	if err != nil {
		return nil, fmt.Errorf("store: user: %w", err)
	}
	return u, nil
}

// DirectoryGeneration counts the directory writes made through this Store
// (users, groups, memberships): a reader that keeps users it read can tell
// whether they may have changed since.
func (s *Store) DirectoryGeneration() uint64 { return s.resolved.generation() }

// UsersByID returns the users with the given ids that exist, keyed by id.
func (s *Store) UsersByID(ctx context.Context, ids []string) (map[string]*herald.User, error) {
	out := make(map[string]*herald.User, len(ids))
	err := s.queryIn(ctx, s.r, `SELECT `+userColumns+` FROM users WHERE id IN `, ids, func(rows *sql.Rows) error {
		u, err := s.scanUser(rows)
		if err == nil {
			out[u.ID] = u
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: users by id: %w", err)
	}
	return out, nil
}

// ListUsers returns up to limit users ordered by name, starting after the
// name after ("" for the first page).
func (s *Store) ListUsers(ctx context.Context, after string, limit int) ([]*herald.User, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+userColumns+` FROM users WHERE name > ? ORDER BY name LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("store: list users: %w", err)
	}
	out, err := scanAll(rows, s.scanUser)
	if err != nil {
		return nil, fmt.Errorf("store: list users: %w", err)
	}
	return out, nil
}

// UpdateUser loads the user, applies fn to it and stores the result, in one
// transaction. fn may return an error to abort.
func (s *Store) UpdateUser(ctx context.Context, id string, fn func(*herald.User) error) (*herald.User, error) {
	defer s.resolved.changed()
	var out *herald.User
	err := s.tx(ctx, "update_user", func(tx txn) error {
		u, err := s.scanUser(tx.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("user", id)
		}
		if err != nil {
			return fmt.Errorf("store: update user: %w", err)
		}
		if err := fn(u); err != nil {
			return err
		}
		u.UpdatedAt = s.now().UTC()
		_, err = tx.ExecContext(ctx, `UPDATE users SET name=?, email=?, phone=?, webhook_url=?, webhook_secret=?,
			slack_webhook_url=?, slack_channel=?, slack_token=?, department=?, updated_at=? WHERE id=?`,
			u.Name, u.Email, u.Phone, u.WebhookURL, s.seal.Seal(u.WebhookSecret), u.Slack.WebhookURL, u.Slack.Channel,
			s.seal.Seal(u.Slack.Token), u.Department, nanos(u.UpdatedAt), u.ID)
		if isUniqueViolation(err) {
			return herald.Errorf(herald.ECONFLICT, "a user named %q already exists", u.Name)
		}
		if err != nil {
			return fmt.Errorf("store: update user: %w", err)
		}
		out = u
		return nil
	})
	return out, err
}

// DeleteUser removes the user and their group memberships. Deliveries already
// recorded for them are kept.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	return s.deleteByID(ctx, "users", "user", id)
}

func (s *Store) deleteByID(ctx context.Context, table, what, id string) error {
	defer s.resolved.changed()
	res, err := s.w.ExecContext(ctx, `DELETE FROM `+table+` WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("store: delete %s: %w", what, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound(what, id)
	}
	return nil
}

func scanGroup(row scanner) (*herald.Group, error) {
	var g herald.Group
	var created int64
	if err := row.Scan(&g.ID, &g.Name, &g.Description, &created); err != nil {
		return nil, err
	}
	g.CreatedAt = fromNanos(created)
	return &g, nil
}

// CreateGroup stores a new group. g.ID must be set. A taken name is an
// ECONFLICT error.
func (s *Store) CreateGroup(ctx context.Context, g *herald.Group) error {
	defer s.resolved.changed()
	g.CreatedAt = s.now().UTC()
	_, err := s.w.ExecContext(ctx, `INSERT INTO groups (id, name, description, created_at) VALUES (?,?,?,?)`,
		g.ID, g.Name, g.Description, nanos(g.CreatedAt))
	if isUniqueViolation(err) {
		return herald.Errorf(herald.ECONFLICT, "a group named %q already exists", g.Name)
	}
	if err != nil {
		return fmt.Errorf("store: create group: %w", err)
	}
	return nil
}

// Group returns the group with the given id.
func (s *Store) Group(ctx context.Context, id string) (*herald.Group, error) {
	g, err := scanGroup(s.r.QueryRowContext(ctx, `SELECT id, name, description, created_at FROM groups WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("group", id)
	}
	if err != nil {
		return nil, fmt.Errorf("store: group: %w", err)
	}
	return g, nil
}

// ListGroups returns up to limit groups ordered by name, after the given name.
func (s *Store) ListGroups(ctx context.Context, after string, limit int) ([]*herald.Group, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, name, description, created_at FROM groups WHERE name > ? ORDER BY name LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("store: list groups: %w", err)
	}
	out, err := scanAll(rows, scanGroup)
	if err != nil {
		return nil, fmt.Errorf("store: list groups: %w", err)
	}
	return out, nil
}

// DeleteGroup removes the group and its memberships.
func (s *Store) DeleteGroup(ctx context.Context, id string) error {
	return s.deleteByID(ctx, "groups", "group", id)
}

// AddMember subscribes the user to the group. It is idempotent.
func (s *Store) AddMember(ctx context.Context, groupID, userID string) error {
	defer s.resolved.changed()
	return s.tx(ctx, "add_member", func(tx txn) error {
		if err := exists(ctx, tx, "groups", "group", groupID); err != nil {
			return err
		}
		if err := exists(ctx, tx, "users", "user", userID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO group_members (group_id, user_id, created_at) VALUES (?,?,?)
			ON CONFLICT DO NOTHING`, groupID, userID, nanos(s.now()))
		if err != nil {
			return fmt.Errorf("store: add member: %w", err)
		}
		return nil
	})
}

// RemoveMember unsubscribes the user from the group. Removing a user who is
// not a member succeeds; an unknown group or user is ENOTFOUND.
func (s *Store) RemoveMember(ctx context.Context, groupID, userID string) error {
	defer s.resolved.changed()
	return s.tx(ctx, "remove_member", func(tx txn) error {
		if err := exists(ctx, tx, "groups", "group", groupID); err != nil {
			return err
		}
		if err := exists(ctx, tx, "users", "user", userID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM group_members WHERE group_id = ? AND user_id = ?`, groupID, userID); err != nil {
			return fmt.Errorf("store: remove member: %w", err)
		}
		return nil
	})
}

func exists(ctx context.Context, tx txn, table, what, id string) error {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM `+table+` WHERE id = ?`, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return notFound(what, id)
	}
	if err != nil {
		return fmt.Errorf("store: %s exists: %w", what, err)
	}
	return nil
}

// Members returns the group's members ordered by name.
func (s *Store) Members(ctx context.Context, groupID string) ([]*herald.User, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT u.`+strings.ReplaceAll(userColumns, ", ", ", u.")+`
		FROM group_members m JOIN users u ON u.id = m.user_id WHERE m.group_id = ? ORDER BY u.name`, groupID)
	if err != nil {
		return nil, fmt.Errorf("store: members: %w", err)
	}
	out, err := scanAll(rows, s.scanUser)
	if err != nil {
		return nil, fmt.Errorf("store: members: %w", err)
	}
	return out, nil
}

// Resolve turns alert targets into user ids, deduplicated, in the order first
// reached. Resolutions are cached (Options.ResolveCacheTTL): a directory
// write through this Store is seen at once, one by another process within
// the TTL. Targets that name no user or group are returned in unknown (as
// written, e.g. "@bob"); an empty group resolves to no users but is not
// unknown.
func (s *Store) Resolve(ctx context.Context, targets []herald.Target) (userIDs, unknown []string, err error) {
	seen := make(map[string]bool)
	for _, t := range targets {
		var ids []string
		var found bool
		key := t.String()
		cached, hit, gen := s.resolved.get(key, s.now())
		switch {
		case hit:
			ids, found = cached, true
		case t.Group:
			ids, found, err = s.groupMemberIDs(ctx, t.Name)
		default:
			var id string
			var st *sql.Stmt
			if st, err = s.stmt(ctx, s.r, `SELECT id FROM users WHERE name = ?`); err == nil {
				err = st.QueryRowContext(ctx, t.Name).Scan(&id)
			}
			if errors.Is(err, sql.ErrNoRows) {
				err = nil
			} else if err == nil {
				ids, found = []string{id}, true
			}
		}
		if err != nil {
			return nil, nil, fmt.Errorf("store: resolve %s: %w", t, err)
		}
		if !found {
			unknown = append(unknown, key)
			continue
		}
		if !hit {
			s.resolved.put(key, ids, gen, s.now())
		}
		for _, id := range ids {
			if !seen[id] {
				seen[id] = true
				userIDs = append(userIDs, id)
			}
		}
	}
	return userIDs, unknown, nil
}

func (s *Store) groupMemberIDs(ctx context.Context, name string) (ids []string, found bool, err error) {
	var gid string
	byName, err := s.stmt(ctx, s.r, `SELECT id FROM groups WHERE name = ?`)
	if err != nil {
		return nil, false, err
	}
	err = byName.QueryRowContext(ctx, name).Scan(&gid)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	members, err := s.stmt(ctx, s.r, `SELECT m.user_id FROM group_members m JOIN users u ON u.id = m.user_id
		WHERE m.group_id = ? ORDER BY u.name`)
	if err != nil {
		return nil, false, err
	}
	rows, err := members.QueryContext(ctx, gid)
	if err != nil {
		return nil, false, err
	}
	ids, err = scanColumn[string](rows)
	return ids, err == nil, err
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

func anys[T any](xs []T) []any {
	out := make([]any, len(xs))
	for i, x := range xs {
		out[i] = x
	}
	return out
}

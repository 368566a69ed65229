package cache

import (
	"context"
	"sync"
	"time"

	"github.com/heraldproject/herald"
)

// Memory is a Cache inside one process, bounded in size. Entries expire;
// when full, it drops everything of the kind it is adding (a cheap bound that
// never serves stale data).
type Memory struct {
	mu      sync.Mutex
	sent    map[string]time.Time
	users   map[string]memUser
	max     int
	userTTL time.Duration
	now     func() time.Time
}

type memUser struct {
	u       herald.User
	expires time.Time
}

// NewMemory returns a Memory cache holding at most max entries of each kind,
// caching users for userTTL.
func NewMemory(max int, userTTL time.Duration) *Memory {
	return &Memory{sent: map[string]time.Time{}, users: map[string]memUser{}, max: max, userTTL: userTTL, now: time.Now}
}

// MarkSent implements Cache.
func (m *Memory) MarkSent(_ context.Context, id string, ttl time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if exp, ok := m.sent[id]; ok && exp.After(now) {
		return false, nil
	}
	if len(m.sent) >= m.max {
		m.sent = map[string]time.Time{}
	}
	m.sent[id] = now.Add(ttl)
	return true, nil
}

// Sent implements Cache.
func (m *Memory) Sent(_ context.Context, id string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	exp, ok := m.sent[id]
	return ok && exp.After(m.now()), nil
}

// User implements Cache.
func (m *Memory) User(_ context.Context, id string) (*herald.User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.users[id]
	if !ok || !e.expires.After(m.now()) {
		return nil, nil
	}
	u := e.u
	return &u, nil
}

// PutUser implements Cache.
func (m *Memory) PutUser(ctx context.Context, u *herald.User) error {
	return m.PutUsers(ctx, []*herald.User{u})
}

// Users implements Cache.
func (m *Memory) Users(_ context.Context, ids []string) (map[string]*herald.User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]*herald.User, len(ids))
	now := m.now()
	for _, id := range ids {
		if e, ok := m.users[id]; ok && e.expires.After(now) {
			u := e.u
			out[id] = &u
		}
	}
	return out, nil
}

// PutUsers implements Cache.
func (m *Memory) PutUsers(_ context.Context, us []*herald.User) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	expires := m.now().Add(m.userTTL)
	for _, u := range us {
		if !cacheable(u) {
			continue
		}
		if len(m.users) >= m.max {
			m.users = map[string]memUser{}
		}
		m.users[u.ID] = memUser{u: *u, expires: expires}
	}
	return nil
}

// InvalidateUsers implements Cache.
func (m *Memory) InvalidateUsers(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.users = map[string]memUser{}
	return nil
}

// Close implements Cache.
func (m *Memory) Close() error { return nil }

package store_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/internal/testpg"
	"github.com/heraldproject/herald/store"
)

// forEachBackend runs the test against every store backend: SQLite in a
// temporary directory and PostgreSQL in a fresh schema.
func forEachBackend(t *testing.T, fn func(t *testing.T, s *store.Store)) {
	forEachBackendAt(t, nil, fn)
}

// forEachBackendAt is forEachBackend with now as the stores' clock (nil:
// time.Now).
func forEachBackendAt(t *testing.T, now func() time.Time, fn func(t *testing.T, s *store.Store)) {
	open := func(t *testing.T, o store.Options) *store.Store {
		o.Now = now
		s, err := store.Open(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	t.Run("sqlite", func(t *testing.T) {
		fn(t, open(t, store.Options{DSN: filepath.Join(t.TempDir(), "herald.db")}))
	})
	t.Run("postgres", func(t *testing.T) {
		fn(t, open(t, store.Options{Driver: "postgres", DSN: testpg.DSN(t)}))
	})
}

func user(name string) *herald.User {
	return &herald.User{ID: "u-" + name, Name: name, WebhookURL: "http://127.0.0.1/" + name}
}

func TestDirectory(t *testing.T) {
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		alice, bob := user("alice"), user("bob")
		for _, u := range []*herald.User{alice, bob} {
			if err := s.CreateUser(ctx, u); err != nil {
				t.Fatal(err)
			}
		}
		dup := user("alice")
		dup.ID = "u-other"
		if err := s.CreateUser(ctx, dup); herald.ErrorCode(err) != herald.ECONFLICT {
			t.Fatalf("duplicate name: err = %v, want conflict", err)
		}
		got, err := s.User(ctx, alice.ID)
		if err != nil || got.Name != "alice" || got.WebhookURL != alice.WebhookURL {
			t.Fatalf("User = %+v, %v", got, err)
		}
		if _, err := s.User(ctx, "nope"); herald.ErrorCode(err) != herald.ENOTFOUND {
			t.Fatalf("missing user: err = %v", err)
		}
		up, err := s.UpdateUser(ctx, bob.ID, func(u *herald.User) error { u.Email = "bob@example.com"; return nil })
		if err != nil || up.Email != "bob@example.com" {
			t.Fatalf("UpdateUser = %+v, %v", up, err)
		}
		if _, err := s.UpdateUser(ctx, bob.ID, func(u *herald.User) error { u.Name = "alice"; return nil }); herald.ErrorCode(err) != herald.ECONFLICT {
			t.Fatalf("rename onto taken name: err = %v", err)
		}

		g := &herald.Group{ID: "g-oncall", Name: "oncall"}
		if err := s.CreateGroup(ctx, g); err != nil {
			t.Fatal(err)
		}
		for range 2 { // idempotent
			if err := s.AddMember(ctx, g.ID, bob.ID); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.AddMember(ctx, g.ID, alice.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.AddMember(ctx, g.ID, "u-ghost"); herald.ErrorCode(err) != herald.ENOTFOUND {
			t.Fatalf("add unknown user: err = %v", err)
		}
		ms, err := s.Members(ctx, g.ID)
		if err != nil || len(ms) != 2 || ms[0].Name != "alice" || ms[1].Name != "bob" {
			t.Fatalf("Members = %v, %v", ms, err)
		}

		ids, unknown, err := s.Resolve(ctx, []herald.Target{{Name: "bob"}, {Name: "oncall", Group: true},
			{Name: "carol"}, {Name: "ghosts", Group: true}})
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{bob.ID, alice.ID}; !slices.Equal(ids, want) {
			t.Errorf("Resolve ids = %v, want %v (deduplicated, first reached first)", ids, want)
		}
		if want := []string{"@carol", "@@ghosts"}; !slices.Equal(unknown, want) {
			t.Errorf("Resolve unknown = %v, want %v", unknown, want)
		}

		if err := s.RemoveMember(ctx, g.ID, bob.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteUser(ctx, alice.ID); err != nil {
			t.Fatal(err)
		}
		if ms, _ := s.Members(ctx, g.ID); len(ms) != 0 {
			t.Errorf("members after unsubscribe and delete = %v", ms)
		}
		if err := s.DeleteGroup(ctx, g.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteGroup(ctx, g.ID); herald.ErrorCode(err) != herald.ENOTFOUND {
			t.Fatalf("delete twice: err = %v", err)
		}
	})
}

func TestListPaging(t *testing.T) {
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		for i := range 5 {
			if err := s.CreateUser(ctx, user(fmt.Sprintf("u%d", i))); err != nil {
				t.Fatal(err)
			}
		}
		var names []string
		after := ""
		for {
			page, err := s.ListUsers(ctx, after, 2)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			for _, u := range page {
				names = append(names, u.Name)
			}
			after = page[len(page)-1].Name
		}
		if want := []string{"u0", "u1", "u2", "u3", "u4"}; !slices.Equal(names, want) {
			t.Fatalf("paged names = %v", names)
		}
	})
}

func TestFanoutRecords(t *testing.T) {
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		mk := func(i int) *store.Fanout {
			id := fmt.Sprintf("a%d", i)
			return &store.Fanout{
				Alert: &herald.Alert{ID: id, Severity: herald.SeverityError, Message: "m", Targets: []string{"@x"},
					Labels: map[string]string{"k": "v"}, CreatedAt: base.Add(time.Duration(i) * time.Second)},
				UserCount: 1,
				Deliveries: []*herald.Delivery{{ID: id + "-d", AlertID: id, RecipientID: "u", Recipient: "x",
					Channel: herald.ChannelWebhook}},
			}
		}
		var fs []*store.Fanout
		for i := range 5 {
			fs = append(fs, mk(i))
		}
		if err := s.RecordFanouts(ctx, fs); err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC()
		if err := s.UpdateDeliveries(ctx, []store.DeliveryUpdate{{ID: "a0-d", Status: herald.StatusSent, Attempts: 1, SentAt: &now}}); err != nil {
			t.Fatal(err)
		}
		// A redelivered alert record is absorbed: the stored deliveries come back.
		again := mk(0)
		again.Deliveries[0].Channel = herald.ChannelSMS
		if err := s.RecordFanouts(ctx, []*store.Fanout{again}); err != nil {
			t.Fatal(err)
		}
		if d := again.Deliveries; len(d) != 1 || d[0].Channel != herald.ChannelWebhook || d[0].Status != herald.StatusSent {
			t.Fatalf("re-recorded deliveries = %+v", d[0])
		}
		// A batch of a stored alert and a new one: only the new one is
		// inserted, and the stored one hands on what was stored.
		stored, fresh := mk(1), mk(5)
		stored.Deliveries[0].Channel = herald.ChannelSMS
		if err := s.RecordFanouts(ctx, []*store.Fanout{stored, fresh}); err != nil {
			t.Fatal(err)
		}
		if stored.Inserted || !fresh.Inserted || stored.Deliveries[0].Channel != herald.ChannelWebhook ||
			len(fresh.Deliveries) != 1 || fresh.Deliveries[0].ID != "a5-d" {
			t.Fatalf("mixed batch: stored inserted %v (%+v), new inserted %v (%+v)", stored.Inserted,
				stored.Deliveries[0], fresh.Inserted, fresh.Deliveries)
		}
		if a, err := s.Alert(ctx, "a5"); err != nil || len(a.Deliveries) != 1 {
			t.Fatalf("the new alert of a mixed batch: %+v, %v", a, err)
		}
		// Sent is final: a late failure report cannot move it back.
		if err := s.UpdateDeliveries(ctx, []store.DeliveryUpdate{{ID: "a0-d", Status: herald.StatusFailed, Attempts: 2}}); err != nil {
			t.Fatal(err)
		}
		a, err := s.Alert(ctx, "a0")
		if err != nil {
			t.Fatal(err)
		}
		if a.Labels["k"] != "v" || len(a.Deliveries) != 1 || a.Deliveries[0].Status != herald.StatusSent || a.Deliveries[0].SentAt == nil {
			t.Fatalf("alert = %+v, delivery = %+v", a, a.Deliveries[0])
		}
		// Newest first, paged by cursor.
		var ids []string
		var cur *store.AlertCursor
		for {
			page, err := s.ListAlerts(ctx, cur, 2)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			for _, a := range page {
				ids = append(ids, a.ID)
			}
			last := page[len(page)-1]
			cur = &store.AlertCursor{CreatedAt: last.CreatedAt, ID: last.ID}
		}
		if want := []string{"a5", "a4", "a3", "a2", "a1", "a0"}; !slices.Equal(ids, want) {
			t.Fatalf("alert order = %v", ids)
		}
		counts, err := s.DeliveryCounts(ctx, []string{"a0", "a1"})
		if err != nil || counts["a0"][herald.StatusSent] != 1 || counts["a1"][herald.StatusPending] != 1 {
			t.Fatalf("counts = %v, %v", counts, err)
		}
	})
}

func TestReopenKeepsData(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "herald.db")
	s, err := store.Open(ctx, store.Options{DSN: path})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser(ctx, user("alice")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = store.Open(ctx, store.Options{DSN: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.User(ctx, "u-alice"); err != nil {
		t.Fatalf("after reopen: %v", err)
	}
}

func TestOutcomesAndDeadLetters(t *testing.T) {
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
		fo := &store.Fanout{
			Alert: &herald.Alert{ID: "a1", Severity: herald.SeverityError, Message: "m", Targets: []string{"@x"},
				IdempotencyKey: "key-1", CreatedAt: t0},
			UserCount: 1,
			Deliveries: []*herald.Delivery{{ID: "d1", AlertID: "a1", RecipientID: "u", Recipient: "x", Channel: herald.ChannelSMS},
				{ID: "d2", AlertID: "a1", RecipientID: "u", Recipient: "x", Channel: herald.ChannelEmail}},
		}
		if err := s.RecordFanouts(ctx, []*store.Fanout{fo}); err != nil {
			t.Fatal(err)
		}
		if got, err := s.AlertByIdempotencyKey(ctx, "key-1"); err != nil || got == nil || got.ID != "a1" || got.UserCount != 1 ||
			!got.CreatedAt.Equal(t0) || got.Alert == nil || got.Alert.Message != "m" || got.Alert.Severity != herald.SeverityError ||
			!slices.Equal(got.Alert.Targets, []string{"@x"}) || got.Alert.IdempotencyKey != "key-1" {
			t.Fatalf("by idempotency key = %+v, %v", got, err)
		}
		if got, err := s.AlertByIdempotencyKey(ctx, "other"); err != nil || got != nil {
			t.Fatalf("unknown key = %+v, %v", got, err)
		}
		// Two failed attempts then dead, recorded concurrently through group commit.
		next := t0.Add(time.Minute)
		var wg sync.WaitGroup
		for i, id := range []string{"d1", "d2"} {
			wg.Go(func() {
				err := s.RecordDelivery(ctx, store.DeliveryUpdate{ID: id, Status: herald.StatusFailed, Attempts: 1,
					LastError: "HTTP 500", NextAttemptAt: &next, Attempt: &herald.Attempt{Attempt: 1, At: t0, Error: "HTTP 500"}})
				if err != nil {
					t.Errorf("record %d: %v", i, err)
				}
			})
		}
		wg.Wait()
		dl := &herald.DeadLetter{ID: "dl1", Kind: herald.DeadDelivery, DeliveryID: "d1", AlertID: "a1",
			Channel: herald.ChannelSMS, RecipientID: "u", Recipient: "x", Reason: "gave up", Attempts: 2,
			Source: "herald.deliveries.sms/0/7", Key: []byte("u"), Payload: []byte(`{"deliveryId":"d1"}`), CreatedAt: t0.Add(time.Hour)}
		// The DLQ recorder may store a thinner copy first; the sender's wins.
		if err := s.RecordDeadLetters(ctx, []*herald.DeadLetter{{ID: "dl1", Kind: herald.DeadRecord, Reason: "thin",
			Source: dl.Source, CreatedAt: dl.CreatedAt}}); err != nil {
			t.Fatal(err)
		}
		if err := s.UpdateDeliveries(ctx, []store.DeliveryUpdate{{ID: "d1", Status: herald.StatusDead, Attempts: 2,
			LastError: "gave up", Attempt: &herald.Attempt{Attempt: 2, At: t0.Add(time.Second), Error: "HTTP 503"}, DeadLetter: dl}}); err != nil {
			t.Fatal(err)
		}
		got, err := s.DeadLetter(ctx, "dl1")
		if err != nil {
			t.Fatal(err)
		}
		if got.Kind != herald.DeadDelivery || got.Attempts != 2 || got.Reason != "gave up" || len(got.History) != 2 ||
			got.History[0].Error != "HTTP 500" || got.History[1].Error != "HTTP 503" || string(got.Payload) != `{"deliveryId":"d1"}` {
			t.Fatalf("dead letter = %+v", got)
		}
		d, err := s.Delivery(ctx, "d1")
		if err != nil || d.Status != herald.StatusDead || d.DeadLetterID != "dl1" {
			t.Fatalf("delivery = %+v, %v", d, err)
		}
		// Filters and replay marking.
		for _, tc := range []struct {
			f    store.DeadLetterFilter
			want int
		}{
			{store.DeadLetterFilter{}, 1},
			{store.DeadLetterFilter{Channel: herald.ChannelSMS}, 1},
			{store.DeadLetterFilter{Channel: herald.ChannelEmail}, 0},
			{store.DeadLetterFilter{AlertID: "a1", Since: t0, Until: t0.Add(2 * time.Hour)}, 1},
			{store.DeadLetterFilter{Since: t0.Add(2 * time.Hour)}, 0},
		} {
			dls, err := s.DeadLetters(ctx, tc.f, 10)
			if err != nil || len(dls) != tc.want {
				t.Errorf("filter %+v: %d dead letters, %v; want %d", tc.f, len(dls), err, tc.want)
			}
		}
		if err := s.MarkReplayed(ctx, "dl1"); err != nil {
			t.Fatal(err)
		}
		if dls, _ := s.DeadLetters(ctx, store.DeadLetterFilter{Unreplayed: true}, 10); len(dls) != 0 {
			t.Errorf("unreplayed after replay: %d", len(dls))
		}
		base := 2
		if err := s.RecordDelivery(ctx, store.DeliveryUpdate{ID: "d1", Status: herald.StatusSent, Attempts: 3, BudgetBase: &base,
			SentAt: &t0}); err != nil {
			t.Fatal(err)
		}
		if d, _ := s.Delivery(ctx, "d1"); d.Status != herald.StatusSent || d.BudgetBase != 2 || d.Attempts != 3 {
			t.Errorf("after replay and send: %+v", d)
		}
		// A batch read returns the ones that exist, in the same shape.
		many := []string{"d1", "no-such-delivery"}
		for i := range 600 { // more than one chunk
			many = append(many, fmt.Sprint("missing-", i))
		}
		byID, err := s.DeliveriesByID(ctx, many)
		if err != nil || len(byID) != 1 || byID["d1"].Status != herald.StatusSent || byID["d1"].Attempts != 3 {
			t.Errorf("DeliveriesByID = %v, %v", byID, err)
		}
	})
}

func TestSecretsAtRest(t *testing.T) {
	ctx := context.Background()
	key := []byte("0123456789abcdef0123456789abcdef")
	path := filepath.Join(t.TempDir(), "herald.db")
	s, err := store.Open(ctx, store.Options{DSN: path, SecretsKey: key})
	if err != nil {
		t.Fatal(err)
	}
	u := &herald.User{ID: "u1", Name: "alice", Slack: herald.SlackContact{Channel: "C1", Token: "xoxb-canary-at-rest"}}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	got, err := s.User(ctx, "u1")
	if err != nil || got.Slack.Token != "xoxb-canary-at-rest" {
		t.Fatalf("read back = %+v, %v", got, err)
	}
	s.Close()
	for _, f := range []string{path, path + "-wal"} {
		b, _ := os.ReadFile(f)
		if bytes.Contains(b, []byte("xoxb-canary-at-rest")) {
			t.Fatalf("%s holds the Slack token in plain text", f)
		}
	}
	// Without the key the secret cannot be read, and says why; the rest of
	// the user can.
	s, err = store.Open(ctx, store.Options{DSN: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if u, err := s.User(ctx, "u1"); err != nil || u.Slack.Token != "" || u.SecretErr == nil ||
		!strings.Contains(u.SecretErr.Error(), "secrets key") {
		t.Fatalf("read without key: %+v, %v", u, err)
	}
	if users, err := s.UsersByID(ctx, []string{"u1"}); err != nil || len(users) != 1 {
		t.Fatalf("UsersByID without key: %v, %v", users, err)
	}
	if _, err := store.Open(ctx, store.Options{DSN: path, SecretsKey: []byte("short")}); err == nil {
		t.Fatal("a short key was accepted")
	}
}

// TestUpdateDeliveriesBatch checks the multi-row group commit: more outcomes
// than one statement holds, every field written (and nulls keeping what was
// there), attempts recorded, sent staying final, and two outcomes of one
// delivery in one call applied in order.
func TestUpdateDeliveriesBatch(t *testing.T) {
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		const n = 230 // three statements of up to 100
		fo := &store.Fanout{Alert: &herald.Alert{ID: "ab", Severity: herald.SeverityError, Message: "m",
			CreatedAt: time.Now().UTC()}, UserCount: n}
		for i := range n {
			fo.Deliveries = append(fo.Deliveries, &herald.Delivery{ID: fmt.Sprintf("ab-%03d", i), AlertID: "ab",
				RecipientID: fmt.Sprint("u", i), Recipient: fmt.Sprint("user", i), Channel: herald.ChannelWebhook})
		}
		if err := s.RecordFanouts(ctx, []*store.Fanout{fo}); err != nil {
			t.Fatal(err)
		}
		sentAt := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
		next := sentAt.Add(time.Minute)
		base := 1
		var us []store.DeliveryUpdate
		for i := range n {
			id := fmt.Sprintf("ab-%03d", i)
			switch i % 3 {
			case 0:
				us = append(us, store.DeliveryUpdate{ID: id, Status: herald.StatusSent, Attempts: 1, SentAt: &sentAt,
					Attempt: &herald.Attempt{Attempt: 1, At: sentAt}})
			case 1:
				us = append(us, store.DeliveryUpdate{ID: id, Status: herald.StatusFailed, Attempts: 2, LastError: "HTTP 503",
					NextAttemptAt: &next, BudgetBase: &base, Attempt: &herald.Attempt{Attempt: 2, At: sentAt, Error: "HTTP 503"}})
			default: // deferred: no attempt row
				us = append(us, store.DeliveryUpdate{ID: id, Status: herald.StatusPending, LastError: "breaker open",
					NextAttemptAt: &next})
			}
		}
		if err := s.UpdateDeliveries(ctx, us); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			id := fmt.Sprintf("ab-%03d", i)
			d, err := s.Delivery(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			att, err := s.Attempts(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			var ok bool
			switch i % 3 {
			case 0:
				ok = d.Status == herald.StatusSent && d.Attempts == 1 && d.SentAt != nil && d.SentAt.Equal(sentAt) &&
					d.NextAttemptAt == nil && len(att) == 1 && att[0].Error == ""
			case 1:
				ok = d.Status == herald.StatusFailed && d.Attempts == 2 && d.LastError == "HTTP 503" && d.SentAt == nil &&
					d.NextAttemptAt != nil && d.NextAttemptAt.Equal(next) && d.BudgetBase == 1 && len(att) == 1 &&
					att[0].Attempt == 2 && att[0].Error == "HTTP 503"
			default:
				ok = d.Status == herald.StatusPending && d.LastError == "breaker open" && d.BudgetBase == 0 && len(att) == 0
			}
			if !ok {
				t.Fatalf("delivery %d = %+v, attempts %+v", i, d, att)
			}
		}
		// Two outcomes of one delivery in one call: applied in order, and a
		// sent delivery stays sent.
		later := sentAt.Add(time.Hour)
		if err := s.UpdateDeliveries(ctx, []store.DeliveryUpdate{
			{ID: "ab-001", Status: herald.StatusFailed, Attempts: 3, LastError: "HTTP 500", Attempt: &herald.Attempt{Attempt: 3, At: later, Error: "HTTP 500"}},
			{ID: "ab-001", Status: herald.StatusSent, Attempts: 4, SentAt: &later, Attempt: &herald.Attempt{Attempt: 4, At: later}},
			{ID: "ab-000", Status: herald.StatusFailed, Attempts: 2, LastError: "late"},
		}); err != nil {
			t.Fatal(err)
		}
		d1, _ := s.Delivery(ctx, "ab-001")
		att1, _ := s.Attempts(ctx, "ab-001")
		d0, _ := s.Delivery(ctx, "ab-000")
		if d1.Status != herald.StatusSent || d1.Attempts != 4 || len(att1) != 3 || d0.Status != herald.StatusSent || d0.Attempts != 1 {
			t.Fatalf("in order: %+v (%d attempts); sent stays sent: %+v", d1, len(att1), d0)
		}
		// A send records no attempt row of its own: the history shows it
		// from the delivery (after the failed attempt's row).
		if err := s.UpdateDeliveries(ctx, []store.DeliveryUpdate{{ID: "ab-002", Status: herald.StatusSent, Attempts: 3,
			SentAt: &later}}); err != nil {
			t.Fatal(err)
		}
		att2, err := s.Attempts(ctx, "ab-002")
		if err != nil || len(att2) != 1 || att2[0].Attempt != 3 || !att2[0].At.Equal(later) || att2[0].Error != "" {
			t.Fatalf("history of a send without its own row = %+v, %v", att2, err)
		}
		if err := s.UpdateDeliveries(ctx, []store.DeliveryUpdate{{ID: "ab-001", Status: herald.StatusFailed, Attempts: 9}}); err != nil {
			t.Fatal(err)
		}
		if att, _ := s.Attempts(ctx, "ab-001"); len(att) != 3 {
			t.Fatalf("a sent delivery's history grew or shrank: %+v", att)
		}
		// An outcome for a delivery sent already (a duplicate send racing
		// the one recorded) or not stored (its alert pruned meanwhile)
		// records no attempt (one numbered as the send would hide it in
		// the history) and no dead letter (there is nothing to replay).
		for _, id := range []string{"ab-000", "gone"} {
			err := s.UpdateDeliveries(ctx, []store.DeliveryUpdate{
				{ID: "ab-004", Status: herald.StatusFailed, Attempts: 2, LastError: "HTTP 500", // still recorded
					Attempt: &herald.Attempt{Attempt: 2, At: later, Error: "HTTP 500"}},
				{ID: id, Status: herald.StatusDead, Attempts: 1, LastError: "HTTP 404",
					Attempt:    &herald.Attempt{Attempt: 1, At: later, Error: "HTTP 404"},
					DeadLetter: &herald.DeadLetter{ID: "dl-" + id, Kind: "delivery", DeliveryID: id, AlertID: "ab", CreatedAt: later}},
			})
			if err != nil {
				t.Fatal(err)
			}
			att, err := s.Attempts(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			wantAttempts := 1 // the send, from the delivery's own row
			if id == "gone" {
				wantAttempts = 0
			} else if d, err := s.Delivery(ctx, id); err != nil || d.Status != herald.StatusSent || d.DeadLetterID != "" {
				t.Fatalf("late outcome for %s moved it: %+v, %v", id, d, err)
			}
			if len(att) != wantAttempts || (len(att) == 1 && att[0].Error != "") {
				t.Fatalf("late outcome for %s: history %+v", id, att)
			}
			if dl, err := s.DeadLetter(ctx, "dl-"+id); herald.ErrorCode(err) != herald.ENOTFOUND {
				t.Fatalf("late outcome for %s recorded a dead letter: %+v, %v", id, dl, err)
			}
		}
		if att, _ := s.Attempts(ctx, "ab-004"); len(att) != 1 || att[0].Error != "HTTP 500" {
			t.Fatalf("an outcome beside a late one: history %+v", att)
		}
		// The other order: the duplicate died first, then the send is
		// recorded (in another call, or later in the same one; with
		// nothing else to record, or with more). Its dead letter goes,
		// unless it was replayed; the history shows the send.
		dead := func(id string) store.DeliveryUpdate {
			return store.DeliveryUpdate{ID: id, Status: herald.StatusDead, Attempts: 1, LastError: "HTTP 404",
				Attempt:    &herald.Attempt{Attempt: 1, At: sentAt, Error: "HTTP 404"},
				DeadLetter: &herald.DeadLetter{ID: "dl-" + id, Kind: "delivery", DeliveryID: id, AlertID: "ab", CreatedAt: sentAt}}
		}
		sent := func(id string) store.DeliveryUpdate {
			return store.DeliveryUpdate{ID: id, Status: herald.StatusSent, Attempts: 1, SentAt: &later}
		}
		withMore := sent("ab-011")
		withMore.Attempt = &herald.Attempt{Attempt: 1, At: later}
		replayed := "ab-014"
		// A replay's send recorded before deadletter.Replay marks the
		// letter replayed (it produces the record first): the letter stays.
		early := sent("ab-017")
		early.BudgetBase, early.ReplayOf = &base, "dl-ab-017"
		// A duplicate of a replay died (a letter of its own), then the
		// replay's send: the duplicate's letter goes, the replayed one
		// stays.
		dupDied := dead("ab-020")
		dupDied.Attempts, dupDied.Attempt.Attempt, dupDied.DeadLetter.ID = 2, 2, "dl-ab-020-2"
		replaySent := sent("ab-020")
		replaySent.Attempts, replaySent.BudgetBase, replaySent.ReplayOf = 2, &base, "dl-ab-020"
		for _, calls := range [][]store.DeliveryUpdate{
			{dead("ab-005")}, {sent("ab-005")},
			{dead("ab-008"), sent("ab-008")},
			{dead("ab-011")}, {withMore},
			{dead(replayed)}, {sent(replayed)},
			{dead("ab-017")}, {early},
			{dead("ab-020")}, {dupDied}, {replaySent},
		} {
			if calls[0].ID == replayed && calls[0].Status == herald.StatusSent {
				if err := s.MarkReplayed(ctx, "dl-"+replayed); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.UpdateDeliveries(ctx, calls); err != nil {
				t.Fatal(err)
			}
		}
		for _, id := range []string{"ab-005", "ab-008", "ab-011", replayed, "ab-017"} {
			d, err := s.Delivery(ctx, id)
			if err != nil || d.Status != herald.StatusSent || d.DeadLetterID != "" {
				t.Fatalf("%s after its duplicate died: %+v, %v", id, d, err)
			}
			att, _ := s.Attempts(ctx, id)
			if len(att) != 1 || att[0].Error != "" || !att[0].At.Equal(later) {
				t.Fatalf("%s after its duplicate died: history %+v", id, att)
			}
			dl, err := s.DeadLetter(ctx, "dl-"+id)
			switch id {
			case replayed:
				if err != nil || dl.ReplayedAt == nil {
					t.Fatalf("a replayed dead letter went with the send it made: %+v, %v", dl, err)
				}
			case "ab-017":
				if err != nil {
					t.Fatalf("a dead letter went with its replay's send, recorded before the replay was marked: %v", err)
				}
				if err := s.MarkReplayed(ctx, "dl-ab-017"); err != nil {
					t.Fatal(err)
				}
				if dl, err := s.DeadLetter(ctx, "dl-ab-017"); err != nil || dl.ReplayedAt == nil {
					t.Fatalf("marked replayed after its send: %+v, %v", dl, err)
				}
			default:
				if herald.ErrorCode(err) != herald.ENOTFOUND {
					t.Fatalf("%s sent, its duplicate's dead letter stayed: %+v, %v", id, dl, err)
				}
			}
		}
		d20, err := s.Delivery(ctx, "ab-020")
		_, errDup := s.DeadLetter(ctx, "dl-ab-020-2")
		_, errReplayed := s.DeadLetter(ctx, "dl-ab-020")
		if err != nil || d20.Status != herald.StatusSent || herald.ErrorCode(errDup) != herald.ENOTFOUND || errReplayed != nil {
			t.Fatalf("a replay's send after its duplicate died: %+v (%v); the duplicate's letter %v, the replayed one %v",
				d20, err, errDup, errReplayed)
		}
	})
}

// TestAlertsByIdempotencyKeys: many keys in one query, the newest alert per
// key, keys with none left out.
func TestAlertsByIdempotencyKeys(t *testing.T) {
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
		var fos []*store.Fanout
		for i, a := range []struct {
			id, key string
			at      time.Duration
		}{{"old", "k1", 0}, {"new", "k1", time.Hour}, {"other", "k2", time.Minute}, {"plain", "", 0}} {
			fos = append(fos, &store.Fanout{Alert: &herald.Alert{ID: a.id, Severity: herald.SeverityInfo, Message: "m",
				Targets: []string{"@x"}, IdempotencyKey: a.key, CreatedAt: t0.Add(a.at)}, UserCount: i + 1})
		}
		if err := s.RecordFanouts(ctx, fos); err != nil {
			t.Fatal(err)
		}
		keys := []string{"k1", "k2", "none"}
		for i := range 1200 { // more than one chunk
			keys = append(keys, fmt.Sprint("absent-", i))
		}
		got, err := s.AlertsByIdempotencyKeys(ctx, keys)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got["k1"].ID != "new" || got["k1"].UserCount != 2 || !got["k1"].CreatedAt.Equal(t0.Add(time.Hour)) ||
			got["k2"].ID != "other" {
			t.Fatalf("by keys = %v", got)
		}
		if got, err := s.AlertsByIdempotencyKeys(ctx, nil); err != nil || len(got) != 0 {
			t.Fatalf("no keys = %v, %v", got, err)
		}
	})
}

// TestRecordFanoutsBatch: a batch larger than one statement, holding one
// alert twice and one stored before — each record ends up with exactly the
// deliveries stored the first time.
func TestRecordFanoutsBatch(t *testing.T) {
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		mk := func(i int, ch herald.Channel) *store.Fanout {
			id := fmt.Sprintf("rb-%04d", i)
			return &store.Fanout{Alert: &herald.Alert{ID: id, Severity: herald.SeverityInfo, Message: "m",
				CreatedAt: time.Now().UTC()}, UserCount: 2, Deliveries: []*herald.Delivery{
				{ID: id + "-a", AlertID: id, RecipientID: "ua", Recipient: "a", Channel: ch},
				{ID: id + "-b", AlertID: id, RecipientID: "ub", Recipient: "b", Channel: ch}}}
		}
		if err := s.RecordFanouts(ctx, []*store.Fanout{mk(0, herald.ChannelEmail)}); err != nil {
			t.Fatal(err)
		}
		batch := []*store.Fanout{mk(0, herald.ChannelSMS)} // stored before, as email
		for i := 1; i <= 600; i++ {
			batch = append(batch, mk(i, herald.ChannelWebhook))
		}
		batch = append(batch, mk(7, herald.ChannelSMS)) // twice in this batch
		if err := s.RecordFanouts(ctx, batch); err != nil {
			t.Fatal(err)
		}
		if d := batch[0].Deliveries; len(d) != 2 || d[0].Channel != herald.ChannelEmail {
			t.Errorf("stored alert handed on %+v", d[0])
		}
		if d := batch[len(batch)-1].Deliveries; len(d) != 2 || d[0].Channel != herald.ChannelWebhook || d[0].ID != "rb-0007-a" {
			t.Errorf("second record of an alert handed on %+v", d[0])
		}
		for _, i := range []int{1, 300, 600} {
			a, err := s.Alert(ctx, fmt.Sprintf("rb-%04d", i))
			if err != nil || len(a.Deliveries) != 2 || a.Deliveries[0].Status != herald.StatusPending {
				t.Fatalf("alert %d = %+v, %v", i, a, err)
			}
		}
	})
}

// TestHasSchema: a database Herald has not opened has no schema (and checking
// does not create one); one it has opened does.
func TestHasSchema(t *testing.T) {
	ctx := context.Background()
	for _, o := range []store.Options{{DSN: filepath.Join(t.TempDir(), "herald.db")}, {Driver: "postgres", DSN: testpg.DSN(t)}} {
		for range 2 { // the first check must not create anything
			if ok, err := store.HasSchema(ctx, o); err != nil || ok {
				t.Fatalf("%s before opening: %v, %v", o.Driver, ok, err)
			}
		}
		s, err := store.Open(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		if ok, err := store.HasSchema(ctx, o); err != nil || !ok {
			t.Fatalf("%s after opening: %v, %v", o.Driver, ok, err)
		}
	}
}

// TestDeadLettersOldestFirst: bulk replay's query (not replayed, oldest
// first) skips replayed dead letters and starts from the oldest; pages are
// newest first otherwise.
func TestDeadLettersOldestFirst(t *testing.T) {
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, s *store.Store) {
		t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
		var dls []*herald.DeadLetter
		for i := range 4 {
			dls = append(dls, &herald.DeadLetter{ID: fmt.Sprint("dl", i), Kind: herald.DeadRecord, Reason: "poison",
				Source: fmt.Sprint("herald.alerts/0/", i), CreatedAt: t0.Add(time.Duration(i) * time.Minute)})
		}
		if err := s.RecordDeadLetters(ctx, dls); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkReplayed(ctx, "dl0"); err != nil {
			t.Fatal(err)
		}
		ids := func(f store.DeadLetterFilter, limit int) string {
			t.Helper()
			got, err := s.DeadLetters(ctx, f, limit)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, d := range got {
				out = append(out, d.ID)
			}
			return strings.Join(out, ",")
		}
		if got := ids(store.DeadLetterFilter{Unreplayed: true, OldestFirst: true}, 2); got != "dl1,dl2" {
			t.Errorf("unreplayed, oldest first, 2: %s; want dl1,dl2", got)
		}
		after := &store.AlertCursor{CreatedAt: dls[1].CreatedAt, ID: "dl1"}
		if got := ids(store.DeadLetterFilter{Unreplayed: true, OldestFirst: true, After: after}, 5); got != "dl2,dl3" {
			t.Errorf("unreplayed, oldest first, after dl1: %s; want dl2,dl3", got)
		}
		if got := ids(store.DeadLetterFilter{Unreplayed: true}, 2); got != "dl3,dl2" {
			t.Errorf("unreplayed, newest first, 2: %s; want dl3,dl2", got)
		}
		if n, err := s.PendingDeadLetters(ctx); err != nil || n != 3 {
			t.Errorf("PendingDeadLetters = %d, %v; want 3", n, err)
		}
	})
}

// TestDeleteDeadLetter: a discarded dead letter is gone, its delivery stays
// dead without naming it, and its alert (no dead letter waiting) can be
// pruned; discarding it again is ENOTFOUND, and a replayed one ECONFLICT.
func TestDeleteDeadLetter(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	forEachBackendAt(t, func() time.Time { return t0 }, func(t *testing.T, s *store.Store) {
		al := &herald.Alert{ID: "a1", Severity: herald.SeverityError, Message: "m", Targets: []string{"@x"}, CreatedAt: t0}
		d := &herald.Delivery{ID: "d1", AlertID: "a1", RecipientID: "u", Recipient: "x", Channel: herald.ChannelWebhook}
		if err := s.RecordFanouts(ctx, []*store.Fanout{{Alert: al, UserCount: 1, Deliveries: []*herald.Delivery{d}}}); err != nil {
			t.Fatal(err)
		}
		dl := &herald.DeadLetter{ID: "dl1", Kind: herald.DeadDelivery, DeliveryID: "d1", AlertID: "a1",
			Channel: herald.ChannelWebhook, Reason: "gave up", Attempts: 1, CreatedAt: t0}
		if err := s.UpdateDeliveries(ctx, []store.DeliveryUpdate{{ID: "d1", Status: herald.StatusDead, Attempts: 1,
			LastError: "HTTP 410", Attempt: &herald.Attempt{Attempt: 1, At: t0, Error: "HTTP 410"}, DeadLetter: dl}}); err != nil {
			t.Fatal(err)
		}
		cutoff := t0.Add(time.Hour)
		if n, err := s.PruneAlerts(ctx, cutoff, 0); err != nil || n != 0 {
			t.Fatalf("PruneAlerts with a dead letter waiting = %d, %v; want the alert kept", n, err)
		}
		if err := s.DeleteDeadLetter(ctx, "dl1"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.DeadLetter(ctx, "dl1"); herald.ErrorCode(err) != herald.ENOTFOUND {
			t.Errorf("dead letter after discarding: %v, want ENOTFOUND", err)
		}
		if got, err := s.Delivery(ctx, "d1"); err != nil || got.Status != herald.StatusDead || got.DeadLetterID != "" ||
			got.LastError != "HTTP 410" {
			t.Errorf("delivery after discarding = %+v, %v; want dead, naming no dead letter", got, err)
		}
		if err := s.DeleteDeadLetter(ctx, "dl1"); herald.ErrorCode(err) != herald.ENOTFOUND {
			t.Errorf("discarding again: %v, want ENOTFOUND", err)
		}
		if n, err := s.PruneAlerts(ctx, cutoff, 0); err != nil || n != 1 {
			t.Fatalf("PruneAlerts after discarding = %d, %v; want the alert pruned", n, err)
		}
		// A replayed dead letter is not discarded: its replay may be on its
		// way, and the letter keeps its alert until then.
		if err := s.RecordDeadLetters(ctx, []*herald.DeadLetter{{ID: "dl2", Kind: herald.DeadRecord, Reason: "poison",
			Source: "herald.alerts/0/9", CreatedAt: t0}}); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkReplayed(ctx, "dl2"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteDeadLetter(ctx, "dl2"); herald.ErrorCode(err) != herald.ECONFLICT {
			t.Errorf("discarding a replayed dead letter: %v, want ECONFLICT", err)
		}
	})
}

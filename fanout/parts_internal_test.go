package fanout

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/bus"
	"github.com/heraldproject/herald/internal/testpg"
	"github.com/heraldproject/herald/internal/teststore"
	"github.com/heraldproject/herald/route"
	"github.com/heraldproject/herald/store"
)

func TestParts(t *testing.T) {
	ids := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprint(i)
		}
		return out
	}
	// describe renders parts as "alert:count[first,last]" per piece.
	describe := func(ps [][]piece) string {
		var s string
		for _, p := range ps {
			s += "|"
			for _, x := range p {
				s += fmt.Sprintf(" %d:%d", x.alert, len(x.ids))
				if x.first {
					s += "f"
				}
				if x.last {
					s += "l"
				}
			}
		}
		return s
	}
	for _, tc := range []struct {
		sizes []int
		want  string
	}{
		{[]int{2, 1}, "| 0:2fl 1:1fl"},
		{[]int{7}, "| 0:3f| 0:3| 0:1l"},
		{[]int{7, 2}, "| 0:3f| 0:3| 0:1l 1:2fl"},
		{[]int{3, 3}, "| 0:3fl| 1:3fl"},
		{[]int{2, 0, 4}, "| 0:2fl 1:0fl| 2:3f| 2:1l"},
		{[]int{0, 0, 0, 0}, "| 0:0fl 1:0fl 2:0fl| 3:0fl"},
		{[]int{2, 2}, "| 0:2fl| 1:2fl"},          // a small alert is not split: it starts the next part
		{[]int{2, 5}, "| 0:2fl 1:1f| 1:3| 1:1l"}, // a big one fills what is left
		{[]int{1, 1, 2, 3}, "| 0:1fl 1:1fl| 2:2fl| 3:3fl"},
	} {
		var rs [][]string
		for _, n := range tc.sizes {
			rs = append(rs, ids(n))
		}
		if got := describe(parts(rs, 3)); got != tc.want {
			t.Errorf("parts(%v, 3) = %q, want %q", tc.sizes, got, tc.want)
		}
	}
}

// partsSetup stores n users (u00…), of whom u01 and u05 have no contact
// (unreachable), and returns a fan-out stage of parts of three recipients,
// what it produced and reported fresh, and a record of an alert to all of
// them.
func partsSetup(t *testing.T, open func(testing.TB, ...*herald.User) *store.Store, n int) (*Fanout, *producedRecs, *freshIDs, *kgo.Record) {
	t.Helper()
	var users []*herald.User
	var ids []string
	for i := range n {
		u := &herald.User{ID: fmt.Sprintf("u%02d", i), Name: fmt.Sprintf("user%02d", i)}
		if i != 1 && i != 5 {
			u.WebhookURL = "http://127.0.0.1:1/" + u.ID
		}
		users = append(users, u)
		ids = append(ids, u.ID)
	}
	st := open(t, users...)
	prod, fresh := &producedRecs{}, &freshIDs{}
	f := &Fanout{Store: st, Producer: prod, Fresh: fresh, Logger: slog.New(slog.DiscardHandler),
		Router: &route.Router{Enabled: []herald.Channel{herald.ChannelWebhook}}, partSize: 3}
	v, err := json.Marshal(herald.Alert{ID: "a1", Severity: herald.SeverityError, Message: "m",
		Targets: []string{"@@everyone"}, Recipients: ids, CreatedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return f, prod, fresh, &kgo.Record{Topic: bus.TopicAlerts, Value: v}
}

// stores runs fn on SQLite and on PostgreSQL.
func stores(t *testing.T, fn func(t *testing.T, open func(testing.TB, ...*herald.User) *store.Store)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, teststore.SQLite) })
	t.Run("postgres", func(t *testing.T) {
		fn(t, func(tb testing.TB, users ...*herald.User) *store.Store {
			tb.Helper()
			return teststore.Open(tb, store.Options{Driver: "postgres", DSN: testpg.DSN(tb)}, users...)
		})
	})
}

// reachable returns the sorted ids of a1's deliveries to partsSetup's n
// users who have a contact (all but u01 and u05).
func reachable(n int) []string {
	var want []string
	for i := range n {
		if i != 1 && i != 5 {
			want = append(want, DeliveryID("a1", fmt.Sprintf("u%02d", i), herald.ChannelWebhook))
		}
	}
	slices.Sort(want)
	return want
}

// delivered returns the sorted delivery ids of recs.
func delivered(recs []*kgo.Record) []string {
	var out []string
	for _, r := range recs {
		out = append(out, bus.Header(r, bus.HeaderDeliveryID))
	}
	slices.Sort(out)
	return out
}

// checkStored checks the stored alert: fanned out, counting all n users,
// both unreachable users named, and want deliveries pending.
func checkStored(t *testing.T, st *store.Store, n int, want []string) {
	t.Helper()
	a, err := st.Alert(context.Background(), "a1")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range a.Deliveries {
		got = append(got, d.ID)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) || a.UserCount != n || !slices.Equal(a.Unreachable, []string{"user01", "user05"}) {
		t.Fatalf("stored: %d deliveries (want %d), user count %d (want %d), unreachable %v", len(got), len(want),
			a.UserCount, n, a.Unreachable)
	}
	if a.FanningOut {
		t.Fatal("the alert is still fanning out")
	}
}

// TestFanoutInParts: an alert with more recipients than a part is recorded
// and produced part by part: every delivery once, all reported fresh, and
// the stored alert counts everyone and names everyone unreachable. Its
// record handled again hands on the stored deliveries once (its later parts
// are skipped), none reported fresh.
func TestFanoutInParts(t *testing.T) { stores(t, testFanoutInParts) }

func testFanoutInParts(t *testing.T, open func(testing.TB, ...*herald.User) *store.Store) {
	const n = 8
	f, prod, fresh, rec := partsSetup(t, open, n)
	if err := f.Handle(context.Background(), []*kgo.Record{rec}); err != nil {
		t.Fatal(err)
	}
	want := reachable(n)
	if got := delivered(prod.recs); !slices.Equal(got, want) {
		t.Fatalf("produced %v, want %v", got, want)
	}
	if got := slices.Sorted(slices.Values(fresh.ids)); !slices.Equal(got, want) {
		t.Fatalf("reported fresh %v, want %v", got, want)
	}
	checkStored(t, f.Store, n, want)

	prod.recs, fresh.ids = nil, nil
	if err := f.Handle(context.Background(), []*kgo.Record{rec}); err != nil {
		t.Fatal(err)
	}
	if got := delivered(prod.recs); !slices.Equal(got, want) || len(fresh.ids) != 0 {
		t.Fatalf("redelivered: produced %v, reported fresh %v; want %v and none", got, fresh.ids, want)
	}
}

// TestFanoutResumed: a fan-out interrupted after two of its parts (the
// alert stored as still fanning out, with those parts' deliveries) is
// resumed when its record comes again: the rest are added, every pending
// delivery is handed on once (the second part's, stored before, are not
// handed on twice), none is reported fresh (the sender reads the state of
// each: another process resuming the same alert may have sent some), and the
// alert is then fanned out, counting everyone.
func TestFanoutResumed(t *testing.T) { stores(t, testFanoutResumed) }

func testFanoutResumed(t *testing.T, open func(testing.TB, ...*herald.User) *store.Store) {
	ctx := context.Background()
	const n = 8
	f, prod, fresh, rec := partsSetup(t, open, n)
	// What the first two parts of a fan-out record (users u00-u05; u01 and
	// u05 have no contact) before the process stops.
	a, err := decodeAlert(rec)
	if err != nil {
		t.Fatal(err)
	}
	for i, part := range [][]string{{"u00", "u01", "u02"}, {"u03", "u04", "u05"}} {
		users, err := f.Store.UsersByID(ctx, part)
		if err != nil {
			t.Fatal(err)
		}
		fo := f.planOne(a, part, users)
		fo.UserCount, fo.Continued, fo.Continues = n, i > 0, true
		if err := f.Store.RecordFanouts(ctx, []*store.Fanout{fo}); err != nil {
			t.Fatal(err)
		}
		if len(fo.Deliveries) != 2 || !fo.Inserted {
			t.Fatalf("part %d: %d deliveries, inserted %v", i, len(fo.Deliveries), fo.Inserted)
		}
	}
	if got, err := f.Store.Alert(ctx, "a1"); err != nil || !got.FanningOut || len(got.Deliveries) != 4 {
		t.Fatalf("interrupted: %+v, %v; want fanning out with 4 deliveries", got, err)
	}

	if err := f.Handle(ctx, []*kgo.Record{rec}); err != nil {
		t.Fatal(err)
	}
	want := reachable(n)
	if got := delivered(prod.recs); !slices.Equal(got, want) {
		t.Fatalf("resumed: produced %v, want %v", got, want)
	}
	if len(fresh.ids) != 0 {
		t.Fatalf("resumed: reported fresh %v, want none", fresh.ids)
	}

	checkStored(t, f.Store, n, want)

	// A resumed fan-out's later part hands back the stored version of each
	// of its deliveries, new or not (another process resuming the alert may
	// have stored and sent some since the first part read them).
	sentID := DeliveryID("a1", "u03", herald.ChannelWebhook)
	now := time.Now().UTC()
	if err := f.Store.RecordDelivery(ctx, store.DeliveryUpdate{ID: sentID, Status: herald.StatusSent, Attempts: 1, SentAt: &now}); err != nil {
		t.Fatal(err)
	}
	users, err := f.Store.UsersByID(ctx, []string{"u03", "u04", "u05"})
	if err != nil {
		t.Fatal(err)
	}
	later := f.planOne(a, []string{"u03", "u04", "u05"}, users)
	later.UserCount, later.Continued, later.Continues, later.Resumed = n, true, true, true
	if err := f.Store.RecordFanouts(ctx, []*store.Fanout{later}); err != nil {
		t.Fatal(err)
	}
	if len(later.Deliveries) != 2 || later.Inserted || later.Deliveries[0].ID != min(sentID, later.Deliveries[1].ID) {
		t.Fatalf("later part of a resumed fan-out: %d deliveries, inserted %v", len(later.Deliveries), later.Inserted)
	}
	for _, d := range later.Deliveries {
		if d.ID == sentID && d.Status != herald.StatusSent {
			t.Fatalf("the stored delivery %s came back %s, want sent", d.ID, d.Status)
		}
	}
}

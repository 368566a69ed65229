package deliver

import (
	"context"
	"testing"
	"time"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/internal/teststore"
)

// TestSnapshotFresh: a batch's recipients are used only until the directory
// changes through this process, and the whole snapshot only for snapshotTTL.
func TestSnapshotFresh(t *testing.T) {
	ctx := context.Background()
	u := &herald.User{ID: "u1", Name: "ada", WebhookURL: "http://127.0.0.1:1/a"}
	st := teststore.SQLite(t, u)
	snap := snapshot{at: time.Now(), gen: st.DirectoryGeneration(),
		state: map[string]*herald.Delivery{"d1": {ID: "d1"}}, users: map[string]*herald.User{"u1": u}}
	if got := snap.fresh(st); got.users["u1"] != u || got.state["d1"] == nil {
		t.Fatalf("fresh snapshot dropped something: %+v", got)
	}
	if _, err := st.UpdateUser(ctx, "u1", func(u *herald.User) error { u.WebhookURL = "http://127.0.0.1:1/b"; return nil }); err != nil {
		t.Fatal(err)
	}
	if got := snap.fresh(st); got.users != nil || got.state["d1"] == nil {
		t.Fatalf("after a directory write: users %v (want none), state %v (want kept)", got.users, got.state)
	}
	old := snap
	old.at = time.Now().Add(-snapshotTTL - time.Second)
	old.gen = st.DirectoryGeneration()
	if got := old.fresh(st); got.state != nil || got.users != nil {
		t.Fatalf("an expired snapshot was used: %+v", got)
	}
}

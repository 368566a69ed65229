package api_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"testing"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/api"
	"github.com/heraldproject/herald/internal/teststore"
)

// TestRecordRecipientsBounded: an alert record names the recipients its
// targets resolved to, up to MaxRecordRecipients; an alert to more people is
// produced with its targets only (the fan-out stage resolves them again),
// and the answer still counts everyone.
func TestRecordRecipientsBounded(t *testing.T) {
	ctx := context.Background()
	users := []*herald.User{{ID: "u1", Name: "alice"}, {ID: "u2", Name: "bob"}, {ID: "u3", Name: "carol"}}
	st := teststore.SQLite(t, users...)
	if err := st.CreateGroup(ctx, &herald.Group{ID: "g1", Name: "everyone"}); err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if err := st.AddMember(ctx, "g1", u.ID); err != nil {
			t.Fatal(err)
		}
	}
	rec := &recorder{}
	h := (&api.Server{Store: st, Producer: rec, Logger: slog.New(slog.DiscardHandler), Version: "test",
		MaxRecordRecipients: 2}).Handler()
	for _, tc := range []struct {
		body           string
		users          int
		withRecipients bool
	}{
		{`{"target":["@alice","@bob"],"severity":"error","message":"m"}`, 2, true},
		{`{"target":["@@everyone"],"severity":"error","message":"m"}`, 3, false},
	} {
		before := rec.count()
		code, raw := post(t, h, "/v1/alerts", "application/json", tc.body)
		var ans struct {
			ID        string `json:"id"`
			UserCount int    `json:"userCount"`
		}
		if code != http.StatusAccepted || json.Unmarshal(raw, &ans) != nil || ans.UserCount != tc.users || rec.count() != before+1 {
			t.Fatalf("%s: %d %s, %d records", tc.body, code, raw, rec.count()-before)
		}
		var al herald.Alert
		if err := json.Unmarshal(rec.all()[before].Value, &al); err != nil {
			t.Fatal(err)
		}
		if got := len(al.Recipients) > 0; got != tc.withRecipients || (got && len(al.Recipients) != tc.users) ||
			al.ID != ans.ID || len(al.Targets) == 0 {
			t.Fatalf("%s: record names %d recipients and targets %v; want recipients %v", tc.body, len(al.Recipients),
				al.Targets, tc.withRecipients)
		}
	}
}

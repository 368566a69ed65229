package fanout

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/cache"
	"github.com/heraldproject/herald/internal/teststore"
	"github.com/heraldproject/herald/route"
	"github.com/heraldproject/herald/store"
)

// TestPlanCachesRecipients: the recipients the fan-out stage reads are put
// in the cache, so the sending stage finds them there.
func TestPlanCachesRecipients(t *testing.T) {
	ctx := context.Background()
	st := storeWithUsers(t)
	c := cache.NewMemory(100, time.Minute)
	f := &Fanout{Store: st, Cache: c, Logger: slog.New(slog.DiscardHandler),
		Router: &route.Router{Enabled: []herald.Channel{herald.ChannelWebhook}}}
	a := &herald.Alert{ID: "a1", Severity: herald.SeverityError, Message: "m", Targets: []string{"@ada", "@bob"}}
	fos, err := f.plan(ctx, []*herald.Alert{a})
	if err != nil || len(fos) != 1 || len(fos[0].Deliveries) != 2 {
		t.Fatalf("plan = %+v, %v", fos, err)
	}
	got, err := c.Users(ctx, []string{"u1", "u2"})
	if err != nil || got["u1"] == nil || got["u2"] == nil || got["u2"].WebhookURL != "http://127.0.0.1:1/b" {
		t.Fatalf("cached after fan-out: %v, %v", got, err)
	}
}

// storeWithUsers opens a store holding two users with webhooks, ada (u1)
// and bob (u2).
func storeWithUsers(t *testing.T) *store.Store {
	t.Helper()
	return teststore.SQLite(t, &herald.User{ID: "u1", Name: "ada", WebhookURL: "http://127.0.0.1:1/a"},
		&herald.User{ID: "u2", Name: "bob", WebhookURL: "http://127.0.0.1:1/b"})
}

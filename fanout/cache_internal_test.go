package fanout

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/bus"
	"github.com/heraldproject/herald/cache"
	"github.com/heraldproject/herald/internal/teststore"
	"github.com/heraldproject/herald/route"
	"github.com/heraldproject/herald/store"
)

// TestFanoutCachesRecipients: the recipients the fan-out stage reads are put
// in the cache, so the sending stage finds them there.
func TestFanoutCachesRecipients(t *testing.T) {
	ctx := context.Background()
	st := storeWithUsers(t)
	c := cache.NewMemory(100, time.Minute)
	prod := &producedRecs{}
	f := &Fanout{Store: st, Cache: c, Producer: prod, Logger: slog.New(slog.DiscardHandler),
		Router: &route.Router{Enabled: []herald.Channel{herald.ChannelWebhook}}}
	v, err := json.Marshal(herald.Alert{ID: "a1", Severity: herald.SeverityError, Message: "m",
		Targets: []string{"@ada", "@bob"}, CreatedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Handle(ctx, []*kgo.Record{{Topic: bus.TopicAlerts, Value: v}}); err != nil || len(prod.recs) != 2 {
		t.Fatalf("fan-out: %d records, %v", len(prod.recs), err)
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

package webhook

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/notify"
)

// TestConnectionsBounded: sends to many hosts, one after another, keep at
// most maxConns connections open: reaching it closes the idle ones.
func TestConnectionsBounded(t *testing.T) {
	n := New(Config{}, nil)
	n.fast.maxConns = 4
	for i := range 12 {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusNoContent)
		}))
		t.Cleanup(srv.Close)
		m := &notify.Message{DeliveryID: "d", Recipient: &herald.User{Name: "a", WebhookURL: srv.URL + "/x"}}
		if _, err := n.Notify(t.Context(), m); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		if open := n.fast.open(); open > 4 {
			t.Fatalf("after %d hosts, %d connections open, want at most 4", i+1, open)
		}
	}
}

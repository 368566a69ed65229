package server_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldproject/herald/notify/webhook/webhooktest"
)

// TestFailuresAreRecorded checks the simple bounded retry: transient failures
// are retried and recorded, permanent ones end the delivery at once with the
// reason, and a provider's Retry-After is honoured.
func TestFailuresAreRecorded(t *testing.T) {
	hook := webhooktest.NewReceiver()
	defer hook.Close()
	h := start(t, testConfig(t, t.TempDir(), "HERALD_RETRY_MAX_ATTEMPTS=3", "HERALD_RETRY_DELAYS=100ms"))
	h.createUser(map[string]any{"name": "alice", "webhookUrl": hook.URL()})
	send := func() string {
		var acc idOut
		h.must(http.StatusAccepted, "POST", "/v1/alerts", map[string]any{"target": []string{"@alice"},
			"severity": "error", "message": "m"}, &acc)
		return acc.ID
	}
	only := func(a *alertOut) delivery {
		if len(a.Deliveries) != 1 {
			t.Fatalf("deliveries = %+v", a.Deliveries)
		}
		return a.Deliveries[0]
	}

	t.Run("transient then success", func(t *testing.T) {
		hook.FailNext(2, http.StatusInternalServerError, "")
		d := only(h.waitAlert(send(), allFinal))
		if d.Status != "sent" || d.Attempts != 3 {
			t.Fatalf("delivery = %+v, want sent on attempt 3", d)
		}
	})
	t.Run("transient until gave up", func(t *testing.T) {
		hook.SetStatus(http.StatusServiceUnavailable, "")
		defer hook.SetStatus(http.StatusOK, "")
		d := only(h.waitAlert(send(), allFinal))
		if d.Status != "dead" || d.Attempts != 3 || !strings.Contains(d.LastError, "HTTP 503") ||
			!strings.Contains(d.LastError, "gave up after 3 attempts") {
			t.Fatalf("delivery = %+v, want dead after 3 attempts with the HTTP reason", d)
		}
	})
	for _, code := range []int{http.StatusBadRequest, http.StatusNotFound, http.StatusGone} {
		t.Run("permanent "+http.StatusText(code), func(t *testing.T) {
			hook.FailNext(1, code, "")
			d := only(h.waitAlert(send(), allFinal))
			if d.Status != "dead" || d.Attempts != 1 || !strings.Contains(d.LastError, "HTTP "+strconv.Itoa(code)) {
				t.Fatalf("delivery = %+v, want dead after 1 attempt with HTTP %d as the reason", d, code)
			}
		})
	}
	t.Run("retry-after honoured", func(t *testing.T) {
		before := len(hook.Received())
		hook.FailNext(1, http.StatusTooManyRequests, "1")
		id := send()
		d := only(h.waitAlert(id, allFinal))
		if d.Status != "sent" || d.Attempts != 2 {
			t.Fatalf("delivery = %+v, want sent on attempt 2", d)
		}
		reqs := hook.Received()[before:]
		if len(reqs) != 2 {
			t.Fatalf("requests = %d, want 2", len(reqs))
		}
		if gap := reqs[1].Received.Sub(reqs[0].Received); gap < time.Second {
			t.Fatalf("second request %v after the 429, want at least the 1s Retry-After", gap)
		}
	})
}

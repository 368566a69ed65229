package webhooktest_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldproject/herald/notify/webhook/webhooktest"
)

func post(t *testing.T, url, key string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url,
		strings.NewReader(`{"deliveryId":"`+key+`","attempt":1}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Idempotency-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestReceiverCounts(t *testing.T) {
	r := webhooktest.NewReceiver()
	defer r.Close()

	r.FailNext(2, http.StatusServiceUnavailable, "1")
	steps := []struct {
		key  string
		want int
	}{
		{"a", 503}, {"a", 503}, {"a", 200}, {"b", 200}, {"a", 200},
	}
	for _, s := range steps {
		if got := post(t, r.URL(), s.key); got != s.want {
			t.Fatalf("post %s = %d, want %d", s.key, got, s.want)
		}
	}
	if got := len(r.Received()); got != 5 {
		t.Errorf("Received = %d, want 5", got)
	}
	if r.Count("a") != 2 || r.Count("b") != 1 || r.Unique() != 2 || r.Duplicates() != 1 {
		t.Errorf("a=%d b=%d unique=%d dups=%d, want 2 1 2 1", r.Count("a"), r.Count("b"), r.Unique(), r.Duplicates())
	}
	if keys := r.Keys(); len(keys) != 2 || keys[0] != "a" || keys[1] != "b" {
		t.Errorf("Keys = %v", keys)
	}
	if p := r.Received()[2].Payload; p.DeliveryID != "a" || p.Attempt != 1 {
		t.Errorf("payload = %+v", p)
	}

	r.SetStatus(http.StatusTooManyRequests, "7")
	resp, err := http.Post(r.BaseURL()+"/other", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "7" {
		t.Errorf("got %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	r.SetStatus(http.StatusOK, "")
	if got := post(t, r.URL(), "c"); got != 200 {
		t.Errorf("after SetStatus(200) got %d", got)
	}
}

func TestReceiverRejectsBadJSON(t *testing.T) {
	r := webhooktest.NewReceiver()
	defer r.Close()
	resp, err := http.Post(r.URL(), "application/json", strings.NewReader("not json"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 || r.Unique() != 0 {
		t.Errorf("status %d unique %d, want 400 0", resp.StatusCode, r.Unique())
	}
}

func TestReceiverWaitFor(t *testing.T) {
	r := webhooktest.NewReceiver()
	defer r.Close()

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if err := r.WaitFor(ctx, 1); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "0 of 1") {
		t.Errorf("WaitFor on an idle receiver = %v", err)
	}

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- r.WaitFor(ctx, 2)
	}()
	post(t, r.URL(), "x")
	post(t, r.URL(), "x") // a duplicate does not count
	post(t, r.URL(), "y")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestReceiverCloseAbandonsDelayed(t *testing.T) {
	r := webhooktest.NewReceiver()
	r.SetDelay(time.Hour)
	errc := make(chan error, 1)
	go func() {
		resp, err := http.Post(r.URL(), "application/json", strings.NewReader("{}"))
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	closed := make(chan struct{})
	go func() { r.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close blocked on a delayed request")
	}
	<-errc
}

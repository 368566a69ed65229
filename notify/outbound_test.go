package notify_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/heraldproject/herald/notify"
)

func TestOutboundPolicy(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer srv.Close()
	get := func(o notify.Outbound, url string) error {
		req, _ := http.NewRequestWithContext(context.Background(), "GET", url, nil)
		resp, err := o.Client(5 * time.Second).Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := get(notify.Outbound{}, srv.URL); err != nil {
		t.Fatalf("policy off: %v", err)
	}
	deny := notify.Outbound{DenyPrivate: true}
	err := get(deny, srv.URL)
	if !errors.Is(err, notify.ErrForbiddenAddress) {
		t.Fatalf("loopback with DenyPrivate: %v", err)
	}
	retry, cerr := notify.ClassifyTransportError(err)
	if retry || !strings.Contains(cerr.Error(), "127.0.0.1") {
		t.Fatalf("classified as retry=%v %q; want permanent naming the address", retry, cerr)
	}
	// A name resolving to loopback is refused too (checked after DNS).
	if err := get(deny, strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)); !errors.Is(err, notify.ErrForbiddenAddress) {
		t.Fatalf("localhost with DenyPrivate: %v", err)
	}
	allow := notify.Outbound{DenyPrivate: true, Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	if err := get(allow, srv.URL); err != nil {
		t.Fatalf("allow-listed loopback: %v", err)
	}
	for _, ip := range []string{"10.1.2.3", "192.168.0.1", "172.16.5.5", "169.254.169.254", "::1", "fe80::1", "0.0.0.0"} {
		if deny.Check(netip.MustParseAddr(ip)) == nil {
			t.Errorf("%s allowed", ip)
		}
	}
	if err := deny.Check(netip.MustParseAddr("93.184.216.34")); err != nil {
		t.Errorf("public address refused: %v", err)
	}
}

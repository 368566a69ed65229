package webhook_test

import (
	"testing"
	"time"

	"github.com/heraldproject/herald/notify/webhook"
)

func FuzzVerify(f *testing.F) {
	f.Add("t=1800000000,v1=00", []byte(`{}`))
	f.Add("v1=,t=", []byte(nil))
	f.Add("t=-9999999999999,v1=zz", []byte("x"))
	now := time.Unix(1_800_000_000, 0)
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		_ = webhook.Verify("secret", header, body, now, time.Minute) // must not panic
		if err := webhook.Verify("secret", webhook.Sign("secret", now, body), body, now, time.Minute); err != nil {
			t.Fatalf("own signature rejected: %v", err)
		}
	})
}

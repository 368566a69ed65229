package notify

import (
	"testing"
	"time"
)

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"2", "0", "-1", "120", "Wed, 21 Oct 2015 07:28:00 GMT", "soon", "99999999999999999999", ""} {
		f.Add(s)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := ParseRetryAfter(s, now)
		if ok && d < 0 {
			t.Fatalf("%q gave a negative wait %v", s, d)
		}
	})
}

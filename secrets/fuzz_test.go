package secrets_test

import (
	"testing"

	"github.com/heraldproject/herald/secrets"
)

// FuzzOpen feeds Open what a compromised database or Redis could hold: it
// must never panic, and a value it seals must open to itself.
func FuzzOpen(f *testing.F) {
	s, err := secrets.New(keyA, keyB)
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{"", "plain", "enc:", "enc:v1:", "enc:v2:", "enc:v2:" + s.KeyID() + ":", s.Seal("xoxb-1"),
		"enc:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAA", "enc:v2:00000000:AAAA", "enc:v9:x"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, v string) {
		_, _ = s.Open(v) // must not panic
		if v == "" {
			return
		}
		if p, err := s.Open(s.Seal(v)); err != nil || p != v {
			t.Fatalf("Open(Seal(%q)) = %q, %v", v, p, err)
		}
	})
}

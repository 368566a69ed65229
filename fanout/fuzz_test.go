package fanout

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// FuzzDecodeAlert feeds arbitrary bytes to the alert record decoder, as a
// Kafka tool producing to herald.alerts could: it must reject or accept,
// never panic, and what it accepts must be a usable alert.
func FuzzDecodeAlert(f *testing.F) {
	for _, s := range []string{
		`{"target":["@alice"],"severity":"error","message":"m"}`,
		`{"id":"x","severity":"fatal","message":"m","recipients":["u1"]}`,
		`{"target":[],"severity":"info","message":"m"}`,
		`{"target":["@a"],"severity":"nope","message":"m"}`,
		`{"target":["@a"],"severity":"info","message":"  "}`,
		`[]`, `null`, "\xff\xfe", `{"labels":{"a":1}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := decodeAlert(&kgo.Record{Topic: "herald.alerts", Value: b, Timestamp: time.Unix(1, 0)})
		if err != nil {
			return
		}
		if a.ID == "" || a.Severity.Rank() < 0 || strings.TrimSpace(a.Message) == "" ||
			(len(a.Targets) == 0 && len(a.Recipients) == 0) || a.CreatedAt.IsZero() {
			t.Fatalf("accepted an unusable alert %+v from %q", a, b)
		}
	})
}

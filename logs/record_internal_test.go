package logs

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/bus"
	"github.com/heraldproject/herald/internal/testrecord"
)

// general decodes v as Decode did before decodeFast: the general decoder.
func general(t testing.TB, v []byte) (herald.LogRecord, bool) {
	t.Helper()
	var lr herald.LogRecord
	err := bus.DecodeValue(&kgo.Record{Value: v}, &lr)
	return lr, err == nil
}

// sameRecord compares two decoded records: times by instant and offset
// (their *time.Location may be different values for the same zone).
func sameRecord(a, b herald.LogRecord) bool {
	if !testrecord.SameInstant(a.Time, b.Time) {
		return false
	}
	a.Time, b.Time = time.Time{}, time.Time{}
	if len(a.Attributes) == 0 && len(b.Attributes) == 0 {
		a.Attributes, b.Attributes = nil, nil
	}
	return reflect.DeepEqual(a, b)
}

// randomRecord makes a record of the kinds the API accepts; plain keeps
// every string free of what needs an escape.
func randomRecord(r *rand.Rand, plain bool) *herald.LogRecord {
	pieces := []string{"GET /v1/alerts", "é", "日本", "🙂", "disk full", "x", " ", "-", "<tag>&", "="}
	if !plain {
		pieces = append(pieces, `"quoted"`, `back\slash`, "line\nbreak", "\t", "\u2028", "\x7f")
	}
	str := func(n int) string {
		var b strings.Builder
		for range r.IntN(n + 1) {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
		return b.String()
	}
	levels := []herald.Severity{herald.SeverityDebug, herald.SeverityInfo, herald.SeverityWarning, herald.SeverityError,
		herald.SeverityCritical}
	zones := []*time.Location{time.UTC, time.FixedZone("", 2*3600), time.FixedZone("", -(5*3600 + 30*60))}
	lr := &herald.LogRecord{
		ID:      "0198a7c2-5a1e-7d3c-9b1f-" + str(3),
		Time:    time.Unix(r.Int64N(4e9), r.Int64N(1e9)).In(zones[r.IntN(len(zones))]),
		Service: "svc" + str(2),
		Level:   levels[r.IntN(len(levels))],
		Message: str(8),
	}
	if r.IntN(4) == 0 {
		lr.ID = ""
	}
	if n := r.IntN(5); n > 0 {
		lr.Attributes = map[string]string{}
		for range n {
			lr.Attributes["k"+str(2)] = str(3)
		}
	}
	if r.IntN(2) == 0 {
		lr.TraceID, lr.SpanID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	}
	return lr
}

// TestDecodeFastAgrees: what AppendRecord writes decodes the same through
// decodeFast and the general decoder; decodeFast takes every record whose
// strings need no escape (so the fast path is the one ingest uses) and
// declines the others, which the general decoder then reads. The encoding
// itself is what encoding/json writes, but for its HTML escapes (and those
// of U+2028 and U+2029, for JavaScript).
func TestDecodeFastAgrees(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 4000 {
		plain := i%2 == 0
		lr := randomRecord(r, plain)
		v, err := AppendRecord(nil, lr)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := general(t, v); !ok {
			t.Fatalf("general decoder refused %s", v)
		}
		if fast := testrecord.FastAgrees(t, v, decodeFast, sameRecord); plain && !fast {
			t.Fatalf("fast path declined a record with nothing to escape: %s", v)
		}
		// The same bytes as encoding/json, HTML escapes aside.
		std, err := json.Marshal(lr)
		if err != nil {
			t.Fatal(err)
		}
		if testrecord.Unescape(std) != string(v) {
			t.Fatalf("AppendRecord wrote\n%s\nencoding/json\n%s", v, std)
		}
	}
}

// TestDecodeFastDeclines: input the fast path must leave to the general
// decoder.
func TestDecodeFastDeclines(t *testing.T) {
	for _, v := range []string{
		``, `{}`, `null`,
		`{"time":"2026-01-01T00:00:00Z","service":"a","level":"info","message":"m\n"}`,     // an escape
		`{"time":"2026-01-01T00:00:00Z", "service":"a","level":"info","message":"m"}`,      // a space
		`{"service":"a","time":"2026-01-01T00:00:00Z","level":"info","message":"m"}`,       // another order
		`{"time":"2026-01-01T00:00:00Z","service":"a","level":"info","message":"m","x":1}`, // another field
		`{"time":"2026-01-01T00:00:00Z","service":"a","level":"info","message":"\xff"}`,    // invalid UTF-8
		`{"time":"2026-01-01T00:00:00Z","service":"a","level":"info","message":"m"}` + " ", // trailing space
		`{"time":"2026-01-01T00:00:00Z","service":"a","level":"info","message":"m","attributes":null}`,
		`{"time":"yesterday","service":"a","level":"info","message":"m"}`,
	} {
		var lr herald.LogRecord
		if decodeFast([]byte(v), &lr) {
			t.Errorf("fast path took %q", v)
		}
	}
}

// FuzzDecodeFast: whatever the fast path takes, the general decoder reads
// the same way.
func FuzzDecodeFast(f *testing.F) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 20 {
		v, _ := AppendRecord(nil, randomRecord(r, r.IntN(2) == 0))
		f.Add(v)
	}
	f.Add([]byte(`{"time":"2026-01-01T00:00:00Z","service":"a","level":"info","message":"m","attributes":{"k":"1","k":"2"}}`))
	f.Add([]byte(`{"time":"2026-01-01T00:00:00.5+02:00","service":"a","level":"WARN","message":""}`))
	f.Fuzz(func(t *testing.T, v []byte) { testrecord.FastAgrees(t, v, decodeFast, sameRecord) })
}

// BenchmarkDecode: a typical log record through the general decoder and
// through Decode (the fast path).
func BenchmarkDecode(b *testing.B) {
	v, err := AppendRecord(nil, &herald.LogRecord{ID: "0198a7c2-5a1e-7d3c-9b1f-3c2d4e5f6a7b", Time: time.Now().UTC(),
		Service: "checkout", Level: herald.SeverityInfo, Message: "GET /v1/orders/1234 200 12.3ms user=u-998 region=eu-west-1",
		Attributes: map[string]string{"http.method": "GET", "http.status": "200", "host": "web-3"}})
	if err != nil {
		b.Fatal(err)
	}
	rec := &kgo.Record{Value: v, Key: []byte("checkout")}
	b.Run("general", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := general(b, v); !ok {
				b.Fatal("refused")
			}
		}
	})
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Decode(rec); err != nil {
				b.Fatal(err)
			}
		}
	})
}

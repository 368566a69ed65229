package fanout

import (
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

// apiForm is an alert record's value as the API writes it (api's
// TestAlertRecordForm holds appendAlertRecord to testrecord.Form).
func apiForm(t testing.TB, a *herald.Alert) []byte { return testrecord.Form(t, a) }

// sameAlert compares decoded alerts, times by instant and offset.
func sameAlert(a, b herald.Alert) bool {
	if !testrecord.SameInstant(a.CreatedAt, b.CreatedAt) {
		return false
	}
	a.CreatedAt, b.CreatedAt = time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b)
}

func randomAlert(r *rand.Rand, plain bool) *herald.Alert {
	pieces := []string{"disk full", "CPU > 90%", "<b>&", "é", "日本", "🙂", " ", "x", "\u2028", "@ops", "@@team"}
	if !plain {
		pieces = append(pieces, `"q"`, `a\b`, "\n", "\t")
	}
	str := func(n int) string {
		var b strings.Builder
		for range r.IntN(n + 1) {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
		return b.String()
	}
	strs := func(n int) []string {
		switch r.IntN(4) {
		case 0:
			return nil
		case 1:
			return []string{}
		}
		var ss []string
		for range 1 + r.IntN(n) {
			ss = append(ss, str(2))
		}
		return ss
	}
	a := &herald.Alert{ID: "a-" + str(1), Severity: herald.SeverityError, Title: str(2), Message: str(6),
		Source: str(1), Targets: strs(3), Recipients: strs(4), IdempotencyKey: str(1),
		CreatedAt: time.Unix(r.Int64N(4e9), r.Int64N(1e9)).UTC()}
	if r.IntN(3) == 0 {
		a.CreatedAt = a.CreatedAt.In(time.FixedZone("", -7200))
	}
	if r.IntN(2) == 0 {
		a.Channels = []herald.Channel{herald.ChannelWebhook, herald.ChannelEmail}
	}
	if n := r.IntN(4); n > 0 {
		a.Labels = map[string]string{}
		for range n {
			a.Labels["l"+str(1)] = str(2)
		}
	}
	return a
}

// TestDecodeAlertFastAgrees: an alert record in the API's form decodes the
// same through the fast path and the general decoder, and the fast path
// takes every one whose strings need no escape.
func TestDecodeAlertFastAgrees(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for i := range 4000 {
		plain := i%2 == 0
		v := apiForm(t, randomAlert(r, plain))
		var want herald.Alert
		if err := bus.DecodeValue(&kgo.Record{Value: v}, &want); err != nil {
			t.Fatalf("general decoder: %v: %s", err, v)
		}
		if fast := testrecord.FastAgrees(t, v, decodeAlertFast, sameAlert); plain && !fast {
			t.Fatalf("fast path declined a record with nothing to escape: %s", v)
		}
	}
}

// TestDecodeAlertFastDeclines: input the fast path must leave to the
// general decoder.
func TestDecodeAlertFastDeclines(t *testing.T) {
	const ok = `{"id":"a","severity":"error","message":"m","target":["@ops"],"createdAt":"2026-01-01T00:00:00Z"}`
	var a herald.Alert
	if !decodeAlertFast([]byte(ok), &a) || a.Targets[0] != "@ops" || a.Message != "m" {
		t.Fatalf("fast path on a plain record: %+v", a)
	}
	for _, v := range []string{
		``, `{}`, strings.Replace(ok, `"m"`, `"m\n"`, 1), strings.Replace(ok, `["@ops"]`, `["@ops",]`, 1),
		strings.Replace(ok, `["@ops"]`, `[ "@ops"]`, 1), strings.Replace(ok, `["@ops"]`, `[1]`, 1),
		strings.Replace(ok, `{"id":"a",`, `{`, 1), strings.Replace(ok, `"target"`, `"targets"`, 1),
		strings.Replace(ok, `"target":["@ops"]`, `"target":["@ops"],"channels":null,"extra":1`, 1), ok + ` `,
	} {
		var a herald.Alert
		if decodeAlertFast([]byte(v), &a) {
			t.Errorf("fast path took %q", v)
		}
	}
}

// FuzzDecodeAlertFast: whatever the fast path takes, the general decoder
// reads the same way.
func FuzzDecodeAlertFast(f *testing.F) {
	r := rand.New(rand.NewPCG(11, 12))
	for range 20 {
		f.Add(apiForm(f, randomAlert(r, r.IntN(2) == 0)))
	}
	f.Fuzz(func(t *testing.T, v []byte) { testrecord.FastAgrees(t, v, decodeAlertFast, sameAlert) })
}

// BenchmarkDecodeAlert: a typical alert record through the general decoder
// and through decodeAlert (the fast path, and the checks after it).
func BenchmarkDecodeAlert(b *testing.B) {
	v := apiForm(b, &herald.Alert{ID: "0198a7c2-5a1e-7d3c-9b1f-000000000000", Severity: herald.SeverityError,
		Title: "DiskFull", Message: "disk /var is 95% full on db1", Source: "prometheus",
		Labels:  map[string]string{"alertname": "DiskFull", "instance": "db1:9100", "severity": "page"},
		Targets: []string{"@ops"}, Recipients: []string{"0198a7c2-0000-7000-8000-000000000000"}, CreatedAt: time.Now().UTC()})
	rec := &kgo.Record{Value: v}
	b.Run("general", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var a herald.Alert
			if err := bus.DecodeValue(rec, &a); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeAlert(rec); err != nil {
				b.Fatal(err)
			}
		}
	})
}

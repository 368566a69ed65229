package deliver

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

// fanoutForm is a delivery record's value as the fan-out stage writes it
// (fanout's TestTaskRecordForm holds taskRecord to testrecord.Form).
func fanoutForm(t testing.TB, task herald.DeliveryTask) []byte { return testrecord.Form(t, task) }

// sameTask compares decoded tasks, times by instant and offset.
func sameTask(a, b herald.DeliveryTask) bool {
	if !testrecord.SameInstant(a.CreatedAt, b.CreatedAt) {
		return false
	}
	a.CreatedAt, b.CreatedAt = time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b)
}

func randomTask(r *rand.Rand, plain bool) herald.DeliveryTask {
	pieces := []string{"disk full", "CPU > 90%", "<b>&", "é", "日本", "🙂", " ", "x", "\u2028"}
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
	t := herald.DeliveryTask{DeliveryID: "d-" + str(1), AlertID: "a-" + str(1), RecipientID: "u-" + str(1),
		Recipient: str(2), Channel: herald.ChannelWebhook, Severity: herald.SeverityCritical, Title: str(2),
		Message: str(6), Source: str(1), CreatedAt: time.Unix(r.Int64N(4e9), r.Int64N(1e9)).UTC(), Attempt: r.IntN(12)}
	if r.IntN(3) == 0 {
		t.CreatedAt = t.CreatedAt.In(time.FixedZone("", 3600))
	}
	if n := r.IntN(4); n > 0 {
		t.Labels = map[string]string{}
		for range n {
			t.Labels["l"+str(1)] = str(2)
		}
	}
	return t
}

// TestDecodeTaskFastAgrees: a record in the fan-out stage's form decodes the
// same through the fast path and the general decoder, and the fast path
// takes every one whose strings need no escape.
func TestDecodeTaskFastAgrees(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for i := range 4000 {
		plain := i%2 == 0
		task := randomTask(r, plain)
		v := fanoutForm(t, task)
		var want herald.DeliveryTask
		if err := bus.DecodeValue(&kgo.Record{Value: v}, &want); err != nil {
			t.Fatalf("general decoder: %v: %s", err, v)
		}
		if fast := testrecord.FastAgrees(t, v, decodeTaskFast, sameTask); plain && !fast {
			t.Fatalf("fast path declined a record with nothing to escape: %s", v)
		}
		var viaDecode herald.DeliveryTask
		if err := bus.DecodeValueFast(&kgo.Record{Value: v}, &viaDecode, decodeTaskFast); err != nil || !sameTask(viaDecode, want) {
			t.Fatalf("DecodeValueFast = %+v, %v; want %+v", viaDecode, err, want)
		}
	}
}

// TestDecodeTaskFastDeclines: input the fast path must leave to the general
// decoder.
func TestDecodeTaskFastDeclines(t *testing.T) {
	const head = `{"deliveryId":"d","alertId":"a","recipientId":"u","recipient":"r","channel":"webhook","severity":"error","message":"m","createdAt":"2026-01-01T00:00:00Z","attempt":`
	for _, v := range []string{
		``, `{}`, head + `1`, head + `01}`, head + `-1}`, head + `1.0}`, head + `1e2}`, head + `1234567890}`,
		head + `1} `, head + `"1"}`,
		strings.Replace(head, `"m"`, `"m\n"`, 1) + `1}`,
		strings.Replace(head, `"r"`, `"\u00e9"`, 1) + `1}`,
		strings.Replace(head, `"alertId"`, `"AlertID"`, 1) + `1}`,
		strings.Replace(head, `"message":"m"`, `"message":"m","labels":null`, 1) + `1}`,
	} {
		var task herald.DeliveryTask
		if decodeTaskFast([]byte(v), &task) {
			t.Errorf("fast path took %q", v)
		}
	}
	var task herald.DeliveryTask
	if !decodeTaskFast([]byte(head+`7}`), &task) || task.Attempt != 7 || task.Message != "m" {
		t.Fatalf("fast path on a plain record: %+v", task)
	}
}

// FuzzDecodeTaskFast: whatever the fast path takes, the general decoder
// reads the same way.
func FuzzDecodeTaskFast(f *testing.F) {
	r := rand.New(rand.NewPCG(7, 8))
	for range 20 {
		f.Add(fanoutForm(f, randomTask(r, r.IntN(2) == 0)))
	}
	f.Fuzz(func(t *testing.T, v []byte) { testrecord.FastAgrees(t, v, decodeTaskFast, sameTask) })
}

// BenchmarkDecodeTask: a typical delivery record through the general
// decoder and through bus.DecodeValueFast with decodeTaskFast.
func BenchmarkDecodeTask(b *testing.B) {
	v := fanoutForm(b, herald.DeliveryTask{DeliveryID: "0198a7c2-5a1e-7d3c-9b1f-3c2d4e5f6a7b",
		AlertID: "0198a7c2-5a1e-7d3c-9b1f-000000000000", RecipientID: "0198a7c2-0000-7000-8000-000000000000",
		Recipient: "ann", Channel: herald.ChannelWebhook, Severity: herald.SeverityError, Title: "DiskFull",
		Message: "disk /var is 95% full on db1", Source: "prometheus",
		Labels:    map[string]string{"alertname": "DiskFull", "instance": "db1:9100", "severity": "page"},
		CreatedAt: time.Now().UTC(), Attempt: 0})
	rec := &kgo.Record{Value: v}
	b.Run("general", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var t herald.DeliveryTask
			if err := bus.DecodeValue(rec, &t); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var t herald.DeliveryTask
			if err := bus.DecodeValueFast(rec, &t, decodeTaskFast); err != nil {
				b.Fatal(err)
			}
		}
	})
}

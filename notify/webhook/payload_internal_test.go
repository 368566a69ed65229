package webhook

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzPayloadJSON: the hand-written encoder writes what encoding/json
// writes, for any strings (control characters, HTML, U+2028, invalid
// UTF-8), any labels (none, nil, many) and any attempt number.
func FuzzPayloadJSON(f *testing.F) {
	f.Add("d1", "a<b>&c", "ann", "\u2028\u2029", "critical", "disk \"full\"\n\t\b\f\r\\", "k", "v\x00\x1f\x7f", -3, true)
	f.Add("\xff\xfe", "é中文🙂", "", "", "", "", "", "", 0, false)
	f.Add("x", "y", "z", "\xed\xa0\x80", "s", "\u00e9\u0301", "ü", "\xc3", 1<<30, true)
	f.Fuzz(func(t *testing.T, id, alert, name, title, severity, message, k, v string, attempt int, labels bool) {
		p := Payload{DeliveryID: id, AlertID: alert, Recipient: name, RecipientID: id + name, Severity: severity,
			Title: title, Message: message, Source: k + v, CreatedAt: "2026-12-07T00:00:00.123Z", Attempt: attempt}
		if labels {
			p.Labels = map[string]string{k: v, v: k, "alertname": title, "": message}
		}
		want, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.appendJSON(nil); string(got) != string(want) {
			t.Fatalf("appendJSON:\n got %s\nwant %s", got, want)
		}
	})
}

func BenchmarkPayloadJSON(b *testing.B) {
	p := Payload{DeliveryID: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", AlertID: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c",
		Recipient: "ann", RecipientID: "u1", Severity: "critical", Title: "disk full on db1",
		Message: "disk /var is 97% full", Source: "prometheus", CreatedAt: "2026-12-07T00:00:00.123456789Z", Attempt: 1,
		Labels: map[string]string{"alertname": "DiskFull", "host": "db1", "severity": "critical", "bench_id": "42"}}
	b.Run("encoding/json", func(b *testing.B) {
		for range b.N {
			if _, err := json.Marshal(p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("appendJSON", func(b *testing.B) {
		for range b.N {
			_ = p.appendJSON(make([]byte, 0, 512))
		}
	})
}

// TestPayloadFields: appendJSON writes Payload's eleven fields; a field
// added to it must be added there (and to FuzzPayloadJSON, which then
// fails until it is).
func TestPayloadFields(t *testing.T) {
	if n := reflect.TypeFor[Payload]().NumField(); n != 11 {
		t.Fatalf("Payload has %d fields, appendJSON writes 11: add the new one to it and to FuzzPayloadJSON", n)
	}
}

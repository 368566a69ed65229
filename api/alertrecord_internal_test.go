package api

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/bus"
	"github.com/heraldproject/herald/internal/testrecord"
)

// FuzzAlertRecord: an alert's record value, written by hand, is valid JSON
// that decodes — with encoding/json and with the fan-out stage's
// bus.DecodeValue — to what json.Marshal of the alert decodes to, for any
// strings (HTML, control characters, invalid UTF-8), with and without each
// optional field, nil and empty lists; and it is refused for the times
// json.Marshal refuses.
func FuzzAlertRecord(f *testing.F) {
	f.Add("a1", "critical", "disk <full> & \"hot\"\n", "m", "prometheus", "host", "db1\u2028", "@ann", "u1", "key", int64(1_800_000_000_123_456_789), uint8(0xff))
	f.Add("\xff", "", "", "\x00\x1f", "", "", "", "", "", "", int64(0), uint8(0))
	f.Add("é", "info", "中文", "🙂", "s", "k", "", "@@ops", "", "", int64(-9_000_000_000_000_000_000), uint8(0xd5))
	f.Fuzz(func(t *testing.T, id, severity, title, message, source, k, v, target, recipient, key string, nanos int64, opts uint8) {
		a := &herald.Alert{ID: id, Severity: herald.Severity(severity), Title: title, Message: message, Source: source,
			IdempotencyKey: key, CreatedAt: time.Unix(0, nanos).UTC().AddDate(int(opts&0x80)*100, 0, 0)}
		if opts&1 != 0 {
			a.Labels = map[string]string{k: v, "alertname": title}
		}
		switch {
		case opts&2 != 0:
			a.Targets = []string{target, "@" + recipient}
		case opts&4 != 0:
			a.Targets = []string{}
		}
		if opts&8 != 0 {
			a.Channels = []herald.Channel{herald.ChannelWebhook, herald.Channel(v)}
		} else if opts&16 != 0 {
			a.Channels = []herald.Channel{}
		}
		if opts&32 != 0 {
			a.Recipients = []string{recipient, id}
		}
		whole, werr := json.Marshal(a)
		got, err := appendAlertRecord(nil, a)
		if (werr != nil) != (err != nil) {
			t.Fatalf("json.Marshal: %v, appendAlertRecord: %v", werr, err)
		}
		if err != nil {
			return
		}
		if !json.Valid(got) {
			t.Fatalf("invalid JSON: %s", got)
		}
		var want, dec, decBus herald.Alert
		if err := json.Unmarshal(whole, &want); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(got, &dec); err != nil {
			t.Fatalf("%v: %s", err, got)
		}
		if err := bus.DecodeValue(&kgo.Record{Value: got}, &decBus); err != nil {
			t.Fatalf("bus.DecodeValue: %v: %s", err, got)
		}
		if !reflect.DeepEqual(dec, want) || !reflect.DeepEqual(decBus, want) {
			t.Fatalf("record decodes to\n%+v\n%+v (bus.DecodeValue)\nwant %+v\nrecord %s\nwhole  %s", dec, decBus, want, got, whole)
		}
	})
}

// TestAlertRecordFields: appendAlertRecord writes herald.Alert's eleven
// fields; a field added to it must be added there (and to FuzzAlertRecord),
// or records would lose it.
func TestAlertRecordFields(t *testing.T) {
	if n := reflect.TypeFor[herald.Alert]().NumField(); n != 11 {
		t.Fatalf("herald.Alert has %d fields, appendAlertRecord writes 11: add the new one to it and to FuzzAlertRecord", n)
	}
}

// TestAlertRecordForm: an alert record is encoding/json's bytes for the
// alert but for the HTML escapes and those of U+2028 and U+2029: the form the
// fan-out stage's fast decoder reads (fanout's decodeAlertFast, whose tests
// build their records this way).
func TestAlertRecordForm(t *testing.T) {
	for _, a := range []*herald.Alert{
		{ID: "a1", Severity: herald.SeverityError, Message: "CPU > 90% on <db1> & db2", Targets: []string{"@ops"},
			CreatedAt: time.Unix(1_800_000_000, 5).UTC()},
		{ID: "a2", Severity: herald.SeverityInfo, Title: "t\u2028", Message: "é 日本 🙂", Source: "prometheus",
			Labels: map[string]string{"b": "2", "a": "1"}, Targets: []string{}, Channels: []herald.Channel{herald.ChannelWebhook},
			Recipients: []string{"u1", "u2"}, IdempotencyKey: "k", CreatedAt: time.Unix(0, 0).In(time.FixedZone("", -3600))},
		{ID: "a3", Severity: herald.SeverityCritical, Message: "m", CreatedAt: time.Unix(1, 0).UTC()}, // no targets: null
	} {
		got, err := appendAlertRecord(nil, a)
		if err != nil {
			t.Fatal(err)
		}
		whole, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		if want := testrecord.Unescape(whole); string(got) != want {
			t.Errorf("appendAlertRecord wrote\n%s\nwant\n%s", got, want)
		}
	}
}

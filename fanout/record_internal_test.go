package fanout

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

// FuzzTaskRecord: a delivery record, written from its alert's fields encoded
// once and its own around them, is valid JSON that decodes — with
// encoding/json and with the sending stage's bus.DecodeValue — to the
// herald.DeliveryTask that json.Marshal of the whole task decodes to, for
// any strings (HTML, control characters, invalid UTF-8), with and without
// the optional fields.
func FuzzTaskRecord(f *testing.F) {
	f.Add("d1", "a1", "u1", "ann", "disk <full> & \"hot\"\n", "", "prometheus", "host", "db1\u2028", 0, int64(1_800_000_000_123_456_789))
	f.Add("\xff", "é", "中文", "🙂", "", "\x00\x1f", "", "", "", 3, int64(0))
	f.Fuzz(func(t *testing.T, did, aid, uid, name, title, message, source, k, v string, attempts int, nanos int64) {
		a := &herald.Alert{ID: aid, Severity: herald.SeverityCritical, Title: title, Message: message, Source: source,
			CreatedAt: time.Unix(0, nanos).UTC()}
		if k != "" {
			a.Labels = map[string]string{k: v, "alertname": title}
		}
		d := &herald.Delivery{ID: did, AlertID: aid, RecipientID: uid, Recipient: name, Channel: herald.ChannelWebhook, Attempts: attempts}
		whole, err := json.Marshal(herald.DeliveryTask{DeliveryID: d.ID, AlertID: a.ID, RecipientID: d.RecipientID,
			Recipient: d.Recipient, Channel: d.Channel, Severity: a.Severity, Title: a.Title, Message: a.Message,
			Source: a.Source, Labels: a.Labels, CreatedAt: a.CreatedAt, Attempt: d.Attempts})
		if err != nil {
			t.Skip(err) // a time json.Marshal refuses (year outside 0-9999): alertFields refuses it too
		}
		fields, err := alertFields(a)
		if err != nil {
			t.Fatalf("alertFields: %v (json.Marshal of the task succeeded)", err)
		}
		rec := taskRecord(a, d, &kgo.Record{}, []byte("s"), fields)
		if !json.Valid(rec.Value) {
			t.Fatalf("invalid JSON: %s", rec.Value)
		}
		var want, got, gotBus herald.DeliveryTask
		if err := json.Unmarshal(whole, &want); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(rec.Value, &got); err != nil {
			t.Fatalf("%v: %s", err, rec.Value)
		}
		if err := bus.DecodeValue(rec, &gotBus); err != nil {
			t.Fatalf("bus.DecodeValue: %v: %s", err, rec.Value)
		}
		if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(gotBus, want) {
			t.Fatalf("record decodes to\n%+v\n%+v (bus.DecodeValue)\nwant %+v\nrecord %s\nwhole  %s", got, gotBus, want, rec.Value, whole)
		}
	})
}

// TestTaskRecordFields: taskRecord and alertFields write
// herald.DeliveryTask's twelve fields; a field added to it must be added
// there (and to FuzzTaskRecord), or records would lose it.
func TestTaskRecordFields(t *testing.T) {
	if n := reflect.TypeFor[herald.DeliveryTask]().NumField(); n != 12 {
		t.Fatalf("herald.DeliveryTask has %d fields, taskRecord writes 12: add the new one to it and to FuzzTaskRecord", n)
	}
}

// TestTaskRecordForm: a delivery record is encoding/json's bytes for the
// task but for the HTML escapes and those of U+2028 and U+2029, the form the
// sending stage's fast decoder reads (deliver.decodeTaskFast, whose tests
// build their records this way).
func TestTaskRecordForm(t *testing.T) {
	for _, a := range []*herald.Alert{
		{ID: "a1", Severity: herald.SeverityError, Message: "CPU > 90% on <db1> & db2", CreatedAt: time.Unix(1_800_000_000, 5).UTC()},
		{ID: "a2", Severity: herald.SeverityInfo, Title: "t\u2028", Message: "é 日本 🙂", Source: "prometheus",
			Labels: map[string]string{"b": "2", "a": "1", "alertname": "Disk"}, CreatedAt: time.Unix(0, 0).In(time.FixedZone("", -3600))},
	} {
		d := &herald.Delivery{ID: "d1", AlertID: a.ID, RecipientID: "u1", Recipient: "ann", Channel: herald.ChannelWebhook, Attempts: 2}
		fields, err := alertFields(a)
		if err != nil {
			t.Fatal(err)
		}
		got := taskRecord(a, d, &kgo.Record{}, []byte("s"), fields).Value
		whole, err := json.Marshal(herald.DeliveryTask{DeliveryID: d.ID, AlertID: a.ID, RecipientID: d.RecipientID,
			Recipient: d.Recipient, Channel: d.Channel, Severity: a.Severity, Title: a.Title, Message: a.Message,
			Source: a.Source, Labels: a.Labels, CreatedAt: a.CreatedAt, Attempt: d.Attempts})
		if err != nil {
			t.Fatal(err)
		}
		if want := testrecord.Unescape(whole); string(got) != want {
			t.Errorf("taskRecord wrote\n%s\nwant\n%s", got, want)
		}
	}
}

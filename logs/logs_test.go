package logs_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/logs"
)

// TestDecode: records from Herald's API keep their id; records produced
// straight to the topic get a stable id from where they are, the key as
// service and the record time; invalid ones are errors (dead-lettered).
func TestDecode(t *testing.T) {
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	rec := func(v string) *kgo.Record {
		return &kgo.Record{Topic: "herald.logs", Partition: 2, Offset: 41, Key: []byte("kcat"), Value: []byte(v), Timestamp: at}
	}
	lr, err := logs.Decode(rec(`{"id":"01a2","service":"api","level":"error","message":"m","time":"2026-01-01T00:00:00Z"}`))
	if err != nil || lr.ID != "01a2" || lr.Service != "api" || lr.Level != herald.SeverityError || lr.Time.Year() != 2026 {
		t.Fatalf("API record = %+v, %v", lr, err)
	}
	a, err := logs.Decode(rec(`{"message":"from kcat","level":"WARN"}`))
	if err != nil || a.Service != "kcat" || !a.Time.Equal(at) || a.Level != herald.SeverityWarning || a.ID == "" {
		t.Fatalf("kcat record = %+v, %v", a, err)
	}
	b, _ := logs.Decode(rec(`{"message":"from kcat"}`))
	if b.ID != a.ID || b.Level != herald.SeverityInfo {
		t.Fatalf("same place, different id: %q %q (level %q)", a.ID, b.ID, b.Level)
	}
	for _, bad := range []string{`nope`, `{"message":"m","level":"loud"}`, `{"message":"m","traceId":"zz"}`, `[]`} {
		if _, err := logs.Decode(rec(bad)); err == nil {
			t.Errorf("Decode(%s) accepted", bad)
		}
	}
}

package event_test

import (
	"strings"
	"testing"

	"github.com/heraldproject/herald/event"
)

// TestDataBase64Refused: binary CloudEvents data is refused, not read as an
// event without data.
func TestDataBase64Refused(t *testing.T) {
	for ct, body := range map[string]string{
		event.TypeCloudEvent: `{"specversion":"1.0","id":"1","source":"/s","type":"t","data_base64":"aGk="}`,
		event.TypeJSON:       `{"id":"1","type":"t","data_base64":"aGk="}`,
	} {
		if _, err := event.Parse(ct, []byte(body), 10); err == nil || !strings.Contains(err.Error(), "data_base64") {
			t.Errorf("%s: %v, want a data_base64 error", ct, err)
		}
	}
}

// TestS3IDWithoutSequencer: records without a sequencer that differ only in
// their kind of event are different events.
func TestS3IDWithoutSequencer(t *testing.T) {
	rec := func(name string) string {
		return `{"eventVersion":"2.1","eventSource":"aws:s3","eventTime":"2026-03-01T10:00:00.000Z","eventName":"` + name +
			`","s3":{"bucket":{"name":"b"},"object":{"key":"k","size":1}}}`
	}
	n, err := event.ParseS3([]byte(`{"Records":[`+rec("ObjectCreated:Put")+`,`+rec("ObjectRemoved:Delete")+`]}`), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(n.Events) != 2 || n.Events[0].ID == n.Events[1].ID {
		t.Fatalf("events %+v", n.Events)
	}
}

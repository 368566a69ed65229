package event_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/heraldproject/herald/event"
)

var contentTypes = []string{event.TypeJSON, event.TypeCloudEvent, event.TypeCloudBatch, "", "text/plain",
	"application/json; charset=utf-8", "application/cloudevents+json; charset=UTF-8", ";;"}

// FuzzEvent parses arbitrary bodies as single events, CloudEvents and
// batches: never a panic; either events that hold to the limits, or an
// *event.Error with a location.
func FuzzEvent(f *testing.F) {
	for i, s := range []string{
		`{"id":"o-1","type":"order.created","source":"shop","data":{"total":250,"items":[1,2]}}`,
		`[{"type":"a"},{"type":"b","data":{"x":null}}]`,
		`{"specversion":"1.0","id":"1","source":"/s","type":"t","time":"2026-03-01T10:00:00Z","data":{"a":1}}`,
		`[{"specversion":"1.0","id":"1","source":"/s","type":"t"}]`,
		`{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"text/xml","data":"<a/>"}`,
		strings.Repeat("[", 100) + strings.Repeat("]", 100),
		`{"type":"t","data":` + strings.Repeat(`{"a":`, 40) + `1` + strings.Repeat("}", 40) + `}`,
		`{"type":"t","data":{"s":"\ud800"}}`, "\xff", "", `null`, `[]`, `{"type":5}`,
		`{"type":"t","time":"not a time"}`,
	} {
		f.Add(uint8(i%3), s)
	}
	f.Fuzz(func(t *testing.T, ct uint8, body string) {
		evs, err := event.Parse(contentTypes[int(ct)%len(contentTypes)], []byte(body), 10)
		if err != nil {
			var ee *event.Error
			if !errors.As(err, &ee) || ee.Location == "" || ee.Message == "" {
				t.Fatalf("error %v (%T) is not a located *event.Error", err, err)
			}
			return
		}
		if len(evs) == 0 || len(evs) > 10 {
			t.Fatalf("%d events", len(evs))
		}
		for _, ev := range evs {
			if ev.Type == "" || ev.Data == nil || len(ev.ID) > event.MaxIDBytes {
				t.Fatalf("event %+v", ev)
			}
			if err := event.CheckData(ev.Data, "data"); err != nil {
				t.Fatalf("accepted data fails CheckData: %v", err)
			}
		}
	})
}

// FuzzS3Payload parses arbitrary bodies as S3 notifications (bare or in
// SNS): never a panic; a located error, the test event, or records with a
// bucket, a key and an id each.
func FuzzS3Payload(f *testing.F) {
	for _, s := range []string{
		`{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1","eventTime":"2026-03-01T10:00:00.000Z",` +
			`"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b","arn":"arn:aws:s3:::b"},"object":{"key":"reports/positive/a+b%2Bc.pdf","size":1,"eTag":"e","sequencer":"0A"}}}]}`,
		`{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-03-01T10:00:00Z","Bucket":"b"}`,
		`{"Type":"Notification","Message":"{\"Records\":[]}"}`,
		`{"Type":"SubscriptionConfirmation","SubscribeURL":"http://169.254.169.254/"}`,
		`{"Records":[{"eventSource":"aws:s3","eventName":"x","s3":{"bucket":{"name":"b"},"object":{"key":"%zz"}}}]}`,
		`{"Records":[{"eventSource":"aws:s3","eventName":"x","s3":{"bucket":{"name":"b"},"object":{"key":"k","size":-1}}}]}`,
		`{"Records":null}`, `{}`, `[]`, "\xff", `{"Type":"Notification","Message":"\xff"}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		n, err := event.ParseS3([]byte(body), 10)
		if err != nil {
			var ee *event.Error
			if !errors.As(err, &ee) || ee.Location == "" {
				t.Fatalf("error %v (%T) is not a located *event.Error", err, err)
			}
			return
		}
		if n.Test {
			if len(n.Events) != 0 {
				t.Fatal("a test event with records")
			}
			return
		}
		if len(n.Events) == 0 || len(n.Events) > 10 {
			t.Fatalf("%d records", len(n.Events))
		}
		for _, ev := range n.Events {
			if ev.ID == "" || ev.Data["bucket"] == "" || ev.Data["key"] == "" || !strings.HasPrefix(ev.Type, "s3:") {
				t.Fatalf("event %+v", ev)
			}
		}
	})
}

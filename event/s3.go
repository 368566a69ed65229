package event

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/heraldproject/herald"
)

// DefaultMaxS3Records is the most records one S3 notification may carry
// unless the caller says otherwise (S3 sends one per message).
const DefaultMaxS3Records = 100

// S3Notification is what a POST /v1/integrations/s3 body turned into.
type S3Notification struct {
	// Events are the records as events, in order; nil for a test event.
	Events []*herald.Event
	// Test is true for S3's s3:TestEvent, sent when notifications are set
	// up: accepted, nothing to evaluate.
	Test bool
	// SNS is true when the message came inside an SNS notification.
	SNS bool
}

// s3Message is an S3 event notification (or a test event).
type s3Message struct {
	Records *[]s3Record `json:"Records"`
	// The test event: {"Service":"Amazon S3","Event":"s3:TestEvent",...}.
	Service string `json:"Service"`
	Event   string `json:"Event"`
	Bucket  string `json:"Bucket"`
}

type s3Record struct {
	EventVersion string `json:"eventVersion"`
	EventSource  string `json:"eventSource"`
	AWSRegion    string `json:"awsRegion"`
	EventTime    string `json:"eventTime"`
	EventName    string `json:"eventName"`
	S3           *struct {
		Bucket struct {
			Name string `json:"name"`
			ARN  string `json:"arn"`
		} `json:"bucket"`
		Object struct {
			Key       string      `json:"key"`
			Size      json.Number `json:"size"`
			ETag      string      `json:"eTag"`
			VersionID string      `json:"versionId"`
			Sequencer string      `json:"sequencer"`
		} `json:"object"`
	} `json:"s3"`
}

// snsEnvelope is an SNS HTTP(S) delivery.
type snsEnvelope struct {
	Type      string  `json:"Type"`
	MessageID string  `json:"MessageId"`
	TopicArn  string  `json:"TopicArn"`
	Message   *string `json:"Message"`
}

// ParseS3 reads an Amazon S3 event notification: {"Records": [...]}, the
// s3:TestEvent, or either inside an SNS notification (Type "Notification",
// the message as a string in Message). SNS subscription confirmations are
// refused with an error saying to confirm the subscription by hand: Herald
// never fetches the URL a request names. Each record becomes an event of
// type "s3:<eventName>" whose data holds bucket, key (URL-decoded, '+' a
// space), size, eTag, versionId, sequencer, eventName, eventTime and region.
// Event ids are bucket/key/sequencer, so a redelivered record has the same
// id.
func ParseS3(body []byte, maxRecords int) (*S3Notification, error) {
	if maxRecords <= 0 {
		maxRecords = DefaultMaxS3Records
	}
	if err := CheckJSON(body, "body"); err != nil {
		return nil, err
	}
	var n S3Notification
	var env snsEnvelope
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, errorf("body", "not an S3 event notification: %s", jsonMsg(err))
	}
	loc := "body"
	switch env.Type {
	case "":
	case "Notification":
		if env.Message == nil {
			return nil, errorf("body.Message", "an SNS notification without a Message")
		}
		body, loc, n.SNS = []byte(*env.Message), "body.Message", true
		if err := CheckJSON(body, loc); err != nil {
			return nil, err
		}
	case "SubscriptionConfirmation", "UnsubscribeConfirmation":
		return nil, errorf("body.Type", "SNS %s: Herald does not visit the SubscribeURL a request names (that would let "+
			"anyone make it fetch any URL); confirm the subscription in the AWS console or with `aws sns "+
			"confirm-subscription` using the Token of this message", env.Type)
	default:
		return nil, errorf("body.Type", "SNS message type %q is not read here", env.Type)
	}
	var m s3Message
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, errorf(loc, "not an S3 event notification: %s", jsonMsg(err))
	}
	if m.Records == nil {
		if m.Event == "s3:TestEvent" {
			n.Test = true
			return &n, nil
		}
		return nil, errorf(loc+".Records", "an S3 event notification has Records (or is the s3:TestEvent)")
	}
	recs := *m.Records
	switch {
	case len(recs) == 0:
		return nil, errorf(loc+".Records", "no records")
	case len(recs) > maxRecords:
		return nil, &Error{Location: loc + ".Records", Message: fmt.Sprintf("%d records; at most %d", len(recs), maxRecords), TooLarge: true}
	}
	for i := range recs {
		ev, err := s3Event(&recs[i], fmt.Sprintf("%s.Records[%d]", loc, i))
		if err != nil {
			return nil, err
		}
		n.Events = append(n.Events, ev)
	}
	return &n, nil
}

func s3Event(r *s3Record, loc string) (*herald.Event, error) {
	switch {
	case r.EventSource != "aws:s3":
		return nil, errorf(loc+".eventSource", "eventSource %q: Herald reads aws:s3 records here", r.EventSource)
	case r.EventName == "" || len(r.EventName) > MaxIDBytes:
		return nil, errorf(loc+".eventName", "eventName is required (at most %d bytes), e.g. ObjectCreated:Put", MaxIDBytes)
	case r.S3 == nil:
		return nil, errorf(loc+".s3", "the record has no s3 object")
	case r.S3.Bucket.Name == "" || len(r.S3.Bucket.Name) > MaxIDBytes:
		return nil, errorf(loc+".s3.bucket.name", "the bucket name is required (at most %d bytes)", MaxIDBytes)
	case r.S3.Object.Key == "":
		return nil, errorf(loc+".s3.object.key", "the object key is required")
	case len(r.S3.Object.Sequencer) > MaxIDBytes || len(r.S3.Object.ETag) > MaxIDBytes ||
		len(r.S3.Object.VersionID) > MaxIDBytes || len(r.AWSRegion) > MaxIDBytes:
		return nil, errorf(loc+".s3.object", "sequencer, eTag, versionId and awsRegion are at most %d bytes", MaxIDBytes)
	}
	// S3 URL-encodes keys in notifications, with '+' for a space.
	key, err := url.QueryUnescape(r.S3.Object.Key)
	if err != nil {
		return nil, errorf(loc+".s3.object.key", "the object key is not URL-encoded as S3 sends it: %v", err)
	}
	if len(key) > 1024 {
		return nil, errorf(loc+".s3.object.key", "object keys are at most 1024 bytes")
	}
	var size float64
	if s := r.S3.Object.Size.String(); s != "" {
		if size, err = r.S3.Object.Size.Float64(); err != nil || size < 0 {
			return nil, errorf(loc+".s3.object.size", "size %q is not a byte count", s)
		}
	}
	if r.EventTime != "" {
		if _, err := time.Parse(time.RFC3339Nano, r.EventTime); err != nil {
			return nil, errorf(loc+".eventTime", "eventTime %q is not an RFC 3339 timestamp", r.EventTime)
		}
	}
	bucket := r.S3.Bucket.Name
	seq := r.S3.Object.Sequencer
	if seq == "" {
		// No sequencer (not from S3 itself): what else tells two events on
		// one key apart, the kind of event included.
		seq = r.EventName + "/" + r.EventTime + "/" + r.S3.Object.VersionID + "/" + r.S3.Object.ETag
	}
	return &herald.Event{
		ID:      bucket + "/" + key + "@" + seq,
		Type:    "s3:" + r.EventName,
		Source:  "aws:s3:" + bucket,
		Subject: key,
		Time:    r.EventTime,
		Data: map[string]any{
			"bucket": bucket, "bucketArn": r.S3.Bucket.ARN, "key": key, "size": size, "eTag": strings.Trim(r.S3.Object.ETag, `"`),
			"versionId": r.S3.Object.VersionID, "sequencer": r.S3.Object.Sequencer, "eventName": r.EventName,
			"eventTime": r.EventTime, "region": r.AWSRegion,
		},
	}, nil
}

// Package event reads the events rules are evaluated against: Herald's own
// domain events, CloudEvents 1.0 in structured and batch mode, and Amazon S3
// event notifications (bare, or inside an SNS notification). Every reader
// checks the whole input against the limits before returning anything, so a
// caller accepts all of a payload or none of it.
package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/heraldproject/herald"
)

// Limits on events.
const (
	// MaxDepth is the deepest nesting of objects and arrays in a payload.
	MaxDepth = 32
	// MaxValues is the most JSON values (objects, arrays, strings, numbers,
	// booleans, nulls; object keys count too) one event may hold; it bounds what a rule's
	// expression and templates can be made to walk.
	MaxValues = 10_000
	// MaxKeys is the most keys one object may have.
	MaxKeys = 1_000
	// MaxIDBytes bounds an event's id, type, source and subject.
	MaxIDBytes = 256
	// DefaultMaxBatch is the most events a batch may carry unless the
	// caller says otherwise.
	DefaultMaxBatch = 100
)

// Error is a problem with one part of a payload: Location names it
// (body[3].data), Message says what is wrong. TooLarge marks a payload over
// a count limit (413 rather than 422), MediaType a content type not read
// here (415).
type Error struct {
	Location  string
	Message   string
	TooLarge  bool
	MediaType bool
}

func (e *Error) Error() string { return e.Location + ": " + e.Message }

func errorf(loc, format string, args ...any) *Error {
	return &Error{Location: loc, Message: fmt.Sprintf(format, args...)}
}

// Media types of event payloads.
const (
	TypeJSON        = "application/json"
	TypeCloudEvent  = "application/cloudevents+json"
	TypeCloudBatch  = "application/cloudevents-batch+json"
	cloudEventsSpec = "1.0"
)

// input is an event as posted: Herald's own form and CloudEvents' structured
// form share it (CloudEvents adds specversion and datacontenttype).
type input struct {
	SpecVersion     *string         `json:"specversion"`
	ID              *string         `json:"id"`
	Type            *string         `json:"type"`
	Source          *string         `json:"source"`
	Subject         *string         `json:"subject"`
	Time            *string         `json:"time"`
	DataContentType *string         `json:"datacontenttype"`
	Data            json.RawMessage `json:"data"`
	DataBase64      *string         `json:"data_base64"`
}

// Parse reads the events of a POST /v1/events body of the given media type
// (Content-Type): one event or a JSON array of them (application/json), a
// CloudEvent (application/cloudevents+json), or a CloudEvents batch
// (application/cloudevents-batch+json). It checks every event against the
// limits and returns them all, or the first problem as an *Error. Events
// without an id get "" (the caller assigns one).
func Parse(contentType string, body []byte, maxBatch int) ([]*herald.Event, error) {
	if maxBatch <= 0 {
		maxBatch = DefaultMaxBatch
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if contentType == "" {
		mt, err = TypeJSON, nil
	}
	if err != nil {
		return nil, &Error{Location: "header.Content-Type", MediaType: true, Message: fmt.Sprintf("cannot read the media type %q", contentType)}
	}
	if err := CheckJSON(body, "body"); err != nil {
		return nil, err
	}
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	isArray := len(trimmed) > 0 && trimmed[0] == '['
	var cloud bool
	switch mt {
	case TypeJSON:
	case TypeCloudEvent:
		cloud = true
		if isArray {
			return nil, errorf("body", "a CloudEvent in structured mode is one object; send a batch as %s", TypeCloudBatch)
		}
	case TypeCloudBatch:
		cloud = true
		if !isArray {
			return nil, errorf("body", "a CloudEvents batch is a JSON array")
		}
	default:
		return nil, &Error{Location: "header.Content-Type", MediaType: true, Message: fmt.Sprintf(
			"media type %q is not read here: use %s, %s or %s", mt, TypeJSON, TypeCloudEvent, TypeCloudBatch)}
	}
	var raws []json.RawMessage
	if isArray {
		if err := json.Unmarshal(body, &raws); err != nil {
			return nil, errorf("body", "not a JSON array of events: %s", jsonMsg(err))
		}
		switch {
		case len(raws) == 0:
			return nil, errorf("body", "the batch has no events")
		case len(raws) > maxBatch:
			return nil, &Error{Location: "body", Message: fmt.Sprintf("%d events in one batch; at most %d (events.maxBatch)", len(raws), maxBatch), TooLarge: true}
		}
	} else {
		raws = []json.RawMessage{body}
	}
	out := make([]*herald.Event, 0, len(raws))
	for i, raw := range raws {
		loc := "body"
		if isArray {
			loc = fmt.Sprintf("body[%d]", i)
		}
		ev, err := parseOne(raw, loc, cloud)
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, nil
}

func parseOne(raw json.RawMessage, loc string, cloud bool) (*herald.Event, error) {
	if n := countValues(raw); n > MaxValues {
		return nil, &Error{Location: loc, Message: fmt.Sprintf("the event holds %d JSON values; at most %d", n, MaxValues), TooLarge: true}
	}
	var in input
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&in); err != nil {
		return nil, errorf(loc, "not an event object: %s", jsonMsg(err))
	}
	if in.SpecVersion != nil {
		cloud = true
	}
	str := func(field string, p *string, required bool) (string, error) {
		switch {
		case p == nil && required:
			return "", errorf(loc+"."+field, "%s is required", field)
		case p == nil:
			return "", nil
		case len(*p) > MaxIDBytes:
			return "", errorf(loc+"."+field, "%s is at most %d bytes", field, MaxIDBytes)
		case required && strings.TrimSpace(*p) == "":
			return "", errorf(loc+"."+field, "%s must not be empty", field)
		}
		return *p, nil
	}
	ev := &herald.Event{}
	var err error
	if in.DataBase64 != nil {
		// Refused rather than read as an event without data.
		return nil, errorf(loc+".data_base64", "data_base64 (binary data) is not supported: send the data as JSON in data")
	}
	if cloud {
		sv, err := str("specversion", in.SpecVersion, true)
		if err != nil {
			return nil, err
		}
		if sv != cloudEventsSpec {
			return nil, errorf(loc+".specversion", "CloudEvents specversion %q is not read here: use %q", sv, cloudEventsSpec)
		}
		if in.DataContentType != nil && !isJSONType(*in.DataContentType) {
			return nil, errorf(loc+".datacontenttype", "datacontenttype %q: Herald reads JSON data only", *in.DataContentType)
		}
	}
	if ev.ID, err = str("id", in.ID, cloud); err != nil {
		return nil, err
	}
	if ev.Type, err = str("type", in.Type, true); err != nil {
		return nil, err
	}
	if ev.Source, err = str("source", in.Source, cloud); err != nil {
		return nil, err
	}
	if ev.Subject, err = str("subject", in.Subject, false); err != nil {
		return nil, err
	}
	if ev.Time, err = str("time", in.Time, false); err != nil {
		return nil, err
	}
	if ev.Time != "" {
		if _, err := time.Parse(time.RFC3339Nano, ev.Time); err != nil {
			return nil, errorf(loc+".time", "time %q is not an RFC 3339 timestamp", ev.Time)
		}
	}
	ev.Data = map[string]any{}
	if d := bytes.TrimSpace(in.Data); len(d) > 0 && !bytes.Equal(d, []byte("null")) {
		if d[0] != '{' {
			return nil, errorf(loc+".data", "data must be a JSON object")
		}
		if err := json.Unmarshal(d, &ev.Data); err != nil {
			return nil, errorf(loc+".data", "data: %s", jsonMsg(err))
		}
	}
	return ev, nil
}

func isJSONType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json"))
}

// jsonMsg is a JSON decoding error as a short message.
func jsonMsg(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("%s: expected %s, got %s", te.Field, te.Type, te.Value)
	}
	return err.Error()
}

// CheckJSON checks that b is valid UTF-8 JSON nested at most MaxDepth deep,
// with at most MaxKeys keys per object, before anything decodes it. loc
// names b in the error.
func CheckJSON(b []byte, loc string) error {
	if !utf8.Valid(b) {
		return errorf(loc, "not valid UTF-8")
	}
	if !json.Valid(b) {
		var v any
		err := json.Unmarshal(b, &v)
		if err == nil {
			err = errors.New("invalid JSON")
		}
		return errorf(loc, "not valid JSON: %s", jsonMsg(err))
	}
	// A scan that tracks nesting and keys per object; strings are skipped
	// (json.Valid has vouched for their escapes).
	type frame struct {
		object bool
		keys   int
	}
	var stack []frame
	inString := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			if len(stack) >= MaxDepth {
				return errorf(loc, "JSON nested deeper than %d levels", MaxDepth)
			}
			stack = append(stack, frame{object: c == '{'})
		case '}', ']':
			stack = stack[:len(stack)-1]
		case ':':
			top := &stack[len(stack)-1]
			if top.keys++; top.keys > MaxKeys {
				return &Error{Location: loc, Message: fmt.Sprintf("an object has more than %d keys", MaxKeys), TooLarge: true}
			}
		}
	}
	return nil
}

// countValues counts the JSON values in valid JSON b.
func countValues(b []byte) int {
	n := 0
	inString := false
	prevScalar := false // inside a number or literal
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch {
		case c == '"':
			inString = true
			n++
			prevScalar = false
		case c == '{' || c == '[':
			n++
			prevScalar = false
		case c == '-' || (c >= '0' && c <= '9') || c == 't' || c == 'f' || c == 'n':
			if !prevScalar {
				n++
			}
			prevScalar = true
		case c == ',' || c == ':' || c == '}' || c == ']' || c == ' ' || c == '\t' || c == '\r' || c == '\n':
			prevScalar = false
		}
	}
	return n
}

// CheckData checks decoded event data against the limits (MaxDepth,
// MaxValues, MaxKeys), for events that reach Herald already decoded (a dry
// run, a rule's example). loc names data in the error.
func CheckData(data map[string]any, loc string) error {
	n := 0
	var walk func(v any, depth int) error
	walk = func(v any, depth int) error {
		if n++; n > MaxValues {
			return &Error{Location: loc, Message: fmt.Sprintf("the data holds more than %d JSON values", MaxValues), TooLarge: true}
		}
		switch v := v.(type) {
		case map[string]any:
			if depth > MaxDepth {
				return errorf(loc, "JSON nested deeper than %d levels", MaxDepth)
			}
			if len(v) > MaxKeys {
				return &Error{Location: loc, Message: fmt.Sprintf("an object has more than %d keys", MaxKeys), TooLarge: true}
			}
			for _, e := range v {
				n++ // the key
				if err := walk(e, depth+1); err != nil {
					return err
				}
			}
		case []any:
			if depth > MaxDepth {
				return errorf(loc, "JSON nested deeper than %d levels", MaxDepth)
			}
			for _, e := range v {
				if err := walk(e, depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk(data, 2) // the event object around data is level 1
}

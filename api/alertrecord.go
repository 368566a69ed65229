package api

import (
	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/bus"
)

// appendAlertRecord appends the value of a's herald.alerts record: a as
// encoding/json encodes herald.Alert, without reflection (json.Marshal was
// 1.5% of the CPU at one recipient), strings by bus.AppendString, so without
// encoding/json's HTML escapes: the form the fan-out stage reads without the
// general decoder (fanout's decodeAlertFast). FuzzAlertRecord holds the
// value to decoding as json.Marshal's does, TestAlertRecordForm to its
// bytes. The error is CreatedAt's, outside years 0-9999.
func appendAlertRecord(b []byte, a *herald.Alert) ([]byte, error) {
	b = append(b, `{"id":`...)
	b = bus.AppendString(b, a.ID)
	b = append(b, `,"severity":`...)
	b = bus.AppendString(b, a.Severity)
	if a.Title != "" {
		b = append(b, `,"title":`...)
		b = bus.AppendString(b, a.Title)
	}
	b = append(b, `,"message":`...)
	b = bus.AppendString(b, a.Message)
	if a.Source != "" {
		b = append(b, `,"source":`...)
		b = bus.AppendString(b, a.Source)
	}
	if len(a.Labels) > 0 {
		b = append(b, `,"labels":`...)
		b = bus.AppendStringMap(b, a.Labels)
	}
	b = append(b, `,"target":`...)
	b = appendStrings(b, a.Targets)
	if len(a.Channels) > 0 {
		b = append(b, `,"channels":`...)
		b = appendStrings(b, a.Channels)
	}
	if len(a.Recipients) > 0 {
		b = append(b, `,"recipients":`...)
		b = appendStrings(b, a.Recipients)
	}
	if a.IdempotencyKey != "" {
		b = append(b, `,"idempotencyKey":`...)
		b = bus.AppendString(b, a.IdempotencyKey)
	}
	b = append(b, `,"createdAt":"`...)
	b, err := a.CreatedAt.AppendText(b)
	if err != nil {
		return nil, err
	}
	return append(b, `"}`...), nil
}

// appendStrings appends ss as a JSON array, null when nil (as encoding/json).
func appendStrings[S ~string](b []byte, ss []S) []byte {
	if ss == nil {
		return append(b, "null"...)
	}
	return bus.AppendStrings(b, ss)
}

package logs

import (
	"errors"
	"time"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/bus"
)

// AppendRecord appends lr to b as the value of a logs-topic record: the JSON
// encoding/json writes for a herald.LogRecord (fields in order, attributes
// sorted by name), but for its HTML escapes and those of U+2028 and U+2029.
// The API encodes every record it accepts this way, and Decode reads this
// form without the general decoder (decodeFast): encoding and decoding log
// records were 17% of the CPU while ingesting them, 10% of it on the logs
// role's consumer, before its writers could start (docs/BENCHMARKS.md, fix
// 52).
func AppendRecord(b []byte, lr *herald.LogRecord) ([]byte, error) {
	if y := lr.Time.Year(); y < 0 || y > 9999 {
		return b, errors.New("logs: time out of range")
	}
	b = append(b, '{')
	if lr.ID != "" {
		b = append(b, `"id":`...)
		b = bus.AppendString(b, lr.ID)
		b = append(b, ',')
	}
	b = append(b, `"time":"`...)
	b = lr.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","service":`...)
	b = bus.AppendString(b, lr.Service)
	b = append(b, `,"level":`...)
	b = bus.AppendString(b, lr.Level)
	b = append(b, `,"message":`...)
	b = bus.AppendString(b, lr.Message)
	if len(lr.Attributes) > 0 {
		b = append(b, `,"attributes":`...)
		b = bus.AppendStringMap(b, lr.Attributes)
	}
	if lr.TraceID != "" {
		b = append(b, `,"traceId":`...)
		b = bus.AppendString(b, lr.TraceID)
	}
	if lr.SpanID != "" {
		b = append(b, `,"spanId":`...)
		b = bus.AppendString(b, lr.SpanID)
	}
	return append(b, '}'), nil
}

// decodeFast reads v into lr when v is exactly what AppendRecord writes
// with no string that needs an escape: fields in AppendRecord's order, no
// space between tokens, strings without backslashes or control characters
// and valid UTF-8. For such input it sets what the general decoder would
// (bus.DecodeValue; TestDecodeFastAgrees and FuzzDecodeFast hold it to
// that). For anything else it reports false, and lr is to be discarded.
// Every string field shares one copy of v.
func decodeFast(v []byte, lr *herald.LogRecord) bool {
	d := bus.NewScanner(v)
	if !d.Byte('{') {
		return false
	}
	var ok bool
	if d.Key(`"id":`) {
		if lr.ID, ok = d.Str(); !ok || !d.Byte(',') {
			return false
		}
	}
	if !d.Key(`"time":`) {
		return false
	}
	if lr.Time, ok = d.Time(); !ok || !d.Key(`,"service":`) {
		return false
	}
	if lr.Service, ok = d.Str(); !ok || !d.Key(`,"level":`) {
		return false
	}
	var level string
	if level, ok = d.Str(); !ok || !d.Key(`,"message":`) {
		return false
	}
	lr.Level = herald.Severity(level)
	if lr.Message, ok = d.Str(); !ok {
		return false
	}
	if d.Key(`,"attributes":`) {
		if lr.Attributes, ok = d.StringMap(); !ok {
			return false
		}
	}
	if d.Key(`,"traceId":`) {
		if lr.TraceID, ok = d.Str(); !ok {
			return false
		}
	}
	if d.Key(`,"spanId":`) {
		if lr.SpanID, ok = d.Str(); !ok {
			return false
		}
	}
	return d.Byte('}') && d.Done()
}

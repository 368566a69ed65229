package deliver

import (
	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/bus"
)

// decodeTaskFast reads v into t when v is exactly what the fan-out stage
// writes (fanout's taskRecord and alertFields: the fields in
// herald.DeliveryTask's order, no space between tokens) and no string in it
// needs unescaping. For such input it sets what the general decoder would
// (TestDecodeTaskFastAgrees and FuzzDecodeTaskFast hold it to that); for
// anything else it reports false, and t is to be discarded. Decoding was a
// tenth of the sending stage's CPU with the general decoder (1.6–2% of
// Herald's), on the goroutine that starts the batch's sends.
func decodeTaskFast(v []byte, t *herald.DeliveryTask) bool {
	d := bus.NewScanner(v)
	var ok bool
	if !d.Key(`{"deliveryId":`) {
		return false
	}
	if t.DeliveryID, ok = d.Str(); !ok || !d.Key(`,"alertId":`) {
		return false
	}
	if t.AlertID, ok = d.Str(); !ok || !d.Key(`,"recipientId":`) {
		return false
	}
	if t.RecipientID, ok = d.Str(); !ok || !d.Key(`,"recipient":`) {
		return false
	}
	if t.Recipient, ok = d.Str(); !ok || !d.Key(`,"channel":`) {
		return false
	}
	var s string
	if s, ok = d.Str(); !ok || !d.Key(`,"severity":`) {
		return false
	}
	t.Channel = herald.Channel(s)
	if s, ok = d.Str(); !ok {
		return false
	}
	t.Severity = herald.Severity(s)
	if d.Key(`,"title":`) {
		if t.Title, ok = d.Str(); !ok {
			return false
		}
	}
	if !d.Key(`,"message":`) {
		return false
	}
	if t.Message, ok = d.Str(); !ok {
		return false
	}
	if d.Key(`,"source":`) {
		if t.Source, ok = d.Str(); !ok {
			return false
		}
	}
	if d.Key(`,"labels":`) {
		if t.Labels, ok = d.StringMap(); !ok {
			return false
		}
	}
	if !d.Key(`,"createdAt":`) {
		return false
	}
	if t.CreatedAt, ok = d.Time(); !ok || !d.Key(`,"attempt":`) {
		return false
	}
	if t.Attempt, ok = d.Int(); !ok {
		return false
	}
	return d.Byte('}') && d.Done()
}

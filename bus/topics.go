// Package bus wires Herald to Kafka through franz-go: topic names, the
// embedded broker (kfake) for single-node mode, a producer that answers once
// records are durably acknowledged, and a consumer loop that processes each
// fetch as one batch and commits offsets only after the batch is handled.
package bus

import "github.com/heraldproject/herald"

// Topic names.
const (
	// TopicAlerts carries accepted alerts, keyed by alert id.
	TopicAlerts = "herald.alerts"
	// TopicDLQ carries dead letters: deliveries that exhausted their attempts
	// or failed permanently.
	TopicDLQ = "herald.dlq"
	// deliveriesPrefix + channel name carries one record per delivery, keyed
	// by recipient id.
	deliveriesPrefix = "herald.deliveries."
)

// DeliveryTopic returns the topic that carries deliveries for channel c.
func DeliveryTopic(c herald.Channel) string { return deliveriesPrefix + string(c) }

// Topics lists every topic Herald uses. The embedded broker seeds them all at
// start so they survive a crash.
func Topics() []string {
	ts := []string{TopicAlerts, TopicDLQ}
	for _, c := range herald.Channels {
		ts = append(ts, DeliveryTopic(c))
	}
	return ts
}

// Record headers.
const (
	// HeaderDeliveryID carries a delivery record's id.
	HeaderDeliveryID = "herald-delivery-id"
	// HeaderAlertID carries the alert id on every Herald record.
	HeaderAlertID = "herald-alert-id"
	// HeaderRequestID carries the id of the HTTP request that accepted the
	// alert, so logs can be followed across the pipeline.
	HeaderRequestID = "herald-request-id"
	// HeaderError carries the reason a record was dead-lettered.
	HeaderError = "herald-error"
)

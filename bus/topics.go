// Package bus wires Herald to Kafka through franz-go: topic names, the
// embedded broker (kfake) for single-node mode, a producer that answers once
// records are durably acknowledged, and a consumer loop that processes each
// fetch as one batch and commits offsets only after the batch is handled.
package bus

import (
	"strings"
	"time"

	"github.com/heraldproject/herald"
)

// Topic names.
const (
	// TopicAlerts carries accepted alerts, keyed by stream (herald.Alert.Stream).
	TopicAlerts = "herald.alerts"
	// TopicLogs carries accepted log records (herald.LogRecord as JSON),
	// keyed by service.
	TopicLogs = "herald.logs"
	// TopicDLQ carries dead letters: deliveries that exhausted their attempts
	// or failed permanently.
	TopicDLQ = "herald.dlq"
	// deliveriesPrefix + channel name carries one record per delivery, keyed
	// by recipient id.
	deliveriesPrefix = "herald.deliveries."
	// retryPrefix + tier name carries deliveries waiting to be retried.
	retryPrefix = "herald.retry."
)

// RetryTopic returns the delay-tier topic for delay d, e.g. herald.retry.10s
// or herald.retry.5m.
func RetryTopic(d time.Duration) string { return retryPrefix + TierName(d) }

// TierName is a compact duration: 100ms, 1s, 1m30s, 5m, 1h.
func TierName(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// DeliveryTopic returns the topic that carries deliveries for channel c.
func DeliveryTopic(c herald.Channel) string { return deliveriesPrefix + string(c) }

// Topics lists every topic Herald uses with the given retry tiers. The
// embedded broker seeds them all at start so they survive a crash.
func Topics(tiers []time.Duration) []string {
	ts := []string{TopicAlerts, TopicLogs, TopicDLQ}
	for _, c := range herald.Channels {
		ts = append(ts, DeliveryTopic(c))
	}
	for _, d := range tiers {
		ts = append(ts, RetryTopic(d))
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
	// HeaderDue carries when a delayed record is due (Unix milliseconds).
	HeaderDue = "herald-due"
	// HeaderReturnTopic names the topic a delayed record goes back to.
	HeaderReturnTopic = "herald-return-topic"
	// HeaderDeadLetterID names the dead letter a DLQ record is.
	HeaderDeadLetterID = "herald-dead-letter-id"
	// HeaderReplay marks a delivery record produced by a replay; its value is
	// the dead letter being replayed.
	HeaderReplay = "herald-replay"
	// HeaderLogID carries a log record's id.
	HeaderLogID = "herald-log-id"
	// HeaderStream names the alert stream a delivery record belongs to: a
	// hash of the alert's labels, so an alert and its resolution (the same
	// labels) are one stream. One recipient's records of one stream are sent
	// one after another, in order; different streams may overlap. Absent
	// (empty labels, records from other tools) is a stream of its own.
	HeaderStream = "herald-stream"
)

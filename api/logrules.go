package api

import (
	"errors"
	"fmt"
	"time"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/rules"
)

// LogRecordInput is a log record as a log rule sees it, for examples and
// dry runs.
type LogRecordInput struct {
	ID         string            `json:"id,omitempty" maxLength:"64" doc:"default: example"`
	Time       string            `json:"time,omitempty" maxLength:"64" doc:"RFC 3339; default: now"`
	Service    string            `json:"service" maxLength:"128"`
	Level      string            `json:"level,omitempty" maxLength:"16" doc:"debug, info, warning, error, critical (aliases accepted); default info"`
	Message    string            `json:"message,omitempty" maxLength:"32768"`
	Attributes map[string]string `json:"attributes,omitempty"`
	TraceID    string            `json:"traceId,omitempty" maxLength:"32"`
	SpanID     string            `json:"spanId,omitempty" maxLength:"16"`
}

// record checks the input as POST /v1/logs would and returns the record;
// problems are 422s located under loc.
func (in *LogRecordInput) record(loc string, now time.Time) (*herald.LogRecord, error) {
	lr := &herald.LogRecord{ID: in.ID, Service: in.Service, Message: in.Message, Attributes: in.Attributes,
		TraceID: in.TraceID, SpanID: in.SpanID, Time: now.UTC()}
	if lr.ID == "" {
		lr.ID = "example"
	}
	if len(lr.ID) > 64 {
		return nil, invalid(loc+".id", "at most 64 bytes", herald.ClipLog(lr.ID, 64))
	}
	if in.Time != "" {
		t, err := time.Parse(time.RFC3339Nano, in.Time)
		if err != nil {
			return nil, invalid(loc+".time", "must be an RFC 3339 time (2026-03-01T10:00:00.123Z)", in.Time)
		}
		lr.Time = t.UTC()
	}
	lvl, err := herald.ParseLogLevel(in.Level)
	if err != nil {
		return nil, invalid(loc+".level", herald.ErrorMessage(err), in.Level)
	}
	lr.Level = lvl
	if err := lr.Validate(); err != nil {
		var fe *herald.FieldError
		if errors.As(err, &fe) {
			return nil, invalid(loc+"."+fe.Field, fe.Message, fe.Value)
		}
		return nil, invalid(loc, err.Error(), nil)
	}
	return lr, nil
}

// RuleExample is an input a rule must evaluate and render without error
// (checked, not stored): an event for rules of source event or s3 (type
// required; data), a log record for rules of source log (service required;
// level, message, attributes, traceId, spanId). id and time serve both.
type RuleExample struct {
	ID         string            `json:"id,omitempty" maxLength:"256"`
	Type       string            `json:"type,omitempty" maxLength:"256" doc:"events"`
	Source     string            `json:"source,omitempty" maxLength:"256" doc:"events"`
	Subject    string            `json:"subject,omitempty" maxLength:"256" doc:"events"`
	Time       string            `json:"time,omitempty" maxLength:"64" doc:"events: as sent; log records: RFC 3339"`
	Data       map[string]any    `json:"data,omitempty" doc:"events"`
	Service    string            `json:"service,omitempty" maxLength:"128" doc:"log records"`
	Level      string            `json:"level,omitempty" maxLength:"16" doc:"log records"`
	Message    string            `json:"message,omitempty" maxLength:"32768" doc:"log records"`
	Attributes map[string]string `json:"attributes,omitempty" doc:"log records"`
	TraceID    string            `json:"traceId,omitempty" maxLength:"32" doc:"log records"`
	SpanID     string            `json:"spanId,omitempty" maxLength:"16" doc:"log records"`
}

func (e *RuleExample) event() *EventInput {
	return &EventInput{ID: e.ID, Type: e.Type, Source: e.Source, Subject: e.Subject, Time: e.Time, Data: e.Data}
}

func (e *RuleExample) log() *LogRecordInput {
	return &LogRecordInput{ID: e.ID, Time: e.Time, Service: e.Service, Level: e.Level, Message: e.Message,
		Attributes: e.Attributes, TraceID: e.TraceID, SpanID: e.SpanID}
}

// parseWindow reads a rule's window ("" for none); problems are 422s at
// loc.
func parseWindow(loc, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, invalid(loc, fmt.Sprintf("not a duration (e.g. 5m, 1h): %q", s), s)
	}
	if d < rules.MinWindow || d > rules.MaxWindow {
		return 0, invalid(loc, fmt.Sprintf("give a window from %s to %s", rules.MinWindow, rules.MaxWindow), s)
	}
	return d, nil
}

// checkLogExample evaluates and strictly renders log rule c against the
// example record.
func checkLogExample(c *rules.Compiled, ex *RuleExample, now time.Time) error {
	lr, err := ex.log().record("body.example", now)
	if err != nil {
		return err
	}
	if _, err := c.MatchLog(lr); err != nil {
		return invalid("body.match", "the expression fails on the example log record: "+err.Error(), nil)
	}
	if err := c.TryRenderLog(lr, true); err != nil {
		return ruleProblem(fmt.Errorf("on the example log record: %w", err))
	}
	return nil
}

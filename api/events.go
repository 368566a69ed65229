package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/event"
	"github.com/heraldproject/herald/rules"
	"github.com/heraldproject/herald/store"
)

// Idempotency-key prefixes of alerts made by rules; POST /v1/alerts refuses
// them in an Idempotency-Key header.
const (
	eventKeyPrefix = "event:"
	s3KeyPrefix    = "s3:"
)

// EventAlert is an alert a rule made of an event.
type EventAlert struct {
	ID        string   `json:"id" doc:"the Herald alert id; GET /v1/alerts/{id} shows its deliveries"`
	Rule      string   `json:"rule" doc:"the rule's name"`
	RuleID    string   `json:"ruleId"`
	Event     int      `json:"event" doc:"the index of the event in the request"`
	EventID   string   `json:"eventId"`
	UserCount int      `json:"userCount" doc:"distinct users the rule's targets resolved to"`
	Replayed  bool     `json:"replayed,omitempty" doc:"this event was accepted before for this rule within idempotency.window: nobody is told again"`
	Notes     []string `json:"notes,omitempty" doc:"what went wrong rendering or resolving, and what Herald did instead"`
}

// RuleError is a rule whose expression could not be evaluated on an event
// (counted as no match).
type RuleError struct {
	Event   int    `json:"event"`
	EventID string `json:"eventId"`
	Rule    string `json:"rule"`
	Message string `json:"message"`
}

// EventsAccepted answers an event ingest.
type EventsAccepted struct {
	Body struct {
		Events     int          `json:"events" doc:"events accepted"`
		EventIDs   []string     `json:"eventIds" doc:"each event's id (made by Herald for events sent without one)"`
		Alerts     []EventAlert `json:"alerts"`
		Unmatched  int          `json:"unmatched" doc:"events no enabled rule matched: accepted, counted (herald_events_unmatched_total) and logged, nobody told"`
		RuleErrors []RuleError  `json:"ruleErrors,omitempty"`
		Test       bool         `json:"test,omitempty" doc:"S3's s3:TestEvent: accepted, nothing to do"`
	}
}

type eventsInput struct {
	ContentType string `header:"Content-Type"`
	RawBody     []byte `contentType:"application/json"`
}

func (s *Server) registerEvents(a huma.API) {
	huma.Register(a, huma.Operation{
		OperationID: "post-events", Method: http.MethodPost, Path: "/v1/events", Tags: []string{"events"},
		Summary: "Send domain events",
		Description: "One event {id?, type, source?, subject?, time?, data}, a JSON array of them, a CloudEvent " +
			"(application/cloudevents+json) or a CloudEvents batch (application/cloudevents-batch+json). Every event " +
			"is checked first; then each enabled rule of source event is evaluated, and each match becomes one alert. " +
			"Alert ids derive from the event's source and id and the rule, so a retried event tells nobody twice.",
		DefaultStatus: http.StatusAccepted, SkipValidateBody: true, // read and checked by package event
	}, func(ctx context.Context, in *eventsInput) (*EventsAccepted, error) {
		evs, err := event.Parse(in.ContentType, in.RawBody, s.EventsMaxBatch)
		if err != nil {
			return nil, eventProblem(err)
		}
		return s.ingestEvents(ctx, herald.RuleSourceEvent, evs)
	})
	huma.Register(a, huma.Operation{
		OperationID: "s3-notification", Method: http.MethodPost, Path: "/v1/integrations/s3", Tags: []string{"integrations"},
		Summary: "Receive Amazon S3 event notifications",
		Description: "An S3 event notification ({\"Records\": [...]}), bare or inside an SNS notification. Each record " +
			"becomes an event of type s3:<eventName> evaluated against the enabled rules of source s3 (which see key, " +
			"bucket, size, ... at the top level). The s3:TestEvent is accepted and does nothing. SNS subscription " +
			"confirmations are refused: confirm by hand; Herald never fetches a URL a request names.",
		DefaultStatus: http.StatusAccepted, SkipValidateBody: true, // read and checked by package event
	}, func(ctx context.Context, in *eventsInput) (*EventsAccepted, error) {
		n, err := event.ParseS3(in.RawBody, s.EventsMaxBatch)
		if err != nil {
			return nil, eventProblem(err)
		}
		if n.Test {
			out := &EventsAccepted{}
			out.Body.Test, out.Body.EventIDs, out.Body.Alerts = true, []string{}, []EventAlert{}
			s.Logger.InfoContext(ctx, "s3 test event accepted", "request_id", RequestID(ctx))
			return out, nil
		}
		return s.ingestEvents(ctx, herald.RuleSourceS3, n.Events)
	})
	documentEventBodies(a)
}

// CloudEventInput is a CloudEvent 1.0 in structured mode, as documented in
// the OpenAPI document (the handler reads it with package event).
type CloudEventInput struct {
	SpecVersion     string         `json:"specversion" enum:"1.0"`
	ID              string         `json:"id" maxLength:"256"`
	Source          string         `json:"source" maxLength:"256"`
	Type            string         `json:"type" maxLength:"256"`
	Subject         string         `json:"subject,omitempty" maxLength:"256"`
	Time            string         `json:"time,omitempty" doc:"RFC 3339"`
	DataContentType string         `json:"datacontenttype,omitempty" doc:"JSON only"`
	Data            map[string]any `json:"data,omitempty"`
}

// documentEventBodies describes the bodies the event routes read (huma sees
// raw bytes, which package event reads and checks).
func documentEventBodies(a huma.API) {
	reg := a.OpenAPI().Components.Schemas
	ev := reg.Schema(reflect.TypeFor[EventInput](), true, "")
	ce := reg.Schema(reflect.TypeFor[CloudEventInput](), true, "")
	if op := a.OpenAPI().Paths["/v1/events"]; op != nil && op.Post != nil && op.Post.RequestBody != nil {
		op.Post.RequestBody.Content = map[string]*huma.MediaType{
			"application/json": {Schema: &huma.Schema{OneOf: []*huma.Schema{ev,
				{Type: huma.TypeArray, Items: ev, MaxItems: new(100)}}}},
			event.TypeCloudEvent: {Schema: ce},
			event.TypeCloudBatch: {Schema: &huma.Schema{Type: huma.TypeArray, Items: ce, MaxItems: new(100)}},
		}
	}
	if op := a.OpenAPI().Paths["/v1/integrations/s3"]; op != nil && op.Post != nil && op.Post.RequestBody != nil {
		op.Post.RequestBody.Content = map[string]*huma.MediaType{"application/json": {Schema: &huma.Schema{
			Type: huma.TypeObject, AdditionalProperties: true,
			Description: "An S3 event notification {\"Records\": [{eventSource: \"aws:s3\", eventName, eventTime, awsRegion, " +
				"s3: {bucket: {name, arn}, object: {key, size, eTag, sequencer}}}]}, the s3:TestEvent, or either as the " +
				"Message of an SNS Notification"}}}
	}
}

// eventProblem turns a parse error into its 4xx.
func eventProblem(err error) error {
	var ee *event.Error
	if !errors.As(err, &ee) {
		return err
	}
	d := &huma.ErrorDetail{Location: ee.Location, Message: ee.Message}
	switch {
	case ee.TooLarge:
		return huma.Error413RequestEntityTooLarge(ee.Message, d)
	case ee.MediaType:
		return huma.NewError(http.StatusUnsupportedMediaType, ee.Message, d)
	}
	return huma.Error422UnprocessableEntity("validation failed", d)
}

// eventPlanned is a rule's alert for an event, waiting for its id.
type eventPlanned struct {
	alert  *herald.Alert
	result EventAlert
}

// ingestEvents evaluates the enabled rules of source against every event
// and produces one alert per match, all or nothing.
func (s *Server) ingestEvents(ctx context.Context, source string, evs []*herald.Event) (*EventsAccepted, error) {
	if s.draining.Load() {
		return nil, huma.Error503ServiceUnavailable("shutting down; retry against another instance or later")
	}
	ctx, span := s.Tracer.Start(ctx, "herald.accept", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("herald.request_id", RequestID(ctx)), attribute.String("herald.source", source)))
	defer span.End()
	set, err := s.Rules.Enabled(ctx, source)
	if err != nil {
		return nil, s.problem(ctx, err)
	}
	out := &EventsAccepted{}
	out.Body.Events, out.Body.EventIDs, out.Body.Alerts = len(evs), make([]string, len(evs)), []EventAlert{}
	resolved := map[string]resolvedTargets{} // rule id → recipients
	var planned []*eventPlanned
	for i, ev := range evs {
		if ev.ID == "" {
			ev.ID = uuid.Must(uuid.NewV7()).String()
		}
		out.Body.EventIDs[i] = ev.ID
		matched := false
		for _, c := range set {
			ok, err := c.Match(ev)
			if err != nil {
				s.Metrics.RuleError(source, "match")
				out.Body.RuleErrors = append(out.Body.RuleErrors, RuleError{Event: i, EventID: ev.ID, Rule: c.Rule.Name,
					Message: clip(err.Error())})
				continue
			}
			if !ok {
				continue
			}
			matched = true
			al, notes := buildAlert(c, ev)
			if len(notes) > 0 {
				s.Metrics.RuleError(source, "render")
			}
			rt, ok := resolved[c.Rule.ID]
			if !ok {
				if rt, err = s.resolveRuleTargets(ctx, c.Rule); err != nil {
					return nil, s.problem(ctx, err)
				}
				resolved[c.Rule.ID] = rt
			}
			al.Recipients = rt.ids
			notes = append(notes, rt.notes...)
			planned = append(planned, &eventPlanned{alert: al, result: EventAlert{Rule: c.Rule.Name, RuleID: c.Rule.ID,
				Event: i, EventID: ev.ID, UserCount: len(rt.ids), Notes: notes}})
		}
		if !matched {
			out.Body.Unmatched++
			s.Logger.DebugContext(ctx, "event matched no rule", "request_id", RequestID(ctx), "source", source,
				"event_id", clip(ev.ID), "event_type", clip(ev.Type))
		}
	}
	produce, err := s.assignEventIDs(ctx, planned, s.Now().UTC())
	if err != nil {
		return nil, err
	}
	if len(produce) > 0 {
		if err := s.produceAlerts(ctx, produce); err != nil {
			return nil, err
		}
	}
	s.Metrics.Accepted("event", len(evs))
	s.Metrics.Accepted("alert", len(produce))
	s.Metrics.EventsUnmatched(source, out.Body.Unmatched)
	for _, pl := range planned {
		out.Body.Alerts = append(out.Body.Alerts, pl.result)
	}
	span.SetAttributes(attribute.Int("herald.events", len(evs)), attribute.Int("herald.produced", len(produce)))
	s.Logger.InfoContext(ctx, "events accepted", "request_id", RequestID(ctx), "source", source, "events", len(evs),
		"alerts", len(planned), "produced", len(produce), "unmatched", out.Body.Unmatched, "rule_errors", len(out.Body.RuleErrors))
	return out, nil
}

type resolvedTargets struct {
	ids   []string
	notes []string
}

// resolveRuleTargets resolves a rule's targets. Targets that no longer
// exist (deleted since the rule was made) are left out with a note rather
// than refusing the event: the event is valid, the rule is stale.
func (s *Server) resolveRuleTargets(ctx context.Context, r *herald.Rule) (resolvedTargets, error) {
	var rt resolvedTargets
	parsed := make([]herald.Target, 0, len(r.Targets))
	for _, t := range r.Targets {
		if pt, err := herald.ParseTarget(t); err == nil {
			parsed = append(parsed, pt)
		}
	}
	ids, unknown, err := s.Store.Resolve(ctx, parsed)
	if err != nil {
		return rt, err
	}
	rt.ids = ids
	if len(unknown) > 0 {
		rt.notes = append(rt.notes, fmt.Sprintf("rule %s names targets that no longer exist: %s", r.Name, strings.Join(unknown, ", ")))
	}
	return rt, nil
}

// buildAlert renders rule c's alert for ev (without id, recipients or
// creation time) with its idempotency key, and the notes of its rendering.
func buildAlert(c *rules.Compiled, ev *herald.Event) (*herald.Alert, []string) {
	r := c.Render(ev)
	src := ev.Source
	if src == "" {
		src = "events"
	}
	if len(src) > maxSource {
		src = clipBytes(src, maxSource)
	}
	labels := map[string]string{"rule": c.Rule.Name, "event_type": ev.Type, "event_id": ev.ID}
	if ev.Source != "" {
		labels["event_source"] = ev.Source
	}
	if ev.Subject != "" {
		labels["event_subject"] = ev.Subject
	}
	if c.Rule.Source == herald.RuleSourceS3 {
		for _, k := range []string{"bucket", "key"} {
			if v, ok := ev.Data[k].(string); ok {
				labels["s3_"+k] = v
			}
		}
	}
	for k, v := range labels {
		if len(v) > maxLabelValue {
			labels[k] = clipBytes(v, maxLabelValue)
		}
	}
	al := &herald.Alert{Severity: c.Rule.Severity, Title: r.Title, Message: r.Message, Source: src, Labels: labels,
		Targets: slices.Clone(c.Rule.Targets)}
	al.IdempotencyKey = ruleIdempotencyKey(c.Rule, ev, r.DedupeKey)
	return al, r.Notes
}

// ruleIdempotencyKey identifies one rule's notification about one event:
// the event's source and id (or the rendered dedupe key) and the rule. A
// retried event has the same key, so it yields the same alert id and tells
// nobody again within idempotency.window.
func ruleIdempotencyKey(r *herald.Rule, ev *herald.Event, dedupe string) string {
	h := sha256.New()
	if dedupe != "" {
		h.Write([]byte("dedupe\x00" + dedupe))
	} else {
		h.Write([]byte(ev.Source + "\x00" + ev.ID))
	}
	prefix := eventKeyPrefix
	if r.Source == herald.RuleSourceS3 {
		prefix = s3KeyPrefix
	}
	return prefix + r.ID + ":" + hex.EncodeToString(h.Sum(nil)[:16])
}

// assignEventIDs gives each planned alert its id from its idempotency key
// (see assignKeyedIDs).
func (s *Server) assignEventIDs(ctx context.Context, planned []*eventPlanned, now time.Time) ([]*herald.Alert, error) {
	alerts := make([]*herald.Alert, len(planned))
	for i, pl := range planned {
		alerts[i] = pl.alert
	}
	return s.assignKeyedIDs(ctx, alerts, now, func(i int, prev *store.IdempotentAlert) {
		r := &planned[i].result
		if prev == nil {
			r.ID = alerts[i].ID
			return
		}
		r.ID, r.UserCount, r.Replayed = prev.ID, prev.UserCount, true
	})
}

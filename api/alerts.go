package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/bus"
	"github.com/heraldproject/herald/store"
)

// Limits on alert fields.
const (
	maxTargets     = 1000
	maxLabels      = 64
	maxLabelKey    = 128
	maxLabelValue  = 1024
	maxMessageSize = 16 << 10
)

// idempotencyNamespace derives alert ids from Idempotency-Key headers.
var idempotencyNamespace = uuid.MustParse("8d3c8f0e-3b7a-4f45-9b1e-6a0f4c2d7e55")

// AlertInput is an alert to send.
type AlertInput struct {
	Target   []string          `json:"target" minItems:"1" maxItems:"1000" doc:"@user or @@group, e.g. [\"@alice\", \"@@oncall\"]"`
	Severity string            `json:"severity" maxLength:"16" doc:"info, warning, error or critical (aliases: normal, warn, fatal, debug, trace)"`
	Message  string            `json:"message" minLength:"1" maxLength:"16384"`
	Title    string            `json:"title,omitempty" maxLength:"512"`
	Source   string            `json:"source,omitempty" maxLength:"256" doc:"what raised the alert"`
	Labels   map[string]string `json:"labels,omitempty" doc:"at most 64; keys up to 128 bytes, values up to 1024"`
	Channels []string          `json:"channels,omitempty" maxItems:"4" doc:"restrict delivery to these channels: webhook, slack, email, sms"`
}

type alertAccepted struct {
	Location string `header:"Location"`
	Replayed string `header:"Idempotent-Replayed" doc:"true when the Idempotency-Key matched an earlier alert"`
	Body     struct {
		ID        string `json:"id" doc:"the alert id; GET /v1/alerts/{id} shows its deliveries once fanned out"`
		UserCount int    `json:"userCount" doc:"distinct users the targets resolved to"`
	}
}

// DeliveryOutput is one delivery of an alert.
type DeliveryOutput struct {
	ID            string     `json:"id"`
	Recipient     string     `json:"recipient"`
	RecipientID   string     `json:"recipientId"`
	Channel       string     `json:"channel"`
	Status        string     `json:"status" enum:"pending,sent,failed,dead"`
	Attempts      int        `json:"attempts"`
	LastError     string     `json:"lastError,omitempty"`
	SentAt        *time.Time `json:"sentAt,omitempty"`
	NextAttemptAt *time.Time `json:"nextAttemptAt,omitempty" doc:"when a failed delivery will be tried again"`
	DeadLetterID  string     `json:"deadLetterId,omitempty" doc:"the dead letter of a dead delivery"`
	CreatedAt     time.Time  `json:"createdAt"`
	UpdatedAt     time.Time  `json:"updatedAt"`
}

// AlertOutput is a stored alert.
type AlertOutput struct {
	ID          string            `json:"id"`
	Severity    string            `json:"severity"`
	Title       string            `json:"title,omitempty"`
	Message     string            `json:"message"`
	Source      string            `json:"source,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Target      []string          `json:"target"`
	Channels    []herald.Channel  `json:"channels,omitempty"`
	UserCount   int               `json:"userCount"`
	Unreachable []string          `json:"unreachable,omitempty" doc:"recipients with no contact on any usable channel"`
	CreatedAt   time.Time         `json:"createdAt" doc:"when the alert was accepted"`
	StoredAt    time.Time         `json:"storedAt" doc:"when fan-out recorded it"`
	Counts      map[string]int    `json:"counts" doc:"deliveries per status"`
	Deliveries  []DeliveryOutput  `json:"deliveries,omitempty"`
}

func alertOutput(a *herald.AlertRecord) AlertOutput {
	return AlertOutput{ID: a.ID, Severity: string(a.Severity), Title: a.Title, Message: a.Message, Source: a.Source,
		Labels: a.Labels, Target: a.Targets, Channels: a.Channels, UserCount: a.UserCount, Unreachable: a.Unreachable,
		CreatedAt: a.CreatedAt, StoredAt: a.StoredAt, Counts: map[string]int{}}
}

type alertBody struct{ Body AlertOutput }

type alertList struct {
	Body struct {
		Alerts     []AlertOutput `json:"alerts"`
		NextCursor string        `json:"nextCursor,omitempty"`
	}
}

// checkAlert validates an alert and turns it into the record to produce.
func (s *Server) checkAlert(ctx context.Context, in *AlertInput) (*herald.Alert, error) {
	sev, err := herald.ParseSeverity(in.Severity)
	if err != nil {
		return nil, invalid("body.severity", herald.ErrorMessage(err), in.Severity)
	}
	if strings.TrimSpace(in.Message) == "" {
		return nil, invalid("body.message", "message must not be blank", in.Message)
	}
	if len(in.Labels) > maxLabels {
		return nil, invalid("body.labels", fmt.Sprintf("at most %d labels", maxLabels), len(in.Labels))
	}
	for k, v := range in.Labels {
		if k == "" || len(k) > maxLabelKey || len(v) > maxLabelValue {
			return nil, invalid("body.labels."+k, fmt.Sprintf("label keys must be 1-%d bytes and values at most %d", maxLabelKey, maxLabelValue), nil)
		}
	}
	a := &herald.Alert{Severity: sev, Title: in.Title, Message: in.Message, Source: in.Source, Labels: in.Labels}
	for i, c := range in.Channels {
		ch, err := herald.ParseChannel(c)
		if err != nil {
			return nil, invalid(fmt.Sprintf("body.channels[%d]", i), herald.ErrorMessage(err), c)
		}
		for _, prev := range a.Channels {
			if prev == ch {
				return nil, invalid(fmt.Sprintf("body.channels[%d]", i), "channel listed twice", c)
			}
		}
		a.Channels = append(a.Channels, ch)
	}
	targets := make([]herald.Target, 0, len(in.Target))
	for i, t := range in.Target {
		pt, err := herald.ParseTarget(strings.TrimSpace(t))
		if err != nil {
			return nil, invalid(fmt.Sprintf("body.target[%d]", i), herald.ErrorMessage(err), t)
		}
		targets = append(targets, pt)
		a.Targets = append(a.Targets, pt.String())
	}
	ids, unknown, err := s.Store.Resolve(ctx, targets)
	if err != nil {
		return nil, s.problem(ctx, err)
	}
	if len(unknown) > 0 {
		details := make([]error, len(unknown))
		for i, u := range unknown {
			kind := "user"
			if strings.HasPrefix(u, "@@") {
				kind = "group"
			}
			details[i] = &huma.ErrorDetail{Location: "body.target", Message: "no " + kind + " named " + u, Value: u}
		}
		return nil, huma.Error422UnprocessableEntity("unknown targets: "+strings.Join(unknown, ", "), details...)
	}
	a.Recipients = ids
	return a, nil
}

func (s *Server) registerAlerts(a huma.API) {
	tags := []string{"alerts"}
	huma.Register(a, huma.Operation{
		OperationID: "send-alert", Method: http.MethodPost, Path: "/v1/alerts", Tags: tags,
		Summary: "Send an alert",
		Description: "Validates the alert, resolves its targets and answers 202 once the alert is durably in Kafka. " +
			"Delivery is asynchronous. With an Idempotency-Key, a retried request yields the same alert id and no " +
			"second notification.",
		DefaultStatus: http.StatusAccepted,
	}, func(ctx context.Context, in *struct {
		IdempotencyKey string `header:"Idempotency-Key" maxLength:"255" doc:"the same key always yields the same alert id"`
		Body           AlertInput
	}) (*alertAccepted, error) {
		if s.draining.Load() {
			return nil, huma.Error503ServiceUnavailable("shutting down; retry against another instance or later")
		}
		ctx, span := s.Tracer.Start(ctx, "herald.accept", trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("herald.request_id", RequestID(ctx))))
		defer span.End()
		al, err := s.checkAlert(ctx, &in.Body)
		if err != nil {
			return nil, err
		}
		al.CreatedAt = s.Now().UTC()
		if in.IdempotencyKey != "" {
			prev, err := s.Store.AlertByIdempotencyKey(ctx, in.IdempotencyKey)
			if err != nil {
				return nil, s.problem(ctx, err)
			}
			if prev != nil && al.CreatedAt.Sub(prev.CreatedAt) < s.IdempotencyWindow {
				out := &alertAccepted{Location: "/v1/alerts/" + prev.ID, Replayed: "true"}
				out.Body.ID, out.Body.UserCount = prev.ID, prev.UserCount
				return out, nil
			}
			// The same key yields the same id until an alert with it is
			// recorded, so concurrent retries collapse into one alert; after
			// the window a new id is chained from the last one.
			seed := in.IdempotencyKey
			if prev != nil {
				seed += "\x00" + prev.ID
			}
			al.ID = uuid.NewSHA1(idempotencyNamespace, []byte(seed)).String()
			al.IdempotencyKey = in.IdempotencyKey
		} else {
			al.ID = uuid.Must(uuid.NewV7()).String()
		}
		v, err := json.Marshal(al)
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		pctx, cancel := context.WithTimeout(ctx, s.ProduceTimeout)
		defer cancel()
		span.SetAttributes(attribute.String("herald.alert_id", al.ID), attribute.Int("herald.users", len(al.Recipients)))
		rec := &kgo.Record{
			Topic: bus.TopicAlerts, Key: []byte(al.ID), Value: v,
			Headers: []kgo.RecordHeader{
				{Key: bus.HeaderAlertID, Value: []byte(al.ID)},
				{Key: bus.HeaderRequestID, Value: []byte(RequestID(ctx))},
			},
		}
		bus.InjectTrace(ctx, rec)
		err = s.Producer.Produce(pctx, rec)
		if err != nil {
			s.Logger.ErrorContext(ctx, "alert not accepted: broker write failed", "request_id", RequestID(ctx), "err", err)
			return nil, huma.Error503ServiceUnavailable("the alert could not be written to the broker; nothing was accepted, retry")
		}
		s.Logger.InfoContext(ctx, "alert accepted", "request_id", RequestID(ctx), "alert_id", al.ID,
			"users", len(al.Recipients), "severity", al.Severity)
		out := &alertAccepted{Location: "/v1/alerts/" + al.ID}
		out.Body.ID, out.Body.UserCount = al.ID, len(al.Recipients)
		return out, nil
	})
	huma.Register(a, huma.Operation{
		OperationID: "get-alert", Method: http.MethodGet, Path: "/v1/alerts/{id}", Tags: tags,
		Summary: "Get an alert and its deliveries",
		Description: "An alert just accepted is found once the fan-out stage has recorded it (normally within " +
			"milliseconds); until then this answers 404.",
	}, func(ctx context.Context, in *idPath) (*alertBody, error) {
		rec, err := s.Store.Alert(ctx, in.ID)
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		out := alertOutput(rec)
		out.Deliveries = []DeliveryOutput{}
		for _, d := range rec.Deliveries {
			out.Counts[string(d.Status)]++
			out.Deliveries = append(out.Deliveries, DeliveryOutput{ID: d.ID, Recipient: d.Recipient,
				RecipientID: d.RecipientID, Channel: string(d.Channel), Status: string(d.Status), Attempts: d.Attempts,
				LastError: d.LastError, SentAt: d.SentAt, NextAttemptAt: d.NextAttemptAt, DeadLetterID: d.DeadLetterID,
				CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt})
		}
		return &alertBody{Body: out}, nil
	})
	huma.Register(a, huma.Operation{
		OperationID: "list-alerts", Method: http.MethodGet, Path: "/v1/alerts", Tags: tags,
		Summary: "List recent alerts", Description: "Newest first, a page at a time, with delivery counts per status.",
	}, func(ctx context.Context, in *pageQuery) (*alertList, error) {
		cur, err := decodeAlertCursor(in.Cursor)
		if err != nil {
			return nil, err
		}
		recs, err := s.Store.ListAlerts(ctx, cur, in.Limit+1)
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		out := &alertList{}
		out.Body.Alerts = []AlertOutput{}
		if len(recs) > in.Limit {
			last := recs[in.Limit-1]
			out.Body.NextCursor = encodeCursor(strconv.FormatInt(last.CreatedAt.UnixNano(), 10) + ":" + last.ID)
			recs = recs[:in.Limit]
		}
		ids := make([]string, len(recs))
		for i, r := range recs {
			ids[i] = r.ID
		}
		counts, err := s.Store.DeliveryCounts(ctx, ids)
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		for _, r := range recs {
			o := alertOutput(r)
			for st, n := range counts[r.ID] {
				o.Counts[string(st)] = n
			}
			out.Body.Alerts = append(out.Body.Alerts, o)
		}
		return out, nil
	})
}

func decodeAlertCursor(c string) (*store.AlertCursor, error) {
	s, err := decodeCursor(c)
	if err != nil || s == "" {
		return nil, err
	}
	ns, id, ok := strings.Cut(s, ":")
	n, perr := strconv.ParseInt(ns, 10, 64)
	if !ok || perr != nil || !utf8.ValidString(id) {
		return nil, invalid("query.cursor", "not a cursor returned by this API", c)
	}
	return &store.AlertCursor{CreatedAt: time.Unix(0, n), ID: id}, nil
}

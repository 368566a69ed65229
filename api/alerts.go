package api

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
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
	"github.com/heraldproject/herald/rules"
	"github.com/heraldproject/herald/store"
)

// Limits on alert fields.
const (
	maxTargets     = 1000
	maxLabels      = 64
	maxLabelKey    = 128
	maxLabelValue  = 1024
	maxMessageSize = 16 << 10
	maxTitle       = 512
	maxSource      = 256
)

// maxRecordRecipients is Server.MaxRecordRecipients's default.
const maxRecordRecipients = 10_000

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
	FanningOut  bool              `json:"fanningOut,omitempty" doc:"true while deliveries are still being recorded: an alert to many recipients (a big group) is recorded in parts"`
	Counts      map[string]int    `json:"counts" doc:"deliveries per status"`
	Deliveries  []DeliveryOutput  `json:"deliveries,omitempty"`
}

func alertOutput(a *herald.AlertRecord) AlertOutput {
	return AlertOutput{ID: a.ID, Severity: string(a.Severity), Title: a.Title, Message: a.Message, Source: a.Source,
		Labels: a.Labels, Target: a.Targets, Channels: a.Channels, UserCount: a.UserCount, Unreachable: a.Unreachable,
		CreatedAt: a.CreatedAt, StoredAt: a.StoredAt, FanningOut: a.FanningOut, Counts: map[string]int{}}
}

type alertBody struct{ Body AlertOutput }

type alertList struct {
	Body struct {
		Alerts     []AlertOutput `json:"alerts"`
		NextCursor string        `json:"nextCursor,omitempty"`
	}
}

// checkAlert validates an alert posted to /v1/alerts and turns it into the
// record to produce, with its targets resolved.
func (s *Server) checkAlert(ctx context.Context, in *AlertInput) (*herald.Alert, error) {
	loc := func(field string) string { return "body." + field }
	al, targets, err := checkFields(in, loc)
	if err != nil {
		return nil, err
	}
	if al.Recipients, err = s.resolveTargets(ctx, targets, loc("target")); err != nil {
		return nil, err
	}
	return al, nil
}

// checkFields validates an alert's fields, the checks that need no store, and
// turns them into the record to produce (without id, recipients or creation
// time) and the parsed targets. Every ingest path goes through it, so an alert
// is held to the same limits however it arrives. loc names a field of in
// (severity, title, message, labels, channels, target) in the caller's request,
// for the problem's location; lengths are counted as huma counts maxLength
// (in characters), so a path whose input huma has already checked never sees
// a different answer here.
func checkFields(in *AlertInput, loc func(field string) string) (*herald.Alert, []herald.Target, error) {
	sev, err := herald.ParseSeverity(in.Severity)
	if err != nil {
		return nil, nil, invalid(loc("severity"), herald.ErrorMessage(err), in.Severity)
	}
	switch {
	case strings.TrimSpace(in.Message) == "":
		return nil, nil, invalid(loc("message"), "message must not be blank", in.Message)
	case utf8.RuneCountInString(in.Message) > maxMessageSize:
		return nil, nil, invalid(loc("message"), fmt.Sprintf("message is at most %d characters", maxMessageSize), nil)
	case utf8.RuneCountInString(in.Title) > maxTitle:
		return nil, nil, invalid(loc("title"), fmt.Sprintf("title is at most %d characters", maxTitle), in.Title)
	case utf8.RuneCountInString(in.Source) > maxSource:
		return nil, nil, invalid(loc("source"), fmt.Sprintf("source is at most %d characters", maxSource), in.Source)
	case len(in.Labels) > maxLabels:
		return nil, nil, invalid(loc("labels"), fmt.Sprintf("at most %d labels", maxLabels), len(in.Labels))
	}
	for k, v := range in.Labels {
		if k == "" || len(k) > maxLabelKey || len(v) > maxLabelValue {
			return nil, nil, invalid(loc("labels")+"."+k, fmt.Sprintf("label keys must be 1-%d bytes and values at most %d", maxLabelKey, maxLabelValue), nil)
		}
	}
	a := &herald.Alert{Severity: sev, Title: in.Title, Message: in.Message, Source: in.Source, Labels: in.Labels}
	for i, c := range in.Channels {
		ch, err := herald.ParseChannel(c)
		if err != nil {
			return nil, nil, invalid(fmt.Sprintf("%s[%d]", loc("channels"), i), herald.ErrorMessage(err), c)
		}
		if slices.Contains(a.Channels, ch) {
			return nil, nil, invalid(fmt.Sprintf("%s[%d]", loc("channels"), i), "channel listed twice", c)
		}
		a.Channels = append(a.Channels, ch)
	}
	switch {
	case len(in.Target) == 0:
		return nil, nil, invalid(loc("target"), "at least one target (@user or @@group) is needed", nil)
	case len(in.Target) > maxTargets:
		return nil, nil, invalid(loc("target"), fmt.Sprintf("at most %d targets", maxTargets), len(in.Target))
	}
	targets := make([]herald.Target, 0, len(in.Target))
	for i, t := range in.Target {
		pt, err := herald.ParseTarget(strings.TrimSpace(t))
		if err != nil {
			return nil, nil, invalid(fmt.Sprintf("%s[%d]", loc("target"), i), herald.ErrorMessage(err), t)
		}
		targets = append(targets, pt)
		a.Targets = append(a.Targets, pt.String())
	}
	return a, targets, nil
}

// resolveTargets returns the ids of the users the targets name. Targets that
// name no user or group are a 422 listing each, located at location.
func (s *Server) resolveTargets(ctx context.Context, targets []herald.Target, location string) ([]string, error) {
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
			details[i] = &huma.ErrorDetail{Location: location, Message: "no " + kind + " named " + u, Value: u}
		}
		return nil, huma.Error422UnprocessableEntity("unknown targets: "+strings.Join(unknown, ", "), details...)
	}
	return ids, nil
}

// replays reports whether prev, the newest alert recorded with an idempotency
// key, still answers for that key at now (it is within the idempotency
// window), so nothing new may be produced for it.
func (s *Server) replays(prev *store.IdempotentAlert, now time.Time) bool {
	return prev != nil && now.Sub(prev.CreatedAt) < s.IdempotencyWindow
}

// sameAlert reports whether al, a request's alert, is a retry of stored, an
// alert recorded with the same Idempotency-Key: the same message, severity,
// title, source and labels, and the same targets and channels in any order
// (they are sets). Recipients are not compared: a retry stays a retry when a
// group it names has changed since.
func sameAlert(stored, al *herald.Alert) bool {
	return stored.Message == al.Message && stored.Severity == al.Severity && stored.Title == al.Title &&
		stored.Source == al.Source && maps.Equal(stored.Labels, al.Labels) &&
		sameSet(stored.Targets, al.Targets) && sameSet(stored.Channels, al.Channels)
}

// sameSet reports whether a and b hold the same values, in any order and
// however often.
func sameSet[T cmp.Ordered](a, b []T) bool {
	return slices.Equal(asSet(a), asSet(b))
}

// asSet is vs's values sorted, each once: two lists hold the same values
// exactly when their sets are equal.
func asSet[T cmp.Ordered](vs []T) []T {
	return slices.Compact(slices.Sorted(slices.Values(vs)))
}

// keyReused is the answer to a request whose Idempotency-Key was used within
// the idempotency window for another alert (the IETF draft on the header
// answers 422): the new alert would otherwise be taken for a retry and
// never sent. It does not say which field differs: a token that may only
// send alerts must not learn another sender's alert field by field.
func keyReused(key, id string) error {
	return huma.Error422UnprocessableEntity("Idempotency-Key reused for a different alert",
		&huma.ErrorDetail{Location: "header.Idempotency-Key", Value: key,
			Message: fmt.Sprintf("alert %s was accepted with this key and differs from this one (message, severity, title, "+
				"source, labels, targets or channels); a retry must send the same alert, and a new alert needs a new key", id)})
}

// idempotentID is the alert id for an idempotency key. The same key yields
// the same id until an alert with it is recorded, so concurrent retries
// collapse into one alert (the fan-out stage stores an id once); after the
// window, prev (the last alert recorded with the key) chains a new id.
func idempotentID(key string, prev *store.IdempotentAlert) string {
	return store.IdempotentAlertID(key, prev)
}

// keyedAlertID is the id of al, sent to POST /v1/alerts with
// Idempotency-Key key: derived from the key and al's content (what
// sameAlert compares), so retries of one alert, however spelled, collapse
// into one alert, while two different alerts sent with one key before
// either is recorded (the lookup by key cannot see them yet) get two ids
// and are both sent. With the key alone the second would be stored as a
// retry of the first and never sent, after a 202.
func keyedAlertID(key string, al *herald.Alert, prev *store.IdempotentAlert) string {
	return idempotentID(key+"\x00"+alertDigest(al), prev)
}

// alertDigest is a hex SHA-256 of what sameAlert compares: equal for two
// alerts exactly when sameAlert holds (targets and channels as sets, labels
// in key order).
func alertDigest(al *herald.Alert) string {
	h := sha256.New()
	field := func(s string) {
		var n [binary.MaxVarintLen64]byte
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(s)))])
		h.Write([]byte(s))
	}
	field(al.Message)
	field(string(al.Severity))
	field(al.Title)
	field(al.Source)
	keys := slices.Sorted(maps.Keys(al.Labels))
	field(strconv.Itoa(len(keys)))
	for _, k := range keys {
		field(k)
		field(al.Labels[k])
	}
	targets, channels := asSet(al.Targets), asSet(al.Channels)
	field(strconv.Itoa(len(targets)))
	for _, t := range targets {
		field(t)
	}
	field(strconv.Itoa(len(channels)))
	for _, c := range channels {
		field(string(c))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// produceAlerts writes each alert as one record on herald.alerts, keyed by
// its id, and returns once the broker has acknowledged every one. On failure
// it returns the 503 to answer; some records may have been written, which is
// harmless only when the alerts' ids are derived from idempotency keys (a
// retry then yields the same ids), so callers producing several alerts at once
// must derive them.
func (s *Server) produceAlerts(ctx context.Context, als []*herald.Alert) error {
	recs := make([]*kgo.Record, 0, len(als))
	limit := cmp.Or(s.MaxRecordRecipients, maxRecordRecipients)
	for _, al := range als {
		enc := al
		if len(al.Recipients) > limit {
			targetsOnly := *al
			targetsOnly.Recipients = nil
			enc = &targetsOnly
		}
		v, err := appendAlertRecord(make([]byte, 0, 512), enc)
		if err != nil {
			return s.problem(ctx, fmt.Errorf("api: encode alert %s: %w", al.ID, err))
		}
		rec := &kgo.Record{
			Topic: bus.TopicAlerts, Key: al.Stream(), Value: v,
			Headers: []kgo.RecordHeader{
				{Key: bus.HeaderAlertID, Value: []byte(al.ID)},
				{Key: bus.HeaderRequestID, Value: []byte(RequestID(ctx))},
			},
		}
		bus.InjectTrace(ctx, rec)
		recs = append(recs, rec)
	}
	pctx, cancel := context.WithTimeout(ctx, s.ProduceTimeout)
	defer cancel()
	if err := s.Producer.Produce(pctx, recs...); err != nil {
		s.Logger.ErrorContext(ctx, "alerts not accepted: broker write failed", "request_id", RequestID(ctx),
			"alerts", len(als), "err", err)
		if len(als) == 1 {
			return huma.Error503ServiceUnavailable("the alert could not be written to the broker; nothing was accepted, retry")
		}
		return huma.Error503ServiceUnavailable("the alerts could not all be written to the broker; retry the whole request " +
			"(alerts already written keep their ids and are not delivered twice)")
	}
	return nil
}

func (s *Server) registerAlerts(a huma.API) {
	tags := []string{"alerts"}
	huma.Register(a, huma.Operation{
		OperationID: "send-alert", Method: http.MethodPost, Path: "/v1/alerts", Tags: tags,
		Summary: "Send an alert",
		Description: "Validates the alert, resolves its targets and answers 202 once the alert is durably in Kafka. " +
			"Delivery is asynchronous. With an Idempotency-Key, a retried request yields the same alert id and no " +
			"second notification; another alert with a key already used within the idempotency window is a 422.",
		DefaultStatus: http.StatusAccepted,
	}, func(ctx context.Context, in *struct {
		IdempotencyKey string `header:"Idempotency-Key" maxLength:"255" doc:"a retry of the same alert with the same key yields its id (and nothing new) within the idempotency window; reusing the key for another alert there is a 422"`
		Body           AlertInput
	}) (*alertAccepted, error) {
		ctx, span := s.startAccept(ctx)
		defer span.End()
		al, replay, err := s.prepareAlert(ctx, in.IdempotencyKey, &in.Body)
		if err != nil || replay != nil {
			return replay, err
		}
		return s.produceAccepted(ctx, al)
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

// startAccept starts the herald.accept span of an alert request.
func (s *Server) startAccept(ctx context.Context, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	return s.Tracer.Start(ctx, "herald.accept", append(opts, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("herald.request_id", RequestID(ctx))))...)
}

// prepareAlert checks an alert sent to POST /v1/alerts with Idempotency-Key
// key, resolves its targets, and gives it an id. It produces nothing, so a
// caller may run it again. An earlier alert with the same key within the
// idempotency window comes back as the answer to give (replay) instead.
func (s *Server) prepareAlert(ctx context.Context, key string, in *AlertInput) (al *herald.Alert, replay *alertAccepted, err error) {
	if s.draining.Load() {
		return nil, nil, huma.Error503ServiceUnavailable("shutting down; retry against another instance or later")
	}
	if strings.HasPrefix(key, "alertmanager:") {
		// Reserved for /v1/integrations/alertmanager, so a client cannot
		// pre-empt (and so silence) an Alertmanager notification.
		return nil, nil, invalid("header.Idempotency-Key", `must not start with "alertmanager:" (reserved for the Alertmanager integration)`, nil)
	}
	if strings.HasPrefix(key, eventKeyPrefix) || strings.HasPrefix(key, s3KeyPrefix) ||
		strings.HasPrefix(key, rules.LogKeyPrefix) {
		// Reserved for alerts made by rules (POST /v1/events, S3, logs).
		return nil, nil, invalid("header.Idempotency-Key", `must not start with "event:", "s3:" or "log:" (reserved for alerts made by rules)`, nil)
	}
	if al, err = s.checkAlert(ctx, in); err != nil {
		return nil, nil, err
	}
	al.CreatedAt = s.Now().UTC()
	if key != "" {
		prev, err := s.Store.AlertByIdempotencyKey(ctx, key)
		if err != nil {
			return nil, nil, s.problem(ctx, err)
		}
		if s.replays(prev, al.CreatedAt) {
			if prev.Alert != nil && !sameAlert(prev.Alert, al) {
				// Another alert was sent with the key; this may still be a
				// retry of an older one (two alerts raced with the key,
				// neither recorded, and both were accepted).
				if prev, err = s.olderRetried(ctx, key, al, prev); err != nil {
					return nil, nil, err
				}
			}
			out := &alertAccepted{Location: "/v1/alerts/" + prev.ID, Replayed: "true"}
			out.Body.ID, out.Body.UserCount = prev.ID, prev.UserCount
			return nil, out, nil
		}
		al.ID = keyedAlertID(key, al, prev)
		al.IdempotencyKey = key
	} else {
		al.ID = uuid.Must(uuid.NewV7()).String()
	}
	return al, nil, nil
}

// maxKeyedAlerts bounds the alerts olderRetried compares a request with: as
// many alerts sent with one key within the window as a misbehaving client
// could race past the lookup by key (each costs a row read on a 422).
const maxKeyedAlerts = 32

// olderRetried is the alert that al, sent with Idempotency-Key key, retries
// when newest, the newest alert recorded with the key, is another: an older
// one with the key within the idempotency window and the same content (both
// accepted because they raced past the lookup), or else the 422 for a
// reused key, naming newest.
func (s *Server) olderRetried(ctx context.Context, key string, al *herald.Alert, newest *store.IdempotentAlert) (*store.IdempotentAlert, error) {
	as, err := s.Store.AlertsWithIdempotencyKey(ctx, key, al.CreatedAt.Add(-s.IdempotencyWindow), maxKeyedAlerts)
	if err != nil {
		return nil, s.problem(ctx, err)
	}
	for _, a := range as {
		if s.replays(a, al.CreatedAt) && sameAlert(a.Alert, al) {
			return a, nil
		}
	}
	return nil, keyReused(key, newest.ID)
}

// produceAccepted produces al, prepared by prepareAlert, and gives the
// answer to a POST /v1/alerts that sent it.
func (s *Server) produceAccepted(ctx context.Context, al *herald.Alert) (*alertAccepted, error) {
	trace.SpanFromContext(ctx).SetAttributes(attribute.String("herald.alert_id", al.ID), attribute.Int("herald.users", len(al.Recipients)))
	if err := s.produceAlerts(ctx, []*herald.Alert{al}); err != nil {
		return nil, err
	}
	// Debug: the store keeps the alert, and a line per alert cost 1-2% of
	// CPU.
	if s.Logger.Enabled(ctx, slog.LevelDebug) {
		s.Logger.DebugContext(ctx, "alert accepted", "request_id", RequestID(ctx), "alert_id", al.ID,
			"users", len(al.Recipients), "severity", al.Severity)
	}
	out := &alertAccepted{Location: "/v1/alerts/" + al.ID}
	out.Body.ID, out.Body.UserCount = al.ID, len(al.Recipients)
	return out, nil
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

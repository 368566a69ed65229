package api

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/danielgtaylor/huma/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/store"
)

// DefaultAlertmanagerMaxAlerts is the most alerts one Alertmanager webhook
// payload may carry when Server.AlertmanagerMaxAlerts is not set.
const DefaultAlertmanagerMaxAlerts = 1000

// Where Herald finds what it needs in an Alertmanager alert.
const (
	// amTargetLabel names the targets of an alert when the webhook URL has
	// no target parameter: comma-separated @user and @@group.
	amTargetLabel = "herald_target"
	// amURLLabel is the label an alert's generatorURL is copied to.
	amURLLabel = "generatorURL"
	// amSource is the source of every alert from Alertmanager.
	amSource = "alertmanager"
	// amResolvedPrefix starts the title of a resolution notice.
	amResolvedPrefix = "[RESOLVED] "
	// amDefaultSeverity is the severity of an alert whose severity label is
	// missing or means nothing to Herald.
	amDefaultSeverity = herald.SeverityWarning
)

// amSeverities maps the values Alertmanager users put in a severity label
// (lower-cased) onto Herald's severities, beyond the names and aliases
// herald.ParseSeverity already knows. Anything else is amDefaultSeverity.
var amSeverities = map[string]herald.Severity{
	"page": herald.SeverityCritical, "emergency": herald.SeverityCritical, "emerg": herald.SeverityCritical,
	"alert": herald.SeverityCritical, "crit": herald.SeverityCritical, "disaster": herald.SeverityCritical,
	"p1":  herald.SeverityCritical,
	"err": herald.SeverityError, "major": herald.SeverityError, "high": herald.SeverityError, "p2": herald.SeverityError,
	"minor": herald.SeverityWarning, "medium": herald.SeverityWarning, "average": herald.SeverityWarning,
	"p3":     herald.SeverityWarning,
	"notice": herald.SeverityInfo, "informational": herald.SeverityInfo, "low": herald.SeverityInfo,
	"none": herald.SeverityInfo, "ok": herald.SeverityInfo, "p4": herald.SeverityInfo, "p5": herald.SeverityInfo,
}

// AlertmanagerPayload is the body Prometheus Alertmanager's webhook receiver
// (webhook_config) posts, version 4. Fields Herald does not know are ignored,
// so payloads from newer Alertmanagers that add fields are read too. (Grafana's
// Alertmanager-style payloads say version "1" and are refused: untested.)
type AlertmanagerPayload struct {
	_                 struct{}            `json:"-" additionalProperties:"true"`
	Version           string              `json:"version,omitempty" maxLength:"16" doc:"the payload version; Herald reads \"4\" (omitted: taken as 4)"`
	GroupKey          string              `json:"groupKey,omitempty" doc:"the alert group; logged"`
	TruncatedAlerts   uint64              `json:"truncatedAlerts,omitempty" doc:"alerts Alertmanager left out of this payload (webhook_config max_alerts)"`
	Status            string              `json:"status,omitempty" doc:"firing or resolved: the group's status (each alert has its own)"`
	Receiver          string              `json:"receiver,omitempty" doc:"the Alertmanager receiver; logged"`
	GroupLabels       map[string]string   `json:"groupLabels,omitempty"`
	CommonLabels      map[string]string   `json:"commonLabels,omitempty"`
	CommonAnnotations map[string]string   `json:"commonAnnotations,omitempty"`
	ExternalURL       string              `json:"externalURL,omitempty"`
	Alerts            []AlertmanagerAlert `json:"alerts" nullable:"false" doc:"each becomes one Herald alert"`
}

// AlertmanagerAlert is one alert of an Alertmanager webhook payload.
type AlertmanagerAlert struct {
	_            struct{}          `json:"-" additionalProperties:"true"`
	Status       string            `json:"status" enum:"firing,resolved"`
	Labels       map[string]string `json:"labels,omitempty" doc:"copied to the Herald alert; severity, alertname and herald_target are read"`
	Annotations  map[string]string `json:"annotations,omitempty" doc:"summary and description are read"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt,omitzero"`
	GeneratorURL string            `json:"generatorURL,omitempty" doc:"copied to the label generatorURL when it fits"`
	Fingerprint  string            `json:"fingerprint,omitempty" maxLength:"128" doc:"identifies the alert; when absent Herald hashes the labels"`
}

type alertmanagerInput struct {
	Target   []string `query:"target,explode" maxItems:"1000" doc:"who is told: @user or @@group, repeatable or comma-separated; without it each alert's herald_target label says"`
	Resolved string   `query:"resolved" enum:"notify,ignore" default:"notify" doc:"notify: resolved alerts are delivered as [RESOLVED] notices of severity info; ignore: they are dropped and counted in ignored"`
	Body     AlertmanagerPayload
}

// AlertmanagerResult says what became of one alert of a payload.
type AlertmanagerResult struct {
	ID          string   `json:"id" doc:"the Herald alert id; GET /v1/alerts/{id} shows its deliveries"`
	Fingerprint string   `json:"fingerprint" doc:"the alert's fingerprint (or the hash of its labels Herald used)"`
	Status      string   `json:"status" doc:"firing or resolved"`
	UserCount   int      `json:"userCount" doc:"distinct users the targets resolved to"`
	Replayed    bool     `json:"replayed,omitempty" doc:"true when this alert (same fingerprint, status, start and targets) was accepted before, within idempotency.window: nobody is told again"`
	Notes       []string `json:"notes,omitempty" doc:"what Herald left out of this alert, and why"`
}

type alertmanagerAccepted struct {
	Body struct {
		Accepted  int                  `json:"accepted" doc:"alerts accepted, including those accepted before (replayed)"`
		Ignored   int                  `json:"ignored" doc:"resolved alerts dropped because of resolved=ignore"`
		Truncated uint64               `json:"truncated,omitempty" doc:"alerts Alertmanager left out of the payload (its truncatedAlerts): Herald never saw them"`
		Alerts    []AlertmanagerResult `json:"alerts"`
	}
}

// amPlanned is an alert of a payload, checked and resolved, waiting for its
// id.
type amPlanned struct {
	alert  *herald.Alert
	result AlertmanagerResult
}

func (s *Server) registerAlertmanager(a huma.API) {
	huma.Register(a, huma.Operation{
		OperationID: "alertmanager-webhook", Method: http.MethodPost, Path: "/v1/integrations/alertmanager",
		Tags: []string{"integrations"}, Summary: "Receive a Prometheus Alertmanager webhook",
		Description: "Point an Alertmanager webhook_config at this URL. Each alert of the payload becomes one Herald " +
			"alert (source alertmanager; severity from the severity label; title from the summary annotation or the " +
			"alertname label; message from the description annotation), told to the target query parameters or, " +
			"without them, to each alert's herald_target label. The whole payload is checked before anything is " +
			"accepted: one bad alert rejects the request and nothing is produced. An alert already accepted with the " +
			"same fingerprint, status, start and targets within idempotency.window is not told again, so " +
			"Alertmanager's retries and repeat notifications notify once.",
		DefaultStatus: http.StatusAccepted,
	}, s.receiveAlertmanager)
}

func (s *Server) receiveAlertmanager(ctx context.Context, in *alertmanagerInput) (*alertmanagerAccepted, error) {
	if s.draining.Load() {
		return nil, huma.Error503ServiceUnavailable("shutting down; retry against another instance or later")
	}
	ctx, span := s.Tracer.Start(ctx, "herald.accept", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("herald.request_id", RequestID(ctx)),
			attribute.String("herald.source", amSource)))
	defer span.End()
	p := &in.Body
	if err := s.checkAlertmanagerPayload(p); err != nil {
		return nil, err
	}
	query := splitTargets(in.Target)
	if len(in.Target) > 0 && len(query) == 0 {
		return nil, invalid("query.target", "target is empty: give @user or @@group", nil)
	}
	b := &amBatch{s: s, query: query, resolved: map[string][]string{}}
	var out alertmanagerAccepted
	out.Body.Truncated = p.TruncatedAlerts
	out.Body.Alerts = []AlertmanagerResult{}
	var planned []*amPlanned
	for i := range p.Alerts {
		am := &p.Alerts[i]
		if am.Status == "resolved" && in.Resolved == "ignore" {
			out.Body.Ignored++
			continue
		}
		pl, err := b.plan(ctx, i, am)
		if err != nil {
			return nil, err
		}
		planned = append(planned, pl)
	}
	now := s.Now().UTC()
	produce, err := s.assignAlertmanagerIDs(ctx, planned, now)
	if err != nil {
		return nil, err
	}
	span.SetAttributes(attribute.Int("herald.alerts", len(planned)), attribute.Int("herald.produced", len(produce)))
	if len(produce) > 0 {
		if err := s.produceAlerts(ctx, produce); err != nil {
			return nil, err
		}
	}
	s.Metrics.Accepted("alert", len(produce))
	replayed := 0
	for _, pl := range planned {
		out.Body.Alerts = append(out.Body.Alerts, pl.result)
		if pl.result.Replayed {
			replayed++
		}
	}
	out.Body.Accepted = len(planned)
	log := s.Logger.With("request_id", RequestID(ctx), "receiver", clip(p.Receiver), "group_key", clip(p.GroupKey))
	log.InfoContext(ctx, "alertmanager payload accepted", "alerts", len(p.Alerts), "produced", len(produce),
		"replayed", replayed, "ignored", out.Body.Ignored, "truncated", p.TruncatedAlerts)
	if p.TruncatedAlerts > 0 {
		log.WarnContext(ctx, "alertmanager left alerts out of its payload (webhook_config max_alerts); Herald never saw them",
			"truncated", p.TruncatedAlerts)
	}
	return &out, nil
}

// checkAlertmanagerPayload checks what applies to the payload as a whole:
// its version and how many alerts it carries.
func (s *Server) checkAlertmanagerPayload(p *AlertmanagerPayload) error {
	switch {
	case p.Version != "" && p.Version != "4":
		return invalid("body.version", fmt.Sprintf("payload version %q is not supported: Herald reads Alertmanager's "+
			"version 4", p.Version), p.Version)
	case len(p.Alerts) == 0:
		return invalid("body.alerts", "the payload has no alerts", nil)
	case len(p.Alerts) > s.AlertmanagerMaxAlerts:
		return huma.Error413RequestEntityTooLarge(
			fmt.Sprintf("%d alerts in one payload; the limit is %d (alertmanager.maxAlerts): set max_alerts in the "+
				"webhook_config", len(p.Alerts), s.AlertmanagerMaxAlerts),
			&huma.ErrorDetail{Location: "body.alerts", Message: fmt.Sprintf("at most %d alerts", s.AlertmanagerMaxAlerts),
				Value: len(p.Alerts)})
	}
	return nil
}

// splitTargets reads target lists that may be repeated and comma-separated
// ("@a,@@b"), dropping blanks. Names cannot hold commas, so nothing is lost.
func splitTargets(lists ...[]string) []string {
	var out []string
	for _, list := range lists {
		for _, t := range list {
			for part := range strings.SplitSeq(t, ",") {
				if part = strings.TrimSpace(part); part != "" {
					out = append(out, part)
				}
			}
		}
	}
	return out
}

// clip shortens a caller's string for a log line or an error message.
func clip(s string) string {
	const most = 256
	if len(s) <= most {
		return s
	}
	return strings.ToValidUTF8(s[:most], "") + "…"
}

// assignAlertmanagerIDs gives each planned alert its id, derived from its
// idempotency key exactly as an Idempotency-Key header would be (see
// assignKeyedIDs).
func (s *Server) assignAlertmanagerIDs(ctx context.Context, planned []*amPlanned, now time.Time) ([]*herald.Alert, error) {
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

// assignKeyedIDs gives each alert its id from its idempotency key, as an
// Idempotency-Key header would: an alert accepted with the key within the
// window is reported with that earlier alert (prev) and nothing is produced
// for it; any other gets its id (reported with prev nil). It returns the
// alerts to produce, each once (a request listing one alert twice produces
// it once).
func (s *Server) assignKeyedIDs(ctx context.Context, alerts []*herald.Alert, now time.Time,
	report func(i int, prev *store.IdempotentAlert)) ([]*herald.Alert, error) {
	if len(alerts) == 0 {
		return nil, nil
	}
	keys := make([]string, len(alerts))
	for i, al := range alerts {
		keys[i] = al.IdempotencyKey
	}
	prevs, err := s.Store.AlertsByIdempotencyKeys(ctx, keys)
	if err != nil {
		return nil, s.problem(ctx, err)
	}
	var produce []*herald.Alert
	seen := map[string]bool{}
	for i, al := range alerts {
		if prev := prevs[al.IdempotencyKey]; s.replays(prev, now) {
			report(i, prev)
			continue
		}
		al.ID = idempotentID(al.IdempotencyKey, prevs[al.IdempotencyKey])
		al.CreatedAt = now
		report(i, nil)
		if !seen[al.ID] {
			seen[al.ID] = true
			produce = append(produce, al)
		}
	}
	return produce, nil
}

// amBatch turns the alerts of one payload into Herald alerts, resolving each
// distinct target list once.
type amBatch struct {
	s        *Server
	query    []string            // targets from the URL; empty: from labels
	resolved map[string][]string // canonical targets -> user ids
}

// plan checks alert i and turns it into the Herald alert to produce (without
// id), with its idempotency key. Every problem is located in the payload
// (body.alerts[i]...) or the query (query.target).
func (b *amBatch) plan(ctx context.Context, i int, am *AlertmanagerAlert) (*amPlanned, error) {
	at := fmt.Sprintf("body.alerts[%d]", i)
	targets, targetLoc := b.query, "query.target"
	if len(targets) == 0 {
		targetLoc = at + ".labels." + amTargetLabel
		targets = splitTargets([]string{am.Labels[amTargetLabel]})
		if len(targets) == 0 {
			return nil, invalid(targetLoc, "no target for this alert: add ?target=@user or ?target=@@group to the "+
				"webhook URL in alertmanager.yml, or give the alert a "+amTargetLabel+" label (comma-separated @user and @@group)", nil)
		}
	}
	fingerprint := am.Fingerprint
	if fingerprint == "" {
		fingerprint = labelsHash(am.Labels)
	}
	in := &AlertInput{Target: targets, Severity: string(amSeverity(am.Labels["severity"])), Source: amSource}
	// Oversized content is clipped, not refused: Alertmanager does not retry
	// a 4xx, so refusing would lose every alert of the group. Each clip is
	// said in the answer's notes.
	labels, notes := amClipLabels(am.Labels)
	clipped := *am
	clipped.Labels = labels
	var urlNotes []string
	in.Labels, urlNotes = amLabels(&clipped)
	notes = append(notes, urlNotes...)
	titleLoc, messageLoc := at+".labels.alertname", at+".annotations.description"
	switch {
	case am.Annotations["summary"] != "":
		in.Title, titleLoc = am.Annotations["summary"], at+".annotations.summary"
	default:
		in.Title = am.Labels["alertname"]
	}
	switch {
	case strings.TrimSpace(am.Annotations["description"]) != "":
		in.Message = am.Annotations["description"]
	case strings.TrimSpace(am.Annotations["summary"]) != "":
		in.Message, messageLoc = am.Annotations["summary"], at+".annotations.summary"
	case strings.TrimSpace(am.Labels["alertname"]) != "":
		in.Message, messageLoc = am.Labels["alertname"], at+".labels.alertname"
	default:
		return nil, invalid(messageLoc, "the alert says nothing Herald can tell anyone: give it a description or "+
			"summary annotation, or an alertname label", nil)
	}
	titleMax := maxTitle
	if am.Status == "resolved" {
		titleMax -= len(amResolvedPrefix)
	}
	if t, ok := clipRunes(in.Title, titleMax); ok {
		notes = append(notes, fmt.Sprintf("%s clipped from %d to %d characters", titleLoc, utf8.RuneCountInString(in.Title), titleMax))
		in.Title = t
	}
	if m, ok := clipRunes(in.Message, maxMessageSize); ok {
		notes = append(notes, fmt.Sprintf("%s clipped from %d to %d characters", messageLoc, utf8.RuneCountInString(in.Message), maxMessageSize))
		in.Message = m
	}
	if am.Status == "resolved" {
		in.Title, in.Severity = strings.TrimSpace(amResolvedPrefix+in.Title), string(herald.SeverityInfo)
	}
	loc := func(field string) string {
		switch field {
		case "severity":
			return at + ".labels.severity"
		case "title":
			return titleLoc
		case "message":
			return messageLoc
		case "labels":
			return at + ".labels"
		case "target":
			return targetLoc
		}
		return at
	}
	al, parsed, err := checkFields(in, loc)
	if err != nil {
		return nil, err
	}
	canon := slices.Clone(al.Targets)
	slices.Sort(canon)
	canon = slices.Compact(canon)
	key := strings.Join(canon, ",")
	ids, ok := b.resolved[key]
	if !ok {
		if ids, err = b.s.resolveTargets(ctx, parsed, targetLoc); err != nil {
			return nil, err
		}
		b.resolved[key] = ids
	}
	al.Recipients = ids
	al.IdempotencyKey = amIdempotencyKey(fingerprint, am.Status, am.StartsAt, key)
	return &amPlanned{alert: al, result: AlertmanagerResult{Fingerprint: fingerprint, Status: am.Status,
		UserCount: len(ids), Notes: notes}}, nil
}

// amSeverity maps an Alertmanager severity label onto Herald's severities:
// Herald's own names and aliases, then the values in amSeverities, then
// amDefaultSeverity for anything else (a missing label included). It never
// rejects: an alert is worth delivering whatever its label says.
func amSeverity(label string) herald.Severity {
	if sev, err := herald.ParseSeverity(label); err == nil {
		return sev
	}
	if sev, ok := amSeverities[strings.ToLower(strings.TrimSpace(label))]; ok {
		return sev
	}
	return amDefaultSeverity
}

// amLabels copies an alert's labels and adds its generatorURL as the label
// generatorURL when that fits the label limits; when it does not, the notes
// say it was left out. Labels beyond the limits are left for checkFields to
// reject.
func amLabels(am *AlertmanagerAlert) (map[string]string, []string) {
	labels := maps.Clone(am.Labels)
	if am.GeneratorURL == "" {
		return labels, nil
	}
	if labels == nil {
		labels = map[string]string{}
	}
	_, taken := labels[amURLLabel]
	switch {
	case taken:
		return labels, []string{fmt.Sprintf("generatorURL not copied: the alert has a label %s of its own", amURLLabel)}
	case len(am.GeneratorURL) > maxLabelValue:
		return labels, []string{fmt.Sprintf("generatorURL not copied: it is %d bytes and label values are at most %d",
			len(am.GeneratorURL), maxLabelValue)}
	case len(labels) >= maxLabels:
		return labels, []string{fmt.Sprintf("generatorURL not copied: the alert already has %d labels, the most an alert may have",
			len(labels))}
	}
	labels[amURLLabel] = am.GeneratorURL
	return labels, nil
}

// amKeepLabels are kept first when an alert has more labels than Herald
// takes.
var amKeepLabels = []string{"alertname", "severity", amTargetLabel}

// amClipLabels fits an alert's labels into the alert API's limits: a label
// whose name is empty or too long is left out, a value too long is clipped,
// and beyond maxLabels the rest (after amKeepLabels, by name) are left out.
// Each change is returned as a note.
func amClipLabels(in map[string]string) (map[string]string, []string) {
	if in == nil {
		return nil, nil
	}
	var notes []string
	out := make(map[string]string, len(in))
	// amKeepLabels first, then the rest by name.
	rank := func(k string) int {
		if i := slices.Index(amKeepLabels, k); i >= 0 {
			return i
		}
		return len(amKeepLabels)
	}
	names := slices.Sorted(maps.Keys(in))
	slices.SortStableFunc(names, func(a, b string) int { return cmp.Compare(rank(a), rank(b)) })
	var dropped []string
	for _, k := range names {
		v := in[k]
		switch {
		case k == "" || len(k) > maxLabelKey:
			notes = append(notes, fmt.Sprintf("label %q left out: names are 1-%d bytes", clip(k), maxLabelKey))
			continue
		case len(out) >= maxLabels:
			dropped = append(dropped, k)
			continue
		case len(v) > maxLabelValue:
			notes = append(notes, fmt.Sprintf("label %s clipped from %d to at most %d bytes", k, len(v), maxLabelValue))
			v = clipBytes(v, maxLabelValue)
		}
		out[k] = v
	}
	if len(dropped) > 0 {
		notes = append(notes, fmt.Sprintf("%d labels left out (an alert has at most %d): %s", len(dropped), maxLabels,
			clip(strings.Join(dropped, ","))))
	}
	return out, notes
}

// clipRunes shortens s to at most n characters, the last one "…", and
// reports whether it did.
func clipRunes(s string, n int) (string, bool) {
	if utf8.RuneCountInString(s) <= n {
		return s, false
	}
	r := []rune(s)
	return string(r[:n-1]) + "…", true
}

// clipBytes shortens s to at most n bytes on a character boundary, ending in
// "…".
func clipBytes(s string, n int) string {
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// labelsHash stands in for a missing fingerprint: a hash of the sorted labels
// (16 hex digits, like Alertmanager's own fingerprints).
func labelsHash(labels map[string]string) string {
	h := sha256.New()
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		h.Write([]byte(k))
		h.Write([]byte{0xff})
		h.Write([]byte(labels[k]))
		h.Write([]byte{0xff})
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// amIdempotencyKey identifies one notification about one alert: its
// fingerprint, status and start, and whom it is for (targets, canonical). A
// retry or repeat of the same notification has the same key; the alert firing
// again after it resolved has a new start and so a new key; the same alert
// sent to other targets (another webhook_config) is a notification of its own.
func amIdempotencyKey(fingerprint, status string, startsAt time.Time, targets string) string {
	th := sha256.Sum256([]byte(targets))
	return "alertmanager:" + fingerprint + ":" + status + ":" + startsAt.UTC().Format(time.RFC3339Nano) + ":" +
		hex.EncodeToString(th[:8])
}

package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/event"
	"github.com/heraldproject/herald/logs"
	"github.com/heraldproject/herald/rules"
)

// Limits on rules.
const (
	maxRules       = 1000
	maxRuleTargets = 100
)

// EventInput is an event as a rule sees it, for examples and dry runs.
type EventInput struct {
	ID      string         `json:"id,omitempty" maxLength:"256"`
	Type    string         `json:"type" maxLength:"256"`
	Source  string         `json:"source,omitempty" maxLength:"256"`
	Subject string         `json:"subject,omitempty" maxLength:"256"`
	Time    string         `json:"time,omitempty" maxLength:"64"`
	Data    map[string]any `json:"data,omitempty"`
}

func (e *EventInput) event() *herald.Event {
	data := e.Data
	if data == nil {
		data = map[string]any{}
	}
	return &herald.Event{ID: e.ID, Type: e.Type, Source: e.Source, Subject: e.Subject, Time: e.Time, Data: data}
}

// RuleInput creates (or, as a whole, replaces) a rule.
type RuleInput struct {
	Name      string       `json:"name" pattern:"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$" doc:"unique"`
	Source    string       `json:"source" enum:"event,s3,log" doc:"event: POST /v1/events; s3: POST /v1/integrations/s3; log: log records (POST /v1/logs, OTLP), evaluated by the logs role"`
	Match     string       `json:"match" minLength:"1" maxLength:"4096" doc:"an expr-lang expression over the event that yields a bool, e.g. type == \"order.created\" && data.total > 100; S3 rules also see key, bucket, size, eTag, eventName, eventTime, region; log rules see id, time, service, level, levelRank (debug 0, info 1, warning 2, error 3, critical 4), message, attributes, traceId, spanId, e.g. service == \"checkout\" && levelRank >= 3"`
	Targets   []string     `json:"targets" minItems:"1" maxItems:"100" doc:"@user or @@group"`
	Severity  string       `json:"severity" maxLength:"16" doc:"info, warning, error or critical (aliases accepted)"`
	Title     string       `json:"title,omitempty" maxLength:"4096" doc:"a Go text/template over the event, e.g. Order {{.data.id}}"`
	Message   string       `json:"message" minLength:"1" maxLength:"4096" doc:"a Go text/template over the event"`
	DedupeKey string       `json:"dedupeKey,omitempty" maxLength:"4096" doc:"a template; events rendering the same key notify once within idempotency.window (default: the event's id); log rules: once per window"`
	Window    string       `json:"window,omitempty" maxLength:"32" doc:"log rules only: a duration from 1s to 24h (e.g. 5m); matches rendering the same dedupeKey (every match, without a dedupeKey) within one window-aligned interval of record time make one alert. Without a window, each matching record alerts unless a dedupeKey is given"`
	Enabled   *bool        `json:"enabled,omitempty" doc:"default true"`
	Example   *RuleExample `json:"example,omitempty" doc:"an event (or, for log rules, a log record) the rule must evaluate and render without error (checked, not stored)"`
}

// RulePatch changes the fields it has.
type RulePatch struct {
	Name      *string      `json:"name,omitempty" pattern:"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"`
	Source    *string      `json:"source,omitempty" enum:"event,s3,log"`
	Match     *string      `json:"match,omitempty" minLength:"1" maxLength:"4096"`
	Targets   []string     `json:"targets,omitempty" minItems:"1" maxItems:"100"`
	Severity  *string      `json:"severity,omitempty" maxLength:"16"`
	Title     *string      `json:"title,omitempty" maxLength:"4096"`
	Message   *string      `json:"message,omitempty" minLength:"1" maxLength:"4096"`
	DedupeKey *string      `json:"dedupeKey,omitempty" maxLength:"4096"`
	Window    *string      `json:"window,omitempty" maxLength:"32" doc:"log rules: a duration, or \"\" for none"`
	Enabled   *bool        `json:"enabled,omitempty"`
	Example   *RuleExample `json:"example,omitempty" doc:"an event (or log record) the changed rule must evaluate and render without error"`
}

// RuleOutput is a stored rule.
type RuleOutput struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Source    string    `json:"source"`
	Match     string    `json:"match"`
	Targets   []string  `json:"targets"`
	Severity  string    `json:"severity"`
	Title     string    `json:"title,omitempty"`
	Message   string    `json:"message"`
	DedupeKey string    `json:"dedupeKey,omitempty"`
	Window    string    `json:"window,omitempty" doc:"log rules: the storm-control window"`
	Enabled   bool      `json:"enabled"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

func ruleOutput(r *herald.Rule) RuleOutput {
	window := ""
	if r.Window > 0 {
		window = r.Window.String()
	}
	return RuleOutput{Window: window, ID: r.ID, Name: r.Name, Source: r.Source, Match: r.Match, Targets: r.Targets,
		Severity: string(r.Severity), Title: r.Title, Message: r.Message, DedupeKey: r.DedupeKey, Enabled: r.Enabled,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
}

type ruleBody struct {
	Location string `header:"Location"`
	Body     RuleOutput
}

// checkRule validates r as a whole: severity, targets (which must exist),
// and the expression and templates (compiled, type-checked, rendered once;
// against example strictly when given). Problems are 422s located at
// body.<field>.
func (s *Server) checkRule(ctx context.Context, r *herald.Rule, example *RuleExample) (*rules.Compiled, error) {
	if !rules.ValidName(r.Name) {
		return nil, invalid("body.name", "name must match "+herald.NamePattern, r.Name)
	}
	sev, err := herald.ParseSeverity(string(r.Severity))
	if err != nil {
		return nil, invalid("body.severity", herald.ErrorMessage(err), r.Severity)
	}
	r.Severity = sev
	if len(r.Targets) == 0 || len(r.Targets) > maxRuleTargets {
		return nil, invalid("body.targets", fmt.Sprintf("1 to %d targets (@user or @@group)", maxRuleTargets), nil)
	}
	parsed := make([]herald.Target, 0, len(r.Targets))
	for i, t := range r.Targets {
		pt, err := herald.ParseTarget(strings.TrimSpace(t))
		if err != nil {
			return nil, invalid(fmt.Sprintf("body.targets[%d]", i), herald.ErrorMessage(err), t)
		}
		parsed = append(parsed, pt)
		r.Targets[i] = pt.String()
	}
	if _, err := s.resolveTargets(ctx, parsed, "body.targets"); err != nil {
		return nil, err
	}
	c, err := rules.Compile(r)
	if err != nil {
		return nil, ruleProblem(err)
	}
	if example != nil && r.Source == herald.RuleSourceLog {
		if err := checkLogExample(c, example, s.Now()); err != nil {
			return nil, err
		}
	} else if example != nil {
		if example.Type == "" {
			return nil, invalid("body.example.type", "an example event needs a type", nil)
		}
		ev := example.event().event()
		if err := event.CheckData(ev.Data, "body.example.data"); err != nil {
			return nil, eventProblem(err)
		}
		if _, err := c.Match(ev); err != nil {
			return nil, invalid("body.match", "the expression fails on the example event: "+err.Error(), nil)
		}
		if err := c.TryRender(ev, true); err != nil {
			return nil, ruleProblem(fmt.Errorf("on the example event: %w", err))
		}
	}
	return c, nil
}

// ruleProblem is the 422 for a rule that does not compile.
func ruleProblem(err error) error {
	var fe *rules.FieldError
	if errors.As(err, &fe) {
		return invalid("body."+fe.Field, err.Error(), nil)
	}
	return invalid("body", err.Error(), nil)
}

// rulesChanged makes this process load the rules again before the next
// event; other processes notice within rules.reloadInterval.
func (s *Server) rulesChanged() { s.Rules.Invalidate() }

func (s *Server) registerRules(a huma.API) {
	tags := []string{"rules"}
	huma.Register(a, huma.Operation{
		OperationID: "create-rule", Method: http.MethodPost, Path: "/v1/rules", Tags: tags,
		Summary: "Create a rule", DefaultStatus: http.StatusCreated,
		Description: "A rule turns matching events (POST /v1/events, or S3 notifications with source s3) or log records " +
			"(source log, with an optional storm-control window) into alerts. " +
			"The expression is compiled and type-checked, the templates parsed and rendered once, and the targets " +
			"resolved now: a rule that would fail is a 422 here, not a surprise at the first event.",
	}, func(ctx context.Context, in *struct{ Body RuleInput }) (*ruleBody, error) {
		b := &in.Body
		window, err := parseWindow("body.window", b.Window)
		if err != nil {
			return nil, err
		}
		r := &herald.Rule{ID: uuid.Must(uuid.NewV7()).String(), Name: b.Name, Source: b.Source, Match: b.Match,
			Targets: b.Targets, Severity: herald.Severity(b.Severity), Title: b.Title, Message: b.Message,
			DedupeKey: b.DedupeKey, Window: window, Enabled: b.Enabled == nil || *b.Enabled}
		if _, err := s.checkRule(ctx, r, b.Example); err != nil {
			return nil, err
		}
		n, err := s.Store.CountRules(ctx)
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		if n >= maxRules {
			return nil, huma.Error422UnprocessableEntity(fmt.Sprintf("there are already %d rules, the most Herald keeps", maxRules))
		}
		if err := s.Store.CreateRule(ctx, r); err != nil {
			return nil, s.problem(ctx, err)
		}
		s.rulesChanged()
		s.Logger.InfoContext(ctx, "rule created", "request_id", RequestID(ctx), "rule", r.Name, "rule_id", r.ID)
		return &ruleBody{Location: "/v1/rules/" + r.ID, Body: ruleOutput(r)}, nil
	})
	huma.Register(a, huma.Operation{
		OperationID: "list-rules", Method: http.MethodGet, Path: "/v1/rules", Tags: tags,
		Summary: "List rules", Description: "Every rule, by name.",
	}, func(ctx context.Context, _ *struct{}) (*struct {
		Body struct {
			Rules []RuleOutput `json:"rules"`
		}
	}, error) {
		all, _, err := s.Store.Rules(ctx)
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		out := &struct {
			Body struct {
				Rules []RuleOutput `json:"rules"`
			}
		}{}
		out.Body.Rules = []RuleOutput{}
		for _, r := range all {
			out.Body.Rules = append(out.Body.Rules, ruleOutput(r))
		}
		return out, nil
	})
	huma.Register(a, huma.Operation{
		OperationID: "get-rule", Method: http.MethodGet, Path: "/v1/rules/{id}", Tags: tags, Summary: "Get a rule",
	}, func(ctx context.Context, in *idPath) (*ruleBody, error) {
		r, err := s.Store.Rule(ctx, in.ID)
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		return &ruleBody{Location: "/v1/rules/" + r.ID, Body: ruleOutput(r)}, nil
	})
	huma.Register(a, huma.Operation{
		OperationID: "update-rule", Method: http.MethodPatch, Path: "/v1/rules/{id}", Tags: tags,
		Summary: "Change a rule", Description: "Fields present are set; the changed rule is checked as a whole, as at creation.",
	}, func(ctx context.Context, in *struct {
		ID   string `path:"id" maxLength:"64"`
		Body RulePatch
	}) (*ruleBody, error) {
		r, err := s.Store.Rule(ctx, in.ID)
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		p := &in.Body
		set := func(dst *string, v *string) {
			if v != nil {
				*dst = *v
			}
		}
		set(&r.Name, p.Name)
		set(&r.Source, p.Source)
		set(&r.Match, p.Match)
		set(&r.Title, p.Title)
		set(&r.Message, p.Message)
		set(&r.DedupeKey, p.DedupeKey)
		if p.Severity != nil {
			r.Severity = herald.Severity(*p.Severity)
		}
		if p.Targets != nil {
			r.Targets = p.Targets
		}
		if p.Enabled != nil {
			r.Enabled = *p.Enabled
		}
		if p.Window != nil {
			if r.Window, err = parseWindow("body.window", *p.Window); err != nil {
				return nil, err
			}
		}
		if _, err := s.checkRule(ctx, r, p.Example); err != nil {
			return nil, err
		}
		if err := s.Store.UpdateRule(ctx, r); err != nil {
			return nil, s.problem(ctx, err)
		}
		s.rulesChanged()
		s.Logger.InfoContext(ctx, "rule changed", "request_id", RequestID(ctx), "rule", r.Name, "rule_id", r.ID)
		return &ruleBody{Location: "/v1/rules/" + r.ID, Body: ruleOutput(r)}, nil
	})
	huma.Register(a, huma.Operation{
		OperationID: "delete-rule", Method: http.MethodDelete, Path: "/v1/rules/{id}", Tags: tags,
		Summary: "Delete a rule", DefaultStatus: http.StatusNoContent,
	}, func(ctx context.Context, in *idPath) (*struct{}, error) {
		if err := s.Store.DeleteRule(ctx, in.ID); err != nil {
			return nil, s.problem(ctx, err)
		}
		s.rulesChanged()
		s.Logger.InfoContext(ctx, "rule deleted", "request_id", RequestID(ctx), "rule_id", in.ID)
		return nil, nil
	})
	s.registerRuleTest(a)
}

// RuleTestInput is a dry run: an event (or an S3 notification) and,
// optionally, an unsaved rule to try instead of the stored ones.
type RuleTestInput struct {
	Source string          `json:"source,omitempty" enum:"event,s3,log" default:"event" doc:"which rules: event, s3 or log"`
	Event  *EventInput     `json:"event,omitempty" doc:"the event to try (source event)"`
	Log    *LogRecordInput `json:"log,omitempty" doc:"the log record to try (source log)"`
	S3     any             `json:"s3,omitempty" doc:"an S3 event notification to try (source s3), as S3 posts it"`
	Rule   *RuleInput      `json:"rule,omitempty" doc:"try this rule instead of the stored, enabled ones; nothing is saved"`
}

// RuleTestResult says what one rule made of one event.
type RuleTestResult struct {
	Event   int            `json:"event" doc:"the index of the event (an S3 notification may hold several records)"`
	EventID string         `json:"eventId"`
	Rule    string         `json:"rule"`
	RuleID  string         `json:"ruleId,omitempty"`
	Matched bool           `json:"matched"`
	Error   string         `json:"error,omitempty" doc:"why the expression could not be evaluated on this event (no match)"`
	Alert   *RenderedAlert `json:"alert,omitempty" doc:"the alert a match would produce"`
}

// RenderedAlert is the alert a rule would produce.
type RenderedAlert struct {
	Severity string            `json:"severity"`
	Title    string            `json:"title,omitempty"`
	Message  string            `json:"message"`
	Target   []string          `json:"target"`
	Labels   map[string]string `json:"labels,omitempty"`
	Notes    []string          `json:"notes,omitempty"`
}

// ruleTestOutput answers a dry run.
type ruleTestOutput struct {
	Body struct {
		Results   []RuleTestResult `json:"results"`
		Unmatched int              `json:"unmatched" doc:"events (or log records) no rule matched"`
	}
}

// testRuleSet is the rules a dry run tries: the unsaved rule given, checked
// as at creation, or the stored enabled rules of the source.
func (s *Server) testRuleSet(ctx context.Context, b *RuleTestInput) ([]*rules.Compiled, error) {
	if b.Rule == nil {
		set, err := s.Rules.Enabled(ctx, b.Source)
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		return set, nil
	}
	window, err := parseWindow("body.rule.window", b.Rule.Window)
	if err != nil {
		return nil, err
	}
	r := &herald.Rule{ID: "", Name: b.Rule.Name, Source: b.Rule.Source, Match: b.Rule.Match, Targets: b.Rule.Targets,
		Severity: herald.Severity(b.Rule.Severity), Title: b.Rule.Title, Message: b.Rule.Message,
		DedupeKey: b.Rule.DedupeKey, Window: window, Enabled: true}
	c, err := s.checkRule(ctx, r, b.Rule.Example)
	if err != nil {
		return nil, relocate(err, "body.", "body.rule.")
	}
	return []*rules.Compiled{c}, nil
}

// testLogRules is the dry run of a log record against the log rules.
func (s *Server) testLogRules(ctx context.Context, b *RuleTestInput) (*ruleTestOutput, error) {
	if b.Log == nil {
		return nil, invalid("body.log", "give a log record to try (source log)", nil)
	}
	b.Source = herald.RuleSourceLog
	lr, err := b.Log.record("body.log", s.Now())
	if err != nil {
		return nil, err
	}
	set, err := s.testRuleSet(ctx, b)
	if err != nil {
		return nil, err
	}
	out := &ruleTestOutput{}
	out.Body.Results = []RuleTestResult{}
	matched := false
	for _, c := range set {
		if c.Rule.Source != herald.RuleSourceLog {
			return nil, invalid("body.rule.source", "a log record is tried against log rules (source log)", c.Rule.Source)
		}
		res := RuleTestResult{EventID: lr.ID, Rule: c.Rule.Name, RuleID: c.Rule.ID}
		ok, err := c.MatchLog(lr)
		switch {
		case err != nil:
			res.Error = err.Error()
		case ok:
			matched, res.Matched = true, true
			al, notes := logs.Alert(c, lr, s.Now())
			res.Alert = &RenderedAlert{Severity: string(al.Severity), Title: al.Title, Message: al.Message,
				Target: al.Targets, Labels: al.Labels, Notes: notes}
		}
		out.Body.Results = append(out.Body.Results, res)
	}
	if !matched {
		out.Body.Unmatched = 1
	}
	return out, nil
}

func (s *Server) registerRuleTest(a huma.API) {
	huma.Register(a, huma.Operation{
		OperationID: "test-rules", Method: http.MethodPost, Path: "/v1/rules/test", Tags: []string{"rules"},
		Summary: "Dry run: which rules match an event or log record, and what they would say",
		Description: "Evaluates the stored enabled rules of the source (or the rule given) against the event and " +
			"answers with every rule's verdict and the alert each match would produce. Nothing is produced or saved.",
	}, func(ctx context.Context, in *struct{ Body RuleTestInput }) (*ruleTestOutput, error) {
		b := &in.Body
		if b.Source == herald.RuleSourceLog || (b.Log != nil && b.Event == nil && b.S3 == nil) {
			return s.testLogRules(ctx, b)
		}
		var evs []*herald.Event
		switch {
		case b.Source == herald.RuleSourceS3 && b.S3 != nil:
			raw, err := json.Marshal(b.S3)
			if err != nil {
				return nil, invalid("body.s3", err.Error(), nil)
			}
			n, err := event.ParseS3(raw, s.EventsMaxBatch)
			if err != nil {
				return nil, eventProblem(relocate(err, "body", "body.s3"))
			}
			evs = n.Events
		case b.Event != nil:
			ev := b.Event.event()
			if err := event.CheckData(ev.Data, "body.event.data"); err != nil {
				return nil, eventProblem(err)
			}
			evs = []*herald.Event{ev}
		default:
			return nil, invalid("body", "give an event (or, with source s3, an s3 notification) to try", nil)
		}
		if b.Rule != nil && b.Rule.Source == herald.RuleSourceLog {
			return nil, invalid("body.log", "a log rule is tried against a log record: give log", nil)
		}
		set, err := s.testRuleSet(ctx, b)
		if err != nil {
			return nil, err
		}
		out := &ruleTestOutput{}
		out.Body.Results = []RuleTestResult{}
		for i, ev := range evs {
			matched := false
			for _, c := range set {
				res := RuleTestResult{Event: i, EventID: ev.ID, Rule: c.Rule.Name, RuleID: c.Rule.ID}
				ok, err := c.Match(ev)
				switch {
				case err != nil:
					res.Error = err.Error()
				case ok:
					matched, res.Matched = true, true
					al, notes := buildAlert(c, ev)
					res.Alert = &RenderedAlert{Severity: string(al.Severity), Title: al.Title, Message: al.Message,
						Target: al.Targets, Labels: al.Labels, Notes: notes}
				}
				out.Body.Results = append(out.Body.Results, res)
			}
			if !matched {
				out.Body.Unmatched++
			}
		}
		return out, nil
	})
}

// relocate rewrites the location prefix of a 422's details (and of an
// *event.Error), so problems in a nested document name where they are.
func relocate(err error, from, to string) error {
	var ee *event.Error
	if errors.As(err, &ee) {
		if strings.HasPrefix(ee.Location, from) {
			ee.Location = to + strings.TrimPrefix(ee.Location, from)
		}
		return ee
	}
	var m *huma.ErrorModel
	if errors.As(err, &m) {
		for _, d := range m.Errors {
			if strings.HasPrefix(d.Location, from) {
				d.Location = to + strings.TrimPrefix(d.Location, from)
			}
		}
	}
	return err
}

package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/danielgtaylor/huma/v2"
	jsonv1 "github.com/go-json-experiment/json/v1"
	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/bus"
	"github.com/heraldproject/herald/logs"
	"github.com/heraldproject/herald/store"
)

// maxReportedErrors bounds the field errors one rejection lists.
const maxReportedErrors = 20

// logInput is one record of a POST /v1/logs body. Unknown fields are
// refused, so a misspelt field is a 422 rather than lost data.
type logInput struct {
	Time       logTime           `json:"time"`
	Service    string            `json:"service"`
	Level      string            `json:"level"`
	Message    *string           `json:"message"`
	Attributes map[string]string `json:"attributes"`
	TraceID    string            `json:"traceId"`
	SpanID     string            `json:"spanId"`
}

// logTime is an RFC 3339 time or a number of seconds since the Unix epoch
// (fractions allowed).
type logTime struct{ t time.Time }

func (lt *logTime) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	bad := &herald.FieldError{Field: "time", Message: "must be an RFC 3339 time (2026-03-01T10:00:00.123Z) or Unix seconds",
		Value: herald.ClipLog(string(b), 64)}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return bad
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return bad
		}
		lt.t = t
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsNaN(f) || f < 0 || f >= 7e9 {
		return bad
	}
	sec, frac := math.Modf(f)
	lt.t = time.Unix(int64(sec), int64(frac*1e9)).UTC()
	return nil
}

// logReject is why a log request is refused: a status, a summary and the
// problems found, each located.
type logReject struct {
	status  int
	detail  string
	details []*huma.ErrorDetail
}

// parseLogBatch reads a POST /v1/logs body: NDJSON (one record per line;
// blank lines skipped) when ndjson, else JSON (an array of records,
// {"records": [...]}, or one record). Every record is checked before any is
// accepted; on failure it returns nil records and the reasons (up to
// maxReportedErrors, each naming the line or index and the field). The
// records returned are valid but have no id, and a zero time where the
// sender gave none.
func parseLogBatch(body []byte, ndjson bool, maxBatch int) ([]*herald.LogRecord, *logReject) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, &logReject{status: http.StatusBadRequest, detail: "the body is empty: send log records"}
	}
	raws, where, rej := splitLogBody(body, ndjson, maxBatch)
	if rej != nil {
		return nil, rej
	}
	if len(raws) == 0 {
		return nil, &logReject{status: http.StatusUnprocessableEntity, detail: "the body holds no log records"}
	}
	if len(raws) > maxBatch {
		return nil, tooManyLogs(len(raws), maxBatch)
	}
	recs := make([]*herald.LogRecord, len(raws))
	var details []*huma.ErrorDetail
	bad, syntax := 0, false
	for i, raw := range raws {
		rec, fe, isSyntax := decodeLog(raw)
		if fe == nil {
			recs[i] = rec
			continue
		}
		bad++
		syntax = syntax || isSyntax
		if len(details) < maxReportedErrors {
			loc := where(i)
			if fe.Field != "" {
				loc += "." + fe.Field
			}
			details = append(details, &huma.ErrorDetail{Location: loc, Message: fe.Message, Value: fe.Value})
		}
	}
	if bad > 0 {
		status := http.StatusUnprocessableEntity
		if syntax {
			status = http.StatusBadRequest
		}
		detail := fmt.Sprintf("%d of %d records are invalid; nothing was accepted", bad, len(raws))
		if bad > len(details) {
			detail += fmt.Sprintf(" (the first %d are listed)", len(details))
		}
		return nil, &logReject{status: status, detail: detail, details: details}
	}
	return recs, nil
}

func tooManyLogs(n, maxBatch int) *logReject {
	return &logReject{status: http.StatusRequestEntityTooLarge,
		detail:  fmt.Sprintf("%d records in one request; the limit is %d (logs.maxBatch): send smaller batches", n, maxBatch),
		details: []*huma.ErrorDetail{{Location: "body", Message: fmt.Sprintf("at most %d records", maxBatch), Value: n}}}
}

// splitLogBody cuts a body into the raw JSON of each record, and says how to
// name record i in an error ("line 3", "body[2]").
func splitLogBody(body []byte, ndjson bool, maxBatch int) ([][]byte, func(int) string, *logReject) {
	if ndjson {
		var raws [][]byte
		var lines []int
		for n, line := range bytes.Split(body, []byte("\n")) {
			if line = bytes.TrimSpace(line); len(line) > 0 {
				raws = append(raws, line)
				lines = append(lines, n+1)
			}
		}
		if len(raws) > maxBatch {
			return nil, nil, tooManyLogs(len(raws), maxBatch)
		}
		return raws, func(i int) string { return "line " + strconv.Itoa(lines[i]) }, nil
	}
	body = bytes.TrimSpace(body)
	syntaxErr := func(err error) *logReject {
		msg := "the body is not valid JSON: " + jsonErrText(err)
		if bytes.Contains(body, []byte("}\n{")) || bytes.Contains(body, []byte("}\r\n{")) {
			msg += " (for one record per line, send Content-Type: application/x-ndjson)"
		}
		return &logReject{status: http.StatusBadRequest, detail: msg}
	}
	switch body[0] {
	case '[':
		var raws []json.RawMessage
		if err := json.Unmarshal(body, &raws); err != nil {
			return nil, nil, syntaxErr(err)
		}
		return asBytes(raws), func(i int) string { return "body[" + strconv.Itoa(i) + "]" }, nil
	case '{':
		var top map[string]json.RawMessage
		if err := json.Unmarshal(body, &top); err != nil {
			return nil, nil, syntaxErr(err)
		}
		if recs, ok := top["records"]; ok && len(top) == 1 {
			var raws []json.RawMessage
			if err := json.Unmarshal(recs, &raws); err != nil {
				return nil, nil, &logReject{status: http.StatusUnprocessableEntity, detail: "records must be an array of log records",
					details: []*huma.ErrorDetail{{Location: "body.records", Message: "expected array"}}}
			}
			return asBytes(raws), func(i int) string { return "body.records[" + strconv.Itoa(i) + "]" }, nil
		}
		return [][]byte{body}, func(int) string { return "body" }, nil
	}
	return nil, nil, &logReject{status: http.StatusBadRequest,
		detail: "the body must be a JSON log record, an array of them, or {\"records\": [...]}; or NDJSON with Content-Type: application/x-ndjson"}
}

func asBytes(raws []json.RawMessage) [][]byte {
	out := make([][]byte, len(raws))
	for i, r := range raws {
		out[i] = r
	}
	return out
}

// jsonErrText is a decoding error without the package prefix.
func jsonErrText(err error) string { return strings.TrimPrefix(err.Error(), "json: ") }

// decodeLog reads and checks one record. On failure it returns the problem
// and whether it is a syntax error (a 400) rather than a bad value (a 422).
func decodeLog(raw []byte) (*herald.LogRecord, *herald.FieldError, bool) {
	var in logInput
	dec := jsonv1.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		var fe *herald.FieldError
		var te *jsonv1.UnmarshalTypeError
		var se *jsonv1.SyntaxError
		switch {
		case errors.As(err, &fe):
			return nil, fe, false
		case errors.As(err, &te):
			field := te.Field
			if field == "" {
				return nil, &herald.FieldError{Message: "expected a JSON object (a log record), not " + te.Value}, false
			}
			return nil, &herald.FieldError{Field: field, Message: "expected " + jsonKind(te.Type.String()) + ", not " + te.Value}, false
		case errors.As(err, &se):
			return nil, &herald.FieldError{Message: "invalid JSON: " + jsonErrText(err)}, true
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return nil, &herald.FieldError{Field: name, Message: "unknown field: a record has time, service, level, message, attributes, traceId and spanId"}, false
		}
		return nil, &herald.FieldError{Message: "invalid JSON: " + jsonErrText(err)}, true
	}
	if dec.More() {
		return nil, &herald.FieldError{Message: "invalid JSON: more than one value (one record per line)"}, true
	}
	if in.Message == nil {
		return nil, &herald.FieldError{Field: "message", Message: "is required"}, false
	}
	if strings.TrimSpace(*in.Message) == "" {
		return nil, &herald.FieldError{Field: "message", Message: "must not be empty"}, false
	}
	level, err := herald.ParseLogLevel(in.Level)
	if err != nil {
		return nil, &herald.FieldError{Field: "level", Message: herald.ErrorMessage(err), Value: herald.ClipLog(in.Level, 64)}, false
	}
	rec := &herald.LogRecord{Time: in.Time.t, Service: in.Service, Level: level, Message: *in.Message,
		Attributes: in.Attributes, TraceID: in.TraceID, SpanID: in.SpanID}
	if err := rec.Validate(); err != nil {
		var fe *herald.FieldError
		if errors.As(err, &fe) {
			return nil, fe, false
		}
		return nil, &herald.FieldError{Message: err.Error()}, false
	}
	return rec, nil, false
}

// jsonKind names a Go type as the JSON a caller should send.
func jsonKind(goType string) string {
	switch {
	case goType == "string", goType == "*string":
		return "string"
	case strings.HasPrefix(goType, "map["):
		return "object of strings"
	}
	return goType
}

// isNDJSON reports whether a media type means one JSON record per line.
func isNDJSON(mt string) bool {
	switch mt {
	case "application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines", "application/jsonlines":
		return true
	}
	return false
}

// postLogs serves POST /v1/logs.
func (s *Server) postLogs(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if s.draining.Load() {
		writeProblem(w, http.StatusServiceUnavailable, "shutting down; retry against another instance or later")
		return
	}
	mt := mediaType(r)
	ndjson := isNDJSON(mt)
	if !ndjson && mt != "application/json" {
		writeProblem(w, http.StatusUnsupportedMediaType, fmt.Sprintf("content type %q is not accepted: send application/x-ndjson "+
			"(one record per line) or application/json", clip(mt)))
		return
	}
	body, err := readLogBody(r, s.LogsMaxBodyBytes)
	if err != nil {
		var be *bodyError
		if errors.As(err, &be) {
			writeProblem(w, be.status, be.msg)
			return
		}
		writeProblem(w, http.StatusBadRequest, "could not read the request body")
		return
	}
	if !utf8.Valid(body) {
		writeProblem(w, http.StatusBadRequest, "request body is not valid UTF-8")
		return
	}
	var rej *logReject
	kr, err := s.encodeLogs(ctx, func() []*herald.LogRecord {
		recs, why := parseLogBatch(body, ndjson, s.LogsMaxBatch)
		rej = why
		return recs
	})
	if rej != nil {
		writeProblemDetails(w, rej.status, rej.detail, rej.details)
		return
	}
	if err == nil {
		err = s.produceLogs(ctx, kr)
	}
	if err != nil {
		writeProblem(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = fmt.Fprintf(w, "{\"accepted\":%d}\n", len(kr))
}

// encodeLogs runs the CPU-bound part of a log request once one of the
// decoding slots is free: decode, which returns the request's records (none
// when it refuses the body, saying why through its closure), then
// logRecords. Its error, and the context's while waiting, is a message for
// the caller (a 503).
func (s *Server) encodeLogs(ctx context.Context, decode func() []*herald.LogRecord) ([]*kgo.Record, error) {
	if slots := s.decoding; slots != nil { // nil: a Server whose Handler was not built, no bound
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil, errors.New("the request was cancelled while waiting to be decoded")
		}
		defer func() { <-slots }()
	}
	return s.logRecords(ctx, decode())
}

// logRecords gives each record an id (and the receive time when it has no
// time) and encodes it as a record of the logs topic keyed by service. It
// drops recs' entries as it goes, so the decoded records are garbage while
// the encoded ones wait for the broker. Its error is a message for the
// caller (a 503).
func (s *Server) logRecords(ctx context.Context, recs []*herald.LogRecord) ([]*kgo.Record, error) {
	now := s.Now().UTC()
	kr := make([]*kgo.Record, len(recs))
	reqID := []byte(RequestID(ctx))
	for i, rec := range recs {
		if rec.Time.IsZero() {
			rec.Time = now
		}
		id, err := uuid.NewV7()
		if err != nil {
			return nil, fmt.Errorf("could not make record ids; retry")
		}
		rec.ID = id.String()
		v, err := logs.AppendRecord(make([]byte, 0, 256+len(rec.Message)), rec)
		if err != nil {
			s.Logger.ErrorContext(ctx, "log record not encodable", "request_id", RequestID(ctx), "err", err)
			return nil, fmt.Errorf("internal error; see the server log for request %s", RequestID(ctx))
		}
		kr[i] = &kgo.Record{Topic: bus.TopicLogs, Key: []byte(rec.Service), Value: v,
			Headers: []kgo.RecordHeader{{Key: bus.HeaderRequestID, Value: reqID}}}
		recs[i] = nil
	}
	return kr, nil
}

// produceLogs produces a request's log records and returns once the broker
// has acknowledged every one. Its error is a message for the caller (a
// 503).
func (s *Server) produceLogs(ctx context.Context, kr []*kgo.Record) error {
	pctx, cancel := context.WithTimeout(ctx, s.ProduceTimeout)
	defer cancel()
	if err := s.Producer.Produce(pctx, kr...); err != nil {
		s.Logger.ErrorContext(ctx, "log records not accepted: broker write failed", "request_id", RequestID(ctx),
			"records", len(kr), "err", err)
		return errors.New("the log records could not all be written to the broker; retry the whole request " +
			"(records already written may then be stored twice)")
	}
	s.Metrics.Accepted("log", len(kr))
	return nil
}

type logSearchInput struct {
	Q       string    `query:"q" maxLength:"512" doc:"words that must all appear in the message (case-insensitive; word* matches a prefix; punctuation is ignored)"`
	Service string    `query:"service" maxLength:"128" doc:"only this service"`
	Level   string    `query:"level" maxLength:"16" doc:"minimum level: debug, info, warning, error, critical (aliases accepted)"`
	Since   time.Time `query:"since" doc:"logged at or after (RFC 3339)"`
	Until   time.Time `query:"until" doc:"logged before (RFC 3339)"`
	Limit   int       `query:"limit" minimum:"1" maximum:"1000" default:"100" doc:"page size"`
	Cursor  string    `query:"cursor" maxLength:"512" doc:"nextCursor from the previous page"`
}

type logSearchOutput struct {
	Body struct {
		Records    []*herald.LogRecord `json:"records" nullable:"false"`
		NextCursor string              `json:"nextCursor,omitempty" doc:"pass as cursor for the next (older) page"`
	}
}

func (s *Server) registerLogs(a huma.API, mux *http.ServeMux) {
	huma.Register(a, huma.Operation{
		OperationID: "search-logs", Method: http.MethodGet, Path: "/v1/logs", Tags: []string{"logs"},
		Summary: "Search log records", Description: "Newest first, paged by nextCursor. A record is searchable once the " +
			"logs role has stored it, normally well under a second after POST /v1/logs answered.",
	}, s.searchLogs)
	mux.HandleFunc("POST /v1/logs", s.postLogs)
	mux.HandleFunc("POST /otlp/v1/logs", s.postOTLPLogs)
	raw := func(types ...string) *huma.RequestBody {
		rb := &huma.RequestBody{Required: true, Content: map[string]*huma.MediaType{}}
		for _, t := range types {
			rb.Content[t] = &huma.MediaType{}
		}
		return rb
	}
	a.OpenAPI().AddOperation(&huma.Operation{
		OperationID: "ingest-logs", Method: http.MethodPost, Path: "/v1/logs", Tags: []string{"logs"},
		Summary: "Send log records",
		Description: "NDJSON (application/x-ndjson, one record per line) or JSON (an array of records, {\"records\": [...]}, " +
			"or one record). A record: {time?, service, level?, message, attributes?, traceId?, spanId?}; time is RFC 3339 " +
			"or Unix seconds (default: when received), level a severity (default info). Content-Encoding gzip is accepted. " +
			"The whole batch is checked first: one bad record refuses the request (422 naming the line or index and the " +
			"field). 202 {\"accepted\": n} once every record is durably in Kafka.",
		RequestBody: raw("application/x-ndjson", "application/json"),
		Responses: map[string]*huma.Response{"202": {Description: "accepted: {\"accepted\": n}"},
			"400": {Description: "malformed body (problem+json)"}, "413": {Description: "body or batch too large"},
			"422": {Description: "invalid records (problem+json, each located)"}},
	})
	a.OpenAPI().AddOperation(&huma.Operation{
		OperationID: "otlp-logs", Method: http.MethodPost, Path: "/otlp/v1/logs", Tags: []string{"logs"},
		Summary: "OTLP/HTTP logs export",
		Description: "OpenTelemetry's OTLP/HTTP logs endpoint (ExportLogsServiceRequest, protobuf or JSON, optionally gzip). " +
			"Answers as OTLP requires: ExportLogsServiceResponse, or a google.rpc.Status on errors, in the request's encoding.",
		RequestBody: raw("application/x-protobuf", "application/json"),
		Responses:   map[string]*huma.Response{"200": {Description: "ExportLogsServiceResponse"}},
	})
}

func (s *Server) searchLogs(ctx context.Context, in *logSearchInput) (*logSearchOutput, error) {
	q := store.LogQuery{Text: in.Q, Service: in.Service, Since: in.Since, Until: in.Until, Limit: in.Limit}
	if strings.TrimSpace(in.Q) != "" {
		if _, err := store.SearchTerms(in.Q); err != nil {
			return nil, invalid("query.q", herald.ErrorMessage(err), in.Q)
		}
	}
	if in.Level != "" {
		lvl, err := herald.ParseSeverity(in.Level)
		if err != nil {
			return nil, invalid("query.level", herald.ErrorMessage(err), in.Level)
		}
		q.MinLevel = lvl
	}
	if in.Cursor != "" {
		c, err := decodeLogCursor(in.Cursor)
		if err != nil {
			return nil, err
		}
		q.After = c
	}
	recs, err := s.Store.SearchLogs(ctx, q)
	if err != nil {
		return nil, s.problem(ctx, err)
	}
	out := &logSearchOutput{}
	out.Body.Records = recs
	if out.Body.Records == nil {
		out.Body.Records = []*herald.LogRecord{}
	}
	if len(recs) == q.Limit {
		last := recs[len(recs)-1]
		out.Body.NextCursor = encodeCursor(strconv.FormatInt(last.Time.UnixNano(), 10) + ":" + last.ID)
	}
	return out, nil
}

func decodeLogCursor(c string) (*store.LogCursor, error) {
	s, err := decodeCursor(c)
	if err != nil {
		return nil, err
	}
	ts, id, ok := strings.Cut(s, ":")
	n, perr := strconv.ParseInt(ts, 10, 64)
	if !ok || perr != nil || id == "" {
		return nil, invalid("query.cursor", "not a cursor returned by this API", c)
	}
	return &store.LogCursor{Time: time.Unix(0, n).UTC(), ID: id}, nil
}

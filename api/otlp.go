package api

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"
	"unicode"

	collogs "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/heraldproject/herald"
)

// OTLP mapping constants.
const (
	// otlpUnknownService is the service of records whose resource has no
	// service.name (OpenTelemetry SDKs default to unknown_service:<exe>).
	otlpUnknownService = "unknown_service"
	// otlpRecursionLimit bounds nesting in an OTLP payload (AnyValue arrays
	// and maps nest); deeper payloads are a 400.
	otlpRecursionLimit = 64
	// gRPC status codes used in google.rpc.Status answers.
	codeInvalidArgument   = 3
	codeResourceExhausted = 8
	codeUnavailable       = 14
)

// postOTLPLogs serves POST /otlp/v1/logs: OTLP/HTTP logs export, protobuf
// or JSON, optionally gzip. As the OTLP specification requires, every
// answer is in the request's encoding: ExportLogsServiceResponse on success
// (with partial_success when records were refused or clipped), and a
// google.rpc.Status (not problem+json) on errors. Records are accepted or
// refused one by one: a record Herald cannot store (a time out of range) is
// refused and counted in partial_success.rejected_log_records, and content
// beyond the limits is clipped and said in partial_success.error_message,
// because an OTLP exporter drops a whole batch on a 400.
func (s *Server) postOTLPLogs(w http.ResponseWriter, r *http.Request) {
	var isJSON bool
	switch mediaType(r) {
	case "application/x-protobuf", "application/protobuf":
	case "application/json":
		isJSON = true
	default:
		writeOTLPStatus(w, true, http.StatusUnsupportedMediaType, codeInvalidArgument,
			fmt.Sprintf("content type %q is not accepted: send application/x-protobuf or application/json", clip(mediaType(r))))
		return
	}
	if s.draining.Load() {
		w.Header().Set("Retry-After", "5")
		writeOTLPStatus(w, isJSON, http.StatusServiceUnavailable, codeUnavailable, "shutting down; retry")
		return
	}
	body, err := readLogBody(r, s.LogsMaxBodyBytes)
	if err != nil {
		var be *bodyError
		code := http.StatusBadRequest
		if errors.As(err, &be) {
			code = be.status
		}
		var grpc int32 = codeInvalidArgument
		if code == http.StatusRequestEntityTooLarge {
			grpc = codeResourceExhausted
		}
		writeOTLPStatus(w, isJSON, code, grpc, err.Error())
		return
	}
	var (
		badBody  error
		rejected int
		notes    []string
		n        int
	)
	kr, err := s.encodeLogs(r.Context(), func() []*herald.LogRecord {
		req, err := decodeOTLPLogs(body, isJSON)
		if err != nil {
			badBody = err
			return nil
		}
		var recs []*herald.LogRecord
		recs, rejected, notes, n = otlpRecords(req, s.LogsMaxBatch)
		if n > s.LogsMaxBatch {
			return nil
		}
		return recs
	})
	switch {
	case badBody != nil:
		writeOTLPStatus(w, isJSON, http.StatusBadRequest, codeInvalidArgument, badBody.Error())
		return
	case err == nil && n > s.LogsMaxBatch:
		writeOTLPStatus(w, isJSON, http.StatusRequestEntityTooLarge, codeResourceExhausted,
			fmt.Sprintf("%d log records in one request; the limit is %d (logs.maxBatch): lower the exporter's batch size", n, s.LogsMaxBatch))
		return
	}
	if err == nil && len(kr) > 0 {
		err = s.produceLogs(r.Context(), kr)
	}
	if err != nil {
		w.Header().Set("Retry-After", "5")
		writeOTLPStatus(w, isJSON, http.StatusServiceUnavailable, codeUnavailable, err.Error())
		return
	}
	resp := &collogs.ExportLogsServiceResponse{}
	if rejected > 0 || len(notes) > 0 {
		resp.PartialSuccess = &collogs.ExportLogsPartialSuccess{RejectedLogRecords: int64(rejected),
			ErrorMessage: strings.Join(notes, "; ")}
	}
	writeOTLP(w, isJSON, http.StatusOK, resp)
}

// decodeOTLPLogs reads an ExportLogsServiceRequest. Unknown fields are
// ignored, as OTLP requires.
func decodeOTLPLogs(body []byte, isJSON bool) (*collogs.ExportLogsServiceRequest, error) {
	req := &collogs.ExportLogsServiceRequest{}
	var err error
	if isJSON {
		err = protojson.UnmarshalOptions{DiscardUnknown: true, RecursionLimit: otlpRecursionLimit}.Unmarshal(body, req)
	} else {
		err = proto.UnmarshalOptions{RecursionLimit: otlpRecursionLimit}.Unmarshal(body, req)
	}
	if err != nil {
		return nil, fmt.Errorf("not an OTLP ExportLogsServiceRequest: %s", herald.ClipLog(err.Error(), 300))
	}
	return req, nil
}

// notes collects what was clipped, once per kind, with counts.
type notes struct {
	order []string
	count map[string]int
}

func (n *notes) add(what string) {
	if n.count == nil {
		n.count = map[string]int{}
	}
	if n.count[what] == 0 {
		n.order = append(n.order, what)
	}
	n.count[what]++
}

func (n *notes) list() []string {
	out := make([]string, 0, len(n.order))
	for _, w := range n.order {
		out = append(out, fmt.Sprintf("%s (%d)", w, n.count[w]))
	}
	return out
}

// otlpRecords maps an OTLP request onto Herald log records. It returns the
// records, how many were refused, notes on what was refused or clipped, and
// the number of records in the request; it stops mapping once that passes
// maxBatch (the caller refuses the request).
func otlpRecords(req *collogs.ExportLogsServiceRequest, maxBatch int) ([]*herald.LogRecord, int, []string, int) {
	var recs []*herald.LogRecord
	var ns notes
	rejected, n := 0, 0
	for _, rl := range req.GetResourceLogs() {
		service := otlpUnknownService
		resAttrs := map[string]string{}
		for _, kv := range rl.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				if v := kv.GetValue().GetStringValue(); v != "" {
					service = v
				}
				continue
			}
			putAttr(resAttrs, kv, &ns)
		}
		service = cleanService(service, &ns)
		for _, sl := range rl.GetScopeLogs() {
			for _, lr := range sl.GetLogRecords() {
				if n++; n > maxBatch {
					return nil, 0, nil, n
				}
				rec, why := otlpRecord(lr, service, resAttrs, &ns)
				if why != "" {
					rejected++
					ns.add("refused: " + why)
					continue
				}
				recs = append(recs, rec)
			}
		}
	}
	return recs, rejected, ns.list(), n
}

// otlpRecord maps one OTLP log record, clipping what exceeds the limits; it
// returns why when the record cannot be stored at all.
func otlpRecord(lr *logspb.LogRecord, service string, resAttrs map[string]string, ns *notes) (*herald.LogRecord, string) {
	rec := &herald.LogRecord{Service: service, Level: otlpLevel(lr.GetSeverityNumber(), lr.GetSeverityText())}
	ts := lr.GetTimeUnixNano()
	if ts == 0 {
		ts = lr.GetObservedTimeUnixNano()
	}
	if ts > math.MaxInt64 {
		return nil, "time out of range"
	}
	if ts != 0 {
		rec.Time = time.Unix(0, int64(ts)).UTC()
	}
	rec.Message = noNUL(renderValue(lr.GetBody()), ns)
	if len(rec.Message) > herald.MaxLogMessage {
		rec.Message = herald.ClipLog(rec.Message, herald.MaxLogMessage)
		ns.add(fmt.Sprintf("message clipped to %d bytes", herald.MaxLogMessage))
	}
	attrs := make(map[string]string, len(resAttrs)+len(lr.GetAttributes()))
	for k, v := range resAttrs {
		attrs[k] = v
	}
	for _, kv := range lr.GetAttributes() {
		putAttr(attrs, kv, ns)
	}
	if len(attrs) > herald.MaxLogAttributes {
		// Keep the record's own attributes first, then the resource's, by
		// name, up to the limit.
		keep := make(map[string]string, herald.MaxLogAttributes)
		for _, kv := range lr.GetAttributes() {
			if len(keep) < herald.MaxLogAttributes {
				if v, ok := attrs[kv.GetKey()]; ok {
					keep[kv.GetKey()] = v
				}
			}
		}
		for k, v := range resAttrs {
			if len(keep) < herald.MaxLogAttributes {
				keep[k] = v
			}
		}
		ns.add(fmt.Sprintf("attributes beyond %d left out", herald.MaxLogAttributes))
		attrs = keep
	}
	if len(attrs) > 0 {
		rec.Attributes = attrs
	}
	rec.TraceID = otlpID(lr.GetTraceId(), 16, ns)
	rec.SpanID = otlpID(lr.GetSpanId(), 8, ns)
	if err := rec.Validate(); err != nil {
		return nil, err.Error()
	}
	return rec, ""
}

// putAttr adds an OTLP attribute as a string (non-strings rendered as
// JSON), clipping a long value; a name Herald cannot store is left out.
func putAttr(m map[string]string, kv *commonpb.KeyValue, ns *notes) {
	k := kv.GetKey()
	if k == "" || len(k) > herald.MaxLogAttributeKey || strings.IndexFunc(k, unicode.IsControl) >= 0 {
		ns.add(fmt.Sprintf("attributes with empty, control-character or longer than %d-byte names left out", herald.MaxLogAttributeKey))
		return
	}
	v := noNUL(renderValue(kv.GetValue()), ns)
	if len(v) > herald.MaxLogAttributeValue {
		v = herald.ClipLog(v, herald.MaxLogAttributeValue)
		ns.add(fmt.Sprintf("attribute values clipped to %d bytes", herald.MaxLogAttributeValue))
	}
	m[k] = v
}

// cleanService fits a service name into Herald's limits.
func cleanService(s string, ns *notes) string {
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		s = strings.Map(func(r rune) rune {
			if unicode.IsControl(r) {
				return -1
			}
			return r
		}, s)
		ns.add("control characters removed from service.name")
	}
	if len(s) > herald.MaxLogService {
		s = herald.ClipLog(s, herald.MaxLogService)
		ns.add(fmt.Sprintf("service.name clipped to %d bytes", herald.MaxLogService))
	}
	if s == "" {
		s = otlpUnknownService
	}
	return s
}

// otlpLevel maps OTLP severity onto Herald levels: severity_number ranges
// TRACE and DEBUG (1-8) → debug, INFO (9-12) → info, WARN (13-16) → warning,
// ERROR (17-20) → error, FATAL (21-24) → critical; without a number, the
// severity_text if Herald knows it; else info.
func otlpLevel(n logspb.SeverityNumber, text string) herald.Severity {
	switch {
	case n >= 1 && n <= 8:
		return herald.SeverityDebug
	case n >= 9 && n <= 12:
		return herald.SeverityInfo
	case n >= 13 && n <= 16:
		return herald.SeverityWarning
	case n >= 17 && n <= 20:
		return herald.SeverityError
	case n >= 21:
		return herald.SeverityCritical
	}
	if lvl, err := herald.ParseSeverity(text); err == nil {
		return lvl
	}
	return herald.DefaultLogLevel
}

// otlpID renders a trace (16 bytes) or span (8 bytes) id as hex. OTLP JSON
// carries ids as hex strings, which a standard protobuf JSON decoder reads
// as base64 (32 hex digits become 24 bytes): such ids are turned back into
// the hex they were. An all-zero id is no id; any other length is left out.
func otlpID(b []byte, n int, ns *notes) string {
	switch len(b) {
	case 0:
		return ""
	case n:
	case n * 3 / 2:
		h := base64.StdEncoding.EncodeToString(b)
		d, err := hex.DecodeString(h)
		if err != nil || len(d) != n {
			ns.add("malformed trace or span ids left out")
			return ""
		}
		b = d
	default:
		ns.add("malformed trace or span ids left out")
		return ""
	}
	for _, c := range b {
		if c != 0 {
			return hex.EncodeToString(b)
		}
	}
	return ""
}

// renderValue turns an OTLP AnyValue into text: a string as it is, anything
// else as JSON (bytes as base64).
func renderValue(v *commonpb.AnyValue) string {
	if v == nil || v.GetValue() == nil {
		return ""
	}
	if s, ok := v.GetValue().(*commonpb.AnyValue_StringValue); ok {
		return s.StringValue
	}
	b, err := json.Marshal(anyValue(v))
	if err != nil {
		return ""
	}
	return string(b)
}

func anyValue(v *commonpb.AnyValue) any {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_BoolValue:
		return x.BoolValue
	case *commonpb.AnyValue_IntValue:
		return x.IntValue
	case *commonpb.AnyValue_DoubleValue:
		if math.IsNaN(x.DoubleValue) || math.IsInf(x.DoubleValue, 0) {
			return fmt.Sprint(x.DoubleValue)
		}
		return x.DoubleValue
	case *commonpb.AnyValue_BytesValue:
		return x.BytesValue // base64 in JSON
	case *commonpb.AnyValue_ArrayValue:
		out := make([]any, 0, len(x.ArrayValue.GetValues()))
		for _, e := range x.ArrayValue.GetValues() {
			out = append(out, anyValue(e))
		}
		return out
	case *commonpb.AnyValue_KvlistValue:
		out := make(map[string]any, len(x.KvlistValue.GetValues()))
		for _, kv := range x.KvlistValue.GetValues() {
			out[kv.GetKey()] = anyValue(kv.GetValue())
		}
		return out
	}
	return nil
}

// writeOTLP writes an OTLP message in the request's encoding.
func writeOTLP(w http.ResponseWriter, isJSON bool, code int, m proto.Message) {
	var b []byte
	var err error
	if isJSON {
		w.Header().Set("Content-Type", "application/json")
		b, err = protojson.Marshal(m)
	} else {
		w.Header().Set("Content-Type", "application/x-protobuf")
		b, err = proto.Marshal(m)
	}
	if err != nil {
		b = nil
	}
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// writeOTLPStatus answers an OTLP request with an error: HTTP status code
// and a google.rpc.Status, as OTLP/HTTP specifies.
func writeOTLPStatus(w http.ResponseWriter, isJSON bool, code int, grpcCode int32, msg string) {
	writeOTLP(w, isJSON, code, &status.Status{Code: grpcCode, Message: msg})
}

// noNUL replaces NUL characters, which the store cannot hold, by U+FFFD.
func noNUL(s string, ns *notes) string {
	if strings.IndexByte(s, 0) < 0 {
		return s
	}
	ns.add("NUL characters replaced by U+FFFD")
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}

package api

import (
	"bytes"
	"io"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/danielgtaylor/huma/v2"
	"github.com/go-json-experiment/json/jsontext"
	"go.opentelemetry.io/otel/trace"
)

// acceptAlertsFast serves POST /v1/alerts bodies that are plainly valid
// without huma, and hands every other request to next (the mux, where huma
// serves the operation) untouched.
//
// huma reads a body twice — into a map to check it against the schema, then
// into AlertInput — and at one recipient per alert that, with its parameter
// and response handling, was about 5% of the CPU. The fast path reads the
// body once, token by token, and takes it only if it is an object of the
// documented fields with the documented types, lengths and counts: a subset
// of what huma's schema accepts, so whatever the fast path takes huma would
// have taken too. Anything else (a null, an unknown or repeated field, a
// missing required one, a limit exceeded, another content type, an answer
// in another format, an alert the checks after decoding refuse) goes to
// huma, which answers as it always has. Nothing is produced before the fast
// path is sure to answer itself, so a request it hands on has had no effect.
func (s *Server) acceptAlertsFast(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.humaOnly || r.Method != http.MethodPost || r.URL.Path != "/v1/alerts" || !s.acceptAlertFast(w, r) {
			next.ServeHTTP(w, r)
		}
	})
}

// acceptAlertFast answers r and reports true, or reports false having
// written nothing and left r's body to be read again.
func (s *Server) acceptAlertFast(w http.ResponseWriter, r *http.Request) bool {
	h := r.Header
	if h.Get("Content-Type") != "application/json" || !answersJSON(h.Values("Accept")) {
		return false
	}
	keys := h.Values("Idempotency-Key")
	if len(keys) > 1 || (len(keys) == 1 && utf8.RuneCountInString(keys[0]) > 255) {
		return false
	}
	var key string
	if len(keys) == 1 {
		key = keys[0]
	}
	if r.Body == nil {
		return false
	}
	// The middleware has read the body into memory (at most MaxBodyBytes).
	body, err := bodyBytes(r)
	if err != nil {
		return false
	}
	var in AlertInput
	if !decodeAlertInput(body, &in) {
		return false
	}
	// The span starts when the request did, but only once the alert is
	// known to be answered here: a request handed to huma gets one span.
	start := time.Now()
	al, replay, err := s.prepareAlert(r.Context(), key, &in)
	if err != nil {
		return false // huma checks it again and answers with the error
	}
	ctx, span := s.startAccept(r.Context(), trace.WithTimestamp(start))
	defer span.End()
	r.Pattern = "POST /v1/alerts" // for the middleware's metrics, as the mux sets it
	s.fastAnswered.Add(1)
	out := replay
	if out == nil {
		if out, err = s.produceAccepted(ctx, al); err != nil {
			writeHumaError(w, err)
			return true
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Location", out.Location)
	if out.Replayed != "" {
		w.Header().Set("Idempotent-Replayed", out.Replayed)
	}
	w.WriteHeader(http.StatusAccepted)
	_ = huma.DefaultJSONFormat.Marshal(w, &out.Body)
	return true
}

// answersJSON reports whether a request with these Accept headers gets
// huma's JSON answer without negotiation: none, */* or application/json.
func answersJSON(accept []string) bool {
	switch {
	case len(accept) == 0:
		return true
	case len(accept) > 1:
		return false
	}
	return accept[0] == "*/*" || accept[0] == "application/json"
}

// writeHumaError writes err as huma writes an operation's error: a
// huma.StatusError as problem+json with its status, anything else as a 500.
func writeHumaError(w http.ResponseWriter, err error) {
	se, ok := err.(huma.StatusError)
	if !ok {
		se = huma.NewError(http.StatusInternalServerError, err.Error())
	}
	if he, ok := se.(huma.HeadersError); ok {
		for k, vs := range he.GetHeaders() {
			for _, v := range vs {
				w.Header().Add(k, v)
			}
		}
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(se.GetStatus())
	_ = huma.DefaultJSONFormat.Marshal(w, se)
}

// decodeAlertInput reads body into in if it is a JSON object of AlertInput's
// fields, each at most once, with target, severity and message present, no
// nulls, and within the schema's lengths and counts; it reports whether it
// was. Names are matched exactly, as huma's schema matches them.
func decodeAlertInput(body []byte, in *AlertInput) bool {
	d := jsontext.NewDecoder(bytes.NewReader(body))
	if t, err := d.ReadToken(); err != nil || t.Kind() != '{' {
		return false
	}
	var seen [7]bool
	for d.PeekKind() == '"' {
		name, err := d.ReadToken()
		if err != nil {
			return false
		}
		var i int
		var ok bool
		switch name.String() {
		case "target":
			i, in.Target = 0, readStrings(d, maxTargets)
			ok = len(in.Target) >= 1
		case "severity":
			i, ok = 1, readString(d, &in.Severity, 0, 16)
		case "message":
			i, ok = 2, readString(d, &in.Message, 1, maxMessageSize)
		case "title":
			i, ok = 3, readString(d, &in.Title, 0, maxTitle)
		case "source":
			i, ok = 4, readString(d, &in.Source, 0, maxSource)
		case "labels":
			i, in.Labels = 5, readLabels(d)
			ok = in.Labels != nil
		case "channels":
			i, in.Channels = 6, readStrings(d, 4)
			ok = in.Channels != nil
		}
		if !ok || seen[i] {
			return false
		}
		seen[i] = true
	}
	if t, err := d.ReadToken(); err != nil || t.Kind() != '}' {
		return false
	}
	if _, err := d.ReadToken(); err != io.EOF {
		return false // more after the object
	}
	return seen[0] && seen[1] && seen[2]
}

// readString reads a string of min to max characters into *v.
func readString(d *jsontext.Decoder, v *string, min, max int) bool {
	if d.PeekKind() != '"' {
		return false
	}
	t, err := d.ReadToken()
	if err != nil {
		return false
	}
	s := t.String()
	if n := utf8.RuneCountInString(s); n < min || n > max {
		return false
	}
	*v = s
	return true
}

// readStrings reads an array of at most max strings; nil if it is not one.
func readStrings(d *jsontext.Decoder, max int) []string {
	if d.PeekKind() != '[' {
		return nil
	}
	if _, err := d.ReadToken(); err != nil {
		return nil
	}
	out := []string{}
	for d.PeekKind() == '"' {
		t, err := d.ReadToken()
		if err != nil || len(out) == max {
			return nil
		}
		out = append(out, t.String())
	}
	if t, err := d.ReadToken(); err != nil || t.Kind() != ']' {
		return nil
	}
	return out
}

// readLabels reads an object of string values; nil if it is not one.
func readLabels(d *jsontext.Decoder) map[string]string {
	if d.PeekKind() != '{' {
		return nil
	}
	if _, err := d.ReadToken(); err != nil {
		return nil
	}
	out := map[string]string{}
	for d.PeekKind() == '"' {
		k, err := d.ReadToken()
		if err != nil {
			return nil
		}
		key := k.String() // before the next read voids k
		if d.PeekKind() != '"' {
			return nil
		}
		v, err := d.ReadToken()
		if err != nil {
			return nil
		}
		out[key] = v.String()
	}
	if t, err := d.ReadToken(); err != nil || t.Kind() != '}' {
		return nil
	}
	return out
}

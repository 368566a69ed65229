package api

import (
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"
)

// Log ingest defaults, when the Server fields are zero.
const (
	// DefaultLogsMaxBatch is the most records one log request may carry.
	DefaultLogsMaxBatch = 10000
	// DefaultLogsMaxBodyBytes is the largest log request body, after
	// decompression.
	DefaultLogsMaxBodyBytes = 16 << 20
)

// ownsBody reports whether a route reads its request body itself instead of
// the middleware reading it (bounded by MaxBodyBytes, checked as UTF-8): log
// ingest takes bigger bodies, gzip, and (OTLP) protobuf.
func ownsBody(r *http.Request) bool {
	return r.Method == http.MethodPost && (r.URL.Path == "/v1/logs" || r.URL.Path == "/otlp/v1/logs")
}

// bodyError is a request body Herald will not read, with the status to
// answer.
type bodyError struct {
	status int
	msg    string
}

func (e *bodyError) Error() string { return e.msg }

// readLogBody reads a log request body, decompressing Content-Encoding gzip,
// and refuses more than limit bytes whether compressed or not (so a small
// gzip bomb is a 413, not memory).
func readLogBody(r *http.Request, limit int64) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	tooBig := &bodyError{http.StatusRequestEntityTooLarge,
		fmt.Sprintf("request body is too large: the limit is %d bytes after decompression (logs.maxBodyBytes); send smaller batches", limit)}
	if r.ContentLength > limit {
		return nil, tooBig
	}
	var src io.Reader = io.LimitReader(r.Body, limit+1)
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(src)
		if err != nil {
			return nil, &bodyError{http.StatusBadRequest, "the body is not gzip: " + err.Error()}
		}
		defer zr.Close()
		src = zr
	default:
		return nil, &bodyError{http.StatusUnsupportedMediaType,
			fmt.Sprintf("Content-Encoding %q is not supported: send gzip or no encoding", clip(enc))}
	}
	b, err := io.ReadAll(io.LimitReader(src, limit+1))
	if err != nil {
		switch {
		case errors.Is(err, gzip.ErrChecksum), errors.Is(err, gzip.ErrHeader), errors.Is(err, io.ErrUnexpectedEOF):
			return nil, &bodyError{http.StatusBadRequest, "the gzip body is corrupt or cut short: " + err.Error()}
		}
		return nil, &bodyError{http.StatusBadRequest, "could not read the request body: " + err.Error()}
	}
	if int64(len(b)) > limit {
		return nil, tooBig
	}
	return b, nil
}

// mediaType is the Content-Type without parameters, lower-cased.
func mediaType(r *http.Request) string {
	ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
	return strings.ToLower(strings.TrimSpace(ct))
}

// writeProblemDetails writes an RFC 9457 problem with per-field details,
// shaped as huma's (title, status, detail, errors[{message, location,
// value}]).
func writeProblemDetails(w http.ResponseWriter, status int, detail string, errs []*huma.ErrorDetail) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(&huma.ErrorModel{Title: http.StatusText(status), Status: status, Detail: detail, Errors: errs})
}

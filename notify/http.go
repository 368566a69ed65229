package notify

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// maxErrorBody is how much of a failed response's body ends up in an error.
const maxErrorBody = 512

// maxDrain bounds how much of a response body is read and thrown away so the
// connection can be reused; larger bodies close the connection instead.
const maxDrain = 64 << 10

// StatusError is a provider's answer with a status outside 2xx.
type StatusError struct {
	// StatusCode is the HTTP status code.
	StatusCode int
	// Detail is what the provider said: a trimmed snippet of the response
	// body, or a provider-specific explanation. It may be empty.
	Detail string
}

// Error implements error: "HTTP 503: upstream unavailable".
func (e *StatusError) Error() string {
	detail := e.Detail
	if detail == "" {
		detail = http.StatusText(e.StatusCode)
	}
	if detail == "" {
		return fmt.Sprintf("HTTP %d", e.StatusCode)
	}
	return fmt.Sprintf("HTTP %d: %s", e.StatusCode, detail)
}

// CheckResponse turns an HTTP response into Notify's (retry, err) pair. A 2xx
// status gives (false, nil). Any other status gives a *StatusError holding at
// most 512 bytes of the body; see ClassifyStatus for which ones are retried.
//
// CheckResponse always drains and closes the body, so callers that need the
// body of a successful response must read it first. Closing it again is
// harmless.
func CheckResponse(resp *http.Response) (retry bool, err error) {
	defer drainAndClose(resp.Body)
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return false, nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	return ClassifyStatus(resp.StatusCode, resp.Header, Snippet(body))
}

// ClassifyStatus decides what an HTTP status means for a delivery, with detail
// being what the provider said about it. 2xx gives (false, nil). 408, 425, 429
// and 5xx are worth retrying; every other status is permanent. On 429 and 503
// a valid Retry-After header in h wraps the *StatusError in a
// *RetryAfterError. h may be nil.
func ClassifyStatus(code int, h http.Header, detail string) (retry bool, err error) {
	if code >= 200 && code < 300 {
		return false, nil
	}
	err = &StatusError{StatusCode: code, Detail: detail}
	switch {
	case code == http.StatusRequestTimeout, code == http.StatusTooEarly,
		code == http.StatusTooManyRequests, code >= 500:
		retry = true
	}
	if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
		if wait, ok := ParseRetryAfter(h.Get("Retry-After"), time.Now()); ok {
			err = &RetryAfterError{Wait: wait, Err: err}
		}
	}
	return retry, err
}

// ParseRetryAfter parses a Retry-After header value: delta-seconds ("120") or
// an HTTP-date, which is measured from now. A date in the past gives 0. It
// reports false for an empty or malformed value.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseUint(v, 10, 64); err == nil {
		if secs > math.MaxInt64/uint64(time.Second) {
			return time.Duration(math.MaxInt64), true
		}
		return time.Duration(secs) * time.Second, true
	}
	if v[0] >= '0' && v[0] <= '9' || v[0] == '-' || v[0] == '+' {
		return 0, false // a number, but not a valid delta-seconds
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

// Snippet makes a short, single-line, valid UTF-8 excerpt of a response body
// for an error message: whitespace runs collapse to one space, and the result
// is cut to 512 bytes on a rune boundary.
func Snippet(body []byte) string {
	if len(body) > maxErrorBody {
		body = body[:maxErrorBody]
	}
	s := strings.Join(strings.Fields(string(body)), " ")
	// A cut in the middle of a rune leaves an invalid tail; drop it.
	for len(s) > 0 {
		r, size := utf8.DecodeLastRuneInString(s)
		if r != utf8.RuneError || size != 1 {
			break
		}
		s = s[:len(s)-1]
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// drainAndClose reads what is left of a body (up to a bound) so the
// connection can be reused, then closes it.
func drainAndClose(body io.ReadCloser) {
	if body == nil {
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(body, maxDrain))
	_ = body.Close()
}

package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	goslack "github.com/slack-go/slack"

	"github.com/heraldproject/herald/notify"
)

// apiRetryable says whether a retry may help after chat.postMessage failed
// with code. Unknown codes are permanent.
func apiRetryable(code string) bool {
	switch code {
	case "internal_error", "fatal_error", "service_unavailable", "request_timeout",
		"ratelimited", "rate_limited", "team_added_to_org":
		return true
	}
	// Among them channel_not_found, not_in_channel, is_archived,
	// invalid_auth, not_authed, account_inactive, token_revoked, no_text,
	// msg_too_long, invalid_blocks and restricted_action.
	return false
}

// classify turns an error from slack-go into Notify's (retry, err) pair,
// using what the transport saw of a failed HTTP answer.
func classify(err error, a *answer) (bool, error) {
	if err == nil {
		return false, nil
	}
	if rl, ok := errors.AsType[*goslack.RateLimitedError](err); ok {
		return true, &notify.RetryAfterError{Wait: rl.RetryAfter, Err: rl}
	}
	if a.status != 0 {
		// slack-go reports a non-200 answer as StatusCodeError without the
		// body, or fails to parse a Retry-After date; the answer has both.
		return notify.ClassifyStatus(a.status, a.header, a.detail)
	}
	if se, ok := errors.AsType[goslack.StatusCodeError](err); ok {
		return notify.ClassifyStatus(se.Code, nil, "")
	}
	if ae, ok := errors.AsType[goslack.SlackErrorResponse](err); ok {
		return apiRetryable(ae.Err), &APIError{Code: ae.Err, Details: ae.ResponseMetadata.Messages, Err: err}
	}
	if _, ok := errors.AsType[*json.SyntaxError](err); ok {
		return true, fmt.Errorf("unexpected answer from Slack: %w", err)
	}
	if _, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		return true, fmt.Errorf("unexpected answer from Slack: %w", err)
	}
	return notify.ClassifyTransportError(err)
}

// APIError is an error code from Slack's Web API ("channel_not_found").
type APIError struct {
	Code string
	// Details are Slack's explanations, if it gave any.
	Details []string
	Err     error
}

// Error returns the code and the details.
func (e *APIError) Error() string {
	if len(e.Details) == 0 {
		return e.Code
	}
	return notify.Truncate(e.Code+": "+strings.Join(e.Details, "; "), 300)
}

// Unwrap returns slack-go's error.
func (e *APIError) Unwrap() error { return e.Err }

// answer is what the transport saw of a failed HTTP answer.
type answer struct {
	status int
	header http.Header
	detail string
}

type answerKey struct{}

// withAnswer returns a context under which the capturing transport records a
// failed answer into the returned *answer.
func withAnswer(ctx context.Context) (context.Context, *answer) {
	a := &answer{}
	return context.WithValue(ctx, answerKey{}, a), a
}

// withCapture returns a copy of c whose transport records failed answers,
// because slack-go drops their body (where Slack puts the reason).
func withCapture(c *http.Client) *http.Client {
	cc := *c
	base := cc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	cc.Transport = captureTransport{base: base}
	return &cc
}

type captureTransport struct{ base http.RoundTripper }

// RoundTrip passes req on and, for an answer other than 200, records its
// status, headers and the start of its body, leaving the body readable.
func (t captureTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil || resp.StatusCode == http.StatusOK || isRedirect(resp) {
		return resp, err
	}
	a, ok := req.Context().Value(answerKey{}).(*answer)
	if !ok {
		return resp, nil
	}
	head, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(head), resp.Body), resp.Body}
	a.status, a.header, a.detail = resp.StatusCode, resp.Header, notify.Snippet(head)
	return resp, nil
}

// isRedirect reports an answer the http.Client will follow.
func isRedirect(resp *http.Response) bool {
	return resp.StatusCode >= 300 && resp.StatusCode < 400 && resp.Header.Get("Location") != ""
}

// Package notify defines the contract every delivery channel implements and the
// helpers channels share: deciding whether a provider's answer is worth a
// retry, honouring Retry-After, and keeping secrets out of errors.
//
// Each channel lives in its own package (notify/webhook, notify/slack,
// notify/email, notify/sms) and implements Notifier.
package notify

import (
	"context"
	"errors"
	"time"

	"github.com/heraldproject/herald"
)

// Message is one delivery handed to a channel: the alert's content, the
// recipient with their contact details, and which attempt this is.
type Message struct {
	DeliveryID string
	AlertID    string
	Recipient  *herald.User
	Severity   herald.Severity
	Title      string
	Text       string
	Source     string
	Labels     map[string]string
	CreatedAt  time.Time
	// Attempt counts from 1.
	Attempt int
}

// Notifier sends one message over one channel.
//
// Notify returns nil when the provider accepted the message. Otherwise it
// returns an error and whether the failure is worth retrying: transient
// failures (timeouts, connection errors, 5xx, 429) retry; permanent ones (bad
// address, most 4xx, a rejected recipient) do not. The error text is recorded
// and shown to users, so it must not contain secrets (tokens, passwords,
// webhook URLs); use Redact.
//
// Implementations must be safe for concurrent use and must honour ctx.
type Notifier interface {
	Notify(ctx context.Context, m *Message) (retry bool, err error)
}

// NotifierFunc adapts a function to the Notifier interface.
type NotifierFunc func(ctx context.Context, m *Message) (bool, error)

// Notify calls f.
func (f NotifierFunc) Notify(ctx context.Context, m *Message) (bool, error) { return f(ctx, m) }

// RetryAfterError is returned by a channel when the provider named the time
// before which it must not be asked again (HTTP Retry-After on 429/503, Slack's
// rate limit answer).
type RetryAfterError struct {
	Wait time.Duration
	Err  error
}

// Error implements error.
func (e *RetryAfterError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryAfter returns the wait the provider asked for, if err carries one.
func RetryAfter(err error) (time.Duration, bool) {
	var ra *RetryAfterError
	if errors.As(err, &ra) {
		return ra.Wait, true
	}
	return 0, false
}

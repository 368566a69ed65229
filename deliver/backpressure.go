package deliver

import (
	"errors"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"
	"golang.org/x/time/rate"

	"github.com/heraldproject/herald"
)

// Limits configures the backpressure of one channel.
type Limits struct {
	// Rate and PerEndpoint are messages per second for the whole channel and
	// for one endpoint (one webhook host, one Slack channel or webhook, ...);
	// zero means unlimited.
	Rate        float64
	PerEndpoint float64
	// Burst is how many messages may go at once before the rate applies
	// (at least 1).
	Burst int
	// BreakerFailures is how many transient failures in a row open an
	// endpoint's circuit breaker (0 disables the breaker).
	BreakerFailures int
	// BreakerOpen is how long an open breaker refuses before it lets one
	// probe through (half-open).
	BreakerOpen time.Duration
}

// endpoints names what a delivery is sent to, for Retry-After and rate
// limits (ep), and what its circuit breaker guards (breaker): a webhook's
// host, and its URL without the query (one failing path of a receiver that
// serves many must not hold up the others; a host that is down trips each of
// its URLs' breakers); for other channels the two are one. Names may contain
// secrets (Slack webhook URLs, webhook paths) and are logged only through
// loggable.
func endpoints(ch herald.Channel, u *herald.User) (ep, breaker string) {
	switch ch {
	case herald.ChannelWebhook:
		p, err := url.Parse(u.WebhookURL)
		if err != nil {
			ep = "webhook:" + u.WebhookURL
			return ep, ep
		}
		ep = "webhook:" + p.Scheme + "://" + p.Host
		return ep, ep + p.EscapedPath()
	case herald.ChannelSlack:
		if u.Slack.WebhookURL != "" {
			ep = "slack:" + u.Slack.WebhookURL
		} else {
			ep = "slack-channel:" + u.Slack.Channel
		}
	default:
		ep = string(ch) // one SMTP server, one SMS provider
	}
	return ep, ep
}

// loggable is an endpoint's or breaker's name as it may be logged: a Slack
// incoming webhook's URL is its secret, and a webhook's path may hold one.
func loggable(name string) string {
	switch {
	case strings.HasPrefix(name, "slack:"):
		return "slack: an incoming webhook (its URL is not logged)"
	case strings.HasPrefix(name, "webhook:"):
		if p, err := url.Parse(strings.TrimPrefix(name, "webhook:")); err == nil && p.Path != "" && p.Path != "/" {
			return "webhook:" + p.Scheme + "://" + p.Host + " (a path on it)"
		}
	}
	return name
}

// backpressure is a channel's per-endpoint state: the time before which an
// endpoint must not be asked again (Retry-After), its circuit breaker, and
// its token buckets. It is safe for concurrent use. State is per process.
type backpressure struct {
	l        Limits
	channel  *rate.Limiter
	mu       sync.Mutex
	until    map[string]time.Time
	breakers map[string]*gobreaker.CircuitBreaker[bool]
	limiters map[string]*rate.Limiter
	// onBreaker is told when an endpoint's breaker opens (true) or closes
	// (false).
	onBreaker func(ep string, open bool)
}

func newBackpressure(l Limits, onBreaker func(ep string, open bool)) *backpressure {
	l.Burst = max(l.Burst, 1)
	b := &backpressure{l: l, until: map[string]time.Time{}, breakers: map[string]*gobreaker.CircuitBreaker[bool]{},
		limiters: map[string]*rate.Limiter{}, onBreaker: onBreaker}
	if l.Rate > 0 {
		b.channel = rate.NewLimiter(rate.Limit(l.Rate), l.Burst)
	}
	return b
}

// notBefore returns how long to wait before ep may be asked again.
func (b *backpressure) notBefore(ep string, now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	u, ok := b.until[ep]
	if !ok {
		return 0
	}
	if !u.After(now) {
		delete(b.until, ep)
		return 0
	}
	return u.Sub(now)
}

// hold records that ep asked not to be called before t.
func (b *backpressure) hold(ep string, t time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if t.After(b.until[ep]) {
		b.until[ep] = t
	}
}

// limiters returns the token buckets a send to ep must pass.
func (b *backpressure) limitersFor(ep string) []*rate.Limiter {
	var out []*rate.Limiter
	if b.channel != nil {
		out = append(out, b.channel)
	}
	if b.l.PerEndpoint > 0 {
		b.mu.Lock()
		l, ok := b.limiters[ep]
		if !ok {
			l = rate.NewLimiter(rate.Limit(b.l.PerEndpoint), b.l.Burst)
			b.limiters[ep] = l
		}
		b.mu.Unlock()
		out = append(out, l)
	}
	return out
}

// errPermanent marks a failure that says nothing about the endpoint's health
// (a bad address), so the breaker counts it as a success.
type errPermanent struct{ error }

func (e errPermanent) Unwrap() error { return e.error }

// breaker returns ep's circuit breaker, or nil when breakers are off.
func (b *backpressure) breaker(ep string) *gobreaker.CircuitBreaker[bool] {
	if b.l.BreakerFailures <= 0 {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	cb, ok := b.breakers[ep]
	if !ok {
		n := uint32(b.l.BreakerFailures)
		cb = gobreaker.NewCircuitBreaker[bool](gobreaker.Settings{
			MaxRequests: 1,
			Timeout:     b.l.BreakerOpen,
			ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= n },
			OnStateChange: func(_ string, from, to gobreaker.State) {
				wasOpen, isOpen := from != gobreaker.StateClosed, to != gobreaker.StateClosed
				if wasOpen != isOpen && b.onBreaker != nil {
					b.onBreaker(ep, isOpen)
				}
			},
			IsSuccessful: func(err error) bool {
				var p errPermanent
				return err == nil || errors.As(err, &p)
			},
		})
		b.breakers[ep] = cb
	}
	return cb
}

// Package webhook delivers alerts as JSON POSTs to the URL a user registered.
//
// Receivers get one request per delivery attempt. The Idempotency-Key header
// carries the delivery id, which stays the same across retries, so a receiver
// can drop the duplicates that at-least-once delivery produces. Requests are
// signed (SignatureHeader) with the recipient's own WebhookSecret when they
// have one, else with Config.SigningSecret when it is set.
package webhook

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/notify"
)

// Defaults for Config.
const (
	DefaultTimeout   = 10 * time.Second
	DefaultUserAgent = "herald"
)

// Config tunes the webhook channel. The zero value is ready to use.
type Config struct {
	// Timeout bounds one delivery attempt, from dialing to reading the
	// answer. Zero means DefaultTimeout.
	Timeout time.Duration
	// UserAgent is sent in the User-Agent header. Empty means "herald".
	UserAgent string
	// SigningSecret, when set, signs every request (SignatureHeader) to a
	// recipient who has no WebhookSecret of their own.
	SigningSecret string
	// Dial makes the channel's connections (network "tcp"); nil means a
	// plain net.Dialer. Herald passes notify.Outbound's Dialer here, so
	// the outbound policy is checked on every address dialled.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

func (c Config) withDefaults() Config {
	c.Timeout = cmp.Or(c.Timeout, DefaultTimeout)
	c.UserAgent = cmp.Or(c.UserAgent, DefaultUserAgent)
	return c
}

// Payload is the JSON body of a webhook request.
type Payload struct {
	DeliveryID  string            `json:"deliveryId"`
	AlertID     string            `json:"alertId"`
	Recipient   string            `json:"recipient"`
	RecipientID string            `json:"recipientId"`
	Severity    string            `json:"severity"`
	Title       string            `json:"title"`
	Message     string            `json:"message"`
	Source      string            `json:"source"`
	Labels      map[string]string `json:"labels"`
	CreatedAt   string            `json:"createdAt"`
	Attempt     int               `json:"attempt"`
}

// NewPayload builds the request body for m. CreatedAt is RFC 3339 in UTC
// with sub-second precision when there is any; labels are never null.
func NewPayload(m *notify.Message) Payload {
	p := Payload{
		DeliveryID: m.DeliveryID,
		AlertID:    m.AlertID,
		Severity:   string(m.Severity),
		Title:      m.Title,
		Message:    m.Text,
		Source:     m.Source,
		Labels:     m.Labels,
		CreatedAt:  m.CreatedAt.UTC().Format(time.RFC3339Nano),
		Attempt:    m.Attempt,
	}
	if m.Recipient != nil {
		p.Recipient = m.Recipient.Name
		p.RecipientID = m.Recipient.ID
	}
	if p.Labels == nil {
		p.Labels = map[string]string{}
	}
	return p
}

// Notifier posts alerts to each recipient's WebhookURL. It is safe for
// concurrent use.
type Notifier struct {
	cfg    Config
	client *http.Client // the caller's, if any
	fast   *client      // else the channel's own
}

// New returns a Notifier. A nil client gets the channel's own HTTP/1.1
// client (client.go): keep-alive, connections made with cfg.Dial, cfg.Timeout
// bounding each attempt, and redirects not followed (a 3xx answer is a
// permanent failure: fix the URL). A client passed in is used as is (for a
// proxy, HTTP/2 or a transport of the caller's), with cfg.Timeout still
// bounding each attempt; cfg.Dial is then unused. With the channel's own
// client, cancelling one Notify's context ends every send then in flight on
// the Notifier, those being dialled too (they fail with a retryable error):
// fasthttp cannot cancel one request. Herald cancels sends only when it stops.
func New(cfg Config, client *http.Client) *Notifier {
	cfg = cfg.withDefaults()
	n := &Notifier{cfg: cfg, client: client}
	if client == nil {
		n.fast = newFastClient(cfg)
	}
	return n
}

// Notify posts m as a Payload to m.Recipient.WebhookURL. Any 2xx answer is
// success. Errors never contain the URL: it often embeds a secret.
func (n *Notifier) Notify(ctx context.Context, m *notify.Message) (retry bool, err error) {
	if m.Recipient == nil {
		return false, errors.New("webhook: message has no recipient")
	}
	target := m.Recipient.WebhookURL
	if target == "" {
		return false, fmt.Errorf("recipient %s has no webhookUrl", m.Recipient.Name)
	}
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return false, fmt.Errorf("recipient %s has an invalid webhookUrl: it must be an absolute http or https URL", m.Recipient.Name)
	}
	if err := m.Recipient.UnreadableSecret(herald.SecretWebhookSecret); err != nil {
		return false, err // never unsigned, nor signed with the server's secret instead
	}
	if retry, err = n.post(ctx, target, u, m); err != nil {
		err = notify.Redact(err, notify.URLSecrets(target)...)
	}
	return retry, err
}

// headers sets, with set, the headers of a request carrying body to m's
// recipient, whichever client sends it.
func (n *Notifier) headers(m *notify.Message, body []byte, set func(key, value string)) {
	set("Content-Type", "application/json")
	set("Idempotency-Key", m.DeliveryID)
	set("User-Agent", n.cfg.UserAgent)
	if secret := n.secret(m); secret != "" {
		set(SignatureHeader, Sign(secret, time.Now(), body))
	}
}

// secret is the key that signs requests to m's recipient: their own
// WebhookSecret, else the configured SigningSecret, else none (unsigned).
func (n *Notifier) secret(m *notify.Message) string {
	return cmp.Or(m.Recipient.WebhookSecret, n.cfg.SigningSecret)
}

func (n *Notifier) post(ctx context.Context, target string, u *url.URL, m *notify.Message) (bool, error) {
	p := NewPayload(m)
	body := p.appendJSON(make([]byte, 0, 512))
	if n.fast != nil {
		return n.postFast(ctx, u, m, body)
	}
	if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > n.cfg.Timeout {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, n.cfg.Timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return notify.ClassifyTransportError(err)
	}
	n.headers(m, body, req.Header.Set)
	resp, err := n.client.Do(req)
	if err != nil {
		return notify.ClassifyTransportError(err)
	}
	defer resp.Body.Close()
	return notify.CheckResponse(resp)
}

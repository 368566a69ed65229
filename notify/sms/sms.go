// Package sms delivers alerts as text messages through a Twilio-compatible
// Messages API: POST {URL}/2010-04-01/Accounts/{AccountSID}/Messages.json
// with form fields To, From and Body, authenticated with HTTP basic auth.
package sms

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/heraldproject/herald/notify"
)

// Defaults for Config.
const (
	DefaultURL       = "https://api.twilio.com"
	DefaultTimeout   = 10 * time.Second
	DefaultMaxLength = 1600
)

// Config says how to reach the SMS provider.
type Config struct {
	// URL is the API base URL. Empty means DefaultURL.
	URL string
	// AccountSID and AuthToken authenticate with the provider. Required.
	AccountSID string
	AuthToken  string
	// From is the sending number (E.164) or messaging service. Required.
	From string
	// Timeout bounds one delivery attempt. Zero means DefaultTimeout.
	Timeout time.Duration
	// MaxLength caps the body, in characters. Zero means DefaultMaxLength,
	// Twilio's limit.
	MaxLength int
}

// Notifier sends alerts by SMS. It is safe for concurrent use.
type Notifier struct {
	cfg      Config
	client   *http.Client
	endpoint string
}

// New checks cfg and returns a Notifier. A nil client gets a dedicated
// http.Client with cfg.Timeout; either way cfg.Timeout bounds each attempt.
func New(cfg Config, client *http.Client) (*Notifier, error) {
	cfg.URL = strings.TrimRight(cmp.Or(cfg.URL, DefaultURL), "/")
	cfg.Timeout = cmp.Or(cfg.Timeout, DefaultTimeout)
	cfg.MaxLength = cmp.Or(cfg.MaxLength, DefaultMaxLength)
	var errs []string
	if u, err := url.Parse(cfg.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Sprintf("url %q is not an absolute http or https URL", cfg.URL))
	}
	if cfg.AccountSID == "" {
		errs = append(errs, "accountSid is required")
	}
	if cfg.AuthToken == "" {
		errs = append(errs, "authToken is required")
	}
	if cfg.From == "" {
		errs = append(errs, "from is required")
	}
	if cfg.Timeout < 0 {
		errs = append(errs, fmt.Sprintf("timeout %v is negative", cfg.Timeout))
	}
	if cfg.MaxLength < 0 {
		errs = append(errs, fmt.Sprintf("maxLength %d is negative", cfg.MaxLength))
	}
	if len(errs) > 0 {
		return nil, errors.New("sms config: " + strings.Join(errs, "; "))
	}
	if client == nil {
		client = &http.Client{Timeout: cfg.Timeout}
	}
	return &Notifier{
		cfg:      cfg,
		client:   client,
		endpoint: cfg.URL + "/2010-04-01/Accounts/" + url.PathEscape(cfg.AccountSID) + "/Messages.json",
	}, nil
}

// Body renders m as an SMS: "[CRITICAL] title" and the text on the next
// line (or "[CRITICAL] text" without a title), cut to maxLen characters
// without splitting one.
func Body(m *notify.Message, maxLen int) string {
	body := "[" + strings.ToUpper(cmp.Or(string(m.Severity), "alert")) + "]"
	title, text := strings.TrimSpace(m.Title), strings.TrimSpace(m.Text)
	switch {
	case title != "" && text != "":
		body += " " + title + "\n" + text
	case title != "" || text != "":
		body += " " + title + text
	}
	return notify.Truncate(body, maxLen)
}

// Notify texts m to m.Recipient.Phone. Errors never contain the auth token.
func (n *Notifier) Notify(ctx context.Context, m *notify.Message) (retry bool, err error) {
	if m.Recipient == nil {
		return false, errors.New("sms: message has no recipient")
	}
	if m.Recipient.Phone == "" {
		return false, fmt.Errorf("recipient %s has no phone number", m.Recipient.Name)
	}
	retry, err = n.send(ctx, m)
	return retry, notify.Redact(err, n.cfg.AuthToken)
}

func (n *Notifier) send(ctx context.Context, m *notify.Message) (bool, error) {
	form := url.Values{
		"To":   {m.Recipient.Phone},
		"From": {n.cfg.From},
		"Body": {Body(m, n.cfg.MaxLength)},
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return notify.ClassifyTransportError(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(n.cfg.AccountSID, n.cfg.AuthToken)
	resp, err := n.client.Do(req)
	if err != nil {
		return notify.ClassifyTransportError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return notify.CheckResponse(resp)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	return notify.ClassifyStatus(resp.StatusCode, resp.Header, detail(body))
}

// apiError is Twilio's error body.
type apiError struct {
	Code     int    `json:"code"`
	Message  string `json:"message"`
	MoreInfo string `json:"more_info"`
	Status   int    `json:"status"`
}

// detail explains a failed answer: "twilio 21211: The 'To' number ... is not
// a valid phone number." when the body is Twilio's error JSON, else a
// snippet of the body.
func detail(body []byte) string {
	var e apiError
	if json.Unmarshal(body, &e) == nil && (e.Code != 0 || e.Message != "") {
		return notify.Truncate(fmt.Sprintf("twilio %d: %s", e.Code, strings.TrimSpace(e.Message)), 300)
	}
	return notify.Snippet(body)
}

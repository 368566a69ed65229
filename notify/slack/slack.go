// Package slack delivers alerts to Slack, through an incoming webhook or with
// chat.postMessage, using github.com/slack-go/slack.
//
// A user's SlackContact picks the way: a WebhookURL is posted to directly;
// otherwise the message goes to Channel with the contact's Token, or with
// the bot token from Config when the contact has none.
package slack

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	goslack "github.com/slack-go/slack"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/notify"
)

// Defaults for Config.
const (
	DefaultAPIURL  = "https://slack.com/api/"
	DefaultTimeout = 10 * time.Second
)

// Config tunes the Slack channel. The zero value works for users with a
// webhook URL or their own token.
type Config struct {
	// APIURL is the Web API base URL, ending in "/". Empty means
	// DefaultAPIURL; tests point it at slacktest.Server.APIURL.
	APIURL string
	// Token is the bot token used for users whose Slack contact names a
	// channel but no token.
	Token string
	// Timeout bounds one delivery attempt. Zero means DefaultTimeout.
	Timeout time.Duration
}

// Notifier posts alerts to Slack. It is safe for concurrent use.
type Notifier struct {
	cfg    Config
	client *http.Client // wraps the caller's transport to see failed answers

	mu  sync.Mutex
	api map[string]*goslack.Client // Web API clients by token
}

// New returns a Notifier. A nil client gets a dedicated http.Client with
// cfg.Timeout; either way cfg.Timeout bounds each attempt.
func New(cfg Config, client *http.Client) *Notifier {
	cfg.APIURL = cmp.Or(cfg.APIURL, DefaultAPIURL)
	cfg.Timeout = cmp.Or(cfg.Timeout, DefaultTimeout)
	if client == nil {
		client = &http.Client{Timeout: cfg.Timeout}
	}
	return &Notifier{cfg: cfg, client: withCapture(client), api: map[string]*goslack.Client{}}
}

// Notify posts m to the recipient's Slack contact. Errors never contain the
// webhook URL or the token.
func (n *Notifier) Notify(ctx context.Context, m *notify.Message) (retry bool, err error) {
	if m.Recipient == nil {
		return false, errors.New("slack: message has no recipient")
	}
	contact := m.Recipient.Slack
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	ctx, answer := withAnswer(ctx)

	switch {
	case contact.WebhookURL != "":
		msg := webhookMessage(m)
		err = goslack.PostWebhookCustomHTTPContext(ctx, contact.WebhookURL, n.client, &msg)
		retry, err = classify(err, answer)
		return retry, notify.Redact(err, notify.URLSecrets(contact.WebhookURL)...)
	case contact.Channel != "":
		if err := m.Recipient.UnreadableSecret(herald.SecretSlackToken); err != nil {
			return false, err // never posted with the bot token in the user's stead
		}
		token := cmp.Or(contact.Token, n.cfg.Token)
		if token == "" {
			return false, fmt.Errorf("recipient %s has a Slack channel but no token, and no bot token is configured", m.Recipient.Name)
		}
		_, _, err = n.apiClient(token).PostMessageContext(ctx, contact.Channel, messageOptions(m)...)
		retry, err = classify(err, answer)
		if err != nil {
			err = fmt.Errorf("chat.postMessage to %s: %w", contact.Channel, err)
		}
		return retry, notify.Redact(err, token, n.cfg.Token)
	default:
		return false, fmt.Errorf("recipient %s has no Slack contact", m.Recipient.Name)
	}
}

// apiClient returns the cached Web API client for token.
func (n *Notifier) apiClient(token string) *goslack.Client {
	n.mu.Lock()
	defer n.mu.Unlock()
	c, ok := n.api[token]
	if !ok {
		c = goslack.New(token, goslack.OptionAPIURL(n.cfg.APIURL), goslack.OptionHTTPClient(n.client))
		n.api[token] = c
	}
	return c
}

// Package email delivers alerts by SMTP, using github.com/wneessen/go-mail.
//
// Each message travels over its own connection: go-mail's Client is not safe
// for concurrent use, and alert volume per recipient is low. The Message-ID
// is derived from the delivery id, so it is the same on every retry and
// receivers can drop duplicates.
package email

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/wneessen/go-mail"

	"github.com/heraldproject/herald/notify"
)

// Headers Herald adds to every alert email.
const (
	HeaderDeliveryID = "X-Herald-Delivery-Id"
	HeaderAlertID    = "X-Herald-Alert-Id"
	HeaderSeverity   = "X-Herald-Severity"
)

// Notifier sends alerts as plain-text emails. It is safe for concurrent use.
type Notifier struct {
	cfg Config
	tls *tls.Config
}

// New checks cfg and returns a Notifier. It does not connect to the server.
func New(cfg Config) (*Notifier, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Notifier{
		cfg: cfg,
		tls: &tls.Config{
			ServerName:         cfg.Host,
			MinVersion:         tls.VersionTLS12,
			InsecureSkipVerify: cfg.InsecureSkipVerify, //nolint:gosec // opt-in, for tests
		},
	}, nil
}

// Notify emails m to m.Recipient.Email. A 4xx SMTP reply, a network failure
// or a timeout is retried; a 5xx reply (a rejected recipient, failed
// authentication) is permanent and its text is in the error. Errors never
// contain the password.
func (n *Notifier) Notify(ctx context.Context, m *notify.Message) (retry bool, err error) {
	if m.Recipient == nil {
		return false, errors.New("email: message has no recipient")
	}
	if m.Recipient.Email == "" {
		return false, fmt.Errorf("recipient %s has no email address", m.Recipient.Name)
	}
	msg, err := n.message(m)
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()

	var stops []func() bool
	defer func() {
		for _, stop := range stops {
			stop()
		}
	}()
	dial := func(dctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := n.dial(dctx, network, addr)
		if err == nil {
			// go-mail only watches ctx while dialing; closing the
			// connection makes every later step honour it too.
			stops = append(stops, context.AfterFunc(ctx, func() { _ = conn.Close() }))
		}
		return conn, err
	}
	client, err := mail.NewClient(n.cfg.Host, n.clientOptions(dial)...)
	if err != nil {
		return false, fmt.Errorf("email: %w", err)
	}
	err = client.DialAndSendWithContext(ctx, msg)
	retry, err = classify(ctx, err)
	return retry, notify.Redact(err, n.cfg.Password)
}

// dial connects to the server, speaking TLS from the start with TLSImplicit.
func (n *Notifier) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{}
	if n.cfg.TLS == TLSImplicit {
		return (&tls.Dialer{NetDialer: d, Config: n.tls}).DialContext(ctx, network, addr)
	}
	return d.DialContext(ctx, network, addr)
}

func (n *Notifier) clientOptions(dial mail.DialContextFunc) []mail.Option {
	policy := mail.TLSOpportunistic
	switch n.cfg.TLS {
	case TLSNone, TLSImplicit: // implicit TLS is done by dial
		policy = mail.NoTLS
	case TLSStartTLS:
		policy = mail.TLSMandatory
	}
	opts := []mail.Option{
		mail.WithPort(n.cfg.Port),
		mail.WithTimeout(n.cfg.Timeout),
		mail.WithTLSPolicy(policy),
		mail.WithTLSConfig(n.tls),
		mail.WithDialContextFunc(dial),
	}
	if n.cfg.Username != "" {
		opts = append(opts,
			mail.WithUsername(n.cfg.Username),
			mail.WithPassword(n.cfg.Password),
			// go-mail's PLAIN and LOGIN refuse to send the password over an
			// unencrypted connection to anything but localhost.
			mail.WithOpportunisticSMTPAuth(mail.SMTPAuthSCRAMSHA256, mail.SMTPAuthSCRAMSHA1,
				mail.SMTPAuthPlain, mail.SMTPAuthLogin),
		)
	}
	return opts
}

// message builds the email for m.
func (n *Notifier) message(m *notify.Message) (*mail.Msg, error) {
	msg := mail.NewMsg()
	if err := msg.From(n.cfg.From); err != nil {
		return nil, fmt.Errorf("email: sender %q: %w", n.cfg.From, err)
	}
	if err := msg.To(m.Recipient.Email); err != nil {
		return nil, fmt.Errorf("recipient %s has an invalid email address: %w", m.Recipient.Name, err)
	}
	msg.Subject(notify.Subject(m))
	msg.SetMessageIDWithValue(m.DeliveryID + "@herald")
	msg.SetDateWithValue(time.Now())
	msg.SetGenHeader(HeaderDeliveryID, m.DeliveryID)
	msg.SetGenHeader(HeaderAlertID, m.AlertID)
	msg.SetGenHeader(HeaderSeverity, string(m.Severity))
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	msg.SetBodyString(mail.TypeTextPlain, notify.PlainText(m))
	return msg, nil
}

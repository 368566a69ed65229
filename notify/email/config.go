package email

import (
	"cmp"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"
)

// TLS modes for Config.TLS.
const (
	// TLSNone never encrypts.
	TLSNone = "none"
	// TLSOpportunistic upgrades with STARTTLS when the server offers it.
	TLSOpportunistic = "opportunistic"
	// TLSStartTLS requires STARTTLS and fails when the server lacks it.
	TLSStartTLS = "starttls"
	// TLSImplicit speaks TLS from the first byte (SMTPS, usually port 465).
	TLSImplicit = "tls"
)

// DefaultTimeout bounds one delivery attempt when Config.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// Config says how to reach the SMTP server that relays alert emails.
type Config struct {
	// Host is the SMTP server's host name or IP address. Required.
	Host string
	// Port defaults to 465 with TLSImplicit, 587 with TLSStartTLS, 25
	// otherwise.
	Port int
	// Username and Password enable SMTP AUTH (SCRAM, PLAIN or LOGIN, as the
	// server offers) when Username is set. PLAIN and LOGIN are only used over
	// TLS or to localhost.
	Username string
	Password string
	// From is the sender address, "alerts@example.com" or "Herald
	// <alerts@example.com>". Required.
	From string
	// TLS is one of TLSNone, TLSOpportunistic (the default), TLSStartTLS or
	// TLSImplicit.
	TLS string
	// Timeout bounds one delivery attempt, connection included. Zero means
	// DefaultTimeout.
	Timeout time.Duration
	// InsecureSkipVerify accepts any server certificate. For testing only.
	InsecureSkipVerify bool
}

// withDefaults fills in defaults and checks the result.
func (c Config) withDefaults() (Config, error) {
	c.TLS = cmp.Or(strings.ToLower(strings.TrimSpace(c.TLS)), TLSOpportunistic)
	c.Timeout = cmp.Or(c.Timeout, DefaultTimeout)
	if c.Port == 0 {
		switch c.TLS {
		case TLSImplicit:
			c.Port = 465
		case TLSStartTLS:
			c.Port = 587
		default:
			c.Port = 25
		}
	}
	var errs []string
	if strings.TrimSpace(c.Host) == "" {
		errs = append(errs, "host is required")
	}
	if c.Port < 1 || c.Port > 65535 {
		errs = append(errs, fmt.Sprintf("port %d is out of range 1-65535", c.Port))
	}
	if c.From == "" {
		errs = append(errs, "from is required")
	} else if _, err := mail.ParseAddress(c.From); err != nil {
		errs = append(errs, fmt.Sprintf("from %q is not an email address: %v", c.From, err))
	}
	switch c.TLS {
	case TLSNone, TLSOpportunistic, TLSStartTLS, TLSImplicit:
	default:
		errs = append(errs, fmt.Sprintf("tls %q is not one of none, opportunistic, starttls, tls", c.TLS))
	}
	if c.Password != "" && c.Username == "" {
		errs = append(errs, "password is set but username is not")
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Sprintf("timeout %v is negative", c.Timeout))
	}
	if len(errs) > 0 {
		return c, errors.New("email config: " + strings.Join(errs, "; "))
	}
	return c, nil
}

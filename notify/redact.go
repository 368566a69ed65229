package notify

import (
	"cmp"
	"net/url"
	"slices"
	"strings"
)

// Redacted replaces a secret in error messages.
const Redacted = "<redacted>"

// RedactURL returns u with everything that may carry a secret removed: only
// the scheme and host are kept ("https://hooks.slack.com/<redacted>").
// Userinfo, path, query and fragment are dropped. A string that does not parse
// as an absolute URL gives "<redacted>".
func RedactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Scheme == "" || p.Host == "" {
		return Redacted
	}
	return p.Scheme + "://" + p.Host + "/" + Redacted
}

// Redact returns an error whose message is err's with every non-empty secret
// (and its URL-escaped forms) replaced by "<redacted>". The result unwraps to
// err, so errors.Is and errors.As keep working. Redact returns err itself when
// its message holds no secret, and nil for a nil err.
func Redact(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	redacted := RedactString(msg, secrets...)
	if redacted == msg {
		return err
	}
	return &redactedError{msg: redacted, err: err}
}

// RedactString replaces every non-empty secret in s, and the URL-escaped forms
// of each, with "<redacted>". Longer secrets are replaced first, so a secret
// that contains another is removed whole.
func RedactString(s string, secrets ...string) string {
	var forms []string
	for _, secret := range secrets {
		if secret == "" {
			continue
		}
		forms = append(forms, secret, url.QueryEscape(secret), url.PathEscape(secret))
	}
	slices.SortFunc(forms, func(a, b string) int {
		return cmp.Or(cmp.Compare(len(b), len(a)), strings.Compare(a, b))
	})
	for _, f := range slices.Compact(forms) {
		s = strings.ReplaceAll(s, f, Redacted)
	}
	return s
}

// URLSecrets lists the parts of u that must not appear in an error, for use
// with Redact: u itself, its re-encoded form, its path and query, and the
// password in its userinfo. A path of just "/" is not listed.
func URLSecrets(u string) []string {
	secrets := []string{u}
	p, err := url.Parse(u)
	if err != nil {
		return secrets
	}
	secrets = append(secrets, p.String())
	if rest := p.RequestURI(); len(rest) > 1 {
		secrets = append(secrets, rest)
	}
	if p.RawQuery != "" {
		secrets = append(secrets, p.RawQuery)
	}
	if pw, ok := p.User.Password(); ok {
		secrets = append(secrets, pw)
	}
	return secrets
}

// redactedError carries a cleaned message for an error whose own message
// held a secret.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

package notify

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/url"
	"syscall"
)

// TransportError is a failure to reach a provider or to hear its answer,
// described in a few words that are safe to show: its message never holds
// the URL that was asked for. Err is the original error.
type TransportError struct {
	Msg string
	Err error
}

// Error returns the short message.
func (e *TransportError) Error() string { return e.Msg }

// Unwrap returns the original error.
func (e *TransportError) Unwrap() error { return e.Err }

// ClassifyTransportError turns an error from http.Client.Do, or from dialing
// a provider, into Notify's (retry, err) pair. Timeouts, cancellation,
// refused or reset connections, DNS failures and other network errors are
// worth retrying; a malformed URL, an unsupported scheme and a certificate
// that fails verification are permanent. The returned error is a
// *TransportError: a short message ("timeout", "connection refused: dial tcp
// 127.0.0.1:9999") that never contains the request URL, wrapping err. A nil
// err gives (false, nil).
func ClassifyTransportError(err error) (retry bool, e error) {
	if err == nil {
		return false, nil
	}
	retry, msg := describeTransport(err)
	return retry, &TransportError{Msg: msg, Err: err}
}

func describeTransport(err error) (retry bool, msg string) {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		if ue.Op == "parse" {
			return false, "malformed URL"
		}
		if u, perr := url.Parse(ue.URL); perr == nil {
			if u.Scheme != "http" && u.Scheme != "https" {
				return false, "unsupported URL scheme " + quoteShort(u.Scheme)
			}
			if u.Host == "" {
				return false, "URL has no host"
			}
		}
	}
	switch {
	case errors.Is(err, ErrForbiddenAddress):
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Err != nil {
			return false, oe.Err.Error()
		}
		return false, ErrForbiddenAddress.Error()
	case errors.Is(err, context.Canceled):
		return true, "canceled"
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return true, "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return true, withAddr("connection refused", err)
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return true, withAddr("connection reset", err)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return true, "connection closed by peer"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return true, withAddr("host unreachable", err)
	}
	if de, ok := errors.AsType[*net.DNSError](err); ok {
		if de.IsNotFound {
			return true, "no such host " + de.Name
		}
		return true, "DNS lookup failed for " + de.Name
	}
	if certErr, ok := certificateError(err); ok {
		return false, "TLS certificate verification failed: " + certErr
	}
	if _, ok := errors.AsType[tls.RecordHeaderError](err); ok {
		return false, "TLS handshake failed: server does not speak TLS"
	}
	if oe, ok := errors.AsType[*net.OpError](err); ok {
		// An *net.OpError names addresses, never URLs.
		return true, "network error: " + oe.Error()
	}
	if ue, ok := errors.AsType[*url.Error](err); ok {
		// The inner error of a *url.Error does not repeat the URL.
		return true, ue.Err.Error()
	}
	return true, err.Error()
}

func isTimeout(err error) bool {
	ne, ok := errors.AsType[net.Error](err)
	return ok && ne.Timeout()
}

// certificateError reports a failed certificate verification.
func certificateError(err error) (string, bool) {
	if e, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
		return e.Err.Error(), true
	}
	if e, ok := errors.AsType[x509.UnknownAuthorityError](err); ok {
		return e.Error(), true
	}
	if e, ok := errors.AsType[x509.HostnameError](err); ok {
		return e.Error(), true
	}
	if e, ok := errors.AsType[x509.CertificateInvalidError](err); ok {
		return e.Error(), true
	}
	return "", false
}

// withAddr appends the operation and remote address of a *net.OpError in err,
// if any: "connection refused: dial tcp 127.0.0.1:9999".
func withAddr(what string, err error) string {
	oe, ok := errors.AsType[*net.OpError](err)
	if !ok || oe.Addr == nil {
		return what
	}
	op := oe.Op
	if oe.Net != "" {
		op += " " + oe.Net
	}
	return what + ": " + op + " " + oe.Addr.String()
}

func quoteShort(s string) string {
	if len(s) > 16 {
		s = s[:16]
	}
	return `"` + s + `"`
}

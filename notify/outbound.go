package notify

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// ErrForbiddenAddress is returned (wrapped) when an outbound connection would
// reach an address the outbound policy refuses. Such a failure is permanent.
var ErrForbiddenAddress = errors.New("address refused by the outbound policy")

// Outbound is the policy for connections to addresses users supply (webhook
// and Slack webhook URLs). With DenyPrivate, loopback, private, link-local,
// unspecified and multicast addresses are refused unless listed in Allow, so
// a user cannot make Herald call into its own network (SSRF). The check runs
// on the address actually dialled, after DNS, so a name that resolves to a
// private address is refused too.
type Outbound struct {
	DenyPrivate bool
	// Allow lists prefixes (10.1.0.0/16, 127.0.0.1/32) that are allowed
	// despite DenyPrivate.
	Allow []netip.Prefix
}

// Check reports whether ip may be dialled.
func (o Outbound) Check(ip netip.Addr) error {
	if !o.DenyPrivate {
		return nil
	}
	ip = ip.Unmap()
	for _, p := range o.Allow {
		if p.Contains(ip) {
			return nil
		}
	}
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsUnspecified() || ip.IsMulticast() || ip.IsInterfaceLocalMulticast() {
		return fmt.Errorf("%w: %s is loopback, private or link-local (allow it with outbound.allow)", ErrForbiddenAddress, ip)
	}
	return nil
}

// Dialer returns a dialer that enforces the policy on every address it
// dials (after DNS), for clients that make their own connections.
func (o Outbound) Dialer() *net.Dialer {
	return &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second,
		Control: func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: %s", ErrForbiddenAddress, address)
			}
			return o.Check(ap.Addr())
		}}
}

// Client returns an HTTP client for user-supplied URLs that enforces the
// policy, keeps connections alive (bounded per host) and does not follow
// redirects (a redirect could lead past the policy, and a webhook that moved
// should be updated).
func (o Outbound) Client(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext:         o.Dialer().DialContext,
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 128, // at least deliver.concurrency, or sends beyond it redial
			IdleConnTimeout:     90 * time.Second,
			TLSHandshakeTimeout: 10 * time.Second,
			ForceAttemptHTTP2:   true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

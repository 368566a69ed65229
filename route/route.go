// Package route decides which channels reach a recipient for an alert.
package route

import (
	"fmt"
	"slices"

	"github.com/heraldproject/herald"
)

// Router chooses channels. Routes map a severity to the channels alerts of
// that severity go to (from configuration); a severity without an entry uses
// every channel the recipient can be reached on. Enabled lists the channels
// this server is configured to send on (nil means all).
type Router struct {
	Routes  map[herald.Severity][]herald.Channel
	Enabled []herald.Channel
}

// Choice is the outcome of routing one alert to one recipient.
type Choice struct {
	// Channels are the channels to deliver on.
	Channels []herald.Channel
	// Missing are channels the alert asked for explicitly that cannot be used
	// for this recipient, each with the reason; each becomes a dead delivery.
	Missing map[herald.Channel]string
}

// Choose picks channels for the alert and recipient:
//
//  1. the alert's explicit channels, when it names any (channels the recipient
//     has no contact for, or that the server does not have configured, are
//     reported as Missing with the reason);
//  2. else the configured route for the alert's severity, restricted to the
//     channels the recipient can be reached on; if that leaves none, every
//     channel the recipient can be reached on, so nobody is silently skipped;
//  3. else every channel the recipient can be reached on.
//
// "Can be reached on" means the recipient has a contact for the channel and
// the channel is enabled.
func (r *Router) Choose(a *herald.Alert, u *herald.User) Choice {
	var c Choice
	if len(a.Channels) > 0 {
		for _, ch := range a.Channels {
			switch {
			case !r.enabled(ch):
				c.missing(ch, fmt.Sprintf("channel %s is not configured on this server", ch))
			case !u.Reaches(ch):
				c.missing(ch, fmt.Sprintf("%s has no contact for channel %s", u.Name, ch))
			case !slices.Contains(c.Channels, ch):
				c.Channels = append(c.Channels, ch)
			}
		}
		return c
	}
	all := r.reachable(u)
	for _, ch := range r.Routes[a.Severity] {
		if slices.Contains(all, ch) && !slices.Contains(c.Channels, ch) {
			c.Channels = append(c.Channels, ch)
		}
	}
	if len(c.Channels) == 0 {
		c.Channels = all
	}
	return c
}

func (c *Choice) missing(ch herald.Channel, reason string) {
	if c.Missing == nil {
		c.Missing = make(map[herald.Channel]string)
	}
	c.Missing[ch] = reason
}

func (r *Router) enabled(ch herald.Channel) bool {
	return r.Enabled == nil || slices.Contains(r.Enabled, ch)
}

func (r *Router) reachable(u *herald.User) []herald.Channel {
	var out []herald.Channel
	for _, ch := range herald.Channels {
		if r.enabled(ch) && u.Reaches(ch) {
			out = append(out, ch)
		}
	}
	return out
}

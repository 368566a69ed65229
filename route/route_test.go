package route_test

import (
	"slices"
	"testing"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/route"
)

func TestChoose(t *testing.T) {
	full := &herald.User{Name: "full", Email: "f@example.com", Phone: "+15551234567", WebhookURL: "http://x",
		Slack: herald.SlackContact{Channel: "C1"}}
	slackOnly := &herald.User{Name: "s", Slack: herald.SlackContact{WebhookURL: "https://hooks.example.com/x"}}
	none := &herald.User{Name: "none"}
	r := &route.Router{Routes: map[herald.Severity][]herald.Channel{
		herald.SeverityCritical: {herald.ChannelSMS, herald.ChannelEmail},
	}}
	crit := &herald.Alert{Severity: herald.SeverityCritical}
	info := &herald.Alert{Severity: herald.SeverityInfo}
	explicit := &herald.Alert{Severity: herald.SeverityInfo, Channels: []herald.Channel{herald.ChannelSMS, herald.ChannelSlack}}

	for _, tc := range []struct {
		name    string
		r       *route.Router
		a       *herald.Alert
		u       *herald.User
		want    []herald.Channel
		missing []herald.Channel
	}{
		{"route", r, crit, full, []herald.Channel{herald.ChannelSMS, herald.ChannelEmail}, nil},
		{"route falls back to contacts", r, crit, slackOnly, []herald.Channel{herald.ChannelSlack}, nil},
		{"no route: every contact", r, info, full, herald.Channels, nil},
		{"explicit", r, explicit, full, []herald.Channel{herald.ChannelSMS, herald.ChannelSlack}, nil},
		{"explicit with missing contact", r, explicit, slackOnly, []herald.Channel{herald.ChannelSlack}, []herald.Channel{herald.ChannelSMS}},
		{"no contacts", r, info, none, nil, nil},
		{"disabled channel skipped", &route.Router{Enabled: []herald.Channel{herald.ChannelWebhook}}, info, full, []herald.Channel{herald.ChannelWebhook}, nil},
		{"disabled channel asked for", &route.Router{Enabled: []herald.Channel{herald.ChannelWebhook}}, explicit, full, nil, []herald.Channel{herald.ChannelSMS, herald.ChannelSlack}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.r.Choose(tc.a, tc.u)
			if !slices.Equal(c.Channels, tc.want) {
				t.Errorf("channels = %v, want %v", c.Channels, tc.want)
			}
			var missing []herald.Channel
			for _, ch := range herald.Channels {
				if reason, ok := c.Missing[ch]; ok {
					if reason == "" {
						t.Errorf("missing %s without a reason", ch)
					}
					missing = append(missing, ch)
				}
			}
			slices.Sort(missing)
			want := slices.Clone(tc.missing)
			slices.Sort(want)
			if !slices.Equal(missing, want) {
				t.Errorf("missing = %v, want %v", missing, want)
			}
		})
	}
}

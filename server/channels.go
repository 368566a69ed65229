package server

import (
	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/config"
	"github.com/heraldproject/herald/notify"
	"github.com/heraldproject/herald/notify/email"
	"github.com/heraldproject/herald/notify/slack"
	"github.com/heraldproject/herald/notify/sms"
	"github.com/heraldproject/herald/notify/webhook"
)

// channelNotifiers builds the notifiers of the configured channels. Webhook
// and Slack need no server-side settings; email needs email.host and SMS
// needs sms.accountSid.
func channelNotifiers(cfg *config.Config) (map[herald.Channel]notify.Notifier, []herald.Channel, error) {
	deny, allow, err := cfg.Policy()
	if err != nil {
		return nil, nil, err
	}
	out := notify.Outbound{DenyPrivate: deny, Allow: allow}
	ns := map[herald.Channel]notify.Notifier{
		herald.ChannelWebhook: webhook.New(webhook.Config{Timeout: cfg.Webhook.Timeout, SigningSecret: cfg.Webhook.SigningSecret,
			Dial: out.Dialer().DialContext}, nil),
		herald.ChannelSlack: slack.New(slack.Config{APIURL: cfg.Slack.APIURL, Token: cfg.Slack.Token, Timeout: cfg.Slack.Timeout},
			out.Client(cfg.Slack.Timeout)),
	}
	enabled := []herald.Channel{herald.ChannelWebhook, herald.ChannelSlack}
	if cfg.Email.Host != "" {
		n, err := email.New(email.Config{Host: cfg.Email.Host, Port: cfg.Email.Port, Username: cfg.Email.Username,
			Password: cfg.Email.Password, From: cfg.Email.From, TLS: cfg.Email.TLS, Timeout: cfg.Email.Timeout})
		if err != nil {
			return nil, nil, err
		}
		ns[herald.ChannelEmail] = n
		enabled = append(enabled, herald.ChannelEmail)
	}
	if cfg.SMS.AccountSID != "" {
		n, err := sms.New(sms.Config{URL: cfg.SMS.URL, AccountSID: cfg.SMS.AccountSID, AuthToken: cfg.SMS.AuthToken,
			From: cfg.SMS.From, Timeout: cfg.SMS.Timeout}, nil)
		if err != nil {
			return nil, nil, err
		}
		ns[herald.ChannelSMS] = n
		enabled = append(enabled, herald.ChannelSMS)
	}
	return ns, enabled, nil
}

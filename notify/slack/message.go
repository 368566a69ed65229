package slack

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"

	goslack "github.com/slack-go/slack"
	"github.com/slack-go/slack/slackutilsx"

	"github.com/heraldproject/herald"
	"github.com/heraldproject/herald/notify"
)

// maxTextRunes keeps an attachment's text well under Slack's limits.
const maxTextRunes = 3000

// color returns the attachment color for a severity.
func color(s herald.Severity) string {
	switch s {
	case herald.SeverityCritical:
		return "#D40E0D"
	case herald.SeverityError:
		return "#E8590C"
	case herald.SeverityWarning:
		return "#F2C744"
	case herald.SeverityInfo:
		return "#439FE0"
	}
	return "#9E9E9E"
}

// attachment renders m as a Slack attachment colored by severity: the text,
// source and labels, and the ids in the footer. The subject goes in the
// message's own text, which notifications show. Text from the alert is
// escaped, so it cannot mention users or channels or form links.
func attachment(m *notify.Message) goslack.Attachment {
	esc := slackutilsx.EscapeMessage
	a := goslack.Attachment{
		Color:    color(m.Severity),
		Fallback: notify.Subject(m),
		Text:     esc(notify.Truncate(strings.TrimSpace(m.Text), maxTextRunes)),
		Footer:   esc("Herald · alert " + m.AlertID + " · delivery " + m.DeliveryID),
	}
	if m.Source != "" {
		a.Fields = append(a.Fields, goslack.AttachmentField{Title: "Source", Value: esc(m.Source), Short: true})
	}
	if len(m.Labels) > 0 {
		var labels []string
		for _, k := range slices.Sorted(maps.Keys(m.Labels)) {
			labels = append(labels, k+"="+m.Labels[k])
		}
		a.Fields = append(a.Fields, goslack.AttachmentField{Title: "Labels", Value: esc(strings.Join(labels, ", ")), Short: true})
	}
	if !m.CreatedAt.IsZero() {
		a.Ts = json.Number(strconv.FormatInt(m.CreatedAt.Unix(), 10))
	}
	return a
}

// webhookMessage is the incoming-webhook body for m: the subject as the
// notification text and one attachment.
func webhookMessage(m *notify.Message) goslack.WebhookMessage {
	return goslack.WebhookMessage{
		Text:        slackutilsx.EscapeMessage(notify.Subject(m)),
		Attachments: []goslack.Attachment{attachment(m)},
	}
}

// messageOptions are the chat.postMessage options for m.
func messageOptions(m *notify.Message) []goslack.MsgOption {
	return []goslack.MsgOption{
		goslack.MsgOptionText(notify.Subject(m), true),
		goslack.MsgOptionAttachments(attachment(m)),
		goslack.MsgOptionDisableLinkUnfurl(),
	}
}

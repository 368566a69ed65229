package webhook

import (
	"slices"
	"strconv"
	"unicode/utf8"
)

// appendJSON appends p encoded as encoding/json.Marshal encodes it, byte
// for byte (FuzzPayloadJSON holds it to that), without reflection: every
// send encodes a payload, and json.Marshal was 3% of the CPU at fan-out 10.
func (p *Payload) appendJSON(b []byte) []byte {
	b = append(b, `{"deliveryId":`...)
	b = appendString(b, p.DeliveryID)
	b = append(b, `,"alertId":`...)
	b = appendString(b, p.AlertID)
	b = append(b, `,"recipient":`...)
	b = appendString(b, p.Recipient)
	b = append(b, `,"recipientId":`...)
	b = appendString(b, p.RecipientID)
	b = append(b, `,"severity":`...)
	b = appendString(b, p.Severity)
	b = append(b, `,"title":`...)
	b = appendString(b, p.Title)
	b = append(b, `,"message":`...)
	b = appendString(b, p.Message)
	b = append(b, `,"source":`...)
	b = appendString(b, p.Source)
	b = append(b, `,"labels":`...)
	if p.Labels == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '{')
		var arr [16]string // most alerts have a few labels: no allocation
		keys := arr[:0]
		for k := range p.Labels {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendString(b, p.Labels[k])
		}
		b = append(b, '}')
	}
	b = append(b, `,"createdAt":`...)
	b = appendString(b, p.CreatedAt)
	b = append(b, `,"attempt":`...)
	b = strconv.AppendInt(b, int64(p.Attempt), 10)
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string the way encoding/json does by
// default: <, > and & escaped for HTML, U+2028 and U+2029 escaped for
// JavaScript, invalid UTF-8 replaced by U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

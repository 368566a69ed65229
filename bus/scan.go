package bus

import (
	"time"
	"unicode/utf8"
)

// Scanner reads a record value token by token in the exact form Herald's
// own encoders write it (AppendString and the record encoders built on it):
// no space between tokens, strings without escapes. Each method consumes
// what it reads and reports false for anything else, after which the
// caller reads the value with DecodeValue instead. Decoders built on it
// (the log and delivery records') read a record in a fraction of the time
// the general decoder takes, and must set exactly what it would for any
// input they accept; their tests hold them to that.
type Scanner struct {
	b []byte // the value
	s string // one copy of it, which the strings returned share
	i int
}

// NewScanner returns a Scanner of v, which must not change while the
// Scanner is in use. The strings it returns share one copy of v.
func NewScanner(v []byte) *Scanner { return &Scanner{b: v, s: string(v)} }

// Byte consumes c if it is next.
func (d *Scanner) Byte(c byte) bool {
	if d.i < len(d.s) && d.s[d.i] == c {
		d.i++
		return true
	}
	return false
}

// Key consumes k (a literal run of tokens, such as `,"name":`) if it is
// next.
func (d *Scanner) Key(k string) bool {
	if len(d.s)-d.i >= len(k) && d.s[d.i:d.i+len(k)] == k {
		d.i += len(k)
		return true
	}
	return false
}

// Str consumes a JSON string that needs no unescaping (no backslash, no
// control character, valid UTF-8) and returns its contents.
func (d *Scanner) Str() (string, bool) {
	if !d.Byte('"') {
		return "", false
	}
	start, ascii := d.i, true
	for ; d.i < len(d.s); d.i++ {
		switch c := d.s[d.i]; {
		case c == '"':
			s := d.s[start:d.i]
			d.i++
			return s, ascii || utf8.ValidString(s)
		case c == '\\' || c < 0x20:
			return "", false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return "", false
}

// Time consumes a JSON string and parses it as time.Time's UnmarshalJSON
// does (RFC 3339), as the general decoder does.
func (d *Scanner) Time() (time.Time, bool) {
	start := d.i
	if _, ok := d.Str(); !ok {
		return time.Time{}, false
	}
	var t time.Time
	if t.UnmarshalJSON(d.b[start:d.i]) != nil {
		return time.Time{}, false
	}
	return t, true
}

// Int consumes a non-negative JSON integer of at most 9 digits (no sign,
// fraction or exponent: others are left to the general decoder).
func (d *Scanner) Int() (int, bool) {
	start, n := d.i, 0
	for d.i < len(d.s) && d.i-start < 10 && d.s[d.i] >= '0' && d.s[d.i] <= '9' {
		n = n*10 + int(d.s[d.i]-'0')
		d.i++
	}
	switch digits := d.i - start; {
	case digits == 0 || digits > 9:
		return 0, false
	case digits > 1 && d.s[start] == '0': // JSON allows no leading zero
		return 0, false
	}
	if d.i < len(d.s) && (d.s[d.i] == '.' || d.s[d.i] == 'e' || d.s[d.i] == 'E') {
		return 0, false
	}
	return n, true
}

// StringMap consumes a JSON object whose values are strings (a later
// duplicate name wins, as with the general decoder).
func (d *Scanner) StringMap() (map[string]string, bool) {
	if !d.Byte('{') {
		return nil, false
	}
	m := make(map[string]string)
	for first := true; !d.Byte('}'); first = false {
		if !first && !d.Byte(',') {
			return nil, false
		}
		k, ok := d.Str()
		if !ok || !d.Byte(':') {
			return nil, false
		}
		if m[k], ok = d.Str(); !ok {
			return nil, false
		}
	}
	return m, true
}

// ScanStrings consumes a JSON array of strings, or null (a nil slice, as
// the general decoder gives; [] gives an empty one).
func ScanStrings[S ~string](d *Scanner) ([]S, bool) {
	if d.Key("null") {
		return nil, true
	}
	if !d.Byte('[') {
		return nil, false
	}
	ss := []S{}
	for first := true; !d.Byte(']'); first = false {
		if !first && !d.Byte(',') {
			return nil, false
		}
		s, ok := d.Str()
		if !ok {
			return nil, false
		}
		ss = append(ss, S(s))
	}
	return ss, true
}

// Done reports whether the whole value has been consumed.
func (d *Scanner) Done() bool { return d.i == len(d.s) }

package api

import (
	"encoding/base64"
	"regexp"

	"github.com/heraldproject/herald"
)

var (
	phoneRE = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
	emailRE = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)
)

// encodeCursor makes an opaque page cursor.
func encodeCursor(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// decodeCursor reverses encodeCursor; a cursor that is not one is a 422.
func decodeCursor(c string) (string, error) {
	if c == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return "", invalid("query.cursor", "not a cursor returned by this API", c)
	}
	return string(b), nil
}

// nameCursor is decodeCursor of a page of users or groups, whose cursor
// holds a name.
func nameCursor(c string) (string, error) {
	name, err := decodeCursor(c)
	if err == nil && name != "" && !herald.ValidName(name) {
		return "", invalid("query.cursor", "not a cursor returned by this API", c)
	}
	return name, err
}

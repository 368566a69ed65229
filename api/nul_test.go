package api

import "testing"

func TestHasNUL(t *testing.T) {
	for body, want := range map[string]bool{
		`{"m":"a\u0000b"}`:     true,
		`{"m":"\u0000"}`:       true,
		"{\"m\":\"a\x00\"}":    true,
		`{"m":"a\\u0000b"}`:    false, // an escaped backslash, then the text u0000
		`{"m":"a\\\u0000b"}`:   true,  // an escaped backslash, then a NUL escape
		`{"m":"\u00001"}`:      true,
		`{"m":"\u0001"}`:       false,
		`{"m":"plain"}`:        false,
		`{"m":"ends with \\"}`: false,
		`\u000`:                false,
	} {
		if got := hasNUL([]byte(body)); got != want {
			t.Errorf("hasNUL(%s) = %v, want %v", body, got, want)
		}
	}
}

// Package testrecord gives the tests of Herald's record decoders values in
// the form its hand-written record encoders write (bus.AppendString): what
// encoding/json writes, but for the escapes of "<", ">", "&", U+2028 and
// U+2029, which those encoders leave out.
package testrecord

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/heraldproject/herald/bus"
)

var unescaper = strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&", `\u2028`, "\u2028",
	`\u2029`, "\u2029")

// Unescape undoes those escapes in v, an encoding/json encoding.
func Unescape(v []byte) string { return unescaper.Replace(string(v)) }

// Form is v's record value: json.Marshal's encoding, unescaped.
func Form(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return []byte(Unescape(b))
}

// SameInstant reports whether a and b are the same instant at the same
// offset from UTC (decoded twice, their *time.Location values differ).
func SameInstant(a, b time.Time) bool {
	_, ao := a.Zone()
	_, bo := b.Zone()
	return a.Equal(b) && ao == bo
}

// FastAgrees decodes v with fast, a record decoder's fast path, and when it
// takes v, with the general decoder (bus.DecodeValue) too: it fails tb
// when the general decoder refuses v or reads it otherwise (by same). It
// reports whether fast took v.
func FastAgrees[T any](tb testing.TB, v []byte, fast func([]byte, *T) bool, same func(a, b T) bool) bool {
	tb.Helper()
	var got T
	if !fast(v, &got) {
		return false
	}
	var want T
	if err := bus.DecodeValue(&kgo.Record{Value: v}, &want); err != nil {
		tb.Fatalf("fast path took %q, which the general decoder refuses: %v", v, err)
	}
	if !same(got, want) {
		tb.Fatalf("%q\nfast:    %+v\ngeneral: %+v", v, got, want)
	}
	return true
}

package store

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/heraldproject/herald"
)

// TestJSONText: jsonObject and jsonArray write what encoding/json reads
// back as it reads its own encoding: the same values, the same replacement
// of invalid UTF-8, "{}" and "[]" for nothing.
func TestJSONText(t *testing.T) {
	tricky := []string{"", "plain", `quote " and \ backslash`, "<html> & co", "tab\tnew\nline\x00\x1f", "ünïcødé ✓ 🔥",
		"invalid \xff\xfe utf-8", "\u2028\u2029"}
	m := map[string]string{}
	for i, s := range tricky {
		m[s] = tricky[len(tricky)-1-i]
	}
	roundTrip := func(text string, v any) any {
		t.Helper()
		out := reflect.New(reflect.TypeOf(v))
		if err := json.Unmarshal([]byte(text), out.Interface()); err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		return out.Elem().Interface()
	}
	viaJSON := func(v any) any {
		t.Helper()
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return roundTrip(string(b), v)
	}
	if got, want := roundTrip(jsonObject(m), m), viaJSON(m); !reflect.DeepEqual(got, want) {
		t.Fatalf("jsonObject: read back %q, encoding/json's %q", got, want)
	}
	if got, want := roundTrip(jsonArray(tricky), tricky), viaJSON(tricky); !reflect.DeepEqual(got, want) {
		t.Fatalf("jsonArray: read back %q, encoding/json's %q", got, want)
	}
	chs := []herald.Channel{herald.ChannelWebhook, herald.ChannelSlack}
	if got := jsonArray(chs); got != `["webhook","slack"]` {
		t.Fatalf("jsonArray(channels) = %s", got)
	}
	if got := jsonObject(map[string]string{"b": "2", "a": "1"}); got != `{"a":"1","b":"2"}` {
		t.Fatalf("jsonObject sorts names as encoding/json does: %s", got)
	}
	if jsonObject(nil) != "{}" || jsonObject(map[string]string{}) != "{}" || jsonArray[string](nil) != "[]" ||
		jsonArray([]string{}) != "[]" {
		t.Fatal("empty values: want {} and []")
	}
}

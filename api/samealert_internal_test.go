package api

import (
	"testing"

	"github.com/heraldproject/herald"
)

// TestSameAlert: a retry matches its stored alert with targets and channels
// in another order or repeated, and empty and missing labels alike; any
// other difference is another alert.
func TestSameAlert(t *testing.T) {
	stored := &herald.Alert{Severity: herald.SeverityError, Message: "m", Title: "t", Source: "s",
		Labels: map[string]string{"a": "1"}, Targets: []string{"@a", "@@b"},
		Channels: []herald.Channel{herald.ChannelSlack, herald.ChannelEmail}}
	retry := func(f func(a *herald.Alert)) *herald.Alert {
		a := *stored
		a.Labels = map[string]string{"a": "1"}
		a.Targets = []string{"@@b", "@a", "@a"}
		a.Channels = []herald.Channel{herald.ChannelEmail, herald.ChannelSlack}
		f(&a)
		return &a
	}
	// alertDigest, which gives a keyed alert its id, agrees with sameAlert.
	same := func(a, b *herald.Alert) bool {
		t.Helper()
		eq := sameAlert(a, b)
		if digest := alertDigest(a) == alertDigest(b); digest != eq {
			t.Errorf("sameAlert %v but equal digests %v: %+v and %+v", eq, digest, a, b)
		}
		return eq
	}
	if !same(stored, retry(func(*herald.Alert) {})) {
		t.Error("a retry with targets and channels reordered and a target twice is another alert")
	}
	if !same(&herald.Alert{Message: "m"}, &herald.Alert{Message: "m", Labels: map[string]string{}, Targets: []string{}}) {
		t.Error("empty and missing labels and targets differ")
	}
	// Fields are told apart however their bytes run together.
	for _, pair := range [][2]*herald.Alert{
		{{Message: "ab"}, {Message: "a", Title: "b"}},
		{{Labels: map[string]string{"a": "bc"}}, {Labels: map[string]string{"ab": "c"}}},
		{{Targets: []string{"@a", "@b"}}, {Targets: []string{"@a@b"}}},
		{{Targets: []string{"@a"}}, {Channels: []herald.Channel{"@a"}}},
	} {
		if same(pair[0], pair[1]) {
			t.Errorf("%+v and %+v are the same alert", pair[0], pair[1])
		}
	}
	for name, f := range map[string]func(a *herald.Alert){
		"message":  func(a *herald.Alert) { a.Message = "m2" },
		"severity": func(a *herald.Alert) { a.Severity = herald.SeverityCritical },
		"title":    func(a *herald.Alert) { a.Title = "" },
		"source":   func(a *herald.Alert) { a.Source = "s2" },
		"labels":   func(a *herald.Alert) { a.Labels["b"] = "2" },
		"target":   func(a *herald.Alert) { a.Targets = []string{"@a"} },
		"channels": func(a *herald.Alert) { a.Channels = a.Channels[:1] },
	} {
		if same(stored, retry(f)) {
			t.Errorf("another %s is the same alert", name)
		}
	}
}

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
	if !sameAlert(stored, retry(func(*herald.Alert) {})) {
		t.Error("a retry with targets and channels reordered and a target twice is another alert")
	}
	if !sameAlert(&herald.Alert{Message: "m"}, &herald.Alert{Message: "m", Labels: map[string]string{}, Targets: []string{}}) {
		t.Error("empty and missing labels and targets differ")
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
		if sameAlert(stored, retry(f)) {
			t.Errorf("another %s is the same alert", name)
		}
	}
}

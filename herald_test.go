package herald_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/heraldproject/herald"
)

func TestParseSeverity(t *testing.T) {
	for in, want := range map[string]herald.Severity{
		"info": herald.SeverityInfo, "normal": herald.SeverityInfo, "WARN": herald.SeverityWarning,
		"warning": herald.SeverityWarning, "Error": herald.SeverityError, "critical": herald.SeverityCritical,
		"fatal": herald.SeverityCritical, "DEBUG": herald.SeverityDebug, "TRACE": herald.SeverityDebug,
		" info ": herald.SeverityInfo,
	} {
		got, err := herald.ParseSeverity(in)
		if err != nil || got != want {
			t.Errorf("ParseSeverity(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "urgent", "crit", "5"} {
		if _, err := herald.ParseSeverity(in); herald.ErrorCode(err) != herald.EINVALID {
			t.Errorf("ParseSeverity(%q) err = %v, want invalid", in, err)
		}
	}
	if !(herald.SeverityDebug.Rank() < herald.SeverityInfo.Rank() && herald.SeverityInfo.Rank() < herald.SeverityWarning.Rank() &&
		herald.SeverityWarning.Rank() < herald.SeverityError.Rank() && herald.SeverityError.Rank() < herald.SeverityCritical.Rank()) {
		t.Error("severities are not ordered debug < info < warning < error < critical")
	}
}

func TestParseTarget(t *testing.T) {
	for in, want := range map[string]herald.Target{
		"@alice": {Name: "alice"}, "@@oncall": {Name: "oncall", Group: true}, "@a.b-c_d": {Name: "a.b-c_d"},
	} {
		got, err := herald.ParseTarget(in)
		if err != nil || got != want || got.String() != in {
			t.Errorf("ParseTarget(%q) = %+v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "alice", "@", "@@", "@@@x", "@has space", "@-x"} {
		if _, err := herald.ParseTarget(in); err == nil {
			t.Errorf("ParseTarget(%q) accepted", in)
		}
	}
}

func TestErrorCode(t *testing.T) {
	err := herald.Errorf(herald.ENOTFOUND, "user %q not found", "x")
	wrapped := fmt.Errorf("store: %w", err)
	if herald.ErrorCode(wrapped) != herald.ENOTFOUND || herald.ErrorMessage(wrapped) != `user "x" not found` {
		t.Errorf("code %q message %q", herald.ErrorCode(wrapped), herald.ErrorMessage(wrapped))
	}
	errPlain := errors.New("disk I/O error at /var/lib/x")
	if herald.ErrorCode(errPlain) != herald.EINTERNAL || herald.ErrorMessage(errPlain) != "internal error" {
		t.Error("a plain error must be internal and not leak its text")
	}
	if herald.ErrorCode(nil) != "" {
		t.Error("nil has no code")
	}
}

// TestUnreadableSecret: a user's SecretErr names each field that could not be
// decrypted, and only those.
func TestUnreadableSecret(t *testing.T) {
	cause := errors.New("sealed under key 1a2b3c4d, which is not configured")
	u := &herald.User{SecretErr: errors.Join(&herald.SecretError{Field: herald.SecretSlackToken, Err: cause})}
	if err := u.UnreadableSecret(herald.SecretSlackToken); err == nil || !errors.Is(err, cause) {
		t.Errorf("slack token: %v", err)
	}
	if err := u.UnreadableSecret(herald.SecretWebhookSecret); err != nil {
		t.Errorf("webhook secret reported unreadable: %v", err)
	}
	one := &herald.User{SecretErr: &herald.SecretError{Field: herald.SecretWebhookSecret, Err: cause}} // not joined
	if err := one.UnreadableSecret(herald.SecretWebhookSecret); err == nil {
		t.Error("a lone SecretError not found")
	}
	if err := (&herald.User{}).UnreadableSecret(herald.SecretSlackToken); err != nil {
		t.Errorf("no SecretErr: %v", err)
	}
}

func TestAlertStream(t *testing.T) {
	stream := func(a herald.Alert) string { return string(a.Stream()) }
	firing := herald.Alert{ID: "a", Title: "disk full", Labels: map[string]string{"alertname": "Disk", "host": "db1"},
		Targets: []string{"@ann"}}
	resolved := herald.Alert{ID: "b", Title: "[RESOLVED] disk full", Severity: herald.SeverityInfo,
		Labels: map[string]string{"host": "db1", "alertname": "Disk"}, Targets: []string{"@ann", "@@ops"}}
	if stream(firing) != stream(resolved) {
		t.Fatalf("an alert and its resolution (same labels) are different streams: %s, %s", stream(firing), stream(resolved))
	}
	for _, other := range []herald.Alert{
		{Labels: map[string]string{"alertname": "Disk", "host": "db2"}},
		{Labels: map[string]string{"alertname": "Disk"}},
		{Labels: map[string]string{"alertname": "Disk", "host": "db1", "x": ""}},
		{Labels: map[string]string{"alertname": "Disk:4:host", "": "db1"}}, // the same bytes if lengths were not hashed
		{Targets: []string{"@ann"}},
	} {
		if stream(other) == stream(firing) {
			t.Errorf("labels %v share the stream of %v", other.Labels, firing.Labels)
		}
	}
	a, b := herald.Alert{Targets: []string{"@ann", "@@ops"}}, herald.Alert{Targets: []string{"@@ops", "@ann"}}
	if stream(a) != stream(b) {
		t.Errorf("unlabelled alerts to the same targets are different streams")
	}
	if c := (herald.Alert{Targets: []string{"@bob"}}); stream(c) == stream(a) {
		t.Errorf("unlabelled alerts to different targets share a stream")
	}
	if len(stream(a)) != 16 {
		t.Errorf("stream %q: want 16 hex digits", stream(a))
	}
	// Stream keys partition herald.alerts and order deliveries across a
	// fleet of mixed versions: they must never change. These were computed
	// by the first implementation (fmt.Fprintf into FNV-1a).
	for _, c := range []struct {
		a    herald.Alert
		want string
	}{
		{firing, "7d1c1ff6f0a11a42"},
		{a, "a2d0b288f312b5d3"},
		{herald.Alert{Labels: map[string]string{"alertname": "Disk:4:host", "": "db1"}}, "24117986b7d6742c"},
		{herald.Alert{Labels: map[string]string{"ünïcode": "värde", "n": "1234567890"}}, "57a36b22357f26af"},
	} {
		if got := stream(c.a); got != c.want {
			t.Errorf("stream of %v %v = %s, want %s", c.a.Labels, c.a.Targets, got, c.want)
		}
	}
}

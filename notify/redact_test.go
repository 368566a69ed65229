package notify_test

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"

	"github.com/heraldproject/herald/notify"
)

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://hooks.slack.com/services/T1/B2/secret", "https://hooks.slack.com/<redacted>"},
		{"http://user:pw@example.com:8080/x?token=abc#frag", "http://example.com:8080/<redacted>"},
		{"https://example.com", "https://example.com/<redacted>"},
		{"not a url", "<redacted>"},
		{"/relative/path", "<redacted>"},
		{"http://[::1", "<redacted>"},
		{"", "<redacted>"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := notify.RedactURL(tt.in); got != tt.want {
				t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	base := fmt.Errorf("post https://x.test/hook/s3cr3t?key=a%%2Fb: %w", fs.ErrNotExist)
	tests := []struct {
		name    string
		err     error
		secrets []string
		want    string
	}{
		{"nil", nil, []string{"x"}, ""},
		{"no secrets", base, nil, base.Error()},
		{"empty secret ignored", base, []string{""}, base.Error()},
		{"plain", base, []string{"s3cr3t"}, "post https://x.test/hook/<redacted>?key=a%2Fb: file does not exist"},
		{"query-escaped form", base, []string{"a/b"}, "post https://x.test/hook/s3cr3t?key=<redacted>: file does not exist"},
		{"longest first", base, []string{"s3", "https://x.test/hook/s3cr3t?key=a%2Fb"}, "post <redacted>: file does not exist"},
		{"absent", base, []string{"nothere"}, base.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := notify.Redact(tt.err, tt.secrets...)
			if tt.err == nil {
				if got != nil {
					t.Fatalf("Redact(nil) = %v", got)
				}
				return
			}
			if got.Error() != tt.want {
				t.Errorf("message = %q, want %q", got, tt.want)
			}
			if !errors.Is(got, fs.ErrNotExist) {
				t.Error("errors.Is lost the wrapped error")
			}
		})
	}
}

func TestRedactKeepsAs(t *testing.T) {
	inner := &notify.StatusError{StatusCode: 500, Detail: "token=abc"}
	err := notify.Redact(&notify.RetryAfterError{Wait: 5e9, Err: inner}, "abc")
	if err.Error() != "HTTP 500: token=<redacted>" {
		t.Errorf("message = %q", err)
	}
	if se, ok := errors.AsType[*notify.StatusError](err); !ok || se != inner {
		t.Error("errors.As lost the *StatusError")
	}
	if wait, ok := notify.RetryAfter(err); !ok || wait != 5e9 {
		t.Errorf("RetryAfter = %v, %v", wait, ok)
	}
}

func TestURLSecrets(t *testing.T) {
	u := "https://bot:pw@hooks.example.com/services/T1/B2/tok?x=1"
	err := fmt.Errorf(`Post "https://bot:***@hooks.example.com/services/T1/B2/tok?x=1": refused; pw leaked; path /services/T1/B2/tok?x=1`)
	got := notify.Redact(err, notify.URLSecrets(u)...).Error()
	want := `Post "https://bot:***@hooks.example.com<redacted>": refused; <redacted> leaked; path <redacted>`
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if s := notify.URLSecrets("https://example.com/"); len(s) != 2 {
		t.Errorf("URLSecrets of a bare host = %q, want the URL forms only", s)
	}
}

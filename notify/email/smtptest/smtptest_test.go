package smtptest_test

import (
	"context"
	"errors"
	"net/smtp"
	"net/textproto"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldproject/herald/notify/email/smtptest"
)

const raw = "From: a@example.com\r\n" +
	"To: b@example.com\r\n" +
	"Subject: =?UTF-8?q?Gr=C3=BC=C3=9Fe?=\r\n" +
	"Content-Transfer-Encoding: base64\r\n" +
	"\r\n" +
	"aGVsbG8s\r\nIHdvcmxk\r\n"

func TestRecordsAndDecodes(t *testing.T) {
	s := smtptest.NewServer(smtptest.Options{})
	defer s.Close()
	if err := smtp.SendMail(s.Addr(), nil, "a@example.com", []string{"b@example.com"}, []byte(raw)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := s.WaitFor(ctx, 1); err != nil {
		t.Fatal(err)
	}
	m := s.Messages()[0]
	if m.From != "a@example.com" || len(m.To) != 1 || m.To[0] != "b@example.com" {
		t.Errorf("envelope %q -> %q", m.From, m.To)
	}
	if m.Subject != "Grüße" || m.Body != "hello, world" || m.Header.Get("To") != "b@example.com" {
		t.Errorf("subject %q body %q", m.Subject, m.Body)
	}
	if s.Host() != "127.0.0.1" || s.Port() == 0 || !strings.HasSuffix(s.Addr(), ":"+strconv.Itoa(s.Port())) {
		t.Errorf("Host %q Port %d Addr %q", s.Host(), s.Port(), s.Addr())
	}
}

func TestRepliesAndAuth(t *testing.T) {
	tests := []struct {
		name     string
		opts     smtptest.Options
		prep     func(*smtptest.Server)
		auth     smtp.Auth
		wantCode int
	}{
		{name: "reject", prep: func(s *smtptest.Server) { s.RejectRecipient("B@example.com") }, wantCode: 550},
		{name: "temporary", prep: func(s *smtptest.Server) { s.FailNext(1) }, wantCode: 451},
		{name: "auth required", opts: smtptest.Options{Username: "u", Password: "p"}, wantCode: 502},
		{name: "auth wrong", opts: smtptest.Options{Username: "u", Password: "p"},
			auth: smtp.PlainAuth("", "u", "x", "127.0.0.1"), wantCode: 535},
		{name: "auth ok", opts: smtptest.Options{Username: "u", Password: "p"},
			auth: smtp.PlainAuth("", "u", "p", "127.0.0.1")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := smtptest.NewServer(tt.opts)
			defer s.Close()
			if tt.prep != nil {
				tt.prep(s)
			}
			err := smtp.SendMail(s.Addr(), tt.auth, "a@example.com", []string{"b@example.com"}, []byte(raw))
			if tt.wantCode == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if m := s.Messages(); len(m) != 1 || m[0].Username != "u" {
					t.Errorf("messages = %+v", m)
				}
				return
			}
			var tp *textproto.Error
			if !errors.As(err, &tp) || tp.Code != tt.wantCode {
				t.Fatalf("err = %v, want SMTP %d", err, tt.wantCode)
			}
			if len(s.Messages()) != 0 {
				t.Error("a refused message was recorded")
			}
		})
	}
}

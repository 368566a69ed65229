// Package smtptest runs a real SMTP server (github.com/emersion/go-smtp) on
// 127.0.0.1 for tests. It records the messages it accepts and can be told to
// require authentication, speak TLS, reject recipients or fail temporarily.
package smtptest

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// TLS modes for Options.TLS.
const (
	// TLSStartTLS offers STARTTLS with a self-signed certificate.
	TLSStartTLS = "starttls"
	// TLSImplicit speaks TLS from the first byte, with a self-signed
	// certificate.
	TLSImplicit = "tls"
)

// Options configure a Server. The zero value is a plain server that accepts
// any mail without authentication.
type Options struct {
	// Username and Password, when Username is set, are the only credentials
	// accepted (AUTH PLAIN, allowed without TLS), and mail is refused until
	// the client authenticates.
	Username, Password string
	// TLS is "" (no TLS), TLSStartTLS or TLSImplicit.
	TLS string
}

// Server is an SMTP server on 127.0.0.1. All methods are safe for concurrent
// use.
type Server struct {
	opts Options
	srv  *smtp.Server
	l    net.Listener

	mu       sync.Mutex
	messages []Message
	rejected map[string]bool // lower-cased addresses refused with 550
	tempFail int             // RCPT commands still to refuse with 451
	changed  chan struct{}
	closed   bool
}

// NewServer starts a server with opts on a random port of 127.0.0.1. It
// panics if it cannot listen, like httptest.NewServer. Call Close when done.
func NewServer(opts Options) *Server {
	s := &Server{opts: opts, rejected: map[string]bool{}, changed: make(chan struct{})}
	s.srv = smtp.NewServer(backend{s})
	s.srv.Domain = "smtptest.local"
	s.srv.AllowInsecureAuth = true
	s.srv.ReadTimeout = 10 * time.Second
	s.srv.WriteTimeout = 10 * time.Second
	s.srv.MaxMessageBytes = 10 << 20
	s.srv.ErrorLog = discardLogger{}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("smtptest: listen: %v", err))
	}
	switch opts.TLS {
	case "":
	case TLSStartTLS, TLSImplicit:
		cfg := &tls.Config{Certificates: []tls.Certificate{selfSigned()}, MinVersion: tls.VersionTLS12}
		s.srv.TLSConfig = cfg
		if opts.TLS == TLSImplicit {
			l = tls.NewListener(l, cfg)
		}
	default:
		_ = l.Close()
		panic(fmt.Sprintf("smtptest: unknown TLS mode %q", opts.TLS))
	}
	s.l = l
	go func() { _ = s.srv.Serve(l) }()
	return s
}

// Close stops the server and closes every connection.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.mu.Unlock()
	// Serve may not have registered the listener yet; close it here too.
	_ = s.l.Close()
	_ = s.srv.Close()
}

// Addr returns "127.0.0.1:port".
func (s *Server) Addr() string { return s.l.Addr().String() }

// Host returns "127.0.0.1".
func (s *Server) Host() string { return s.l.Addr().(*net.TCPAddr).IP.String() }

// Port returns the port the server listens on.
func (s *Server) Port() int { return s.l.Addr().(*net.TCPAddr).Port }

// RejectRecipient makes the server refuse addr (case-insensitively) with
// "550 5.1.1 <addr>: Recipient address rejected: User unknown".
func (s *Server) RejectRecipient(addr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejected[strings.ToLower(addr)] = true
}

// FailNext makes the server refuse the next n recipients with "451 4.7.1
// Greylisted, try again later".
func (s *Server) FailNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tempFail = n
}

// Messages returns the accepted messages in arrival order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.messages)
}

// WaitFor blocks until at least n messages were accepted, or ctx is done.
func (s *Server) WaitFor(ctx context.Context, n int) error {
	for {
		s.mu.Lock()
		got, changed := len(s.messages), s.changed
		s.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("smtptest: %d of %d messages arrived: %w", got, n, ctx.Err())
		}
	}
}

// checkRcpt decides what to answer to RCPT TO:<to>.
func (s *Server) checkRcpt(to string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rejected[strings.ToLower(to)] {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1},
			Message: "<" + to + ">: Recipient address rejected: User unknown"}
	}
	if s.tempFail > 0 {
		s.tempFail--
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1},
			Message: "Greylisted, try again later"}
	}
	return nil
}

func (s *Server) record(m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.messages = append(s.messages, m)
	close(s.changed)
	s.changed = make(chan struct{})
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}
func (discardLogger) Println(...any)        {}

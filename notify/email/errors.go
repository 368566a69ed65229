package email

import (
	"context"
	"errors"
	"io"
	"net"
	"net/textproto"
	"strings"
	"syscall"

	"github.com/wneessen/go-mail"

	"github.com/heraldproject/herald/notify"
)

// Error is a failed email delivery, with a message that fits on one line.
type Error struct {
	Msg string
	Err error
}

// Error returns the message.
func (e *Error) Error() string { return e.Msg }

// Unwrap returns go-mail's error.
func (e *Error) Unwrap() error { return e.Err }

// classify turns an error from go-mail into Notify's (retry, err) pair.
// Anything it does not recognise as transient is permanent: go-mail reports
// configuration problems (no STARTTLS, no usable AUTH mechanism) as plain
// errors, and retrying them cannot help.
func classify(ctx context.Context, err error) (bool, error) {
	if err == nil {
		return false, nil
	}
	if ctx.Err() != nil {
		// Closing the connection on cancellation makes go-mail report odd
		// network errors; the context says what really happened.
		return notify.ClassifyTransportError(errors.Join(ctx.Err(), err))
	}
	if se, ok := errors.AsType[*mail.SendError](err); ok {
		return classifySend(se)
	}
	if tp, ok := errors.AsType[*textproto.Error](err); ok {
		return tp.Code/100 == 4, &Error{Msg: "smtp: " + oneLine(err.Error()), Err: err}
	}
	if isNetwork(err) {
		return notify.ClassifyTransportError(err)
	}
	if retry, e := notify.ClassifyTransportError(err); !retry {
		return false, e // a certificate that fails verification
	}
	return false, &Error{Msg: "smtp: " + oneLine(err.Error()), Err: err}
}

// classifySend handles go-mail's *SendError: a server reply (4xx retry,
// 5xx permanent) or a failure to talk to the server mid-transaction.
func classifySend(se *mail.SendError) (bool, error) {
	msg := &Error{Msg: "smtp: " + oneLine(se.Error()), Err: se}
	switch code := se.ErrorCode(); {
	case code >= 400 && code < 500:
		return true, msg
	case code >= 500:
		return false, msg
	}
	switch se.Reason {
	case mail.ErrGetSender, mail.ErrGetRcpts, mail.ErrNoUnencoded:
		return false, msg // the message itself is at fault
	}
	return true, msg // the connection failed mid-transaction
}

// isNetwork reports an error from the connection rather than the server.
func isNetwork(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNREFUSED)
}

// oneLine joins a multi-line message into one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

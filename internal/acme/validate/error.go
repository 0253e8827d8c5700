package validate

import (
	"context"
	"errors"
	"fmt"
	"net"
)

// ACME error type short names (RFC 8555 §6.7); the full URN is
// "urn:ietf:params:acme:error:" + the short name.
const (
	typeConnection         = "connection"
	typeDNS                = "dns"
	typeTLS                = "tls"
	typeIncorrectResponse  = "incorrectResponse"
	typeUnauthorized       = "unauthorized"
	typeRejectedIdentifier = "rejectedIdentifier"
	typeMalformed          = "malformed"
	typeServerInternal     = "serverInternal"
)

// Error is a failed validation.
type Error struct {
	Type   string // ACME error type short name: "connection", "dns", "tls", "incorrectResponse", "unauthorized", "rejectedIdentifier", "malformed", "serverInternal"
	Detail string // human readable, names the URL / address / record, never more than ~300 chars of remote content

	cause error
}

func (e *Error) Error() string { return "validate: " + e.Type + ": " + e.Detail }

// ACMEType returns the ACME error type short name.
func (e *Error) ACMEType() string { return e.Type }

// Unwrap returns the underlying cause, if any (a network error, or the
// context's error when the attempt was cut short).
func (e *Error) Unwrap() error { return e.cause }

func newError(typ string, cause error, format string, args ...any) *Error {
	return &Error{Type: typ, Detail: fmt.Sprintf(format, args...), cause: cause}
}

// netError classifies a failure talking to what is being validated. what
// names the target ("connecting to 192.0.2.1:80", "GET http://...").
func netError(ctx context.Context, typ, what string, err error) error {
	if e, ok := errors.AsType[*Error](err); ok {
		return e
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		if errors.Is(ctxErr, context.DeadlineExceeded) {
			return newError(typeConnection, ctxErr, "%s: timed out", what)
		}
		return newError(typeConnection, ctxErr, "%s: validation cancelled", what)
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return newError(typeConnection, err, "%s: timed out", what)
	}
	return newError(typ, err, "%s: %s", what, clip(err.Error()))
}

const clipLen = 100

// clip bounds remote (or caller supplied) text quoted in a Detail.
func clip(s string) string {
	if len(s) <= clipLen {
		return s
	}
	return s[:clipLen] + "..."
}

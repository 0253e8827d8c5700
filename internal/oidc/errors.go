package oidc

import (
	"errors"
	"fmt"
)

// Why a sign-in failed. Every error of this package matches one of them
// with errors.Is; *Error carries the reason in plain words for the audit
// log.
var (
	ErrUnknownProvider     = errors.New("unknown identity provider")
	ErrProviderUnavailable = errors.New("identity provider unavailable")
	ErrState               = errors.New("state mismatch")
	ErrNonce               = errors.New("nonce mismatch")
	// ErrReplay is an ID token exchanged, or a console sign-in completed,
	// once already.
	ErrReplay    = errors.New("used before")
	ErrAudience  = errors.New("ID token audience mismatch")
	ErrExpired   = errors.New("ID token expired or not fresh")
	ErrIssuer    = errors.New("ID token from another issuer")
	ErrSignature = errors.New("ID token signature invalid")
	ErrClaims    = errors.New("ID token claims unusable")
	// ErrExchange is a code the provider refused at its token endpoint
	// (already used, expired, PKCE verifier or redirect URI mismatch).
	ErrExchange = errors.New("authorization code refused")
	// ErrDeviceUnsupported is a provider whose discovery document has no
	// device authorization endpoint (RFC 8628).
	ErrDeviceUnsupported = errors.New("provider does not support the device authorization grant")
)

// Error is a failed sign-in step: Kind is one of the Err* values above,
// Reason says what happened without any token or secret in it, so that it
// can go into the audit log as it is.
type Error struct {
	Kind     error
	Provider string
	Reason   string
	Err      error // the library's error, when there is one
}

func (e *Error) Error() string {
	if e.Provider == "" {
		return "oidc: " + e.Reason
	}
	return "oidc: " + e.Provider + ": " + e.Reason
}

// Is makes the error match its Kind.
func (e *Error) Is(target error) bool { return target == e.Kind }

func (e *Error) Unwrap() error { return e.Err }

func fail(kind error, provider string, cause error, format string, a ...any) *Error {
	return &Error{Kind: kind, Provider: provider, Reason: fmt.Sprintf(format, a...), Err: cause}
}

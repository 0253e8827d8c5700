package acme

import (
	"errors"
	"fmt"
)

// ErrorType is an ACME error type's short name; its URN is
// "urn:ietf:params:acme:error:" + the name.
type ErrorType string

// ACME error types (RFC 8555 §6.7, RFC 9773 §7).
const (
	ErrAccountDoesNotExist     ErrorType = "accountDoesNotExist"
	ErrAlreadyReplaced         ErrorType = "alreadyReplaced"
	ErrAlreadyRevoked          ErrorType = "alreadyRevoked"
	ErrBadCSR                  ErrorType = "badCSR"
	ErrBadNonce                ErrorType = "badNonce"
	ErrBadPublicKey            ErrorType = "badPublicKey"
	ErrBadRevocationReason     ErrorType = "badRevocationReason"
	ErrBadSignatureAlgorithm   ErrorType = "badSignatureAlgorithm"
	ErrCAA                     ErrorType = "caa"
	ErrCompound                ErrorType = "compound"
	ErrConnection              ErrorType = "connection"
	ErrDNS                     ErrorType = "dns"
	ErrExternalAccountRequired ErrorType = "externalAccountRequired"
	ErrIncorrectResponse       ErrorType = "incorrectResponse"
	ErrInvalidContact          ErrorType = "invalidContact"
	ErrMalformed               ErrorType = "malformed"
	ErrOrderNotReady           ErrorType = "orderNotReady"
	ErrRateLimited             ErrorType = "rateLimited"
	ErrRejectedIdentifier      ErrorType = "rejectedIdentifier"
	ErrServerInternal          ErrorType = "serverInternal"
	ErrTLS                     ErrorType = "tls"
	ErrUnauthorized            ErrorType = "unauthorized"
	ErrUnsupportedContact      ErrorType = "unsupportedContact"
	ErrUnsupportedIdentifier   ErrorType = "unsupportedIdentifier"
	ErrUserActionRequired      ErrorType = "userActionRequired"
	// errConflict is not an RFC type: it marks a 409 answered as malformed
	// (key rollover onto a key another account holds).
	errConflict ErrorType = "malformed#conflict"
)

// errorStatus maps each type to the HTTP status the edge answers with.
var errorStatus = map[ErrorType]int{
	ErrAccountDoesNotExist: 400, ErrAlreadyReplaced: 409, ErrAlreadyRevoked: 400, ErrBadCSR: 400,
	ErrBadNonce: 400, ErrBadPublicKey: 400, ErrBadRevocationReason: 400, ErrBadSignatureAlgorithm: 400,
	ErrCAA: 403, ErrCompound: 403, ErrConnection: 400, ErrDNS: 400, ErrExternalAccountRequired: 401,
	ErrIncorrectResponse: 403, ErrInvalidContact: 400, ErrMalformed: 400, ErrOrderNotReady: 403,
	ErrRateLimited: 429, ErrRejectedIdentifier: 400, ErrServerInternal: 500, ErrTLS: 400,
	ErrUnauthorized: 403, ErrUnsupportedContact: 400, ErrUnsupportedIdentifier: 400,
	ErrUserActionRequired: 403, errConflict: 409,
}

// URNPrefix is the namespace of ACME error types.
const URNPrefix = "urn:ietf:params:acme:error:"

// Problem is an ACME problem document (RFC 7807, RFC 8555 §6.7). It is also
// the error the Service returns for anything a client did wrong.
type Problem struct {
	Type        ErrorType   `json:"-"`
	Detail      string      `json:"detail"`
	Identifier  *Identifier `json:"identifier,omitempty"`
	Subproblems []*Problem  `json:"subproblems,omitempty"`
	// Location, for a conflict, is the URL path of the existing object.
	Location string `json:"-"`
	// RetryAfterSeconds, for rateLimited, is how long to wait.
	RetryAfterSeconds int `json:"-"`
	// HTTPStatus overrides the type's status (404 for an unknown object).
	HTTPStatus int `json:"-"`
}

// notFound is the problem for an object that does not exist or belongs to
// another account: the two are not told apart.
func notFound(kind, id string) *Problem {
	return &Problem{Type: ErrMalformed, Detail: fmt.Sprintf("no %s %q for this account", kind, id), HTTPStatus: 404}
}

// NewProblem returns a problem of type t with a formatted detail.
func NewProblem(t ErrorType, format string, args ...any) *Problem {
	return &Problem{Type: t, Detail: fmt.Sprintf(format, args...)}
}

func (p *Problem) Error() string { return "acme: " + string(p.Type) + ": " + p.Detail }

// URN is the problem's full type URI.
func (p *Problem) URN() string {
	if p.Type == errConflict {
		return URNPrefix + string(ErrMalformed)
	}
	return URNPrefix + string(p.Type)
}

// Status is the HTTP status for the problem.
func (p *Problem) Status() int {
	if p.HTTPStatus != 0 {
		return p.HTTPStatus
	}
	if s, ok := errorStatus[p.Type]; ok {
		return s
	}
	return 400
}

// AsProblem returns err's Problem, or nil when err is not one.
func AsProblem(err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	return nil
}

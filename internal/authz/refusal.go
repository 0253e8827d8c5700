package authz

import (
	"errors"
	"fmt"
)

// Rule names the authorisation rule that refused a request, so that the
// API can say which one (the "rule" of its error body) and the client can
// point at the right fix.
type Rule string

// Rules that refuse.
const (
	// RuleRole: no role of the principal grants the permission.
	RuleRole Rule = "role"
	// RuleScope: a role grants it, but not over this CA, profile or name.
	RuleScope Rule = "scope"
	// RuleTwoPerson: the requester of a held request cannot decide on it.
	RuleTwoPerson Rule = "two_person_rule"
	// RuleMachineOnlyKey: server-generated private keys go to machine
	// principals only.
	RuleMachineOnlyKey Rule = "machine_only_key_handout"
	// RuleEscalation: a principal grants or acts on only what it holds
	// itself, in a scope at least as wide.
	RuleEscalation Rule = "escalation"
	// RuleSSOSignIn: only a token from a sign-in through an identity
	// provider may do this (a person certificate), not a long-lived token
	// or a client certificate.
	RuleSSOSignIn Rule = "sso_sign_in"
)

// refusal is an ErrForbidden that names its rule.
type refusal struct {
	rule Rule
	err  error
}

func (e *refusal) Error() string { return e.err.Error() }
func (e *refusal) Unwrap() error { return e.err }

// Refuse returns an error wrapping ErrForbidden, "forbidden: " and the
// formatted message, that names rule (RuleOf). The format may use %w.
func Refuse(rule Rule, format string, a ...any) error {
	return &refusal{rule: rule, err: fmt.Errorf("%w: "+format, append([]any{ErrForbidden}, a...)...)}
}

// RuleOf returns the rule of a refusal made by Refuse, or "" for any other
// error.
func RuleOf(err error) Rule {
	var r *refusal
	if errors.As(err, &r) {
		return r.rule
	}
	return ""
}

package authz

import (
	"errors"
	"fmt"
	"testing"
)

func TestRefusalRule(t *testing.T) {
	t.Parallel()
	p := WithRole("bot", KindMachine, RoleIssuer, Scope{Names: []string{"*.in.test"}})
	for _, tc := range []struct {
		name string
		err  error
		want Rule
	}{
		{"no role", p.Allow(PermPrincipalAdmin, Resource{}), RuleRole},
		{"outside the scope", p.Allow(PermCertIssue, Resource{Names: []string{"a.out.test"}}), RuleScope},
		{"wrapped", fmt.Errorf("issue: %w", Refuse(RuleTwoPerson, "x")), RuleTwoPerson},
		{"plain forbidden", fmt.Errorf("%w: x", ErrForbidden), ""},
	} {
		if !errors.Is(tc.err, ErrForbidden) {
			t.Errorf("%s: %v is not ErrForbidden", tc.name, tc.err)
		}
		if got := RuleOf(tc.err); got != tc.want {
			t.Errorf("%s: RuleOf(%v) = %q, want %q", tc.name, tc.err, got, tc.want)
		}
	}
	if got := Refuse(RuleRole, "%s has no role", "bot").Error(); got != "forbidden: bot has no role" {
		t.Errorf("message %q", got)
	}
}

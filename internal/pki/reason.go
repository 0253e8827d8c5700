package pki

import (
	"fmt"
	"strings"
)

// Reason is an RFC 5280 CRLReason code (section 5.3.1).
type Reason int

// The revocation reasons Certwright accepts. certificateHold (6) and
// removeFromCRL (8) are not offered: revocation here is permanent.
const (
	ReasonUnspecified          Reason = 0
	ReasonKeyCompromise        Reason = 1
	ReasonCACompromise         Reason = 2
	ReasonAffiliationChanged   Reason = 3
	ReasonSuperseded           Reason = 4
	ReasonCessationOfOperation Reason = 5
	ReasonPrivilegeWithdrawn   Reason = 9
	ReasonAACompromise         Reason = 10
)

// reasons is the one table of reason names and codes, in code order.
var reasons = []struct {
	name string
	code Reason
}{
	{"unspecified", ReasonUnspecified},
	{"key_compromise", ReasonKeyCompromise},
	{"ca_compromise", ReasonCACompromise},
	{"affiliation_changed", ReasonAffiliationChanged},
	{"superseded", ReasonSuperseded},
	{"cessation_of_operation", ReasonCessationOfOperation},
	{"privilege_withdrawn", ReasonPrivilegeWithdrawn},
	{"aa_compromise", ReasonAACompromise},
}

// ReasonNames lists the accepted reason names in code order.
func ReasonNames() []string {
	out := make([]string, len(reasons))
	for i, r := range reasons {
		out[i] = r.name
	}
	return out
}

// ParseReason reads a reason name and returns its code: "key_compromise",
// with hyphens for underscores and any case forgiven, or the RFC 5280 name
// OpenSSL prints ("keyCompromise").
func ParseReason(s string) (Reason, error) {
	n := strings.ReplaceAll(strings.ToLower(strings.TrimSpace(s)), "-", "_")
	for _, r := range reasons {
		if r.name == n || strings.ReplaceAll(r.name, "_", "") == n {
			return r.code, nil
		}
	}
	return 0, fmt.Errorf("pki: unknown revocation reason %q (one of %s)", s, strings.Join(ReasonNames(), ", "))
}

// Valid reports whether r is one of the accepted codes.
func (r Reason) Valid() bool {
	for _, x := range reasons {
		if x.code == r {
			return true
		}
	}
	return false
}

// String returns the reason's name, or "reason(N)" for a code not in the table.
func (r Reason) String() string {
	for _, x := range reasons {
		if x.code == r {
			return x.name
		}
	}
	return fmt.Sprintf("reason(%d)", int(r))
}

// MarshalText writes the reason's name.
func (r Reason) MarshalText() ([]byte, error) {
	if !r.Valid() {
		return nil, fmt.Errorf("pki: revocation reason code %d is not supported", int(r))
	}
	return []byte(r.String()), nil
}

// UnmarshalText reads a reason name.
func (r *Reason) UnmarshalText(b []byte) error {
	v, err := ParseReason(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

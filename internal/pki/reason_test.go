package pki

import "testing"

// TestParseReason: the names cert revoke documents, their hyphenated and
// upper-case forms, and the RFC 5280 names OpenSSL prints all read as the
// same code; anything else is refused.
func TestParseReason(t *testing.T) {
	for in, want := range map[string]Reason{
		"key_compromise":         1,
		"Key-Compromise":         1,
		"keyCompromise":          1,
		"cACompromise":           2,
		"affiliationChanged":     3,
		"superseded":             4,
		"cessationOfOperation":   5,
		"privilegeWithdrawn":     9,
		"aACompromise":           10,
		" unspecified ":          0,
		"cessation_of_operation": 5,
	} {
		got, err := ParseReason(in)
		if err != nil || got != want {
			t.Errorf("ParseReason(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "certificateHold", "removeFromCRL", "key compromise", "keycompromisex", "key__compromise"} {
		if r, err := ParseReason(in); err == nil {
			t.Errorf("ParseReason(%q) = %d, want an error", in, r)
		}
	}
}

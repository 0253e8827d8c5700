package scep

import (
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/pki"
)

// TestRAProblem checks that an RA certificate is usable only while it is
// valid and not revoked.
func TestRAProblem(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	s := &Service{cfg: Config{Clock: clock.NewFake(now)}}
	valid := inventory.Certificate{NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}
	for _, tc := range []struct {
		name string
		mod  func(c *inventory.Certificate)
		want string
	}{
		{"valid", func(*inventory.Certificate) {}, ""},
		{"revoked", func(c *inventory.Certificate) { c.Revocation = &inventory.Revocation{Reason: pki.ReasonKeyCompromise} }, "revoked"},
		{"expired", func(c *inventory.Certificate) { c.NotAfter = now }, "expired"},
		{"not yet valid", func(c *inventory.Certificate) { c.NotBefore = now.Add(time.Minute) }, "not valid before"},
	} {
		c := valid
		tc.mod(&c)
		got := s.raProblem(&c)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

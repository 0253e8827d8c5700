package lifecycle

import (
	"slices"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/inventory"
)

// renewNowSpan is the length of a window that an operator's renew-now or
// a revocation closes: it ends at that moment, so it lies in the past.
const renewNowSpan = time.Hour

// Window computes a certificate's renewal window. An operator's renew-now
// (or a rotation), or a revocation, closes it at that moment (renew now);
// otherwise it spans the first half of the renewal period before expiry:
// the profile's renew_before_days, capped at a third of the validity (a
// third when the profile sets none).
func Window(c *inventory.Certificate, renewBeforeDays int) (start, end time.Time) {
	switch {
	case c.Revocation != nil:
		return c.Revocation.RevokedAt.Add(-renewNowSpan), c.Revocation.RevokedAt
	case !c.RenewNowAt.IsZero():
		return c.RenewNowAt.Add(-renewNowSpan), c.RenewNowAt
	}
	period := RenewalPeriod(c.NotAfter.Sub(c.NotBefore), renewBeforeDays)
	start = c.NotAfter.Add(-period)
	return start, start.Add(period / 2)
}

// RenewalPeriod is how long before expiry renewal starts: the profile's
// renew_before_days, capped at a third of the validity.
func RenewalPeriod(validity time.Duration, renewBeforeDays int) time.Duration {
	period := validity / 3
	if rb := time.Duration(renewBeforeDays) * 24 * time.Hour; rb > 0 && rb < period {
		period = rb
	}
	return period
}

// Managed reports whether something renews c without a person: the
// server (auto_renew), an ACME client, or an agent.
func Managed(c *inventory.Certificate) bool {
	return c.AutoRenew || c.RenewalKind.Automated() || strings.HasPrefix(c.Requester, "acme:") || slices.Contains(c.Tags, "agent")
}

package discovery

import (
	"time"

	"github.com/certwright/certwright/internal/inventory"
)

// Status is what the inventory says about a served certificate.
type Status string

// Reconciliation statuses, the worst first: Classify picks the first
// that applies.
const (
	// StatusRevoked: revoked, yet still served.
	StatusRevoked Status = "revoked"
	// StatusExpired: past its notAfter, yet still served.
	StatusExpired Status = "expired"
	// StatusStale: renewed (its successor exists), but the endpoint still
	// serves the old one: the deployment did not happen.
	StatusStale Status = "stale"
	// StatusUnmanaged: found only by scanning (source discovered).
	StatusUnmanaged Status = "unmanaged"
	// StatusManaged: issued, imported or obtained over ACME here, current.
	StatusManaged Status = "managed"
)

// Match is a served leaf matched against the inventory by its SHA-256
// fingerprint.
type Match struct {
	Status      Status           `json:"status"`
	Serial      string           `json:"serial"`
	Fingerprint string           `json:"sha256_fingerprint"`
	Source      inventory.Source `json:"source"`
	Subject     string           `json:"subject"`
	NotAfter    time.Time        `json:"not_after"`
	// Successor is the serial of the certificate that renewed it (stale).
	Successor string `json:"successor,omitempty"`
}

// Classify says what c, the inventory record of a served leaf, means at
// now.
func Classify(c *inventory.Certificate, now time.Time) Status {
	switch {
	case c.Status == inventory.StatusRevoked || c.Revocation != nil:
		return StatusRevoked
	case !now.Before(c.NotAfter):
		return StatusExpired
	case c.RenewedBy != "":
		return StatusStale
	case c.Source == inventory.SourceDiscovered:
		return StatusUnmanaged
	}
	return StatusManaged
}

// MatchOf is c's Match at now.
func MatchOf(c *inventory.Certificate, now time.Time) *Match {
	return &Match{
		Status: Classify(c, now), Serial: c.Serial, Fingerprint: c.Fingerprint, Source: c.Source,
		Subject: c.Subject, NotAfter: c.NotAfter, Successor: c.RenewedBy,
	}
}

// CodeMatchFailed is the finding of an endpoint whose served certificate
// could not be matched against the inventory (the store failed): the
// endpoint has no match until a later scan succeeds.
const CodeMatchFailed = "inventory-match-failed"

// CodeNotDiscovered is the finding of an endpoint serving a certificate
// the inventory does not know that was not added as discovered this time
// (the scan's or the endpoint's limit): it has no match until a later
// scan adds it.
const CodeNotDiscovered = "certificate-not-discovered"

// ProblemKind names what an endpoint serves that needs attention.
type ProblemKind string

// Problems a scan reports to the alerting.
const (
	ProblemServedRevoked ProblemKind = "served_revoked"
	ProblemServedExpired ProblemKind = "served_expired"
	ProblemServedStale   ProblemKind = "served_stale"
	ProblemPlaintext     ProblemKind = "endpoint_plaintext"
	ProblemWeak          ProblemKind = "endpoint_weak"
)

// Problem is the problem a served certificate in status s is, "" for
// none.
func (s Status) Problem() ProblemKind {
	switch s {
	case StatusRevoked:
		return ProblemServedRevoked
	case StatusExpired:
		return ProblemServedExpired
	case StatusStale:
		return ProblemServedStale
	}
	return ""
}

// ServedProblem is a served_* problem going on at an endpoint: it began
// (Since) with the certificate whose fingerprint is Key, and lasts while
// the endpoint serves certificates with it, whichever they are.
type ServedProblem struct {
	Kind  ProblemKind `json:"kind"`
	Key   string      `json:"key"`
	Since time.Time   `json:"since"`
}

// trackServed carries the served_* problem of an endpoint (prev, nil for
// one never seen) to its new state next, whose Match is set: the problem
// ends when the endpoint serves a matched certificate without it, or no
// certificate at all. An unmatched certificate (key not proven, not
// added to the inventory yet) leaves it as it stands.
func trackServed(prev, next *Endpoint, now time.Time) {
	if next.Match == nil {
		if len(next.Latest.Chain) == 0 {
			next.Served = nil
		}
		return
	}
	kind := next.Match.Status.Problem()
	switch {
	case kind == "":
		next.Served = nil
	case next.Served != nil && next.Served.Kind == kind:
	case next.Served == nil && prev != nil && prev.Match != nil && prev.Match.Status.Problem() == kind:
		// Recorded before problems were tracked: its alert is keyed by
		// the certificate matched then.
		next.Served = &ServedProblem{Kind: kind, Key: prev.Match.Fingerprint, Since: now}
	default:
		next.Served = &ServedProblem{Kind: kind, Key: next.Match.Fingerprint, Since: now}
	}
}

// Problem is one thing an endpoint serves that calls for an alert.
type Problem struct {
	Kind ProblemKind
	// Endpoint is the endpoint's key (Observation.Key).
	Endpoint string
	// Cert is the served certificate's inventory record (the served_*
	// kinds); nil for plaintext and weak endpoints.
	Cert *inventory.Certificate
	// Since is when the endpoint was first found plaintext or weak.
	Since time.Time
	// Key de-duplicates a served_* problem's alert: the fingerprint of
	// the certificate with which the endpoint began serving certificates
	// with this problem, so that another one with the same problem there
	// does not alert again while it lasts ("" for plaintext and weak).
	Key string
	// Detail says what was found, in a sentence.
	Detail string
}

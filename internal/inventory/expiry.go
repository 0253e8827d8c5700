package inventory

import "time"

// ExpiryRow is the little a monitoring view needs of one certificate to
// say how long it has left: which CA and profile it belongs to, a name a
// person recognises, and its expiry.
type ExpiryRow struct {
	Serial  string
	CAID    string // empty for an imported certificate
	Profile string
	// Name is the first subject alternative name, else the subject's
	// common name, else empty.
	Name     string
	NotAfter time.Time
}

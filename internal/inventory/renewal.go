package inventory

import "time"

// RenewalAttempt records one try at replacing a certificate, successful or
// not; the compliance report's KPIs are computed from them.
type RenewalAttempt struct {
	Serial    string      `json:"serial"`     // the certificate being replaced
	NewSerial string      `json:"new_serial"` // empty when the attempt failed
	Kind      RenewalKind `json:"kind"`
	OK        bool        `json:"ok"`
	Error     string      `json:"error,omitempty"`
	At        time.Time   `json:"at"`
	// DaysLeft is how long the old certificate still had, in days.
	DaysLeft float64 `json:"days_left"`
}

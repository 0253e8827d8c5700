package revoke

import (
	"time"

	"github.com/certwright/certwright/internal/pki"
)

// Observer hears the outcome of every revocation call (metrics): Revoke,
// RevokeMatching (not a dry run) and RevokeCA. reason is the reason's name
// ("key_compromise"), or "invalid" for a code Certwright does not accept,
// so that label values stay a fixed set. revoked is how many certificates
// the call newly revoked: 0 when it failed or the certificate was revoked
// already, possibly many for a bulk revocation. elapsed is wall-clock time.
type Observer interface {
	ObserveRevoke(reason string, revoked int, elapsed time.Duration, err error)
}

// ReasonInvalid is the reason an Observer hears for an unsupported code.
const ReasonInvalid = "invalid"

// observe tells the configured Observer, if any, about one revocation call
// that started at start.
func (s *Service) observe(reason pki.Reason, revoked int, start time.Time, err error) {
	if s.cfg.Observer == nil {
		return
	}
	name := ReasonInvalid
	if reason.Valid() {
		name = reason.String()
	}
	s.cfg.Observer.ObserveRevoke(name, revoked, time.Since(start), err)
}

// one is 1 when created, else 0: a single revocation's count.
func one(created bool) int {
	if created {
		return 1
	}
	return 0
}

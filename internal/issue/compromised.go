package issue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/pki"
)

// CompromisedKeys is the list of keys reported compromised (a rotation by
// key, a revocation with reason keyCompromise).
type CompromisedKeys interface {
	// CompromisedKey returns the report of the key with this SPKI SHA-256
	// (lower-case hex), or nil when it was never reported.
	CompromisedKey(ctx context.Context, spkiSHA256 string) (*inventory.CompromisedKey, error)
}

// ErrKeyCompromised marks a request for a public key reported compromised;
// it also wraps ErrInvalid (a client error). ACME answers it with
// badPublicKey.
var ErrKeyCompromised = errors.New("issue: key reported compromised")

// checkKeyNotCompromised refuses to certify the key whose DER
// SubjectPublicKeyInfo is der when it was reported compromised: a leaked
// key is never certified again, whoever asks and however (CSR, renewal
// reusing the key, ACME). One indexed lookup.
func (s *Service) checkKeyNotCompromised(ctx context.Context, der []byte) error {
	spki := pki.Fingerprint(der)
	k, err := s.store.CompromisedKey(ctx, spki)
	if err != nil {
		// Fail closed: an unknown answer is not a clean bill.
		return fmt.Errorf("issue: check the key against the compromised-key list: %w", err)
	}
	if k == nil {
		return nil
	}
	return fmt.Errorf("%w: %w: key %s was reported compromised on %s (%s); it is never certified again: generate a new key",
		ErrInvalid, ErrKeyCompromised, spki, k.ReportedAt.UTC().Format(time.DateOnly), describeReport(k))
}

func describeReport(k *inventory.CompromisedKey) string {
	var what string
	switch k.Source {
	case inventory.CompromiseRotation:
		what = "rotation " + k.Ref
	case inventory.CompromiseRevocation:
		what = "revocation of serial " + k.Ref + " as keyCompromise"
	default:
		what = k.Source + " " + k.Ref
	}
	if k.ReportedBy != "" {
		what += " by " + k.ReportedBy
	}
	return what
}

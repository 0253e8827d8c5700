// Package revoke owns revocation: recording revocations (single, bulk and
// a subordinate CA's own), building and refreshing each CA's CRL, and
// keeping pre-signed OCSP responses so an OCSP request costs a lookup. With
// issue, it is the only package that holds CA signers.
package revoke

import (
	"context"
	"github.com/certwright/certwright/internal/audit"
	"time"

	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/keys"
)

// Responder is a CA's delegated OCSP responder: a short-lived certificate
// with EKU OCSPSigning and id-pkix-ocsp-nocheck, and its wrapped key.
type Responder struct {
	CAID      string
	CertDER   []byte
	Key       keys.Ref
	NotAfter  time.Time
	CreatedAt time.Time
}

// Store is the persistence revocation needs. *store.DB implements it.
type Store interface {
	GetCA(ctx context.Context, idOrName string) (*ca.CA, error)
	ListCAs(ctx context.Context) ([]*ca.CA, error)
	GetCertificate(ctx context.Context, serial string) (*inventory.Certificate, error)

	// RevokeCertificate records r for the certificate r.Serial and marks the
	// certificate revoked, in one transaction. The store fills r.CAID and
	// r.NotAfter from the certificate. When the serial is already revoked
	// it changes nothing and returns the first record with created false.
	// An unknown serial is store.ErrNotFound.
	RevokeCertificate(ctx context.Context, r *inventory.Revocation, ev audit.Event) (stored *inventory.Revocation, created bool, err error)
	// RevokeMatching revokes, in one transaction, every certificate that
	// matches sel, is not yet revoked and has not expired at now, with
	// tmpl's time, reason, invalidity date and revoker. It returns the new
	// records. With dryRun it writes nothing and returns what it would do.
	RevokeMatching(ctx context.Context, sel inventory.Selector, now time.Time, tmpl inventory.Revocation, dryRun bool, ev audit.Event) ([]*inventory.Revocation, error)
	// RevokeCA records r (r.CA true, r.CAID the parent) and stores the
	// updated CA c (now disabled) in one transaction; idempotent like
	// RevokeCertificate.
	RevokeCA(ctx context.Context, r *inventory.Revocation, c *ca.CA, ev audit.Event) (stored *inventory.Revocation, created bool, err error)
	// GetRevocation returns the revocation of serial, or store.ErrNotFound.
	GetRevocation(ctx context.Context, serial string) (*inventory.Revocation, error)
	// LookupSerial reports whether caID issued the leaf certificate serial
	// and, if it was revoked (leaf or CA certificate listed under caID), its
	// revocation.
	LookupSerial(ctx context.Context, caID, serial string) (issued bool, rev *inventory.Revocation, err error)
	// EachRevoked calls fn for every revocation listed under caID whose
	// certificate has not expired at now, in no particular order. fn gets
	// the same *Revocation each call, overwritten; it must not keep it.
	EachRevoked(ctx context.Context, caID string, now time.Time, fn func(*inventory.Revocation) error) error
	// EachUnexpired calls fn for every leaf certificate caID issued that
	// has not expired at now, with its revocation or nil. The pointers are
	// reused between calls.
	EachUnexpired(ctx context.Context, caID string, now time.Time, fn func(serial string, notAfter time.Time, rev *inventory.Revocation) error) error
	// NextCRLNumber allocates caID's next CRL number (1 first), durably
	// and atomically, so numbers never repeat across restarts or replicas.
	NextCRLNumber(ctx context.Context, caID string) (int64, error)

	// GetOCSPResponder returns caID's current delegated responder, or
	// store.ErrNotFound.
	GetOCSPResponder(ctx context.Context, caID string) (*Responder, error)
	// PutOCSPResponder stores r as caID's current responder.
	PutOCSPResponder(ctx context.Context, r *Responder, ev audit.Event) error
	// AppendAudit appends events that record no other change (CRL signatures).
	AppendAudit(ctx context.Context, evs ...audit.Event) error
}

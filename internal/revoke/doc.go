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

// RetiredKey is a key replaced in its record (a responder's, by its
// successor) that its provider may still hold until it is destroyed.
type RetiredKey struct {
	Key       keys.Ref
	Purpose   keys.Purpose
	RetiredAt time.Time
}

// StoredCRL is a CA's latest signed CRL as the store keeps it.
type StoredCRL struct {
	Number     int64
	DER        []byte
	ThisUpdate time.Time
	NextUpdate time.Time
	Entries    int
	// Revocations is how many revocations the CA had when the CRL was
	// built; the store fills it in.
	Revocations int64
}

// CRLBuild builds and signs the CRL numbered number, listing what each
// calls fn with (the revocations under the CA whose certificate has not
// expired at now), and returns it with the audit event of its signature.
type CRLBuild func(ctx context.Context, number int64, each func(now time.Time, fn func(*inventory.Revocation) error) error) (*StoredCRL, audit.Event, error)

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
	// PublishCRL decides, builds and stores caID's next CRL as one step
	// that one process at a time takes per CA, across every process
	// sharing the database. It reads the stored CRL (nil for none) and
	// whether revocations were recorded under caID since it was built
	// (uncovered), and returns the stored one, built false, unless need
	// says a new one is needed. Then it allocates the next CRL number
	// (numbers never repeat across restarts or replicas), calls build,
	// whose each reads the revocations the new CRL lists, and stores the
	// result as caID's latest with build's audit event.
	PublishCRL(ctx context.Context, caID string, need func(stored *StoredCRL, uncovered bool) bool, build CRLBuild) (crl *StoredCRL, built bool, err error)
	// LatestCRL returns caID's stored CRL, or nil when it has none.
	LatestCRL(ctx context.Context, caID string) (*StoredCRL, error)
	// ImportCRL stores c, signed outside this instance (an offline root's
	// uploaded CRL), as caID's latest with ev, unless a CRL numbered
	// c.Number or higher is stored (store.ErrConflict).
	ImportCRL(ctx context.Context, caID string, c *StoredCRL, ev audit.Event) error

	// GetOCSPResponder returns caID's current delegated responder, or
	// store.ErrNotFound.
	GetOCSPResponder(ctx context.Context, caID string) (*Responder, error)
	// PutOCSPResponder stores r as caID's current responder and lists
	// the key of the one it replaces, if another, among the retired keys,
	// retired at r.CreatedAt.
	PutOCSPResponder(ctx context.Context, r *Responder, ev audit.Event) error
	// RetiredKeys returns the retired keys not yet deleted, oldest first
	// (a bounded batch).
	RetiredKeys(ctx context.Context) ([]RetiredKey, error)
	// DeleteRetiredKey deletes ref's row among the retired keys and, when
	// ev is not nil and the row was there, appends ev in the same
	// transaction.
	DeleteRetiredKey(ctx context.Context, ref keys.Ref, ev *audit.Event) error
	// Exclusive runs fn while no other process sharing the store runs an
	// Exclusive of the same key (several replicas on one database): a
	// responder is issued by one replica and loaded by the others.
	Exclusive(ctx context.Context, key string, fn func(context.Context) error) error
	// AppendAudit appends events that record no other change (CRL signatures).
	AppendAudit(ctx context.Context, evs ...audit.Event) error
}

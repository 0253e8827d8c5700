// Package scep owns SCEP (RFC 8894) device enrolment: provisioners with
// their RA certificate and challenges, and the PKIOperation messages
// devices send, which it answers through the one issuance path. The
// HTTP edge (web/scepweb) hands it request bodies and writes its answers.
package scep

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/issue"
	"github.com/certwright/certwright/internal/keys"
	"github.com/certwright/certwright/internal/profile"
)

// Errors the edge maps to HTTP statuses; the store's ErrNotFound and
// ErrConflict wrap the first two for SCEP records.
var (
	ErrNotFound = errors.New("scep: not found")
	ErrConflict = errors.New("scep: conflict")
	// ErrInvalid marks an operator request that is malformed or breaks a rule.
	ErrInvalid = errors.New("scep: invalid request")
	// ErrMalformed marks a device message that is not a SCEP PKIMessage
	// this server can read (bad PKCS#7, bad signature, missing attributes):
	// it is answered with HTTP 400, as no CertRep can be addressed to it.
	ErrMalformed = errors.New("scep: malformed message")
	// ErrDisabled marks a request to a disabled provisioner.
	ErrDisabled = errors.New("scep: provisioner disabled")
	// ErrRAUnusable marks a request to a provisioner whose RA certificate
	// is revoked or expired: no CertRep may be signed with it.
	ErrRAUnusable = errors.New("scep: RA certificate unusable")
	// ErrChallengeUsed, ErrChallengeExpired and ErrChallengeUnknown are
	// what the store says of a dynamic challenge it did not consume.
	ErrChallengeUsed    = errors.New("scep: challenge already used")
	ErrChallengeExpired = errors.New("scep: challenge expired")
	ErrChallengeUnknown = errors.New("scep: unknown challenge")
)

// Challenge modes of a provisioner.
const (
	ChallengeStatic  = "static"
	ChallengeDynamic = "dynamic"
)

// Auth is the authz.Principal.Auth of enrolments: the issuance path mints
// no API credential for them (a device certificate is not a way into the
// API as the provisioner's principal).
const Auth = issue.AuthSCEP

// Provisioner is one SCEP endpoint, served at /scep/<Name>.
type Provisioner struct {
	ID, Name      string
	CAID, CAName  string
	Profile       string
	Challenge     string // static | dynamic
	StaticSalt    []byte
	StaticHash    []byte
	PrincipalID   string // the machine principal enrolments act as
	PrincipalName string
	RASerial      string // the RA certificate's serial
	RASHA256      string // the RA certificate's SHA-256 fingerprint (hex), which devices pin
	CreatedAt     time.Time
	CreatedBy     string
	DisabledAt    *time.Time
	DisabledBy    string
	// AllowLegacyCrypto admits PKIOperations encrypted with DES or 3DES or
	// signed over SHA-1, for devices that cannot use AES
	// and SHA-256 (Debian's scepclient 2.1); off, they are refused (badAlg).
	AllowLegacyCrypto bool
}

// Disabled reports whether the provisioner refuses enrolments.
func (p *Provisioner) Disabled() bool { return p.DisabledAt != nil }

// OneTime is a dynamic challenge as stored: its hash, never the secret.
type OneTime struct {
	ID            string
	ProvisionerID string
	Hash          []byte
	Identity      string
	CreatedAt     time.Time
	CreatedBy     string
	ExpiresAt     time.Time
	UsedAt        *time.Time
	UsedBy        string
}

// Transaction is a PKCSReq held for approval, which the device polls.
type Transaction struct {
	ProvisionerID string
	ID            string // the device's transactionID
	RequestID     string // the approval request
	KeyHash       []byte // SHA-256 of the device key's SubjectPublicKeyInfo
	CreatedAt     time.Time
}

// Store is the persistence SCEP needs.
type Store interface {
	// CreateSCEPProvisioner stores p with the principal it acts as and that
	// principal's binding, and appends ev, in one transaction; a name taken
	// is ErrConflict.
	CreateSCEPProvisioner(ctx context.Context, p *Provisioner, principal *authz.PrincipalRecord, b *authz.Binding, ev audit.Event) error
	GetSCEPProvisioner(ctx context.Context, idOrName string) (*Provisioner, error)
	ListSCEPProvisioners(ctx context.Context) ([]*Provisioner, error)
	// UpdateSCEPProvisioner writes profile, static challenge, RA certificate
	// (serial and fingerprint), legacy crypto switch and disabled
	// state, narrows the principal's binding to the profile and disables
	// or enables the principal with the provisioner, appending ev; all
	// only if the stored RA certificate is still fromRA, the one p was
	// read with (ErrConflict otherwise, and nothing is written), so that
	// of two concurrent RA rotations one wins and no change puts back an
	// RA replaced meanwhile.
	UpdateSCEPProvisioner(ctx context.Context, p *Provisioner, fromRA string, ev audit.Event) error
	// SetSCEPProvisionerRA writes p's RA certificate (serial and
	// fingerprint) and nothing else, appending ev, if the stored RA is
	// still fromRA (ErrConflict otherwise, and nothing is written): a
	// rotation keeps what other changes committed while it issued.
	SetSCEPProvisionerRA(ctx context.Context, p *Provisioner, fromRA string, ev audit.Event) error
	// DeleteSCEPProvisioner deletes p, its challenges and transactions and
	// its principal's binding, disables the principal, appending ev.
	DeleteSCEPProvisioner(ctx context.Context, p *Provisioner, at time.Time, ev audit.Event) error

	CreateSCEPChallenge(ctx context.Context, c *OneTime, ev audit.Event) error
	// ConsumeSCEPChallenge marks the provisioner's unused, unexpired
	// challenge with this hash used by txID at now, atomically: of two
	// concurrent consumers one wins, the other gets ErrChallengeUsed.
	// Otherwise ErrChallengeUsed, ErrChallengeExpired or
	// ErrChallengeUnknown, and nothing is written. The event ev builds
	// from the consumed challenge is appended in the same transaction.
	ConsumeSCEPChallenge(ctx context.Context, provisionerID string, hash []byte, now time.Time, txID string, ev func(*OneTime) audit.Event) (*OneTime, error)
	// ReleaseSCEPChallenge makes a challenge consumed at usedAt usable
	// again (its enrolment failed before anything was issued or held).
	ReleaseSCEPChallenge(ctx context.Context, id string, usedAt time.Time) error

	// PutSCEPTransaction records t, first deleting every transaction
	// created before pruneBefore; a transaction recorded already is
	// ErrConflict.
	PutSCEPTransaction(ctx context.Context, t *Transaction, pruneBefore time.Time) error
	GetSCEPTransaction(ctx context.Context, provisionerID, txID string) (*Transaction, error)
	// DeleteSCEPTransaction closes a transaction; a missing one is no error.
	DeleteSCEPTransaction(ctx context.Context, provisionerID, txID string) error

	GetCA(ctx context.Context, idOrName string) (*ca.CA, error)
	GetCertificate(ctx context.Context, serial string) (*inventory.Certificate, error)
	GetApprovalRequest(ctx context.Context, id string) (*issue.ApprovalRequest, error)
	// CountApprovalRequests counts the requests in status made by
	// requesterID.
	CountApprovalRequests(ctx context.Context, status, requesterID string) (int, error)
	// PendingRenewal returns the ID of a pending approval request of
	// requesterID renewing certificate serial, "" when there is none.
	PendingRenewal(ctx context.Context, requesterID, serial string) (string, error)
	LoadPrincipal(ctx context.Context, id string) (*authz.Principal, *authz.PrincipalRecord, error)
	// AccessGeneration changes after every change to principals, their
	// bindings and SCEP provisioners (all one kind of write: a
	// provisioner's change changes its principal too), made here or
	// announced by another replica: the caches of what every device
	// request reads keep nothing read under an older one.
	AccessGeneration() uint64
	// GetPrincipal returns the principal whose ID or name is idOrName.
	GetPrincipal(ctx context.Context, idOrName string) (*authz.PrincipalRecord, error)
	AppendAudit(ctx context.Context, evs ...audit.Event) error
}

// Issuer is the issuance path.
type Issuer interface {
	Issue(ctx context.Context, req issue.Request) (*issue.Result, error)
	Chain(ctx context.Context, caID string) ([]*x509.Certificate, error)
}

// Profiles resolves profile names.
type Profiles interface {
	Get(ctx context.Context, name string) (*profile.Profile, error)
}

// Keys unwraps the RA keys (server-kept keys of the RA certificates).
type Keys interface {
	Signer(ctx context.Context, ref keys.Ref, purpose keys.Purpose) (crypto.Signer, error)
}

package acme

import (
	"context"
	"errors"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/inventory"
)

// Errors the store returns; the store's own ErrNotFound and ErrConflict
// wrap these (errors.Is matches either).
var (
	ErrNotFound = errors.New("acme: not found")
	ErrConflict = errors.New("acme: conflict")
)

// Store is the persistence ACME needs. Times are stored at microsecond
// precision in UTC. Methods that change security-relevant state carry the
// audit event describing it, appended in the same transaction.
type Store interface {
	// Provisioners. CreateProvisioner returns an error matching ErrConflict
	// when the name is taken.
	CreateProvisioner(ctx context.Context, p *Provisioner, ev audit.Event) error
	// GetProvisioner finds a provisioner by ID or, failing that, name.
	GetProvisioner(ctx context.Context, idOrName string) (*Provisioner, error)
	ListProvisioners(ctx context.Context) ([]*Provisioner, error)
	// UpdateProvisioner writes p's policy fields (not its name, creation
	// or disabled state); an unknown ID is ErrNotFound.
	UpdateProvisioner(ctx context.Context, p *Provisioner, ev audit.Event) error
	// SetProvisionerDisabled disables the provisioner as of at, or enables
	// it when at is zero.
	SetProvisionerDisabled(ctx context.Context, id string, at time.Time, by string, ev audit.Event) error
	// DeleteProvisioner removes a disabled provisioner (an enabled one is
	// ErrConflict), deactivates its accounts, ends its pending and ready
	// orders with reason and revokes its external account keys, appending
	// the event ev builds from the counts, in one transaction.
	DeleteProvisioner(ctx context.Context, id string, at time.Time, by string, reason *Problem, ev func(DeleteCounts) audit.Event) (DeleteCounts, error)

	// EnsureNonceKey stores candidate as the nonce MAC key unless one is
	// stored already, and returns the stored key (so every replica uses
	// the same one).
	EnsureNonceKey(ctx context.Context, candidate []byte) ([]byte, error)
	// UseNonce records nonce id as used until expires. It reports false
	// when the nonce was used before.
	UseNonce(ctx context.Context, id string, expires time.Time) (bool, error)
	// PurgeNonces forgets used nonces that expired before t.
	PurgeNonces(ctx context.Context, before time.Time) (int64, error)

	// CreateAccount stores a new account. When a.EABKeyID is set it binds
	// that key to the account in the same transaction, failing with
	// ErrConflict when the key is already bound. A key thumbprint already
	// registered on the provisioner is ErrConflict too.
	CreateAccount(ctx context.Context, a *Account, ev audit.Event) error
	GetAccount(ctx context.Context, id string) (*Account, error)
	AccountByThumbprint(ctx context.Context, provisionerID, thumbprint string) (*Account, error)
	// UpdateAccount writes contact, status, key thumbprint and JWK. A
	// thumbprint another account of the provisioner holds is ErrConflict.
	UpdateAccount(ctx context.Context, a *Account, ev audit.Event) error
	// CountAccountsSince counts accounts the provisioner created from ip
	// at or after since.
	CountAccountsSince(ctx context.Context, provisionerID, ip string, since time.Time) (int, error)

	// External account binding keys.
	CreateEABKey(ctx context.Context, k *EABKey, ev audit.Event) error
	GetEABKey(ctx context.Context, id string) (*EABKey, error)
	ListEABKeys(ctx context.Context, provisionerID string) ([]*EABKey, error)
	// RevokeEABKey revokes a key (revoked already is ErrConflict) and
	// deactivates the valid account it bound, appending the event ev
	// builds from that account's ID and whether it was deactivated.
	RevokeEABKey(ctx context.Context, id string, at time.Time, by string, ev func(accountID string, deactivated bool) audit.Event) (string, bool, error)

	// CreateOrder stores o and the authorizations in authzs that are new
	// (an order may also point at existing, reused authorizations).
	CreateOrder(ctx context.Context, o *Order, authzs []*Authorization) error
	GetOrder(ctx context.Context, id string) (*Order, error)
	// UpdateOrder writes status, error, cert serial and updated time when
	// the stored status is from; otherwise it returns ErrConflict.
	UpdateOrder(ctx context.Context, o *Order, from string) error
	// ListOrderIDs returns the account's order IDs, oldest first, after
	// the ID after ("" for the start), at most limit.
	ListOrderIDs(ctx context.Context, accountID, after string, limit int) ([]string, error)
	// OrderByCertificate returns the order that produced serial.
	OrderByCertificate(ctx context.Context, serial string) (*Order, error)
	// OrderReplacing returns an order, not invalid, whose Replaces is certID.
	OrderReplacing(ctx context.Context, certID string) (*Order, error)
	// CountOrdersSince counts the account's orders created at or after since.
	CountOrdersSince(ctx context.Context, accountID string, since time.Time) (int, error)

	// GetAuthorizations returns the authorizations with their challenges,
	// in the order of ids; a missing ID is ErrNotFound.
	GetAuthorizations(ctx context.Context, ids ...string) ([]*Authorization, error)
	// ReusableAuthorization returns the account's newest valid
	// authorization for ident (and wildcard flag) expiring after t.
	ReusableAuthorization(ctx context.Context, accountID string, ident Identifier, wildcard bool, t time.Time) (*Authorization, error)
	// UpdateAuthorization writes the authorization's status, expiry and every
	// challenge's status, validated time and error, and appends evs, in
	// one transaction, when the stored status is from; otherwise
	// ErrConflict, and nothing is written.
	UpdateAuthorization(ctx context.Context, a *Authorization, from string, evs ...audit.Event) error
	// UpdateChallenge writes one challenge's status, validated and error
	// when its stored status is from; otherwise ErrConflict.
	UpdateChallenge(ctx context.Context, c *Challenge, from string) error
	// CountPendingAuthorizations counts the account's pending
	// authorizations that expire after now.
	CountPendingAuthorizations(ctx context.Context, accountID string, now time.Time) (int, error)
	// CountFailedValidationsSince counts the account's challenges that
	// became invalid at or after since.
	CountFailedValidationsSince(ctx context.Context, accountID string, since time.Time) (int, error)

	// The operator's view of a provisioner, each newest first and at most
	// limit long. RecentAccounts counts each account's orders up to
	// countCap.
	RecentAccounts(ctx context.Context, provisionerID string, limit, countCap int) ([]*AccountActivity, error)
	RecentOrders(ctx context.Context, provisionerID string, limit int) ([]*Order, error)
	// RecentFailedValidations returns the failed challenges of the
	// provisioner's newest invalid authorizations.
	RecentFailedValidations(ctx context.Context, provisionerID string, limit int) ([]*FailedValidation, error)

	// Certificates and CAs (shared with the rest of Certwright).
	GetCertificate(ctx context.Context, serial string) (*inventory.Certificate, error)
	// CertificateDER returns the issuing CA's ID and the DER of the
	// certificate serial: what a download needs, read cheaply.
	CertificateDER(ctx context.Context, serial string) (caID string, der []byte, err error)
	GetCA(ctx context.Context, idOrName string) (*ca.CA, error)
	// MarkRenewNow sets renew_now_at to at on every unexpired, unrevoked
	// certificate the selector matches (Serial too, when set) and returns
	// their serials.
	MarkRenewNow(ctx context.Context, sel RenewSelector, at time.Time, ev audit.Event) ([]string, error)
	LoadPrincipal(ctx context.Context, id string) (*authz.Principal, *authz.PrincipalRecord, error)
	// GetPrincipal finds a principal by ID or, failing that, name.
	GetPrincipal(ctx context.Context, idOrName string) (*authz.PrincipalRecord, error)
	AppendAudit(ctx context.Context, evs ...audit.Event) error

	// ACMEGeneration changes after every change this process makes (or
	// tries to) to provisioners, accounts or external account keys; the
	// service's caches drop what they hold when it changes.
	ACMEGeneration() uint64
}

// RenewSelector picks certificates whose renewal window moves to now;
// every non-empty field must match and at least one must be set.
type RenewSelector struct {
	inventory.Selector
	Serial string `json:"serial,omitempty"`
}

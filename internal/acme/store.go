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
	// ErrStale marks a conditional write refused because the object
	// changed since it was read (on another replica, say).
	ErrStale = errors.New("acme: changed meanwhile")
)

// Claim is one replica's hold on a challenge or an order in processing.
// The database is the source of truth: a claim whose end has passed is
// taken over by any replica's sweep, and a result is recorded only under
// the claim that produced it, so a replica that stalled or died cannot
// overwrite the work of the one that took over.
type Claim struct {
	// Replica names the claiming replica (Config.Replica).
	Replica string
	// Token is random per claim; recording and renewing compare it. It
	// begins with Life.
	Token string
	// Life is random per process: the start-up sweep leaves the claims
	// whose token begins with it (this process's own) alone.
	Life string
	// Now is the time on SQLite; PostgreSQL uses its own clock, which
	// every replica shares.
	Now time.Time
	// TTL is how long the claim holds from now.
	TTL time.Duration
	// Started is when the claiming process started, on Now's clock: its
	// start-up sweep takes back its own claims taken until then only.
	Started time.Time
}

// ClaimedChallenge is a challenge a replica took over, with what its
// validation needs.
type ClaimedChallenge struct {
	Challenge       Challenge
	Identifier      Identifier
	AccountID       string
	ProvisionerID   string
	ProvisionerName string
	// KeyThumbprint is the account key's; Bound says the account has an
	// external account binding.
	KeyThumbprint string
	Bound         bool
	// Source is the answering address's key (netsource.Key).
	Source string
	// Attempts counts the claims so far, this one included.
	Attempts int
}

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
	// UpdateAccount writes contact, status, key thumbprint and JWK,
	// provided the stored account is still valid and its key thumbprint
	// is fromKey (the key the request was verified with): otherwise an
	// error wrapping ErrStale, and nothing is written. A thumbprint
	// another account of the provisioner holds is ErrConflict.
	UpdateAccount(ctx context.Context, a *Account, fromKey string, ev audit.Event) error
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

	// Claims on work in processing (README "Several replicas"); see Claim.
	// ClaimChallenge moves a pending challenge to processing under cl,
	// recording source (the answering address's key) and one attempt;
	// a challenge no longer pending is ErrConflict.
	ClaimChallenge(ctx context.Context, chID string, cl Claim, source string) error
	// RenewChallengeClaim moves the claim's end to cl.Now + cl.TTL (a
	// zero TTL releases it to any replica's sweep) provided the challenge
	// is processing under cl.Token; otherwise ErrConflict.
	RenewChallengeClaim(ctx context.Context, chID string, cl Claim) error
	// TakeOverChallenges claims, under cl, at most limit processing
	// challenges whose claim has expired, or (own) every processing one
	// claimed by cl.Replica, adding an attempt to each; rows another
	// replica is taking over at the same moment are skipped.
	TakeOverChallenges(ctx context.Context, cl Claim, own bool, limit int) ([]*ClaimedChallenge, error)
	// RecordValidation writes a validation's outcome, the challenge ch
	// (status, validated, error) and its authorization a (status,
	// expiry, when still pending), and appends ev, in one transaction,
	// provided ch is processing under claim token. A lost claim writes
	// only ev and is an error wrapping ErrConflict; an authorization no
	// longer pending writes ch and ev and reports false.
	RecordValidation(ctx context.Context, a *Authorization, ch *Challenge, token string, ev audit.Event) (authzUpdated bool, err error)
	// ClaimOrder writes o (status processing) with claim cl when the
	// stored status is from; otherwise ErrConflict.
	ClaimOrder(ctx context.Context, o *Order, from string, cl Claim) error
	// UpdateClaimedOrder writes o's status, error, certificate serial and
	// updated time and ends the claim, provided the order is processing
	// under claim token; otherwise ErrConflict.
	UpdateClaimedOrder(ctx context.Context, o *Order, token string) error
	// ReturnStuckOrders sends back to ready, updated at cl.Now, at most
	// limit processing orders whose claim has expired, or (own) every one
	// claimed by cl.Replica, and returns their IDs.
	ReturnStuckOrders(ctx context.Context, cl Claim, own bool, limit int) ([]string, error)
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

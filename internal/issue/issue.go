// Package issue owns the one issuance path: every certificate Certwright
// signs — leaves from a CSR or with a managed key, and subordinate CA
// certificates — is checked against its profile, linted, signed and stored
// here, so a policy or audit rule is written once. It is the only package
// besides revoke that holds CA signers.
package issue

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/keys"
	"github.com/certwright/certwright/internal/lint"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/profile"
	"github.com/certwright/certwright/internal/revoke"
)

// Store is the persistence the issuance path needs.
// Every write carries the audit event that describes it, committed in the
// same transaction.
type Store interface {
	GetCA(ctx context.Context, idOrName string) (*ca.CA, error)
	ListCAs(ctx context.Context) ([]*ca.CA, error)
	CreateCA(ctx context.Context, c *ca.CA, ev audit.Event) error
	UpdateCA(ctx context.Context, c *ca.CA, ev audit.Event) error
	InsertCertificate(ctx context.Context, c *inventory.Certificate, ev audit.Event) error
	ApprovalStore
	KeyStore
	IdentityStore
	CompromisedKeys
	UploadedCRLs
}

// UploadedCRLs reads the CRL uploaded for an offline root (nil for none):
// a certificate it lists is never imported.
type UploadedCRLs interface {
	LatestCRL(ctx context.Context, caID string) (*revoke.StoredCRL, error)
}

// insertExpecter is a Store whose certificate inserts are group-committed:
// an issuance announces itself once nothing open-ended stands before its
// insert, so that the commit in front of it waits (briefly) for its row
// rather than committing without it.
// arrived is called just before InsertCertificate, or on giving up.
type insertExpecter interface {
	ExpectCertificate() (arrived func())
}

// ApprovalStore keeps requests held for approval, and loads the requester
// again when its request is approved.
type ApprovalStore interface {
	CreateApprovalRequest(ctx context.Context, r *ApprovalRequest, ev audit.Event) error
	GetApprovalRequest(ctx context.Context, id string) (*ApprovalRequest, error)
	ListApprovalRequests(ctx context.Context, status string, limit int) ([]*ApprovalRequest, error)
	// CountApprovalRequests counts the requests in status (only
	// requesterID's unless it is ""); ApprovalRequestGroups counts them
	// by CA, profile, names and whether requesterID made them.
	CountApprovalRequests(ctx context.Context, status, requesterID string) (int, error)
	ApprovalRequestGroups(ctx context.Context, status, requesterID string, limit int) ([]RequestGroup, error)
	// UpdateApprovalRequest writes r's decision fields only if the stored
	// status is from (and, from pending, the request has not expired).
	UpdateApprovalRequest(ctx context.Context, r *ApprovalRequest, from string, now time.Time, ev audit.Event) error
	ExpireApprovalRequests(ctx context.Context, now time.Time, ev audit.Event) ([]string, error)
	LoadPrincipal(ctx context.Context, id string) (*authz.Principal, *authz.PrincipalRecord, error)
}

// Profiles resolves a profile name to its definition.
type Profiles interface {
	Get(ctx context.Context, name string) (*profile.Profile, error)
}

// Linter checks a to-be-signed certificate before the real signature.
type Linter interface {
	// Check lints tmpl as issuer would sign it (issuer nil: self-signed with
	// pub); it returns warnings, or an error naming the error-level lints
	// that failed.
	Check(tmpl *x509.Certificate, pub crypto.PublicKey, issuer *x509.Certificate, cabf bool) ([]string, error)
	// CheckTBS is Check for a to-be-signed certificate already built
	// (lint.NewTBS), which the real key then signs as it is.
	CheckTBS(tbs *lint.TBS, cabf bool) ([]string, error)
}

// Errors the edge maps to client errors.
var (
	// ErrInvalid marks a request that is malformed or breaks a rule.
	ErrInvalid = errors.New("issue: invalid request")
	// ErrForbidden marks a principal not allowed to do what it asked; it is
	// authz.ErrForbidden, so either matches.
	ErrForbidden = authz.ErrForbidden
	// ErrApprovalUnavailable marks a request under a profile that requires
	// approval from a requester that cannot wait for an approver (an ACME
	// client). It is refused, and nothing is stored; the error also wraps
	// ErrForbidden.
	ErrApprovalUnavailable = errors.New("issue: approval unavailable to this requester")
)

// authACME is the Principal.Auth of ACME accounts, bound or anonymous
// (internal/acme sets it).
const authACME = "acme"

// AuthEST is the Principal.Auth of EST provisioners (internal/est): like
// an ACME account, a device never waits for approval and never gets an
// API credential from its certificate.
const AuthEST = "est"

// deviceAuth reports whether a principal is a protocol client (ACME, EST)
// rather than an API caller.
func deviceAuth(auth string) bool { return auth == authACME || auth == AuthEST }

// AuthSCEP is the Principal.Auth of SCEP enrolments (internal/scep sets
// it): like ACME accounts they never get an API credential, since a
// device holding a SCEP challenge is not the provisioner's principal.
const AuthSCEP = "scep"

// Config holds what the issuance path needs besides its ports.
type Config struct {
	// PublicHTTPBase is the plain-HTTP base URL relying parties use for CRL,
	// OCSP and caIssuers, e.g. http://127.0.0.1:8080.
	PublicHTTPBase string
	Clock          clock.Clock
	Log            *slog.Logger
	// Rand is the source for serials; nil means crypto/rand.
	Rand io.Reader
	// ApprovalLifetime is how long a request waits for approval; 0 means 72h.
	ApprovalLifetime time.Duration
	// Observer, when set, hears the outcome of every leaf issuance (metrics).
	Observer Observer
	// CAs serves the CA records issuance reads. Every other writer of CA
	// records in this process must invalidate the same cache (the
	// Service's own writes do); nil means a cache of the Service's own
	// over the store.
	CAs *ca.Cache
	// CAKeyProvider names the key provider a new CA's key is generated
	// in when its Spec names none ("": the key provider's default).
	CAKeyProvider string
}

// Observer hears the outcome of each leaf issuance. caName and profile are
// empty when the request failed.
type Observer interface {
	ObserveIssue(caName, profile string, elapsed time.Duration, err error)
}

// Service is the issuance path.
type Service struct {
	cfg      Config
	store    Store
	profiles Profiles
	keys     keys.Provider
	linter   Linter

	mu      sync.RWMutex
	signers *keys.SignerCache
	parsed  map[string]*x509.Certificate   // by CA ID + fingerprint
	chains  map[string][]*x509.Certificate // by CA ID; a CA's certificate never changes once set
}

// New wires the issuance path. Every dependency is required.
func New(cfg Config, st Store, profiles Profiles, kp keys.Provider, linter Linter) (*Service, error) {
	if cfg.PublicHTTPBase == "" {
		return nil, errors.New("issue: public HTTP base URL is required")
	}
	if u, err := url.Parse(cfg.PublicHTTPBase); err != nil || u.Scheme != "http" || u.Hostname() == "" {
		return nil, fmt.Errorf("issue: public HTTP base URL %q must be an absolute http:// URL (revocation data is served over plain HTTP)", cfg.PublicHTTPBase)
	}
	if cfg.Clock == nil || cfg.Log == nil || st == nil || profiles == nil || kp == nil || linter == nil {
		return nil, errors.New("issue: clock, logger, store, profiles, key provider and linter are required")
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.ApprovalLifetime <= 0 {
		cfg.ApprovalLifetime = 72 * time.Hour
	}
	if cfg.CAs == nil {
		cfg.CAs = ca.NewCache(st, cfg.Clock)
	}
	return &Service{
		cfg: cfg, store: st, profiles: profiles, keys: kp, linter: linter,
		signers: keys.NewSignerCache(kp),
		parsed:  map[string]*x509.Certificate{},
		chains:  map[string][]*x509.Certificate{},
	}, nil
}

// Request asks for a leaf certificate. Exactly one of CSR or KeyAlgorithm
// (managed key; may be empty to use the profile's default) applies: when CSR
// is nil the server generates the key.
type Request struct {
	Principal authz.Principal
	CA        string // id or name
	Profile   string
	CSR       *x509.CertificateRequest
	// Managed-key requests name the subject here.
	KeyAlgorithm   pki.KeyAlgorithm
	Subject        pkix.Name
	DNSNames       []string
	IPAddresses    []net.IP
	EmailAddresses []string
	URIs           []*url.URL
	ValidityDays   int
	Tags           []string
	// Validity is a lifetime finer than days, in place of ValidityDays.
	Validity time.Duration
	// Person asks for the principal's own short-lived client certificate
	// under the person profile, after a sign-in through an identity
	// provider (person.go): no role is needed, but the request must come
	// with a token from such a sign-in and name only the e-mail addresses
	// the principal holds as identities.
	Person bool
	// RetainKey keeps a managed key wrapped even when the profile would
	// not. Only the server sets it (its own TLS key, renewals of certificates
	// it renews itself); the API never does.
	RetainKey bool
	// PublicKey certifies this key again instead of a CSR or a new key
	// (renewal with key reuse; the profile must allow it). Only the
	// renewal path sets it.
	PublicKey crypto.PublicKey
	// Owner is who answers for the certificate (free text).
	Owner string
	// AutoRenew marks the certificate for renewal by the server. With a
	// managed key the key is retained (wrapped) so the renewal can be
	// handed out; with a CSR the profile must allow key reuse.
	AutoRenew bool
	// Replaces is the serial of the certificate this one renews, and
	// RenewalKind how (default manual). The predecessor must exist, be
	// covered by the principal's cert:issue, share a name with the request
	// and not be replaced already.
	Replaces    string
	RenewalKind inventory.RenewalKind
	// Context adds to the issue event's details what the front end knows
	// of the request (a SCEP transaction and challenge); it never
	// overrides the details the issuance path sets.
	Context map[string]string
	// Completes is the ACME order the certificate completes, and the
	// claim its finalization holds: the certificate is stored only while
	// the claim holds, together with the order's completion. Only ACME
	// finalization sets it.
	Completes *inventory.OrderClaim
	// AuditDetails are recorded in the certificate.issue audit event
	// next to the issuer's own details, which they never replace (EST:
	// how the device authenticated).
	AuditDetails map[string]any
}

const maxOwner = 200

// Result is an issued certificate.
type Result struct {
	Cert *inventory.Certificate
	// CAName is the issuing CA's name.
	CAName string
	Leaf   *x509.Certificate
	// Chain is the issuer chain above the leaf, nearest first, up to and
	// including the root.
	Chain []*x509.Certificate
	// Pending is set, and everything else empty, when the request is held
	// for approval.
	Pending *ApprovalRequest
	// Key is the managed private key (managed-key requests only). It is
	// handed to the caller once; it is retained (wrapped) only when the
	// profile's key_export is "retain".
	Key crypto.Signer
}

const maxTags = 32

func validateTags(tags []string) ([]string, error) {
	if len(tags) > maxTags {
		return nil, fmt.Errorf("%w: %d tags, at most %d", ErrInvalid, len(tags), maxTags)
	}
	out := make([]string, 0, len(tags))
	for _, t := range tags {
		t = strings.TrimSpace(t)
		if t == "" || len(t) > 64 || strings.ContainsAny(t, ",\n\r\t") {
			return nil, fmt.Errorf("%w: tag %q: use 1-64 characters without commas or control characters", ErrInvalid, t)
		}
		out = append(out, t)
	}
	return out, nil
}

// Issue runs the issuance path for a leaf certificate. Under a profile
// that requires approval it stores the request and returns a Result with
// Pending set and no certificate.
func (s *Service) Issue(ctx context.Context, req Request) (*Result, error) {
	if s.cfg.Observer == nil {
		return s.issue(ctx, req, nil)
	}
	start := time.Now()
	res, err := s.issue(ctx, req, nil)
	s.observe(res, start, err)
	return res, err
}

// observe tells the observer how an issuance ended; a request held for
// approval is counted when it is released.
func (s *Service) observe(res *Result, start time.Time, err error) {
	if s.cfg.Observer == nil || (res != nil && res.Pending != nil) {
		return
	}
	// Labels only from a successful issuance: a failed request's names
	// come from the caller and would make label values unbounded.
	caName, prof := "", ""
	if res != nil && res.Cert != nil {
		caName, prof = res.CAName, res.Cert.Profile
	}
	s.cfg.Observer.ObserveIssue(caName, prof, time.Since(start), err)
}

// issue is Issue; approved is the request being replayed after approval.
func (s *Service) issue(ctx context.Context, req Request, approved *ApprovalRequest) (*Result, error) {
	tags, err := validateTags(req.Tags)
	if err != nil {
		return nil, err
	}
	if len(req.Owner) > maxOwner || strings.ContainsAny(req.Owner, "\r\n\t") {
		return nil, fmt.Errorf("%w: owner: use at most %d characters without control characters", ErrInvalid, maxOwner)
	}
	if req.Replaces == "" && req.RenewalKind != "" {
		return nil, fmt.Errorf("%w: a renewal kind needs the serial of the certificate being replaced", ErrInvalid)
	}
	prof, err := s.profiles.Get(ctx, req.Profile)
	if err != nil {
		return nil, err
	}
	authority, issuer, err := s.issuingCA(ctx, req.CA)
	if err != nil {
		return nil, err
	}

	// The request as the profile sees it; the key comes later for managed keys.
	var (
		pub     crypto.PublicKey
		managed crypto.Signer
		pr      profile.Request
		alg     pki.KeyAlgorithm
	)
	if req.PublicKey != nil && req.CSR != nil {
		return nil, fmt.Errorf("%w: a request carries a CSR or a public key to reuse, not both", ErrInvalid)
	}
	if req.PublicKey != nil {
		if !prof.AllowKeyReuse {
			return nil, fmt.Errorf("%w: profile %s does not allow key reuse (allow_key_reuse): renew with a new key", ErrInvalid, prof.Name)
		}
		pub = req.PublicKey
		pr = profile.Request{
			PublicKey: pub, Subject: req.Subject, DNSNames: req.DNSNames, IPAddresses: req.IPAddresses,
			EmailAddresses: req.EmailAddresses, URIs: req.URIs,
		}
	} else if req.CSR != nil {
		if req.AutoRenew && !prof.AllowKeyReuse {
			return nil, fmt.Errorf("%w: auto_renew with a CSR renews the same key, and profile %s does not allow key reuse (allow_key_reuse); let the server generate the key, or renew from the host (certwright agent)", ErrInvalid, prof.Name)
		}
		pub = req.CSR.PublicKey
		pr = profile.Request{
			PublicKey: pub, Subject: req.CSR.Subject,
			DNSNames: req.CSR.DNSNames, IPAddresses: req.CSR.IPAddresses,
			EmailAddresses: req.CSR.EmailAddresses, URIs: req.CSR.URIs,
		}
		if len(req.CSR.Extensions) > 0 {
			if err := checkCSRExtensions(req.CSR); err != nil {
				return nil, err
			}
		}
	} else {
		alg = req.KeyAlgorithm
		if alg == "" {
			alg = prof.DefaultKeyAlgorithm()
		}
		if err := prof.AllowsAlgorithm(alg); err != nil {
			return nil, err
		}
		pr = profile.Request{
			Subject: req.Subject, DNSNames: req.DNSNames, IPAddresses: req.IPAddresses,
			EmailAddresses: req.EmailAddresses, URIs: req.URIs,
		}
	}
	addCommonNameSAN(&pr)
	if req.Validity != 0 && req.ValidityDays != 0 {
		return nil, fmt.Errorf("%w: a request names its validity in days or as a duration, not both", ErrInvalid)
	}
	pr.ValidityDays, pr.Validity = req.ValidityDays, req.Validity

	// 2. Authorisation: may this principal issue under this profile on this
	// CA for these names? A server-generated key goes to machines only.
	// A person's own certificate needs no role, only its sign-in and
	// addresses.
	res := authz.Resource{CAID: authority.ID, CAName: authority.Name, Profile: prof.Name, Names: requestNames(&pr)}
	if req.Person {
		if err := s.checkPerson(ctx, &req, prof, &pr); err != nil {
			return nil, err
		}
	} else if err := req.Principal.Allow(authz.PermCertIssue, res); err != nil {
		return nil, err
	}
	var predecessor *inventory.Certificate
	if req.Replaces != "" {
		if predecessor, err = s.checkReplaces(ctx, req, res); err != nil {
			return nil, err
		}
	}
	// A key reported compromised is never certified again. A key the
	// server generates below is new, so only a CSR's or a reused key is
	// looked up; before anything is held for approval.
	var spki []byte // pub's DER SubjectPublicKeyInfo, marshalled once
	if pub != nil {
		if spki, err = x509.MarshalPKIXPublicKey(pub); err != nil {
			return nil, fmt.Errorf("%w: public key: %w", ErrInvalid, err)
		}
		if err := s.checkKeyNotCompromised(ctx, spki); err != nil {
			return nil, err
		}
	}
	// A renewal the server keeps the key of hands nothing out: the
	// machine-only and key:export rules apply when the key is fetched.
	serverKept := req.RetainKey && predecessor != nil
	if req.CSR == nil && req.PublicKey == nil {
		if !serverKept && req.Principal.Kind != authz.KindMachine {
			return nil, authz.Refuse(authz.RuleMachineOnlyKey, "private keys are handed out to machine principals only; %s is %s: submit a CSR instead", req.Principal.Name, req.Principal.Kind)
		}
		if !serverKept {
			if err := req.Principal.Allow(authz.PermKeyExport, res); err != nil {
				return nil, err
			}
		}
		if prof.RequireApproval && approved == nil {
			return nil, fmt.Errorf("%w: profile %s requires approval, and server-generated keys are not held for approval: submit a CSR", ErrInvalid, prof.Name)
		}
		managed, err = alg.Generate(s.cfg.Rand)
		if err != nil {
			return nil, fmt.Errorf("issue: generate %s key: %w", alg, err)
		}
		pub = managed.Public()
		pr.PublicKey = pub
	}

	// 3. Profile policy.
	if err := prof.Check(pr); err != nil {
		return nil, err
	}
	// A constrained CA never signs what relying parties would reject.
	chain, err := s.Chain(ctx, authority.ID)
	if err != nil {
		return nil, err
	}
	if err := ca.CheckNameConstraints(chain, pr.DNSNames, pr.IPAddresses, pr.EmailAddresses, pr.URIs); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	validity, err := prof.Validity(req.ValidityDays)
	if req.Validity != 0 {
		validity, err = prof.ValidityOf(req.Validity)
	}
	if err != nil {
		return nil, err
	}
	// Names registered as a principal's mTLS identity are minted only for
	// that principal: a SAN must never become another principal's login.
	ku, eku := prof.Usages(pub)
	// Backstop behind profile validation: no leaf from this path ever
	// carries OCSPSigning (a delegated responder for its CA).
	if err := profile.CheckIssuableEKU(eku, prof.AllowTimeStamping); err != nil {
		return nil, err
	}
	credential, err := s.clientCredential(ctx, req.Principal, &pr, eku)
	if err != nil {
		return nil, err
	}
	// 4. Approval: held until a second principal approves.
	if prof.RequireApproval && approved == nil {
		if deviceAuth(req.Principal.Auth) {
			// An ACME client cannot poll an approval request, and the
			// replay could not act as the account it came from (an account
			// bound to a principal would be replayed as that principal,
			// with all its roles): refuse rather than hold.
			return nil, fmt.Errorf("%w: %w: profile %s requires approval, which an ACME or EST client cannot wait for; nothing was held", ErrForbidden, ErrApprovalUnavailable, prof.Name)
		}
		if req.CSR == nil {
			// A held request is replayed from its CSR; a renewal that
			// certifies a stored key again has none. It fails (the renewal
			// job records it and alerts) rather than bypassing the approver.
			return nil, fmt.Errorf("%w: profile %s requires approval, and only a request with a CSR can be held for an approver; a renewal that reuses the key has none: renew from the host with a CSR (certwright agent, or cert sign), or remove require_approval from the profile", ErrInvalid, prof.Name)
		}
		if predecessor != nil {
			req.Replaces = predecessor.Serial
		}
		return s.hold(ctx, req, authority, prof, res.Names)
	}

	// From here the certificate is on its way to the store: announced only
	// now, after any key generation or hold for approval, so that the
	// group commit is not held back by those (it waits at most its
	// linger, whatever follows: the CA signature, a managed key's wrap).
	arrived := func() {}
	if ex, ok := s.store.(insertExpecter); ok {
		arrived = ex.ExpectCertificate()
		defer arrived()
	}

	// 5. Template with a fresh serial (the issuance time, then random).
	now := s.cfg.Clock.Now()
	serial, err := pki.NewSerialAt(s.cfg.Rand, now)
	if err != nil {
		return nil, err
	}
	if spki == nil { // a key generated above
		if spki, err = x509.MarshalPKIXPublicKey(pub); err != nil {
			return nil, fmt.Errorf("issue: public key: %w", err)
		}
	}
	ski, err := pki.SubjectKeyIDOf(spki)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	notBefore := now.Add(-time.Minute).Truncate(time.Second)
	notAfter := notBefore.Add(validity)
	if notAfter.After(issuer.NotAfter) {
		notAfter = issuer.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pr.Subject,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              ku,
		ExtKeyUsage:           eku,
		BasicConstraintsValid: true,
		SubjectKeyId:          ski,
		AuthorityKeyId:        issuer.SubjectKeyId,
		DNSNames:              pr.DNSNames,
		IPAddresses:           pr.IPAddresses,
		EmailAddresses:        pr.EmailAddresses,
		URIs:                  pr.URIs,
		SignatureAlgorithm:    pki.SignatureAlgorithmFor(issuer.PublicKey),
	}
	ca.URLsFor(s.cfg.PublicHTTPBase, authority.ID).Apply(tmpl)

	// 6-7. Lint before the real signature, then sign.
	leaf, warnings, err := s.lintAndSign(ctx, authority, tmpl, pub, issuer, prof.CABFLints)
	if err != nil {
		return nil, err
	}

	// 8. Store durably before anyone sees the certificate.
	rec := Record(leaf, authority.ID, prof.Name, req.Principal.Name, tags, warnings, now)
	rec.RequesterID = req.Principal.ID
	rec.Owner, rec.AutoRenew = req.Owner, req.AutoRenew
	rec.ClientPrincipalID = credential
	rec.Completes = req.Completes
	if credential != "" && credential == req.Principal.ID {
		// A credential a sign-in mints for the person (a person
		// certificate, which checkPerson admits only for a sign-in's
		// token, or any client certificate issued with the sign-in's
		// token or one of its certificates) ends with that sign-in.
		rec.ClientTokenID = req.Principal.SignIn
	}
	if predecessor != nil {
		rec.Replaces, rec.RenewalKind = predecessor.Serial, req.RenewalKind
		if rec.RenewalKind == "" {
			rec.RenewalKind = inventory.RenewalManual
		}
	}
	if managed != nil && (prof.KeyExport == "retain" || req.RetainKey || req.AutoRenew) {
		exp, ok := s.keys.(keys.Exporter)
		if !ok {
			return nil, errors.New("issue: key provider cannot retain managed keys")
		}
		// Bound to this certificate, and to the server's own TLS when
		// the server asked: that key is never exported, and a managed
		// key row cannot be relabelled into it or out of it.
		purpose := keys.ManagedPurpose(rec.Serial)
		if req.Principal.ID == authz.System().ID {
			purpose = keys.ServerTLSPurpose(rec.Serial)
		}
		ref, err := exp.Wrap(ctx, purpose, managed)
		if err != nil {
			return nil, fmt.Errorf("issue: wrap managed key: %w", err)
		}
		rec.ManagedKey = &ref
	}
	details := map[string]any{
		"ca": authority.Name, "ca_id": authority.ID, "ca_key": authority.Key.ID, "profile": prof.Name,
		"subject": rec.Subject, "sans": rec.SANs, "not_after": rec.NotAfter,
	}
	for k, v := range req.Context {
		if _, set := details[k]; !set {
			details[k] = v
		}
	}
	if managed != nil {
		switch {
		case req.Principal.ID == authz.System().ID:
			details["managed_key"] = "retained"
		case rec.ManagedKey != nil:
			details["managed_key"] = "handed_out_and_retained"
		default:
			details["managed_key"] = "handed_out"
		}
	}
	if rec.Replaces != "" {
		details["replaces"], details["renewal_kind"] = rec.Replaces, rec.RenewalKind
	}
	if rec.AutoRenew {
		details["auto_renew"] = true
	}
	if req.Person {
		details["person"], details["via"] = true, req.Principal.Via
	}
	if req.Person || rec.ClientTokenID != "" {
		details["token_id"] = rec.ClientTokenID
	}
	if approved != nil {
		details["approval_request"] = approved.ID
		details["approved_by"] = approved.DecidedBy
	}
	for k, v := range req.AuditDetails {
		if _, taken := details[k]; !taken {
			details[k] = v
		}
	}
	ev := audit.New(req.Principal, now, "certificate.issue", rec.Serial, details)
	arrived()
	if err := s.store.InsertCertificate(ctx, rec, ev); err != nil {
		return nil, fmt.Errorf("issue: store certificate: %w", err)
	}
	s.cfg.Log.Info("certificate issued", "serial", rec.Serial, "ca", authority.Name, "profile", prof.Name,
		"requester", req.Principal.Name, "sans", len(rec.SANs), "managed_key", managed != nil)
	return &Result{Cert: rec, CAName: authority.Name, Leaf: leaf, Chain: chain, Key: managed}, nil
}

// checkReplaces loads the certificate req renews and checks that the
// principal may renew it: it was issued here, is not replaced already,
// shares a name with the request, and all its names are within the
// principal's cert:issue.
func (s *Service) checkReplaces(ctx context.Context, req Request, res authz.Resource) (*inventory.Certificate, error) {
	switch req.RenewalKind {
	case "", inventory.RenewalManual, inventory.RenewalAuto, inventory.RenewalAgent, inventory.RenewalACME, inventory.RenewalEST, inventory.RenewalSCEP, inventory.RenewalRotate:
	default:
		return nil, fmt.Errorf("%w: renewal kind %q: want agent or manual", ErrInvalid, req.RenewalKind)
	}
	old, err := s.store.GetCertificate(ctx, strings.ToLower(strings.TrimSpace(req.Replaces)))
	if err != nil {
		return nil, fmt.Errorf("%w: replaces %s: %w", ErrInvalid, req.Replaces, err)
	}
	if old.Source.External() {
		return nil, fmt.Errorf("%w: replaces %s: an %s certificate is renewed by its own issuer", ErrInvalid, old.Serial, old.Source)
	}
	if old.RenewedBy != "" {
		return nil, fmt.Errorf("%w: replaces %s: already renewed by %s", ErrConflict, old.Serial, old.RenewedBy)
	}
	oldRes := authz.Resource{CAID: old.CAID, Profile: old.Profile, Names: old.SANs}
	if c, err := s.store.GetCA(ctx, old.CAID); err == nil {
		oldRes.CAName = c.Name
	}
	if err := req.Principal.Allow(authz.PermCertIssue, oldRes); err != nil {
		return nil, fmt.Errorf("replaces %s: %w", old.Serial, err)
	}
	// A certificate without SANs (a device's, named by its common name)
	// is matched by that name.
	oldNames := old.SANs
	if leaf, err := x509.ParseCertificate(old.DER); err == nil && leaf.Subject.CommonName != "" {
		oldNames = append(slices.Clip(oldNames), leaf.Subject.CommonName)
	}
	shared := false
	for _, n := range res.Names {
		if slices.ContainsFunc(oldNames, func(o string) bool { return strings.EqualFold(o, n) }) {
			shared = true
			break
		}
	}
	if !shared {
		return nil, fmt.Errorf("%w: replaces %s: it shares no name with the request", ErrInvalid, old.Serial)
	}
	return old, nil
}

// Record builds the inventory record for a signed certificate.
func Record(leaf *x509.Certificate, caID, profileName, requester string, tags, warnings []string, now time.Time) *inventory.Certificate {
	fam, bits, _ := pki.DescribeKey(leaf.PublicKey)
	if tags == nil {
		tags = []string{}
	}
	if warnings == nil {
		warnings = []string{}
	}
	return &inventory.Certificate{
		Serial:             pki.SerialHex(leaf.SerialNumber),
		CAID:               caID,
		Profile:            profileName,
		Requester:          requester,
		Subject:            leaf.Subject.String(),
		SANs:               pki.SANs(leaf),
		NotBefore:          leaf.NotBefore.UTC(),
		NotAfter:           leaf.NotAfter.UTC(),
		KeyAlgorithm:       fam,
		KeyBits:            bits,
		SignatureAlgorithm: leaf.SignatureAlgorithm.String(),
		Status:             inventory.StatusValid,
		Source:             inventory.SourceIssued,
		Fingerprint:        pki.Fingerprint(leaf.Raw),
		SPKISHA256:         pki.Fingerprint(leaf.RawSubjectPublicKeyInfo),
		Tags:               tags,
		LintWarnings:       warnings,
		DER:                leaf.Raw,
		CreatedAt:          now.UTC(),
	}
}

// requestNames lists every name a certificate would carry, for scope checks:
// the SANs and the subject common name.
func requestNames(r *profile.Request) []string {
	out := make([]string, 0, len(r.DNSNames)+len(r.IPAddresses)+len(r.EmailAddresses)+len(r.URIs)+1)
	out = append(out, r.DNSNames...)
	for _, ip := range r.IPAddresses {
		out = append(out, ip.String())
	}
	out = append(out, r.EmailAddresses...)
	for _, u := range r.URIs {
		out = append(out, u.String())
	}
	if cn := r.Subject.CommonName; cn != "" && !slices.ContainsFunc(out, func(n string) bool { return strings.EqualFold(n, cn) }) {
		out = append(out, cn)
	}
	return out
}

// addCommonNameSAN copies a host-name or IP common name into the SANs, since
// relying parties match only SANs (RFC 6125) and lints require it.
func addCommonNameSAN(r *profile.Request) {
	cn := strings.TrimSpace(r.Subject.CommonName)
	if cn == "" {
		return
	}
	if ip := net.ParseIP(cn); ip != nil {
		for _, have := range r.IPAddresses {
			if have.Equal(ip) {
				return
			}
		}
		r.IPAddresses = append(append([]net.IP{}, r.IPAddresses...), ip)
		return
	}
	if !strings.Contains(cn, ".") || strings.ContainsAny(cn, " @/:") {
		return
	}
	for _, have := range r.DNSNames {
		if strings.EqualFold(have, cn) {
			return
		}
	}
	r.DNSNames = append(append([]string{}, r.DNSNames...), strings.ToLower(cn))
}

// CSR extensions other than the SAN and the key/usage requests are ignored;
// a CSR asking to be a CA is refused outright rather than silently trimmed.
func checkCSRExtensions(csr *x509.CertificateRequest) error {
	for _, e := range csr.Extensions {
		if e.Id.Equal(oidBasicConstraints) {
			var bc struct {
				IsCA bool `asn1:"optional"`
			}
			if _, err := asn1.Unmarshal(e.Value, &bc); err == nil && bc.IsCA {
				return fmt.Errorf("%w: the CSR asks for a CA certificate (basicConstraints CA:TRUE); leaf profiles cannot issue CAs", ErrInvalid)
			}
		}
	}
	return nil
}

var oidBasicConstraints = asn1.ObjectIdentifier{2, 5, 29, 19}

// caSigner returns the signer of CA c: its key unwrapped for this CA (a key
// copied from another record does not unwrap) and checked against the
// public key of its certificate, or of its CSR while it is pending.
func (s *Service) caSigner(ctx context.Context, c *ca.CA) (crypto.Signer, error) {
	var pub crypto.PublicKey
	switch {
	case len(c.CertDER) > 0:
		cert, err := s.parse(c)
		if err != nil {
			return nil, err
		}
		pub = cert.PublicKey
	case len(c.CSRDER) > 0:
		csr, err := x509.ParseCertificateRequest(c.CSRDER)
		if err != nil {
			return nil, fmt.Errorf("issue: parse CSR of CA %s: %w", c.Name, err)
		}
		pub = csr.PublicKey
	default:
		return nil, fmt.Errorf("issue: CA %s has neither a certificate nor a CSR to check its key against", c.Name)
	}
	return s.caSignerFor(ctx, c, pub)
}

// caSignerFor is caSigner for a caller that holds c's public key already
// (issuance has the parsed CA certificate): the key is unwrapped for c's
// purpose and checked against pub.
func (s *Service) caSignerFor(ctx context.Context, c *ca.CA, pub crypto.PublicKey) (crypto.Signer, error) {
	if c.Offline() {
		return nil, fmt.Errorf("%w: CA %s is an offline root: its key is not on this server", ca.ErrNotIssuing, c.Name)
	}
	sg, err := s.signers.Signer(ctx, c.Key, keys.CAPurpose(c.ID))
	if err != nil {
		return nil, fmt.Errorf("issue: load key %s of CA %s: %w", c.Key.ID, c.Name, err)
	}
	if err := keys.CheckPublic(sg, pub); err != nil {
		return nil, fmt.Errorf("issue: key %s of CA %s: %w", c.Key.ID, c.Name, err)
	}
	return sg, nil
}

func (s *Service) parse(c *ca.CA) (*x509.Certificate, error) {
	if len(c.CertDER) == 0 {
		return nil, fmt.Errorf("%w: CA %s has no certificate yet", ca.ErrNotIssuing, c.Name)
	}
	k := c.ID + "/" + pki.Fingerprint(c.CertDER)
	s.mu.RLock()
	cert, ok := s.parsed[k]
	s.mu.RUnlock()
	if ok {
		return cert, nil
	}
	cert, err := x509.ParseCertificate(c.CertDER)
	if err != nil {
		return nil, fmt.Errorf("issue: parse certificate of CA %s: %w", c.Name, err)
	}
	s.mu.Lock()
	s.parsed[k] = cert
	s.mu.Unlock()
	return cert, nil
}

// issuingCA resolves an active CA that may sign leaves. The record comes
// from the CA cache: a change through this process is seen at once, one
// by another process within ca.CacheMaxAge (1 s).
func (s *Service) issuingCA(ctx context.Context, idOrName string) (*ca.CA, *x509.Certificate, error) {
	if idOrName == "" {
		return nil, nil, fmt.Errorf("%w: no CA named: give the issuing CA", ErrInvalid)
	}
	c, err := s.cfg.CAs.GetCA(ctx, idOrName)
	if err != nil {
		return nil, nil, fmt.Errorf("issue: %w", err)
	}
	if err := c.CanIssue(); err != nil {
		return nil, nil, err
	}
	if c.Kind == ca.KindRoot {
		return nil, nil, fmt.Errorf("%w: CA %s is a root; a root issues only intermediate CAs — issue from one of its intermediates", ca.ErrNotIssuing, c.Name)
	}
	cert, err := s.parse(c)
	if err != nil {
		return nil, nil, err
	}
	now := s.cfg.Clock.Now()
	if now.After(cert.NotAfter) {
		return nil, nil, fmt.Errorf("%w: CA %s expired on %s", ca.ErrNotIssuing, c.Name, cert.NotAfter.Format(time.RFC3339))
	}
	return c, cert, nil
}

// Chain returns the certificates from the CA idOrName up to its root,
// nearest first. An externally signed CA ends with the chain imported with it.
func (s *Service) Chain(ctx context.Context, idOrName string) ([]*x509.Certificate, error) {
	s.mu.RLock()
	cached, ok := s.chains[idOrName]
	s.mu.RUnlock()
	if ok {
		return cached, nil
	}
	chain, first, err := s.buildChain(ctx, idOrName)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.chains[first] = chain
	s.mu.Unlock()
	return chain, nil
}

// buildChain walks the hierarchy upwards; it returns the chain and the
// first CA's ID (the cache key).
func (s *Service) buildChain(ctx context.Context, idOrName string) ([]*x509.Certificate, string, error) {
	var out []*x509.Certificate
	first := ""
	id := idOrName
	for depth := 0; depth < 10; depth++ {
		c, err := s.store.GetCA(ctx, id)
		if err != nil {
			return nil, "", fmt.Errorf("issue: chain: %w", err)
		}
		if first == "" {
			first = c.ID
		}
		cert, err := s.parse(c)
		if err != nil {
			return nil, "", err
		}
		out = append(out, cert)
		if c.ParentID == "" {
			for _, d := range c.ChainDER {
				pc, err := x509.ParseCertificate(d)
				if err != nil {
					return nil, "", fmt.Errorf("issue: chain of CA %s: %w", c.Name, err)
				}
				out = append(out, pc)
			}
			return out, first, nil
		}
		id = c.ParentID
	}
	return nil, "", errors.New("issue: CA hierarchy deeper than 10")
}

// SplitChain separates an issuer chain into the certificates a server sends
// (everything below the root) and the self-issued root at its end, if any.
func SplitChain(chain []*x509.Certificate) (intermediates []*x509.Certificate, root *x509.Certificate) {
	if n := len(chain); n > 0 && bytes.Equal(chain[n-1].RawIssuer, chain[n-1].RawSubject) {
		return chain[:n-1], chain[n-1]
	}
	return chain, nil
}

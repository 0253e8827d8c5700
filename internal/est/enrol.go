package est

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/issue"
	"github.com/certwright/certwright/internal/lint"
	"github.com/certwright/certwright/internal/netsource"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/profile"
)

// DefaultProvisioner is the provisioner served at the unlabelled path
// /.well-known/est/ when one of that name exists.
const DefaultProvisioner = "default"

// Request is one enrolment (simpleenroll, simplereenroll, serverkeygen)
// as the edge decoded it.
type Request struct {
	Provisioner string
	Op          string
	// Body is the request body as the device sent it: a base64 PKCS#10
	// request, decoded only once the device has authenticated.
	Body []byte
	// PeerChain is the TLS client certificate chain, leaf first.
	PeerChain []*x509.Certificate
	// HasBasic is set when the request carried HTTP Basic credentials.
	HasBasic            bool
	BasicUser, BasicPwd string
	// ChannelBinding is the connection's tls-unique (TLS 1.2) or
	// tls-exporter (TLS 1.3) value, nil when unknown.
	ChannelBinding []byte
	Source         string
	RequestID      string
}

// Result is an issued device certificate.
type Result struct {
	Leaf *x509.Certificate
	// Key is the server-generated key (serverkeygen only).
	Key crypto.Signer
}

// device is who authenticated and what it may enrol for.
type device struct {
	identity string
	method   string // "idevid", "secret", "certificate"
	secret   *Secret
	idevid   string                 // SHA-256 of the IDevID (hex), when one authenticated
	current  *inventory.Certificate // re-enrolment: the certificate renewed
	leaf     *x509.Certificate      // and as the device presented it
}

// OIDChallengePassword is the PKCS#9 challengePassword attribute
// (RFC 2985), which carries the channel binding in EST (RFC 7030 3.5).
var oidChallengePassword = []int{1, 2, 840, 113549, 1, 9, 7}

// Provisioner returns the provisioner serving the EST path label name
// ("" for the unlabelled path: the provisioner named "default").
func (s *Service) Provisioner(ctx context.Context, name string) (*Provisioner, error) {
	if name == "" {
		name = DefaultProvisioner
	}
	gen, now := s.store.ESTGeneration(), s.cfg.Clock.Now()
	if prov, ok := s.provisioners.Get(name, gen, now); ok {
		return prov, nil
	}
	prov, err := s.store.GetESTProvisioner(ctx, name)
	if errors.Is(err, ErrNotFound) || (err == nil && prov.Name != name) {
		if name == DefaultProvisioner {
			return nil, errorf(ErrNotFound, "no default EST provisioner: use /.well-known/est/NAME/ with a provisioner's name, or ask the operator to create one named %q", DefaultProvisioner)
		}
		return nil, errorf(ErrNotFound, "no EST provisioner %q", name)
	}
	if err != nil {
		return nil, fmt.Errorf("est: provisioner %q: %w", name, err)
	}
	s.provisioners.Put(name, gen, now, prov)
	return prov, nil
}

// CACerts returns the provisioner's CA chain, issuing CA first, root last
// (RFC 7030 4.1.3).
func (s *Service) CACerts(ctx context.Context, name string) ([]*x509.Certificate, error) {
	prov, err := s.Provisioner(ctx, name)
	if err != nil {
		return nil, err
	}
	chain, err := s.issuer.Chain(ctx, prov.CAID)
	if err != nil {
		return nil, fmt.Errorf("est: chain of %s: %w", prov.CAName, err)
	}
	return chain, nil
}

// CSRAttrs returns the attributes the provisioner wants in a CSR
// (RFC 7030 4.5.2): the channel binding and the profile's key type.
func (s *Service) CSRAttrs(ctx context.Context, name string) ([]byte, error) {
	prov, err := s.Provisioner(ctx, name)
	if err != nil {
		return nil, err
	}
	prof, err := s.profiles.Get(ctx, prov.Profile)
	if err != nil {
		return nil, fmt.Errorf("est: profile %s: %w", prov.Profile, err)
	}
	return csrAttrs(prof)
}

// Enrol authenticates a device and issues the certificate its CSR asks
// for through the one issuance path. The device authenticates before its
// body is decoded or its CSR parsed, so that an anonymous peer costs a
// token of its budget and nothing else. Every refused request spends a
// token of the (provisioner, source) failure budget; a refused request
// past the budget is answered 429, while a request whose credential
// verifies is served whatever the budget (many devices can share an
// address behind NAT).
func (s *Service) Enrol(ctx context.Context, req Request) (*Result, error) {
	prov, err := s.Provisioner(ctx, req.Provisioner)
	if err != nil {
		return nil, err
	}
	if prov.Disabled() {
		return nil, errorf(ErrRefused, "EST provisioner %s was disabled by its operator on %s and enrols no devices", prov.Name, prov.DisabledAt.Format(time.RFC3339))
	}
	token, err := s.randomHex(12)
	if err != nil {
		return nil, err
	}
	dev, res, err := s.enrol(ctx, prov, req, token)
	if err == nil {
		return res, nil
	}
	if dev != nil && dev.secret != nil {
		s.handBack(ctx, prov, req, dev, token, err)
	}
	return nil, s.refused(ctx, prov, req, dev, err)
}

// handBack makes the secret dev used unused again after a refused
// enrolment, so that the device may try again, with an audit event. Only
// a refusal proves that nothing was stored (the device's errors all come
// before the certificate is stored); after any other failure a
// certificate may have been issued, so the secret stays used and the
// operator hands the device a new one.
func (s *Service) handBack(ctx context.Context, prov *Provisioner, req Request, dev *device, token string, cause error) {
	if !isClientError(cause) {
		s.cfg.Log.Warn("est: enrolment secret kept used after a failed issuance that may have stored a certificate",
			"secret", dev.secret.ID, "provisioner", prov.Name, "request_id", req.RequestID)
		return
	}
	ev := audit.New(s.principal(prov, req.Source, req.RequestID, false), s.cfg.Clock.Now(), "est.secret.release", dev.secret.ID, map[string]any{
		"provisioner": prov.Name, "identity": dev.secret.Identity, "reason": "enrolment refused; nothing was issued",
	})
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if rerr := s.store.ReleaseESTSecret(actx, dev.secret.ID, token, ev); rerr != nil {
		s.cfg.Log.Error("est: release enrolment secret", "secret", dev.secret.ID, "err", rerr)
	}
}

// refused charges a refused request to its (provisioner, source) budget
// and audits it. A request past the budget becomes ErrRateLimited, and a
// request with no credential at all is not audited one by one: both are
// counted, and the count logged at most once a minute (quietLog), so that
// anonymous peers cannot flood the audit log.
func (s *Service) refused(ctx context.Context, prov *Provisioner, req Request, dev *device, err error) error {
	if isClientError(err) {
		key := prov.ID + " " + netsource.Key(req.Source)
		if wait := s.failures.Wait(key); wait > 0 {
			s.quiet(prov, "rate_limited")
			return &rateLimited{wait: wait, prov: prov.Name}
		}
		s.failures.Fail(key)
	}
	if errors.Is(err, errNoCredential) {
		s.quiet(prov, "no_credential")
		return err
	}
	var af *authFailure
	reason := err.Error()
	if errors.As(err, &af) {
		reason = af.reason
	}
	outcome := audit.Denied
	if !isClientError(err) {
		outcome, reason = audit.Failed, "internal error"
		s.cfg.Log.Error("est: enrolment failed", "provisioner", prov.Name, "op", req.Op, "err", err)
	}
	d := map[string]any{"provisioner": prov.Name, "op": req.Op, "reason": truncate(reason, 500)}
	if dev != nil {
		d["identity"], d["auth"] = dev.identity, dev.method
	}
	ev := audit.New(s.principal(prov, req.Source, req.RequestID, false), s.cfg.Clock.Now(), "est.enroll", prov.Name, d)
	ev.Outcome = outcome
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if aerr := s.store.AppendAudit(actx, ev); aerr != nil {
		s.cfg.Log.Error("est: audit a refused enrolment", "err", aerr)
	}
	return err
}

// quietLogEvery is how often the count of unaudited refusals is logged.
const quietLogEvery = time.Minute

// quiet counts a refusal that gets no audit row of its own and logs the
// counts at most once every quietLogEvery.
func (s *Service) quiet(prov *Provisioner, why string) {
	now := s.cfg.Clock.Now()
	s.quietMu.Lock()
	s.quietCounts[why]++
	if now.Sub(s.quietAt) < quietLogEvery {
		s.quietMu.Unlock()
		return
	}
	counts := s.quietCounts
	s.quietCounts, s.quietAt = map[string]int{}, now
	s.quietMu.Unlock()
	s.cfg.Log.Warn("est: refused requests without an audit row each", "last_provisioner", prov.Name,
		"no_credential", counts["no_credential"], "rate_limited", counts["rate_limited"])
}

// rateLimited is ErrRateLimited with the wait the edge puts in Retry-After.
type rateLimited struct {
	wait time.Duration
	prov string
}

func (e *rateLimited) Error() string {
	return fmt.Sprintf("too many refused requests from this address on EST provisioner %s; retry in %d seconds", e.prov, RetryAfterSeconds(e))
}
func (e *rateLimited) Unwrap() error { return ErrRateLimited }

// RetryAfterSeconds is the whole number of seconds (at least 1) a device
// refused with ErrRateLimited should wait; 0 for other errors.
func RetryAfterSeconds(err error) int {
	var rl *rateLimited
	if !errors.As(err, &rl) {
		return 0
	}
	return max(1, int(math.Ceil(rl.wait.Seconds())))
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// isClientError reports whether err is the device's doing.
func isClientError(err error) bool {
	for _, e := range []error{ErrInvalid, ErrNotFound, ErrUnauthenticated, ErrRefused, ErrRateLimited, issue.ErrInvalid, issue.ErrKeyCompromised, authz.ErrForbidden} {
		if errors.Is(err, e) {
			return true
		}
	}
	return IsPolicyError(err)
}

// IsPolicyError reports whether err is the profile or the linter
// refusing the request (the device's CSR is at fault).
func IsPolicyError(err error) bool {
	var v *profile.Violation
	var l *lint.Error
	return errors.As(err, &v) || errors.As(err, &l)
}

// errNoCredential marks a request that carried no credential the
// provisioner takes: 401 with WWW-Authenticate, not audited one by one.
var errNoCredential = fmt.Errorf("%w: no credential", ErrUnauthenticated)

func (s *Service) enrol(ctx context.Context, prov *Provisioner, req Request, token string) (*device, *Result, error) {
	switch req.Op {
	case OpEnroll, OpReenroll, OpServerKeyGen:
	default:
		return nil, nil, invalid("unknown EST operation %q", req.Op)
	}
	if req.Op == OpServerKeyGen && !prov.ServerKeyGen {
		return nil, nil, errorf(ErrRefused, "EST provisioner %s does not generate keys: send your own CSR to simpleenroll, or ask the operator to enable it (certwright est update %s --serverkeygen)", prov.Name, prov.Name)
	}
	var dev *device
	var err error
	if req.Op == OpReenroll {
		dev, err = s.authCurrent(ctx, prov, req)
	} else {
		dev, err = s.authDevice(ctx, prov, req, token)
	}
	if err != nil {
		return dev, nil, err
	}
	der, err := DecodeBody(req.Body)
	if err != nil {
		return dev, nil, err
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return dev, nil, invalid("the body is not a PKCS#10 certificate request; send the DER CSR base64-encoded (openssl req -outform DER | openssl base64)")
	}
	if err := csr.CheckSignature(); err != nil {
		return dev, nil, invalid("the CSR's signature does not verify with its public key; sign it with the key it carries")
	}
	if err := checkChannelBinding(csr, req.ChannelBinding); err != nil {
		return dev, nil, err
	}
	if req.Op == OpReenroll {
		err = sameSubject(csr, dev.leaf)
	} else {
		err = namesIdentity(csr, dev.identity)
	}
	if err != nil {
		return dev, nil, err
	}
	ireq := issue.Request{
		Principal: s.principal(prov, req.Source, req.RequestID, req.Op == OpServerKeyGen),
		CA:        prov.CAID, Profile: prov.Profile,
		Tags:         []string{"est", "est:" + prov.Name, "est-auth:" + dev.method},
		AuditDetails: map[string]any{"est_auth": dev.method},
	}
	if dev.secret != nil {
		ireq.AuditDetails["est_secret"] = dev.secret.ID
	}
	if dev.idevid != "" {
		ireq.AuditDetails["est_idevid_sha256"] = dev.idevid
	}
	if dev.current != nil {
		ireq.AuditDetails["est_current"] = dev.current.Serial
	}
	// Only the names checked above reach the certificate: the subject is
	// cut to its common name (RFC 7030 leaves the rest to the CA).
	if req.Op == OpServerKeyGen {
		ireq.Subject = pkix.Name{CommonName: csr.Subject.CommonName}
		ireq.DNSNames, ireq.IPAddresses, ireq.EmailAddresses, ireq.URIs = csr.DNSNames, csr.IPAddresses, csr.EmailAddresses, csr.URIs
	} else {
		c := *csr
		c.Subject = pkix.Name{CommonName: csr.Subject.CommonName}
		ireq.CSR = &c
	}
	if dev.current != nil {
		ireq.Replaces, ireq.RenewalKind = dev.current.Serial, inventory.RenewalEST
	}
	res, err := s.issuer.Issue(ctx, ireq)
	if dev.current != nil && (errors.Is(err, issue.ErrConflict) || errors.Is(err, ErrConflict)) {
		// A concurrent re-enrolment replaced the certificate first (seen
		// by the issuer's check, or by the store's conditional update).
		err = &authFailure{reason: "certificate replaced by a concurrent re-enrolment", err: errorf(ErrUnauthenticated,
			"the certificate %s was replaced by a concurrent re-enrolment; re-enrol with the new certificate", dev.current.Serial)}
	}
	if err == nil && res.Pending != nil {
		err = errorf(ErrRefused, "profile %s requires approval, which an EST device cannot wait for; nothing was issued", prov.Profile)
	}
	if err != nil {
		return dev, nil, err
	}
	return dev, &Result{Leaf: res.Leaf, Key: res.Key}, nil
}

// principal is the provisioner acting as a machine principal: cert:issue
// (and key:export for serverkeygen) over its CA and profile only. It
// never gets an API credential (issue treats Auth "est" as ACME).
func (s *Service) principal(prov *Provisioner, source, requestID string, keygen bool) authz.Principal {
	name := "est:" + prov.Name
	perms := []authz.Permission{authz.PermCertIssue}
	if keygen {
		perms = append(perms, authz.PermKeyExport)
	}
	return authz.Principal{
		ID: "est:" + prov.ID, Name: name, Kind: authz.KindMachine, Auth: issue.AuthEST,
		Source: source, RequestID: requestID,
		Bindings: []authz.Binding{{
			ID: "est:" + prov.ID, PrincipalID: "est:" + prov.ID, Principal: name,
			Role:  authz.Role{Name: "est_provisioner", Description: "EST provisioner " + prov.Name, Permissions: perms},
			Scope: authz.Scope{CAs: []string{prov.CAID}, Profiles: []string{prov.Profile}},
		}},
	}
}

// authDevice authenticates an enrolment as the provisioner's mode says:
// an IDevID chaining to the bootstrap bundle (client-cert), a one-time
// secret over HTTP Basic (basic), either (any) or both (both). A device
// presenting both must pass both, for one identity; in mode any, a client
// certificate that is no IDevID of this provisioner is ignored next to
// Basic credentials. The identity must be on the allow-list, if any.
func (s *Service) authDevice(ctx context.Context, prov *Provisioner, req Request, token string) (*device, error) {
	useCert := prov.allowsCert() && len(req.PeerChain) > 0
	useBasic := prov.allowsBasic() && req.HasBasic
	what := map[string]string{
		AuthClientCert: "a TLS client certificate from the manufacturer (IDevID) CA",
		AuthBasic:      "HTTP Basic credentials: the device identity and its one-time enrolment secret",
		AuthAny:        "a TLS client certificate from the manufacturer (IDevID) CA or HTTP Basic credentials (identity and one-time secret)",
		AuthBoth:       "both a TLS client certificate from the manufacturer (IDevID) CA and HTTP Basic credentials (identity and one-time secret)",
	}[prov.Auth]
	switch {
	case !useCert && !useBasic:
		return nil, &userError{kind: errNoCredential, msg: fmt.Sprintf("EST provisioner %s needs %s", prov.Name, what)}
	case prov.Auth == AuthBoth && (!useCert || !useBasic):
		return nil, &authFailure{reason: "auth both: one credential missing", err: errorf(ErrUnauthenticated, "EST provisioner %s needs %s", prov.Name, what)}
	}
	var dev *device
	if useCert {
		id, fp, err := s.idevid(prov, req.PeerChain)
		var af *authFailure
		switch {
		case err == nil:
			dev = &device{identity: id, method: "idevid", idevid: fp}
		case prov.Auth == AuthAny && useBasic && errors.As(err, &af):
			// Not an IDevID of this provisioner (a gateway's or a
			// browser's certificate): the secret decides alone.
		default:
			return nil, err
		}
	}
	if useBasic {
		if dev != nil && subtle.ConstantTimeCompare([]byte(dev.identity), []byte(req.BasicUser)) != 1 {
			return dev, &authFailure{reason: "IDevID identity and Basic identity differ", err: errorf(ErrUnauthenticated,
				"the HTTP Basic identity %q is not the identity %q of the device certificate", req.BasicUser, dev.identity)}
		}
		if !prov.allowsIdentity(req.BasicUser) {
			return dev, &authFailure{reason: "identity not on the allow-list", err: errorf(ErrUnauthenticated,
				"the identity %q is not on the identity allow-list of EST provisioner %s", req.BasicUser, prov.Name)}
		}
		sec, err := s.useSecret(ctx, prov, req.BasicUser, req.BasicPwd, req.Source, req.RequestID, token)
		if err != nil {
			return dev, err
		}
		method, fp := "secret", ""
		if dev != nil {
			method, fp = "idevid+secret", dev.idevid
		}
		dev = &device{identity: sec.Identity, method: method, secret: sec, idevid: fp}
	}
	return dev, nil
}

// idevid verifies a device certificate against the provisioner's
// bootstrap bundle, for client authentication, and returns the identity
// it carries and its SHA-256 fingerprint (hex).
func (s *Service) idevid(prov *Provisioner, chain []*x509.Certificate) (string, string, error) {
	pool, err := s.bootstrapPool(prov)
	if err != nil {
		return "", "", err
	}
	leaf := chain[0]
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	fail := func(reason string) error {
		return &authFailure{reason: reason, err: errorf(ErrUnauthenticated,
			"the device certificate %q does not verify against the manufacturer CAs of EST provisioner %s: %s", leaf.Subject.String(), prov.Name, reason)}
	}
	// clientAuth: a certificate with other usages only (a server's) is
	// no device credential; one without the extension is accepted.
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, CurrentTime: s.cfg.Clock.Now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return "", "", fail(err.Error())
	}
	id, err := identityOf(prov, leaf)
	if err != nil {
		return "", "", fail(err.Error())
	}
	if !prov.allowsIdentity(id) {
		return "", "", fail("its identity " + id + " is not on the provisioner's identity allow-list")
	}
	sum := sha256.Sum256(leaf.Raw)
	return id, hex.EncodeToString(sum[:]), nil
}

var (
	serialWord  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)
	serialLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
)

// identityOf is the identity an IDevID carries under prov's IdentityFrom.
func identityOf(prov *Provisioner, leaf *x509.Certificate) (string, error) {
	var id string
	switch from := prov.IdentityFrom; {
	case from == IdentitySerial:
		id = leaf.Subject.SerialNumber
		if !serialWord.MatchString(id) {
			return "", fmt.Errorf("its subject serialNumber %q is not one word of letters, digits, '-' and '_' (at most 64), the identity this provisioner enrols", truncate(id, 80))
		}
	case strings.HasPrefix(from, IdentitySerialPrefix):
		label := strings.ToLower(leaf.Subject.SerialNumber)
		if !serialLabel.MatchString(label) {
			return "", fmt.Errorf("its subject serialNumber %q is not one DNS label (letters, digits, '-'), which this provisioner puts under %s", truncate(leaf.Subject.SerialNumber, 80), strings.TrimPrefix(from, IdentitySerialPrefix))
		}
		id = label + strings.TrimPrefix(from, IdentitySerialPrefix)
	default:
		pat := strings.TrimPrefix(from, IdentitySANPrefix)
		for _, n := range leaf.DNSNames {
			if !strings.Contains(n, "*") && authz.MatchName(pat, n) {
				id = strings.ToLower(n)
				break
			}
		}
		if id == "" {
			return "", fmt.Errorf("none of its DNS names matches %s (wildcards never do), the identity this provisioner enrols", pat)
		}
	}
	if err := checkIdentity(id); err != nil {
		return "", err
	}
	return id, nil
}

// bootstrapPool parses (once) the provisioner's bootstrap bundle.
func (s *Service) bootstrapPool(prov *Provisioner) (*x509.CertPool, error) {
	sum := sha256.Sum256([]byte(prov.BootstrapPEM))
	key := prov.ID + ":" + hex.EncodeToString(sum[:])
	s.poolMu.Lock()
	defer s.poolMu.Unlock()
	if p, ok := s.pools[key]; ok {
		return p, nil
	}
	certs, err := parseBundle(prov.BootstrapPEM)
	if err != nil {
		return nil, fmt.Errorf("est: provisioner %s bootstrap bundle: %w", prov.Name, err)
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	if len(s.pools) >= maxPools {
		clear(s.pools)
	}
	s.pools[key] = pool
	return pool, nil
}

// authCurrent authenticates a re-enrolment by the device's current
// certificate: issued by this provisioner, on its CA, not revoked, and
// unexpired or expired within the provisioner's grace period.
func (s *Service) authCurrent(ctx context.Context, prov *Provisioner, req Request) (*device, error) {
	if len(req.PeerChain) == 0 {
		return nil, &userError{kind: errNoCredential, msg: "simplereenroll needs the current certificate as TLS client certificate (RFC 7030 4.2.2); a device without one enrols with simpleenroll"}
	}
	leaf := req.PeerChain[0]
	fail := func(reason string) error {
		return &authFailure{reason: reason, err: errorf(ErrUnauthenticated, "the certificate %q cannot re-enrol on EST provisioner %s: %s", leaf.Subject.String(), prov.Name, reason)}
	}
	chain, err := s.issuer.Chain(ctx, prov.CAID)
	if err != nil {
		return nil, fmt.Errorf("est: chain of %s: %w", prov.CAName, err)
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	for i, c := range chain {
		if i == len(chain)-1 {
			roots.AddCert(c)
		} else {
			inter.AddCert(c)
		}
	}
	now := s.cfg.Clock.Now()
	at := now
	if now.After(leaf.NotAfter) {
		end := leaf.NotAfter.Add(prov.ReenrollGrace)
		if now.After(end) {
			return nil, fail(fmt.Sprintf("it expired on %s and the re-enrolment grace of %s ended on %s; enrol again with simpleenroll and a bootstrap credential",
				leaf.NotAfter.UTC().Format(time.RFC3339), prov.ReenrollGrace, end.UTC().Format(time.RFC3339)))
		}
		at = leaf.NotAfter // within the grace: verified as of its last valid moment
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: at,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return nil, fail("it was not issued by CA " + prov.CAName + ": " + err.Error())
	}
	rec, err := s.store.GetCertificate(ctx, pki.SerialHex(leaf.SerialNumber))
	if errors.Is(err, ErrNotFound) {
		return nil, fail("it is not in this server's inventory")
	}
	if err != nil {
		return nil, fmt.Errorf("est: certificate %s: %w", pki.SerialHex(leaf.SerialNumber), err)
	}
	switch {
	case rec.CAID != prov.CAID:
		return nil, fail("it was issued by another CA")
	case rec.RequesterID != "est:"+prov.ID:
		return nil, fail("it was not issued through this EST provisioner")
	case rec.Status == inventory.StatusRevoked:
		return nil, fail("it is revoked")
	case rec.RenewedBy != "":
		// Re-enrolment is once per certificate: a copied or stolen key of
		// a replaced certificate cannot mint more.
		return nil, fail("it was replaced already by certificate " + rec.RenewedBy + "; re-enrol with that one")
	}
	return &device{identity: leaf.Subject.CommonName, method: "certificate", current: rec, leaf: leaf}, nil
}

// namesIdentity checks that a CSR asks for identity and nothing else: the
// common name is the identity, and so is every subject alternative name.
func namesIdentity(csr *x509.CertificateRequest, identity string) error {
	if csr.Subject.CommonName != identity {
		return errorf(ErrRefused, "the CSR's common name %q is not %q, the identity this device may enrol for", csr.Subject.CommonName, identity)
	}
	for _, n := range csrNames(csr) {
		if _, v, _ := strings.Cut(n, ":"); !strings.EqualFold(v, identity) {
			return errorf(ErrRefused, "the CSR names %s, but this device may enrol for %q only", n, identity)
		}
	}
	return nil
}

func csrNames(csr *x509.CertificateRequest) []string {
	return names(csr.DNSNames, csr.IPAddresses, csr.EmailAddresses, csr.URIs)
}

func certNames(c *x509.Certificate) []string {
	return names(c.DNSNames, c.IPAddresses, c.EmailAddresses, c.URIs)
}

func names[IP fmt.Stringer, U fmt.Stringer](dns []string, ips []IP, emails []string, uris []U) []string {
	out := []string{}
	for _, n := range dns {
		out = append(out, "dns:"+strings.ToLower(n))
	}
	for _, ip := range ips {
		out = append(out, "ip:"+ip.String())
	}
	for _, e := range emails {
		out = append(out, "email:"+e)
	}
	for _, u := range uris {
		out = append(out, "uri:"+u.String())
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// sameSubject checks RFC 7030 4.2.2: a re-enrolment's subject and
// subject alternative names are those of the current certificate.
func sameSubject(csr *x509.CertificateRequest, c *x509.Certificate) error {
	if csr.Subject.String() != c.Subject.String() {
		return errorf(ErrRefused, "the CSR's subject %q differs from the current certificate's %q; a re-enrolment keeps the subject (RFC 7030 4.2.2)", csr.Subject.String(), c.Subject.String())
	}
	if a, b := csrNames(csr), certNames(c); !slices.Equal(a, b) {
		return errorf(ErrRefused, "the CSR's subject alternative names (%s) differ from the current certificate's (%s); a re-enrolment keeps them (RFC 7030 4.2.2)", strings.Join(a, ", "), strings.Join(b, ", "))
	}
	return nil
}

// Sizes of a channel binding value: tls-unique is the 12-byte Finished
// message of TLS 1.2 (up to 36 with other suites), tls-exporter 32 bytes.
const (
	minBinding = 12
	maxBinding = 64
)

// checkChannelBinding checks a CSR's challengePassword against the
// connection's channel binding (RFC 7030 3.5: base64 of tls-unique; for
// TLS 1.3, RFC 9266's tls-exporter) when it looks like one: standard
// base64 of 12 to 64 bytes. Any other challengePassword (a PrintableString,
// UTF8String or IA5String) is not a channel binding and is ignored, as
// the devices that put other values there expect.
func checkChannelBinding(csr *x509.CertificateRequest, binding []byte) error {
	pw, ok, err := ChallengePassword(csr.RawTBSCertificateRequest)
	if err != nil {
		return invalid("the CSR's attributes: %v", err)
	}
	if !ok {
		return nil
	}
	got, err := base64.StdEncoding.DecodeString(strings.TrimSpace(pw))
	if err != nil || len(got) < minBinding || len(got) > maxBinding {
		return nil
	}
	if len(binding) == 0 {
		return errorf(ErrRefused, "the CSR carries a channel binding in its challengePassword but this connection offers none (EST needs TLS directly to this server)")
	}
	if subtle.ConstantTimeCompare(got, binding) != 1 {
		return &authFailure{reason: "channel binding mismatch", err: errorf(ErrUnauthenticated,
			"the CSR's challengePassword is not this TLS connection's channel binding (tls-unique for TLS 1.2, tls-exporter for TLS 1.3, base64): the CSR was made for another connection")}
	}
	return nil
}

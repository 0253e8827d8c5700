package scep

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/issue"
	"github.com/certwright/certwright/internal/keys"
	"github.com/certwright/certwright/internal/pki"
)

// caps are the capabilities GetCACaps announces (RFC 8894 §3.5.2):
// AES and SHA-256 for the device's messages, POST, and RenewalReq.
// legacyCaps add DES3 and SHA-1 for a provisioner that allows legacy
// crypto (single DES has no capability name: clients send it unasked).
const (
	caps       = "AES\nPOSTPKIOperation\nRenewal\nSCEPStandard\nSHA-256\nSHA-512\n"
	legacyCaps = "AES\nDES3\nPOSTPKIOperation\nRenewal\nSCEPStandard\nSHA-1\nSHA-256\nSHA-512\n"
)

// CACaps answers GetCACaps for provisioner name.
func (s *Service) CACaps(ctx context.Context, name string) (string, error) {
	prov, err := s.serving(ctx, name)
	if err != nil {
		return "", err
	}
	if prov.AllowLegacyCrypto {
		return legacyCaps, nil
	}
	return caps, nil
}

// CACert answers GetCACert: the RA certificate and the CA chain as a
// degenerate PKCS#7.
func (s *Service) CACert(ctx context.Context, name string) ([]byte, error) {
	prov, err := s.serving(ctx, name)
	if err != nil {
		return nil, err
	}
	r, err := s.loadRA(ctx, prov)
	if err != nil {
		return nil, err
	}
	return r.caCerts()
}

// serving returns provisioner name if it is enabled, from the cache
// when it holds it under the current access generation.
func (s *Service) serving(ctx context.Context, name string) (*Provisioner, error) {
	gen, now := s.store.AccessGeneration(), s.cfg.Clock.Now()
	prov, ok := s.provisioners.Get(name, gen, now)
	if !ok {
		var err error
		if prov, err = s.byName(ctx, name); err != nil {
			return nil, err
		}
		s.provisioners.Put(name, gen, now, prov)
	}
	if prov.Disabled() {
		return nil, fmt.Errorf("%w: %s", ErrDisabled, name)
	}
	return prov, nil
}

// loadRA returns the provisioner's RA, unwrapping its key once per RA
// certificate. Every use re-reads the RA certificate's record (one row
// by primary key) so that an RA revoked or expired since it was cached
// is refused: a CertRep signed by a revoked RA, or a request encrypted
// to a compromised key, must not be answered. Once refused, an RA stays
// refused without reading the store again (revocation and expiry are
// permanent) and is logged once.
func (s *Service) loadRA(ctx context.Context, prov *Provisioner) (*ra, error) {
	s.mu.Lock()
	r, ok := s.ras[prov.RASerial]
	s.mu.Unlock()
	if ok && r.unusable != "" {
		return nil, raUnusable(prov, r.unusable)
	}
	rec, err := s.store.GetCertificate(ctx, prov.RASerial)
	if err != nil {
		return nil, fmt.Errorf("scep: RA certificate of %s: %w", prov.Name, err)
	}
	if reason := s.raProblem(rec); reason != "" {
		s.mu.Lock()
		s.ras[prov.RASerial] = &ra{unusable: reason}
		s.mu.Unlock()
		s.cfg.Log.Error("scep RA certificate unusable: the provisioner answers no device until its RA is rotated",
			"provisioner", prov.Name, "ra_serial", prov.RASerial, "reason", reason)
		return nil, raUnusable(prov, reason)
	}
	if ok {
		return r, nil
	}
	if rec.ManagedKey == nil {
		return nil, fmt.Errorf("scep: RA certificate %s of %s has no retained key", rec.Serial, prov.Name)
	}
	cert, err := x509.ParseCertificate(rec.DER)
	if err != nil {
		return nil, fmt.Errorf("scep: RA certificate of %s: %w", prov.Name, err)
	}
	key, err := s.keys.Signer(ctx, *rec.ManagedKey, keys.ServerTLSPurpose(rec.Serial))
	if err != nil {
		return nil, fmt.Errorf("scep: RA key of %s: %w", prov.Name, err)
	}
	dec, ok := key.(crypto.Decrypter)
	if _, rsaKey := cert.PublicKey.(*rsa.PublicKey); !ok || !rsaKey {
		return nil, fmt.Errorf("scep: RA key of %s cannot decrypt (SCEP needs an RSA key the server holds in software)", prov.Name)
	}
	if err := keys.CheckPublic(key, cert.PublicKey); err != nil {
		return nil, fmt.Errorf("scep: RA of %s: %w", prov.Name, err)
	}
	chain, err := s.issuer.Chain(ctx, rec.CAID)
	if err != nil {
		return nil, fmt.Errorf("scep: chain of %s: %w", prov.Name, err)
	}
	r = &ra{cert: cert, key: dec, chain: chain}
	s.mu.Lock()
	s.ras[prov.RASerial] = r
	s.mu.Unlock()
	return r, nil
}

// raProblem says why RA certificate rec cannot be used now, or "".
func (s *Service) raProblem(rec *inventory.Certificate) string {
	now := s.cfg.Clock.Now()
	switch {
	case rec.Revocation != nil:
		return "revoked (" + rec.Revocation.Reason.String() + ")"
	case !now.Before(rec.NotAfter):
		return "expired on " + rec.NotAfter.UTC().Format(time.RFC3339)
	case now.Before(rec.NotBefore):
		return "not valid before " + rec.NotBefore.UTC().Format(time.RFC3339)
	}
	return ""
}

func raUnusable(prov *Provisioner, reason string) error {
	return fmt.Errorf("%w: the RA certificate %s of SCEP provisioner %s is %s; an operator must issue a new one (certwright scep rotate-ra %s)",
		ErrRAUnusable, prov.RASerial, prov.Name, reason, prov.Name)
}

// exchange is one PKIOperation being answered.
type exchange struct {
	s     *Service
	prov  *Provisioner
	ra    *ra
	m     *message
	nonce []byte
	peer  Peer
	// refused is set once the answer is a FAILURE.
	refused bool
}

// Peer is who sent a PKIOperation: the device's address and the ID the
// edge gave the HTTP request, for the audit trail.
type Peer struct {
	Source, RequestID string
}

// PKIOperation answers a device's PKIMessage with a CertRep (DER), and
// whether that CertRep is a FAILURE (the edge counts them per source).
// An error matching ErrMalformed, ErrNotFound or ErrDisabled means no
// CertRep could be made: the edge answers with an HTTP error instead.
func (s *Service) PKIOperation(ctx context.Context, name string, peer Peer, body []byte) (rep []byte, refused bool, err error) {
	prov, err := s.serving(ctx, name)
	if err != nil {
		return nil, false, err
	}
	m, err := parseMessage(body)
	if err != nil {
		return nil, false, err
	}
	r, err := s.loadRA(ctx, prov)
	if err != nil {
		return nil, false, err
	}
	nonce, err := s.random(16)
	if err != nil {
		return nil, false, err
	}
	x := &exchange{s: s, prov: prov, ra: r, m: m, nonce: nonce, peer: peer}
	switch m.typ {
	case msgPKCSReq, msgRenewalReq, msgCertPoll:
		// Before anything is decrypted, looked up or consumed.
		if w := m.legacyAlgorithm(); w != nil && (w.unsupported || !prov.AllowLegacyCrypto) {
			rep, err = x.refuseLegacy(w)
			return rep, x.refused, err
		}
		// A CertRep is encrypted to the signer's key (a certificate
		// or a pending answer alike), which RSA alone allows.
		if _, ok := m.signer.PublicKey.(*rsa.PublicKey); !ok {
			rep, err = x.refuse(FailBadAlg, "the message is signed with a non-RSA key; the CertRep is encrypted to that key, so SCEP needs RSA")
			return rep, x.refused, err
		}
	}
	switch m.typ {
	case msgPKCSReq, msgRenewalReq:
		rep, err = x.enrol(ctx)
	case msgCertPoll:
		rep, err = x.poll(ctx)
	default:
		rep, err = x.refuse(FailBadRequest, "message type "+m.typ+" is not served (PKCSReq, RenewalReq and GetCertInitial are)")
	}
	return rep, x.refused, err
}

// principal is who an enrolment acts as: the provisioner's principal,
// authenticated as SCEP from the device's address.
// An enabled principal is cached like the provisioner (serving); the
// cached value is never changed, and what is returned has its own
// bindings (authz.CopyPrincipal, as the token cache hands out).
func (x *exchange) principal(ctx context.Context) (authz.Principal, error) {
	gen, now := x.s.store.AccessGeneration(), x.s.cfg.Clock.Now()
	p, ok := x.s.principals.Get(x.prov.PrincipalID, gen, now)
	if !ok {
		var rec *authz.PrincipalRecord
		var err error
		p, rec, err = x.s.store.LoadPrincipal(ctx, x.prov.PrincipalID)
		if err != nil {
			return authz.Principal{}, fmt.Errorf("scep: principal of %s: %w", x.prov.Name, err)
		}
		if rec.DisabledAt != nil {
			return authz.Principal{}, fmt.Errorf("%w: the principal of %s is disabled", ErrDisabled, x.prov.Name)
		}
		x.s.principals.Put(x.prov.PrincipalID, gen, now, p)
	}
	out := authz.CopyPrincipal(*p)
	out.Auth, out.Source, out.RequestID = Auth, x.peer.Source, x.peer.RequestID
	return out, nil
}

// who is the provisioner's principal as the audit trail names an
// enrolment (the device has no other name).
func (x *exchange) who() authz.Principal {
	return authz.Principal{ID: x.prov.PrincipalID, Name: x.prov.PrincipalName, Source: x.peer.Source, RequestID: x.peer.RequestID}
}

// refuse answers with a CertRep FAILURE a request that proved neither a
// challenge nor a certificate: it is counted in the source's refusals of
// the minute (one audit event per source and minute), never written
// alone, so that anyone who can reach /scep/ cannot grow the audit log
// at their own pace.
func (x *exchange) refuse(info, reason string) ([]byte, error) {
	x.s.cfg.Refusals.Add(audit.Refusal{Source: x.peer.Source, Action: "scep.enrol.refuse", Path: scepPath + x.prov.Name, Status: 200, Reason: reason})
	x.s.cfg.Log.Debug("scep request refused", "provisioner", x.prov.Name, "reason", reason)
	x.refused = true
	return x.ra.certRep(x.m, x.nonce, statusFailure, info, nil)
}

// refuseLegacy refuses (badAlg) a message protected with legacy or
// unknown crypto on a provisioner that does not allow it, or with crypto
// this server cannot process on any provisioner. The operator
// is told at most once an hour per provisioner and algorithm, with the
// count of refusals since (anyone can send such messages; each is
// counted with the other refusals), at Warn: a fleet of old devices
// fails here until legacy crypto is allowed.
func (x *exchange) refuseLegacy(w *weakness) ([]byte, error) {
	key := x.prov.ID + "\x00" + w.part + "\x00" + w.name
	tell, held := x.s.warned.allow(key, x.s.cfg.Clock.Now())
	info, reason := w.refusal(x.prov.Name)
	switch {
	case tell && w.unsupported:
		x.s.cfg.Log.Warn("scep request refused: an algorithm this server cannot process (logged at most once an hour per provisioner and algorithm)",
			"provisioner", x.prov.Name, "algorithm", w.String(), "source", x.peer.Source, "refused_since_last_line", held,
			"fix", "the devices must encrypt with AES-128 or AES-256 (CBC or GCM); no setting admits this")
	case tell && w.notDER:
		x.s.cfg.Log.Warn("scep request refused: the envelope is not DER (logged at most once an hour per provisioner)",
			"provisioner", x.prov.Name, "error", w.detail, "source", x.peer.Source, "refused_since_last_line", held,
			"fix", "RFC 8894 asks for DER; --allow-legacy-crypto on provisioner "+x.prov.Name+" admits such envelopes unchecked, if its devices cannot send DER: certwright scep update "+x.prov.Name+" --allow-legacy-crypto=true")
	case tell:
		x.s.cfg.Log.Warn("scep request refused: legacy crypto (logged at most once an hour per provisioner and algorithm)",
			"provisioner", x.prov.Name, "algorithm", w.String(), "source", x.peer.Source, "refused_since_last_line", held,
			"fix", "enable --allow-legacy-crypto on provisioner "+x.prov.Name+" if its devices cannot use AES and SHA-256: certwright scep update "+x.prov.Name+" --allow-legacy-crypto=true")
	}
	return x.refuse(info, reason)
}

// scepPath is where provisioners are served, for the refusal counter.
const scepPath = "/scep/"

// fail answers with a CertRep FAILURE and audits why: for requests that
// proved a challenge or a certificate (refuse is for the rest).
func (x *exchange) fail(ctx context.Context, info, reason string, details map[string]any) ([]byte, error) {
	return x.failAs(ctx, "scep.enrol.refuse", info, reason, details)
}

func (x *exchange) failAs(ctx context.Context, action, info, reason string, details map[string]any) ([]byte, error) {
	if details == nil {
		details = map[string]any{}
	}
	details["provisioner"], details["transaction_id"], details["message_type"] = x.prov.Name, x.m.txID, x.m.typ
	details["reason"], details["fail_info"] = reason, info
	ev := audit.New(x.who(), x.s.cfg.Clock.Now(), action, x.prov.Name, details)
	ev.Outcome = audit.Denied
	if err := x.s.store.AppendAudit(ctx, ev); err != nil {
		return nil, fmt.Errorf("scep: audit refusal: %w", err)
	}
	x.s.cfg.Log.Info("scep request refused", "provisioner", x.prov.Name, "transaction", x.m.txID, "reason", reason)
	x.refused = true
	return x.ra.certRep(x.m, x.nonce, statusFailure, info, nil)
}

func spkiHash(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(der)
	return sum[:], nil
}

// enrol answers a PKCSReq or RenewalReq.
func (x *exchange) enrol(ctx context.Context) ([]byte, error) {
	req, err := x.m.open(x.ra)
	if err != nil {
		// The same answer as a wrong challenge: a failure told apart
		// from later ones would be a padding oracle (Bleichenbacher) on
		// the RA key, which decrypts what any client sends.
		return x.refuse(FailBadRequest, err.Error())
	}
	if w := legacyCSR(req.csr); w != nil && !x.prov.AllowLegacyCrypto {
		return x.refuseLegacy(w)
	}
	keyHash, err := spkiHash(req.csr.PublicKey)
	if err != nil {
		return x.refuse(FailBadRequest, "the CSR's public key: "+err.Error())
	}
	p, err := x.principal(ctx)
	if err != nil {
		return nil, err
	}
	ireq := issue.Request{Principal: p, CA: x.prov.CAID, Profile: x.prov.Profile, CSR: req.csr, Tags: []string{"scep", "scep:" + x.prov.Name},
		Context: map[string]string{"scep_provisioner": x.prov.Name, "transaction_id": x.m.txID, "message_type": x.m.typ}}
	var used *OneTime
	if x.m.typ == msgPKCSReq {
		// RFC 8894 §2.3: a device without a certificate signs with a
		// self-signed one for the key it asks to certify.
		if signerHash, err := spkiHash(x.m.signer.PublicKey); err != nil || !bytes.Equal(signerHash, keyHash) {
			return x.refuse(FailBadMessageCheck, "a PKCSReq must be signed with the key of its CSR")
		}
		if out, err := x.resent(ctx, keyHash); out != nil || err != nil {
			return out, err
		}
		if out, err := x.queueFull(ctx); out != nil || err != nil {
			return out, err
		}
		var out []byte
		if used, out, err = x.checkChallenge(ctx, req); out != nil || err != nil {
			return out, err
		}
		if used != nil {
			ireq.Context["challenge"], ireq.Context["identity"] = used.ID, used.Identity
		}
	} else {
		old, reason := x.renewable(ctx, req.csr)
		switch {
		case old == nil && reason != "":
			return x.refuse(FailBadRequest, reason)
		case reason != "":
			return x.fail(ctx, FailBadRequest, reason, map[string]any{"serial": old.Serial})
		}
		if out, err := x.resent(ctx, keyHash); out != nil || err != nil {
			return out, err
		}
		// One renewal waits for approval per certificate: more, each
		// with a fresh transaction, would fill the pending cap.
		if id, err := x.s.store.PendingRenewal(ctx, x.prov.PrincipalID, old.Serial); err != nil {
			return nil, fmt.Errorf("scep: look for a pending renewal of %s: %w", old.Serial, err)
		} else if id != "" {
			return x.fail(ctx, FailBadRequest, "a renewal of the signing certificate waits for approval already (request "+id+"); poll it with GetCertInitial",
				map[string]any{"serial": old.Serial, "request": id})
		}
		// The inventory links the two, and the store marks the old
		// certificate renewed only if no other renewal did first: of
		// two racing RenewalReqs one is issued, the other refused.
		ireq.Replaces, ireq.RenewalKind = old.Serial, inventory.RenewalSCEP
		if out, err := x.queueFull(ctx); out != nil || err != nil {
			return out, err
		}
	}
	res, err := x.s.issuer.Issue(ctx, ireq)
	if err != nil {
		// Nothing was issued or held: the device may try again with a
		// corrected CSR.
		x.release(ctx, used)
		if ctx.Err() != nil {
			return nil, err
		}
		return x.fail(ctx, FailBadRequest, err.Error(), nil)
	}
	if res.Pending != nil {
		now := x.s.cfg.Clock.Now()
		t := &Transaction{ProvisionerID: x.prov.ID, ID: x.m.txID, RequestID: res.Pending.ID, KeyHash: keyHash, CreatedAt: now}
		if err := x.s.store.PutSCEPTransaction(ctx, t, now.Add(-transactionRetention)); err != nil {
			return nil, err
		}
		return x.ra.certRep(x.m, x.nonce, statusPending, "", nil)
	}
	return x.ra.certRep(x.m, x.nonce, statusSuccess, "", res.Leaf)
}

// release makes challenge used (nil: none) usable again after its
// enrolment failed before anything was issued or held.
func (x *exchange) release(ctx context.Context, used *OneTime) {
	if used == nil {
		return
	}
	if err := x.s.store.ReleaseSCEPChallenge(ctx, used.ID, *used.UsedAt); err != nil {
		x.s.cfg.Log.Error("scep: release challenge", "challenge", used.ID, "err", err)
	}
}

// queueFull refuses a request that would be held for approval while its
// provisioner has cfg.MaxPending requests waiting already. It runs before
// a challenge is consumed, so a refusal touches none, and it is counted
// with the anonymous refusals (refuse), its warning throttled, so that
// requests at the cap cannot grow the audit log or the log. The count is
// read before the request is held, so requests racing at the cap may
// pass it by their number: the cap bounds growth, it is not an exact
// quota. It returns nil, nil when the request may go on.
func (x *exchange) queueFull(ctx context.Context) ([]byte, error) {
	prof, err := x.s.profiles.Get(ctx, x.prov.Profile)
	if err != nil || !prof.RequireApproval {
		// A profile that cannot be read is the issuance path's to report.
		return nil, nil
	}
	n, err := x.s.store.CountApprovalRequests(ctx, issue.StatusPending, x.prov.PrincipalID)
	if err != nil {
		return nil, fmt.Errorf("scep: count requests waiting for approval: %w", err)
	}
	if n < x.s.cfg.MaxPending {
		return nil, nil
	}
	if tell, held := x.s.warned.allow(x.prov.ID+"\x00pending cap", x.s.cfg.Clock.Now()); tell {
		x.s.cfg.Log.Warn("scep request refused: too many requests wait for approval; approve or reject some (certwright request list) (logged at most once an hour per provisioner)",
			"provisioner", x.prov.Name, "pending", n, "cap", x.s.cfg.MaxPending, "refused_since_last_line", held)
	}
	return x.refuse(FailBadRequest, fmt.Sprintf("provisioner %s has %d requests waiting for approval, its cap; an approver must decide some first", x.prov.Name, n))
}

// checkChallenge checks a PKCSReq's challengePassword: the static secret,
// or a dynamic challenge consumed here (used). A refusal is returned as
// the CertRep to send.
func (x *exchange) checkChallenge(ctx context.Context, req *csrRequest) (used *OneTime, refusal []byte, err error) {
	if req.challenge == "" || len(req.challenge) > maxStaticSecret {
		refusal, err = x.refuse(FailBadRequest, "no valid challengePassword in the CSR")
		return nil, refusal, err
	}
	if x.prov.Challenge == ChallengeStatic {
		if subtle.ConstantTimeCompare(staticHash(x.prov.StaticSalt, []byte(req.challenge)), x.prov.StaticHash) != 1 {
			refusal, err = x.refuse(FailBadRequest, "wrong challenge")
			return nil, refusal, err
		}
		return nil, nil, nil
	}
	sum := sha256.Sum256([]byte(req.challenge))
	now := x.s.cfg.Clock.Now()
	who := x.who()
	c, err := x.s.store.ConsumeSCEPChallenge(ctx, x.prov.ID, sum[:], now, x.m.txID, func(c *OneTime) audit.Event {
		return audit.New(who, now, "scep.challenge.use", c.ID, map[string]any{"provisioner": x.prov.Name, "transaction_id": x.m.txID, "identity": c.Identity})
	})
	switch {
	case errors.Is(err, ErrChallengeUsed):
		refusal, err = x.failAs(ctx, "scep.challenge.reuse", FailBadRequest, "the one-time challenge was used already", nil)
		return nil, refusal, err
	case errors.Is(err, ErrChallengeExpired):
		refusal, err = x.fail(ctx, FailBadRequest, "the one-time challenge expired", nil)
		return nil, refusal, err
	case errors.Is(err, ErrChallengeUnknown):
		refusal, err = x.refuse(FailBadRequest, "wrong challenge")
		return nil, refusal, err
	case err != nil:
		return nil, nil, err
	}
	// The store found the row by this hash; compare anyway, in constant
	// time, so that a store that matched loosely cannot admit a device.
	if subtle.ConstantTimeCompare(c.Hash, sum[:]) != 1 {
		refusal, err = x.fail(ctx, FailBadRequest, "wrong challenge", nil)
		return nil, refusal, err
	}
	if c.Identity != "" && !csrNamesOnly(req.csr, c.Identity) {
		if rerr := x.s.store.ReleaseSCEPChallenge(ctx, c.ID, *c.UsedAt); rerr != nil {
			return nil, nil, rerr
		}
		refusal, err = x.fail(ctx, FailBadRequest, "the CSR asks for names other than the identity the challenge was made for (common name and every subject alternative name must be exactly it)", map[string]any{"challenge": c.ID, "identity": c.Identity})
		return nil, refusal, err
	}
	return c, nil, nil
}

// csrNamesOnly reports whether identity is exactly what the CSR asks
// for: its common name (empty or identity) and every subject alternative
// name (each identity), and at least one of them. A challenge made for
// one device does not certify any other name beside it.
func csrNamesOnly(csr *x509.CertificateRequest, identity string) bool {
	cn := csr.Subject.CommonName
	if cn != "" && !strings.EqualFold(cn, identity) {
		return false
	}
	sans := requestSANs(csr)
	if cn == "" && len(sans) == 0 {
		return false
	}
	return !slices.ContainsFunc(sans, func(n string) bool { return !strings.EqualFold(n, identity) })
}

// renewable checks that a RenewalReq is signed by a current certificate
// this provisioner issued (RFC 8894 §2.4): stored byte for byte, from the
// provisioner's CA and principal, unexpired and not revoked; and that
// the CSR asks for no identity beyond it (the same common name, no name
// it lacks), so that a device cannot renew into another's. It returns
// that certificate and "", or why not: with the certificate when the
// device proved one of this provisioner's, nil otherwise.
func (x *exchange) renewable(ctx context.Context, csr *x509.CertificateRequest) (*inventory.Certificate, string) {
	signer := x.m.signer
	rec, err := x.s.store.GetCertificate(ctx, pki.SerialHex(signer.SerialNumber))
	if err != nil || !bytes.Equal(rec.DER, signer.Raw) {
		return nil, "a RenewalReq must be signed with a certificate this server issued"
	}
	if rec.CAID != x.prov.CAID || rec.RequesterID != x.prov.PrincipalID {
		return nil, "the signing certificate was not issued through SCEP provisioner " + x.prov.Name
	}
	// From here the device proved a certificate of this provisioner: a
	// refusal is audited with its serial.
	now := x.s.cfg.Clock.Now()
	switch {
	case rec.Revocation != nil:
		return rec, "the signing certificate is revoked"
	case rec.RenewedBy != "":
		return rec, "the signing certificate was renewed already (by " + rec.RenewedBy + "); sign with the newer certificate"
	case now.Before(signer.NotBefore) || now.After(signer.NotAfter):
		return rec, "the signing certificate is not valid now; enrol again with a challenge"
	case csr.Subject.CommonName != signer.Subject.CommonName:
		return rec, "a RenewalReq must keep the common name of the certificate it renews"
	}
	old := x509.CertificateRequest{DNSNames: signer.DNSNames, EmailAddresses: signer.EmailAddresses, IPAddresses: signer.IPAddresses, URIs: signer.URIs}
	for _, n := range requestSANs(csr) {
		if !slices.Contains(requestSANs(&old), n) {
			return rec, "a RenewalReq may not add names: " + n + " is not in the certificate it renews"
		}
	}
	return rec, ""
}

// requestSANs lists a CSR's subject alternative names as strings.
func requestSANs(csr *x509.CertificateRequest) []string {
	names := slices.Concat(csr.DNSNames, csr.EmailAddresses)
	for _, ip := range csr.IPAddresses {
		names = append(names, ip.String())
	}
	for _, u := range csr.URIs {
		names = append(names, u.String())
	}
	return names
}

// poll answers GetCertInitial for a transaction held for approval.
func (x *exchange) poll(ctx context.Context) ([]byte, error) {
	t, err := x.s.store.GetSCEPTransaction(ctx, x.prov.ID, x.m.txID)
	if errors.Is(err, ErrNotFound) {
		return x.refuse(FailBadCertID, "no request of this transaction is held")
	}
	if err != nil {
		return nil, err
	}
	keyHash, err := spkiHash(x.m.signer.PublicKey)
	if err != nil {
		return x.refuse(FailBadMessageCheck, "signer key: "+err.Error())
	}
	return x.held(ctx, t, keyHash)
}

// transactionRetention is how long a transaction row is kept at most:
// older ones are pruned whenever another is stored (a request still
// pending by then has long expired).
const transactionRetention = 90 * 24 * time.Hour

// resent answers a PKCSReq or RenewalReq that repeats a transaction
// still held for approval (RFC 8894 §3.3.3: resending is polling), once
// the message has been checked like any other. A transaction no longer
// pending is closed: the request goes on as a new one, challenge and
// all. It returns nil, nil when the request is not a resend.
func (x *exchange) resent(ctx context.Context, keyHash []byte) ([]byte, error) {
	t, err := x.s.store.GetSCEPTransaction(ctx, x.prov.ID, x.m.txID)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	ar, rep, err := x.decided(ctx, t, keyHash)
	if ar == nil {
		return rep, err
	}
	return nil, x.close(ctx, t)
}

// decided reads the approval request behind transaction t for the holder
// of the key whose SubjectPublicKeyInfo hashes to keyHash. While it may
// still be issued, or when the key is another's, it returns the CertRep
// to send (pending, or a refusal) and a nil request; otherwise the
// request, decided or expired.
func (x *exchange) decided(ctx context.Context, t *Transaction, keyHash []byte) (*issue.ApprovalRequest, []byte, error) {
	if subtle.ConstantTimeCompare(t.KeyHash, keyHash) != 1 {
		rep, err := x.refuse(FailBadMessageCheck, "the transaction was opened with another key")
		return nil, rep, err
	}
	ar, err := x.s.store.GetApprovalRequest(ctx, t.RequestID)
	if err != nil {
		return nil, nil, fmt.Errorf("scep: approval request %s: %w", t.RequestID, err)
	}
	if x.stillPending(ar) {
		rep, err := x.ra.certRep(x.m, x.nonce, statusPending, "", nil)
		return nil, rep, err
	}
	return ar, nil, nil
}

// stillPending reports whether approval request ar may still be issued.
func (x *exchange) stillPending(ar *issue.ApprovalRequest) bool {
	return ar.Status == issue.StatusApproved || (ar.Status == issue.StatusPending && x.s.cfg.Clock.Now().Before(ar.ExpiresAt))
}

// close deletes transaction t: its request was decided or expired.
func (x *exchange) close(ctx context.Context, t *Transaction) error {
	if err := x.s.store.DeleteSCEPTransaction(ctx, t.ProvisionerID, t.ID); err != nil {
		return fmt.Errorf("scep: close transaction: %w", err)
	}
	return nil
}

// held answers GetCertInitial for transaction t, polled by the holder of
// the key whose SubjectPublicKeyInfo hashes to keyHash: pending while the
// approval request is, the certificate once issued (if still current), a
// failure otherwise. Once answered with a certificate or a failure the
// transaction is closed.
func (x *exchange) held(ctx context.Context, t *Transaction, keyHash []byte) ([]byte, error) {
	ar, rep, err := x.decided(ctx, t, keyHash)
	if ar == nil {
		return rep, err
	}
	details := map[string]any{"request": ar.ID}
	reason := "the request was " + ar.Status
	switch ar.Status {
	case issue.StatusPending:
		reason = "the request expired waiting for approval"
	case issue.StatusIssued:
		rec, err := x.s.store.GetCertificate(ctx, ar.Serial)
		if err != nil {
			return nil, fmt.Errorf("scep: certificate %s: %w", ar.Serial, err)
		}
		leaf, err := x509.ParseCertificate(rec.DER)
		if err != nil {
			return nil, fmt.Errorf("scep: certificate %s: %w", ar.Serial, err)
		}
		details["serial"] = rec.Serial
		switch {
		case rec.Revocation != nil:
			reason = "the certificate issued for this request was revoked"
		case !x.s.cfg.Clock.Now().Before(leaf.NotAfter):
			reason = "the certificate issued for this request expired"
		default:
			// Built before the transaction is closed: a CertRep that
			// cannot be built leaves the transaction to poll again.
			rep, err := x.ra.certRep(x.m, x.nonce, statusSuccess, "", leaf)
			if err != nil {
				return nil, err
			}
			if err := x.close(ctx, t); err != nil {
				return nil, err
			}
			return rep, nil
		}
	}
	if err := x.close(ctx, t); err != nil {
		return nil, err
	}
	return x.fail(ctx, FailBadRequest, reason, details)
}

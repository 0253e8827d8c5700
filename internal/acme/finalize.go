package acme

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/issue"
	"github.com/certwright/certwright/internal/lint"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/profile"
	"github.com/certwright/certwright/internal/revoke"
)

// csrIdentifiers returns the identifiers a CSR asks for: its SANs and a
// common name, which must repeat one of them.
func csrIdentifiers(csr *x509.CertificateRequest) ([]Identifier, error) {
	if len(csr.EmailAddresses) > 0 || len(csr.URIs) > 0 {
		return nil, NewProblem(ErrBadCSR, "the CSR names email addresses or URIs; ACME orders carry dns and ip identifiers only")
	}
	var ids []Identifier
	add := func(id Identifier) {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	for _, n := range csr.DNSNames {
		add(Identifier{Type: IdentifierDNS, Value: strings.ToLower(strings.TrimSuffix(n, "."))})
	}
	for _, ip := range csr.IPAddresses {
		a, ok := netip.AddrFromSlice(ip)
		if !ok {
			return nil, NewProblem(ErrBadCSR, "malformed IP address in the CSR")
		}
		add(Identifier{Type: IdentifierIP, Value: a.Unmap().String()})
	}
	if cn := csr.Subject.CommonName; cn != "" {
		id := Identifier{Type: IdentifierDNS, Value: strings.ToLower(strings.TrimSuffix(cn, "."))}
		if a, err := netip.ParseAddr(cn); err == nil {
			id = Identifier{Type: IdentifierIP, Value: a.Unmap().String()}
		}
		if !slices.Contains(ids, id) {
			return nil, NewProblem(ErrBadCSR, "the CSR's common name %q is not one of its subject alternative names", cn)
		}
	}
	return ids, nil
}

// subjectCNOnly returns the CSR with its subject cut down to the common
// name, as Let's Encrypt does: ACME validates names, so organisation,
// unit, country and every other attribute a client asks for would be
// unverified claims signed by the CA. csrIdentifiers has already checked
// that a common name repeats one of the (validated) identifiers. The
// CSR's signature was checked on its raw bytes, which stay as they are.
func subjectCNOnly(csr *x509.CertificateRequest) *x509.CertificateRequest {
	c := *csr
	c.Subject = pkix.Name{CommonName: csr.Subject.CommonName}
	return &c
}

func sameIdentifiers(a, b []Identifier) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

func identifierList(ids []Identifier) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = id.Type + ":" + id.Value
	}
	slices.Sort(s)
	return strings.Join(s, ", ")
}

// Finalize issues the certificate of a ready order from a CSR that asks for
// exactly the order's identifiers, through the one issuance path.
func (s *Service) Finalize(ctx context.Context, prov *Provisioner, acct *Account, orderID string, csrDER []byte) (*Order, error) {
	stored, err := s.ownOrder(ctx, acct, orderID)
	if err != nil {
		return nil, err
	}
	// A pending order whose authorizations are all valid moves straight
	// to processing below, from the status it is stored with: the ready
	// in between is not written. Any other change (expiry, a failed
	// authorization) is stored as Order would.
	o, err := s.advance(ctx, stored)
	if err != nil {
		return nil, err
	}
	if o.Status != StatusReady {
		if o, err = s.refresh(ctx, stored); err != nil {
			return nil, err
		}
	}
	// Issuance follows the provisioner as it is now, not as cached or as
	// it was when the order was placed: disabled, EAB now required, a
	// narrowed name list, a new CA or profile all apply at once.
	if prov, err = s.currentProvisioner(ctx, prov.ID); err != nil {
		return nil, err
	}
	if err := prov.mayServe(acct, "finalizations"); err != nil {
		return nil, err
	}
	for _, id := range o.Identifiers {
		if !prov.allowsName(id.Value) {
			return nil, &Problem{Type: ErrRejectedIdentifier, Identifier: &Identifier{Type: id.Type, Value: id.Value},
				Detail: fmt.Sprintf("%s is no longer among the names provisioner %s issues for (%s)", id.Value, prov.Name, strings.Join(prov.AllowNames, ", "))}
		}
	}
	if o.Status != StatusReady {
		return nil, NewProblem(ErrOrderNotReady, "order is %s, not ready", o.Status)
	}
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, NewProblem(ErrBadCSR, "cannot parse the CSR: %v", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, NewProblem(ErrBadCSR, "the CSR's signature does not verify: %v", err)
	}
	ids, err := csrIdentifiers(csr)
	if err != nil {
		return nil, err
	}
	if !sameIdentifiers(ids, o.Identifiers) {
		return nil, NewProblem(ErrBadCSR, "the CSR asks for %s but the order is for %s", identifierList(ids), identifierList(o.Identifiers))
	}
	p, err := s.principal(ctx, prov, acct)
	if err != nil {
		return nil, err
	}
	// The order moves to processing under this finalization's claim
	// (README "Several replicas"): one finalization at a time, on any
	// replica, and one whose replica dies is returned to ready by a
	// sweep once the claim expires.
	cl, err := s.newClaim()
	if err != nil {
		return nil, err
	}
	processing := *o
	processing.Status = StatusProcessing
	processing.UpdatedAt = cl.Now
	err = s.store.ClaimOrder(ctx, &processing, stored.Status, cl)
	if errors.Is(err, ErrConflict) && stored.Status == StatusPending {
		// Moved to ready meanwhile (a concurrent poll): the same transition.
		err = s.store.ClaimOrder(ctx, &processing, StatusReady, cl)
	}
	if err != nil {
		if errors.Is(err, ErrConflict) {
			return s.finalizedElsewhere(ctx, o.ID)
		}
		return nil, fmt.Errorf("acme: finalize: %w", err)
	}
	if !prov.AllowSubjectFields {
		csr = subjectCNOnly(csr)
	}
	done := processing
	done.Status = StatusValid
	done.UpdatedAt = s.cfg.Clock.Now()
	// The certificate is stored together with the order's completion,
	// and only while this finalization holds the claim: one order, one
	// certificate, whatever the replicas do.
	ireq := issue.Request{
		Principal: p, CA: prov.CAID, Profile: prov.Profile, CSR: csr,
		Tags:      []string{"acme", "acme:" + prov.Name},
		Completes: &inventory.OrderClaim{ID: o.ID, Claim: cl.Token, UpdatedAt: done.UpdatedAt},
	}
	// An order that replaces a certificate links the two in the inventory,
	// unless something else (a rotation) renewed it first.
	if o.Replaces != "" {
		if old, err := s.certificateByID(ctx, o.Replaces); err == nil && old.RenewedBy == "" {
			ireq.Replaces, ireq.RenewalKind = old.Serial, inventory.RenewalACME
		}
	}
	res, err := s.issuer.Issue(ctx, ireq)
	if errors.Is(err, issue.ErrApprovalUnavailable) || (err == nil && res.Pending != nil) {
		// The profile gained require_approval after the provisioner was
		// created (CreateProvisioner refuses such a profile). The issuance
		// path refuses ACME requests instead of holding them; a pending
		// result would be a bug there, and is refused all the same.
		err = NewProblem(ErrUnauthorized, "profile %s of provisioner %s requires approval, which an ACME client cannot wait for; nothing was issued or held for approval. The server operator must serve these clients from a provisioner whose profile does not require approval (certwright acme create), or remove require_approval from the profile",
			prov.Profile, prov.Name)
	}
	if err != nil {
		return s.finalizeFailed(ctx, &processing, cl.Token, err)
	}
	done.CertSerial = res.Cert.Serial
	return &done, nil
}

// finalizedElsewhere answers a finalization that found the order taken
// by another (on this replica or another): orderNotReady (RFC 8555 §7.4:
// the order is no longer ready), naming the status it now has. The
// winner's certificate is not handed to the loser, whose CSR may differ.
func (s *Service) finalizedElsewhere(ctx context.Context, id string) (*Order, error) {
	cur, err := s.store.GetOrder(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("acme: finalize: %w", err)
	}
	return nil, NewProblem(ErrOrderNotReady, "order is %s: another request is finalizing it or has finalized it; poll the order", cur.Status)
}

// finalizeFailed records why issuance failed, under the finalization's
// claim token. A CSR the profile rejects sends the order back to ready,
// so the client may try another CSR; any other failure makes it invalid.
// A finalization that lost its claim (it stalled, a sweep returned the
// order to ready and another finalized it) records nothing and answers
// orderNotReady.
func (s *Service) finalizeFailed(ctx context.Context, o *Order, token string, err error) (*Order, error) {
	var (
		viol *profile.Violation
		lerr *lint.Error
		pb   = AsProblem(err)
	)
	next := *o
	next.UpdatedAt = s.cfg.Clock.Now()
	switch {
	case pb != nil:
		next.Status = StatusInvalid
	case errors.Is(err, issue.ErrKeyCompromised):
		// RFC 8555 7.3: the client may finalize again with a new key.
		pb = NewProblem(ErrBadPublicKey, "%v", err)
		next.Status = StatusReady
	case errors.As(err, &viol), errors.As(err, &lerr), errors.Is(err, issue.ErrInvalid):
		pb = NewProblem(ErrBadCSR, "%v", err)
		next.Status = StatusReady
	case errors.Is(err, authz.ErrForbidden):
		pb = NewProblem(ErrUnauthorized, "%v", err)
		next.Status = StatusInvalid
	default:
		pb = NewProblem(ErrServerInternal, "issuance failed")
		next.Status = StatusInvalid
	}
	if next.Status == StatusInvalid {
		next.Error = pb
	}
	if uerr := s.store.UpdateClaimedOrder(ctx, &next, token); uerr != nil {
		if errors.Is(uerr, ErrConflict) {
			return s.finalizedElsewhere(ctx, o.ID)
		}
		s.cfg.Log.Error("acme: record failed finalization", "order", o.ID, "err", uerr)
	}
	if pb.Type == ErrServerInternal {
		s.cfg.Log.Error("acme: finalize", "order", o.ID, "err", err)
	}
	return nil, pb
}

// CertificateChain returns the PEM chain, leaf first and root excluded, of
// a certificate one of acct's orders produced.
func (s *Service) CertificateChain(ctx context.Context, acct *Account, serial string) ([]byte, error) {
	norm, err := pki.NormalizeSerial(serial)
	if err != nil {
		return nil, notFound("certificate", serial)
	}
	o, err := s.store.OrderByCertificate(ctx, norm)
	if errors.Is(err, ErrNotFound) || (err == nil && o.AccountID != acct.ID) {
		return nil, notFound("certificate", serial)
	}
	if err != nil {
		return nil, fmt.Errorf("acme: certificate: %w", err)
	}
	caID, der, err := s.store.CertificateDER(ctx, norm)
	if err != nil {
		return nil, fmt.Errorf("acme: certificate %s: %w", norm, err)
	}
	chain, err := s.issuer.Chain(ctx, caID)
	if err != nil {
		return nil, fmt.Errorf("acme: chain of %s: %w", norm, err)
	}
	// The root is left out: relying parties hold it already.
	intermediates, _ := issue.SplitChain(chain)
	ders := [][]byte{der}
	for _, ic := range intermediates {
		ders = append(ders, ic.Raw)
	}
	return pki.CertPEM(ders...), nil
}

// acmeReasons are the revocation reasons an ACME client may give (RFC 8555
// §7.6 defers to RFC 5280; a subscriber cannot claim a CA compromise).
var acmeReasons = []pki.Reason{
	pki.ReasonUnspecified, pki.ReasonKeyCompromise, pki.ReasonAffiliationChanged,
	pki.ReasonSuperseded, pki.ReasonCessationOfOperation,
}

// Revoke revokes a certificate this server issued. The request is
// authorised by the account that ordered it, by an account holding valid
// authorizations for all its identifiers, or (acct nil) by the
// certificate's own key, certKey.
func (s *Service) Revoke(ctx context.Context, prov *Provisioner, acct *Account, certKey crypto.PublicKey, certDER []byte, reason *int) error {
	leaf, err := x509.ParseCertificate(certDER)
	if err != nil {
		return NewProblem(ErrMalformed, "cannot parse the certificate: %v", err)
	}
	r := pki.ReasonUnspecified
	if reason != nil {
		r = pki.Reason(*reason)
		if !slices.Contains(acmeReasons, r) {
			return NewProblem(ErrBadRevocationReason, "reason %d is not accepted (0, 1, 3, 4 or 5)", *reason)
		}
	}
	serial := pki.SerialHex(leaf.SerialNumber)
	rec, err := s.store.GetCertificate(ctx, serial)
	if err != nil || !bytes.Equal(rec.DER, certDER) {
		return NewProblem(ErrMalformed, "this server did not issue that certificate")
	}
	if rec.Revocation != nil {
		return NewProblem(ErrAlreadyRevoked, "certificate was revoked at %s", rec.Revocation.RevokedAt.UTC().Format("2006-01-02T15:04:05Z"))
	}
	var who string
	if acct == nil {
		eq, ok := leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
		if certKey == nil || !ok || !eq.Equal(certKey) {
			return NewProblem(ErrUnauthorized, "the request is not signed by the certificate's key")
		}
		who = "acme:" + prov.Name + "/certificate-key"
	} else {
		if err := s.mayRevoke(ctx, prov, acct, serial, rec.SANs); err != nil {
			return err
		}
		who = accountName(prov, acct)
	}
	p := authz.Principal{
		ID: who, Name: who, Kind: authz.KindMachine, Auth: "acme",
		Bindings: []authz.Binding{{
			ID: "acme-revoke", PrincipalID: who, Principal: who,
			Role: authz.Role{Name: "acme_revoke", Permissions: []authz.Permission{authz.PermCertRevoke}},
			// This certificate's CA and profile; ownership was checked above.
			Scope: authz.Scope{CAs: []string{rec.CAID}, Profiles: []string{rec.Profile}},
		}},
	}
	_, created, err := s.revoker.Revoke(ctx, revoke.Request{Principal: p, Serial: serial, Reason: r})
	if err != nil {
		return fmt.Errorf("acme: revoke %s: %w", serial, err)
	}
	if !created {
		return NewProblem(ErrAlreadyRevoked, "certificate is already revoked")
	}
	return nil
}

// mayRevoke allows the account that ordered the certificate, or one with
// valid authorizations for every name in it. The second reaches only
// certificates issued through this provisioner: validating a name on an
// ACME endpoint says nothing about certificates that other paths (the API,
// renewal, EST, another provisioner) issued for it, and their owners would
// not expect an anonymous ACME account to revoke them. Those are revoked
// through the API, or by anyone holding the certificate's key.
func (s *Service) mayRevoke(ctx context.Context, prov *Provisioner, acct *Account, serial string, sans []string) error {
	o, err := s.store.OrderByCertificate(ctx, serial)
	if err == nil && o.AccountID == acct.ID {
		return nil
	}
	if err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("acme: revoke: %w", err)
	}
	if err != nil || o.ProvisionerID != prov.ID {
		return NewProblem(ErrUnauthorized, "this account did not order the certificate, and it was not issued through ACME provisioner %s; revoke it through the Certwright API or with the certificate's key", prov.Name)
	}
	now := s.cfg.Clock.Now()
	for _, san := range sans {
		ident := Identifier{Type: IdentifierDNS, Value: strings.ToLower(san)}
		if a, err := netip.ParseAddr(san); err == nil {
			ident = Identifier{Type: IdentifierIP, Value: a.Unmap().String()}
		}
		base, wild := strings.CutPrefix(ident.Value, "*.")
		ident.Value = base
		if _, err := s.store.ReusableAuthorization(ctx, acct.ID, ident, wild, now); err != nil {
			return NewProblem(ErrUnauthorized, "this account neither ordered the certificate nor holds a valid authorization for %s", san)
		}
	}
	if len(sans) == 0 {
		return NewProblem(ErrUnauthorized, "this account did not order the certificate")
	}
	return nil
}

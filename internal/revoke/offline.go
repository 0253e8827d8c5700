package revoke

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/pki"
)

// An offline root (ca.CA.Offline) signs its CRL at its ceremony; the CRL
// is uploaded here (ImportCRL), checked against the root's certificate,
// stored as the root's CRL and served at its CRL URL until a newer one is
// uploaded. The server never signs for such a root, and answers no OCSP
// request for it.

// ErrNoCRL is returned for the CRL of an offline root none was uploaded
// for; it is an ErrNoCA (404 at the CRL URL).
var ErrNoCRL = fmt.Errorf("%w: no CRL has been uploaded for this offline root", ErrNoCA)

// MaxUploadedCRL bounds an uploaded CRL. An offline root's CRL lists the
// few subordinate CAs it revoked: a few hundred bytes.
const MaxUploadedCRL = 1 << 20

// maxClockSkew is how far an uploaded CRL's thisUpdate may be ahead of
// this server's clock: the ceremony machine is offline, its clock may
// drift, but a CRL that is not yet valid is refused by relying parties.
const maxClockSkew = 5 * time.Minute

// oidDeltaCRLIndicator marks a delta CRL (RFC 5280 5.2.4).
func oidDeltaCRLIndicator() asn1.ObjectIdentifier { return asn1.ObjectIdentifier{2, 5, 29, 27} }

// oidIssuingDistributionPoint scopes a CRL to part of what its issuer
// signed, or makes it indirect (RFC 5280 5.2.5).
func oidIssuingDistributionPoint() asn1.ObjectIdentifier { return asn1.ObjectIdentifier{2, 5, 29, 28} }

// oidCertificateIssuer names another issuer for an entry of an indirect
// CRL (RFC 5280 5.3.3).
func oidCertificateIssuer() asn1.ObjectIdentifier { return asn1.ObjectIdentifier{2, 5, 29, 29} }

// entryExtensionKnown reports whether Certwright processes the CRL entry
// extension id: reasonCode and invalidityDate.
func entryExtensionKnown(id asn1.ObjectIdentifier) bool {
	return id.Equal(asn1.ObjectIdentifier{2, 5, 29, 21}) || id.Equal(asn1.ObjectIdentifier{2, 5, 29, 24})
}

// weakSignature reports whether alg rests on SHA-1 or MD5/MD2.
func weakSignature(alg x509.SignatureAlgorithm) bool {
	switch alg {
	case x509.MD2WithRSA, x509.MD5WithRSA, x509.SHA1WithRSA, x509.DSAWithSHA1, x509.ECDSAWithSHA1:
		return true
	}
	return false
}

// ImportedCRL is what ImportCRL stored.
type ImportedCRL struct {
	CAID       string
	CAName     string
	Number     int64
	ThisUpdate time.Time
	NextUpdate time.Time
	Entries    int
	// RevokedCAs are the subordinate CAs of this instance the CRL lists
	// that were not revoked here yet: now they are, and disabled.
	RevokedCAs []string
}

// ImportCRL uploads the CRL an offline root signed at its ceremony. The
// CRL must verify under the root's certificate, name it as issuer, carry a
// CRL number greater than the stored one (an older CRL is never served
// again), list every serial the stored CRL listed and every revocation
// recorded under the root (revocation is permanent), a thisUpdate not in the future and a nextUpdate still ahead. It
// is stored with an audit event (ca.import_crl), served at the root's CRL
// URL from then on, and every subordinate CA of this instance it lists is
// revoked (ca.revoke) and disabled, as ca revoke does for a CA signed here.
func (s *Service) ImportCRL(ctx context.Context, p authz.Principal, idOrName string, der []byte) (*ImportedCRL, error) {
	c, err := s.store.GetCA(ctx, idOrName)
	if err != nil {
		return nil, fmt.Errorf("revoke: %w", err)
	}
	if err := p.Allow(authz.PermCAManage, authz.Resource{CAID: c.ID, CAName: c.Name}); err != nil {
		return nil, err
	}
	if !c.Offline() {
		return nil, fmt.Errorf("%w: CA %s signs its own CRL on this server; only an offline root's CRL (certwright ca import-root) is uploaded", ErrInvalid, c.Name)
	}
	if c.Status == ca.StatusDeleted {
		return nil, fmt.Errorf("%w: CA %s is deleted", ErrInvalid, c.Name)
	}
	cert, err := x509.ParseCertificate(c.CertDER)
	if err != nil {
		return nil, fmt.Errorf("revoke: parse certificate of CA %s: %w", c.Name, err)
	}
	now := s.cfg.Clock.Now()
	rl, err := CheckUploadedCRL(der, cert, now)
	if err != nil {
		return nil, fmt.Errorf("%w: CA %s: %w", ErrInvalid, c.Name, err)
	}
	number := rl.Number.Int64()
	stored, err := s.store.LatestCRL(ctx, c.ID)
	if err != nil {
		return nil, fmt.Errorf("revoke: CA %s: %w", c.Name, err)
	}
	if stored != nil && number <= stored.Number {
		return nil, fmt.Errorf("%w: CA %s: the CRL's number %d is not greater than the stored CRL's %d; an older CRL is never served again (sign a new one at the ceremony)", ErrInvalid, c.Name, number, stored.Number)
	}
	if err := s.keepsRevocations(ctx, c, stored, rl); err != nil {
		return nil, err
	}
	// The CRL is the root's signed word that these CAs are revoked: it is
	// recorded first, so that the CRL is never stored without it.
	revokedCAs, err := s.revokeListed(ctx, p, c, rl, now)
	if err != nil {
		return nil, err
	}
	sc := &StoredCRL{Number: number, DER: rl.Raw, ThisUpdate: rl.ThisUpdate.UTC(), NextUpdate: rl.NextUpdate.UTC(), Entries: len(rl.RevokedCertificateEntries)}
	ev := audit.New(p, now, "ca.import_crl", c.ID, map[string]any{
		"ca": c.Name, "number": number, "this_update": sc.ThisUpdate, "next_update": sc.NextUpdate,
		"entries": sc.Entries, "sha256": pki.Fingerprint(rl.Raw), "revoked_cas": revokedCAs,
	})
	if err := s.store.ImportCRL(ctx, c.ID, sc, ev); err != nil {
		return nil, fmt.Errorf("revoke: CA %s: %w", c.Name, err)
	}
	if st := s.loaded(c.ID); st != nil {
		st.install(&CRL{DER: sc.DER, Number: number, ThisUpdate: sc.ThisUpdate, NextUpdate: sc.NextUpdate, Entries: sc.Entries})
		s.noteCRL(ctx, st, nil)
	}
	s.cfg.Log.Info("offline root CRL uploaded", "ca", c.Name, "number", number, "entries", sc.Entries, "next_update", sc.NextUpdate, "revoked_cas", revokedCAs)
	return &ImportedCRL{CAID: c.ID, CAName: c.Name, Number: number, ThisUpdate: sc.ThisUpdate, NextUpdate: sc.NextUpdate, Entries: sc.Entries, RevokedCAs: revokedCAs}, nil
}

// keepsRevocations refuses rl, the root c's new CRL, unless it lists every
// serial the stored CRL lists and every revocation recorded under c (its
// subordinate CAs revoked here, expired or not): revocation is permanent,
// and a stale copy from the ceremony must not take one back for relying
// parties.
func (s *Service) keepsRevocations(ctx context.Context, c *ca.CA, stored *StoredCRL, rl *x509.RevocationList) error {
	listed := map[string]bool{}
	for _, e := range rl.RevokedCertificateEntries {
		listed[pki.SerialHex(e.SerialNumber)] = true
	}
	var missing []string
	miss := func(serial string) {
		if !listed[serial] && !slices.Contains(missing, serial) {
			missing = append(missing, serial)
		}
	}
	if stored != nil {
		old, err := x509.ParseRevocationList(stored.DER)
		if err != nil {
			return fmt.Errorf("revoke: CA %s: parse the stored CRL %d: %w", c.Name, stored.Number, err)
		}
		for _, e := range old.RevokedCertificateEntries {
			miss(pki.SerialHex(e.SerialNumber))
		}
	}
	err := s.store.EachRevoked(ctx, c.ID, time.Time{}, func(r *inventory.Revocation) error {
		miss(r.Serial)
		return nil
	})
	if err != nil {
		return fmt.Errorf("revoke: CA %s: %w", c.Name, err)
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return fmt.Errorf("%w: CA %s: the CRL does not list serial(s) %s, revoked by the root's stored CRL or recorded on this server; revocation is permanent, so every later CRL must list them (is this a stale copy? sign a new CRL at the ceremony from its current state)",
			ErrInvalid, c.Name, strings.Join(missing, ", "))
	}
	return nil
}

// CheckUploadedCRL parses a CRL and checks it as the CRL of issuer at now:
// signed by issuer's key, issuer's subject as its issuer, a CRL number
// (that fits 63 bits), thisUpdate at most maxClockSkew ahead of now, a
// nextUpdate after thisUpdate and after now, not a delta, partial or
// indirect CRL (no issuing distribution point, no certificateIssuer entry
// extension) and no other critical extension, not signed with SHA-1 or
// MD5, positive serials, no critical entry extension but reasonCode and
// invalidityDate, and only revocation reasons Certwright accepts
// (certificateHold and removeFromCRL are not: revocation is permanent).
func CheckUploadedCRL(der []byte, issuer *x509.Certificate, now time.Time) (*x509.RevocationList, error) {
	if len(der) > MaxUploadedCRL {
		return nil, fmt.Errorf("the CRL is %d bytes, more than %d", len(der), MaxUploadedCRL)
	}
	rl, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, fmt.Errorf("parse the CRL: %w", err)
	}
	if weakSignature(rl.SignatureAlgorithm) {
		return nil, fmt.Errorf("the CRL is signed with %s, which Certwright does not accept (SHA-1 and MD5 are broken)", rl.SignatureAlgorithm)
	}
	if !bytes.Equal(rl.RawIssuer, issuer.RawSubject) {
		return nil, fmt.Errorf("the CRL's issuer %q is not the CA's subject %q", rl.Issuer, issuer.Subject)
	}
	if err := rl.CheckSignatureFrom(issuer); err != nil {
		return nil, fmt.Errorf("the CRL's signature does not verify under the CA's certificate (signed by another key?): %w", err)
	}
	if len(rl.AuthorityKeyId) > 0 && len(issuer.SubjectKeyId) > 0 && !bytes.Equal(rl.AuthorityKeyId, issuer.SubjectKeyId) {
		return nil, fmt.Errorf("the CRL's authority key identifier %x is not the CA's subject key identifier %x", rl.AuthorityKeyId, issuer.SubjectKeyId)
	}
	if rl.Number == nil || rl.Number.Sign() < 0 || !rl.Number.IsInt64() {
		return nil, fmt.Errorf("the CRL carries no CRL number, or one out of range (%v)", rl.Number)
	}
	for _, e := range rl.Extensions {
		if e.Id.Equal(oidDeltaCRLIndicator()) {
			return nil, fmt.Errorf("the CRL is a delta CRL; upload a complete CRL")
		}
		if e.Id.Equal(oidIssuingDistributionPoint()) {
			return nil, fmt.Errorf("the CRL has an issuing distribution point (a partial or indirect CRL); upload the root's complete, direct CRL")
		}
		if e.Critical && !e.Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 20}) {
			return nil, fmt.Errorf("the CRL carries the critical extension %v, which Certwright does not process", e.Id)
		}
	}
	if rl.ThisUpdate.After(now.Add(maxClockSkew)) {
		return nil, fmt.Errorf("the CRL's thisUpdate %s is ahead of this server's clock (%s): check the ceremony machine's clock, relying parties would refuse the CRL as not yet valid",
			rl.ThisUpdate.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if rl.NextUpdate.IsZero() {
		return nil, fmt.Errorf("the CRL has no nextUpdate")
	}
	if !rl.NextUpdate.After(rl.ThisUpdate) {
		return nil, fmt.Errorf("the CRL's nextUpdate %s is not after its thisUpdate %s", rl.NextUpdate.UTC().Format(time.RFC3339), rl.ThisUpdate.UTC().Format(time.RFC3339))
	}
	if !rl.NextUpdate.After(now) {
		return nil, fmt.Errorf("the CRL's nextUpdate %s has passed: sign a new CRL at the ceremony", rl.NextUpdate.UTC().Format(time.RFC3339))
	}
	for _, e := range rl.RevokedCertificateEntries {
		if e.SerialNumber == nil || e.SerialNumber.Sign() <= 0 {
			return nil, fmt.Errorf("the CRL lists the serial number %v: a certificate's serial is positive (RFC 5280 4.1.2.2)", e.SerialNumber)
		}
		for _, x := range e.Extensions {
			if x.Id.Equal(oidCertificateIssuer()) {
				return nil, fmt.Errorf("the entry for serial %s names another certificate issuer (an indirect CRL); upload the root's direct CRL", pki.SerialHex(e.SerialNumber))
			}
			if x.Critical && !entryExtensionKnown(x.Id) {
				return nil, fmt.Errorf("the entry for serial %s carries the critical extension %v, which Certwright does not process", pki.SerialHex(e.SerialNumber), x.Id)
			}
		}
		if !pki.Reason(e.ReasonCode).Valid() {
			return nil, fmt.Errorf("the entry for serial %s has revocation reason code %d, which Certwright does not accept (one of %v)", pki.SerialHex(e.SerialNumber), e.ReasonCode, pki.ReasonNames())
		}
	}
	return rl, nil
}

// revokeListed records the revocation of every subordinate CA of root the
// CRL lists and that is not revoked here yet, and disables it; it returns
// their names.
func (s *Service) revokeListed(ctx context.Context, p authz.Principal, root *ca.CA, rl *x509.RevocationList, now time.Time) ([]string, error) {
	listed := map[string]x509.RevocationListEntry{}
	for _, e := range rl.RevokedCertificateEntries {
		listed[pki.SerialHex(e.SerialNumber)] = e
	}
	if len(listed) == 0 {
		return []string{}, nil
	}
	cas, err := s.store.ListCAs(ctx)
	if err != nil {
		return nil, fmt.Errorf("revoke: list CAs: %w", err)
	}
	out := []string{}
	for _, child := range cas {
		if child.ParentID != root.ID || len(child.CertDER) == 0 {
			continue
		}
		cert, err := x509.ParseCertificate(child.CertDER)
		if err != nil {
			return nil, fmt.Errorf("revoke: parse certificate of CA %s: %w", child.Name, err)
		}
		serial := pki.SerialHex(cert.SerialNumber)
		e, ok := listed[serial]
		if !ok {
			continue
		}
		rec := &inventory.Revocation{
			Serial: serial, CAID: root.ID, RevokedAt: e.RevocationTime.UTC().Truncate(time.Second), Reason: pki.Reason(e.ReasonCode),
			RevokedBy: p.Name, NotAfter: cert.NotAfter.UTC(), CA: true,
		}
		if child.Status == ca.StatusActive {
			if err := child.Disable(now); err != nil {
				return nil, err
			}
		}
		d := revDetails(rec, child.Name, "")
		d["serial"], d["parent_id"], d["source"], d["crl_number"] = serial, root.ID, "uploaded CRL", rl.Number.Int64()
		_, created, err := s.store.RevokeCA(ctx, rec, child, audit.New(p, now, "ca.revoke", child.ID, d))
		if err != nil {
			return nil, fmt.Errorf("revoke: CA %s: %w", child.Name, err)
		}
		if created {
			out = append(out, child.Name)
			s.cfg.Log.Warn("CA certificate revoked by its offline root's CRL", "ca", child.Name, "id", child.ID, "serial", serial, "parent", root.Name, "reason", rec.Reason.String(), "by", p.Name)
		}
	}
	return out, nil
}

// uploadedCRL returns an offline root's CRL, read from the store (where
// another replica may have put a newer upload) and checked, and notes its
// freshness: none uploaded, or one due for replacement, is a failure the
// console and the revocation_stale alert show.
func (s *Service) uploadedCRL(ctx context.Context, st *caState) (*CRL, error) {
	c, err := s.loadUploaded(ctx, st)
	note := err
	if err == nil {
		if due := uploadDue(c); !s.cfg.Clock.Now().Before(due) {
			note = fmt.Errorf("the uploaded CRL %d is due for replacement (nextUpdate %s): sign the next at the root's ceremony (certwright ceremony crl) and upload it (certwright ca import-crl)",
				c.Number, c.NextUpdate.Format(time.RFC3339))
		}
	}
	s.noteCRL(ctx, st, note)
	return c, err
}

func (s *Service) loadUploaded(ctx context.Context, st *caState) (*CRL, error) {
	stored, err := s.store.LatestCRL(ctx, st.id)
	if err != nil {
		return nil, fmt.Errorf("revoke: CRL of CA %s: %w", st.name, err)
	}
	if stored == nil {
		return nil, fmt.Errorf("%w: CA %s (sign one with certwright ceremony crl and upload it with certwright ca import-crl)", ErrNoCRL, st.name)
	}
	c, err := s.checkCRL(st, stored)
	if err != nil {
		return nil, fmt.Errorf("revoke: CA %s: %w", st.name, err)
	}
	return st.install(c), nil
}

// uploadDue is when an uploaded CRL should be replaced: a quarter of its
// lifetime before its nextUpdate, at most a week before.
func uploadDue(c *CRL) time.Time {
	return c.NextUpdate.Add(-min(7*24*time.Hour, c.NextUpdate.Sub(c.ThisUpdate)/4))
}

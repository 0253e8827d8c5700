package issue

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/keys"
	"github.com/certwright/certwright/internal/pki"
)

func newCAID() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("issue: CA id: %w", err)
	}
	return "ca_" + hex.EncodeToString(b), nil
}

func (s *Service) newCARecord(id string, spec *ca.Spec, kind ca.Kind, parentID string, ref keys.Ref) *ca.CA {
	now := s.cfg.Clock.Now()
	return &ca.CA{
		ID: id, Name: spec.Name, Kind: kind, ParentID: parentID, Status: ca.StatusActive,
		Key: ref, CreatedAt: now, UpdatedAt: now,
	}
}

// generatorIn is the part of the key provider (keys.Router) that creates
// a key in a provider named by the caller.
type generatorIn interface {
	GenerateIn(ctx context.Context, name string, alg pki.KeyAlgorithm, purpose keys.Purpose) (keys.Ref, crypto.Signer, error)
}

// generateCAKey creates the key of new CA id in the provider spec names,
// or else in Config.CAKeyProvider, or else in the key provider's default.
func (s *Service) generateCAKey(ctx context.Context, spec *ca.Spec, id string) (keys.Ref, crypto.Signer, error) {
	name := spec.KeyProvider
	if name == "" {
		name = s.cfg.CAKeyProvider
	}
	if name == "" {
		return s.keys.Generate(ctx, spec.KeyAlg, keys.CAPurpose(id))
	}
	g, ok := s.keys.(generatorIn)
	if !ok {
		return keys.Ref{}, nil, fmt.Errorf("%w: key provider %q: this server has one key provider only", ErrInvalid, name)
	}
	ref, sg, err := g.GenerateIn(ctx, name, spec.KeyAlg, keys.CAPurpose(id))
	if errors.Is(err, keys.ErrUnknownProvider) {
		return keys.Ref{}, nil, fmt.Errorf("%w: key provider %q is not configured on this server (for pkcs11: set keys.pkcs11 in config.yaml and restart serve): %w", ErrInvalid, name, err)
	}
	return ref, sg, err
}

// checkNewCA authorises a CA creation and validates its spec; it fails
// before a key is generated when the name is taken.
func (s *Service) checkNewCA(ctx context.Context, p authz.Principal, spec *ca.Spec) error {
	if err := p.Allow(authz.PermCAManage, authz.Resource{CAName: spec.Name}); err != nil {
		return err
	}
	if err := spec.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if _, err := s.store.GetCA(ctx, spec.Name); err == nil {
		return fmt.Errorf("%w: a CA named %q already exists", ErrConflict, spec.Name)
	}
	return nil
}

// ErrConflict marks a name that is already taken.
var ErrConflict = errors.New("issue: conflict")

// CreateRoot creates a self-signed root CA with a new key.
func (s *Service) CreateRoot(ctx context.Context, p authz.Principal, spec *ca.Spec) (*ca.CA, error) {
	if err := s.checkNewCA(ctx, p, spec); err != nil {
		return nil, err
	}
	id, err := newCAID()
	if err != nil {
		return nil, err
	}
	ref, signer, err := s.generateCAKey(ctx, spec, id)
	if err != nil {
		return nil, fmt.Errorf("issue: generate root key: %w", err)
	}
	now := s.cfg.Clock.Now()
	serial, err := pki.NewSerialAt(s.cfg.Rand, now)
	if err != nil {
		return nil, err
	}
	tmpl, err := ca.Template(spec, signer.Public(), serial, now, nil, ca.URLs{})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	tmpl.AuthorityKeyId = tmpl.SubjectKeyId
	tmpl.SignatureAlgorithm = pki.SignatureAlgorithmFor(signer.Public())
	if _, err := s.linter.Check(tmpl, signer.Public(), nil, false); err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificate(s.cfg.Rand, tmpl, tmpl, signer.Public(), signer)
	if err != nil {
		return nil, fmt.Errorf("issue: self-sign root: %w", err)
	}
	rec := s.newCARecord(id, spec, ca.KindRoot, "", ref)
	rec.CertDER = der
	ev := audit.New(p, s.cfg.Clock.Now(), "ca.create", rec.ID, map[string]any{"name": rec.Name, "kind": "root", "key_algorithm": spec.KeyAlg, "key_provider": ref.Provider, "serial": pki.SerialHex(serial), "ca_key_use": "self-signature"})
	err = s.store.CreateCA(ctx, rec, ev)
	s.cfg.CAs.Invalidate()
	if err != nil {
		return nil, fmt.Errorf("issue: store CA %s: %w", spec.Name, err)
	}
	s.cfg.Log.Info("root CA created", "ca", rec.Name, "id", rec.ID, "key", spec.KeyAlg, "key_provider", ref.Provider)
	return rec, nil
}

// CreateIntermediate creates a subordinate CA signed by parent, a CA of this instance.
func (s *Service) CreateIntermediate(ctx context.Context, p authz.Principal, parent string, spec *ca.Spec) (*ca.CA, error) {
	if err := s.checkNewCA(ctx, p, spec); err != nil {
		return nil, err
	}
	parentCA, err := s.store.GetCA(ctx, parent)
	if err != nil {
		return nil, fmt.Errorf("issue: parent: %w", err)
	}
	// The new CA is signed with the parent's key: the principal must
	// manage the parent as well as the new CA.
	if err := p.Allow(authz.PermCAManage, authz.Resource{CAID: parentCA.ID, CAName: parentCA.Name}); err != nil {
		return nil, err
	}
	if err := parentCA.CanIssue(); err != nil {
		return nil, err
	}
	parentCert, err := s.parse(parentCA)
	if err != nil {
		return nil, err
	}
	if now := s.cfg.Clock.Now(); now.After(parentCert.NotAfter) {
		return nil, fmt.Errorf("%w: CA %s expired on %s", ca.ErrNotIssuing, parentCA.Name, parentCert.NotAfter.Format(time.RFC3339))
	}
	if err := ca.CheckChild(parentCert, spec.MaxPathLen, parentCert.NotAfter); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	parentSigner, err := s.caSigner(ctx, parentCA)
	if err != nil {
		return nil, err
	}
	id, err := newCAID()
	if err != nil {
		return nil, err
	}
	ref, signer, err := s.generateCAKey(ctx, spec, id)
	if err != nil {
		return nil, fmt.Errorf("issue: generate intermediate key: %w", err)
	}
	now := s.cfg.Clock.Now()
	serial, err := pki.NewSerialAt(s.cfg.Rand, now)
	if err != nil {
		return nil, err
	}
	rec := s.newCARecord(id, spec, ca.KindIntermediate, parentCA.ID, ref)
	tmpl, err := ca.Template(spec, signer.Public(), serial, now, parentCert, ca.URLsFor(s.cfg.PublicHTTPBase, parentCA.ID))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	tmpl.AuthorityKeyId = parentCert.SubjectKeyId
	tmpl.SignatureAlgorithm = pki.SignatureAlgorithmFor(parentCert.PublicKey)
	if _, err := s.linter.Check(tmpl, signer.Public(), parentCert, false); err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificate(s.cfg.Rand, tmpl, parentCert, signer.Public(), parentSigner)
	if err != nil {
		return nil, fmt.Errorf("issue: sign intermediate: %w", err)
	}
	rec.CertDER = der
	ev := audit.New(p, s.cfg.Clock.Now(), "ca.create", rec.ID, map[string]any{"name": rec.Name, "kind": "intermediate", "parent": parentCA.Name, "parent_id": parentCA.ID, "key_algorithm": spec.KeyAlg, "key_provider": ref.Provider, "serial": pki.SerialHex(serial), "ca_key_use": parentCA.ID})
	err = s.store.CreateCA(ctx, rec, ev)
	s.cfg.CAs.Invalidate()
	if err != nil {
		return nil, fmt.Errorf("issue: store CA %s: %w", spec.Name, err)
	}
	s.cfg.Log.Info("intermediate CA created", "ca", rec.Name, "id", rec.ID, "parent", parentCA.Name, "key", spec.KeyAlg, "key_provider", ref.Provider)
	return rec, nil
}

// CreateExternal creates a CA whose key lives here but whose certificate is
// signed elsewhere. It returns the pending CA; its CSRDER is the request to
// take to the external signer.
func (s *Service) CreateExternal(ctx context.Context, p authz.Principal, spec *ca.Spec) (*ca.CA, error) {
	if err := s.checkNewCA(ctx, p, spec); err != nil {
		return nil, err
	}
	id, err := newCAID()
	if err != nil {
		return nil, err
	}
	ref, signer, err := s.generateCAKey(ctx, spec, id)
	if err != nil {
		return nil, fmt.Errorf("issue: generate key: %w", err)
	}
	csrDER, err := x509.CreateCertificateRequest(s.cfg.Rand, &x509.CertificateRequest{
		Subject:            spec.Subject,
		SignatureAlgorithm: pki.SignatureAlgorithmFor(signer.Public()),
	}, signer)
	if err != nil {
		return nil, fmt.Errorf("issue: create CSR: %w", err)
	}
	rec := s.newCARecord(id, spec, ca.KindIntermediate, "", ref)
	rec.External, rec.Status, rec.CSRDER = true, ca.StatusPending, csrDER
	ev := audit.New(p, s.cfg.Clock.Now(), "ca.create", rec.ID, map[string]any{"name": rec.Name, "kind": "external", "key_algorithm": spec.KeyAlg, "key_provider": ref.Provider})
	err = s.store.CreateCA(ctx, rec, ev)
	s.cfg.CAs.Invalidate()
	if err != nil {
		return nil, fmt.Errorf("issue: store CA %s: %w", spec.Name, err)
	}
	s.cfg.Log.Info("external CA created, awaiting certificate", "ca", rec.Name, "id", rec.ID)
	return rec, nil
}

// ImportCertificate completes a pending external CA with the certificate the
// external signer returned and, optionally, that signer's chain.
func (s *Service) ImportCertificate(ctx context.Context, p authz.Principal, idOrName string, cert *x509.Certificate, chain []*x509.Certificate) (*ca.CA, error) {
	c, err := s.store.GetCA(ctx, idOrName)
	if err != nil {
		return nil, fmt.Errorf("issue: %w", err)
	}
	if err := p.Allow(authz.PermCAManage, authz.Resource{CAID: c.ID, CAName: c.Name}); err != nil {
		return nil, err
	}
	if c.Status != ca.StatusPending {
		return nil, fmt.Errorf("%w: CA %s is %s; only a pending external CA takes an imported certificate", ca.ErrTransition, c.Name, c.Status)
	}
	signer, err := s.caSigner(ctx, c)
	if err != nil {
		return nil, err
	}
	if err := ca.CheckImport(cert, signer.Public(), chain, s.cfg.Clock.Now()); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	parent, err := s.signedHere(ctx, cert)
	if err != nil {
		return nil, err
	}
	if err := s.notRevokedByRoot(ctx, parent, cert); err != nil {
		return nil, err
	}
	c.CertDER = cert.Raw
	c.ChainDER = nil
	details := map[string]any{"name": c.Name, "fingerprint": pki.Fingerprint(cert.Raw)}
	if parent != nil {
		// Signed by a CA of this instance (an offline root, at its
		// ceremony): the CA sits below it, and its chain is the parent's.
		c.ParentID = parent.ID
		details["parent"], details["parent_id"] = parent.Name, parent.ID
	} else {
		for _, cc := range chain {
			c.ChainDER = append(c.ChainDER, cc.Raw)
		}
	}
	c.Status = ca.StatusActive
	c.UpdatedAt = s.cfg.Clock.Now()
	ev := audit.New(p, c.UpdatedAt, "ca.import", c.ID, details)
	err = s.store.UpdateCA(ctx, c, ev)
	s.cfg.CAs.Invalidate()
	if err != nil {
		return nil, fmt.Errorf("issue: store CA %s: %w", c.Name, err)
	}
	if err := s.notRevokedByRoot(ctx, parent, cert); err != nil {
		// The root's CRL listing it was uploaded while the import ran,
		// after the upload looked for the root's CAs to revoke: the CA
		// must not issue.
		return nil, s.disableRevoked(ctx, p, c, err)
	}
	s.cfg.Log.Info("external CA certificate imported", "ca", c.Name, "id", c.ID)
	return c, nil
}

// notRevokedByRoot refuses cert, signed by parent, when parent is an
// offline root whose uploaded CRL lists it: the root revoked it at its
// ceremony, and revocation is permanent.
func (s *Service) notRevokedByRoot(ctx context.Context, parent *ca.CA, cert *x509.Certificate) error {
	if parent == nil || !parent.Offline() {
		return nil
	}
	stored, err := s.store.LatestCRL(ctx, parent.ID)
	if err != nil {
		return fmt.Errorf("issue: CRL of CA %s: %w", parent.Name, err)
	}
	if stored == nil {
		return nil
	}
	rl, err := x509.ParseRevocationList(stored.DER)
	if err != nil {
		return fmt.Errorf("issue: parse the CRL %d of CA %s: %w", stored.Number, parent.Name, err)
	}
	for _, e := range rl.RevokedCertificateEntries {
		if e.SerialNumber.Cmp(cert.SerialNumber) == 0 {
			return fmt.Errorf("%w: the certificate (serial %s) is revoked by the root's CRL number %d (root %s, revoked %s, reason %s); revocation is permanent: have the root sign a new certificate at its ceremony",
				ErrInvalid, pki.SerialHex(cert.SerialNumber), stored.Number, parent.Name, e.RevocationTime.UTC().Format(time.RFC3339), pki.Reason(e.ReasonCode))
		}
	}
	return nil
}

// disableRevoked disables c, imported just now with a certificate its
// offline root's CRL turned out to list (revoked), and returns why.
func (s *Service) disableRevoked(ctx context.Context, p authz.Principal, c *ca.CA, revoked error) error {
	now := s.cfg.Clock.Now()
	if err := c.Disable(now); err != nil {
		return errors.Join(revoked, err)
	}
	ev := audit.New(p, now, "ca.disable", c.ID, map[string]any{"name": c.Name, "reason": revoked.Error()})
	err := s.store.UpdateCA(ctx, c, ev)
	s.cfg.CAs.Invalidate()
	if err != nil {
		return errors.Join(revoked, fmt.Errorf("issue: disable CA %s: %w", c.Name, err))
	}
	s.cfg.Log.Warn("imported CA disabled: its offline root's CRL revokes it", "ca", c.Name, "id", c.ID, "err", revoked)
	return fmt.Errorf("%w (CA %s was imported as its root's CRL arrived, and is now disabled)", revoked, c.Name)
}

// signedHere returns the CA of this instance whose certificate issued cert
// (its subject is cert's issuer and its key verifies cert's signature), or
// nil when none did. A certificate whose path length that CA does not
// allow is refused.
func (s *Service) signedHere(ctx context.Context, cert *x509.Certificate) (*ca.CA, error) {
	cas, err := s.store.ListCAs(ctx)
	if err != nil {
		return nil, fmt.Errorf("issue: list CAs: %w", err)
	}
	for _, c := range cas {
		if c.Status == ca.StatusDeleted || c.Status == ca.StatusPending || len(c.CertDER) == 0 {
			continue
		}
		pc, err := s.parse(c)
		if err != nil || !bytes.Equal(cert.RawIssuer, pc.RawSubject) || cert.CheckSignatureFrom(pc) != nil {
			continue
		}
		if err := ca.CheckChild(pc, pathLenOf(cert), cert.NotAfter); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		return c, nil
	}
	return nil, nil
}

// pathLenOf is a CA certificate's path length as ca.Spec counts it: -1
// for none.
func pathLenOf(c *x509.Certificate) int {
	if c.MaxPathLen <= 0 && !c.MaxPathLenZero {
		return -1
	}
	return c.MaxPathLen
}

// ImportRoot records cert as an offline root: a root CA whose key this
// instance never holds (ca.OfflineKeyProvider). It never signs here; it
// stands at the top of the chains of the CAs it signed at its ceremony,
// and its CRL is the one uploaded (revoke.Service.ImportCRL).
func (s *Service) ImportRoot(ctx context.Context, p authz.Principal, name string, cert *x509.Certificate) (*ca.CA, error) {
	if err := p.Allow(authz.PermCAManage, authz.Resource{CAName: name}); err != nil {
		return nil, err
	}
	if err := ca.ValidateName(name); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	now := s.cfg.Clock.Now()
	if err := ca.CheckImportedRoot(cert, now); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	alg, err := pki.AlgorithmOf(cert.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	cas, err := s.store.ListCAs(ctx)
	if err != nil {
		return nil, fmt.Errorf("issue: list CAs: %w", err)
	}
	for _, c := range cas {
		if c.Name == name {
			return nil, fmt.Errorf("%w: a CA named %q already exists", ErrConflict, name)
		}
		if len(c.CertDER) == 0 {
			continue
		}
		if other, err := s.parse(c); err == nil && bytes.Equal(other.RawSubjectPublicKeyInfo, cert.RawSubjectPublicKeyInfo) {
			return nil, fmt.Errorf("%w: CA %s already has this certificate's key", ErrConflict, c.Name)
		}
	}
	id, err := newCAID()
	if err != nil {
		return nil, err
	}
	rec := &ca.CA{
		ID: id, Name: name, Kind: ca.KindRoot, External: true, Status: ca.StatusActive,
		Key:     keys.Ref{Provider: ca.OfflineKeyProvider, Algorithm: alg},
		CertDER: cert.Raw, CreatedAt: now, UpdatedAt: now,
	}
	ev := audit.New(p, now, "ca.import_root", rec.ID, map[string]any{
		"name": name, "subject": cert.Subject.String(), "serial": pki.SerialHex(cert.SerialNumber),
		"fingerprint": pki.Fingerprint(cert.Raw), "key_algorithm": alg, "not_after": cert.NotAfter.UTC(),
	})
	err = s.store.CreateCA(ctx, rec, ev)
	s.cfg.CAs.Invalidate()
	if err != nil {
		return nil, fmt.Errorf("issue: store CA %s: %w", name, err)
	}
	s.cfg.Log.Info("offline root imported", "ca", name, "id", id, "fingerprint", pki.Fingerprint(cert.Raw))
	return rec, nil
}

// PublicKey returns the public key of a CA; the private key never leaves.
func (s *Service) PublicKey(ctx context.Context, c *ca.CA) (crypto.PublicKey, error) {
	sg, err := s.caSigner(ctx, c)
	if err != nil {
		return nil, err
	}
	return sg.Public(), nil
}

// VerifyKeys loads every non-deleted CA's key once. It fails when the
// key-encryption key does not match, or a CA's key is not the key of its
// certificate, so a server never runs (or creates new keys) with the wrong
// KEK or a tampered CA record.
func (s *Service) VerifyKeys(ctx context.Context, cas []*ca.CA) error {
	for _, c := range cas {
		if c.Status == ca.StatusDeleted || c.Offline() {
			continue
		}
		if _, err := s.caSigner(ctx, c); err != nil {
			return fmt.Errorf("issue: CA %s: %w", c.Name, err)
		}
	}
	return nil
}

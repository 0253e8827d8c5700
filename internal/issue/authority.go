package issue

import (
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
	ref, signer, err := s.keys.Generate(ctx, spec.KeyAlg, keys.CAPurpose(id))
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
	ev := audit.New(p, s.cfg.Clock.Now(), "ca.create", rec.ID, map[string]any{"name": rec.Name, "kind": "root", "key_algorithm": spec.KeyAlg, "serial": pki.SerialHex(serial), "ca_key_use": "self-signature"})
	err = s.store.CreateCA(ctx, rec, ev)
	s.cfg.CAs.Invalidate()
	if err != nil {
		return nil, fmt.Errorf("issue: store CA %s: %w", spec.Name, err)
	}
	s.cfg.Log.Info("root CA created", "ca", rec.Name, "id", rec.ID, "key", spec.KeyAlg)
	return rec, nil
}

// CreateIntermediate creates a subordinate CA signed by parent, a CA of this instance.
func (s *Service) CreateIntermediate(ctx context.Context, p authz.Principal, parent string, spec *ca.Spec) (*ca.CA, error) {
	if err := s.checkNewCA(ctx, p, spec); err != nil {
		return nil, err
	}
	parentCA, err := s.store.GetCA(ctx, parent)
	if err != nil {
		return nil, fmt.Errorf("issue: parent CA %q: %w", parent, err)
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
	ref, signer, err := s.keys.Generate(ctx, spec.KeyAlg, keys.CAPurpose(id))
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
	ev := audit.New(p, s.cfg.Clock.Now(), "ca.create", rec.ID, map[string]any{"name": rec.Name, "kind": "intermediate", "parent": parentCA.Name, "parent_id": parentCA.ID, "key_algorithm": spec.KeyAlg, "serial": pki.SerialHex(serial), "ca_key_use": parentCA.ID})
	err = s.store.CreateCA(ctx, rec, ev)
	s.cfg.CAs.Invalidate()
	if err != nil {
		return nil, fmt.Errorf("issue: store CA %s: %w", spec.Name, err)
	}
	s.cfg.Log.Info("intermediate CA created", "ca", rec.Name, "id", rec.ID, "parent", parentCA.Name, "key", spec.KeyAlg)
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
	ref, signer, err := s.keys.Generate(ctx, spec.KeyAlg, keys.CAPurpose(id))
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
	ev := audit.New(p, s.cfg.Clock.Now(), "ca.create", rec.ID, map[string]any{"name": rec.Name, "kind": "external", "key_algorithm": spec.KeyAlg})
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
		return nil, fmt.Errorf("issue: CA %q: %w", idOrName, err)
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
	c.CertDER = cert.Raw
	c.ChainDER = nil
	for _, cc := range chain {
		c.ChainDER = append(c.ChainDER, cc.Raw)
	}
	c.Status = ca.StatusActive
	c.UpdatedAt = s.cfg.Clock.Now()
	ev := audit.New(p, c.UpdatedAt, "ca.import", c.ID, map[string]any{"name": c.Name, "fingerprint": pki.Fingerprint(cert.Raw)})
	err = s.store.UpdateCA(ctx, c, ev)
	s.cfg.CAs.Invalidate()
	if err != nil {
		return nil, fmt.Errorf("issue: store CA %s: %w", c.Name, err)
	}
	s.cfg.Log.Info("external CA certificate imported", "ca", c.Name, "id", c.ID)
	return c, nil
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
		if c.Status == ca.StatusDeleted {
			continue
		}
		if _, err := s.caSigner(ctx, c); err != nil {
			return fmt.Errorf("issue: CA %s: %w", c.Name, err)
		}
	}
	return nil
}

package issue

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/keys"
	"github.com/certwright/certwright/internal/pki"
)

// KeyStore is what handing out a retained managed key needs besides Store.
type KeyStore interface {
	GetCertificate(ctx context.Context, serial string) (*inventory.Certificate, error)
	AppendAudit(ctx context.Context, evs ...audit.Event) error
	// CredentialHolder returns the ID of the principal the certificate
	// serial was issued to as an mTLS client credential ("" for none).
	CredentialHolder(ctx context.Context, serial string) (string, error)
	// InstanceKeys returns the public keys of every CA, OCSP responder
	// and audit key: never a managed key.
	InstanceKeys(ctx context.Context) ([]crypto.PublicKey, error)
}

// ErrNotManagedCertificate means a certificate record that holds a managed
// key does not hold an end-entity certificate issued by its CA under its
// serial (the record was altered, say to a CA's own certificate).
var ErrNotManagedCertificate = errors.New("issue: the record's certificate is not an end-entity certificate issued by its CA under its serial")

// CheckManagedCertificate returns an error wrapping ErrNotManagedCertificate
// unless certDER is an end-entity (not CA) certificate with serial
// (lowercase hex, as stored) whose signature verifies under issuerDER, the
// certificate of the CA its record names.
func CheckManagedCertificate(certDER, issuerDER []byte, serial string) error {
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotManagedCertificate, err)
	}
	if cert.IsCA {
		return fmt.Errorf("%w: it is a CA certificate (%s)", ErrNotManagedCertificate, cert.Subject)
	}
	if want, ok := new(big.Int).SetString(serial, 16); !ok || want.Cmp(cert.SerialNumber) != 0 {
		return fmt.Errorf("%w: its serial is %s, the record's %s", ErrNotManagedCertificate, pki.SerialHex(cert.SerialNumber), serial)
	}
	if len(issuerDER) == 0 {
		return fmt.Errorf("%w: its CA has no certificate", ErrNotManagedCertificate)
	}
	issuer, err := x509.ParseCertificate(issuerDER)
	if err != nil {
		return fmt.Errorf("%w: its CA's certificate: %w", ErrNotManagedCertificate, err)
	}
	if err := cert.CheckSignatureFrom(issuer); err != nil {
		return fmt.Errorf("%w: not signed by its CA %s: %w", ErrNotManagedCertificate, issuer.Subject, err)
	}
	return nil
}

// ExportKey returns the retained managed key of certificate serial as a
// PKCS#8 PEM block. Only machine principals whose key:export covers the
// certificate get it; the server's own TLS key and CA keys never leave. The
// key of a principal's mTLS client credential goes only to that principal,
// or to an administrator who may enrol it (mayHoldCredential).
// The hand-out is audited before the key is returned.
func (s *Service) ExportKey(ctx context.Context, p authz.Principal, serial string) ([]byte, error) {
	cert, err := s.store.GetCertificate(ctx, serial)
	if err != nil {
		return nil, err
	}
	res := authz.Resource{CAID: cert.CAID, Profile: cert.Profile, Names: cert.SANs}
	var issuerDER []byte
	if c, err := s.store.GetCA(ctx, cert.CAID); err == nil {
		res.CAName, issuerDER = c.Name, c.CertDER
	}
	if err := p.Allow(authz.PermKeyExport, res); err != nil {
		return nil, err
	}
	if p.Kind != authz.KindMachine {
		return nil, authz.Refuse(authz.RuleMachineOnlyKey, "private keys are handed out to machine principals only; %s is %s", p.Name, p.Kind)
	}
	if cert.ServerOwned() {
		return nil, fmt.Errorf("%w: certificate %s belongs to the server itself; its key is never exported", ErrForbidden, serial)
	}
	if err := s.mayHoldCredential(ctx, p, serial); err != nil {
		return nil, err
	}
	if cert.ManagedKey == nil {
		return nil, fmt.Errorf("%w: the server kept no key for certificate %s (its profile's key_export is not retain, or the key came from a CSR)", ErrConflict, serial)
	}
	if cert.Revocation != nil {
		return nil, fmt.Errorf("%w: certificate %s is revoked; its key is not handed out", ErrConflict, serial)
	}
	exp, ok := s.keys.(keys.Exporter)
	if !ok {
		return nil, errors.New("issue: key provider cannot hand out managed keys")
	}
	details := map[string]any{"ca": res.CAName, "profile": cert.Profile, "key_id": cert.ManagedKey.ID}
	// Unwrapped for this certificate only and without the signer cache:
	// a key copied here from a CA, the server's TLS or another certificate
	// does not unwrap, and a key handed out is not kept in memory.
	der, err := exp.ExportPKCS8(ctx, *cert.ManagedKey, keys.ManagedPurpose(cert.Serial))
	if err == nil {
		err = s.checkExportable(ctx, der, cert, issuerDER)
	}
	if err != nil {
		clear(der)
		reason, what := "the stored key does not belong to this certificate", "not that certificate's key"
		switch {
		case errors.Is(err, keys.ErrInstanceKey):
			reason = "the stored key is one of the instance's own keys (a CA, OCSP responder or audit key)"
			what = "one of this instance's own keys (a CA, OCSP responder or audit key), never a managed key"
		case errors.Is(err, ErrNotManagedCertificate):
			reason = "the stored certificate is not an end-entity certificate issued by its CA"
			what = "held by a record whose certificate is not an end-entity certificate issued by its CA"
		case errors.Is(err, keys.ErrWrongKEK), errors.Is(err, keys.ErrKeyMismatch), errors.Is(err, keys.ErrLegacyFormat):
		default:
			return nil, fmt.Errorf("issue: unwrap managed key of %s: %w", serial, err)
		}
		details["reason"] = reason
		ev := audit.New(p, s.cfg.Clock.Now(), "key.export", serial, details)
		ev.Outcome = audit.Failed
		if aerr := s.store.AppendAudit(ctx, ev); aerr != nil {
			return nil, fmt.Errorf("issue: audit refused key hand-out of %s: %w", serial, aerr)
		}
		s.cfg.Log.Error("managed key NOT handed out: the database row was altered",
			"serial", serial, "principal", p.Name, "key_id", cert.ManagedKey.ID, "reason", reason, "err", err)
		return nil, fmt.Errorf("%w: the key stored for certificate %s is %s (its database record was altered); it is not handed out: %w", ErrConflict, serial, what, err)
	}
	defer clear(der)
	ev := audit.New(p, s.cfg.Clock.Now(), "key.export", serial, details)
	if err := s.store.AppendAudit(ctx, ev); err != nil {
		return nil, fmt.Errorf("issue: audit key hand-out of %s: %w", serial, err)
	}
	s.cfg.Log.Info("managed key handed out", "serial", serial, "principal", p.Name)
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// mayHoldCredential refuses who the key of certificate serial when that
// certificate is another principal's mTLS client credential: whoever holds
// the key authenticates as that principal. The key goes to the holder
// itself, or to an administrator who could have issued the credential
// (the enrolment rule: principal:manage everywhere and access.MayActOn).
func (s *Service) mayHoldCredential(ctx context.Context, who authz.Principal, serial string) error {
	holder, err := s.store.CredentialHolder(ctx, serial)
	if err != nil {
		return fmt.Errorf("issue: credential holder of %s: %w", serial, err)
	}
	if holder == "" || holder == who.ID {
		return nil
	}
	why, err := s.administers(ctx, who, holder)
	if err != nil {
		return fmt.Errorf("issue: credential holder of %s: %w", serial, err)
	}
	if why == "" {
		return nil
	}
	label := "another principal"
	if who.Can(authz.PermPrincipalRead) {
		if target, _, err := s.store.LoadPrincipal(ctx, holder); err == nil {
			label = "principal " + target.Name
		}
	}
	return fmt.Errorf("%w: certificate %s is the mTLS client credential of %s: whoever holds its key authenticates as that principal, so the key is handed out only to that principal itself, or to an administrator holding principal:manage and every permission that principal holds (rule: a credential's key goes only to its holder); %s",
		ErrForbidden, serial, label, why)
}

// checkExportable returns an error unless the PKCS#8 key der may be handed
// out as the managed key of cert: it is the private half of the
// certificate's public key (keys.ErrKeyMismatch), the certificate is an
// end-entity certificate issued by its CA (ErrNotManagedCertificate), and
// the key is none of the instance's own keys (keys.ErrInstanceKey) — the
// last two hold even if the record's certificate was replaced as well.
func (s *Service) checkExportable(ctx context.Context, der []byte, cert *inventory.Certificate, issuerDER []byte) error {
	c, err := x509.ParseCertificate(cert.DER)
	if err != nil {
		return fmt.Errorf("%w: parse certificate: %w", ErrNotManagedCertificate, err)
	}
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return fmt.Errorf("issue: parse managed key: %w", err)
	}
	sg, ok := key.(crypto.Signer)
	if !ok {
		return fmt.Errorf("issue: managed key is %T, not a signer", key)
	}
	if err := keys.CheckPublic(sg, c.PublicKey); err != nil {
		return err
	}
	if err := CheckManagedCertificate(cert.DER, issuerDER, cert.Serial); err != nil {
		return err
	}
	own, err := s.store.InstanceKeys(ctx)
	if err != nil {
		return fmt.Errorf("issue: the instance's own keys: %w", err)
	}
	return keys.CheckNotInstanceKey(sg.Public(), own)
}

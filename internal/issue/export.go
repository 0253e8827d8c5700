package issue

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/inventory"
)

// KeyStore is what handing out a retained managed key needs besides Store.
type KeyStore interface {
	GetCertificate(ctx context.Context, serial string) (*inventory.Certificate, error)
	AppendAudit(ctx context.Context, evs ...audit.Event) error
}

// ExportKey returns the retained managed key of certificate serial as a
// PKCS#8 PEM block. Only machine principals whose key:export covers the
// certificate get it; the server's own TLS key and CA keys never leave.
// The hand-out is audited before the key is returned.
func (s *Service) ExportKey(ctx context.Context, p authz.Principal, serial string) ([]byte, error) {
	cert, err := s.store.GetCertificate(ctx, serial)
	if err != nil {
		return nil, err
	}
	res := authz.Resource{CAID: cert.CAID, Profile: cert.Profile, Names: cert.SANs}
	if c, err := s.store.GetCA(ctx, cert.CAID); err == nil {
		res.CAName = c.Name
	}
	if err := p.Allow(authz.PermKeyExport, res); err != nil {
		return nil, err
	}
	if p.Kind != authz.KindMachine {
		return nil, fmt.Errorf("%w: private keys are handed out to machine principals only; %s is %s", ErrForbidden, p.Name, p.Kind)
	}
	if cert.ServerOwned() {
		return nil, fmt.Errorf("%w: certificate %s belongs to the server itself; its key is never exported", ErrForbidden, serial)
	}
	if cert.ManagedKey == nil {
		return nil, fmt.Errorf("%w: the server kept no key for certificate %s (its profile's key_export is not retain, or the key came from a CSR)", ErrConflict, serial)
	}
	if cert.Revocation != nil {
		return nil, fmt.Errorf("%w: certificate %s is revoked; its key is not handed out", ErrConflict, serial)
	}
	signer, err := s.keys.Signer(ctx, *cert.ManagedKey)
	if err != nil {
		return nil, fmt.Errorf("issue: unwrap managed key of %s: %w", serial, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(signer)
	if err != nil {
		return nil, fmt.Errorf("issue: encode managed key of %s: %w", serial, err)
	}
	ev := audit.New(p, s.cfg.Clock.Now(), "key.export", serial, map[string]any{
		"ca": res.CAName, "profile": cert.Profile, "key_id": cert.ManagedKey.ID,
	})
	if err := s.store.AppendAudit(ctx, ev); err != nil {
		return nil, fmt.Errorf("issue: audit key hand-out of %s: %w", serial, err)
	}
	s.cfg.Log.Info("managed key handed out", "serial", serial, "principal", p.Name)
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

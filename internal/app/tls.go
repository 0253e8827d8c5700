package app

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/issue"
	"github.com/certwright/certwright/internal/keys"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/store"
)

// settingServerTLS holds the serial of the server's current TLS certificate.
const settingServerTLS = "server_tls_serial"

// serverTLS keeps the server's own certificate, issued from the default CA
// through the normal issuance path, and renews it when a third of its life
// remains. The key is retained wrapped in the store so every replica can load it.
type serverTLS struct {
	app  *App
	cert atomic.Pointer[tls.Certificate]
	// names are the certificate's names (tls_names); a reload may replace them.
	names atomic.Pointer[[]string]
}

// tlsNames returns the names the server certificate is issued for.
func (s *serverTLS) tlsNames() []string {
	if n := s.names.Load(); n != nil {
		return *n
	}
	return s.app.cfg.TLSNames
}

func (s *serverTLS) issue(ctx context.Context) (*tls.Certificate, error) {
	return s.issueFrom(ctx, s.app.cfg.DefaultCA)
}

// issueFrom issues a new server certificate from CA caID (id or name) and
// records it as the one to serve.
func (s *serverTLS) issueFrom(ctx context.Context, caID string) (*tls.Certificate, error) {
	a := s.app
	names := s.tlsNames()
	req := issue.Request{
		Principal: authz.System(), CA: caID, Profile: "web_server",
		Subject:      pkix.Name{CommonName: names[0]},
		ValidityDays: a.cfg.TLSValidityDays, Tags: []string{"certwright-server"},
		RetainKey: true,
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			req.IPAddresses = append(req.IPAddresses, ip)
		} else {
			req.DNSNames = append(req.DNSNames, n)
		}
	}
	res, err := a.issuer.Issue(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("app: issue server TLS certificate: %w", err)
	}
	if err := a.store.PutSetting(ctx, settingServerTLS, []byte(res.Cert.Serial)); err != nil {
		return nil, fmt.Errorf("app: record server TLS certificate: %w", err)
	}
	a.log.Info("server TLS certificate issued", "serial", res.Cert.Serial, "not_after", res.Leaf.NotAfter)
	return tlsCertificate(res.Leaf, res.Key, res.Chain), nil
}

// tlsCertificate is what the listener serves: the leaf and the chain
// below the root (clients hold the root already).
func tlsCertificate(leaf *x509.Certificate, key crypto.Signer, chain []*x509.Certificate) *tls.Certificate {
	c := &tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}
	intermediates, _ := issue.SplitChain(chain)
	for _, cc := range intermediates {
		c.Certificate = append(c.Certificate, cc.Raw)
	}
	return c
}

// errServerCertRevoked: the stored server certificate was revoked (e.g.
// by an emergency rotation); refresh issues a new one.
var errServerCertRevoked = errors.New("revoked")

// load reads the current certificate from the store.
func (s *serverTLS) load(ctx context.Context) (*tls.Certificate, error) {
	a := s.app
	serial, err := a.store.GetSetting(ctx, settingServerTLS)
	if err != nil {
		return nil, err
	}
	rec, err := a.store.GetCertificate(ctx, string(serial))
	if err != nil {
		return nil, fmt.Errorf("app: server TLS certificate %s: %w", serial, err)
	}
	if rec.Revocation != nil {
		return nil, fmt.Errorf("app: server TLS certificate %s: %w", serial, errServerCertRevoked)
	}
	if rec.ManagedKey == nil {
		return nil, fmt.Errorf("app: server TLS certificate %s has no retained key", serial)
	}
	key, err := a.keys.Signer(ctx, *rec.ManagedKey, keys.ServerTLSPurpose(rec.Serial))
	if err != nil {
		return nil, fmt.Errorf("app: server TLS key: %w", err)
	}
	leaf, err := x509.ParseCertificate(rec.DER)
	if err != nil {
		return nil, fmt.Errorf("app: server TLS certificate: %w", err)
	}
	if err := keys.CheckPublic(key, leaf.PublicKey); err != nil {
		return nil, fmt.Errorf("app: server TLS certificate %s: %w", rec.Serial, err)
	}
	chain, err := a.issuer.Chain(ctx, rec.CAID)
	if err != nil {
		return nil, err
	}
	return tlsCertificate(leaf, key, chain), nil
}

// needsRenewal is true once less than a third of the lifetime remains.
func needsRenewal(leaf *x509.Certificate, now time.Time) bool {
	life := leaf.NotAfter.Sub(leaf.NotBefore)
	return now.After(leaf.NotAfter.Add(-life / 3))
}

// refresh loads the stored certificate (another replica may have renewed
// it) and renews it when due. With checkNames it also replaces a
// certificate whose names are not tls_names; the periodic refresh does
// not, so replicas configured with different names cannot take turns
// replacing each other's certificate (the replica registry refuses such a
// configuration anyway, agreement.go). A renewal or replacement is
// decided again under the server certificate's lock, so replicas starting
// or renewing together issue one certificate between them and the others
// load it.
func (s *serverTLS) refresh(ctx context.Context, checkNames bool) error {
	c, err := s.load(ctx)
	if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, errServerCertRevoked) {
		return err
	}
	if s.due(c, checkNames) {
		err = s.app.store.Exclusive(ctx, serverTLSLock, func(ctx context.Context) error {
			c, err = s.load(ctx)
			if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, errServerCertRevoked) {
				return err
			}
			if !s.due(c, checkNames) {
				return nil
			}
			old := c
			if c, err = s.issue(ctx); err != nil {
				return err
			}
			if old != nil && !needsRenewal(old.Leaf, s.app.clock.Now()) {
				s.app.log.Info("server TLS certificate re-issued because tls_names changed",
					"old_names", strings.Join(certNames(old.Leaf), ","), "names", strings.Join(s.tlsNames(), ","),
					"old_serial", pki.SerialHex(old.Leaf.SerialNumber), "serial", pki.SerialHex(c.Leaf.SerialNumber))
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	if old := s.cert.Load(); old == nil || old.Leaf.SerialNumber.Cmp(c.Leaf.SerialNumber) != 0 {
		s.cert.Store(c)
	}
	return nil
}

// due reports whether c (nil: none usable) must be replaced: missing,
// in the last third of its life, or, with checkNames, naming other names
// than tls_names.
func (s *serverTLS) due(c *tls.Certificate, checkNames bool) bool {
	return c == nil || needsRenewal(c.Leaf, s.app.clock.Now()) ||
		checkNames && !sameNames(certNames(c.Leaf), s.tlsNames())
}

// Reissue implements lifecycle.ServerCert for an emergency rotation that
// matched serial: if serial is the certificate being served, a new one
// (new key) is issued from toCA, or from serial's own CA, and served from
// the next handshake on. Other replicas load it at their next refresh.
func (s *serverTLS) Reissue(ctx context.Context, serial, toCA string) (next string, err error) {
	a := s.app
	// Under the lock refresh takes: one replica at a time replaces the
	// certificate, and one that waited finds it replaced already.
	err = a.store.Exclusive(ctx, serverTLSLock, func(ctx context.Context) error {
		cur, err := a.store.GetSetting(ctx, settingServerTLS)
		if err != nil {
			return fmt.Errorf("app: server TLS certificate: %w", err)
		}
		if string(cur) != serial {
			next = string(cur) // an older one, no longer served
			return nil
		}
		caID := toCA
		if caID == "" {
			rec, err := a.store.GetCertificate(ctx, serial)
			if err != nil {
				return fmt.Errorf("app: server TLS certificate %s: %w", serial, err)
			}
			caID = rec.CAID
		}
		c, err := s.issueFrom(ctx, caID)
		if err != nil {
			return err
		}
		s.cert.Store(c)
		next = pki.SerialHex(c.Leaf.SerialNumber)
		a.log.Warn("server TLS certificate replaced by an emergency rotation", "old_serial", serial, "serial", next)
		return nil
	})
	if err != nil {
		return "", err
	}
	return next, nil
}

// replaced reports whether the store names another certificate than the
// one served (one query).
func (s *serverTLS) replaced(ctx context.Context) bool {
	serial, err := s.app.store.GetSetting(ctx, settingServerTLS)
	c := s.cert.Load()
	return err == nil && c != nil && string(serial) != pki.SerialHex(c.Leaf.SerialNumber)
}

func (s *serverTLS) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c := s.cert.Load()
	if c == nil {
		return nil, errors.New("app: no server certificate loaded")
	}
	return c, nil
}

// tlsConfig is the server's TLS policy: TLS 1.2 minimum, 1.3 preferred, and
// for 1.2 only ECDHE with AES-GCM or ChaCha20-Poly1305 (SEC09's list).
func (s *serverTLS) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		CurvePreferences: []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256, tls.CurveP384},
		GetCertificate:   s.get,
		// Client certificates are requested, never required: the API
		// verifies them against this instance's CAs and revocations.
		ClientAuth: tls.RequestClientCert,
		NextProtos: []string{"h2", "http/1.1"},
	}
}

// certNames are the DNS names and IP addresses a certificate carries.
func certNames(c *x509.Certificate) []string {
	names := slices.Clone(c.DNSNames)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	return names
}

// sameNames compares two lists of host names and IP addresses as sets
// (case and IP spelling aside): the order changes nothing a client checks.
func sameNames(a, b []string) bool {
	return slices.Equal(normNames(a), normNames(b))
}

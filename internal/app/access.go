package app

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/store"
)

// clientCerts verifies mTLS client certificates against this instance's
// CAs and their revocations.
type clientCerts struct {
	store *store.DB

	mu      sync.Mutex
	builtAt time.Time
	gen     uint64 // store.CAGeneration when built
	roots   *x509.CertPool
	inter   *x509.CertPool
	byRaw   map[string]*ca.CA // CA certificate DER -> CA
}

// poolTTL bounds how long a new or disabled CA takes to count for mTLS
// should a change not move the store's CA generation (which every CA
// write, here or in another replica, does at once).
const poolTTL = 10 * time.Second

func (c *clientCerts) pools(ctx context.Context) (*x509.CertPool, *x509.CertPool, map[string]*ca.CA, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	gen := c.store.CAGeneration()
	if c.roots != nil && c.gen == gen && time.Since(c.builtAt) < poolTTL {
		return c.roots, c.inter, c.byRaw, nil
	}
	cas, err := c.store.ListCAs(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	roots, inter, byRaw := x509.NewCertPool(), x509.NewCertPool(), map[string]*ca.CA{}
	for _, a := range cas {
		if len(a.CertDER) == 0 || a.Status == ca.StatusDeleted || a.Status == ca.StatusPending {
			continue
		}
		cert, err := x509.ParseCertificate(a.CertDER)
		if err != nil {
			continue
		}
		byRaw[string(cert.Raw)] = a
		if a.Kind == ca.KindRoot {
			roots.AddCert(cert)
		} else {
			inter.AddCert(cert)
		}
	}
	c.roots, c.inter, c.byRaw, c.builtAt, c.gen = roots, inter, byRaw, time.Now(), gen
	return roots, inter, byRaw, nil
}

// VerifyClient checks that leaf chains to one of this instance's roots for
// client authentication, that every certificate in the chain below the
// root was issued here and is not revoked, and that its CAs are active.
func (c *clientCerts) VerifyClient(ctx context.Context, leaf *x509.Certificate, intermediates []*x509.Certificate, now time.Time) error {
	roots, inter, byRaw, err := c.pools(ctx)
	if err != nil {
		return fmt.Errorf("%w: %w", authz.ErrUnavailable, err)
	}
	pool := inter.Clone()
	for _, i := range intermediates {
		pool.AddCert(i)
	}
	chains, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil {
		return fmt.Errorf("does not chain to a CA of this server for client authentication: %w", err)
	}
	chain := chains[0]
	for i := 0; i+1 < len(chain); i++ {
		issuer := byRaw[string(chain[i+1].Raw)]
		if issuer == nil {
			return fmt.Errorf("issuer %q is not a CA of this server", chain[i+1].Subject)
		}
		if i == 0 && issuer.Status != ca.StatusActive && issuer.Status != ca.StatusDisabled {
			return fmt.Errorf("issuing CA %s is %s", issuer.Name, issuer.Status)
		}
		serial := pki.SerialHex(chain[i].SerialNumber)
		issued, rev, err := c.store.LookupSerial(ctx, issuer.ID, serial)
		if err != nil {
			return fmt.Errorf("%w: %w", authz.ErrUnavailable, err)
		}
		if rev != nil {
			return fmt.Errorf("certificate %s was revoked at %s (%s)", serial, rev.RevokedAt.Format(time.RFC3339), rev.Reason)
		}
		if i == 0 && !issued {
			return fmt.Errorf("certificate %s is not in this server's inventory", serial)
		}
	}
	if !bytes.Equal(chain[0].Raw, leaf.Raw) {
		return errors.New("verified chain does not start with the presented certificate")
	}
	return nil
}

// auditor is the API's view of the audit log: the store, plus
// verification with the key provider to authenticate the audit keys.
type auditor struct {
	*store.DB
	app *App
}

// Verify checks the chain, its checkpoints, and the checkpoints against
// the anchor kept in the data directory. The anchor is read first: a
// checkpoint signed meanwhile is in the database before it is anchored.
func (a auditor) Verify(ctx context.Context, p authz.Principal) (*audit.Report, error) {
	anchors, anchorErr := a.app.anchor.LoadAll(ctx)
	rep, err := audit.Verify(ctx, a.DB, a.app.keys, anchors...)
	if err != nil {
		return nil, err
	}
	if anchorErr != nil && rep.Problem == nil {
		rep.Intact = false
		rep.Problem = &audit.Problem{Seq: rep.LastCheckpoint, Kind: audit.KindAnchor, Message: fmt.Sprintf(
			"the external anchor cannot be read, so deleted checkpoints would go unnoticed: %v", anchorErr)}
	}
	// On the record: who verified, and what it found (the console's audit
	// page shows the newest).
	ev := audit.New(p, a.app.clock.Now(), audit.ActionVerify, audit.VerifyTarget, rep)
	if !rep.Intact {
		ev.Outcome = audit.Failed
	}
	if err := a.AppendAudit(ctx, ev); err != nil {
		return nil, fmt.Errorf("app: record the audit verification: %w", err)
	}
	return rep, nil
}

// auditStart records the server starting with the effective configuration's
// digest, so a configuration change between runs is on the record.
func (a *App) auditStart(ctx context.Context) error {
	b, err := yaml.Marshal(a.cfg)
	if err != nil {
		return fmt.Errorf("app: encode configuration: %w", err)
	}
	sum := sha256.Sum256(b)
	ev := audit.New(authz.System(), a.clock.Now(), "server.start", a.cfg.DataDir, map[string]any{
		"config_sha256": hex.EncodeToString(sum[:]), "https": a.cfg.HTTPSListen, "http": a.cfg.HTTPListen,
		"db": redactURL(DBURL(a.cfg)),
	})
	if err := a.store.AppendAudit(ctx, ev); err != nil {
		return fmt.Errorf("app: audit start: %w", err)
	}
	return nil
}

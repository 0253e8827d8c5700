package revoke

import (
	"context"
	"crypto/x509"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/keys"
	"github.com/certwright/certwright/internal/revoke/ocsp"
)

// caState is what the service keeps in memory for one CA: its certificate,
// its current CRL and its OCSP responder and response cache.
type caState struct {
	id     string
	name   string
	cert   *x509.Certificate
	key    keys.Ref
	issuer *ocsp.Issuer
	// offline: the CA's key is not held here (an imported offline root):
	// its CRL is the one uploaded, and it answers no OCSP request.
	offline bool

	crlMu sync.Mutex // serialises CRL generation
	crl   atomic.Pointer[CRL]

	// respLock (one slot) serialises responder rotation; a wait for it
	// ends with its context.
	respLock  chan struct{}
	responder atomic.Pointer[ocsp.Responder]

	presignMu sync.Mutex // one pre-signing pass at a time

	mu sync.RWMutex
	// cache holds pre-signed responses by cacheKey.
	cache map[string]*entry
	// epoch changes on every revocation under this CA; an on-demand
	// response signed from a lookup made in an older epoch is not cached.
	epoch uint64
	// passRevoked collects serials revoked while a pre-signing pass runs:
	// the pass reads a snapshot that may predate them.
	passRevoked map[string]bool
	// passVoid is set when every serial may have been revoked since the
	// running pass read its snapshot (forgetAll): it caches nothing more.
	passVoid bool
	// dropped is set once the service no longer holds this state
	// (CAsChanged): nothing more is cached in it.
	dropped bool
	// lastPresign is the clock time of the last completed pre-signing pass.
	lastPresign time.Time
	// unknown holds signed "unknown" answers for never-issued serials, by
	// cacheKey (unknown.go); under mu.
	unknown map[string]*entry

	children      childSet      // subordinate CA serials (unknown.go)
	unknownBudget unknownBudget // new "unknown" signatures (unknown.go)
}

// entry is one pre-signed OCSP response.
type entry struct {
	der    []byte
	etag   string
	this   int64 // Unix seconds
	next   int64
	status ocsp.Status
	// passN is the pre-signing pass that last saw the certificate.
	passN atomic.Uint64
}

func (e *entry) seen(pass uint64) { e.passN.Store(pass) }
func (e *entry) passSeen() uint64 { return e.passN.Load() }

// loaded returns the CA's state if it is in memory.
func (s *Service) loaded(caID string) *caState {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.cas[caID]
}

// state returns the CA's state, loading it on first use. Only a CA with a
// certificate signed and a key held here is served; caID must be the CA's
// ID, not its name, so each CA has one set of URLs.
func (s *Service) state(ctx context.Context, caID string) (*caState, error) {
	if st := s.loaded(caID); st != nil {
		return st, nil
	}
	// The CA list is short; reading it rather than one CA keeps "no such
	// CA" independent of how the store spells not-found.
	cas, err := s.store.ListCAs(ctx)
	if err != nil {
		return nil, fmt.Errorf("revoke: list CAs: %w", err)
	}
	var c *ca.CA
	for _, x := range cas {
		if x.ID == caID {
			c = x
		}
	}
	if c == nil || len(c.CertDER) == 0 || c.Status == ca.StatusPending {
		return nil, fmt.Errorf("%w: %s", ErrNoCA, caID)
	}
	cert, err := x509.ParseCertificate(c.CertDER)
	if err != nil {
		return nil, fmt.Errorf("revoke: parse certificate of CA %s: %w", c.Name, err)
	}
	iss, err := ocsp.NewIssuer(cert)
	if err != nil {
		return nil, fmt.Errorf("revoke: CA %s: %w", c.Name, err)
	}
	st := &caState{id: c.ID, name: c.Name, cert: cert, key: c.Key, issuer: iss, offline: c.Offline(), cache: map[string]*entry{}, unknown: map[string]*entry{},
		respLock: make(chan struct{}, 1)}
	s.mu.Lock()
	defer s.mu.Unlock()
	if have := s.cas[caID]; have != nil {
		return have, nil
	}
	s.cas[caID] = st
	return st, nil
}

// states loads every CA that revocation data is served for.
func (s *Service) states(ctx context.Context) ([]*caState, error) {
	cas, err := s.store.ListCAs(ctx)
	if err != nil {
		return nil, fmt.Errorf("revoke: list CAs: %w", err)
	}
	var out []*caState
	for _, c := range cas {
		if len(c.CertDER) == 0 || c.Status == ca.StatusPending {
			continue
		}
		st, err := s.state(ctx, c.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

package revoke

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"math/big"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"

	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/revoke/crl"
)

// CRL is a CA's current certificate revocation list.
type CRL struct {
	DER        []byte
	Number     int64
	ThisUpdate time.Time
	NextUpdate time.Time
	Entries    int
}

// CRL returns the current CRL of the CA with ID caID: the latest stored
// (by this process or another sharing the database), building one first
// when none is stored or the stored one is due. A CA this server does not
// serve is ErrNoCA.
func (s *Service) CRL(ctx context.Context, caID string) (*CRL, error) {
	st, err := s.state(ctx, caID)
	if err != nil {
		return nil, err
	}
	if c := st.crl.Load(); c != nil {
		return c, nil
	}
	return s.regenerate(ctx, st, false)
}

// RegenerateCRL builds and signs a new CRL for caID now, with the next CRL
// number, and returns it.
func (s *Service) RegenerateCRL(ctx context.Context, caID string) (*CRL, error) {
	st, err := s.state(ctx, caID)
	if err != nil {
		return nil, err
	}
	return s.regenerate(ctx, st, true)
}

// regenerate brings st's CRL up to date and returns it. Unless force is
// set, a new CRL is built only when the stored one (which may be another
// replica's) does not do: there is none, it is due for its scheduled
// refresh, revocations were recorded since it was built, or it does not
// verify under st's certificate. Otherwise the stored one is served.
// Across replicas the store lets one process at a time decide and build
// (Store.PublishCRL), so each CRL number is signed once.
func (s *Service) regenerate(ctx context.Context, st *caState, force bool) (_ *CRL, err error) {
	if st.offline {
		if force {
			return nil, fmt.Errorf("%w: CA %s is an offline root: its CRL is signed at its ceremony (certwright ceremony crl) and uploaded (certwright ca import-crl)", ErrInvalid, st.name)
		}
		return s.uploadedCRL(ctx, st)
	}
	st.crlMu.Lock()
	defer st.crlMu.Unlock()
	defer func() { s.noteCRL(ctx, st, err) }()
	stale := s.crlStale(s.cfg.Clock.Now())
	var loaded *CRL
	need := func(stored *StoredCRL, uncovered bool) bool {
		if force || stored == nil || uncovered {
			return true
		}
		c, err := s.checkCRL(st, stored)
		if err != nil {
			s.cfg.Log.Warn("stored CRL not used; building a new one", "ca", st.name, "number", stored.Number, "err", err)
			return true
		}
		if stale(c) {
			return true
		}
		loaded = c
		return false
	}
	start := time.Now()
	stored, built, err := s.store.PublishCRL(ctx, st.id, need, func(ctx context.Context, number int64, each func(time.Time, func(*inventory.Revocation) error) error) (*StoredCRL, audit.Event, error) {
		return s.buildCRL(ctx, st, number, each)
	})
	if err != nil {
		return nil, fmt.Errorf("revoke: CRL of CA %s: %w", st.name, err)
	}
	c := loaded
	if built {
		c = &CRL{DER: stored.DER, Number: stored.Number, ThisUpdate: stored.ThisUpdate, NextUpdate: stored.NextUpdate, Entries: stored.Entries}
		s.cfg.Log.Info("CRL generated", "ca", st.name, "number", c.Number, "entries", c.Entries,
			"bytes", len(c.DER), "took", time.Since(start).Round(time.Millisecond))
	}
	if c == nil {
		return nil, fmt.Errorf("revoke: CRL of CA %s: the store returned none", st.name)
	}
	return st.install(c), nil
}

// buildCRL builds and signs st's CRL numbered number from the revocations
// each lists. The number is allocated before the entries are read, so a
// higher number never carries older data than a lower one.
func (s *Service) buildCRL(ctx context.Context, st *caState, number int64, each func(time.Time, func(*inventory.Revocation) error) error) (*StoredCRL, audit.Event, error) {
	now := s.cfg.Clock.Now().UTC().Truncate(time.Second)
	hint := 0
	if cur := st.crl.Load(); cur != nil {
		hint = cur.Entries + cur.Entries/16
	}
	b := crl.NewBuilder(hint)
	var buf [32]byte
	err := each(now, func(r *inventory.Revocation) error {
		n := hex.DecodedLen(len(r.Serial))
		if n > len(buf) {
			return fmt.Errorf("serial %s is too long", r.Serial)
		}
		if _, err := hex.Decode(buf[:n], []byte(r.Serial)); err != nil {
			return fmt.Errorf("serial %q: %w", r.Serial, err)
		}
		return b.Add(crl.Entry{Serial: buf[:n], RevokedAt: r.RevokedAt, Reason: r.Reason, InvalidityDate: r.InvalidityDate})
	})
	if err != nil {
		return nil, audit.Event{}, fmt.Errorf("read revocations of CA %s: %w", st.name, err)
	}
	signer, err := s.caSigner(ctx, st)
	if err != nil {
		return nil, audit.Event{}, err
	}
	next := now.Add(s.timings().CRLLifetime)
	der, err := b.Sign(s.cfg.Rand, crl.Params{
		Issuer: st.cert, Signer: signer, Number: big.NewInt(number),
		ThisUpdate: now, NextUpdate: next,
	})
	if err != nil {
		return nil, audit.Event{}, fmt.Errorf("sign CRL of CA %s: %w", st.name, err)
	}
	// Every use of a CA key is audited; the store keeps the CRL only with
	// this event, in one transaction.
	ev := audit.New(authz.System(), now, "crl.sign", st.id, map[string]any{
		"ca": st.name, "ca_key": st.key.ID, "number": number, "entries": b.Len(), "next_update": next,
	})
	return &StoredCRL{Number: number, DER: der, ThisUpdate: now, NextUpdate: next, Entries: b.Len()}, ev, nil
}

// checkCRL parses a stored CRL of st's CA and checks its signature under
// st's certificate and its number.
func (s *Service) checkCRL(st *caState, stored *StoredCRL) (*CRL, error) {
	rl, err := x509.ParseRevocationList(stored.DER)
	if err != nil {
		return nil, fmt.Errorf("parse stored CRL %d: %w", stored.Number, err)
	}
	if err := rl.CheckSignatureFrom(st.cert); err != nil {
		return nil, fmt.Errorf("stored CRL %d is not signed by the CA's certificate: %w", stored.Number, err)
	}
	if rl.Number == nil || !rl.Number.IsInt64() || rl.Number.Int64() != stored.Number {
		return nil, fmt.Errorf("stored CRL %d carries number %v", stored.Number, rl.Number)
	}
	return &CRL{DER: stored.DER, Number: stored.Number, ThisUpdate: rl.ThisUpdate.UTC(), NextUpdate: rl.NextUpdate.UTC(), Entries: len(rl.RevokedCertificateEntries)}, nil
}

// install makes c st's current CRL unless a higher number is current
// already, and returns the current one.
func (st *caState) install(c *CRL) *CRL {
	for {
		cur := st.crl.Load()
		if cur != nil && cur.Number >= c.Number {
			return cur
		}
		if st.crl.CompareAndSwap(cur, c) {
			return c
		}
	}
}

// crlStale reports whether a CRL is due for its scheduled refresh: a third
// of its lifetime has passed, well before the half the seeds allow.
func (s *Service) crlStale(now time.Time) func(*CRL) bool {
	return func(c *CRL) bool {
		return !now.Before(c.ThisUpdate.Add(s.timings().CRLLifetime / 3))
	}
}

// markDirty asks for caID's CRL to be rebuilt after the coalescing delay.
func (s *Service) markDirty(caID string) {
	s.mu.Lock()
	s.dirtyCAs[caID] = true
	s.mu.Unlock()
	select {
	case s.dirty <- struct{}{}:
	default:
	}
}

// takeDirty returns and clears the set of CAs whose CRL must be rebuilt.
func (s *Service) takeDirty() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.dirtyCAs))
	for id := range s.dirtyCAs {
		out = append(out, id)
	}
	clear(s.dirtyCAs)
	return out
}

// rebuildDirty regenerates the CRL of every CA marked dirty.
func (s *Service) rebuildDirty(ctx context.Context) {
	for _, id := range s.takeDirty() {
		st, err := s.state(ctx, id)
		if err != nil {
			s.cfg.Log.Error("CRL regeneration failed", "ca", id, "err", err)
			continue
		}
		if _, err := s.regenerate(ctx, st, false); err != nil && ctx.Err() == nil {
			s.cfg.Log.Error("CRL regeneration failed", "ca", st.name, "err", err)
			s.markDirtyLater(id)
		}
	}
}

// markDirtyLater re-marks a CA whose rebuild failed without waking the
// loop at once; the next maintenance tick retries it.
func (s *Service) markDirtyLater(caID string) {
	s.mu.Lock()
	s.dirtyCAs[caID] = true
	s.mu.Unlock()
}

package revoke

import (
	"context"
	"encoding/hex"
	"fmt"
	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"math/big"
	"time"

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

// CRL returns the current CRL of the CA with ID caID, building the first
// one if none exists yet. A CA this server does not serve is ErrNoCA.
func (s *Service) CRL(ctx context.Context, caID string) (*CRL, error) {
	st, err := s.state(ctx, caID)
	if err != nil {
		return nil, err
	}
	if c := st.crl.Load(); c != nil {
		return c, nil
	}
	return s.regenerate(ctx, st, nil)
}

// RegenerateCRL builds and signs a new CRL for caID now, with the next CRL
// number, and returns it.
func (s *Service) RegenerateCRL(ctx context.Context, caID string) (*CRL, error) {
	st, err := s.state(ctx, caID)
	if err != nil {
		return nil, err
	}
	return s.regenerate(ctx, st, nil)
}

// regenerate builds a new CRL for st. When stale is non-nil, it does
// nothing if the current CRL is no longer stale (another caller already
// rebuilt it while this one waited).
func (s *Service) regenerate(ctx context.Context, st *caState, stale func(*CRL) bool) (_ *CRL, err error) {
	st.crlMu.Lock()
	defer st.crlMu.Unlock()
	defer func() { s.noteCRL(ctx, st, err) }()
	if cur := st.crl.Load(); cur != nil && stale != nil && !stale(cur) {
		return cur, nil
	}
	// The number is allocated before the entries are read, so a higher
	// number never carries older data than a lower one.
	number, err := s.store.NextCRLNumber(ctx, st.id)
	if err != nil {
		return nil, fmt.Errorf("revoke: CRL number for CA %s: %w", st.name, err)
	}
	start := time.Now()
	now := s.cfg.Clock.Now().UTC().Truncate(time.Second)
	hint := 0
	if cur := st.crl.Load(); cur != nil {
		hint = cur.Entries + cur.Entries/16
	}
	b := crl.NewBuilder(hint)
	var buf [32]byte
	err = s.store.EachRevoked(ctx, st.id, now, func(r *inventory.Revocation) error {
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
		return nil, fmt.Errorf("revoke: read revocations of CA %s: %w", st.name, err)
	}
	signer, err := s.caSigner(ctx, st)
	if err != nil {
		return nil, err
	}
	next := now.Add(s.timings().CRLLifetime)
	der, err := b.Sign(s.cfg.Rand, crl.Params{
		Issuer: st.cert, Signer: signer, Number: big.NewInt(number),
		ThisUpdate: now, NextUpdate: next,
	})
	if err != nil {
		return nil, fmt.Errorf("revoke: sign CRL of CA %s: %w", st.name, err)
	}
	c := &CRL{DER: der, Number: number, ThisUpdate: now, NextUpdate: next, Entries: b.Len()}
	// Every use of a CA key is audited; a CRL whose signature is not on
	// the record is not published.
	ev := audit.New(authz.System(), now, "crl.sign", st.id, map[string]any{
		"ca": st.name, "ca_key": st.key.ID, "number": number, "entries": c.Entries, "next_update": next,
	})
	if err := s.store.AppendAudit(ctx, ev); err != nil {
		return nil, fmt.Errorf("revoke: audit CRL %d of CA %s: %w", number, st.name, err)
	}
	st.crl.Store(c)
	s.cfg.Log.Info("CRL generated", "ca", st.name, "number", number, "entries", c.Entries,
		"bytes", len(der), "took", time.Since(start).Round(time.Millisecond))
	return c, nil
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
		if _, err := s.regenerate(ctx, st, nil); err != nil && ctx.Err() == nil {
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

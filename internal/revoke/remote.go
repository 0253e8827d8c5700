package revoke

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/inventory"
)

// Changes that other processes sharing the database commit reach this one
// through the store's notification bus, which the app wires to the methods
// below. Each is idempotent: a notice may arrive twice (once sent, once
// from the bus's periodic catch-up), and this process's own revocations
// may come back the same way.

// RemoteRevoked makes revocations recorded under caID by another process
// visible here, as a local revocation does: no response cached for those
// serials answers "good" any longer, none signed from a lookup made before
// is cached, up to maxResignRevoked revoked responses are signed again at
// once (more by a pre-signing pass), and the CA's CRL is brought up to
// date by whichever process gets to it first (PublishCRL). Responses that
// say revoked already are kept. A nil serials means "too many to list":
// every cached response of the CA but the revoked ones is dropped. A CA
// not loaded here has nothing cached, and is read afresh on first use.
func (s *Service) RemoteRevoked(ctx context.Context, caID string, serials []string) {
	st := s.loaded(caID)
	if st == nil {
		return
	}
	s.markDirty(caID)
	if serials == nil {
		st.forgetAll(s)
		s.requestWarm(caID)
		return
	}
	dropped := st.forget(s, serials, true)
	if len(dropped) > maxResignRevoked {
		s.requestWarm(caID)
		return
	}
	recs := make([]*inventory.Revocation, 0, len(dropped))
	for _, serial := range dropped {
		r, err := s.store.GetRevocation(ctx, serial)
		if err != nil {
			// Dropped all the same: the next request signs it on demand.
			s.cfg.Log.Warn("OCSP: read a revocation recorded elsewhere", "ca", st.name, "serial", serial, "err", err)
			continue
		}
		if r.CAID == caID {
			recs = append(recs, r)
		}
	}
	st.presignRevoked(ctx, s, recs)
}

// RemoteResync is RemoteRevoked with "too many to list" for every CA
// loaded here: what other processes revoked may have been missed beyond
// what the bus can tell (its listener reconnected, or the database went
// back in time), so no cached response but the revoked ones is kept, and
// each CA's CRL is checked against the revocations recorded.
func (s *Service) RemoteResync(ctx context.Context) {
	s.mu.RLock()
	ids := slices.Collect(maps.Keys(s.cas))
	s.mu.RUnlock()
	for _, id := range ids {
		s.RemoteRevoked(ctx, id, nil)
	}
}

// RemoteCRL serves caID's stored CRL from now on if it is newer than the
// one served here (another process built it). Only a CA already serving a
// CRL takes it: the first CRL a process serves goes through regenerate,
// which checks that the stored one lists every revocation recorded (a
// process may have stopped between a revocation and its rebuild), and the
// CRL a notice announces was built under the same check.
func (s *Service) RemoteCRL(ctx context.Context, caID string) error {
	st := s.loaded(caID)
	if st == nil || st.crl.Load() == nil {
		return nil
	}
	stored, err := s.store.LatestCRL(ctx, caID)
	if err != nil {
		return fmt.Errorf("revoke: load the CRL of CA %s: %w", st.name, err)
	}
	if stored == nil {
		return nil
	}
	if cur := st.crl.Load(); cur != nil && cur.Number >= stored.Number {
		return nil
	}
	c, err := s.checkCRL(st, stored)
	if err != nil {
		return fmt.Errorf("revoke: CA %s: %w", st.name, err)
	}
	st.install(c)
	return nil
}

// CAsChanged drops what is held in memory for CAs whose record changed
// (caID, or every CA when empty), most likely in another process: a CA
// gone, renamed, or with another certificate or key is loaded afresh on
// next use, its OCSP responses and CRL with it (from the store).
func (s *Service) CAsChanged(ctx context.Context, caID string) error {
	cas, err := s.store.ListCAs(ctx)
	if err != nil {
		return fmt.Errorf("revoke: list CAs: %w", err)
	}
	byID := make(map[string]*ca.CA, len(cas))
	for _, c := range cas {
		byID[c.ID] = c
	}
	var dropped []*caState
	s.mu.Lock()
	for id, st := range s.cas {
		if caID != "" && id != caID {
			continue
		}
		if c := byID[id]; c != nil && st.sameRecord(c) {
			continue
		}
		delete(s.cas, id)
		dropped = append(dropped, st)
	}
	s.mu.Unlock()
	for _, st := range dropped {
		st.mu.Lock()
		st.dropped = true
		s.cached.Add(-int64(len(st.cache)))
		s.unknownCached.Add(-int64(len(st.unknown)))
		clear(st.cache)
		clear(st.unknown)
		st.mu.Unlock()
		s.cfg.Log.Info("CA changed elsewhere; its revocation data is loaded again", "ca", st.name, "id", st.id)
	}
	return nil
}

// sameRecord reports whether c is still the CA st was loaded from.
func (st *caState) sameRecord(c *ca.CA) bool {
	return c.Name == st.name && len(c.CertDER) > 0 && c.Status != ca.StatusPending && bytes.Equal(c.CertDER, st.cert.Raw) &&
		c.Key.Provider == st.key.Provider && c.Key.ID == st.key.ID && c.Key.Algorithm == st.key.Algorithm &&
		bytes.Equal(c.Key.Blob, st.key.Blob)
}

package revoke

import (
	"context"
	"sync"
	"time"

	"github.com/certwright/certwright/internal/recovery"
)

// tick is how often the background loops look for scheduled work; what is
// due is decided on the service's clock.
const tick = time.Minute

// Run keeps revocation data current until ctx ends: CRLs rebuilt after
// revocations (coalesced) and before a third of their lifetime has passed,
// OCSP responders rotated, and OCSP responses pre-signed and refreshed.
func (s *Service) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); s.runCRLs(ctx) }()
	go func() { defer wg.Done(); s.runOCSP(ctx) }()
	wg.Wait()
	return nil
}

// Loaded is closed once Run has made its first pass over the CAs' CRLs:
// each CA's state loaded and its stored CRL taken (or a new one signed,
// or the failure logged). Until then a replica is not ready to serve
// revocation data (README "Several replicas").
func (s *Service) Loaded() <-chan struct{} { return s.firstPass }

// guard runs one step of a background loop: a panic in it (one bad
// record) is logged with its stack and the loop goes on, so revocation
// serving never stops with it.
func (s *Service) guard(what string, f func()) {
	recovery.Do(s.cfg.Log, what, f)
}

func (s *Service) runCRLs(ctx context.Context) {
	t := time.NewTicker(tick)
	defer t.Stop()
	s.guard("CRL maintenance", func() { s.MaintainCRLs(ctx) })
	s.firstPassOnce.Do(func() { close(s.firstPass) })
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.dirty:
			// Let a burst of revocations land, then rebuild once.
			select {
			case <-ctx.Done():
				return
			case <-time.After(s.cfg.Coalesce):
			}
			s.guard("CRL rebuild", func() { s.rebuildDirty(ctx) })
		case <-t.C:
			s.guard("CRL maintenance", func() { s.MaintainCRLs(ctx) })
		}
	}
}

func (s *Service) runOCSP(ctx context.Context) {
	t := time.NewTicker(tick)
	defer t.Stop()
	s.guard("OCSP maintenance", func() { s.MaintainOCSP(ctx) })
	for {
		select {
		case <-ctx.Done():
			return
		case id := <-s.warm:
			s.guard("OCSP pre-signing", func() {
				if _, err := s.Presign(ctx, id); err != nil && ctx.Err() == nil {
					s.cfg.Log.Error("OCSP pre-signing failed", "ca", id, "err", err)
				}
			})
		case <-t.C:
			s.guard("OCSP maintenance", func() { s.MaintainOCSP(ctx) })
		}
	}
}

// MaintainCRLs builds the CRL of every CA that has none, is marked dirty,
// or is due for its scheduled refresh. Errors are logged; the next call
// retries.
func (s *Service) MaintainCRLs(ctx context.Context) {
	sts, err := s.states(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.cfg.Log.Error("CRL maintenance", "err", err)
		}
		return
	}
	s.rebuildDirty(ctx)
	stale := s.crlStale(s.cfg.Clock.Now())
	for _, st := range sts {
		// An offline root's CRL is read again every pass (one query): the
		// check of its nextUpdate is what warns that a ceremony is due.
		if c := st.crl.Load(); c != nil && !stale(c) && !st.offline {
			continue
		}
		if _, err := s.regenerate(ctx, st, false); err != nil && ctx.Err() == nil {
			s.cfg.Log.Error("scheduled CRL regeneration failed", "ca", st.name, "err", err)
		}
	}
}

// MaintainOCSP rotates responders that are due, runs a pre-signing pass
// for every CA whose last pass is a quarter of the response lifetime old,
// and destroys the retired responder keys whose grace has passed.
func (s *Service) MaintainOCSP(ctx context.Context) {
	defer s.destroyRetired(ctx)
	sts, err := s.states(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.cfg.Log.Error("OCSP maintenance", "err", err)
		}
		return
	}
	now := s.cfg.Clock.Now()
	for _, st := range sts {
		if st.offline {
			continue
		}
		_, err := s.responder(ctx, st)
		s.noteResponder(ctx, st, err)
		if err != nil {
			if ctx.Err() == nil {
				s.cfg.Log.Error("OCSP responder rotation failed", "ca", st.name, "err", err)
			}
			continue
		}
		st.mu.RLock()
		last := st.lastPresign
		st.mu.RUnlock()
		if !last.IsZero() && now.Sub(last) < s.timings().OCSPLifetime/4 {
			continue
		}
		if _, err := s.presign(ctx, st); err != nil && ctx.Err() == nil {
			s.cfg.Log.Error("OCSP pre-signing failed", "ca", st.name, "err", err)
		}
	}
}

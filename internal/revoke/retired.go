package revoke

import (
	"context"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/keys"
)

// RetiredKeyGrace is how long a replaced OCSP responder key is kept in
// its provider before it is destroyed: another replica holds the old
// responder until its own clock says the responder is due, and signs
// with it until then. The replaced certificate is still valid, and so
// are the answers it signed.
const RetiredKeyGrace = time.Hour

// keyDestroyer is the part of the key provider (keys.Router) that
// destroys a key in the provider that holds it, and says whether that
// provider destroys keys at all.
type keyDestroyer interface {
	Destroy(ctx context.Context, ref keys.Ref, purpose keys.Purpose) (destroyed bool, err error)
}

// endsWithRecord reports whether ref's key ends with the record holding
// it: its provider exports, so the key is wrapped in the record (a
// software key). A key of a provider that keeps its keys (a token), or
// of one not configured, must be destroyed in its provider.
func (s *Service) endsWithRecord(ref keys.Ref) bool {
	p, ok := s.keys.(keyPlacer)
	if !ok {
		return true
	}
	c, err := p.CapabilitiesOf(ref)
	return err == nil && c.Exportable
}

// discardKey destroys a key nobody else knows of (a responder key whose
// responder was not issued). A failure is logged with what to remove.
func (s *Service) discardKey(ctx context.Context, ref keys.Ref, purpose keys.Purpose, caName string) {
	d, ok := s.keys.(keyDestroyer)
	if !ok {
		return
	}
	if _, err := d.Destroy(context.WithoutCancel(ctx), ref, purpose); err != nil {
		s.cfg.Log.Error("unused OCSP responder key not destroyed: remove it from its provider", "ca", caName,
			"key_provider", ref.Provider, "key_id", ref.ID, "label", string(ref.Blob), "err", err)
	}
}

// destroyRetired destroys, in their providers, the retired keys whose
// grace has passed, and deletes their rows; a software key's row goes at
// once, as its key ended with its record. A key that cannot be destroyed
// now (the token is away) is logged and kept for the next pass: nothing
// here stops revocation serving.
func (s *Service) destroyRetired(ctx context.Context) {
	list, err := s.store.RetiredKeys(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.cfg.Log.Error("retired keys: list", "err", err)
		}
		return
	}
	d, _ := s.keys.(keyDestroyer)
	now := s.cfg.Clock.Now()
	for _, k := range list {
		if ctx.Err() != nil {
			return
		}
		destroyed := false
		if !s.endsWithRecord(k.Key) {
			if now.Before(k.RetiredAt.Add(RetiredKeyGrace)) {
				continue
			}
			if d != nil {
				if destroyed, err = d.Destroy(ctx, k.Key, k.Purpose); err != nil {
					s.cfg.Log.Warn("retired key not destroyed; retrying at the next maintenance pass", "purpose", string(k.Purpose),
						"key_provider", k.Key.Provider, "key_id", k.Key.ID, "retired_at", k.RetiredAt, "err", err)
					continue
				}
			}
		}
		var ev *audit.Event
		if destroyed {
			e := audit.New(authz.System(), now, "key.destroy", string(k.Purpose), map[string]any{
				"key_provider": k.Key.Provider, "key_id": k.Key.ID, "key_algorithm": string(k.Key.Algorithm), "retired_at": k.RetiredAt,
			})
			ev = &e
		}
		if err := s.store.DeleteRetiredKey(ctx, k.Key, ev); err != nil {
			s.cfg.Log.Error("retired key: delete its record", "purpose", string(k.Purpose), "key_id", k.Key.ID, "err", err)
			continue
		}
		if destroyed {
			s.cfg.Log.Info("retired key destroyed", "purpose", string(k.Purpose), "key_provider", k.Key.Provider, "key_id", k.Key.ID)
		}
	}
}

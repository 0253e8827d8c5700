package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/recovery"
	"github.com/certwright/certwright/internal/revoke"
)

// RotationStore keeps rotations.
type RotationStore interface {
	EachMatching(ctx context.Context, sel inventory.Selector, now time.Time, fn func(*inventory.Certificate) error) error
	CreateRotation(ctx context.Context, r *Rotation, items []RotationItem, ev audit.Event) error
	GetRotation(ctx context.Context, id string) (*Rotation, []RotationItem, error)
	ListRotations(ctx context.Context, runningOnly bool, limit int) ([]*Rotation, error)
	// UpdateRotationItem records it if its status is still from;
	// ErrElsewhere when another replica moved it on.
	UpdateRotationItem(ctx context.Context, rotationID string, it RotationItem, from string) error
	FinishRotation(ctx context.Context, id string, at time.Time, ev audit.Event) error
}

// maxRotationItems bounds one rotation; split larger ones by profile.
const maxRotationItems = 100000

// RotationRequest starts an emergency rotation.
type RotationRequest struct {
	Principal authz.Principal
	Selector  inventory.Selector
	// ToCA re-issues from another CA (e.g. a new intermediate); empty keeps
	// each certificate's own.
	ToCA string
	// Reason for revoking the old certificates (default superseded; a
	// key selector defaults to keyCompromise).
	Reason string
	// Grace is how long the old certificates stay valid (default 24h).
	Grace time.Duration
}

// StartRotation records a rotation of every valid certificate the selector
// matches: those the server holds the key of (or may reuse it) are
// re-issued by the rotation job; the rest are marked for renewal now, so
// agents and ACME clients (ARI) replace them. After the grace period the
// old certificates are revoked. It needs cert:issue and cert:revoke over
// every certificate.
func (s *Service) StartRotation(ctx context.Context, req RotationRequest) (*Rotation, []RotationItem, error) {
	if req.Selector.Empty() {
		return nil, nil, fmt.Errorf("%w: name what to rotate: --ca, --profile or --key-spki", ErrInvalid)
	}
	if req.Reason == "" {
		req.Reason = pki.ReasonSuperseded.String()
		if req.Selector.SPKISHA256 != "" {
			req.Reason = pki.ReasonKeyCompromise.String()
		}
	}
	reason, err := pki.ParseReason(req.Reason)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if req.Grace == 0 {
		req.Grace = 24 * time.Hour
	}
	if req.Grace < 0 || req.Grace > 90*24*time.Hour {
		return nil, nil, fmt.Errorf("%w: grace period %v: want 0s to 90d", ErrInvalid, req.Grace)
	}
	var toCA *ca.CA
	if req.ToCA != "" {
		c, err := s.store.GetCA(ctx, req.ToCA)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: --to-ca %s: %w", ErrInvalid, req.ToCA, err)
		}
		if err := c.CanIssue(); err != nil {
			return nil, nil, fmt.Errorf("%w: --to-ca %s: %w", ErrInvalid, req.ToCA, err)
		}
		req.ToCA, toCA = c.ID, c
	}
	now := s.cfg.Clock.Now().UTC()
	id, err := s.newID()
	if err != nil {
		return nil, nil, err
	}
	var items []RotationItem
	caNames := map[string]string{}
	// The same set cert revoke-bulk would revoke: every unexpired,
	// unrevoked match, including certificates already renewed (their key
	// or CA is what is being rotated away from) and the server's own.
	err = s.store.EachMatching(ctx, req.Selector, now, func(c *inventory.Certificate) error {
		if len(items) >= maxRotationItems {
			return fmt.Errorf("%w: more than %d certificates match; rotate them in parts (add --profile)", ErrInvalid, maxRotationItems)
		}
		name, ok := caNames[c.CAID]
		if !ok {
			name = s.caName(ctx, c.CAID)
			caNames[c.CAID] = name
		}
		res := authz.Resource{CAID: c.CAID, CAName: name, Profile: c.Profile, Names: c.SANs}
		if err := req.Principal.Allow(authz.PermCertRevoke, res); err != nil {
			return fmt.Errorf("certificate %s: %w", c.Serial, err)
		}
		if err := req.Principal.Allow(authz.PermCertIssue, res); err != nil {
			return fmt.Errorf("certificate %s: %w", c.Serial, err)
		}
		// The replacement comes from --to-ca: the rotating principal must
		// be allowed to issue this certificate's profile and names there.
		if toCA != nil {
			to := authz.Resource{CAID: toCA.ID, CAName: toCA.Name, Profile: c.Profile, Names: c.SANs}
			if err := req.Principal.Allow(authz.PermCertIssue, to); err != nil {
				return fmt.Errorf("certificate %s (profile %s) cannot be re-issued from --to-ca %s: %w", c.Serial, c.Profile, toCA.Name, err)
			}
		}
		method := MethodSignal
		// A compromised key is never certified again: only a server-held
		// key is replaced by the server.
		switch {
		case c.ServerOwned():
			method = MethodServer
		case c.ManagedKey != nil || (c.AutoRenew && req.Selector.SPKISHA256 == ""):
			method = MethodReissue
		}
		items = append(items, RotationItem{Serial: c.Serial, Method: method, Status: ItemPending, UpdatedAt: now})
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if len(items) == 0 {
		return nil, nil, fmt.Errorf("%w: no valid certificate matches the selector", ErrInvalid)
	}
	r := &Rotation{ID: id, Selector: req.Selector, ToCA: req.ToCA, Reason: reason.String(), Grace: req.Grace,
		Status: RotationRunning, CreatedBy: req.Principal.Name, CreatedAt: now}
	reissue := 0
	for _, it := range items {
		if it.Method == MethodReissue {
			reissue++
		}
	}
	ev := audit.New(req.Principal, now, "rotation.start", id, map[string]any{
		"selector": req.Selector, "to_ca": req.ToCA, "reason": r.Reason, "grace": req.Grace.String(),
		"certificates": len(items), "reissue": reissue, "signal": len(items) - reissue,
	})
	if err := s.store.CreateRotation(ctx, r, items, ev); err != nil {
		return nil, nil, err
	}
	s.cfg.Log.Info("rotation started", "id", id, "certificates", len(items), "reissue", reissue, "by", req.Principal.Name)
	return r, items, nil
}

// revokeRest revokes every certificate of the key rotation r rotates away
// from that is still valid, and returns how many could not be revoked.
func (s *Service) revokeRest(ctx context.Context, r *Rotation, now time.Time, reason pki.Reason) (int, error) {
	var rest []string
	err := s.store.EachMatching(ctx, inventory.Selector{SPKISHA256: r.Selector.SPKISHA256}, now, func(c *inventory.Certificate) error {
		if len(rest) >= maxRotationItems {
			return fmt.Errorf("more than %d certificates of the key", maxRotationItems)
		}
		rest = append(rest, c.Serial)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("lifecycle: rotation %s: certificates of the key: %w", r.ID, err)
	}
	failed := 0
	for _, serial := range rest {
		if _, _, err := s.revoker.Revoke(ctx, revoke.Request{Principal: authz.System(), Serial: serial, Reason: reason}); err != nil {
			s.cfg.Log.Error("rotation: revoking a certificate of the rotated key failed", "rotation", r.ID, "serial", serial, "err", err)
			failed++
			continue
		}
		s.cfg.Log.Warn("rotation: revoked a certificate of the rotated key issued as the rotation started", "rotation", r.ID, "serial", serial)
	}
	return failed, nil
}

// unfitSuccessor returns the certificate that renewed c when it is no
// replacement in rotation r, and why: it certifies the key a rotation by
// key rotates away from, or it comes from c's own CA when the rotation
// re-issues from another (--to-ca). A successor already revoked is nil.
func (s *Service) unfitSuccessor(ctx context.Context, r *Rotation, c *inventory.Certificate) (*inventory.Certificate, string, error) {
	next, err := s.store.GetCertificate(ctx, c.RenewedBy)
	if err != nil {
		return nil, "", fmt.Errorf("lifecycle: successor %s of %s: %w", c.RenewedBy, c.Serial, err)
	}
	switch {
	case next.Revocation != nil:
	case r.Selector.SPKISHA256 != "" && strings.EqualFold(next.SPKISHA256, r.Selector.SPKISHA256):
		return next, "it certifies the same key", nil
	case r.ToCA != "" && next.CAID != r.ToCA && next.CAID == c.CAID:
		return next, "it comes from the CA being rotated away from", nil
	}
	return nil, "", nil
}

// reissueServerCert replaces the server's TLS certificate if serial is the
// one served, and returns the serial served now.
func (s *Service) reissueServerCert(ctx context.Context, serial, toCA string) (string, error) {
	if s.cfg.ServerCert == nil {
		return "", fmt.Errorf("lifecycle: certificate %s is the server's own, and this process cannot replace it", serial)
	}
	next, err := s.cfg.ServerCert.Reissue(ctx, serial, toCA)
	if err != nil {
		return "", fmt.Errorf("lifecycle: re-issue the server's TLS certificate %s: %w", serial, err)
	}
	if next == serial {
		return "", fmt.Errorf("lifecycle: the server still serves TLS certificate %s", serial)
	}
	return next, nil
}

// maxListVisibilityChecks bounds the certificates one rotation listing
// looks up to decide what a scoped caller may see.
const maxListVisibilityChecks = 20000

// ErrNotVisible marks a rotation none of whose certificates is within the
// caller's scope: to that caller it does not exist.
var ErrNotVisible = errors.New("lifecycle: not found")

// Rotation returns a rotation and the items the caller may see: those whose
// certificate its cert:read or cert:revoke covers. A rotation with none is
// ErrNotVisible, unless the caller started it.
func (s *Service) Rotation(ctx context.Context, p authz.Principal, id string) (*Rotation, []RotationItem, error) {
	if !p.Can(authz.PermCertRead) && !p.Can(authz.PermCertRevoke) {
		return nil, nil, authz.Refuse(authz.RuleRole, "%s has no role granting %s", p.Name, authz.PermCertRead)
	}
	r, items, err := s.store.GetRotation(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if rotationSeesAll(p) {
		return r, items, nil
	}
	caNames := map[string]string{}
	var shown []RotationItem
	for _, it := range items {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		if s.itemVisible(ctx, p, it.Serial, caNames) {
			shown = append(shown, it)
		}
	}
	if len(shown) == 0 && r.CreatedBy != p.Name {
		return nil, nil, fmt.Errorf("%w: rotation %s", ErrNotVisible, id)
	}
	return r, shown, nil
}

// rotationSeesAll reports whether p's cert:read or cert:revoke is unscoped.
func rotationSeesAll(p authz.Principal) bool {
	return p.Allow(authz.PermCertRead, authz.Resource{}) == nil || p.Allow(authz.PermCertRevoke, authz.Resource{}) == nil
}

// itemVisible reports whether p's cert:read or cert:revoke covers the
// certificate serial (false when it cannot be read).
func (s *Service) itemVisible(ctx context.Context, p authz.Principal, serial string, caNames map[string]string) bool {
	c, err := s.store.GetCertificate(ctx, serial)
	if err != nil {
		return false
	}
	name, ok := caNames[c.CAID]
	if !ok {
		name = s.caName(ctx, c.CAID)
		caNames[c.CAID] = name
	}
	res := authz.Resource{CAID: c.CAID, CAName: name, Profile: c.Profile, Names: c.SANs}
	return p.Allow(authz.PermCertRead, res) == nil || p.Allow(authz.PermCertRevoke, res) == nil
}

// Rotations lists recent rotations: for a scoped caller, those it started
// or with at least one certificate within its scope.
func (s *Service) Rotations(ctx context.Context, p authz.Principal) ([]*Rotation, error) {
	if !p.Can(authz.PermCertRead) && !p.Can(authz.PermCertRevoke) {
		return nil, authz.Refuse(authz.RuleRole, "%s has no role granting %s", p.Name, authz.PermCertRead)
	}
	rs, err := s.store.ListRotations(ctx, false, 100)
	if err != nil || rotationSeesAll(p) {
		return rs, err
	}
	caNames := map[string]string{}
	out := rs[:0:0]
	budget := maxListVisibilityChecks
	for _, r := range rs {
		if r.CreatedBy == p.Name {
			out = append(out, r)
			continue
		}
		if budget <= 0 {
			continue // fail closed: not shown rather than unbounded work
		}
		_, items, err := s.store.GetRotation(ctx, r.ID)
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if budget--; budget < 0 {
				s.cfg.Log.Warn("rotation list: visibility check budget spent; older rotations not shown to a scoped caller",
					"principal", p.Name, "budget", maxListVisibilityChecks)
				break
			}
			if s.itemVisible(ctx, p, it.Serial, caNames) {
				out = append(out, r)
				break
			}
		}
	}
	return out, nil
}

// ProcessRotations advances every running rotation: re-issues pending
// reissue items, notices signal items their holders replaced, and after
// the grace period revokes the old certificates and finishes. It is
// idempotent, so an interrupted rotation resumes where it stopped.
func (s *Service) ProcessRotations(ctx context.Context) (int, error) {
	rs, err := s.store.ListRotations(ctx, true, 100)
	if err != nil {
		return 0, fmt.Errorf("lifecycle: rotations: %w", err)
	}
	var errs []error
	for _, r := range rs {
		// One rotation's bad record does not hold up the others.
		if err := recovery.CallLogged(s.cfg.Log, "rotation "+r.ID, func() error { return s.processRotation(ctx, r) }); err != nil {
			errs = append(errs, fmt.Errorf("rotation %s: %w", r.ID, err))
		}
	}
	return len(rs), errors.Join(errs...)
}

func (s *Service) processRotation(ctx context.Context, r *Rotation) error {
	_, items, err := s.store.GetRotation(ctx, r.ID)
	if err != nil {
		return err
	}
	now := s.cfg.Clock.Now().UTC()
	revokeNow := !now.Before(r.RevokeAt())
	reason, _ := pki.ParseReason(r.Reason)
	open := 0
	for _, it := range items {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if it.Status == ItemRevoked || it.Status == ItemFailed && revokeNow {
			continue
		}
		from, changed := it.Status, false
		var unfit *inventory.Certificate // a successor that does not replace the item
		if it.Status == ItemPending {
			c, err := s.store.GetCertificate(ctx, it.Serial)
			if err == nil && c.RenewedBy != "" {
				var why string
				if unfit, why, err = s.unfitSuccessor(ctx, r, c); err == nil && unfit != nil {
					if msg := fmt.Sprintf("renewed by %s, which does not replace it: %s; revoked with it", unfit.Serial, why); it.Error != msg {
						it.Error, changed = msg, true
					}
				}
			}
			switch {
			case err != nil:
				it.Error, changed = err.Error(), true
			case unfit != nil:
				// Stays pending: its holder must replace it properly
				// before the grace period ends.
			case c.RenewedBy != "":
				it.Status, it.NewSerial, it.Error, changed = ItemReplaced, c.RenewedBy, "", true
			case it.Method == MethodServer:
				next, err := s.reissueServerCert(ctx, c.Serial, r.ToCA)
				if errors.Is(err, ErrElsewhere) {
					// Another replica is replacing it now: the next
					// pass finds the certificate it served instead.
					break
				}
				if err != nil {
					it.Error, changed = err.Error(), true
					if revokeNow {
						it.Status = ItemFailed
					}
				} else {
					it.Status, it.NewSerial, it.Error, changed = ItemReplaced, next, "", true
				}
			case it.Method == MethodReissue:
				res, err := s.Renew(ctx, c, RenewOptions{Kind: inventory.RenewalRotate, ToCA: r.ToCA})
				if errors.Is(err, ErrElsewhere) {
					// Renewed by another replica meanwhile: the next
					// pass finds the successor.
					break
				}
				if err != nil {
					it.Error, changed = err.Error(), true
					if revokeNow {
						it.Status = ItemFailed
					}
				} else {
					it.Status, it.NewSerial, it.Error, changed = ItemReplaced, res.Cert.Serial, "", true
				}
			}
		}
		if revokeNow && (it.Status == ItemReplaced || it.Status == ItemPending || it.Status == ItemFailed) {
			_, _, err := s.revoker.Revoke(ctx, revoke.Request{Principal: authz.System(), Serial: it.Serial, Reason: reason})
			if err == nil && unfit != nil {
				// It certifies the rotated key, or comes from the CA
				// rotated away from: it goes with its predecessor.
				_, _, err = s.revoker.Revoke(ctx, revoke.Request{Principal: authz.System(), Serial: unfit.Serial, Reason: reason})
			}
			if err != nil {
				it.Error, changed = "revoke: "+err.Error(), true
			} else {
				if it.Status == ItemPending {
					it.Error = "not replaced before the grace period ended; revoked anyway"
				}
				it.Status, changed = ItemRevoked, true
			}
		}
		if changed {
			it.UpdatedAt = now
			if err := s.store.UpdateRotationItem(ctx, r.ID, it, from); errors.Is(err, ErrElsewhere) {
				s.cfg.Log.Info("rotation item moved on by another replica; taken up on the next pass", "id", r.ID, "serial", it.Serial)
				open++
				continue
			} else if err != nil {
				return err
			}
		}
		if it.Status != ItemRevoked {
			open++
		}
	}
	if revokeNow && open == 0 && r.Selector.SPKISHA256 != "" {
		// The key was listed as compromised when the rotation started; a
		// certificate for it whose issuance checked the list just before
		// is not an item. Every certificate of the key goes.
		late, err := s.revokeRest(ctx, r, now, reason)
		if err != nil {
			return err
		}
		open += late
	}
	if revokeNow && open == 0 {
		ev := audit.New(authz.System(), now, "rotation.finish", r.ID, map[string]any{"certificates": len(items)})
		if err := s.store.FinishRotation(ctx, r.ID, now, ev); err != nil {
			return err
		}
		s.cfg.Log.Info("rotation finished", "id", r.ID, "certificates", len(items))
	}
	return nil
}

package est

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
)

// Bounds of enrolment secrets.
const (
	DefaultSecretTTL = 24 * time.Hour
	MaxSecretTTL     = 30 * 24 * time.Hour
	maxIdentity      = 253
	secretPrefix     = "est_"
	secretIDHexLen   = 16
	secretRandomLen  = 32
)

// CreateSecret makes a one-time enrolment secret with which the device
// identity may enrol once on provisioner provName within ttl (0: a day).
// The creator must be allowed to issue what the device will get: cert:issue
// over the provisioner's CA and profile for the identity. The secret is
// returned this once; only its SHA-256 is stored.
func (s *Service) CreateSecret(ctx context.Context, p authz.Principal, provName, identity string, ttl time.Duration) (*Secret, string, error) {
	prov, err := s.findProvisioner(ctx, p, provName)
	if err != nil {
		return nil, "", err
	}
	if err := checkIdentity(identity); err != nil {
		return nil, "", err
	}
	res := authz.Resource{CAID: prov.CAID, CAName: prov.CAName, Profile: prov.Profile, Names: []string{identity}}
	if err := p.Allow(authz.PermCertIssue, res); err != nil {
		return nil, "", err
	}
	if prov.ServerKeyGen {
		// The secret lets the device fetch a server-generated private key:
		// the creator hands that key out, under the rules of every key
		// hand-out (issue's machine-only rule and key:export).
		if p.Kind != authz.KindMachine {
			return nil, "", authz.Refuse(authz.RuleMachineOnlyKey, "EST provisioner %s generates keys (serverkeygen), so its secrets hand out private keys, which go to machine principals only; %s is %s: create the secret as a machine principal with key:export, or use a provisioner without --serverkeygen", prov.Name, p.Name, p.Kind)
		}
		if err := p.Allow(authz.PermKeyExport, res); err != nil {
			return nil, "", err
		}
	}
	if !prov.allowsBasic() {
		return nil, "", invalid("EST provisioner %s takes %s authentication only; enrolment secrets need --auth basic, any or both (certwright est update %s --auth any)", prov.Name, prov.Auth, prov.Name)
	}
	if !prov.allowsIdentity(identity) {
		return nil, "", invalid("identity %q is not on the identity allow-list of EST provisioner %s; add it (certwright est update %s --allow-identities FILE) or check the name", identity, prov.Name, prov.Name)
	}
	if ttl == 0 {
		ttl = DefaultSecretTTL
	}
	if ttl < time.Minute || ttl > MaxSecretTTL {
		return nil, "", invalid("ttl %s: give 1m to %s", ttl, MaxSecretTTL)
	}
	id, err := s.randomHex(secretIDHexLen / 2)
	if err != nil {
		return nil, "", err
	}
	raw := make([]byte, secretRandomLen)
	if _, err := io.ReadFull(s.cfg.Rand, raw); err != nil {
		return nil, "", fmt.Errorf("est: random: %w", err)
	}
	secret := secretPrefix + id + "_" + base64.RawURLEncoding.EncodeToString(raw)
	now := s.cfg.Clock.Now().UTC().Truncate(time.Microsecond)
	sec := &Secret{
		ID: id, ProvisionerID: prov.ID, Identity: identity, Hash: secretHash(secret),
		CreatedAt: now, CreatedBy: p.Name, ExpiresAt: now.Add(ttl),
	}
	ev := audit.New(p, now, "est.secret.create", id, map[string]any{
		"provisioner": prov.Name, "provisioner_id": prov.ID, "identity": identity, "expires_at": sec.ExpiresAt,
	})
	if err := s.store.CreateESTSecret(ctx, sec, ev); err != nil {
		return nil, "", fmt.Errorf("est: create enrolment secret: %w", err)
	}
	s.cfg.Log.Info("est enrolment secret created", "id", id, "provisioner", prov.Name, "identity", identity, "by", p.Name)
	return sec, secret, nil
}

// ListSecrets lists a provisioner's secrets (never the secrets
// themselves); it needs ca:read.
func (s *Service) ListSecrets(ctx context.Context, p authz.Principal, provName string) ([]*Secret, error) {
	if !p.Can(authz.PermCARead) {
		return nil, fmt.Errorf("%w: listing EST enrolment secrets needs %s", authz.ErrForbidden, authz.PermCARead)
	}
	prov, err := s.findProvisioner(ctx, p, provName)
	if err != nil {
		return nil, err
	}
	return s.store.ListESTSecrets(ctx, prov.ID)
}

// RevokeSecret revokes an unused enrolment secret of provisioner
// provName, so that a leaked one authenticates nothing. It needs what
// creating it needs: cert:issue over the provisioner's CA and profile for
// the secret's identity.
func (s *Service) RevokeSecret(ctx context.Context, p authz.Principal, provName, id string) (*Secret, error) {
	prov, err := s.findProvisioner(ctx, p, provName)
	if err != nil {
		return nil, err
	}
	sec, err := s.store.GetESTSecret(ctx, id)
	if errors.Is(err, ErrNotFound) || (err == nil && sec.ProvisionerID != prov.ID) {
		return nil, errorf(ErrNotFound, "EST provisioner %s has no enrolment secret %q; list them with certwright est secret list --provisioner %s", prov.Name, id, prov.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("est: enrolment secret %s: %w", id, err)
	}
	if err := p.Allow(authz.PermCertIssue, authz.Resource{CAID: prov.CAID, CAName: prov.CAName, Profile: prov.Profile, Names: []string{sec.Identity}}); err != nil {
		return nil, err
	}
	switch {
	case !sec.RevokedAt.IsZero():
		return nil, errorf(ErrConflict, "enrolment secret %s was revoked already, on %s by %s", id, sec.RevokedAt.Format(time.RFC3339), sec.RevokedBy)
	case !sec.UsedAt.IsZero():
		return nil, errorf(ErrConflict, "enrolment secret %s was used already, on %s from %s; revoke the certificate it enrolled instead (certwright cert revoke)", id, sec.UsedAt.Format(time.RFC3339), sec.UsedFrom)
	}
	now := s.cfg.Clock.Now().UTC().Truncate(time.Microsecond)
	ev := audit.New(p, now, "est.secret.revoke", id, map[string]any{"provisioner": prov.Name, "provisioner_id": prov.ID, "identity": sec.Identity})
	if err := s.store.RevokeESTSecret(ctx, id, prov.ID, now, p.Name, ev); err != nil {
		if errors.Is(err, ErrConflict) {
			return nil, errorf(ErrConflict, "enrolment secret %s was used or revoked concurrently", id)
		}
		return nil, fmt.Errorf("est: revoke enrolment secret %s: %w", id, err)
	}
	sec.RevokedAt, sec.RevokedBy = now, p.Name
	s.cfg.Log.Info("est enrolment secret revoked", "id", id, "provisioner", prov.Name, "by", p.Name)
	return sec, nil
}

func secretHash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// checkIdentity bounds a device identity: printable, no spaces, short.
func checkIdentity(id string) error {
	if id == "" || len(id) > maxIdentity {
		return invalid("identity %q: give 1-%d characters", id, maxIdentity)
	}
	for _, r := range id {
		if r <= ' ' || r == 0x7f || r == ':' || r == '*' || r > 0x7e {
			return invalid("identity %q: use printable ASCII without spaces, ':' or '*' (a serial number or a DNS name; a device identity is never a wildcard)", id)
		}
	}
	return nil
}

// secretID returns the ID part of a secret, or "" when it is not shaped
// like one.
func secretID(secret string) string {
	rest, ok := strings.CutPrefix(secret, secretPrefix)
	if !ok || len(secret) > 128 {
		return ""
	}
	id, _, ok := strings.Cut(rest, "_")
	if !ok || len(id) != secretIDHexLen {
		return ""
	}
	return id
}

// useSecret authenticates identity:secret on prov and consumes the
// secret, under token. Every failure is ErrUnauthenticated with the same
// text whatever was wrong (an unknown, wrong, used or expired secret, or
// another identity), so that a guesser learns nothing; the audit record
// and log say which.
func (s *Service) useSecret(ctx context.Context, prov *Provisioner, identity, secret, source, requestID, token string) (*Secret, error) {
	refuse := func(why string) error {
		return &authFailure{reason: why, err: errorf(ErrUnauthenticated,
			"the enrolment secret is not valid for identity %q on EST provisioner %s (unknown, wrong, used or expired): ask the operator for a new one (certwright est secret create)", identity, prov.Name)}
	}
	id := secretID(secret)
	if id == "" {
		return nil, refuse("secret not in the est_<id>_<secret> form")
	}
	sec, err := s.store.GetESTSecret(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, refuse("no such secret")
	}
	if err != nil {
		return nil, fmt.Errorf("est: enrolment secret: %w", err)
	}
	hashOK := subtle.ConstantTimeCompare(sec.Hash, secretHash(secret)) == 1
	idOK := subtle.ConstantTimeCompare([]byte(sec.Identity), []byte(identity)) == 1
	now := s.cfg.Clock.Now()
	switch {
	case !hashOK:
		return nil, refuse("wrong secret")
	case sec.ProvisionerID != prov.ID:
		return nil, refuse("secret of another provisioner")
	case !idOK:
		return nil, refuse("secret of another identity")
	case !sec.RevokedAt.IsZero():
		return nil, refuse("secret revoked at " + sec.RevokedAt.Format(time.RFC3339) + " by " + sec.RevokedBy)
	case !sec.UsedAt.IsZero():
		return nil, refuse("secret used already at " + sec.UsedAt.Format(time.RFC3339))
	case !now.Before(sec.ExpiresAt):
		return nil, refuse("secret expired at " + sec.ExpiresAt.Format(time.RFC3339))
	}
	ev := audit.New(s.principal(prov, source, requestID, false), now, "est.secret.use", sec.ID, map[string]any{
		"provisioner": prov.Name, "identity": identity,
	})
	if err := s.store.UseESTSecret(ctx, sec.ID, now, source, token, ev); err != nil {
		if errors.Is(err, ErrConflict) {
			return nil, refuse("secret used or expired by a concurrent request")
		}
		return nil, fmt.Errorf("est: use enrolment secret: %w", err)
	}
	return sec, nil
}

// authFailure is a failed device authentication: err for the device,
// reason for the audit log.
type authFailure struct {
	reason string
	err    error
}

func (e *authFailure) Error() string { return e.err.Error() }
func (e *authFailure) Unwrap() error { return e.err }

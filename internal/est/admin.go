package est

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/ca"
)

// ProvisionerSpec describes a provisioner to create.
type ProvisionerSpec struct {
	Name    string
	CA      string // ID or name
	Profile string
	Auth    string
	// BootstrapPEM is the IDevID manufacturer CA bundle (client-cert, both).
	BootstrapPEM string
	// IdentityFrom is IdentitySerial (the default) or "san:PATTERN".
	IdentityFrom  string
	ServerKeyGen  bool
	ReenrollGrace time.Duration // 0: DefaultReenrollGrace
	// AllowedIdentities, when not empty, are the only identities enrolled.
	AllowedIdentities []string
}

// ProvisionerUpdate changes a provisioner: nil fields stay as they are.
type ProvisionerUpdate struct {
	CA            *string
	Profile       *string
	Auth          *string
	BootstrapPEM  *string
	IdentityFrom  *string
	ServerKeyGen  *bool
	ReenrollGrace *time.Duration
	// AllowedIdentities replaces the allow-list; empty lifts it.
	AllowedIdentities *[]string
}

// Empty reports whether u changes nothing.
func (u ProvisionerUpdate) Empty() bool { return u == ProvisionerUpdate{} }

// Change is one field an update changed.
type Change struct {
	Field string `json:"field"`
	From  any    `json:"from"`
	To    any    `json:"to"`
}

var provisionerName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// Bounds of a bootstrap bundle.
const (
	maxBootstrapBytes = 256 << 10
	maxBootstrapCerts = 64
)

// CreateProvisioner creates an EST endpoint. It needs ca:manage over the
// CA it issues from.
func (s *Service) CreateProvisioner(ctx context.Context, p authz.Principal, spec ProvisionerSpec) (*Provisioner, error) {
	if !provisionerName.MatchString(spec.Name) {
		return nil, invalid("provisioner name %q: use 1-63 lowercase letters, digits, '-' or '_' (it is part of the URL /.well-known/est/NAME/)", spec.Name)
	}
	switch spec.Name {
	case OpCACerts, OpEnroll, OpReenroll, OpCSRAttrs, OpServerKeyGen:
		return nil, invalid("provisioner name %q is an EST operation; choose another", spec.Name)
	}
	if spec.CA == "" || spec.Profile == "" {
		return nil, invalid("a provisioner needs a CA (--ca) and a profile (--profile)")
	}
	prov := &Provisioner{
		Name: spec.Name, Profile: spec.Profile, Auth: spec.Auth, BootstrapPEM: spec.BootstrapPEM,
		IdentityFrom: spec.IdentityFrom, ServerKeyGen: spec.ServerKeyGen, ReenrollGrace: spec.ReenrollGrace,
		AllowedIdentities: spec.AllowedIdentities,
	}
	if prov.IdentityFrom == "" {
		prov.IdentityFrom = IdentitySerial
	}
	if prov.ReenrollGrace == 0 {
		prov.ReenrollGrace = DefaultReenrollGrace
	}
	if err := s.checkPolicy(ctx, p, prov, spec.CA); err != nil {
		return nil, err
	}
	id, err := s.randomHex(9)
	if err != nil {
		return nil, err
	}
	prov.ID = "est_" + id
	prov.CreatedAt, prov.CreatedBy = s.cfg.Clock.Now().UTC().Truncate(time.Microsecond), p.Name
	ev := audit.New(p, prov.CreatedAt, "est.provisioner.create", prov.Name, auditView(prov))
	if err := s.store.CreateESTProvisioner(ctx, prov, ev); err != nil {
		return nil, fmt.Errorf("est: create provisioner %s: %w", spec.Name, err)
	}
	s.cfg.Log.Info("est provisioner created", "name", prov.Name, "ca", prov.CAName, "profile", prov.Profile, "auth", prov.Auth, "by", p.Name)
	return prov, nil
}

// auditView is what the audit log records of a provisioner: the bundle
// by its certificates' subjects and SHA-256 fingerprints.
func auditView(p *Provisioner) map[string]any {
	return map[string]any{
		"id": p.ID, "ca": p.CAName, "ca_id": p.CAID, "profile": p.Profile, "auth": p.Auth,
		"bootstrap_cas": BootstrapSummary(p.BootstrapPEM), "identity_from": p.IdentityFrom,
		"server_keygen": p.ServerKeyGen, "reenroll_grace": p.ReenrollGrace.String(),
		"allowed_identities": AllowListSummary(p.AllowedIdentities),
	}
}

// AllowListSummary is what the audit log records of an allow-list: its
// size and the SHA-256 of its sorted entries ("" when there is none).
func AllowListSummary(ids []string) string {
	if len(ids) == 0 {
		return ""
	}
	sum := sha256.Sum256([]byte(strings.Join(ids, "\n")))
	return fmt.Sprintf("%d identities (sha256:%s)", len(ids), hex.EncodeToString(sum[:]))
}

// BootstrapSummary lists a bundle's certificates as "subject (sha256:hex)".
func BootstrapSummary(bundle string) []string {
	certs, _ := parseBundle(bundle)
	out := make([]string, 0, len(certs))
	for _, c := range certs {
		sum := sha256.Sum256(c.Raw)
		out = append(out, c.Subject.String()+" (sha256:"+hex.EncodeToString(sum[:])+")")
	}
	return out
}

// parseBundle reads the CA certificates of a PEM bundle.
func parseBundle(bundle string) ([]*x509.Certificate, error) {
	if len(bundle) > maxBootstrapBytes {
		return nil, invalid("the bootstrap CA bundle is %d bytes; at most %d", len(bundle), maxBootstrapBytes)
	}
	var out []*x509.Certificate
	rest := []byte(bundle)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, invalid("the bootstrap CA bundle holds a %q PEM block; give CA certificates only", b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, invalid("the bootstrap CA bundle: certificate %d: %v", len(out)+1, err)
		}
		if !c.IsCA || !c.BasicConstraintsValid {
			return nil, invalid("the bootstrap CA bundle: %s is not a CA certificate; give the manufacturer (IDevID) CA, not a device certificate", c.Subject)
		}
		if len(out) == maxBootstrapCerts {
			return nil, invalid("the bootstrap CA bundle holds more than %d certificates", maxBootstrapCerts)
		}
		out = append(out, c)
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, invalid("the bootstrap CA bundle has data that is not PEM after certificate %d", len(out))
	}
	return out, nil
}

// checkPolicy checks prov as create and update do and normalises it.
func (s *Service) checkPolicy(ctx context.Context, p authz.Principal, prov *Provisioner, caRef string) error {
	c, err := s.store.GetCA(ctx, caRef)
	if err != nil {
		return fmt.Errorf("est: %w", err)
	}
	if err := p.Allow(authz.PermCAManage, authz.Resource{CAID: c.ID, CAName: c.Name}); err != nil {
		return err
	}
	if c.Status != ca.StatusActive {
		return invalid("CA %s is %s; EST can issue from an active CA only", c.Name, c.Status)
	}
	prov.CAID, prov.CAName = c.ID, c.Name
	prof, err := s.profiles.Get(ctx, prov.Profile)
	if err != nil {
		return fmt.Errorf("est: profile %q: %w", prov.Profile, err)
	}
	if prof.RequireApproval {
		return invalid("profile %s requires approval, which an EST device cannot wait for; choose a profile without require_approval", prof.Name)
	}
	prov.Profile = prof.Name
	prov.Auth = strings.TrimSpace(prov.Auth)
	if !slices.Contains(AuthModes(), prov.Auth) {
		return invalid("auth %q: use %s", prov.Auth, strings.Join(AuthModes(), ", "))
	}
	certs, err := parseBundle(prov.BootstrapPEM)
	if err != nil {
		return err
	}
	switch {
	case prov.allowsCert() && len(certs) == 0:
		return invalid("auth %s needs the manufacturer (IDevID) CA bundle devices authenticate with: give --bootstrap-ca FILE (PEM)", prov.Auth)
	case !prov.allowsCert() && len(certs) > 0:
		return invalid("auth %s takes no bootstrap CA bundle: devices authenticate with one-time secrets; use --auth any to accept IDevIDs too, or both to require an IDevID and a secret", prov.Auth)
	}
	if err := checkIdentityFrom(prov.IdentityFrom); err != nil {
		return err
	}
	ids, err := normaliseAllowList(prov.AllowedIdentities, prov.IdentityFrom != IdentitySerial)
	if err != nil {
		return err
	}
	prov.AllowedIdentities = ids
	if prov.ReenrollGrace < 0 || prov.ReenrollGrace > MaxReenrollGrace {
		return invalid("re-enrolment grace %s: give 0s to %s", prov.ReenrollGrace, MaxReenrollGrace)
	}
	return nil
}

// checkIdentityFrom checks what of an IDevID a provisioner enrols.
func checkIdentityFrom(from string) error {
	if from == IdentitySerial {
		return nil
	}
	if suffix, ok := strings.CutPrefix(from, IdentitySerialPrefix); ok {
		if !strings.HasPrefix(suffix, ".") || strings.Contains(suffix, "*") || authz.ValidatePattern("x"+suffix) != nil || suffix != strings.ToLower(suffix) {
			return invalid("identity %q: after %q give a lowercase DNS suffix starting with a dot, such as serial:.devices.example.com", from, IdentitySerialPrefix)
		}
		return nil
	}
	pat, ok := strings.CutPrefix(from, IdentitySANPrefix)
	if !ok {
		return invalid("identity %q: use %q (the IDevID's subject serial number), serial:.SUFFIX (the serial as one DNS label under SUFFIX) or %q followed by a DNS name pattern such as san:*.devices.example.com", from, IdentitySerial, IdentitySANPrefix)
	}
	if err := authz.ValidatePattern(pat); err != nil {
		return fmt.Errorf("%w: identity: %w", ErrInvalid, err)
	}
	return nil
}

// normaliseAllowList checks, sorts and de-duplicates an allow-list;
// lower lowercases it (identities that are DNS names: IDevIDs yield them
// lowercased).
func normaliseAllowList(ids []string, lower bool) ([]string, error) {
	if len(ids) > MaxAllowedIdentities {
		return nil, invalid("the identity allow-list has %d entries; at most %d", len(ids), MaxAllowedIdentities)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		id = strings.TrimSpace(id)
		if lower {
			id = strings.ToLower(id)
		}
		if err := checkIdentity(id); err != nil {
			return nil, fmt.Errorf("identity allow-list: %w", err)
		}
		out = append(out, id)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// ListProvisioners lists the provisioners on CAs p may read (ca:read).
func (s *Service) ListProvisioners(ctx context.Context, p authz.Principal) ([]*Provisioner, error) {
	if !p.Can(authz.PermCARead) {
		return nil, fmt.Errorf("%w: listing EST provisioners needs %s", authz.ErrForbidden, authz.PermCARead)
	}
	all, err := s.store.ListESTProvisioners(ctx)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(prov *Provisioner) bool { return !canRead(p, prov) }), nil
}

// canRead reports whether p may read prov: ca:read over its CA.
func canRead(p authz.Principal, prov *Provisioner) bool {
	return p.Allow(authz.PermCARead, authz.Resource{CAID: prov.CAID, CAName: prov.CAName}) == nil
}

// GetProvisioner returns one provisioner; it needs ca:read over its CA.
func (s *Service) GetProvisioner(ctx context.Context, p authz.Principal, name string) (*Provisioner, error) {
	if !p.Can(authz.PermCARead) {
		return nil, fmt.Errorf("%w: reading EST provisioners needs %s", authz.ErrForbidden, authz.PermCARead)
	}
	return s.findProvisioner(ctx, p, name)
}

// findProvisioner returns the provisioner named (or with ID) name if p
// may read it. An unknown name, or one p may not read, is ErrNotFound
// naming the provisioners p may read (and no other).
func (s *Service) findProvisioner(ctx context.Context, p authz.Principal, name string) (*Provisioner, error) {
	prov, err := s.store.GetESTProvisioner(ctx, name)
	if err == nil && canRead(p, prov) {
		return prov, nil
	}
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("est: provisioner %q: %w", name, err)
	}
	all, lerr := s.store.ListESTProvisioners(ctx)
	if lerr != nil {
		return nil, fmt.Errorf("est: provisioner %q: %w", name, lerr)
	}
	var names []string
	for _, prov := range all {
		if canRead(p, prov) {
			names = append(names, prov.Name)
		}
	}
	if len(names) == 0 {
		return nil, errorf(ErrNotFound, "no EST provisioner %q that you may read; there are none (create one with certwright est create)", name)
	}
	return nil, errorf(ErrNotFound, "no EST provisioner %q that you may read; those you may read are: %s", name, strings.Join(names, ", "))
}

// UpdateProvisioner changes provisioner name as u says, checked as create
// checks it; it needs ca:manage over the current CA and any new one.
func (s *Service) UpdateProvisioner(ctx context.Context, p authz.Principal, name string, u ProvisionerUpdate) (*Provisioner, []Change, error) {
	if u.Empty() {
		return nil, nil, invalid("nothing to change: give at least one of the CA, profile, auth, bootstrap CA bundle, identity, identity allow-list, serverkeygen and re-enrolment grace")
	}
	cur, err := s.findProvisioner(ctx, p, name)
	if err != nil {
		return nil, nil, err
	}
	if err := p.Allow(authz.PermCAManage, authz.Resource{CAID: cur.CAID, CAName: cur.CAName}); err != nil {
		return nil, nil, err
	}
	next := *cur
	caRef := cur.CAID
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = strings.TrimSpace(*v)
		}
	}
	set(&caRef, u.CA)
	set(&next.Profile, u.Profile)
	set(&next.Auth, u.Auth)
	set(&next.IdentityFrom, u.IdentityFrom)
	if u.BootstrapPEM != nil {
		next.BootstrapPEM = *u.BootstrapPEM
	}
	if u.ServerKeyGen != nil {
		next.ServerKeyGen = *u.ServerKeyGen
	}
	if u.ReenrollGrace != nil {
		next.ReenrollGrace = *u.ReenrollGrace
	}
	if u.AllowedIdentities != nil {
		next.AllowedIdentities = *u.AllowedIdentities
	}
	if caRef == "" || next.Profile == "" {
		return nil, nil, invalid("a provisioner needs a CA and a profile")
	}
	if err := s.checkPolicy(ctx, p, &next, caRef); err != nil {
		return nil, nil, err
	}
	changes := diff(cur, &next)
	if len(changes) == 0 {
		return cur, changes, nil
	}
	ev := audit.New(p, s.cfg.Clock.Now().UTC(), "est.provisioner.update", cur.Name, map[string]any{"id": cur.ID, "changes": changes})
	if err := s.store.UpdateESTProvisioner(ctx, &next, ev); err != nil {
		return nil, nil, fmt.Errorf("est: update provisioner %s: %w", cur.Name, err)
	}
	s.cfg.Log.Info("est provisioner updated", "name", cur.Name, "changes", len(changes), "by", p.Name)
	return &next, changes, nil
}

func diff(a, b *Provisioner) []Change {
	out := []Change{}
	add := func(field string, from, to any, same bool) {
		if !same {
			out = append(out, Change{Field: field, From: from, To: to})
		}
	}
	add("ca", a.CAName, b.CAName, a.CAID == b.CAID)
	add("profile", a.Profile, b.Profile, a.Profile == b.Profile)
	add("auth", a.Auth, b.Auth, a.Auth == b.Auth)
	add("bootstrap_cas", BootstrapSummary(a.BootstrapPEM), BootstrapSummary(b.BootstrapPEM), a.BootstrapPEM == b.BootstrapPEM)
	add("identity_from", a.IdentityFrom, b.IdentityFrom, a.IdentityFrom == b.IdentityFrom)
	add("server_keygen", a.ServerKeyGen, b.ServerKeyGen, a.ServerKeyGen == b.ServerKeyGen)
	add("reenroll_grace", a.ReenrollGrace.String(), b.ReenrollGrace.String(), a.ReenrollGrace == b.ReenrollGrace)
	add("allowed_identities", AllowListSummary(a.AllowedIdentities), AllowListSummary(b.AllowedIdentities), slices.Equal(a.AllowedIdentities, b.AllowedIdentities))
	return out
}

// DisableProvisioner stops provisioner name from enrolling devices
// (cacerts and csrattrs go on). It needs ca:manage over its CA.
func (s *Service) DisableProvisioner(ctx context.Context, p authz.Principal, name string) (*Provisioner, error) {
	return s.setDisabled(ctx, p, name, true)
}

// EnableProvisioner undoes DisableProvisioner.
func (s *Service) EnableProvisioner(ctx context.Context, p authz.Principal, name string) (*Provisioner, error) {
	return s.setDisabled(ctx, p, name, false)
}

func (s *Service) setDisabled(ctx context.Context, p authz.Principal, name string, disable bool) (*Provisioner, error) {
	prov, err := s.findProvisioner(ctx, p, name)
	if err != nil {
		return nil, err
	}
	if err := p.Allow(authz.PermCAManage, authz.Resource{CAID: prov.CAID, CAName: prov.CAName}); err != nil {
		return nil, err
	}
	now := s.cfg.Clock.Now().UTC().Truncate(time.Microsecond)
	verb, at, by := "enable", time.Time{}, ""
	switch {
	case disable && prov.Disabled():
		return nil, errorf(ErrConflict, "EST provisioner %s is disabled already (since %s, by %s)", prov.Name, prov.DisabledAt.Format(time.RFC3339), prov.DisabledBy)
	case !disable && !prov.Disabled():
		return nil, errorf(ErrConflict, "EST provisioner %s is enabled already", prov.Name)
	case disable:
		verb, at, by = "disable", now, p.Name
	}
	ev := audit.New(p, now, "est.provisioner."+verb, prov.Name, map[string]any{"id": prov.ID})
	if err := s.store.SetESTProvisionerDisabled(ctx, prov.ID, at, by, ev); err != nil {
		return nil, fmt.Errorf("est: %s provisioner %s: %w", verb, prov.Name, err)
	}
	prov.DisabledAt, prov.DisabledBy = at, by
	s.cfg.Log.Info("est provisioner "+verb+"d", "name", prov.Name, "by", p.Name)
	return prov, nil
}

// DeleteProvisioner removes provisioner name, which must be disabled
// first, with its enrolment secrets. The certificates it issued stay in
// the inventory. It needs ca:manage over its CA.
func (s *Service) DeleteProvisioner(ctx context.Context, p authz.Principal, name string) (*Provisioner, error) {
	prov, err := s.findProvisioner(ctx, p, name)
	if err != nil {
		return nil, err
	}
	if err := p.Allow(authz.PermCAManage, authz.Resource{CAID: prov.CAID, CAName: prov.CAName}); err != nil {
		return nil, err
	}
	if !prov.Disabled() {
		return nil, errorf(ErrConflict, "EST provisioner %s is enabled; disable it first (certwright est disable %s), then delete it", prov.Name, prov.Name)
	}
	now := s.cfg.Clock.Now().UTC()
	err = s.store.DeleteESTProvisioner(ctx, prov.ID, func(secrets int) audit.Event {
		d := auditView(prov)
		d["secrets_deleted"] = secrets
		return audit.New(p, now, "est.provisioner.delete", prov.Name, d)
	})
	if err != nil {
		return nil, fmt.Errorf("est: delete provisioner %s: %w", prov.Name, err)
	}
	s.cfg.Log.Info("est provisioner deleted", "name", prov.Name, "id", prov.ID, "by", p.Name)
	return prov, nil
}

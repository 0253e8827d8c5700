package acme

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/certwright/certwright/internal/access"
	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/ca"
)

// ProvisionerSpec describes a provisioner to create.
type ProvisionerSpec struct {
	Name    string `json:"name"`
	CA      string `json:"ca"` // ID or name
	Profile string `json:"profile"`
	// Challenges offered; empty means all three.
	Challenges []string `json:"challenges,omitempty"`
	AllowNames []string `json:"allow_names,omitempty"`
	RequireEAB bool     `json:"require_eab,omitempty"`
	// AllowSubjectFields keeps the CSR's subject fields beyond the CN.
	AllowSubjectFields bool   `json:"allow_subject_fields,omitempty"`
	TermsOfService     string `json:"terms_of_service,omitempty"`
	Website            string `json:"website,omitempty"`
}

var provisionerName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// CreateProvisioner creates an ACME endpoint. It needs ca:manage over the
// CA it issues from.
func (s *Service) CreateProvisioner(ctx context.Context, p authz.Principal, spec ProvisionerSpec) (*Provisioner, error) {
	if !provisionerName.MatchString(spec.Name) {
		return nil, invalid("provisioner name %q: use 1-63 lowercase letters, digits, '-' or '_' (it is part of the directory URL)", spec.Name)
	}
	if spec.CA == "" || spec.Profile == "" {
		return nil, invalid("a provisioner needs a CA and a profile")
	}
	prov := &Provisioner{
		Name: spec.Name, Profile: spec.Profile, Challenges: spec.Challenges, AllowNames: spec.AllowNames,
		RequireEAB: spec.RequireEAB, AllowSubjectFields: spec.AllowSubjectFields,
		TermsOfService: spec.TermsOfService, Website: spec.Website,
	}
	if len(prov.Challenges) == 0 {
		prov.Challenges = ChallengeTypes()
	}
	if err := s.checkPolicy(ctx, p, prov, spec.CA); err != nil {
		return nil, err
	}
	id, err := s.randomID(9)
	if err != nil {
		return nil, err
	}
	prov.ID = "acme_" + id
	prov.CreatedAt, prov.CreatedBy = s.cfg.Clock.Now().UTC(), p.Name
	ev := audit.New(p, prov.CreatedAt, "acme.provisioner.create", prov.Name, map[string]any{
		"id": prov.ID, "ca": prov.CAName, "ca_id": prov.CAID, "profile": prov.Profile, "challenges": prov.Challenges,
		"allow_names": prov.AllowNames, "require_eab": prov.RequireEAB, "allow_subject_fields": prov.AllowSubjectFields,
	})
	if err := s.store.CreateProvisioner(ctx, prov, ev); err != nil {
		return nil, fmt.Errorf("acme: create provisioner %s: %w", spec.Name, err)
	}
	s.cfg.Log.Info("acme provisioner created", "name", prov.Name, "ca", prov.CAName, "profile", prov.Profile, "by", p.Name)
	return prov, nil
}

// maxAllowNames bounds a provisioner's allowed-name patterns, each
// matched against every identifier of every order.
const maxAllowNames = 256

// checkPolicy checks prov's issuing policy as create and update do, and
// normalises it in place: caRef (ID or name) must be an active CA that p
// may manage (its ID and name are filled in), the profile must exist,
// issue without approval and allow DNS names or IP addresses (its
// canonical name is kept), the challenge types must be known (duplicates
// dropped), the allowed-name patterns valid and the URLs absolute.
func (s *Service) checkPolicy(ctx context.Context, p authz.Principal, prov *Provisioner, caRef string) error {
	c, err := s.store.GetCA(ctx, caRef)
	if err != nil {
		return fmt.Errorf("acme: %w", err)
	}
	if err := p.Allow(authz.PermCAManage, authz.Resource{CAID: c.ID, CAName: c.Name}); err != nil {
		return err
	}
	if c.Status != ca.StatusActive {
		return invalid("CA %s is %s; ACME can issue from an active CA only", c.Name, c.Status)
	}
	prov.CAID, prov.CAName = c.ID, c.Name
	prof, err := s.profiles.Get(ctx, prov.Profile)
	if err != nil {
		return fmt.Errorf("acme: profile %q: %w", prov.Profile, err)
	}
	if prof.RequireApproval {
		return invalid("profile %s requires approval, which ACME clients cannot wait for", prof.Name)
	}
	if !prof.Names.DNS.Allow && !prof.Names.IP.Allow {
		return invalid("profile %s allows neither DNS names nor IP addresses, so no ACME order could succeed", prof.Name)
	}
	prov.Profile = prof.Name
	if len(prov.Challenges) == 0 {
		return invalid("a provisioner must offer at least one challenge type: %s", strings.Join(ChallengeTypes(), ", "))
	}
	var chs []string
	for _, t := range prov.Challenges {
		t = strings.TrimSpace(t)
		if !slices.Contains(ChallengeTypes(), t) {
			return invalid("challenge type %q: use %s", t, strings.Join(ChallengeTypes(), ", "))
		}
		if !slices.Contains(chs, t) {
			chs = append(chs, t)
		}
	}
	prov.Challenges = chs
	if len(prov.AllowNames) > maxAllowNames {
		return invalid("%d allowed-name patterns; at most %d (use wildcards or CIDR ranges)", len(prov.AllowNames), maxAllowNames)
	}
	names := []string{}
	for _, n := range prov.AllowNames {
		n = strings.TrimSpace(n)
		if err := authz.ValidatePattern(n); err != nil {
			return fmt.Errorf("%w: allow-names: %w", ErrInvalid, err)
		}
		names = append(names, n)
	}
	prov.AllowNames = names
	for field, v := range map[string]string{"terms of service": prov.TermsOfService, "website": prov.Website} {
		if v == "" {
			continue
		}
		if u, err := url.Parse(v); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || len(v) > 2048 {
			return invalid("%s %q is not an absolute http(s) URL", field, v)
		}
	}
	return nil
}

// ListProvisioners lists every provisioner; it needs ca:read.
func (s *Service) ListProvisioners(ctx context.Context, p authz.Principal) ([]*Provisioner, error) {
	if !p.Can(authz.PermCARead) {
		return nil, fmt.Errorf("%w: listing ACME provisioners needs %s", authz.ErrForbidden, authz.PermCARead)
	}
	return s.store.ListProvisioners(ctx)
}

// GetProvisioner returns one provisioner by name; it needs ca:read.
func (s *Service) GetProvisioner(ctx context.Context, p authz.Principal, name string) (*Provisioner, error) {
	if !p.Can(authz.PermCARead) {
		return nil, fmt.Errorf("%w: reading ACME provisioners needs %s", authz.ErrForbidden, authz.PermCARead)
	}
	return s.findProvisioner(ctx, name)
}

// eabKeyLen is the HMAC key length in bytes (HS256 wants at least 32).
const eabKeyLen = 32

// CreateEABKey creates an external account binding key for provisioner
// provName. The account it binds inherits principal's roles and scopes
// (principal may be empty: the account then has the provisioner's
// authority only). It needs principal:manage; the HMAC key is returned
// once and stored sealed.
func (s *Service) CreateEABKey(ctx context.Context, p authz.Principal, provName, principal, description string) (*EABKey, []byte, error) {
	if err := p.Allow(authz.PermPrincipalAdmin, authz.Resource{}); err != nil {
		return nil, nil, err
	}
	if len(description) > 256 {
		return nil, nil, invalid("description longer than 256 characters")
	}
	prov, err := s.findProvisioner(ctx, provName)
	if err != nil {
		return nil, nil, err
	}
	k := &EABKey{ProvisionerID: prov.ID, Description: description, CreatedAt: s.cfg.Clock.Now().UTC(), CreatedBy: p.Name}
	if principal != "" {
		// The API and CLI name the principal by ID or name; its roles load by ID.
		found, err := s.store.GetPrincipal(ctx, principal)
		if err != nil {
			return nil, nil, fmt.Errorf("acme: principal %q: %w", principal, err)
		}
		target, rec, err := s.store.LoadPrincipal(ctx, found.ID)
		if err != nil {
			return nil, nil, fmt.Errorf("acme: principal %q: %w", principal, err)
		}
		if rec != nil && rec.DisabledAt != nil {
			return nil, nil, invalid("principal %s is disabled", target.Name)
		}
		if target.Kind != authz.KindMachine {
			return nil, nil, invalid("principal %s is %s; ACME accounts act as machines: bind a machine principal", target.Name, target.Kind)
		}
		// The key lets its holder act as target: as good as a token for it.
		if err := access.MayActOn(p, *target); err != nil {
			return nil, nil, err
		}
		k.PrincipalID, k.PrincipalName = target.ID, target.Name
	}
	id, err := s.randomID(12)
	if err != nil {
		return nil, nil, err
	}
	k.ID = "eab_" + id
	secret := make([]byte, eabKeyLen)
	if _, err := io.ReadFull(s.cfg.Rand, secret); err != nil {
		return nil, nil, fmt.Errorf("acme: random: %w", err)
	}
	if k.Sealed, err = s.sealer.Seal(secret, EABSealAAD(k.ID)); err != nil {
		return nil, nil, fmt.Errorf("acme: seal external account key: %w", err)
	}
	ev := audit.New(p, k.CreatedAt, "acme.eab.create", k.ID, map[string]any{
		"provisioner": prov.Name, "principal_id": k.PrincipalID, "principal": k.PrincipalName, "description": description,
	})
	if err := s.store.CreateEABKey(ctx, k, ev); err != nil {
		return nil, nil, fmt.Errorf("acme: create external account key: %w", err)
	}
	return k, secret, nil
}

// ListEABKeys lists a provisioner's external account keys (never the HMAC
// keys); it needs principal:read.
func (s *Service) ListEABKeys(ctx context.Context, p authz.Principal, provName string) ([]*EABKey, error) {
	if !p.Can(authz.PermPrincipalRead) {
		return nil, fmt.Errorf("%w: listing external account keys needs %s", authz.ErrForbidden, authz.PermPrincipalRead)
	}
	prov, err := s.findProvisioner(ctx, provName)
	if err != nil {
		return nil, err
	}
	return s.store.ListEABKeys(ctx, prov.ID)
}

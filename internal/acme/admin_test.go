package acme_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/certwright/certwright/internal/acme"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/profile"
	"github.com/certwright/certwright/internal/store"
)

func TestCreateProvisioner(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	e.customProfile(t, "approved_server", func(p *profile.Profile) { p.RequireApproval = true })
	e.customProfile(t, "email_only", func(p *profile.Profile) {
		p.Names = profile.NameRules{Email: profile.EmailRule{Allow: true}, MaxSANs: 10}
		p.ExtKeyUsage = []string{"email_protection"}
	})

	p, err := e.svc.CreateProvisioner(ctx, admin, acme.ProvisionerSpec{
		Name: "main", CA: e.inter.ID, Profile: "web_server",
		Challenges: []string{" dns-01", "http-01", "dns-01"}, AllowNames: []string{"*.corp.test", " 10.0.0.0/8 "},
		TermsOfService: "https://pki.example.test/tos", Website: "http://pki.example.test",
	})
	if err != nil {
		t.Fatalf("CreateProvisioner: %v", err)
	}
	if p.ID == "" || p.Name != "main" || p.CAID != e.inter.ID || p.CAName != "issuing" || p.Profile != "web_server" ||
		!slices.Equal(p.Challenges, []string{"dns-01", "http-01"}) || !slices.Equal(p.AllowNames, []string{"*.corp.test", "10.0.0.0/8"}) ||
		p.CreatedBy != admin.Name || !p.CreatedAt.Equal(start) {
		t.Errorf("provisioner %+v", p)
	}
	got, err := e.svc.Provisioner(ctx, "main")
	if err != nil || got.ID != p.ID || !slices.Equal(got.Challenges, p.Challenges) || got.TermsOfService != p.TermsOfService {
		t.Errorf("stored provisioner %+v, %v", got, err)
	}
	// The directory is addressed by name, never by ID.
	if _, err := e.svc.Provisioner(ctx, p.ID); !errors.Is(err, acme.ErrNotFound) {
		t.Errorf("Provisioner by ID: %v, want ErrNotFound", err)
	}
	if _, err := e.svc.Provisioner(ctx, "nope"); !errors.Is(err, acme.ErrNotFound) {
		t.Errorf("unknown provisioner: %v, want ErrNotFound", err)
	}
	// Defaults: every challenge type, every name.
	d, err := e.svc.CreateProvisioner(ctx, admin, acme.ProvisionerSpec{Name: "defaults", CA: "issuing", Profile: "web_server"})
	if err != nil || !slices.Equal(d.Challenges, acme.ChallengeTypes()) || d.AllowNames == nil || len(d.AllowNames) != 0 {
		t.Errorf("defaults: %+v, %v", d, err)
	}

	for _, tc := range []struct {
		name string
		who  authz.Principal
		spec acme.ProvisionerSpec
		want error
	}{
		{"upper-case name", admin, acme.ProvisionerSpec{Name: "Main2", CA: "issuing", Profile: "web_server"}, acme.ErrInvalid},
		{"slash in name", admin, acme.ProvisionerSpec{Name: "a/b", CA: "issuing", Profile: "web_server"}, acme.ErrInvalid},
		{"empty name", admin, acme.ProvisionerSpec{CA: "issuing", Profile: "web_server"}, acme.ErrInvalid},
		{"long name", admin, acme.ProvisionerSpec{Name: "a123456789012345678901234567890123456789012345678901234567890123", CA: "issuing", Profile: "web_server"}, acme.ErrInvalid},
		{"no CA", admin, acme.ProvisionerSpec{Name: "x1", Profile: "web_server"}, acme.ErrInvalid},
		{"no profile", admin, acme.ProvisionerSpec{Name: "x2", CA: "issuing"}, acme.ErrInvalid},
		{"unknown CA", admin, acme.ProvisionerSpec{Name: "x3", CA: "nosuch", Profile: "web_server"}, acme.ErrNotFound},
		{"unknown profile", admin, acme.ProvisionerSpec{Name: "x4", CA: "issuing", Profile: "nosuch"}, profile.ErrUnknown},
		{"unknown challenge", admin, acme.ProvisionerSpec{Name: "x5", CA: "issuing", Profile: "web_server", Challenges: []string{"http-02"}}, acme.ErrInvalid},
		{"bad pattern", admin, acme.ProvisionerSpec{Name: "x6", CA: "issuing", Profile: "web_server", AllowNames: []string{"a.*.test"}}, acme.ErrInvalid},
		{"bad CIDR", admin, acme.ProvisionerSpec{Name: "x7", CA: "issuing", Profile: "web_server", AllowNames: []string{"10.0.0.0/33"}}, acme.ErrInvalid},
		{"empty pattern", admin, acme.ProvisionerSpec{Name: "x8", CA: "issuing", Profile: "web_server", AllowNames: []string{" "}}, acme.ErrInvalid},
		{"approval profile", admin, acme.ProvisionerSpec{Name: "x9", CA: "issuing", Profile: "approved_server"}, acme.ErrInvalid},
		{"profile without DNS or IP", admin, acme.ProvisionerSpec{Name: "x10", CA: "issuing", Profile: "email_only"}, acme.ErrInvalid},
		{"terms not a URL", admin, acme.ProvisionerSpec{Name: "x11", CA: "issuing", Profile: "web_server", TermsOfService: "see our website"}, acme.ErrInvalid},
		{"website not http", admin, acme.ProvisionerSpec{Name: "x12", CA: "issuing", Profile: "web_server", Website: "ftp://pki.example.test"}, acme.ErrInvalid},
		{"viewer", viewer, acme.ProvisionerSpec{Name: "x13", CA: "issuing", Profile: "web_server"}, authz.ErrForbidden},
		{"ca admin of another CA", authz.WithRole("carol", authz.KindHuman, authz.RoleCAAdmin, authz.Scope{CAs: []string{"root"}}),
			acme.ProvisionerSpec{Name: "x14", CA: "issuing", Profile: "web_server"}, authz.ErrForbidden},
		{"duplicate", admin, acme.ProvisionerSpec{Name: "main", CA: "issuing", Profile: "web_server"}, acme.ErrConflict},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.CreateProvisioner(ctx, tc.who, tc.spec)
			if !errors.Is(err, tc.want) {
				t.Fatalf("CreateProvisioner: %v, want %v", err, tc.want)
			}
		})
	}
	// The unknown CA is the store's not-found, which the API maps to 404.
	if _, err := e.svc.CreateProvisioner(ctx, admin, acme.ProvisionerSpec{Name: "x3", CA: "nosuch", Profile: "web_server"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown CA: %v", err)
	}

	// A CA admin of the issuing CA may.
	caAdmin := authz.WithRole("carol", authz.KindHuman, authz.RoleCAAdmin, authz.Scope{CAs: []string{"issuing"}})
	if _, err := e.svc.CreateProvisioner(ctx, caAdmin, acme.ProvisionerSpec{Name: "scoped-ok", CA: "issuing", Profile: "web_server"}); err != nil {
		t.Errorf("CA admin of the CA: %v", err)
	}

	list, err := e.svc.ListProvisioners(ctx, viewer)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range list {
		names = append(names, p.Name)
	}
	if !slices.Equal(names, []string{"defaults", "main", "scoped-ok"}) {
		t.Errorf("ListProvisioners %v", names)
	}
	if _, err := e.svc.ListProvisioners(ctx, authz.Principal{Name: "nobody"}); !errors.Is(err, authz.ErrForbidden) {
		t.Errorf("ListProvisioners without ca:read: %v", err)
	}
	if got, err := e.svc.GetProvisioner(ctx, viewer, "main"); err != nil || got.ID != p.ID {
		t.Errorf("GetProvisioner: %v, %v", got, err)
	}
	if _, err := e.svc.GetProvisioner(ctx, viewer, "nope"); !errors.Is(err, acme.ErrNotFound) {
		t.Errorf("GetProvisioner unknown: %v", err)
	}
	if _, err := e.svc.GetProvisioner(ctx, authz.Principal{Name: "nobody"}, "main"); !errors.Is(err, authz.ErrForbidden) {
		t.Errorf("GetProvisioner without ca:read: %v", err)
	}

	var created int
	for _, ev := range auditEvents(t, e) {
		if ev.Action == "acme.provisioner.create" {
			created++
		}
	}
	if created != 3 {
		t.Errorf("%d acme.provisioner.create audit events, want 3", created)
	}
}

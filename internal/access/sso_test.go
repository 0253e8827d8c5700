package access_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/access"
	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
)

// TestSignInSSO: a first sign-in creates a human principal named after
// the verified e-mail's local part (a taken name falls back to the
// provider and a hash), bound to what the groups give, with a token that
// expires after the lifetime and authenticates; an unknown person is
// refused where principals may not be created; a disabled principal gets
// no token, and its refused sign-in is audited.
func TestSignInSSO(t *testing.T) {
	s, db := setup(t)
	ctx := context.Background()
	auth := authz.NewAuthenticator(db, nil, func() time.Time { return time.Date(2026, 5, 1, 1, 0, 0, 0, time.UTC) })
	person := access.SSOPerson{Provider: "corp", Issuer: "https://idp.example.test", Subject: "u-1", Email: "Ada@Example.test", EmailVerified: true,
		Grants: []access.SSOGrant{{Role: authz.RoleViewer}}, Purpose: "console", Source: "127.0.0.1"}

	if _, err := s.SignInSSO(ctx, person, time.Hour); !errors.Is(err, access.ErrSSOUnknown) {
		t.Fatalf("unknown person without create: %v, want ErrSSOUnknown", err)
	}
	person.Create = true
	in, err := s.SignInSSO(ctx, person, 8*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !in.Created || in.Principal.Name != "ada" || in.Principal.Kind != authz.KindHuman || len(in.Added) != 1 || in.Added[0].Source != "oidc:corp" {
		t.Errorf("first sign-in: %+v", in)
	}
	if in.Token.ExpiresAt == nil || in.Token.ExpiresAt.Sub(in.Token.CreatedAt) != 8*time.Hour {
		t.Errorf("token expiry %v after %v, want 8h", in.Token.ExpiresAt, in.Token.CreatedAt)
	}
	p, err := auth.Authenticate(ctx, in.Secret)
	if err != nil || p.Name != "ada" || !p.Can(authz.PermCertRead) || p.Can(authz.PermCertRevoke) {
		t.Errorf("the sign-in's token authenticates as %+v, %v", p, err)
	}

	// Someone else whose e-mail has the same local part.
	other := person
	other.Subject, other.Email = "u-2", "ada@elsewhere.test"
	in2, err := s.SignInSSO(ctx, other, time.Hour)
	if err != nil || !strings.HasPrefix(in2.Principal.Name, "corp-") || in2.Principal.ID == in.Principal.ID {
		t.Errorf("a second ada: %+v, %v", in2, err)
	}

	// The first person again, now in no group: the binding goes.
	person.Grants = nil
	again, err := s.SignInSSO(ctx, person, time.Hour)
	if err != nil || again.Created || again.Principal.ID != in.Principal.ID || len(again.Removed) != 1 {
		t.Errorf("sign-in without groups: %+v, %v", again, err)
	}

	if _, err := s.Disable(ctx, authz.System(), "ada"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SignInSSO(ctx, person, time.Hour); !errors.Is(err, access.ErrSSODisabled) {
		t.Errorf("disabled person: %v, want ErrSSODisabled", err)
	}
	if _, err := auth.Authenticate(ctx, in.Secret); !errors.Is(err, authz.ErrUnauthenticated) {
		t.Errorf("the disabled person's token: %v, want refused", err)
	}
	evs := events(t, db)
	if !slices.Contains(evs, "sso.sign_in:denied") || !slices.Contains(evs, "binding.delete:success") || !slices.Contains(evs, "principal.create:success") {
		t.Errorf("audit: %v", evs)
	}
}

// TestSignInSSOEmail: a verified address becomes the person's e-mail
// identity in lower case (audited as identity.add) and the sign-in's
// token says which provider minted it; an address the provider did not
// verify gives none; one another principal holds stays with it, and the
// sign-in's audit event names the holder; an administrator maps an
// address by hand, lower-cased too.
func TestSignInSSOEmail(t *testing.T) {
	s, db := setup(t)
	ctx := context.Background()
	auth := authz.NewAuthenticator(db, nil, func() time.Time { return time.Date(2026, 5, 1, 1, 0, 0, 0, time.UTC) })
	ada := access.SSOPerson{Provider: "corp", Issuer: "https://idp.example.test", Subject: "u-1", Email: "Ada@Example.test", EmailVerified: true,
		Create: true, Purpose: "cli", Source: "127.0.0.1"}
	in, err := s.SignInSSO(ctx, ada, 8*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if in.Token.Via != "oidc:corp" {
		t.Errorf("token via %q, want oidc:corp", in.Token.Via)
	}
	p, err := auth.Authenticate(ctx, in.Secret)
	if err != nil || p.Via != "oidc:corp" {
		t.Errorf("the token authenticates with via %q, %v", p.Via, err)
	}
	if id, err := db.PrincipalByIdentity(ctx, authz.IdentityEmail, "ada@example.test"); err != nil || id != in.Principal.ID {
		t.Errorf("ada@example.test maps to %q, %v; want %s", id, err, in.Principal.ID)
	}

	eve := ada
	eve.Subject, eve.Email, eve.EmailVerified = "u-2", "eve@example.test", false
	if _, err := s.SignInSSO(ctx, eve, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := db.PrincipalByIdentity(ctx, authz.IdentityEmail, "eve@example.test"); !errors.Is(err, authz.ErrNotFound) {
		t.Errorf("an unverified address became an identity: %v", err)
	}
	mallory := ada
	mallory.Subject, mallory.Email = "u-3", "ADA@example.test"
	if _, err := s.SignInSSO(ctx, mallory, time.Hour); err != nil {
		t.Fatal(err)
	}
	if id, _ := db.PrincipalByIdentity(ctx, authz.IdentityEmail, "ada@example.test"); id != in.Principal.ID {
		t.Errorf("ada@example.test was taken from ada by another sign-in: now %q", id)
	}

	var signIns, added []string
	if err := db.EachAuditEvent(ctx, 0, func(e *audit.Event) error {
		switch e.Action {
		case "sso.sign_in":
			signIns = append(signIns, string(e.Details))
		case "identity.add":
			added = append(added, string(e.Details))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(signIns) != 3 || !strings.Contains(signIns[0], `"email_identity":"ada@example.test added"`) ||
		!strings.Contains(signIns[1], "did not verify") ||
		!strings.Contains(signIns[2], `"email_holder":"ada"`) || !strings.Contains(signIns[2], "held by another principal") {
		t.Errorf("sign-in audit details: %q", signIns)
	}
	if !slices.ContainsFunc(added, func(d string) bool {
		return strings.Contains(d, `"kind":"email"`) && strings.Contains(d, `"value":"ada@example.test"`) && strings.Contains(d, `"source":"oidc:corp"`)
	}) {
		t.Errorf("no identity.add for ada's address: %q", added)
	}

	id, err := s.AddIdentity(ctx, authz.System(), in.Principal.Name, authz.IdentityEmail, "Ada.Lovelace@Example.TEST")
	if err != nil || id.Value != "ada.lovelace@example.test" || id.Source != "" {
		t.Errorf("mapped by hand: %+v, %v", id, err)
	}
}

package access_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/access"
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

package access_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/access"
	"github.com/certwright/certwright/internal/authz"
)

// failingRevoker stands in for the revocation service failing (its store
// down): the calls it got are counted.
type failingRevoker struct{ tokens, principals []string }

var errRevokerDown = errors.New("revocation store unavailable")

func (f *failingRevoker) RevokeTokenCertificates(_ context.Context, _ authz.Principal, id string) ([]string, error) {
	f.tokens = append(f.tokens, id)
	return nil, errRevokerDown
}

func (f *failingRevoker) RevokePrincipalCertificates(_ context.Context, _ authz.Principal, id string) ([]string, error) {
	f.principals = append(f.principals, id)
	return nil, errRevokerDown
}

// TestCertificateRevocationFailureKeepsTheChange: when the person
// certificates of an ended sign-in cannot be revoked, the token stays
// revoked and the principal disabled; the caller gets what changed and
// an error matching ErrCertificatesNotRevoked that says so; doing it again
// tries the certificates again. Signing out ends the caller's own token
// only, and needs a token.
func TestCertificateRevocationFailureKeepsTheChange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rv := &failingRevoker{}
	s, db := setupWith(t, rv)
	admin := principal(t, s, "root-admin", authz.KindHuman, authz.RoleAdmin)
	alice := principal(t, s, "alice", authz.KindHuman, authz.RoleViewer)

	_, tok, err := s.CreateToken(ctx, admin, "alice", "sign-in", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		got, err := s.RevokeToken(ctx, admin, tok.ID)
		if !errors.Is(err, access.ErrCertificatesNotRevoked) || !errors.Is(err, errRevokerDown) || got == nil || got.RevokedAt == nil ||
			!strings.Contains(err.Error(), "token "+tok.ID+" is revoked") {
			t.Fatalf("RevokeToken with the revoker down = %+v, %v; want the revoked token and ErrCertificatesNotRevoked", got, err)
		}
	}
	if stored, err := db.GetToken(ctx, tok.ID); err != nil || stored.RevokedAt == nil {
		t.Errorf("stored token %+v (%v), want revoked", stored, err)
	}
	if len(rv.tokens) != 2 {
		t.Errorf("certificates of the token asked for %d times, want 2 (the second revocation tries again)", len(rv.tokens))
	}

	_, own, err := s.CreateToken(ctx, admin, "alice", "sign-in", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	asAlice := alice
	asAlice.Auth = "token:" + own.ID
	if _, err := s.SignOut(ctx, asAlice); !errors.Is(err, access.ErrCertificatesNotRevoked) {
		t.Errorf("SignOut = %v, want ErrCertificatesNotRevoked", err)
	}
	if stored, err := db.GetToken(ctx, own.ID); err != nil || stored.RevokedAt == nil {
		t.Errorf("signed-out token %+v (%v), want revoked", stored, err)
	}
	_, other, err := s.CreateToken(ctx, admin, "root-admin", "admin's", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	asAlice.Auth = "token:" + other.ID
	if _, err := s.SignOut(ctx, asAlice); !errors.Is(err, access.ErrInvalid) {
		t.Errorf("SignOut of another principal's token = %v, want ErrInvalid", err)
	}
	asAlice.Auth = "mtls:01"
	if _, err := s.SignOut(ctx, asAlice); !errors.Is(err, access.ErrInvalid) || !strings.Contains(err.Error(), "a client certificate") {
		t.Errorf("SignOut with a client certificate = %v, want ErrInvalid naming it", err)
	}
	if stored, err := db.GetToken(ctx, other.ID); err != nil || stored.RevokedAt != nil {
		t.Errorf("admin's token %+v (%v), want untouched", stored, err)
	}

	p, err := s.Disable(ctx, admin, "alice")
	if !errors.Is(err, access.ErrCertificatesNotRevoked) || p == nil || p.DisabledAt == nil {
		t.Fatalf("Disable with the revoker down = %+v, %v; want alice disabled and ErrCertificatesNotRevoked", p, err)
	}
	if rec, err := db.GetPrincipal(ctx, "alice"); err != nil || rec.DisabledAt == nil {
		t.Errorf("stored alice %+v (%v), want disabled", rec, err)
	}
	if _, err := s.Disable(ctx, admin, "alice"); !errors.Is(err, access.ErrCertificatesNotRevoked) || len(rv.principals) != 2 {
		t.Errorf("Disable again = %v after %d tries, want the certificates tried again", err, len(rv.principals))
	}
}

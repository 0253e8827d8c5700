package authz_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/authz"
)

// TestResume: a console session signed in with a token resumes as the
// token's principal while the token would authenticate, and not once it
// is revoked, expired or its principal disabled — on the very next
// request, through the same cache as bearer tokens.
func TestResume(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, env *cacheEnv) {
		ctx := context.Background()
		tok, rec := env.token(t, "alice", authz.RoleIssuer, now.Add(time.Hour))
		auth := "token:" + rec.ID
		got, err := env.a.Resume(ctx, auth)
		if err != nil {
			t.Fatalf("Resume: %v", err)
		}
		if want := mustAuth(t, env.a, tok); got.Name != want.Name || got.ID != want.ID || got.Auth != auth || len(got.Bindings) != len(want.Bindings) {
			t.Errorf("Resume = %+v, want the principal Authenticate returns (%+v)", got, want)
		}
		reads := env.reads.tokens.Load()
		if _, err := env.a.Resume(ctx, auth); err != nil {
			t.Fatal(err)
		}
		if n := env.reads.tokens.Load(); n != reads {
			t.Errorf("a cached token read the store %d times", n-reads)
		}

		for _, bad := range []string{"", "token:", "token:short", "oidc:" + rec.ID, "token:" + rec.ID + "x"} {
			if _, err := env.a.Resume(ctx, bad); !errors.Is(err, authz.ErrSessionCredential) && !errors.Is(err, authz.ErrUnauthenticated) {
				t.Errorf("Resume(%q) = %v, want refused", bad, err)
			}
		}
		if _, err := env.a.Resume(ctx, "token:0123456789abcdef"); !errors.Is(err, authz.ErrUnauthenticated) {
			t.Errorf("Resume of an unknown token = %v, want unauthenticated", err)
		}

		// Revoked: refused at once, the clock standing still.
		if _, err := env.acc.RevokeToken(ctx, authz.System(), rec.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := env.a.Resume(ctx, auth); !refusedFor(err, "revoked") {
			t.Errorf("Resume after revoke = %v, want refused as revoked", err)
		}

		// Disabled principal.
		_, rec2 := env.token(t, "bob", authz.RoleIssuer, time.Time{})
		if _, err := env.a.Resume(ctx, "token:"+rec2.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := env.acc.Disable(ctx, authz.System(), "bob"); err != nil {
			t.Fatal(err)
		}
		if _, err := env.a.Resume(ctx, "token:"+rec2.ID); !errors.Is(err, authz.ErrUnauthenticated) {
			t.Errorf("Resume for a disabled principal = %v, want refused", err)
		}

		// Expired, from the cache.
		_, rec3 := env.token(t, "carol", authz.RoleIssuer, now.Add(time.Minute))
		if _, err := env.a.Resume(ctx, "token:"+rec3.ID); err != nil {
			t.Fatal(err)
		}
		env.clk.Advance(time.Minute)
		if _, err := env.a.Resume(ctx, "token:"+rec3.ID); !refusedFor(err, "expired") {
			t.Errorf("Resume of an expired token = %v, want refused as expired", err)
		}
	})
}

// refusedFor reports whether err is an authentication refusal whose
// reason mentions why.
func refusedFor(err error, why string) bool {
	var ae *authz.AuthError
	return errors.Is(err, authz.ErrUnauthenticated) && errors.As(err, &ae) && strings.Contains(ae.Reason, why)
}

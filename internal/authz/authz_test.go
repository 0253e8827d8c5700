package authz_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/store"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func openStore(t *testing.T) (*store.DB, string) {
	t.Helper()
	dir := t.TempDir()
	db, err := store.Open(context.Background(), "sqlite:"+filepath.Join(dir, "db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, dir
}

func ev(action string) audit.Event {
	return audit.Event{Time: now, Principal: "test", Action: action, Outcome: audit.Success}
}

// newPrincipal stores a principal bound to role.
func newPrincipal(t *testing.T, db *store.DB, name string, kind authz.Kind, role string) *authz.PrincipalRecord {
	t.Helper()
	ctx := context.Background()
	p := &authz.PrincipalRecord{ID: "p_" + name, Name: name, Kind: kind, CreatedAt: now, CreatedBy: "test"}
	if err := db.CreatePrincipal(ctx, p, ev("principal.create")); err != nil {
		t.Fatal(err)
	}
	r, _ := authz.BuiltinRole(role)
	if err := db.CreateBinding(ctx, &authz.Binding{ID: "b_" + name, PrincipalID: p.ID, Role: r, CreatedAt: now, CreatedBy: "test"}, ev("binding.create")); err != nil {
		t.Fatal(err)
	}
	return p
}

// issueToken makes a principal and a token for it, as the server does.
func issueToken(t *testing.T, db *store.DB, name string) (string, *authz.Token) {
	t.Helper()
	p := newPrincipal(t, db, name, authz.KindHuman, authz.RoleAdmin)
	return tokenFor(t, db, p.ID, time.Time{})
}

func tokenFor(t *testing.T, db *store.DB, principalID string, expires time.Time) (string, *authz.Token) {
	t.Helper()
	tok, rec, err := authz.NewToken(principalID, "test", now, expires)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateToken(context.Background(), rec, ev("token.create")); err != nil {
		t.Fatal(err)
	}
	return tok, rec
}

func secretOf(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.SplitN(tok, "_", 3)
	if len(parts) != 3 || parts[0] != "cwt" {
		t.Fatalf("token %q is not cwt_<id>_<secret>", tok)
	}
	return parts[2]
}

func TestNewToken(t *testing.T) {
	t.Parallel()
	tok, rec, err := authz.NewToken("p_ci", "ci", now.In(time.FixedZone("x", 3600)), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, "cwt_"+rec.ID+"_") {
		t.Fatalf("token %q does not start with cwt_%s_", tok, rec.ID)
	}
	if len(rec.ID) != 16 {
		t.Errorf("id %q is %d characters, want 16", rec.ID, len(rec.ID))
	}
	if len(tok) > 128 {
		t.Errorf("token is %d characters, longer than Authenticate accepts", len(tok))
	}
	secret := secretOf(t, tok)
	if want := sha256.Sum256([]byte(secret)); !bytes.Equal(rec.SecretHash, want[:]) {
		t.Errorf("SecretHash is not SHA-256 of the secret")
	}
	if rec.PrincipalID != "p_ci" || rec.Description != "ci" || rec.ExpiresAt != nil || !rec.CreatedAt.Equal(now) || rec.CreatedAt.Location() != time.UTC {
		t.Errorf("record = %+v", rec)
	}
	// The record as the API would show it carries neither secret nor hash.
	js, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(js, []byte(secret)) || bytes.Contains(js, []byte("secret")) {
		t.Errorf("JSON of the record exposes the secret: %s", js)
	}

	tok2, rec2, err := authz.NewToken("p_ci", "ci", now, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if tok2 == tok || rec2.ID == rec.ID {
		t.Error("two tokens share an id or a value")
	}
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	db, dir := openStore(t)
	a := authz.NewAuthenticator(db, nil, func() time.Time { return now })
	tok, rec := issueToken(t, db, "alice")
	other, _ := issueToken(t, db, "bob")
	secret := secretOf(t, tok)
	otherSecret := secretOf(t, other)

	t.Run("round trip", func(t *testing.T) {
		t.Parallel()
		p, err := a.Authenticate(context.Background(), tok)
		if err != nil {
			t.Fatal(err)
		}
		if p.Name != "alice" || p.ID != "p_alice" || p.Kind != authz.KindHuman || p.Auth != "token:"+rec.ID || !p.Can(authz.PermCAManage) {
			t.Fatalf("principal = %+v", p)
		}
	})

	bad := []struct {
		name, token string
	}{
		{"empty", ""},
		{"bearer prefix kept", "Bearer " + tok},
		{"no prefix", strings.TrimPrefix(tok, "cwt_")},
		{"wrong prefix", "cwx_" + strings.TrimPrefix(tok, "cwt_")},
		{"wrong secret", "cwt_" + rec.ID + "_" + otherSecret},
		{"secret one character off", tok[:len(tok)-1] + flip(tok[len(tok)-1])},
		{"secret truncated", tok[:len(tok)-1]},
		{"secret with suffix", tok + "A"},
		{"empty secret", "cwt_" + rec.ID + "_"},
		{"no secret", "cwt_" + rec.ID},
		{"unknown id", "cwt_0123456789abcdef_" + secret},
		{"id of another token", strings.Replace(other, secretOf(t, other), secret, 1)},
		{"short id", "cwt_" + rec.ID[:15] + "_" + secret},
		{"long id", "cwt_" + rec.ID + "0_" + secret},
		{"upper-case id", "cwt_" + strings.ToUpper(rec.ID) + "_" + secret},
		{"over-long", tok + strings.Repeat("A", 129-len(tok))},
		{"very long", "cwt_" + rec.ID + "_" + strings.Repeat("A", 1<<20)},
		{"only prefix", "cwt_"},
		{"underscores", "cwt___"},
	}
	for _, tt := range bad {
		t.Run("reject/"+tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := a.Authenticate(context.Background(), tt.token)
			if !errors.Is(err, authz.ErrUnauthenticated) {
				t.Fatalf("Authenticate = %+v, %v; want ErrUnauthenticated", p, err)
			}
			if p.Name != "" || len(p.Bindings) != 0 {
				t.Errorf("principal %+v returned with an error", p)
			}
		})
	}

	t.Run("cancelled context", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := a.Authenticate(ctx, "cwt_0123456789abcdef_x"); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})

	t.Run("secret never stored", func(t *testing.T) {
		t.Parallel()
		got, err := db.GetToken(context.Background(), rec.ID)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(got.SecretHash, []byte(secret)) || !bytes.Equal(got.SecretHash, rec.SecretHash) {
			t.Errorf("stored hash %x is not the record's hash", got.SecretHash)
		}
		// Nothing the database wrote to disk (main file, WAL, SHM) holds
		// either secret.
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range []string{secret, otherSecret} {
				if bytes.Contains(b, []byte(s)) {
					t.Errorf("%s contains a token secret", e.Name())
				}
			}
		}
	})
}

// TestAuthenticateUnderscoreInSecret covers secrets whose base64url form
// contains '_', the token's own separator.
func TestAuthenticateUnderscoreInSecret(t *testing.T) {
	t.Parallel()
	db, _ := openStore(t)
	a := authz.NewAuthenticator(db, nil, nil)
	found := false
	p := newPrincipal(t, db, "u", authz.KindMachine, authz.RoleViewer)
	for i := 0; i < 200 && !found; i++ {
		tok, _ := tokenFor(t, db, p.ID, time.Time{})
		if !strings.Contains(secretOf(t, tok), "_") {
			continue
		}
		found = true
		if _, err := a.Authenticate(context.Background(), tok); err != nil {
			t.Fatalf("token %q with '_' in its secret: %v", tok, err)
		}
	}
	if !found {
		t.Fatal("no secret with '_' in 200 tokens")
	}
}

func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

// TestTokenLifecycle: expiry, revocation, a disabled principal, and the
// last-used time.
func TestTokenLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := openStore(t)
	clock := now
	a := authz.NewAuthenticator(db, nil, func() time.Time { return clock })
	p := newPrincipal(t, db, "ci", authz.KindMachine, authz.RoleIssuer)

	expiring, exp := tokenFor(t, db, p.ID, now.Add(time.Hour))
	if _, err := a.Authenticate(ctx, expiring); err != nil {
		t.Fatalf("fresh token: %v", err)
	}
	got, err := db.GetToken(ctx, exp.ID)
	if err != nil || got.LastUsedAt == nil || !got.LastUsedAt.Equal(now) {
		t.Fatalf("last used = %v, %v; want %s", got.LastUsedAt, err, now)
	}
	clock = now.Add(time.Hour)
	_, err = a.Authenticate(ctx, expiring)
	var ae *authz.AuthError
	if !errors.As(err, &ae) || !strings.Contains(ae.Reason, "expired") || !errors.Is(err, authz.ErrUnauthenticated) {
		t.Fatalf("expired token: %v", err)
	}
	if strings.Contains(err.Error(), "expired") {
		t.Errorf("the error a client sees says why: %q", err)
	}
	// The holder of the secret may be told: the API says so.
	if want := "expired at " + exp.ExpiresAt.UTC().Format(time.RFC3339); !strings.Contains(ae.Public, want) {
		t.Errorf("expired token: public message %q, want it to say %q", ae.Public, want)
	}
	// A wrong secret is told nothing more, expired or not.
	if _, err := a.Authenticate(ctx, expiring[:len(expiring)-2]+"xx"); !errors.As(err, &ae) || ae.Public != "" {
		t.Errorf("wrong secret of an expired token: %v (public %q)", err, ae.Public)
	}
	clock = now

	revoked, rrec := tokenFor(t, db, p.ID, time.Time{})
	if _, err := db.RevokeToken(ctx, rrec.ID, now, ev("token.revoke")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(ctx, revoked); !errors.As(err, &ae) || !strings.Contains(ae.Reason, "revoked") {
		t.Fatalf("revoked token: %v", err)
	}

	live, _ := tokenFor(t, db, p.ID, time.Time{})
	if _, err := a.Authenticate(ctx, live); err != nil {
		t.Fatal(err)
	}
	if err := db.DisablePrincipal(ctx, p.ID, now, ev("principal.disable")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(ctx, live); !errors.Is(err, authz.ErrUnauthenticated) {
		t.Fatalf("token of a disabled principal: %v", err)
	}
}

// TestAuthenticateStoreFailure: a store that fails is not a bad
// credential: authentication fails with ErrUnavailable, never as
// unauthenticated (which the API would answer 401 and audit as refused).
func TestAuthenticateStoreFailure(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := openStore(t)
	clk := clock.NewFake(now)
	a := authz.NewAuthenticator(db, nil, clk.Now)
	p := newPrincipal(t, db, "ci", authz.KindMachine, authz.RoleIssuer)
	tok, _ := tokenFor(t, db, p.ID, time.Time{})
	if _, err := a.Authenticate(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// The token is cached: past the cache's age it is read again.
	clk.Advance(authz.TokenCacheMaxAge)
	_, err := a.Authenticate(ctx, tok)
	if !errors.Is(err, authz.ErrUnavailable) || errors.Is(err, authz.ErrUnauthenticated) {
		t.Fatalf("store closed: %v; want ErrUnavailable, not ErrUnauthenticated", err)
	}
	// An unknown token is still unknown only when the store says so.
	_, err = a.Authenticate(ctx, "cwt_0123456789abcdef_secret")
	if !errors.Is(err, authz.ErrUnavailable) {
		t.Fatalf("unknown token, store closed: %v; want ErrUnavailable", err)
	}
}

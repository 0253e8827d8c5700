package authz_test

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/access"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/store"
	"github.com/certwright/certwright/internal/store/storetest"
)

// cacheEnv is one server (a, acc on db) and a second replica (other) on
// the same database.
type cacheEnv struct {
	db, other *store.DB
	clk       *clock.Fake
	a         *authz.Authenticator
	acc       *access.Service
	reads     *countingStore
}

// countingStore counts the reads authentication makes.
type countingStore struct {
	authz.Store
	tokens, principals atomic.Int64
}

func (s *countingStore) GetToken(ctx context.Context, id string) (*authz.Token, error) {
	s.tokens.Add(1)
	return s.Store.GetToken(ctx, id)
}

func (s *countingStore) LoadPrincipal(ctx context.Context, id string) (*authz.Principal, *authz.PrincipalRecord, error) {
	s.principals.Add(1)
	return s.Store.LoadPrincipal(ctx, id)
}

// eachBackend runs fn on SQLite, and on PostgreSQL when
// CERTWRIGHT_TEST_POSTGRES is set.
func eachBackend(t *testing.T, fn func(t *testing.T, env *cacheEnv)) {
	t.Helper()
	for _, b := range []struct {
		name string
		open func(t *testing.T) func(*testing.T) *store.DB
	}{
		{"sqlite", func(*testing.T) func(*testing.T) *store.DB { return storetest.SQLite() }},
		{"postgres", func(t *testing.T) func(*testing.T) *store.DB { return storetest.Postgres(storetest.PostgresURL(t)) }},
	} {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			open := b.open(t)
			env := &cacheEnv{db: open(t), clk: clock.NewFake(now)}
			env.other = open(t) // the same file or schema, another pool: another replica
			env.reads = &countingStore{Store: env.db}
			env.a = authz.NewAuthenticator(env.reads, nil, env.clk.Now)
			var err error
			if env.acc, err = access.New(env.db, env.clk, slog.New(slog.DiscardHandler), nil); err != nil {
				t.Fatal(err)
			}
			fn(t, env)
		})
	}
}

// token makes a machine principal bound to role and a token for it.
func (env *cacheEnv) token(t *testing.T, name, role string, expires time.Time) (string, *authz.Token) {
	t.Helper()
	p := newPrincipal(t, env.db, name, authz.KindMachine, role)
	return tokenFor(t, env.db, p.ID, expires)
}

func mustAuth(t *testing.T, a *authz.Authenticator, tok string) authz.Principal {
	t.Helper()
	p, err := a.Authenticate(context.Background(), tok)
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	return p
}

func refused(t *testing.T, a *authz.Authenticator, tok, why string) *authz.AuthError {
	t.Helper()
	p, err := a.Authenticate(context.Background(), tok)
	var ae *authz.AuthError
	if !errors.As(err, &ae) || !errors.Is(err, authz.ErrUnauthenticated) {
		t.Fatalf("%s: Authenticate = %+v, %v; want refused", why, p, err)
	}
	if p.Name != "" || len(p.Bindings) != 0 {
		t.Errorf("%s: principal %+v returned with an error", why, p)
	}
	return ae
}

// TestTokenCacheServesWithoutStore: the second request reads nothing,
// and gets what the first one got.
func TestTokenCacheServesWithoutStore(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, env *cacheEnv) {
		tok, _ := env.token(t, "ci", authz.RoleIssuer, now.Add(time.Hour))
		first := mustAuth(t, env.a, tok)
		tokens, principals := env.reads.tokens.Load(), env.reads.principals.Load()
		if tokens != 1 || principals != 1 {
			t.Fatalf("first request read %d tokens, %d principals; want 1 and 1", tokens, principals)
		}
		// A caller changing what it got changes nothing for the next.
		first.Bindings[0].Role.Name = "changed"
		first = mustAuth(t, env.a, tok)
		for range 5 {
			env.clk.Advance(100 * time.Millisecond)
			if got := mustAuth(t, env.a, tok); !reflect.DeepEqual(got, first) {
				t.Fatalf("cached principal = %+v, want %+v", got, first)
			}
		}
		if n, m := env.reads.tokens.Load(), env.reads.principals.Load(); n != tokens || m != principals {
			t.Errorf("cached requests read the store: %d token and %d principal reads", n-tokens, m-principals)
		}
		// Exactly what an authenticator without the entry returns.
		fresh := mustAuth(t, authz.NewAuthenticator(env.db, nil, env.clk.Now), tok)
		if !reflect.DeepEqual(fresh, first) {
			t.Errorf("cached principal = %+v, uncached %+v", first, fresh)
		}
		if first.Bindings[0].Role.Name != authz.RoleIssuer || first.Auth != "token:"+strings.Split(tok, "_")[1] ||
			first.AuthExpiresAt == nil || !first.AuthExpiresAt.Equal(now.Add(time.Hour)) {
			t.Errorf("cached principal = %+v", first)
		}
		// Past the bound the store is read again.
		env.clk.Advance(authz.TokenCacheMaxAge)
		mustAuth(t, env.a, tok)
		if n := env.reads.tokens.Load(); n != tokens+1 {
			t.Errorf("after %s: %d token reads, want one more", authz.TokenCacheMaxAge, n-tokens)
		}
	})
}

// TestTokenCacheRevokeTakesEffectAtOnce: a token revoked through this
// server is refused on the very next request, the clock standing still.
func TestTokenCacheRevokeTakesEffectAtOnce(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, env *cacheEnv) {
		tok, rec := env.token(t, "ci", authz.RoleIssuer, time.Time{})
		mustAuth(t, env.a, tok)
		mustAuth(t, env.a, tok)
		if n := authz.CachedTokens(env.a); n != 1 {
			t.Fatalf("%d tokens cached, want 1", n)
		}
		if _, err := env.acc.RevokeToken(context.Background(), authz.System(), rec.ID); err != nil {
			t.Fatal(err)
		}
		if ae := refused(t, env.a, tok, "revoked token"); !strings.Contains(ae.Reason, "revoked") {
			t.Errorf("reason %q, want revoked", ae.Reason)
		}
	})
}

// TestTokenCacheDisableTakesEffectAtOnce: a principal disabled through
// this server is refused on the very next request.
func TestTokenCacheDisableTakesEffectAtOnce(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, env *cacheEnv) {
		tok, _ := env.token(t, "ci", authz.RoleIssuer, time.Time{})
		mustAuth(t, env.a, tok)
		if _, err := env.acc.Disable(context.Background(), authz.System(), "ci"); err != nil {
			t.Fatal(err)
		}
		refused(t, env.a, tok, "token of a disabled principal")
	})
}

// TestTokenCacheBindingsTakeEffectAtOnce: a role bound or unbound through
// this server is there, or gone, on the very next request.
func TestTokenCacheBindingsTakeEffectAtOnce(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, env *cacheEnv) {
		ctx := context.Background()
		tok, _ := env.token(t, "ci", authz.RoleViewer, time.Time{})
		if mustAuth(t, env.a, tok).Can(authz.PermAuditRead) {
			t.Fatal("viewer can read the audit log")
		}
		b, err := env.acc.Bind(ctx, authz.System(), "ci", authz.RoleAuditor, authz.Scope{})
		if err != nil {
			t.Fatal(err)
		}
		if !mustAuth(t, env.a, tok).Can(authz.PermAuditRead) {
			t.Fatal("role bound, but the next request lacks it")
		}
		if _, err := env.acc.Unbind(ctx, authz.System(), b.ID); err != nil {
			t.Fatal(err)
		}
		if got := mustAuth(t, env.a, tok); got.Can(authz.PermAuditRead) || len(got.Bindings) != 1 {
			t.Fatalf("binding removed, but the next request has %+v", got.Bindings)
		}
	})
}

// TestTokenCacheOtherReplica: a change written by another process to the
// same database takes effect here within one second, the bound the README
// documents (not TokenCacheMaxAge: this pins the documented figure).
func TestTokenCacheOtherReplica(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, env *cacheEnv) {
		ctx := context.Background()
		tok, rec := env.token(t, "ci", authz.RoleIssuer, time.Time{})
		start := env.clk.Now()
		mustAuth(t, env.a, tok)
		if _, err := env.other.RevokeToken(ctx, rec.ID, now, ev("token.revoke")); err != nil {
			t.Fatal(err)
		}
		// Documented staleness: the entry read at start is still used...
		env.clk.Set(start.Add(time.Second - time.Millisecond))
		mustAuth(t, env.a, tok)
		// ...and not a moment longer.
		env.clk.Set(start.Add(time.Second))
		refused(t, env.a, tok, "token revoked by another replica, after the bound")

		// A binding removed there: gone here after the bound.
		tok2, _ := env.token(t, "deploy", authz.RoleIssuer, time.Time{})
		start = env.clk.Now()
		mustAuth(t, env.a, tok2)
		if _, err := env.other.DeleteBinding(ctx, "b_deploy", ev("binding.delete")); err != nil {
			t.Fatal(err)
		}
		env.clk.Set(start.Add(time.Second))
		if got := mustAuth(t, env.a, tok2); got.Can(authz.PermCertIssue) {
			t.Fatalf("binding removed by another replica, still granted after the bound: %+v", got.Bindings)
		}

		// A principal disabled there: refused here after the bound.
		tok3, _ := env.token(t, "web", authz.RoleIssuer, time.Time{})
		start = env.clk.Now()
		mustAuth(t, env.a, tok3)
		if err := env.other.DisablePrincipal(ctx, "p_web", now, ev("principal.disable")); err != nil {
			t.Fatal(err)
		}
		env.clk.Set(start.Add(time.Second))
		refused(t, env.a, tok3, "principal disabled by another replica, after the bound")
	})
}

// TestTokenCacheWrongSecret: a wrong secret for a cached token ID is
// refused, and no failure is cached.
func TestTokenCacheWrongSecret(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, env *cacheEnv) {
		tok, rec := env.token(t, "ci", authz.RoleIssuer, time.Time{})
		other, _ := tokenFor(t, env.db, rec.PrincipalID, time.Time{})
		refused(t, env.a, "cwt_0123456789abcdef_"+secretOf(t, tok), "unknown id")
		refused(t, env.a, "cwt_"+rec.ID+"_"+secretOf(t, other), "wrong secret, not cached")
		if n := authz.CachedTokens(env.a); n != 0 {
			t.Fatalf("failed authentications cached %d entries", n)
		}
		mustAuth(t, env.a, tok)
		for _, bad := range []string{
			"cwt_" + rec.ID + "_" + secretOf(t, other),
			tok[:len(tok)-1] + flip(tok[len(tok)-1]),
			tok + "A",
			tok[:len(tok)-1],
		} {
			if ae := refused(t, env.a, bad, "wrong secret, cached id"); !strings.Contains(ae.Reason, "wrong secret") || ae.Public != "" {
				t.Errorf("reason %q (public %q), want wrong secret and nothing public", ae.Reason, ae.Public)
			}
		}
		mustAuth(t, env.a, tok)
		if n := authz.CachedTokens(env.a); n != 1 {
			t.Errorf("%d tokens cached, want 1", n)
		}
	})
}

// TestTokenCacheExpiry: a token that expires while cached is refused from
// that instant, with the same message as uncached.
func TestTokenCacheExpiry(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, env *cacheEnv) {
		expires := now.Add(500 * time.Millisecond)
		tok, rec := env.token(t, "ci", authz.RoleIssuer, expires)
		mustAuth(t, env.a, tok)
		env.clk.Set(expires.Add(-time.Microsecond))
		mustAuth(t, env.a, tok)
		env.clk.Set(expires)
		ae := refused(t, env.a, tok, "token expired while cached")
		if want := "token " + rec.ID + " expired at " + expires.Format(time.RFC3339); !strings.Contains(ae.Reason, "expired") || ae.Public != want {
			t.Errorf("reason %q, public %q; want expired and %q", ae.Reason, ae.Public, want)
		}
	})
}

// TestTokenCacheConcurrent: under concurrent use, once a revocation has
// returned no request with that token succeeds, and before it began none
// is refused (go test -race).
func TestTokenCacheConcurrent(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, env *cacheEnv) {
		ctx := context.Background()
		p := newPrincipal(t, env.db, "ci", authz.KindMachine, authz.RoleIssuer)
		var toks []string
		var ids []string
		for range 4 {
			tok, rec := tokenFor(t, env.db, p.ID, time.Time{})
			toks, ids = append(toks, tok), append(ids, rec.ID)
		}
		// revoking: the revocation has begun (it may have committed, and
		// RevokeToken goes on to the sign-in's certificates); revoked: it
		// has returned.
		var revoking, revoked [4]atomic.Bool
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 200 {
					k := (w + i) % len(toks)
					was := revoked[k].Load()
					_, err := env.a.Authenticate(ctx, toks[k])
					if was && err == nil {
						t.Errorf("token %d authenticated after its revocation returned", k)
						return
					}
					if err != nil && !revoking[k].Load() {
						t.Errorf("token %d refused before its revocation: %v", k, err)
						return
					}
				}
			}()
		}
		for k := range 3 {
			revoking[k].Store(true)
			if _, err := env.acc.RevokeToken(ctx, authz.System(), ids[k]); err != nil {
				t.Error(err)
			}
			revoked[k].Store(true)
		}
		wg.Wait()
		for k := range 3 {
			refused(t, env.a, toks[k], "revoked token")
		}
		mustAuth(t, env.a, toks[3])
	})
}

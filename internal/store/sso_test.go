package store_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/certwright/certwright/internal/access"
	"slices"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/store"
)

// TestSSOLoginsTakenOnce: a pending sign-in is taken once (a replayed
// state finds nothing); expired ones are pruned by later saves; past the
// bound, saving is ErrTooManyPending.
func TestSSOLoginsTakenOnce(t *testing.T) {
	t.Parallel()
	onBackends(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		at := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
		l := &authz.SSOLogin{StateHash: "s1", Provider: "corp", Nonce: "n", Verifier: "v", Next: "/certificates", Source: "127.0.0.1",
			CreatedAt: at, ExpiresAt: at.Add(10 * time.Minute)}
		if err := db.SaveSSOLogin(ctx, l, 3); err != nil {
			t.Fatal(err)
		}
		got, err := db.TakeSSOLogin(ctx, "s1")
		if err != nil || got.Provider != "corp" || got.Nonce != "n" || got.Verifier != "v" || got.Next != "/certificates" || !got.ExpiresAt.Equal(l.ExpiresAt) {
			t.Fatalf("take: %+v, %v", got, err)
		}
		if _, err := db.TakeSSOLogin(ctx, "s1"); !errors.Is(err, authz.ErrNotFound) {
			t.Errorf("a second take: %v, want not found", err)
		}
		for i := range 3 {
			l := *l
			l.StateHash = fmt.Sprintf("old%d", i)
			if err := db.SaveSSOLogin(ctx, &l, 3); err != nil {
				t.Fatal(err)
			}
		}
		l2 := *l
		l2.StateHash = "late"
		if err := db.SaveSSOLogin(ctx, &l2, 3); !errors.Is(err, store.ErrTooManyPending) {
			t.Errorf("a fourth pending sign-in: %v, want ErrTooManyPending", err)
		}
		l2.CreatedAt, l2.ExpiresAt = at.Add(time.Hour), at.Add(time.Hour+10*time.Minute)
		if err := db.SaveSSOLogin(ctx, &l2, 3); err != nil {
			t.Errorf("after the others expired: %v", err)
		}
		if _, err := db.TakeSSOLogin(ctx, "old0"); !errors.Is(err, authz.ErrNotFound) {
			t.Errorf("an expired sign-in was not pruned: %v", err)
		}
	})
}

// TestApplySSOSignIn: an unknown identity is refused unless a principal
// may be created; bindings from the provider's claims are added, kept,
// and removed as the claims change, leaving an administrator's bindings
// alone; a disabled principal gets no token and no binding change; the
// audit events come in the same transaction.
func TestApplySSOSignIn(t *testing.T) {
	t.Parallel()
	onBackends(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		at := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
		viewer, _ := authz.BuiltinRole(authz.RoleViewer)
		admin, _ := authz.BuiltinRole(authz.RoleAdmin)
		value := authz.OIDCIdentityValue("https://idp.example.test", "248289761001")
		n := 0
		binding := func(r authz.Role, profiles ...string) authz.Binding {
			n++
			return authz.Binding{ID: fmt.Sprintf("b_%02d", n), Role: r, Scope: authz.Scope{Profiles: profiles}, CreatedAt: at, CreatedBy: "sso:corp"}
		}
		var events []string
		in := func(bs ...authz.Binding) *access.SSOApply {
			n++
			return &access.SSOApply{Kind: authz.IdentityOIDC, Value: value, Source: "oidc:corp", Bindings: bs,
				Token: &authz.Token{ID: fmt.Sprintf("tok%013d", n), Description: "sso", SecretHash: []byte("h"), CreatedAt: at},
				Audit: func(p *authz.PrincipalRecord, created bool, added, removed []authz.Binding) []audit.Event {
					ev := fmt.Sprintf("%s created=%v +%d -%d", p.Name, created, len(added), len(removed))
					events = append(events, ev)
					return []audit.Event{{Time: at, Principal: p.Name, Action: "console.sign_in", Target: p.Name, Outcome: audit.Success}}
				}}
		}
		if _, err := db.ApplySSOSignIn(ctx, in(binding(viewer))); !errors.Is(err, authz.ErrNotFound) {
			t.Fatalf("unknown identity without Create: %v, want not found", err)
		}
		first := in(binding(viewer))
		first.Create = &authz.PrincipalRecord{ID: "p_ada", Name: "ada", Kind: authz.KindHuman, CreatedAt: at, CreatedBy: "sso:corp"}
		res, err := db.ApplySSOSignIn(ctx, first)
		if err != nil || !res.Created || res.Principal.Name != "ada" || len(res.Added) != 1 {
			t.Fatalf("first sign-in: %+v, %v", res, err)
		}
		if err := db.CreateBinding(ctx, &authz.Binding{ID: "b_manual", PrincipalID: "p_ada", Role: admin, CreatedAt: at, CreatedBy: "root"},
			audit.Event{Time: at, Principal: "root", Action: "binding.create", Outcome: audit.Success}); err != nil {
			t.Fatal(err)
		}
		// Same claims: nothing changes. Then the group moves: viewer
		// within pci replaces viewer everywhere.
		if res, err = db.ApplySSOSignIn(ctx, in(binding(viewer))); err != nil || res.Created || len(res.Added)+len(res.Removed) != 0 {
			t.Fatalf("same claims: %+v, %v", res, err)
		}
		if res, err = db.ApplySSOSignIn(ctx, in(binding(viewer, "pci"), binding(viewer, "pci"))); err != nil || len(res.Added) != 1 || len(res.Removed) != 1 {
			t.Fatalf("changed claims: %+v, %v", res, err)
		}
		bs, err := db.ListBindings(ctx, "p_ada")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, b := range bs {
			got = append(got, fmt.Sprintf("%s%v:%s", b.Role.Name, b.Scope.Profiles, b.Source))
		}
		slices.Sort(got)
		if fmt.Sprint(got) != "[admin[]: viewer[pci]:oidc:corp]" {
			t.Errorf("bindings after the change: %v", got)
		}
		// No claims: the provider's binding goes, the administrator's stays.
		if res, err = db.ApplySSOSignIn(ctx, in()); err != nil || len(res.Removed) != 1 {
			t.Fatalf("claims gone: %+v, %v", res, err)
		}
		if bs, _ = db.ListBindings(ctx, "p_ada"); len(bs) != 1 || bs[0].ID != "b_manual" {
			t.Errorf("after the claims went: %+v", bs)
		}
		// Disabled: no token, no change.
		if err := db.DisablePrincipal(ctx, "p_ada", at, audit.Event{Time: at, Principal: "root", Action: "principal.disable", Outcome: audit.Success}); err != nil {
			t.Fatal(err)
		}
		last := in(binding(admin))
		if res, err = db.ApplySSOSignIn(ctx, last); err != nil || res.Principal.DisabledAt == nil || len(res.Added) != 0 {
			t.Fatalf("disabled: %+v, %v", res, err)
		}
		if _, err := db.GetToken(ctx, last.Token.ID); !errors.Is(err, authz.ErrNotFound) {
			t.Errorf("a disabled principal's sign-in stored its token: %v", err)
		}
		if len(events) != 5 || events[0] != "ada created=true +1 -0" {
			t.Errorf("audit callbacks: %v", events)
		}
	})
}

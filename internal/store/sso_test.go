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
	"github.com/certwright/certwright/internal/store/storetest"
)

// TestUseSSOOnce: a digest is new once, then used, on one store and on a
// second store on the same database (another replica); expired rows are
// pruned by later uses, a bounded number at a time, so a digest whose
// time is over is new again.
func TestUseSSOOnce(t *testing.T) {
	t.Parallel()
	storetest.Replicas(t, func(t *testing.T, open func(*testing.T) *store.DB) {
		db, other := open(t), open(t)
		ctx := context.Background()
		at := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
		use := func(db *store.DB, digest string, now time.Time) bool {
			t.Helper()
			fresh, err := db.UseSSOOnce(ctx, digest, now, at.Add(10*time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			return fresh
		}
		if !use(db, "id_token:a", at) {
			t.Fatal("a first use is not new")
		}
		if use(db, "id_token:a", at) {
			t.Error("a second use at the same store is new")
		}
		if use(other, "id_token:a", at.Add(time.Minute)) {
			t.Error("a second use at another replica is new")
		}
		if !use(other, "console_nonce:a", at) {
			t.Error("another kind with the same value is not new")
		}
		for i := range 150 {
			use(db, fmt.Sprintf("id_token:%d", i), at)
		}
		// Past the expiry: the next use prunes up to 100 of the
		// expired rows; enough uses clear them all.
		later := at.Add(time.Hour)
		for range 3 {
			use(db, "id_token:later", later)
		}
		if !use(db, "id_token:a", later) {
			t.Error("a digest whose time is over was not pruned")
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
				Audit: func(res *access.SSOApplied) []audit.Event {
					p := res.Principal
					ev := fmt.Sprintf("%s created=%v +%d -%d", p.Name, res.Created, len(res.Added), len(res.Removed))
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

// TestApplySSOSignInEmail: a verified address becomes the principal's
// e-mail identity from the provider, kept while the provider vouches for
// it, replaced when it changes and removed when it goes; an address
// another principal holds is left to it (the holder reported); an
// identity an administrator mapped is never touched; a disabled
// principal's identities do not change; the token records its provider.
func TestApplySSOSignInEmail(t *testing.T) {
	t.Parallel()
	onBackends(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		at := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
		n := 0
		signIn := func(subject, name, email string) *access.SSOApplied {
			t.Helper()
			n++
			in := &access.SSOApply{Kind: authz.IdentityOIDC, Value: authz.OIDCIdentityValue("https://idp.example.test", subject), Source: "oidc:corp",
				Email: email, At: at,
				Create: &authz.PrincipalRecord{ID: "p_" + name, Name: name, Kind: authz.KindHuman, CreatedAt: at, CreatedBy: "sso:corp"},
				Token:  &authz.Token{ID: fmt.Sprintf("tok%013d", n), Description: "sso", SecretHash: []byte("h"), CreatedAt: at, Via: "oidc:corp"},
				Audit:  func(*access.SSOApplied) []audit.Event { return nil }}
			res, err := db.ApplySSOSignIn(ctx, in)
			if err != nil {
				t.Fatalf("sign-in of %s with %q: %v", name, email, err)
			}
			return res
		}
		emails := func(pid string) string {
			t.Helper()
			ids, err := db.ListIdentities(ctx, pid)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, i := range ids {
				if i.Kind == authz.IdentityEmail {
					out = append(out, i.Value+"("+i.Source+")")
				}
			}
			return fmt.Sprint(out)
		}

		if res := signIn("1", "ada", "ada@example.test"); res.Email != access.SSOEmailAdded || len(res.EmailsRemoved) != 0 {
			t.Errorf("first sign-in: %+v", res)
		}
		if res := signIn("1", "ada", "ada@example.test"); res.Email != access.SSOEmailKept {
			t.Errorf("same address again: %+v", res)
		}
		tok, err := db.GetToken(ctx, fmt.Sprintf("tok%013d", n))
		if err != nil || tok.Via != "oidc:corp" {
			t.Errorf("the sign-in's token: %+v, %v", tok, err)
		}
		if id, err := db.PrincipalByIdentity(ctx, authz.IdentityEmail, "ada@example.test"); err != nil || id != "p_ada" {
			t.Errorf("ada@example.test maps to %q, %v", id, err)
		}

		// bob's provider claims ada's address: it stays ada's.
		if res := signIn("2", "bob", "ada@example.test"); res.Email != access.SSOEmailHeld || res.EmailHolder != "ada" {
			t.Errorf("bob claiming ada's address: %+v", res)
		}
		if got := emails("p_bob"); got != "[]" {
			t.Errorf("bob's e-mail identities: %s", got)
		}

		// An administrator maps another address by hand; the provider
		// changes ada's address, then gives none.
		if err := db.AddIdentity(ctx, &authz.Identity{Kind: authz.IdentityEmail, Value: "ada.lovelace@example.test", PrincipalID: "p_ada", CreatedAt: at},
			audit.Event{Time: at, Principal: "root", Action: "identity.add", Outcome: audit.Success}); err != nil {
			t.Fatal(err)
		}
		res := signIn("1", "ada", "ada@new.example.test")
		if res.Email != access.SSOEmailAdded || fmt.Sprint(res.EmailsRemoved) != "[ada@example.test]" {
			t.Errorf("changed address: %+v", res)
		}
		if got := emails("p_ada"); got != "[ada.lovelace@example.test() ada@new.example.test(oidc:corp)]" {
			t.Errorf("after the change: %s", got)
		}
		if res := signIn("1", "ada", ""); res.Email != "" || fmt.Sprint(res.EmailsRemoved) != "[ada@new.example.test]" {
			t.Errorf("no address: %+v", res)
		}
		if got := emails("p_ada"); got != "[ada.lovelace@example.test()]" {
			t.Errorf("after the address went: %s", got)
		}
		// The address freed, bob's next sign-in gets it.
		if res := signIn("2", "bob", "ada@example.test"); res.Email != access.SSOEmailAdded {
			t.Errorf("bob after ada let go: %+v", res)
		}

		// Disabled: nothing changes.
		if err := db.DisablePrincipal(ctx, "p_bob", at, audit.Event{Time: at, Principal: "root", Action: "principal.disable", Outcome: audit.Success}); err != nil {
			t.Fatal(err)
		}
		if res := signIn("2", "bob", ""); res.Email != "" || len(res.EmailsRemoved) != 0 {
			t.Errorf("disabled bob: %+v", res)
		}
		if got := emails("p_bob"); got != "[ada@example.test(oidc:corp)]" {
			t.Errorf("disabled bob's identities changed: %s", got)
		}
	})
}

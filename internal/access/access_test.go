package access_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/access"
	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/store"
)

func setup(t *testing.T) (*access.Service, *store.DB) {
	t.Helper()
	return setupWith(t, nil)
}

// setupWith is setup with certs revoking person certificates.
func setupWith(t *testing.T, certs access.CertificateRevoker) (*access.Service, *store.DB) {
	t.Helper()
	db, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s, err := access.New(db, clock.NewFake(time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)), slog.New(slog.DiscardHandler), certs)
	if err != nil {
		t.Fatal(err)
	}
	return s, db
}

// principal creates a stored principal holding role, as the system does.
func principal(t *testing.T, s *access.Service, name string, kind authz.Kind, role string) authz.Principal {
	t.Helper()
	ctx := context.Background()
	p, err := s.CreatePrincipal(ctx, authz.System(), name, kind, "")
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Bind(ctx, authz.System(), p.ID, role, authz.Scope{})
	if err != nil {
		t.Fatal(err)
	}
	return authz.Principal{ID: p.ID, Name: name, Kind: kind, Bindings: []authz.Binding{*b}}
}

func events(t *testing.T, db *store.DB) []string {
	t.Helper()
	var out []string
	if err := db.EachAuditEvent(context.Background(), 0, func(e *audit.Event) error {
		out = append(out, e.Action+":"+string(e.Outcome))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestNoEscalation: nobody grants what they do not hold, and an
// administrator cannot lock itself out.
func TestNoEscalation(t *testing.T) {
	s, db := setup(t)
	ctx := context.Background()
	admin := principal(t, s, "root-admin", authz.KindHuman, authz.RoleAdmin)
	// A delegated administrator: may manage principals, holds nothing else.
	if _, err := s.CreateRole(ctx, admin, authz.Role{Name: "iam", Permissions: []authz.Permission{authz.PermPrincipalAdmin, authz.PermPrincipalRead}}); err != nil {
		t.Fatal(err)
	}
	iamRec, err := s.CreatePrincipal(ctx, admin, "iam-bot", authz.KindMachine, "")
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Bind(ctx, admin, iamRec.ID, "iam", authz.Scope{})
	if err != nil {
		t.Fatal(err)
	}
	iam := authz.Principal{ID: iamRec.ID, Name: "iam-bot", Kind: authz.KindMachine, Bindings: []authz.Binding{*b}}
	target := principal(t, s, "app", authz.KindMachine, authz.RoleViewer)
	n := len(events(t, db))

	refused := []struct {
		name string
		do   func() error
	}{
		{"bind admin", func() error { _, err := s.Bind(ctx, iam, target.ID, authz.RoleAdmin, authz.Scope{}); return err }},
		{"bind issuer", func() error { _, err := s.Bind(ctx, iam, target.ID, authz.RoleIssuer, authz.Scope{}); return err }},
		{"bind issuer to itself", func() error { _, err := s.Bind(ctx, iam, iam.ID, authz.RoleIssuer, authz.Scope{}); return err }},
		{"role with key:export", func() error {
			_, err := s.CreateRole(ctx, iam, authz.Role{Name: "sneaky", Permissions: []authz.Permission{authz.PermKeyExport}})
			return err
		}},
		{"viewer binds", func() error { _, err := s.Bind(ctx, target, target.ID, authz.RoleViewer, authz.Scope{}); return err }},
		{"viewer mints a token", func() error { _, _, err := s.CreateToken(ctx, target, target.ID, "", 0); return err }},
	}
	for _, r := range refused {
		if err := r.do(); !errors.Is(err, authz.ErrForbidden) {
			t.Errorf("%s: %v, want ErrForbidden", r.name, err)
		}
	}
	// It may grant what it holds, to a principal holding no more than it
	// (target holds viewer's permissions, which iam-bot does not: see
	// TestManageCannotActOnGreater).
	fresh, err := s.CreatePrincipal(ctx, admin, "fresh", authz.KindMachine, "")
	if err != nil {
		t.Fatal(err)
	}
	n++ // fresh's creation
	if _, err := s.Bind(ctx, iam, fresh.ID, "iam", authz.Scope{}); err != nil {
		t.Errorf("granting its own role: %v", err)
	}
	if got := events(t, db); len(got) != n+1 {
		t.Errorf("refusals wrote events or the grant did not: %v", got[n:])
	}

	// Lock-out guards.
	if _, err := s.Disable(ctx, admin, admin.ID); !errors.Is(err, access.ErrInvalid) {
		t.Errorf("disable itself: %v", err)
	}
	if _, err := s.Unbind(ctx, admin, admin.Bindings[0].ID); !errors.Is(err, access.ErrInvalid) {
		t.Errorf("remove own admin binding: %v", err)
	}
}

func TestValidation(t *testing.T) {
	s, _ := setup(t)
	ctx := context.Background()
	admin := principal(t, s, "admin", authz.KindHuman, authz.RoleAdmin)
	bad := []struct {
		name string
		do   func() error
	}{
		{"upper-case name", func() error { _, err := s.CreatePrincipal(ctx, admin, "Bob", authz.KindHuman, ""); return err }},
		{"bad kind", func() error { _, err := s.CreatePrincipal(ctx, admin, "bob", "robot", ""); return err }},
		{"negative lifetime", func() error { _, _, err := s.CreateToken(ctx, admin, admin.ID, "", -time.Hour); return err }},
		{"huge lifetime", func() error { _, _, err := s.CreateToken(ctx, admin, admin.ID, "", 20*365*24*time.Hour); return err }},
		{"built-in role name", func() error {
			_, err := s.CreateRole(ctx, admin, authz.Role{Name: "admin", Permissions: []authz.Permission{authz.PermCARead}})
			return err
		}},
		{"unknown permission", func() error {
			_, err := s.CreateRole(ctx, admin, authz.Role{Name: "x", Permissions: []authz.Permission{"ca:everything"}})
			return err
		}},
		{"empty role", func() error { _, err := s.CreateRole(ctx, admin, authz.Role{Name: "x"}); return err }},
		{"bad pattern", func() error {
			_, err := s.Bind(ctx, admin, admin.ID, authz.RoleViewer, authz.Scope{Names: []string{"a.*.internal"}})
			return err
		}},
		{"bad identity URI", func() error { _, err := s.AddIdentity(ctx, admin, admin.ID, "uri", "not a uri"); return err }},
		{"bad identity kind", func() error { _, err := s.AddIdentity(ctx, admin, admin.ID, "ldap", "cn=a"); return err }},
		{"bad identity e-mail address", func() error {
			_, err := s.AddIdentity(ctx, admin, admin.ID, "email", "Alice <a@b.example>")
			return err
		}},
	}
	for _, b := range bad {
		err := b.do()
		if !errors.Is(err, access.ErrInvalid) && !errors.Is(err, store.ErrConflict) {
			t.Errorf("%s: %v, want ErrInvalid", b.name, err)
		}
	}
	// A token for a disabled principal is refused.
	p, err := s.CreatePrincipal(ctx, admin, "gone", authz.KindMachine, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Disable(ctx, admin, p.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CreateToken(ctx, admin, p.ID, "", 0); err == nil || !strings.Contains(err.Error(), "disabled") {
		t.Errorf("token for a disabled principal: %v", err)
	}
}

// TestManageCannotActOnGreater: principal:manage is not admin in
// disguise. A delegated administrator holding only principal:manage and
// principal:read cannot mint tokens for, revoke the tokens of, map
// identities to, bind or unbind roles of, or disable a principal holding
// more than it does — an admin above all — and nothing is stored or
// audited for the refusals; on a lesser principal it may do all of it.
func TestManageCannotActOnGreater(t *testing.T) {
	s, db := setup(t)
	ctx := context.Background()
	admin := principal(t, s, "root-admin", authz.KindHuman, authz.RoleAdmin)
	victim := principal(t, s, "deploy-admin", authz.KindMachine, authz.RoleAdmin)
	issuer := principal(t, s, "ci", authz.KindMachine, authz.RoleIssuer)
	if _, err := s.CreateRole(ctx, admin, authz.Role{Name: "iam", Permissions: []authz.Permission{authz.PermPrincipalAdmin, authz.PermPrincipalRead}}); err != nil {
		t.Fatal(err)
	}
	iam := principal(t, s, "iam-bot", authz.KindMachine, "iam")
	_, victimTok, err := s.CreateToken(ctx, admin, victim.ID, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddIdentity(ctx, admin, victim.ID, "uri", "spiffe://example.internal/deploy-admin"); err != nil {
		t.Fatal(err)
	}
	n := len(events(t, db))

	for _, target := range []authz.Principal{victim, issuer} {
		refused := []struct {
			name string
			do   func() error
		}{
			{"token create", func() error { _, _, err := s.CreateToken(ctx, iam, target.ID, "", 0); return err }},
			{"identity add", func() error {
				_, err := s.AddIdentity(ctx, iam, target.ID, "uri", "spiffe://example.internal/stolen")
				return err
			}},
			{"role bind", func() error { _, err := s.Bind(ctx, iam, target.ID, "iam", authz.Scope{}); return err }},
			{"role unbind", func() error { _, err := s.Unbind(ctx, iam, target.Bindings[0].ID); return err }},
			{"disable", func() error { _, err := s.Disable(ctx, iam, target.ID); return err }},
		}
		if target.ID == victim.ID {
			refused = append(refused,
				struct {
					name string
					do   func() error
				}{"token revoke", func() error { _, err := s.RevokeToken(ctx, iam, victimTok.ID); return err }},
				struct {
					name string
					do   func() error
				}{"identity remove", func() error {
					return s.RemoveIdentity(ctx, iam, target.ID, "uri", "spiffe://example.internal/deploy-admin")
				}})
		}
		for _, r := range refused {
			err := r.do()
			if !errors.Is(err, authz.ErrForbidden) {
				t.Errorf("%s on %s: %v, want ErrForbidden", r.name, target.Name, err)
				continue
			}
			if !strings.Contains(err.Error(), target.Name) {
				t.Errorf("%s on %s: error %q does not name the target", r.name, target.Name, err)
			}
		}
	}
	if got := events(t, db); len(got) != n {
		t.Errorf("refusals wrote events: %v", got[n:])
	}
	if ts, _ := db.ListTokens(ctx, victim.ID); len(ts) != 1 || ts[0].RevokedAt != nil {
		t.Errorf("victim's tokens changed: %+v", ts)
	}
	if p, _ := db.GetPrincipal(ctx, victim.ID); p.DisabledAt != nil {
		t.Error("victim disabled")
	}
	if bs, _ := db.ListBindings(ctx, victim.ID); len(bs) != 1 {
		t.Errorf("victim's bindings changed: %d", len(bs))
	}

	// A scoped admin binding is still an admin: only an unscoped admin acts on it.
	scoped := principal(t, s, "team-admin", authz.KindMachine, authz.RoleViewer)
	if _, err := s.Bind(ctx, admin, scoped.ID, authz.RoleAdmin, authz.Scope{CAs: []string{"team"}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CreateToken(ctx, iam, scoped.ID, "", 0); !errors.Is(err, authz.ErrForbidden) {
		t.Errorf("token for a scoped admin: %v, want ErrForbidden", err)
	}

	// On a lesser principal, everything works.
	lesser := principal(t, s, "helper", authz.KindMachine, "iam")
	_, tok, err := s.CreateToken(ctx, iam, lesser.ID, "", 0)
	if err != nil {
		t.Fatalf("token for a lesser principal: %v", err)
	}
	if _, err := s.RevokeToken(ctx, iam, tok.ID); err != nil {
		t.Errorf("revoke a lesser principal's token: %v", err)
	}
	if _, err := s.AddIdentity(ctx, iam, lesser.ID, "dns", "helper.example.internal"); err != nil {
		t.Errorf("identity for a lesser principal: %v", err)
	}
	if err := s.RemoveIdentity(ctx, iam, lesser.ID, "dns", "helper.example.internal"); err != nil {
		t.Errorf("remove identity of a lesser principal: %v", err)
	}
	if _, err := s.Unbind(ctx, iam, lesser.Bindings[0].ID); err != nil {
		t.Errorf("unbind a lesser principal: %v", err)
	}
	if _, err := s.Bind(ctx, iam, lesser.ID, "iam", authz.Scope{}); err != nil {
		t.Errorf("bind a lesser principal: %v", err)
	}
	if _, err := s.Disable(ctx, iam, lesser.ID); err != nil {
		t.Errorf("disable a lesser principal: %v", err)
	}
	// An unscoped admin acts on admins.
	if _, _, err := s.CreateToken(ctx, admin, victim.ID, "", 0); err != nil {
		t.Errorf("admin mints a token for an admin: %v", err)
	}
}

// TestMayActOnScopes: a scoped grant covers only a narrower or equal scope.
func TestMayActOnScopes(t *testing.T) {
	t.Parallel()
	issuerRole, _ := authz.BuiltinRole(authz.RoleIssuer)
	with := func(name string, scopes ...authz.Scope) authz.Principal {
		p := authz.Principal{ID: name, Name: name}
		for _, sc := range scopes {
			p.Bindings = append(p.Bindings, authz.Binding{Role: issuerRole, Scope: sc})
		}
		return p
	}
	tests := []struct {
		name        string
		who, target authz.Principal
		ok          bool
	}{
		{"unscoped over scoped", with("w", authz.Scope{}), with("t", authz.Scope{CAs: []string{"team"}}), true},
		{"scoped over unscoped", with("w", authz.Scope{CAs: []string{"team"}}), with("t", authz.Scope{}), false},
		{"same CA", with("w", authz.Scope{CAs: []string{"team"}}), with("t", authz.Scope{CAs: []string{"team"}}), true},
		{"other CA", with("w", authz.Scope{CAs: []string{"team"}}), with("t", authz.Scope{CAs: []string{"issuing"}}), false},
		{"wider names", with("w", authz.Scope{Names: []string{"*.example.internal"}}), with("t", authz.Scope{Names: []string{"*.svc.example.internal", "a.example.internal"}}), true},
		{"narrower names", with("w", authz.Scope{Names: []string{"*.svc.example.internal"}}), with("t", authz.Scope{Names: []string{"*.example.internal"}}), false},
		{"network inside", with("w", authz.Scope{Names: []string{"10.0.0.0/8"}}), with("t", authz.Scope{Names: []string{"10.1.0.0/16", "10.2.3.4"}}), true},
		{"network outside", with("w", authz.Scope{Names: []string{"10.1.0.0/16"}}), with("t", authz.Scope{Names: []string{"10.0.0.0/8"}}), false},
		{"nothing held", with("w"), with("t", authz.Scope{Profiles: []string{"x"}}), false},
		{"target holds nothing", with("w"), with("t"), true},
	}
	for _, tt := range tests {
		err := access.MayActOn(tt.who, tt.target)
		if tt.ok && err != nil || !tt.ok && !errors.Is(err, authz.ErrForbidden) {
			t.Errorf("%s: %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

// TestReservedNames: no principal takes a name the server uses.
func TestReservedNames(t *testing.T) {
	s, db := setup(t)
	ctx := context.Background()
	n := len(events(t, db))
	for _, name := range []string{"system", "anonymous", "p_0123456789abcdef", "p0123456789abcdef"} {
		if _, err := s.CreatePrincipal(ctx, authz.System(), name, authz.KindMachine, ""); !errors.Is(err, access.ErrInvalid) || !strings.Contains(err.Error(), name) {
			t.Errorf("principal %q: %v, want ErrInvalid naming it", name, err)
		}
	}
	for _, name := range []string{"acme:default/1", "est:lab", "scep:mdm", "SCEP:mdm"} {
		if err := authz.ReservedName(name); err == nil {
			t.Errorf("%q is not reserved: its namespace names requesters the server makes", name)
		}
	}
	if got := events(t, db); len(got) != n {
		t.Errorf("refusals wrote events: %v", got[n:])
	}
	if _, err := s.CreatePrincipal(ctx, authz.System(), "systems", authz.KindMachine, ""); err != nil {
		t.Errorf("a name merely starting like a reserved one: %v", err)
	}
}

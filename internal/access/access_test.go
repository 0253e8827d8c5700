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
	db, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s, err := access.New(db, clock.NewFake(time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)), slog.New(slog.DiscardHandler))
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
	// It may grant what it holds.
	if _, err := s.Bind(ctx, iam, target.ID, "iam", authz.Scope{}); err != nil {
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
		{"bad identity kind", func() error { _, err := s.AddIdentity(ctx, admin, admin.ID, "email", "a@b"); return err }},
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

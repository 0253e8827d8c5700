package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/issue"
	"github.com/certwright/certwright/internal/store"
)

// accessTests cover principals, tokens, identities, roles, bindings and
// approval requests.
var accessTests = []struct {
	name string
	fn   func(*testing.T, func(*testing.T) *store.DB)
}{
	{"Principals", testPrincipals},
	{"DisablePrincipal", testDisablePrincipal},
	{"LoadPrincipal", testLoadPrincipal},
	{"APITokens", testAPITokens},
	{"ConsoleSessions", testConsoleSessions},
	{"Identities", testIdentities},
	{"Roles", testRoles},
	{"Bindings", testBindings},
	{"ApprovalRequests", testApprovalRequests},
	{"UpdateApprovalRequest", testUpdateApprovalRequest},
	{"ExpireApprovalRequests", testExpireApprovalRequests},
	{"TokenMigration", testTokenMigration},
	{"SignInCertificates", testSignInCertificates},
}

// auditLog tracks which events a test has seen, so that each mutation can
// be checked to have appended exactly its own events.
type auditLog struct {
	db   *store.DB
	next int64
}

func newAuditLog(t *testing.T, db *store.DB) *auditLog {
	t.Helper()
	l := &auditLog{db: db}
	l.read(t)
	return l
}

// read returns the events appended since the last read.
func (l *auditLog) read(t *testing.T) []*audit.Event {
	t.Helper()
	var out []*audit.Event
	must(t, l.db.EachAuditEvent(context.Background(), l.next, func(e *audit.Event) error {
		c := *e
		out = append(out, &c)
		l.next = e.Seq + 1
		return nil
	}))
	return out
}

// expect checks that exactly the events with the given "action target"
// were appended since the last read.
func (l *auditLog) expect(t *testing.T, want ...string) {
	t.Helper()
	var got []string
	for _, e := range l.read(t) {
		got = append(got, e.Action+" "+e.Target)
	}
	if !slices.Equal(got, want) {
		t.Errorf("audit events = %q, want %q", got, want)
	}
}

func ev(action, target string) audit.Event {
	return audit.Event{Time: base(), Principal: "tester", Action: action, Target: target, Outcome: audit.Success}
}

func newPrincipal(id, name string) *authz.PrincipalRecord {
	return &authz.PrincipalRecord{ID: id, Name: name, Kind: authz.KindMachine, Description: "the " + name,
		CreatedAt: base(), CreatedBy: "tester"}
}

func checkPrincipal(t *testing.T, got, want *authz.PrincipalRecord) {
	t.Helper()
	checkTime(t, "CreatedAt", got.CreatedAt, want.CreatedAt)
	checkNullTime(t, "DisabledAt", got.DisabledAt, want.DisabledAt)
	g, w := *got, *want
	g.CreatedAt, g.DisabledAt, w.CreatedAt, w.DisabledAt = time.Time{}, nil, time.Time{}, nil
	if g != w {
		t.Errorf("principal = %+v, want %+v", g, w)
	}
}

func testPrincipals(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	log := newAuditLog(t, db)

	ps, err := db.ListPrincipals(ctx)
	must(t, err)
	if len(ps) != 0 {
		t.Fatalf("ListPrincipals on empty store = %d", len(ps))
	}
	bob := newPrincipal("p1", "bob")
	bob.Kind = authz.KindHuman
	alice := newPrincipal("p2", "alice")
	alice.DisabledAt = ptr(base().Add(time.Hour))
	must(t, db.CreatePrincipal(ctx, bob, ev("principal.create", "bob")))
	must(t, db.CreatePrincipal(ctx, alice, ev("principal.create", "alice")))
	log.expect(t, "principal.create bob", "principal.create alice")

	err = db.CreatePrincipal(ctx, newPrincipal("p1", "carol"), ev("principal.create", "carol"))
	wantErr(t, err, store.ErrConflict)
	if !strings.Contains(err.Error(), "ID") {
		t.Errorf("conflict on ID = %v, want it to name the ID", err)
	}
	err = db.CreatePrincipal(ctx, newPrincipal("p3", "bob"), ev("principal.create", "bob"))
	wantErr(t, err, store.ErrConflict)
	if !strings.Contains(err.Error(), "name") {
		t.Errorf("conflict on name = %v, want it to name the name", err)
	}
	log.expect(t)

	for _, key := range []string{"p1", "bob"} {
		got, err := db.GetPrincipal(ctx, key)
		must(t, err)
		checkPrincipal(t, got, bob)
	}
	got, err := db.GetPrincipal(ctx, "alice")
	must(t, err)
	checkPrincipal(t, got, alice)
	_, err = db.GetPrincipal(ctx, "nobody")
	wantErr(t, err, store.ErrNotFound)

	// An ID match wins over a name match.
	must(t, db.CreatePrincipal(ctx, newPrincipal("bob2", "p1"), ev("principal.create", "p1")))
	got, err = db.GetPrincipal(ctx, "p1")
	must(t, err)
	if got.ID != "p1" {
		t.Errorf("GetPrincipal(p1) = %s, want the principal whose ID is p1", got.ID)
	}

	ps, err = db.ListPrincipals(ctx)
	must(t, err)
	var names []string
	for _, p := range ps {
		names = append(names, p.Name)
	}
	if want := []string{"alice", "bob", "p1"}; !slices.Equal(names, want) {
		t.Errorf("ListPrincipals = %q, want %q", names, want)
	}
}

func newToken(id, principal string, created time.Time) *authz.Token {
	h := sha256.Sum256([]byte("secret of " + id))
	return &authz.Token{ID: id, PrincipalID: principal, Description: "token " + id, SecretHash: h[:], CreatedAt: created}
}

func checkToken(t *testing.T, got, want *authz.Token) {
	t.Helper()
	checkTime(t, "CreatedAt", got.CreatedAt, want.CreatedAt)
	checkNullTime(t, "ExpiresAt", got.ExpiresAt, want.ExpiresAt)
	checkNullTime(t, "RevokedAt", got.RevokedAt, want.RevokedAt)
	checkNullTime(t, "LastUsedAt", got.LastUsedAt, want.LastUsedAt)
	g, w := *got, *want
	g.CreatedAt, g.ExpiresAt, g.RevokedAt, g.LastUsedAt = time.Time{}, nil, nil, nil
	w.CreatedAt, w.ExpiresAt, w.RevokedAt, w.LastUsedAt = time.Time{}, nil, nil, nil
	if !reflect.DeepEqual(g, w) {
		t.Errorf("token = %+v, want %+v", g, w)
	}
}

func testAPITokens(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	must(t, db.CreatePrincipal(ctx, newPrincipal("p1", "ci"), ev("principal.create", "ci")))
	must(t, db.CreatePrincipal(ctx, newPrincipal("p2", "deploy"), ev("principal.create", "deploy")))
	log := newAuditLog(t, db)

	t1 := newToken("00000000000000t1", "p1", base())
	t1.ExpiresAt = ptr(base().Add(24 * time.Hour))
	t2 := newToken("00000000000000t2", "p2", base().Add(time.Second))
	t3 := newToken("00000000000000t3", "p1", base().Add(2*time.Second))
	t3.RevokedAt = ptr(base().Add(time.Minute))
	t3.LastUsedAt = ptr(base().Add(30 * time.Second))
	for _, tok := range []*authz.Token{t1, t2, t3} {
		must(t, db.CreateToken(ctx, tok, ev("token.create", tok.ID)))
	}
	log.expect(t, "token.create 00000000000000t1", "token.create 00000000000000t2", "token.create 00000000000000t3")

	wantErr(t, db.CreateToken(ctx, newToken(t1.ID, "p2", base()), ev("token.create", t1.ID)), store.ErrConflict)
	wantErr(t, db.CreateToken(ctx, newToken("00000000000000t9", "nobody", base()), ev("token.create", "t9")), store.ErrNotFound)
	log.expect(t)

	got, err := db.GetToken(ctx, t1.ID)
	must(t, err)
	t1.Principal, t2.Principal, t3.Principal = "ci", "deploy", "ci"
	checkToken(t, got, t1)
	_, err = db.GetToken(ctx, "nope")
	wantErr(t, err, store.ErrNotFound)

	for _, tc := range []struct {
		principal string
		want      []*authz.Token
	}{
		{"", []*authz.Token{t1, t2, t3}},
		{"p1", []*authz.Token{t1, t3}},
		{"p2", []*authz.Token{t2}},
		{"nobody", nil},
	} {
		got, err := db.ListTokens(ctx, tc.principal)
		must(t, err)
		if len(got) != len(tc.want) {
			t.Fatalf("ListTokens(%q) = %d tokens, want %d", tc.principal, len(got), len(tc.want))
		}
		for i := range got {
			checkToken(t, got[i], tc.want[i])
		}
	}

	at := base().Add(time.Hour)
	revoked, err := db.RevokeToken(ctx, t1.ID, at, ev("token.revoke", t1.ID))
	must(t, err)
	t1.RevokedAt = &at
	checkToken(t, revoked, t1)
	log.expect(t, "token.revoke "+t1.ID)
	again, err := db.RevokeToken(ctx, t1.ID, at.Add(time.Hour), ev("token.revoke", t1.ID))
	must(t, err)
	checkToken(t, again, t1)
	_, err = db.RevokeToken(ctx, "nope", at, ev("token.revoke", "nope"))
	wantErr(t, err, store.ErrNotFound)
	log.expect(t)

	used := base().Add(2 * time.Hour)
	must(t, db.TouchToken(ctx, t2.ID, used))
	wantErr(t, db.TouchToken(ctx, "nope", used), store.ErrNotFound)
	log.expect(t)
	got, err = db.GetToken(ctx, t2.ID)
	must(t, err)
	t2.LastUsedAt = &used
	checkToken(t, got, t2)
}

func testDisablePrincipal(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	must(t, db.CreatePrincipal(ctx, newPrincipal("p1", "ci"), ev("principal.create", "ci")))
	must(t, db.CreatePrincipal(ctx, newPrincipal("p2", "other"), ev("principal.create", "other")))
	live := newToken("000000000000live", "p1", base())
	old := newToken("0000000000000old", "p1", base())
	old.RevokedAt = ptr(base().Add(time.Minute))
	other := newToken("00000000000other", "p2", base())
	for _, tok := range []*authz.Token{live, old, other} {
		must(t, db.CreateToken(ctx, tok, ev("token.create", tok.ID)))
	}
	log := newAuditLog(t, db)

	at := base().Add(time.Hour)
	must(t, db.DisablePrincipal(ctx, "p1", at, ev("principal.disable", "ci")))
	log.expect(t, "principal.disable ci")
	p, err := db.GetPrincipal(ctx, "p1")
	must(t, err)
	checkNullTime(t, "DisabledAt", p.DisabledAt, &at)
	for _, tc := range []struct {
		id   string
		want *time.Time
	}{{live.ID, &at}, {old.ID, old.RevokedAt}, {other.ID, nil}} {
		tok, err := db.GetToken(ctx, tc.id)
		must(t, err)
		checkNullTime(t, "RevokedAt of "+tc.id, tok.RevokedAt, tc.want)
	}

	// Again: nothing to change, no event, and the first time stands.
	must(t, db.DisablePrincipal(ctx, "p1", at.Add(time.Hour), ev("principal.disable", "ci")))
	log.expect(t)
	p, err = db.GetPrincipal(ctx, "p1")
	must(t, err)
	checkNullTime(t, "DisabledAt", p.DisabledAt, &at)

	wantErr(t, db.DisablePrincipal(ctx, "nobody", at, ev("principal.disable", "nobody")), store.ErrNotFound)
	log.expect(t)
}

func testLoadPrincipal(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	must(t, db.CreatePrincipal(ctx, newPrincipal("p1", "ci"), ev("principal.create", "ci")))
	must(t, db.CreatePrincipal(ctx, newPrincipal("p2", "other"), ev("principal.create", "other")))
	custom := &authz.Role{Name: "reporter", Description: "reports", CreatedAt: base(),
		Permissions: []authz.Permission{authz.PermReportRead, authz.PermAuditRead}}
	must(t, db.CreateRole(ctx, custom, ev("role.create", "reporter")))
	issuer, _ := authz.BuiltinRole(authz.RoleIssuer)
	scope := authz.Scope{CAs: []string{"intermediate"}, Profiles: []string{"server"}, Names: []string{"*.example.com"}}
	bindings := []*authz.Binding{
		{ID: "b1", PrincipalID: "p1", Role: authz.Role{Name: authz.RoleIssuer}, Scope: scope, CreatedAt: base(), CreatedBy: "tester"},
		{ID: "b2", PrincipalID: "p1", Role: authz.Role{Name: "reporter"}, CreatedAt: base().Add(time.Second), CreatedBy: "tester"},
		{ID: "b3", PrincipalID: "p1", Role: authz.Role{Name: "gone"}, CreatedAt: base().Add(2 * time.Second), CreatedBy: "tester"},
		{ID: "b4", PrincipalID: "p2", Role: authz.Role{Name: authz.RoleAdmin}, CreatedAt: base(), CreatedBy: "tester"},
	}
	for _, b := range bindings {
		must(t, db.CreateBinding(ctx, b, ev("binding.create", b.ID)))
	}

	p, rec, err := db.LoadPrincipal(ctx, "p1")
	must(t, err)
	checkPrincipal(t, rec, newPrincipal("p1", "ci"))
	if p.ID != "p1" || p.Name != "ci" || p.Kind != authz.KindMachine {
		t.Errorf("LoadPrincipal = %+v", p)
	}
	if len(p.Bindings) != 2 {
		t.Fatalf("LoadPrincipal bindings = %+v, want b1 and b2 (b3's role is unknown)", p.Bindings)
	}
	b1, b2 := p.Bindings[0], p.Bindings[1]
	checkTime(t, "b1 CreatedAt", b1.CreatedAt, base())
	if b1.ID != "b1" || b1.PrincipalID != "p1" || b1.Principal != "ci" || b1.CreatedBy != "tester" ||
		!reflect.DeepEqual(b1.Scope, scope) || !reflect.DeepEqual(b1.Role, issuer) {
		t.Errorf("binding b1 = %+v, want issuer (%+v) within %+v", b1, issuer, scope)
	}
	if b2.ID != "b2" || b2.Role.Name != "reporter" || b2.Role.Builtin || b2.Role.Description != "reports" ||
		!slices.Equal(b2.Role.Permissions, custom.Permissions) || !b2.Scope.Empty() {
		t.Errorf("binding b2 = %+v, want the custom role %+v, unscoped", b2, custom)
	}
	checkTime(t, "custom role CreatedAt", b2.Role.CreatedAt, base())
	if err := p.Allow(authz.PermCertIssue, authz.Resource{CAName: "intermediate", Profile: "server", Names: []string{"a.example.com"}}); err != nil {
		t.Errorf("Allow(cert:issue) within scope: %v", err)
	}
	if !p.Can(authz.PermReportRead) || p.Can(authz.PermCAManage) {
		t.Errorf("loaded principal's permissions are wrong: %+v", p.Bindings)
	}

	p, _, err = db.LoadPrincipal(ctx, "p2")
	must(t, err)
	if len(p.Bindings) != 1 || !p.Can(authz.PermPrincipalAdmin) {
		t.Errorf("LoadPrincipal(p2) = %+v, want one admin binding", p)
	}
	_, _, err = db.LoadPrincipal(ctx, "ci") // IDs only, not names
	wantErr(t, err, store.ErrNotFound)

	// A principal without bindings loads with none.
	must(t, db.CreatePrincipal(ctx, newPrincipal("p3", "idle"), ev("principal.create", "idle")))
	p, _, err = db.LoadPrincipal(ctx, "p3")
	must(t, err)
	if len(p.Bindings) != 0 || p.Can(authz.PermCARead) {
		t.Errorf("LoadPrincipal(p3) = %+v, want no bindings", p)
	}
}

func testIdentities(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	must(t, db.CreatePrincipal(ctx, newPrincipal("p1", "web"), ev("principal.create", "web")))
	must(t, db.CreatePrincipal(ctx, newPrincipal("p2", "api"), ev("principal.create", "api")))
	log := newAuditLog(t, db)

	ids := []*authz.Identity{
		{Kind: "uri", Value: "spiffe://example.org/web", PrincipalID: "p1", CreatedAt: base()},
		{Kind: "dns", Value: "web.example.org", PrincipalID: "p1", CreatedAt: base()},
		{Kind: "dns", Value: "api.example.org", PrincipalID: "p2", CreatedAt: base()},
	}
	for _, i := range ids {
		must(t, db.AddIdentity(ctx, i, ev("identity.add", i.Value)))
	}
	log.expect(t, "identity.add spiffe://example.org/web", "identity.add web.example.org", "identity.add api.example.org")
	wantErr(t, db.AddIdentity(ctx, &authz.Identity{Kind: "dns", Value: "web.example.org", PrincipalID: "p2", CreatedAt: base()},
		ev("identity.add", "web.example.org")), store.ErrConflict)
	wantErr(t, db.AddIdentity(ctx, &authz.Identity{Kind: "dns", Value: "x.example.org", PrincipalID: "nobody", CreatedAt: base()},
		ev("identity.add", "x.example.org")), store.ErrNotFound)
	log.expect(t)

	id, err := db.PrincipalByIdentity(ctx, "uri", "spiffe://example.org/web")
	must(t, err)
	if id != "p1" {
		t.Errorf("PrincipalByIdentity = %q, want p1", id)
	}
	_, err = db.PrincipalByIdentity(ctx, "uri", "web.example.org") // the kind matters
	wantErr(t, err, store.ErrNotFound)

	all, err := db.ListIdentities(ctx, "")
	must(t, err)
	var got []string
	for _, i := range all {
		checkTime(t, "CreatedAt", i.CreatedAt, base())
		got = append(got, i.Principal+" "+i.PrincipalID+" "+i.Kind+":"+i.Value)
	}
	want := []string{"api p2 dns:api.example.org", "web p1 dns:web.example.org", "web p1 uri:spiffe://example.org/web"}
	if !slices.Equal(got, want) {
		t.Errorf("ListIdentities = %q, want %q", got, want)
	}
	mine, err := db.ListIdentities(ctx, "p2")
	must(t, err)
	if len(mine) != 1 || mine[0].Value != "api.example.org" {
		t.Errorf("ListIdentities(p2) = %+v", mine)
	}

	must(t, db.RemoveIdentity(ctx, "dns", "web.example.org", ev("identity.remove", "web.example.org")))
	log.expect(t, "identity.remove web.example.org")
	wantErr(t, db.RemoveIdentity(ctx, "dns", "web.example.org", ev("identity.remove", "web.example.org")), store.ErrNotFound)
	log.expect(t)
	_, err = db.PrincipalByIdentity(ctx, "dns", "web.example.org")
	wantErr(t, err, store.ErrNotFound)
}

func testRoles(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	must(t, db.CreatePrincipal(ctx, newPrincipal("p1", "ci"), ev("principal.create", "ci")))
	log := newAuditLog(t, db)

	zeta := &authz.Role{Name: "zeta", Description: "z", Permissions: []authz.Permission{authz.PermCertRead}, CreatedAt: base()}
	alpha := &authz.Role{Name: "alpha", Description: "a", Permissions: []authz.Permission{authz.PermCARead, authz.PermCAManage}, CreatedAt: base()}
	must(t, db.CreateRole(ctx, zeta, ev("role.create", "zeta")))
	must(t, db.CreateRole(ctx, alpha, ev("role.create", "alpha")))
	log.expect(t, "role.create zeta", "role.create alpha")
	wantErr(t, db.CreateRole(ctx, &authz.Role{Name: "zeta", CreatedAt: base()}, ev("role.create", "zeta")), store.ErrConflict)
	wantErr(t, db.CreateRole(ctx, &authz.Role{Name: authz.RoleViewer, CreatedAt: base()}, ev("role.create", "viewer")), store.ErrConflict)
	log.expect(t)

	got, err := db.GetRole(ctx, "alpha")
	must(t, err)
	checkTime(t, "CreatedAt", got.CreatedAt, base())
	if got.Name != "alpha" || got.Description != "a" || got.Builtin || !slices.Equal(got.Permissions, alpha.Permissions) {
		t.Errorf("GetRole(alpha) = %+v, want %+v", got, alpha)
	}
	got, err = db.GetRole(ctx, authz.RoleAuditor)
	must(t, err)
	if want, _ := authz.BuiltinRole(authz.RoleAuditor); !reflect.DeepEqual(*got, want) {
		t.Errorf("GetRole(auditor) = %+v, want %+v", got, want)
	}
	_, err = db.GetRole(ctx, "nope")
	wantErr(t, err, store.ErrNotFound)

	roles, err := db.ListRoles(ctx)
	must(t, err)
	var names, want []string
	for _, r := range roles {
		names = append(names, r.Name)
	}
	for _, r := range authz.BuiltinRoles() {
		want = append(want, r.Name)
	}
	want = append(want, "alpha", "zeta")
	if !slices.Equal(names, want) {
		t.Errorf("ListRoles = %q, want %q", names, want)
	}
	if !roles[0].Builtin || roles[len(roles)-1].Builtin {
		t.Errorf("ListRoles Builtin flags wrong: first %+v, last %+v", roles[0], roles[len(roles)-1])
	}

	for _, id := range []string{"b1", "b2"} {
		must(t, db.CreateBinding(ctx, &authz.Binding{ID: id, PrincipalID: "p1", Role: authz.Role{Name: "alpha"},
			CreatedAt: base(), CreatedBy: "tester"}, ev("binding.create", id)))
	}
	log.read(t)
	err = db.DeleteRole(ctx, "alpha", ev("role.delete", "alpha"))
	wantErr(t, err, store.ErrConflict)
	if !strings.Contains(err.Error(), "2 bindings") {
		t.Errorf("DeleteRole(bound) = %v, want it to say 2 bindings use it", err)
	}
	wantErr(t, db.DeleteRole(ctx, authz.RoleAdmin, ev("role.delete", "admin")), store.ErrConflict)
	wantErr(t, db.DeleteRole(ctx, "nope", ev("role.delete", "nope")), store.ErrNotFound)
	log.expect(t)
	if _, err := db.GetRole(ctx, "alpha"); err != nil {
		t.Errorf("a refused DeleteRole deleted the role: %v", err)
	}

	for _, id := range []string{"b1", "b2"} {
		_, err := db.DeleteBinding(ctx, id, ev("binding.delete", id))
		must(t, err)
	}
	log.read(t)
	must(t, db.DeleteRole(ctx, "alpha", ev("role.delete", "alpha")))
	log.expect(t, "role.delete alpha")
	_, err = db.GetRole(ctx, "alpha")
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, db.DeleteRole(ctx, "alpha", ev("role.delete", "alpha")), store.ErrNotFound)
	log.expect(t)
}

func testBindings(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	must(t, db.CreatePrincipal(ctx, newPrincipal("p1", "zed"), ev("principal.create", "zed")))
	must(t, db.CreatePrincipal(ctx, newPrincipal("p2", "amy"), ev("principal.create", "amy")))
	must(t, db.CreateRole(ctx, &authz.Role{Name: "custom", Permissions: []authz.Permission{authz.PermCertRead}, CreatedAt: base()},
		ev("role.create", "custom")))
	log := newAuditLog(t, db)

	scope := authz.Scope{Names: []string{"*.internal"}}
	bs := []*authz.Binding{
		{ID: "b1", PrincipalID: "p1", Role: authz.Role{Name: authz.RoleViewer}, Scope: scope, CreatedAt: base(), CreatedBy: "tester"},
		{ID: "b2", PrincipalID: "p2", Role: authz.Role{Name: "custom"}, CreatedAt: base().Add(time.Second), CreatedBy: "tester"},
		{ID: "b3", PrincipalID: "p1", Role: authz.Role{Name: "unknown"}, CreatedAt: base().Add(2 * time.Second), CreatedBy: "tester"},
	}
	for _, b := range bs {
		must(t, db.CreateBinding(ctx, b, ev("binding.create", b.ID)))
	}
	log.expect(t, "binding.create b1", "binding.create b2", "binding.create b3")
	wantErr(t, db.CreateBinding(ctx, &authz.Binding{ID: "b1", PrincipalID: "p2", Role: authz.Role{Name: authz.RoleAdmin}, CreatedAt: base()},
		ev("binding.create", "b1")), store.ErrConflict)
	wantErr(t, db.CreateBinding(ctx, &authz.Binding{ID: "b9", PrincipalID: "nobody", Role: authz.Role{Name: authz.RoleAdmin}, CreatedAt: base()},
		ev("binding.create", "b9")), store.ErrNotFound)
	log.expect(t)

	all, err := db.ListBindings(ctx, "")
	must(t, err)
	var got []string
	for _, b := range all {
		got = append(got, fmt.Sprintf("%s %s/%s %s %d %s", b.ID, b.PrincipalID, b.Principal, b.Role.Name, len(b.Role.Permissions), b.Scope))
	}
	want := []string{
		"b2 p2/amy custom 1 everything",
		"b1 p1/zed viewer 3 names *.internal",
		"b3 p1/zed unknown 0 everything",
	}
	if !slices.Equal(got, want) {
		t.Errorf("ListBindings = %q, want %q", got, want)
	}
	mine, err := db.ListBindings(ctx, "p1")
	must(t, err)
	if len(mine) != 2 || mine[0].ID != "b1" || mine[1].ID != "b3" {
		t.Fatalf("ListBindings(p1) = %+v", mine)
	}
	viewer, _ := authz.BuiltinRole(authz.RoleViewer)
	checkTime(t, "CreatedAt", mine[0].CreatedAt, base())
	if !reflect.DeepEqual(mine[0].Role, viewer) || !reflect.DeepEqual(mine[0].Scope, scope) || mine[0].CreatedBy != "tester" {
		t.Errorf("binding b1 = %+v", mine[0])
	}
	if !reflect.DeepEqual(mine[1].Role, authz.Role{Name: "unknown"}) {
		t.Errorf("binding to an unknown role: Role = %+v, want only its name", mine[1].Role)
	}

	deleted, err := db.DeleteBinding(ctx, "b1", ev("binding.delete", "b1"))
	must(t, err)
	if deleted.ID != "b1" || deleted.Principal != "zed" || deleted.Role.Name != authz.RoleViewer || !reflect.DeepEqual(deleted.Scope, scope) {
		t.Errorf("DeleteBinding returned %+v", deleted)
	}
	log.expect(t, "binding.delete b1")
	_, err = db.DeleteBinding(ctx, "b1", ev("binding.delete", "b1"))
	wantErr(t, err, store.ErrNotFound)
	log.expect(t)
	mine, err = db.ListBindings(ctx, "p1")
	must(t, err)
	if len(mine) != 1 || mine[0].ID != "b3" {
		t.Errorf("ListBindings(p1) after delete = %+v", mine)
	}
}

func newApproval(id string, created time.Time) *issue.ApprovalRequest {
	return &issue.ApprovalRequest{
		ID: id, RequesterID: "p1", Requester: "ci", CA: "intermediate", Profile: "server",
		Names: []string{"a.example.com", "10.0.0.1"}, Body: []byte(`{"csr":"...` + id + `"}`),
		Status: issue.StatusPending, CreatedAt: created, ExpiresAt: created.Add(24 * time.Hour),
	}
}

func checkApproval(t *testing.T, got, want *issue.ApprovalRequest) {
	t.Helper()
	checkTime(t, "CreatedAt", got.CreatedAt, want.CreatedAt)
	checkTime(t, "ExpiresAt", got.ExpiresAt, want.ExpiresAt)
	checkNullTime(t, "DecidedAt", got.DecidedAt, want.DecidedAt)
	g, w := *got, *want
	g.CreatedAt, g.ExpiresAt, g.DecidedAt = time.Time{}, time.Time{}, nil
	w.CreatedAt, w.ExpiresAt, w.DecidedAt = time.Time{}, time.Time{}, nil
	if w.Names == nil {
		w.Names = []string{}
	}
	if w.Body == nil {
		w.Body = []byte{}
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("approval request = %+v, want %+v", g, w)
	}
}

func testApprovalRequests(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	log := newAuditLog(t, db)

	var reqs []*issue.ApprovalRequest
	for i := range 4 {
		r := newApproval(fmt.Sprintf("r%d", i), base().Add(time.Duration(i)*time.Minute))
		reqs = append(reqs, r)
	}
	reqs[3].Status = issue.StatusRejected
	reqs[3].DecidedBy = "boss"
	reqs[3].DecidedAt = ptr(base().Add(time.Hour))
	reqs[3].Comment = "no"
	reqs[2].Names = nil
	for _, r := range reqs {
		must(t, db.CreateApprovalRequest(ctx, r, ev("request.create", r.ID)))
	}
	log.expect(t, "request.create r0", "request.create r1", "request.create r2", "request.create r3")
	wantErr(t, db.CreateApprovalRequest(ctx, newApproval("r0", base()), ev("request.create", "r0")), store.ErrConflict)
	log.expect(t)

	got, err := db.GetApprovalRequest(ctx, "r3")
	must(t, err)
	checkApproval(t, got, reqs[3])
	got, err = db.GetApprovalRequest(ctx, "r2")
	must(t, err)
	checkApproval(t, got, reqs[2])
	_, err = db.GetApprovalRequest(ctx, "nope")
	wantErr(t, err, store.ErrNotFound)

	for _, tc := range []struct {
		status string
		limit  int
		want   []string
	}{
		{"", 0, []string{"r3", "r2", "r1", "r0"}},
		{"", 2, []string{"r3", "r2"}},
		{issue.StatusPending, -1, []string{"r2", "r1", "r0"}},
		{issue.StatusPending, 1, []string{"r2"}},
		{issue.StatusRejected, 10, []string{"r3"}},
		{issue.StatusIssued, 10, nil},
	} {
		list, err := db.ListApprovalRequests(ctx, tc.status, tc.limit)
		must(t, err)
		var ids []string
		for _, r := range list {
			ids = append(ids, r.ID)
		}
		if !slices.Equal(ids, tc.want) {
			t.Errorf("ListApprovalRequests(%q, %d) = %q, want %q", tc.status, tc.limit, ids, tc.want)
		}
	}

	// Counts: all in a status, one requester's, and grouped by what a
	// scope judges (CA, profile, names) and whether the requester made
	// them.
	for _, tc := range []struct {
		status, requester string
		want              int
	}{
		{issue.StatusPending, "", 3}, {issue.StatusPending, "p1", 3}, {issue.StatusPending, "p2", 0}, {issue.StatusRejected, "", 1},
	} {
		n, err := db.CountApprovalRequests(ctx, tc.status, tc.requester)
		must(t, err)
		if n != tc.want {
			t.Errorf("CountApprovalRequests(%q, %q) = %d, want %d", tc.status, tc.requester, n, tc.want)
		}
	}
	for _, requester := range []string{"p1", "p2"} {
		groups, err := db.ApprovalRequestGroups(ctx, issue.StatusPending, requester, 10)
		must(t, err)
		got := map[string]int{}
		for _, g := range groups {
			got[fmt.Sprintf("%s %s %q own=%v", g.CA, g.Profile, g.Names, g.Own)] += g.N
		}
		own := requester == "p1"
		want := map[string]int{
			fmt.Sprintf(`intermediate server ["a.example.com" "10.0.0.1"] own=%v`, own): 2,
			fmt.Sprintf(`intermediate server [] own=%v`, own):                           1,
		}
		if !maps.Equal(got, want) {
			t.Errorf("ApprovalRequestGroups(pending, %s) = %v, want %v", requester, got, want)
		}
	}
}

func testUpdateApprovalRequest(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	r := newApproval("r1", base())
	late := newApproval("r2", base())
	for _, x := range []*issue.ApprovalRequest{r, late} {
		must(t, db.CreateApprovalRequest(ctx, x, ev("request.create", x.ID)))
	}
	log := newAuditLog(t, db)
	now := base().Add(time.Hour)

	approved := *r
	approved.Status, approved.DecidedBy, approved.DecidedAt, approved.Comment = issue.StatusApproved, "boss", &now, "ok"
	must(t, db.UpdateApprovalRequest(ctx, &approved, issue.StatusPending, now, ev("request.approve", "r1")))
	log.expect(t, "request.approve r1")
	got, err := db.GetApprovalRequest(ctx, "r1")
	must(t, err)
	checkApproval(t, got, &approved)

	// A second decision loses, and says what the request has become.
	rejected := *r
	rejected.Status, rejected.DecidedBy, rejected.DecidedAt = issue.StatusRejected, "other", &now
	err = db.UpdateApprovalRequest(ctx, &rejected, issue.StatusPending, now, ev("request.reject", "r1"))
	wantErr(t, err, store.ErrConflict)
	if !strings.Contains(err.Error(), issue.StatusApproved) {
		t.Errorf("UpdateApprovalRequest(from pending) on an approved request = %v, want it to name %q", err, issue.StatusApproved)
	}
	log.expect(t)

	issued := approved
	issued.Status, issued.Serial = issue.StatusIssued, "0a1b2c"
	must(t, db.UpdateApprovalRequest(ctx, &issued, issue.StatusApproved, now.Add(48*time.Hour), ev("request.issue", "r1")))
	log.expect(t, "request.issue r1")
	got, err = db.GetApprovalRequest(ctx, "r1")
	must(t, err)
	checkApproval(t, got, &issued)

	// Past its expiry a pending request can no longer be decided, even
	// before the sweep has marked it expired.
	for _, at := range []time.Time{late.ExpiresAt, late.ExpiresAt.Add(time.Second)} {
		dec := *late
		dec.Status, dec.DecidedBy, dec.DecidedAt = issue.StatusApproved, "boss", &at
		err = db.UpdateApprovalRequest(ctx, &dec, issue.StatusPending, at, ev("request.approve", "r2"))
		wantErr(t, err, store.ErrConflict)
		if !strings.Contains(err.Error(), "expired") {
			t.Errorf("UpdateApprovalRequest on an expired request = %v, want it to say expired", err)
		}
	}
	got, err = db.GetApprovalRequest(ctx, "r2")
	must(t, err)
	checkApproval(t, got, late)

	missing := newApproval("nope", base())
	wantErr(t, db.UpdateApprovalRequest(ctx, missing, issue.StatusPending, now, ev("request.approve", "nope")), store.ErrNotFound)
	log.expect(t)
}

func testExpireApprovalRequests(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	now := base().Add(48 * time.Hour)
	mk := func(id, status string, expires time.Time) *issue.ApprovalRequest {
		r := newApproval(id, base())
		r.Status, r.ExpiresAt = status, expires
		must(t, db.CreateApprovalRequest(ctx, r, ev("request.create", id)))
		return r
	}
	mk("a", issue.StatusPending, now.Add(-time.Hour))
	mk("c", issue.StatusPending, now) // expires_at <= now
	mk("b", issue.StatusPending, now.Add(-time.Minute))
	fresh := mk("d", issue.StatusPending, now.Add(time.Second))
	done := mk("e", issue.StatusApproved, now.Add(-time.Hour))
	log := newAuditLog(t, db)

	ids, err := db.ExpireApprovalRequests(ctx, now, ev("request.expire", ""))
	must(t, err)
	if want := []string{"a", "b", "c"}; !slices.Equal(ids, want) {
		t.Errorf("ExpireApprovalRequests = %q, want %q", ids, want)
	}
	log.expect(t, "request.expire a", "request.expire b", "request.expire c")
	for _, id := range []string{"a", "b", "c"} {
		r, err := db.GetApprovalRequest(ctx, id)
		must(t, err)
		if r.Status != issue.StatusExpired {
			t.Errorf("request %s status = %q, want expired", id, r.Status)
		}
	}
	for _, want := range []*issue.ApprovalRequest{fresh, done} {
		r, err := db.GetApprovalRequest(ctx, want.ID)
		must(t, err)
		checkApproval(t, r, want)
	}

	ids, err = db.ExpireApprovalRequests(ctx, now, ev("request.expire", ""))
	must(t, err)
	if len(ids) != 0 {
		t.Errorf("second ExpireApprovalRequests = %q, want none", ids)
	}
	log.expect(t)
}

// testTokenMigration builds a database at schema version 2 holding tokens
// of the old kind, opens it with the store (migrating it), and checks each
// token became a principal bound to the token's role that still
// authenticates.
func testTokenMigration(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	dialect := open(t).Dialect()
	old := openOldSchema(t, dialect, 2)
	raw, exec, url := old.raw, old.exec, old.url
	created := base()
	var createdArg any = created.UTC()
	if dialect == "sqlite" {
		createdArg = created.UnixMicro()
	}
	type oldToken struct{ id, name, role, secret string }
	tokens := []oldToken{
		{"0123456789abcdef", "ci", authz.RoleAdmin, "c2VjcmV0LW9uZQ"},
		{"fedcba9876543210", "ops", authz.RoleAdmin, "c2VjcmV0LXR3bw"},
		{"00000000000000aa", "ops", authz.RoleViewer, "c2VjcmV0LXRocmVl"},
	}
	for _, o := range tokens {
		h := sha256.Sum256([]byte(o.secret))
		exec(`INSERT INTO tokens (id, name, role, secret_hash, created_at) VALUES (?, ?, ?, ?, ?)`,
			o.id, o.name, o.role, h[:], createdArg)
	}
	must(t, raw.Close())

	db, err := store.Open(ctx, url, nil)
	must(t, err)
	defer db.Close()

	auth := authz.NewAuthenticator(db, nil, func() time.Time { return base().Add(time.Hour) })
	wantNames := map[string]string{
		"0123456789abcdef": "ci",
		"fedcba9876543210": "ops-fedcba9876543210", // names repeat: the ID is appended
		"00000000000000aa": "ops-00000000000000aa",
	}
	for _, o := range tokens {
		rec, err := db.GetPrincipal(ctx, "p"+o.id)
		must(t, err)
		if rec.Name != wantNames[o.id] || rec.Kind != authz.KindHuman || rec.DisabledAt != nil {
			t.Errorf("migrated principal = %+v, want name %q", rec, wantNames[o.id])
		}
		checkTime(t, "principal CreatedAt", rec.CreatedAt, created)
		bs, err := db.ListBindings(ctx, "p"+o.id)
		must(t, err)
		if len(bs) != 1 || bs[0].Role.Name != o.role || !bs[0].Role.Builtin || !bs[0].Scope.Empty() {
			t.Errorf("migrated bindings of %s = %+v, want one unscoped %s binding", o.id, bs, o.role)
		}
		tok, err := db.GetToken(ctx, o.id)
		must(t, err)
		if tok.PrincipalID != "p"+o.id || tok.Principal != rec.Name || tok.Description != o.name || tok.RevokedAt != nil || tok.ExpiresAt != nil {
			t.Errorf("migrated token = %+v", tok)
		}
		p, err := auth.Authenticate(ctx, "cwt_"+o.id+"_"+o.secret)
		if err != nil {
			var ae *authz.AuthError
			errors.As(err, &ae)
			t.Fatalf("token %s no longer authenticates: %v (%+v)", o.id, err, ae)
		}
		if p.ID != "p"+o.id || p.Auth != "token:"+o.id {
			t.Errorf("token %s authenticates as %+v", o.id, p)
		}
		role, _ := authz.BuiltinRole(o.role)
		for _, perm := range role.Permissions {
			if !p.Can(perm) {
				t.Errorf("migrated principal %s lacks %s of role %s", p.Name, perm, o.role)
			}
		}
	}
	if _, err := auth.Authenticate(ctx, "cwt_0123456789abcdef_"+base64.RawURLEncoding.EncodeToString([]byte("wrong"))); err == nil {
		t.Error("a wrong secret authenticated after migration")
	}
}

// testConsoleSessions: a session is stored with its sign-in event, read
// back by its hash, touched while active, and ended once (its sign-out
// event with it); a second end changes nothing.
func testConsoleSessions(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	log := newAuditLog(t, db)
	s := &authz.Session{IDHash: strings.Repeat("ab", 32), PrincipalID: "p1", Auth: "token:00000000000000t1", Source: "192.0.2.1",
		CreatedAt: base(), LastSeenAt: base(), ExpiresAt: base().Add(12 * time.Hour)}
	must(t, db.CreateSession(ctx, s, ev("console.sign_in", "p1")))
	log.expect(t, "console.sign_in p1")
	wantErr(t, db.CreateSession(ctx, s, ev("console.sign_in", "p1")), store.ErrConflict)
	log.expect(t)

	got, err := db.GetSession(ctx, s.IDHash)
	must(t, err)
	checkSession(t, got, s)
	_, err = db.GetSession(ctx, strings.Repeat("cd", 32))
	wantErr(t, err, store.ErrNotFound)

	seen := base().Add(time.Minute)
	must(t, db.TouchSession(ctx, s.IDHash, seen))
	got, err = db.GetSession(ctx, s.IDHash)
	must(t, err)
	checkTime(t, "LastSeenAt after TouchSession", got.LastSeenAt, seen)

	end := base().Add(time.Hour)
	ended, err := db.EndSession(ctx, s.IDHash, end, "signed out", ev("console.sign_out", "p1"))
	must(t, err)
	if !ended {
		t.Error("EndSession of an active session reported false")
	}
	log.expect(t, "console.sign_out p1")
	ended, err = db.EndSession(ctx, s.IDHash, end.Add(time.Hour), "idle", ev("console.sign_out", "p1"))
	must(t, err)
	if ended {
		t.Error("EndSession of an ended session reported true")
	}
	log.expect(t)
	must(t, db.TouchSession(ctx, s.IDHash, end.Add(2*time.Hour)))
	got, err = db.GetSession(ctx, s.IDHash)
	must(t, err)
	checkNullTime(t, "EndedAt after a second end", got.EndedAt, &end)
	checkTime(t, "LastSeenAt after a touch of an ended session", got.LastSeenAt, seen)
	if got.EndReason != "signed out" {
		t.Errorf("end reason %q after a second end, want the first (signed out)", got.EndReason)
	}

	// Pruning deletes ended and expired sessions older than the cutoff,
	// and no other.
	live := &authz.Session{IDHash: strings.Repeat("ef", 32), PrincipalID: "p1", Auth: "token:00000000000000t1", Source: "192.0.2.1",
		CreatedAt: end, LastSeenAt: end, ExpiresAt: end.Add(12 * time.Hour)}
	must(t, db.CreateSession(ctx, live, ev("console.sign_in", "p1")))
	n, err := db.PruneSessions(ctx, end)
	must(t, err)
	if n != 0 {
		t.Errorf("PruneSessions before the end deleted %d", n)
	}
	n, err = db.PruneSessions(ctx, end.Add(time.Hour))
	must(t, err)
	if n != 1 {
		t.Errorf("PruneSessions after the end deleted %d, want the ended one", n)
	}
	_, err = db.GetSession(ctx, s.IDHash)
	wantErr(t, err, store.ErrNotFound)
	_, err = db.GetSession(ctx, live.IDHash)
	must(t, err)
	n, err = db.PruneSessions(ctx, live.ExpiresAt.Add(time.Second))
	must(t, err)
	if n != 1 {
		t.Errorf("PruneSessions after the absolute end deleted %d, want the expired one", n)
	}
}

func checkSession(t *testing.T, got, want *authz.Session) {
	t.Helper()
	checkTime(t, "CreatedAt", got.CreatedAt, want.CreatedAt)
	checkTime(t, "LastSeenAt", got.LastSeenAt, want.LastSeenAt)
	checkTime(t, "ExpiresAt", got.ExpiresAt, want.ExpiresAt)
	checkNullTime(t, "EndedAt", got.EndedAt, want.EndedAt)
	g, w := *got, *want
	g.CreatedAt, g.LastSeenAt, g.ExpiresAt, g.EndedAt = time.Time{}, time.Time{}, time.Time{}, nil
	w.CreatedAt, w.LastSeenAt, w.ExpiresAt, w.EndedAt = time.Time{}, time.Time{}, time.Time{}, nil
	if !reflect.DeepEqual(g, w) {
		t.Errorf("session = %+v, want %+v", g, w)
	}
}

// testSignInCertificates: a client certificate's credential row keeps the
// token of the sign-in it was issued to (a person certificate), and
// ClientCredential reads it back with that token's state; the person
// certificates of a token, or of all a principal's sign-ins, are listed
// while unexpired and not revoked.
func testSignInCertificates(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	must(t, db.CreatePrincipal(ctx, newPrincipal("p1", "alice"), ev("principal.create", "alice")))
	must(t, db.CreatePrincipal(ctx, newPrincipal("p2", "bob"), ev("principal.create", "bob")))
	tokA, tokB := newToken("00000000000000a1", "p1", base()), newToken("00000000000000b1", "p2", base())
	must(t, db.CreateToken(ctx, tokA, ev("token.create", tokA.ID)))
	must(t, db.CreateToken(ctx, tokB, ev("token.create", tokB.ID)))
	cert := func(serial, principal, token string, notAfter time.Time) {
		c := newCert(serial, "ca1")
		c.Profile, c.NotAfter, c.ClientPrincipalID, c.ClientTokenID = "person", notAfter, principal, token
		must(t, db.InsertCertificate(ctx, c, tev()))
	}
	later := base().Add(12 * time.Hour)
	cert("a1", "p1", tokA.ID, later)                 // alice's sign-in A
	cert("a2", "p1", tokA.ID, later)                 // revoked below
	cert("a3", "p1", tokA.ID, base().Add(time.Hour)) // expired at the listing
	cert("a4", "p1", "00000000000000a9", later)      // another sign-in, token not held
	cert("a5", "p1", "", later)                      // an ordinary credential
	cert("b1", "p2", tokB.ID, later)                 // bob's
	_, _, err := db.RevokeCertificate(ctx, newRev("a2"), tev())
	must(t, err)

	for _, tc := range []struct {
		serial string
		want   authz.Credential
	}{
		{"a1", authz.Credential{PrincipalID: "p1", TokenID: tokA.ID, TokenKnown: true}},
		{"a4", authz.Credential{PrincipalID: "p1", TokenID: "00000000000000a9"}},
		{"a5", authz.Credential{PrincipalID: "p1"}},
	} {
		got, err := db.ClientCredential(ctx, tc.serial)
		must(t, err)
		if *got != tc.want {
			t.Errorf("ClientCredential(%s) = %+v, want %+v", tc.serial, *got, tc.want)
		}
	}
	_, err = db.ClientCredential(ctx, "ffff")
	wantErr(t, err, store.ErrNotFound)

	at := base().Add(2 * time.Hour)
	serials := func(certs []store.SignInCertificate) string {
		out := make([]string, len(certs))
		for i, c := range certs {
			out[i] = c.Serial + "/" + c.TokenID
		}
		return strings.Join(out, " ")
	}
	for _, tc := range []struct {
		what string
		list func() ([]store.SignInCertificate, error)
		want string
	}{
		{"token A", func() ([]store.SignInCertificate, error) { return db.TokenCertificates(ctx, tokA.ID, at) }, "a1/" + tokA.ID},
		{"no token", func() ([]store.SignInCertificate, error) { return db.TokenCertificates(ctx, "", at) }, ""},
		{"alice", func() ([]store.SignInCertificate, error) { return db.PrincipalSignInCertificates(ctx, "p1", at) },
			"a1/" + tokA.ID + " a4/00000000000000a9"},
		{"bob", func() ([]store.SignInCertificate, error) { return db.PrincipalSignInCertificates(ctx, "p2", at) }, "b1/" + tokB.ID},
	} {
		got, err := tc.list()
		must(t, err)
		if s := serials(got); s != tc.want {
			t.Errorf("person certificates of %s = %q, want %q", tc.what, s, tc.want)
		}
	}

	revokedAt := base().Add(3 * time.Hour)
	_, err = db.RevokeToken(ctx, tokA.ID, revokedAt, ev("token.revoke", tokA.ID))
	must(t, err)
	got, err := db.ClientCredential(ctx, "a1")
	must(t, err)
	checkNullTime(t, "TokenRevokedAt", got.TokenRevokedAt, &revokedAt)
	if got.TokenID != tokA.ID || !got.TokenKnown {
		t.Errorf("ClientCredential(a1) after the token's revocation = %+v", got)
	}

	// A certificate of a sign-in that ended while it was being issued
	// (its token revoked after the issuance began, and after the revoker
	// listed the token's certificates) is not stored at all, on the
	// group commit's path and on a renewal's own transaction alike; one
	// of a live sign-in in the same breath is.
	for _, c := range []struct{ serial, replaces string }{{"a6", ""}, {"a7", "a1"}} {
		nc := newCert(c.serial, "ca1")
		nc.Profile, nc.NotAfter, nc.ClientPrincipalID, nc.ClientTokenID, nc.Replaces = "person", later, "p1", tokA.ID, c.replaces
		err := db.InsertCertificate(ctx, nc, tev())
		wantErr(t, err, authz.ErrSignInEnded)
		if err != nil && !strings.Contains(err.Error(), tokA.ID) {
			t.Errorf("the refusal of %s does not name the token: %v", c.serial, err)
		}
		_, err = db.GetCertificate(ctx, c.serial)
		wantErr(t, err, store.ErrNotFound)
	}
	cert("b2", "p2", tokB.ID, later)
}

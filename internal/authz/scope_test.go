package authz_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/certwright/certwright/internal/authz"
)

func TestMatchName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern, name string
		want          bool
	}{
		// Exact names, case-insensitive, trailing dot ignored.
		{"a.example.internal", "a.example.internal", true},
		{"a.example.internal", "A.Example.INTERNAL", true},
		{"A.example.internal", "a.example.internal", true},
		{"a.example.internal", "a.example.internal.", true},
		{"a.example.internal", "b.example.internal", false},
		{"a.example.internal", "x.a.example.internal", false},
		{"a.example.internal", "example.internal", false},
		{"a.example.internal", "", false},

		// *.suffix: any depth below, never the suffix itself.
		{"*.svc.internal", "a.svc.internal", true},
		{"*.svc.internal", "a.b.c.svc.internal", true},
		{"*.svc.internal", "A.SVC.internal", true},
		{"*.svc.internal", "a.svc.internal.", true},
		{"*.svc.internal", "*.svc.internal", true},
		{"*.svc.internal", "svc.internal", false},
		{"*.svc.internal", ".svc.internal", false},
		{"*.svc.internal", "a.other.internal", false},
		{"*.svc.internal", "evilsvc.internal", false},
		{"*.svc.internal", "a.evilsvc.internal", false},
		{"*.svc.internal", "a.svc.internal.evil.com", false},
		{"*.svc.internal", "alice@a.svc.internal", false},
		{"*.svc.internal", "spiffe://a.svc.internal/x", false},
		{"*.svc.internal", "", false},
		{"*.svc.internal", "10.0.0.1", false},

		// *@domain: any e-mail address at exactly that domain.
		{"*@example.com", "alice@example.com", true},
		{"*@example.com", "Alice@EXAMPLE.com", true},
		{"*@example.com", "@example.com", false},
		{"*@example.com", "alice@sub.example.com", false},
		{"*@example.com", "alice@example.com.evil", false},
		{"*@example.com", "example.com", false},
		{"*@example.com", "a.example.com", false},

		// CIDR networks: IP addresses inside.
		{"10.1.0.0/16", "10.1.2.3", true},
		{"10.1.0.0/16", "10.1.255.255", true},
		{"10.1.0.0/16", "10.2.0.1", false},
		{"10.1.0.0/16", "::ffff:10.1.0.7", true},
		{"10.1.0.0/16", "a.example.internal", false},
		{"10.1.0.0/16", "10.1.0.0/16", false},
		{"fd00::/8", "fd00::5", true},
		{"fd00::/8", "fe80::1", false},
		{"fd00::/8", "10.0.0.1", false},
		{"10.0.0.5/32", "10.0.0.5", true},

		// Anything else: that exact value.
		{"10.0.0.5", "10.0.0.5", true},
		{"10.0.0.5", "10.0.0.6", false},
		{"alice@example.com", "alice@example.com", true},
		{"alice@example.com", "bob@example.com", false},
		{"spiffe://example.internal/ns/prod/sa/billing", "spiffe://example.internal/ns/prod/sa/billing", true},
		{"spiffe://example.internal/ns/prod/sa/billing", "spiffe://example.internal/ns/prod/sa/billing2", false},
		{"spiffe://example.internal/ns/prod", "spiffe://example.internal/ns/prod/sa/billing", false},
	}
	for _, tt := range tests {
		if got := authz.MatchName(tt.pattern, tt.name); got != tt.want {
			t.Errorf("MatchName(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
}

func TestValidatePattern(t *testing.T) {
	t.Parallel()
	good := []string{
		"a.example.internal", "localhost", "*.example.internal", "*.a.b.example.internal", "*.localhost",
		"*@example.com", "alice@example.com", "10.1.0.0/16", "10.0.0.5/32", "fd00::/8", "10.0.0.5", "fd00::5",
		"spiffe://example.internal/ns/prod/sa/billing", "https://example.internal/a/b",
	}
	for _, p := range good {
		if err := authz.ValidatePattern(p); err != nil {
			t.Errorf("ValidatePattern(%q) = %v, want nil", p, err)
		}
		if err := (authz.Scope{Names: []string{p}}).Validate(); err != nil {
			t.Errorf("Scope with name %q: Validate = %v", p, err)
		}
	}
	bad := []string{
		"", " a.example.internal", "a.example.internal ", " ",
		"*", "*.", "*@", "**.example.internal", "*example.internal", "*.*.example.internal",
		"a.*.example.internal", "a.example.*", "*.com", "*@com", "*..example.internal", "*@.example.com",
		"10.1.0.0/33", "10.1.0.0/x", "10.1.0.0/", "foo/bar", "fd00::/129",
		strings.Repeat("a", 254),
	}
	for _, p := range bad {
		if err := authz.ValidatePattern(p); err == nil {
			t.Errorf("ValidatePattern(%q) = nil, want an error", p)
		}
		if err := (authz.Scope{Names: []string{"a.example.internal", p}}).Validate(); err == nil {
			t.Errorf("Scope with name %q: Validate = nil, want an error", p)
		}
	}
}

func TestScope(t *testing.T) {
	t.Parallel()
	if !(authz.Scope{}).Empty() || (authz.Scope{}).String() != "everything" || (authz.Scope{}).Validate() != nil {
		t.Error("the empty scope is not empty, everything and valid")
	}
	s := authz.Scope{CAs: []string{"issuing"}, Profiles: []string{"web_server", "internal_service"}, Names: []string{"*.svc.internal"}}
	if s.Empty() || s.Validate() != nil {
		t.Errorf("scope %v: Empty %v, Validate %v", s, s.Empty(), s.Validate())
	}
	if got, want := s.String(), "CAs issuing; profiles web_server,internal_service; names *.svc.internal"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
	for _, bad := range []authz.Scope{{CAs: []string{""}}, {CAs: []string{" "}}, {Profiles: []string{""}}, {Names: []string{""}}} {
		if bad.Validate() == nil {
			t.Errorf("Validate(%+v) = nil, want an error", bad)
		}
	}
}

// role returns the built-in role name or fails.
func role(t *testing.T, name string) authz.Role {
	t.Helper()
	r, ok := authz.BuiltinRole(name)
	if !ok {
		t.Fatalf("no built-in role %q", name)
	}
	return r
}

func principal(bs ...authz.Binding) authz.Principal {
	return authz.Principal{ID: "p_x", Name: "x", Kind: authz.KindMachine, Bindings: bs}
}

func TestAllow(t *testing.T) {
	t.Parallel()
	issuer, viewer := role(t, authz.RoleIssuer), role(t, authz.RoleViewer)
	bind := func(r authz.Role, s authz.Scope) authz.Binding { return authz.Binding{ID: "b", Role: r, Scope: s} }
	issuing := authz.Resource{CAID: "ca_1", CAName: "issuing", Profile: "internal_service", Names: []string{"a.svc.internal"}}
	with := func(f func(*authz.Resource)) authz.Resource {
		r := issuing
		r.Names = slices.Clone(issuing.Names)
		f(&r)
		return r
	}

	tests := []struct {
		name string
		p    authz.Principal
		perm authz.Permission
		res  authz.Resource
		ok   bool
		why  string // part of the error message when refused
	}{
		{"unscoped", principal(bind(issuer, authz.Scope{})), authz.PermCertIssue, issuing, true, ""},
		{"unscoped, nothing known", principal(bind(issuer, authz.Scope{})), authz.PermCertIssue, authz.Resource{}, true, ""},
		{"no bindings", principal(), authz.PermCertIssue, issuing, false, "has no role granting cert:issue"},
		{"zero principal", authz.Principal{}, authz.PermCertRead, issuing, false, "has no role granting"},
		{"role without the permission", principal(bind(viewer, authz.Scope{})), authz.PermCertIssue, issuing, false, "has no role granting cert:issue"},

		// CAs, by ID or name.
		{"CA by ID", principal(bind(issuer, authz.Scope{CAs: []string{"ca_1"}})), authz.PermCertIssue, issuing, true, ""},
		{"CA by name", principal(bind(issuer, authz.Scope{CAs: []string{"issuing"}})), authz.PermCertIssue, issuing, true, ""},
		{"CA among several", principal(bind(issuer, authz.Scope{CAs: []string{"other", "ca_1"}})), authz.PermCertIssue, issuing, true, ""},
		{"another CA", principal(bind(issuer, authz.Scope{CAs: []string{"other"}})), authz.PermCertIssue, issuing, false, `CA "issuing" is not in`},
		{"CA unknown", principal(bind(issuer, authz.Scope{CAs: []string{"issuing"}})), authz.PermCertIssue,
			with(func(r *authz.Resource) { r.CAID, r.CAName = "", "" }), false, "limited to CAs issuing"},
		{"CA by ID, only its name known", principal(bind(issuer, authz.Scope{CAs: []string{"ca_1"}})), authz.PermCertIssue,
			with(func(r *authz.Resource) { r.CAID = "" }), false, "not in"},

		// Profiles.
		{"profile", principal(bind(issuer, authz.Scope{Profiles: []string{"internal_service"}})), authz.PermCertIssue, issuing, true, ""},
		{"another profile", principal(bind(issuer, authz.Scope{Profiles: []string{"internal_service"}})), authz.PermCertIssue,
			with(func(r *authz.Resource) { r.Profile = "code_signing" }), false, `profile "code_signing" is not in`},
		{"profile unknown", principal(bind(issuer, authz.Scope{Profiles: []string{"internal_service"}})), authz.PermCertIssue,
			with(func(r *authz.Resource) { r.Profile = "" }), false, "limited to profiles internal_service"},

		// Names: every name must match some pattern.
		{"names", principal(bind(issuer, authz.Scope{Names: []string{"*.svc.internal"}})), authz.PermCertIssue,
			with(func(r *authz.Resource) { r.Names = []string{"a.svc.internal", "b.c.svc.internal"} }), true, ""},
		{"names over several patterns", principal(bind(issuer, authz.Scope{Names: []string{"*.svc.internal", "10.0.0.0/8"}})), authz.PermCertIssue,
			with(func(r *authz.Resource) { r.Names = []string{"a.svc.internal", "10.1.2.3"} }), true, ""},
		{"one name outside", principal(bind(issuer, authz.Scope{Names: []string{"*.svc.internal"}})), authz.PermCertIssue,
			with(func(r *authz.Resource) { r.Names = []string{"a.svc.internal", "a.other.internal"} }), false, `name "a.other.internal" matches none`},
		{"the bare suffix", principal(bind(issuer, authz.Scope{Names: []string{"*.svc.internal"}})), authz.PermCertIssue,
			with(func(r *authz.Resource) { r.Names = []string{"svc.internal"} }), false, "matches none"},
		{"names unknown", principal(bind(issuer, authz.Scope{Names: []string{"*.svc.internal"}})), authz.PermCertIssue,
			with(func(r *authz.Resource) { r.Names = nil }), false, "limited to names"},

		// Every dimension of one binding must hold.
		{"all dimensions", principal(bind(issuer, authz.Scope{CAs: []string{"issuing"}, Profiles: []string{"internal_service"}, Names: []string{"*.svc.internal"}})),
			authz.PermCertIssue, issuing, true, ""},
		{"all dimensions but the CA", principal(bind(issuer, authz.Scope{CAs: []string{"other"}, Profiles: []string{"internal_service"}, Names: []string{"*.svc.internal"}})),
			authz.PermCertIssue, issuing, false, "not in"},
		{"all dimensions but a name", principal(bind(issuer, authz.Scope{CAs: []string{"issuing"}, Profiles: []string{"internal_service"}, Names: []string{"*.svc.internal"}})),
			authz.PermCertIssue, with(func(r *authz.Resource) { r.Names = []string{"x.example.internal"} }), false, "matches none"},

		// Several bindings: one that covers is enough; scopes do not combine.
		{"second binding covers", principal(
			bind(issuer, authz.Scope{Profiles: []string{"web_server"}}),
			bind(issuer, authz.Scope{Names: []string{"*.svc.internal"}})), authz.PermCertIssue, issuing, true, ""},
		{"neither binding covers", principal(
			bind(issuer, authz.Scope{Profiles: []string{"web_server"}}),
			bind(issuer, authz.Scope{Names: []string{"*.other.internal"}})), authz.PermCertIssue, issuing, false, `profile "internal_service" is not in`},
		{"each binding covers part", principal(
			bind(issuer, authz.Scope{Names: []string{"*.svc.internal"}}),
			bind(issuer, authz.Scope{Names: []string{"*.other.internal"}})), authz.PermCertIssue,
			with(func(r *authz.Resource) { r.Names = []string{"a.svc.internal", "a.other.internal"} }), false, "matches none"},
		{"wide scope, wrong role", principal(
			bind(viewer, authz.Scope{}),
			bind(issuer, authz.Scope{Profiles: []string{"web_server"}})), authz.PermCertIssue, issuing, false, "only within its scope"},
		{"wide scope for reading", principal(
			bind(viewer, authz.Scope{}),
			bind(issuer, authz.Scope{Profiles: []string{"web_server"}})), authz.PermCertRead, issuing, true, ""},

		// Custom roles work as built-in ones do.
		{"custom role", principal(bind(authz.Role{Name: "revoker", Permissions: []authz.Permission{authz.PermCertRevoke}}, authz.Scope{CAs: []string{"issuing"}})),
			authz.PermCertRevoke, issuing, true, ""},
		{"custom role, other permission", principal(bind(authz.Role{Name: "revoker", Permissions: []authz.Permission{authz.PermCertRevoke}}, authz.Scope{})),
			authz.PermCertIssue, issuing, false, "has no role granting"},

		{"system", authz.System(), authz.PermKeyExport, authz.Resource{}, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.p.Allow(tt.perm, tt.res)
			if tt.ok {
				if err != nil {
					t.Fatalf("Allow(%s, %+v) = %v, want nil", tt.perm, tt.res, err)
				}
				return
			}
			if !errors.Is(err, authz.ErrForbidden) {
				t.Fatalf("Allow(%s, %+v) = %v, want ErrForbidden", tt.perm, tt.res, err)
			}
			if !strings.Contains(err.Error(), tt.why) {
				t.Errorf("error %q does not say %q", err, tt.why)
			}
		})
	}
}

func TestCan(t *testing.T) {
	t.Parallel()
	scoped := authz.WithRole("svc", authz.KindMachine, authz.RoleIssuer, authz.Scope{Profiles: []string{"internal_service"}})
	viewer := authz.WithRole("vic", authz.KindHuman, authz.RoleViewer, authz.Scope{})
	for _, tt := range []struct {
		p    authz.Principal
		perm authz.Permission
		want bool
	}{
		{scoped, authz.PermCertIssue, true}, // whatever the scope
		{scoped, authz.PermKeyExport, true},
		{scoped, authz.PermRequestApprove, false},
		{viewer, authz.PermCertRead, true},
		{viewer, authz.PermCertIssue, false},
		{viewer, authz.PermCertRevoke, false},
		{authz.Principal{}, authz.PermCertRead, false},
		{authz.System(), authz.PermPrincipalAdmin, true},
	} {
		if got := tt.p.Can(tt.perm); got != tt.want {
			t.Errorf("%s.Can(%s) = %v, want %v", tt.p.Name, tt.perm, got, tt.want)
		}
	}
}

func TestBuiltinRoles(t *testing.T) {
	t.Parallel()
	roles := authz.BuiltinRoles()
	var names []string
	for _, r := range roles {
		names = append(names, r.Name)
		if !r.Builtin || r.Description == "" {
			t.Errorf("role %s: builtin %v, description %q", r.Name, r.Builtin, r.Description)
		}
		for _, p := range r.Permissions {
			if !p.Valid() {
				t.Errorf("role %s grants unknown permission %q", r.Name, p)
			}
		}
		if got, ok := authz.BuiltinRole(r.Name); !ok || got.Name != r.Name || !slices.Equal(got.Permissions, r.Permissions) {
			t.Errorf("BuiltinRole(%s) = %+v, %v", r.Name, got, ok)
		}
	}
	want := []string{authz.RoleAdmin, authz.RoleCAAdmin, authz.RoleIssuer, authz.RoleApprover, authz.RoleAuditor, authz.RoleViewer}
	if !slices.Equal(names, want) {
		t.Errorf("built-in roles %v, want %v", names, want)
	}
	if _, ok := authz.BuiltinRole("superuser"); ok {
		t.Error("BuiltinRole(superuser) found a role")
	}

	admin := role(t, authz.RoleAdmin)
	for _, p := range authz.Permissions() {
		if !admin.Has(p) {
			t.Errorf("admin lacks %s", p)
		}
	}
	has := map[string][]authz.Permission{
		authz.RoleCAAdmin:  {authz.PermCARead, authz.PermCAManage, authz.PermProfileRead, authz.PermProfileManage, authz.PermCertRead},
		authz.RoleIssuer:   {authz.PermCertRead, authz.PermCertIssue, authz.PermCertRevoke, authz.PermKeyExport},
		authz.RoleApprover: {authz.PermCertRead, authz.PermRequestApprove},
		authz.RoleAuditor:  {authz.PermAuditRead, authz.PermReportRead, authz.PermPrincipalRead, authz.PermCertRead},
		authz.RoleViewer:   {authz.PermCARead, authz.PermProfileRead, authz.PermCertRead},
	}
	lacks := map[string][]authz.Permission{
		authz.RoleCAAdmin:  {authz.PermCertIssue, authz.PermKeyExport, authz.PermRequestApprove, authz.PermPrincipalAdmin},
		authz.RoleIssuer:   {authz.PermRequestApprove, authz.PermCAManage, authz.PermAuditRead, authz.PermPrincipalAdmin},
		authz.RoleApprover: {authz.PermCertIssue, authz.PermKeyExport, authz.PermCAManage},
		authz.RoleAuditor:  {authz.PermCertIssue, authz.PermCertRevoke, authz.PermKeyExport, authz.PermPrincipalAdmin},
		authz.RoleViewer: {authz.PermCertIssue, authz.PermCertRevoke, authz.PermKeyExport, authz.PermRequestApprove,
			authz.PermAuditRead, authz.PermCAManage, authz.PermProfileManage, authz.PermPrincipalRead},
	}
	for name, perms := range has {
		r := role(t, name)
		for _, p := range perms {
			if !r.Has(p) {
				t.Errorf("%s lacks %s", name, p)
			}
		}
		for _, p := range lacks[name] {
			if r.Has(p) {
				t.Errorf("%s has %s", name, p)
			}
		}
	}

	// Each call returns fresh roles: a caller's change does not leak.
	roles[0].Permissions[0] = "nonsense"
	roles[len(roles)-1].Permissions[0] = "nonsense"
	for _, r := range authz.BuiltinRoles() {
		if slices.Contains(r.Permissions, "nonsense") {
			t.Errorf("changing a returned role changed built-in role %s", r.Name)
		}
	}
}

func TestPermissionsAndKinds(t *testing.T) {
	t.Parallel()
	perms := authz.Permissions()
	seen := map[authz.Permission]bool{}
	for _, p := range perms {
		if seen[p] || !p.Valid() {
			t.Errorf("permission %q duplicated or invalid", p)
		}
		seen[p] = true
	}
	if authz.Permission("cert:delete").Valid() || authz.Permission("").Valid() {
		t.Error("unknown permission is valid")
	}
	if !authz.KindHuman.Valid() || !authz.KindMachine.Valid() || authz.Kind("robot").Valid() || authz.Kind("").Valid() {
		t.Error("Kind.Valid wrong")
	}
	sys := authz.System()
	if sys.Name != "system" || sys.Kind != authz.KindMachine || sys.Auth != "system" {
		t.Errorf("System() = %+v", sys)
	}
}

func TestWithRole(t *testing.T) {
	t.Parallel()
	scope := authz.Scope{CAs: []string{"issuing"}, Names: []string{"*.svc.internal"}}
	p := authz.WithRole("svc", authz.KindMachine, authz.RoleIssuer, scope)
	if p.ID != "svc" || p.Name != "svc" || p.Kind != authz.KindMachine || p.Auth == "" || len(p.Bindings) != 1 {
		t.Fatalf("WithRole = %+v", p)
	}
	b := p.Bindings[0]
	if b.Role.Name != authz.RoleIssuer || !b.Role.Builtin || b.PrincipalID != "svc" || b.Principal != "svc" ||
		!slices.Equal(b.Scope.CAs, scope.CAs) || !slices.Equal(b.Scope.Names, scope.Names) || len(b.Scope.Profiles) != 0 {
		t.Errorf("binding = %+v", b)
	}
	if err := p.Allow(authz.PermCertIssue, authz.Resource{CAName: "issuing", Profile: "x", Names: []string{"a.svc.internal"}}); err != nil {
		t.Errorf("within scope: %v", err)
	}
	if err := p.Allow(authz.PermCertIssue, authz.Resource{CAName: "issuing", Profile: "x", Names: []string{"a.example.internal"}}); !errors.Is(err, authz.ErrForbidden) {
		t.Errorf("outside scope: %v", err)
	}

	h := authz.WithRole("hugo", authz.KindHuman, authz.RoleViewer, authz.Scope{})
	if h.Kind != authz.KindHuman || !h.Can(authz.PermCertRead) || h.Can(authz.PermCertIssue) {
		t.Errorf("viewer = %+v", h)
	}

	none := authz.WithRole("nobody", authz.KindHuman, "no_such_role", authz.Scope{})
	if none.Name != "nobody" || len(none.Bindings) != 0 {
		t.Errorf("unknown role gave %+v", none)
	}
	for _, perm := range authz.Permissions() {
		if none.Can(perm) {
			t.Errorf("principal with an unknown role can %s", perm)
		}
	}
	if err := none.Allow(authz.PermCertRead, authz.Resource{}); !errors.Is(err, authz.ErrForbidden) {
		t.Errorf("Allow for an unknown role = %v, want ErrForbidden", err)
	}
}

// TestURIScopePathCaseSensitive: a URI scope compares scheme and host
// case-insensitively and the path exactly; SPIFFE paths are case-sensitive,
// so a principal scoped to spiffe://example.internal/deploy must not get
// spiffe://example.internal/Deploy.
func TestURIScopePathCaseSensitive(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"spiffe://example.internal/deploy", "spiffe://Example.INTERNAL/deploy", true},
		{"SPIFFE://example.internal/deploy", "spiffe://example.internal/deploy", true},
		{"spiffe://example.internal/deploy", "spiffe://Example.internal/Deploy", false},
		{"spiffe://example.internal/Deploy", "spiffe://example.internal/deploy", false},
		{"https://example.internal/A?x=Y", "HTTPS://EXAMPLE.internal/A?x=Y", true},
		{"https://example.internal/A?x=Y", "https://example.internal/A?x=y", false},
		{"spiffe://example.internal/deploy.", "spiffe://example.internal/deploy", false},
	}
	for _, tt := range tests {
		if got := authz.MatchName(tt.pattern, tt.name); got != tt.want {
			t.Errorf("MatchName(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
	p := authz.WithRole("svc", authz.KindMachine, authz.RoleIssuer, authz.Scope{Names: []string{"spiffe://example.internal/deploy"}})
	if err := p.Allow(authz.PermCertIssue, authz.Resource{Names: []string{"spiffe://Example.internal/Deploy"}}); !errors.Is(err, authz.ErrForbidden) {
		t.Errorf("issuing spiffe://Example.internal/Deploy within scope spiffe://example.internal/deploy: %v, want ErrForbidden", err)
	}
	if err := p.Allow(authz.PermCertIssue, authz.Resource{Names: []string{"spiffe://EXAMPLE.internal/deploy"}}); err != nil {
		t.Errorf("host case must not matter: %v", err)
	}
}

// TestEverywhere: only an unscoped binding of a role holding the
// permission makes a principal see everything.
func TestEverywhere(t *testing.T) {
	t.Parallel()
	scoped := authz.Scope{CAs: []string{"issuing"}}
	for _, tc := range []struct {
		name string
		p    authz.Principal
		want bool
	}{
		{"no bindings", principal(), false},
		{"viewer, unscoped", principal(authz.Binding{Role: role(t, authz.RoleViewer)}), true},
		{"viewer, scoped", principal(authz.Binding{Role: role(t, authz.RoleViewer), Scope: scoped}), false},
		{"scoped viewer and unscoped viewer", principal(authz.Binding{Role: role(t, authz.RoleViewer), Scope: scoped}, authz.Binding{Role: role(t, authz.RoleViewer)}), true},
		{"unscoped role without the permission", principal(authz.Binding{Role: authz.Role{Name: "none"}}), false},
	} {
		if got := tc.p.Everywhere(authz.PermCertRead); got != tc.want {
			t.Errorf("%s: Everywhere(cert:read) = %v, want %v", tc.name, got, tc.want)
		}
	}
}

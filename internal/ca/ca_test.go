package ca_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/keys"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/store"
)

var (
	now   = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	admin = authz.WithRole("alice", authz.KindHuman, authz.RoleCAAdmin, authz.Scope{})
)

// created is the audit event of a CA record a test writes directly.
func created(c *ca.CA) audit.Event {
	return audit.New(authz.System(), now, "ca.create", c.ID, nil)
}

const day = 24 * time.Hour

func TestCanIssue(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		status ca.Status
		ok     bool
	}{
		{ca.StatusActive, true},
		{ca.StatusPending, false},
		{ca.StatusDisabled, false},
		{ca.StatusDeleted, false},
		{"", false},
	} {
		t.Run(string(tt.status), func(t *testing.T) {
			t.Parallel()
			err := (&ca.CA{Name: "x", Status: tt.status}).CanIssue()
			if tt.ok && err != nil {
				t.Fatalf("CanIssue: %v", err)
			}
			if !tt.ok && !errors.Is(err, ca.ErrNotIssuing) {
				t.Fatalf("CanIssue = %v, want ErrNotIssuing", err)
			}
		})
	}
}

// TestTransitions runs every lifecycle method from every state.
func TestTransitions(t *testing.T) {
	t.Parallel()
	type op struct {
		name string
		do   func(c *ca.CA, at time.Time) error
	}
	disable := op{"disable", (*ca.CA).Disable}
	enable := op{"enable", (*ca.CA).Enable}
	del := op{"delete", func(c *ca.CA, at time.Time) error { return c.Delete(at, 7*day) }}
	restore := op{"restore", (*ca.CA).Restore}

	tests := []struct {
		from ca.Status
		op   op
		want ca.Status // "" means refused with ErrTransition
	}{
		{ca.StatusActive, disable, ca.StatusDisabled},
		{ca.StatusActive, enable, ""},
		{ca.StatusActive, del, ""},
		{ca.StatusActive, restore, ""},
		{ca.StatusDisabled, disable, ""},
		{ca.StatusDisabled, enable, ca.StatusActive},
		{ca.StatusDisabled, del, ca.StatusDeleted},
		{ca.StatusDisabled, restore, ""},
		{ca.StatusPending, disable, ""},
		{ca.StatusPending, enable, ""},
		{ca.StatusPending, del, ca.StatusDeleted},
		{ca.StatusPending, restore, ""},
		{ca.StatusDeleted, disable, ""},
		{ca.StatusDeleted, enable, ""},
		{ca.StatusDeleted, del, ""},
	}
	for _, tt := range tests {
		t.Run(string(tt.from)+"/"+tt.op.name, func(t *testing.T) {
			t.Parallel()
			c := &ca.CA{Name: "x", Status: tt.from, UpdatedAt: now.Add(-day)}
			before := *c
			at := now
			err := tt.op.do(c, at)
			if tt.want == "" {
				if !errors.Is(err, ca.ErrTransition) {
					t.Fatalf("%s from %s = %v, want ErrTransition", tt.op.name, tt.from, err)
				}
				if c.Status != before.Status || !c.UpdatedAt.Equal(before.UpdatedAt) || c.DeletedAt != nil {
					t.Errorf("refused %s changed the CA: %+v", tt.op.name, c)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s from %s: %v", tt.op.name, tt.from, err)
			}
			if c.Status != tt.want || !c.UpdatedAt.Equal(at) {
				t.Fatalf("after %s: status %s, updated %s; want %s at %s", tt.op.name, c.Status, c.UpdatedAt, tt.want, at)
			}
			if tt.want == ca.StatusDeleted {
				if c.PreviousStatus != tt.from || c.DeletedAt == nil || !c.DeletedAt.Equal(at) ||
					c.RestorableUntil == nil || !c.RestorableUntil.Equal(at.Add(7*day)) {
					t.Errorf("deleted CA: previous %s, deleted %v, restorable until %v", c.PreviousStatus, c.DeletedAt, c.RestorableUntil)
				}
			}
		})
	}
}

func TestDeleteRestore(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		from   ca.Status
		window time.Duration
		after  time.Duration // time between delete and restore
		want   ca.Status     // "" means refused
	}{
		{"disabled, at once", ca.StatusDisabled, 7 * day, 0, ca.StatusDisabled},
		{"pending, at once", ca.StatusPending, 7 * day, 0, ca.StatusPending},
		{"disabled, last second", ca.StatusDisabled, 7 * day, 7*day - time.Second, ca.StatusDisabled},
		{"pending, last second", ca.StatusPending, 7 * day, 7*day - time.Second, ca.StatusPending},
		{"at the end of the window", ca.StatusDisabled, 7 * day, 7 * day, ""},
		{"after the window", ca.StatusPending, 7 * day, 8 * day, ""},
		{"default window is 30 days", ca.StatusDisabled, 0, 29 * day, ca.StatusDisabled},
		{"after the default window", ca.StatusDisabled, -1, 30 * day, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := &ca.CA{Name: "x", Status: tt.from}
			if err := c.Delete(now, tt.window); err != nil {
				t.Fatal(err)
			}
			err := c.Restore(now.Add(tt.after))
			if tt.want == "" {
				if !errors.Is(err, ca.ErrTransition) {
					t.Fatalf("Restore after %s = %v, want ErrTransition", tt.after, err)
				}
				if c.Status != ca.StatusDeleted {
					t.Errorf("refused restore left status %s", c.Status)
				}
				return
			}
			if err != nil {
				t.Fatalf("Restore after %s: %v", tt.after, err)
			}
			if c.Status != tt.want || c.PreviousStatus != "" || c.DeletedAt != nil || c.RestorableUntil != nil {
				t.Errorf("restored CA = %+v, want status %s and no deletion marks", c, tt.want)
			}
		})
	}
}

func openStore(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func createCA(t *testing.T, db *store.DB, name string, status ca.Status) *ca.CA {
	t.Helper()
	c := &ca.CA{
		ID: "ca_" + name, Name: name, Kind: ca.KindIntermediate, Status: status,
		Key:       keys.Ref{Provider: "software", ID: "k_" + name, Algorithm: pki.ECDSAP256, Blob: []byte{1}},
		CreatedAt: now, UpdatedAt: now,
	}
	if err := db.CreateCA(context.Background(), c, created(c)); err != nil {
		t.Fatal(err)
	}
	return c
}

func statusOf(t *testing.T, db *store.DB, id string) ca.Status {
	t.Helper()
	c, err := db.GetCA(context.Background(), id)
	if err != nil {
		t.Fatalf("GetCA(%s): %v", id, err)
	}
	return c.Status
}

func TestManagerLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openStore(t)
	clk := clock.NewFake(now)
	m := ca.NewManager(db, clk, slog.New(slog.DiscardHandler), 7*day)
	createCA(t, db, "issuing", ca.StatusActive)
	createCA(t, db, "external", ca.StatusPending)

	steps := []struct {
		name    string
		do      func(context.Context, authz.Principal, string) (*ca.CA, error)
		ca      string
		advance time.Duration
		want    ca.Status // "" means refused with ErrTransition
	}{
		{"delete active", m.Delete, "issuing", 0, ""},
		{"enable active", m.Enable, "issuing", 0, ""},
		{"disable", m.Disable, "issuing", 0, ca.StatusDisabled},
		{"disable again", m.Disable, "issuing", 0, ""},
		{"enable", m.Enable, "issuing", 0, ca.StatusActive},
		{"disable by id", m.Disable, "ca_issuing", 0, ca.StatusDisabled},
		{"delete disabled", m.Delete, "issuing", 0, ca.StatusDeleted},
		{"enable deleted", m.Enable, "issuing", 0, ""},
		{"restore within window", m.Restore, "issuing", 6 * day, ca.StatusDisabled},
		{"restore restored", m.Restore, "issuing", 0, ""},
		{"disable pending", m.Disable, "external", 0, ""},
		{"delete pending", m.Delete, "external", 0, ca.StatusDeleted},
		{"restore after window", m.Restore, "external", 7*day + time.Second, ""},
	}
	for _, s := range steps {
		clk.Advance(s.advance)
		before := statusOf(t, db, s.ca)
		got, err := s.do(ctx, admin, s.ca)
		if s.want == "" {
			if !errors.Is(err, ca.ErrTransition) {
				t.Fatalf("%s: %+v, %v; want ErrTransition", s.name, got, err)
			}
			if st := statusOf(t, db, s.ca); st != before {
				t.Fatalf("%s: refused change moved the stored CA from %s to %s", s.name, before, st)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got.Status != s.want {
			t.Fatalf("%s: returned status %s, want %s", s.name, got.Status, s.want)
		}
		stored, err := db.GetCA(ctx, s.ca)
		if err != nil {
			t.Fatal(err)
		}
		if stored.Status != s.want || !stored.UpdatedAt.Equal(clk.Now()) {
			t.Fatalf("%s: stored status %s at %s, want %s at %s", s.name, stored.Status, stored.UpdatedAt, s.want, clk.Now())
		}
		if s.want == ca.StatusDeleted {
			if stored.RestorableUntil == nil || !stored.RestorableUntil.Equal(clk.Now().Add(7*day)) || stored.PreviousStatus != before {
				t.Fatalf("%s: stored restorable until %v, previous %s", s.name, stored.RestorableUntil, stored.PreviousStatus)
			}
		}
	}

	if _, err := m.Disable(ctx, admin, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Disable(unknown) = %v, want store.ErrNotFound", err)
	}
	if _, err := m.Get(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get(unknown) = %v, want store.ErrNotFound", err)
	}
}

// TestManagerAuthorisation: a lifecycle change needs ca:manage over the CA,
// by ID or name; a refused change leaves the CA and the audit log alone,
// and an allowed one is audited under the principal's name.
func TestManagerAuthorisation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openStore(t)
	clk := clock.NewFake(now)
	m := ca.NewManager(db, clk, slog.New(slog.DiscardHandler), 7*day)
	createCA(t, db, "issuing", ca.StatusActive)
	createCA(t, db, "other", ca.StatusActive)

	refused := []struct {
		name string
		p    authz.Principal
	}{
		{"no principal", authz.Principal{}},
		{"viewer", authz.WithRole("vera", authz.KindHuman, authz.RoleViewer, authz.Scope{})},
		{"issuer", authz.WithRole("ivan", authz.KindMachine, authz.RoleIssuer, authz.Scope{})},
		{"auditor", authz.WithRole("audrey", authz.KindHuman, authz.RoleAuditor, authz.Scope{})},
		{"CA admin of another CA", authz.WithRole("olga", authz.KindHuman, authz.RoleCAAdmin, authz.Scope{CAs: []string{"other"}})},
		{"CA admin limited to a profile", authz.WithRole("pat", authz.KindHuman, authz.RoleCAAdmin, authz.Scope{Profiles: []string{"web_server"}})},
	}
	for _, tt := range refused {
		for _, op := range []struct {
			name string
			do   func(context.Context, authz.Principal, string) (*ca.CA, error)
		}{{"disable", m.Disable}, {"enable", m.Enable}, {"delete", m.Delete}, {"restore", m.Restore}} {
			if got, err := op.do(ctx, tt.p, "issuing"); !errors.Is(err, ca.ErrForbidden) || !errors.Is(err, authz.ErrForbidden) {
				t.Errorf("%s by %s = %+v, %v; want ErrForbidden", op.name, tt.name, got, err)
			}
		}
		if st := statusOf(t, db, "ca_issuing"); st != ca.StatusActive {
			t.Fatalf("after refusals by %s the CA is %s", tt.name, st)
		}
	}

	// Scoped CA admins: by name, and by ID.
	byName := authz.WithRole("olga", authz.KindHuman, authz.RoleCAAdmin, authz.Scope{CAs: []string{"other"}})
	if _, err := m.Disable(ctx, byName, "ca_other"); err != nil {
		t.Errorf("CA admin of other (by name) disabling it by ID: %v", err)
	}
	byID := authz.WithRole("ida", authz.KindHuman, authz.RoleCAAdmin, authz.Scope{CAs: []string{"ca_issuing"}})
	if _, err := m.Disable(ctx, byID, "issuing"); err != nil {
		t.Errorf("CA admin of ca_issuing (by ID) disabling it by name: %v", err)
	}

	type ev struct{ principal, action, target string }
	var got []ev
	if err := db.EachAuditEvent(ctx, 0, func(e *audit.Event) error {
		got = append(got, ev{e.Principal, e.Action, e.Target})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := []ev{
		{"system", "ca.create", "ca_issuing"},
		{"system", "ca.create", "ca_other"},
		{"olga", "ca.disable", "ca_other"},
		{"ida", "ca.disable", "ca_issuing"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("audit events = %v, want %v", got, want)
	}
}

func TestManagerPurge(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openStore(t)
	clk := clock.NewFake(now)
	m := ca.NewManager(db, clk, slog.New(slog.DiscardHandler), 7*day)

	createCA(t, db, "active", ca.StatusActive)
	createCA(t, db, "disabled", ca.StatusDisabled)
	createCA(t, db, "old", ca.StatusDisabled)
	createCA(t, db, "recent", ca.StatusDisabled)
	createCA(t, db, "pending", ca.StatusPending)

	// old and pending are deleted at day 0, recent at day 5.
	for _, name := range []string{"old", "pending"} {
		if _, err := m.Delete(ctx, admin, name); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(5 * day)
	if _, err := m.Delete(ctx, admin, "recent"); err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		at     time.Duration // since now
		purged []string
	}{
		{6 * day, nil},
		{7 * day, nil}, // the window of old and pending ends now: not yet past
		{7*day + time.Second, []string{"ca_old", "ca_pending"}},
		{8 * day, nil},
		{12*day + time.Second, []string{"ca_recent"}},
		{100 * day, nil},
	}
	for _, s := range steps {
		clk.Set(now.Add(s.at))
		ids, err := m.Purge(ctx)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(ids)
		if !slices.Equal(ids, s.purged) {
			t.Fatalf("Purge at +%s = %v, want %v", s.at, ids, s.purged)
		}
	}

	left, err := m.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range left {
		names = append(names, c.Name)
	}
	slices.Sort(names)
	if want := []string{"active", "disabled"}; !slices.Equal(names, want) {
		t.Fatalf("after purges the store holds %v, want %v", names, want)
	}
	if _, err := m.Restore(ctx, admin, "old"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Restore(purged) = %v, want store.ErrNotFound", err)
	}
	// A purged CA's name is free again.
	c := &ca.CA{ID: "ca_new", Name: "old", Kind: ca.KindRoot, Status: ca.StatusActive, CreatedAt: now, UpdatedAt: now}
	if err := db.CreateCA(ctx, c, created(c)); err != nil {
		t.Errorf("name of a purged CA not reusable: %v", err)
	}
}

func TestSpecValidate(t *testing.T) {
	t.Parallel()
	good := func() ca.Spec {
		return ca.Spec{Name: "issuing-1", Subject: pkix.Name{CommonName: "Issuing CA"}, KeyAlg: pki.ECDSAP256, Validity: 365 * day, MaxPathLen: 0}
	}
	tests := []struct {
		name   string
		mutate func(*ca.Spec)
		ok     bool
	}{
		{"good", func(*ca.Spec) {}, true},
		{"alias key algorithm", func(s *ca.Spec) { s.KeyAlg = "p384" }, true},
		{"unlimited path", func(s *ca.Spec) { s.MaxPathLen = -1 }, true},
		{"name constraints", func(s *ca.Spec) { s.PermittedDNS = []string{"example.com"}; s.PermittedURI = []string{".example.org"} }, true},
		{"upper-case name", func(s *ca.Spec) { s.Name = "Issuing" }, false},
		{"empty name", func(s *ca.Spec) { s.Name = "" }, false},
		{"name with slash", func(s *ca.Spec) { s.Name = "a/b" }, false},
		{"no common name", func(s *ca.Spec) { s.Subject.CommonName = "" }, false},
		{"bad key", func(s *ca.Spec) { s.KeyAlg = "rsa-1024" }, false},
		{"validity under a day", func(s *ca.Spec) { s.Validity = time.Hour }, false},
		{"validity over 30 years", func(s *ca.Spec) { s.Validity = 31 * 365 * day }, false},
		{"path length -2", func(s *ca.Spec) { s.MaxPathLen = -2 }, false},
		{"path length 9", func(s *ca.Spec) { s.MaxPathLen = 9 }, false},
		{"wildcard DNS constraint", func(s *ca.Spec) { s.ExcludedDNS = []string{"*.example.com"} }, false},
		{"empty DNS constraint", func(s *ca.Spec) { s.PermittedDNS = []string{""} }, false},
		{"URI constraint with scheme", func(s *ca.Spec) { s.PermittedURI = []string{"spiffe://example.org"} }, false},
		{"software key", func(s *ca.Spec) { s.KeyProvider = "software" }, true},
		{"pkcs11 key", func(s *ca.Spec) { s.KeyProvider = "pkcs11" }, true},
		{"pkcs11 RSA key", func(s *ca.Spec) { s.KeyProvider = "pkcs11"; s.KeyAlg = pki.RSA3072 }, true},
		{"software ed25519 key", func(s *ca.Spec) { s.KeyProvider = "software"; s.KeyAlg = pki.Ed25519 }, true},
		{"pkcs11 ed25519 key", func(s *ca.Spec) { s.KeyProvider = "pkcs11"; s.KeyAlg = pki.Ed25519 }, false},
		{"unknown key provider", func(s *ca.Spec) { s.KeyProvider = "tpm" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := good()
			tt.mutate(&s)
			err := s.Validate()
			if tt.ok && err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if !tt.ok && !errors.Is(err, ca.ErrSpec) {
				t.Fatalf("Validate = %v, want ErrSpec", err)
			}
		})
	}
}

type keyCert struct {
	key  crypto.Signer
	cert *x509.Certificate
}

// selfSigned makes a CA certificate with crypto/x509 alone.
func selfSigned(t *testing.T, tmpl *x509.Certificate) keyCert {
	t.Helper()
	key, err := pki.ECDSAP256.Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return keyCert{key, c}
}

func caTemplate(cn string, pathLen int, zero bool) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: now.Add(-day), NotAfter: now.Add(365 * day),
		BasicConstraintsValid: true, IsCA: true, MaxPathLen: pathLen, MaxPathLenZero: zero,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
}

func TestCheckChild(t *testing.T) {
	t.Parallel()
	unlimited := selfSigned(t, caTemplate("unlimited", -1, false)).cert
	zero := selfSigned(t, caTemplate("zero", 0, true)).cert
	one := selfSigned(t, caTemplate("one", 1, false)).cert
	two := selfSigned(t, caTemplate("two", 2, false)).cert
	leafT := caTemplate("leaf", -1, false)
	leafT.IsCA = false
	leaf := selfSigned(t, leafT).cert

	tests := []struct {
		name   string
		parent *x509.Certificate
		child  int
		ok     bool
	}{
		{"under unlimited, unlimited", unlimited, -1, true},
		{"under unlimited, 5", unlimited, 5, true},
		{"under 0, 0", zero, 0, false},
		{"under 0, unlimited", zero, -1, false},
		{"under 1, 0", one, 0, true},
		{"under 1, 1", one, 1, false},
		{"under 1, unlimited", one, -1, false},
		{"under 2, 1", two, 1, true},
		{"under 2, 2", two, 2, false},
		{"under a leaf", leaf, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := ca.CheckChild(tt.parent, tt.child, now)
			if tt.ok && err != nil {
				t.Fatalf("CheckChild: %v", err)
			}
			if !tt.ok && !errors.Is(err, ca.ErrSpec) {
				t.Fatalf("CheckChild = %v, want ErrSpec", err)
			}
		})
	}
}

func TestTemplate(t *testing.T) {
	t.Parallel()
	parent := selfSigned(t, caTemplate("parent", 2, false)).cert
	key, err := pki.ECDSAP256.Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	_, ipnet, _ := net.ParseCIDR("10.0.0.0/8")
	urls := ca.URLsFor("http://pki.example.internal:8080/", "ca_1")

	tests := []struct {
		name         string
		spec         ca.Spec
		parent       *x509.Certificate
		wantPath     int
		wantZero     bool
		wantNC       bool
		wantURLs     bool
		wantNotAfter time.Time
		wantErr      error
	}{
		{"root unlimited", ca.Spec{Validity: 10 * 365 * day, MaxPathLen: -1}, nil, -1, false, false, false, now.Add(-time.Minute).Add(10 * 365 * day), nil},
		{"root pathlen 1", ca.Spec{Validity: 10 * 365 * day, MaxPathLen: 1}, nil, 1, false, false, false, now.Add(-time.Minute).Add(10 * 365 * day), nil},
		{"intermediate pathlen 0", ca.Spec{Validity: 30 * day, MaxPathLen: 0}, parent, 0, true, false, true, now.Add(-time.Minute).Add(30 * day), nil},
		{"capped at the parent", ca.Spec{Validity: 5 * 365 * day, MaxPathLen: 1}, parent, 1, false, false, true, parent.NotAfter, nil},
		{"name constraints", ca.Spec{Validity: 30 * day, PermittedDNS: []string{"example.com"}, ExcludedIP: []*net.IPNet{ipnet}}, parent, 0, true, true, true, now.Add(-time.Minute).Add(30 * day), nil},
		{"pathlen not allowed", ca.Spec{Validity: 30 * day, MaxPathLen: 2}, parent, 0, false, false, false, time.Time{}, ca.ErrSpec},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.spec.Subject = pkix.Name{CommonName: tt.name}
			tmpl, err := ca.Template(&tt.spec, key.Public(), big.NewInt(7), now, tt.parent, urls)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Template = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ski, _ := pki.SubjectKeyID(key.Public())
			if !tmpl.IsCA || !tmpl.BasicConstraintsValid || !bytes.Equal(tmpl.SubjectKeyId, ski) ||
				tmpl.KeyUsage&x509.KeyUsageCertSign == 0 || tmpl.KeyUsage&x509.KeyUsageCRLSign == 0 {
				t.Errorf("template is not a CA template: %+v", tmpl)
			}
			if tmpl.MaxPathLen != tt.wantPath || tmpl.MaxPathLenZero != tt.wantZero {
				t.Errorf("path length %d (zero %v), want %d (zero %v)", tmpl.MaxPathLen, tmpl.MaxPathLenZero, tt.wantPath, tt.wantZero)
			}
			if tmpl.PermittedDNSDomainsCritical != tt.wantNC {
				t.Errorf("name constraints critical = %v, want %v", tmpl.PermittedDNSDomainsCritical, tt.wantNC)
			}
			if !tmpl.NotAfter.Equal(tt.wantNotAfter) {
				t.Errorf("NotAfter = %s, want %s", tmpl.NotAfter, tt.wantNotAfter)
			}
			hasURLs := slices.Equal(tmpl.CRLDistributionPoints, []string{"http://pki.example.internal:8080/crl/ca_1.crl"}) &&
				slices.Equal(tmpl.OCSPServer, []string{"http://pki.example.internal:8080/ocsp/ca_1"}) &&
				slices.Equal(tmpl.IssuingCertificateURL, []string{"http://pki.example.internal:8080/ca/ca_1.crt"})
			if hasURLs != tt.wantURLs {
				t.Errorf("URLs %v %v %v, want present=%v", tmpl.CRLDistributionPoints, tmpl.OCSPServer, tmpl.IssuingCertificateURL, tt.wantURLs)
			}
			if tt.parent == nil && (len(tmpl.CRLDistributionPoints)+len(tmpl.OCSPServer)+len(tmpl.IssuingCertificateURL)) != 0 {
				t.Errorf("root template carries revocation URLs")
			}
		})
	}
}

func TestCheckImport(t *testing.T) {
	t.Parallel()
	outside := selfSigned(t, caTemplate("Outside Root", 1, false))
	unrelated := selfSigned(t, caTemplate("Unrelated Root", 1, false))
	key, err := pki.ECDSAP256.Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	other, err := pki.ECDSAP256.Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	sign := func(mutate func(*x509.Certificate), pub crypto.PublicKey) *x509.Certificate {
		t.Helper()
		tmpl := caTemplate("Pending CA", 0, true)
		tmpl.SerialNumber = big.NewInt(2)
		mutate(tmpl)
		der, err := x509.CreateCertificate(rand.Reader, tmpl, outside.cert, pub, outside.key)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	good := sign(func(*x509.Certificate) {}, key.Public())

	tests := []struct {
		name  string
		cert  *x509.Certificate
		chain []*x509.Certificate
		ok    bool
	}{
		{"good, no chain", good, nil, true},
		{"good, with chain", good, []*x509.Certificate{outside.cert}, true},
		{"no key usage", sign(func(c *x509.Certificate) { c.KeyUsage = 0 }, key.Public()), nil, true},
		{"other key", sign(func(*x509.Certificate) {}, other.Public()), nil, false},
		{"not a CA", sign(func(c *x509.Certificate) {
			c.IsCA = false
			c.MaxPathLenZero = false
			c.KeyUsage = x509.KeyUsageDigitalSignature
		}, key.Public()), nil, false},
		{"no basic constraints", sign(func(c *x509.Certificate) { c.BasicConstraintsValid = false; c.IsCA = false }, key.Public()), nil, false},
		{"no keyCertSign", sign(func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageCRLSign }, key.Public()), nil, false},
		{"expired", sign(func(c *x509.Certificate) { c.NotBefore = now.Add(-10 * day); c.NotAfter = now.Add(-day) }, key.Public()), nil, false},
		{"not yet valid", sign(func(c *x509.Certificate) { c.NotBefore = now.Add(day) }, key.Public()), nil, false},
		{"wrong chain", good, []*x509.Certificate{unrelated.cert}, false},
		{"broken chain", good, []*x509.Certificate{outside.cert, unrelated.cert}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := ca.CheckImport(tt.cert, key.Public(), tt.chain, now)
			if tt.ok && err != nil {
				t.Fatalf("CheckImport: %v", err)
			}
			if !tt.ok && !errors.Is(err, ca.ErrImport) {
				t.Fatalf("CheckImport = %v, want ErrImport", err)
			}
		})
	}
}

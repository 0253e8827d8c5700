package store_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/store"
)

var _ authz.Store = (*store.DB)(nil)

// TestUpgradeBackfillsClientCredentials builds a database with the schema
// before migration 12 (the one today's deployments run), fills it as the
// old code did, and opens it: a client certificate becomes its identity's
// credential exactly when the issuance rule would have allowed it — the
// principal requested it itself, or an unscoped administrator did after
// the identity was registered. A scoped issuer's certificate, one an
// administrator signed before the name was an identity, an ACME
// certificate and one naming two principals get none.
func TestUpgradeBackfillsClientCredentials(t *testing.T) {
	t.Parallel()
	forDialects(t, func(t *testing.T, url string, raw *rawDB) {
		ctx := context.Background()
		dialect := "sqlite"
		if raw.numbered {
			dialect = "postgres"
		}
		entries, err := os.ReadDir(filepath.Join("migrations", dialect))
		if err != nil {
			t.Fatal(err)
		}
		raw.exec(t, `CREATE TABLE schema_migrations (version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL,
			applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)`)
		for _, e := range entries {
			name := strings.TrimSuffix(e.Name(), ".sql")
			v, err := strconv.Atoi(name[:4])
			if err != nil {
				t.Fatal(err)
			}
			if v >= 12 {
				continue
			}
			b, err := os.ReadFile(filepath.Join("migrations", dialect, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			raw.exec(t, string(b))
			raw.exec(t, `INSERT INTO schema_migrations (version, name) VALUES (?, ?)`, v, name)
		}

		t0 := time.Now().Add(-time.Hour)
		at := func(m int) any { return raw.timeArg(t0.Add(time.Duration(m) * time.Minute)) }
		principal := func(id, name string, m int) {
			raw.exec(t, `INSERT INTO principals (id, name, kind, description, created_at, created_by) VALUES (?, ?, 'machine', '', ?, 'test')`, id, name, at(m))
		}
		bind := func(id, principalID, role, profiles string) {
			raw.exec(t, `INSERT INTO role_bindings (id, principal_id, role, cas, profiles, names, created_at, created_by)
				VALUES (?, ?, ?, '[]', ?, '[]', ?, 'test')`, id, principalID, role, profiles, at(0))
		}
		identity := func(kind, value, principalID string, m int) {
			raw.exec(t, `INSERT INTO principal_identities (kind, value, principal_id, created_at) VALUES (?, ?, ?, ?)`, kind, value, principalID, at(m))
		}
		cert := func(serial, requester string, m int, sans ...string) {
			raw.exec(t, `INSERT INTO certificates (serial, ca_id, profile, requester, subject, sans, not_before, not_after,
				key_algorithm, key_bits, signature_algorithm, status, fingerprint, tags, lint_warnings, der, created_at)
				VALUES (?, 'ca1', 'internal_service', ?, 'CN=x', '[]', ?, ?, 'ECDSA', 256, 'ECDSA-SHA256', 'valid', 'fp', '[]', '[]', ?, ?)`,
				serial, requester, at(m), at(m+60*24*30), []byte("der"), at(m))
			for _, s := range sans {
				raw.exec(t, `INSERT INTO certificate_names (kind, value, serial) VALUES ('san', ?, ?)`, strings.ToLower(s), serial)
			}
		}
		principal("p_admin", "admin", 0)
		bind("b_admin", "p_admin", "admin", "[]")
		principal("p_agent", "agent", 0)
		bind("b_agent", "p_agent", "issuer", `["internal_service"]`)
		principal("p_ci", "ci", 0)
		bind("b_ci", "p_ci", "issuer", `["internal_service"]`)
		principal("p_ops", "ops", 0)
		bind("b_ops", "p_ops", "admin", "[]")
		const agentURI, opsURI = "spiffe://example.internal/agent", "spiffe://example.internal/ops"
		identity("uri", agentURI, "p_agent", 10)
		identity("uri", opsURI, "p_ops", 10)
		identity("dns", "ops.svc.internal", "p_ops", 10)

		cert("01", "agent", 5, agentURI)                                   // its own, before the identity
		cert("02", "agent", 20, agentURI, "web.svc.internal")              // its own, after
		cert("03", "admin", 20, agentURI)                                  // enrolled by the admin
		cert("04", "admin", 5, agentURI)                                   // signed by the admin before it was an identity
		cert("05", "ci", 20, opsURI)                                       // a scoped issuer's, carrying an admin's identity
		cert("06", "acme:clients/acct1", 20, "ops.svc.internal")           // ACME
		cert("07", "admin", 20, agentURI, "ops.svc.internal")              // two principals
		cert("08", "system", 20, "ops.svc.internal")                       // the server's own
		cert("09", "acct1 (principal ops)", 20, "ops.svc.internal")        // ACME account bound to ops
		cert("10", "ci", 5, "spiffe://example.internal/ci-not-registered") // no identity at all

		want := map[string]string{"01": "p_agent", "02": "p_agent", "03": "p_agent"}
		for range 2 { // the second Open has nothing to do
			db, err := store.Open(ctx, url, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, serial := range []string{"01", "02", "03", "04", "05", "06", "07", "08", "09", "10"} {
				got, err := db.CredentialHolder(ctx, serial)
				if w, ok := want[serial]; ok {
					if err != nil || got != w {
						t.Errorf("certificate %s: credential of %q (%v), want %s", serial, got, err, w)
					}
				} else if err != nil || got != "" {
					t.Errorf("certificate %s: credential of %q (%v), want none", serial, got, err)
				}
			}
			// The identity lookup the issuance path uses.
			ids, err := db.MatchIdentities(ctx, []authz.Identity{{Kind: "uri", Value: agentURI}, {Kind: "dns", Value: "ops.svc.internal"},
				{Kind: "dns", Value: agentURI}, {Kind: "uri", Value: "spiffe://example.internal/none"}})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, i := range ids {
				got = append(got, i.Kind+" "+i.Value+" "+i.PrincipalID+" "+i.Principal)
			}
			slices.Sort(got)
			if w := []string{"dns ops.svc.internal p_ops ops", "uri " + agentURI + " p_agent agent"}; !slices.Equal(got, w) {
				t.Errorf("MatchIdentities = %q, want %q", got, w)
			}
			db.Close()
		}
	})
}

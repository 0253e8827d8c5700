package store_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
)

// TestUpgradeRecordsPrincipalIDs opens a database at schema version 5
// (before principal IDs), holding certificates requested by the server, by
// a principal that took the name "system", by another principal and by an
// ACME account, and audit events hashed the old way. After the upgrade
// only the server's own certificates are server-owned, the others carry
// their principal's ID, and the old events still verify, chained to new
// events that record principal IDs.
func TestUpgradeRecordsPrincipalIDs(t *testing.T) {
	t.Parallel()
	forDialects(t, func(t *testing.T, url string, raw *rawDB) {
		ctx := context.Background()
		dialect := "sqlite"
		if raw.numbered {
			dialect = "postgres"
		}
		raw.exec(t, `CREATE TABLE schema_migrations (version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL,
			applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)`)
		for v, name := range []string{"0001_init", "0002_revocation", "0003_access_audit", "0004_acme", "0005_lifecycle"} {
			sqlText, err := os.ReadFile(filepath.Join("migrations", dialect, name+".sql"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := raw.ExecContext(ctx, string(sqlText)); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			raw.exec(t, `INSERT INTO schema_migrations (version, name) VALUES (?, ?)`, v+1, name)
		}
		now := time.Now().UTC().Truncate(time.Microsecond)
		tm := raw.timeArg(now)
		for _, p := range [][2]string{{"p_1111111111111111", "system"}, {"p_2222222222222222", "alice"}} {
			raw.exec(t, `INSERT INTO principals (id, name, kind, description, created_at, created_by) VALUES (?, ?, 'machine', '', ?, 'old')`, p[0], p[1], tm)
		}
		certs := map[string]string{ // serial: requester
			"0a01": "system", // the server's current TLS certificate (settings)
			"0a02": "system", // the principal called system
			"0a03": "alice",
			"0a04": "acme:default/acct1",
		}
		for serial, req := range certs {
			raw.exec(t, `INSERT INTO certificates (serial, ca_id, profile, requester, subject, sans, not_before, not_after,
				key_algorithm, key_bits, signature_algorithm, status, fingerprint, tags, lint_warnings, der, created_at)
				VALUES (?, 'ca1', 'web_server', ?, 'CN=x', '[]', ?, ?, 'ECDSA', 256, 'ECDSA-SHA256', 'valid', 'fp', '[]', '[]', ?, ?)`,
				serial, req, tm, raw.timeArg(now.Add(time.Hour)), []byte("not DER"), tm)
		}
		raw.exec(t, `INSERT INTO settings (name, value) VALUES ('server_tls_serial', ?)`, []byte("0a01"))

		// Three events chained the old way (no principal ID in the hash).
		prev := audit.Genesis()
		for i := range 3 {
			ev := audit.Event{Time: now.Add(time.Duration(i) * time.Second), Principal: "admin", Action: "old.action",
				Target: fmt.Sprint(i), Outcome: audit.Success, Details: []byte("{}")}
			ev.Hash = ev.ComputeHash(prev)
			raw.exec(t, `INSERT INTO audit_events (seq, time, principal, source, action, target, outcome, request_id, details, prev_hash, hash)
				VALUES (?, ?, 'admin', '', 'old.action', ?, 'success', '', '{}', ?, ?)`, i+1, raw.timeArg(ev.Time), ev.Target, []byte(prev), []byte(ev.Hash))
			prev = ev.Hash
		}
		raw.exec(t, `UPDATE audit_head SET seq = 3, hash = ? WHERE id = 1`, []byte(prev))

		db := openStore(t, url)
		want := map[string]struct {
			id          string
			serverOwned bool
		}{
			"0a01": {authz.System().ID, true},
			"0a02": {"p_1111111111111111", false},
			"0a03": {"p_2222222222222222", false},
			"0a04": {"", false},
		}
		for serial, w := range want {
			c, err := db.GetCertificate(ctx, serial)
			if err != nil {
				t.Fatal(err)
			}
			if c.RequesterID != w.id || c.ServerOwned() != w.serverOwned {
				t.Errorf("certificate %s (requester %s): requester_id %q server-owned %v, want %q %v",
					serial, c.Requester, c.RequesterID, c.ServerOwned(), w.id, w.serverOwned)
			}
		}

		p := authz.WithRole("alice", authz.KindMachine, authz.RoleIssuer, authz.Scope{})
		p.ID = "p_2222222222222222"
		if err := db.AppendAudit(ctx, audit.New(p, now.Add(time.Minute), "new.action", "", nil)); err != nil {
			t.Fatal(err)
		}
		prev = audit.Genesis()
		n := 0
		if err := db.EachAuditEvent(ctx, 0, func(e *audit.Event) error {
			n++
			if !bytes.Equal(e.PrevHash, prev) || !bytes.Equal(e.ComputeHash(prev), e.Hash) {
				t.Errorf("event %d (%s) does not verify after the upgrade", e.Seq, e.Action)
			}
			if e.Action == "new.action" && e.PrincipalID != p.ID {
				t.Errorf("new event principal_id %q, want %s", e.PrincipalID, p.ID)
			}
			prev = append(audit.Hash(nil), e.Hash...)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if n != 4 {
			t.Errorf("%d events, want 4", n)
		}
	})
}

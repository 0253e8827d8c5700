package app

import (
	"context"
	"crypto"
	"crypto/elliptic"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/config"
	"github.com/certwright/certwright/internal/keys"
	"github.com/certwright/certwright/internal/store/postgres"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// ---- helpers for acting as someone who can write the database (no KEK)

// tDBWriter opens the instance's database for writing behind the server's
// back, as an attacker with database access would.
func tDBWriter(t *testing.T, cfg *config.Config) *sql.DB {
	t.Helper()
	var (
		db  *sql.DB
		err error
	)
	if cfg.DB == "" {
		db, err = sql.Open("sqlite", "file:"+filepath.Join(cfg.DataDir, DBFile)+"?_pragma=busy_timeout(10000)")
	} else {
		db, err = postgres.Open(context.Background(), cfg.DB)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// tExec runs one statement (no parameters: the values are quoted by the
// caller) and fails unless it changed exactly want rows.
func tExec(t *testing.T, db *sql.DB, want int64, query string) {
	t.Helper()
	res, err := db.ExecContext(context.Background(), query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != want {
		t.Fatalf("%s: %d rows changed (%v), want %d", query, n, err, want)
	}
}

// tCopyCAKeyToCert is the attack of issue 13 #4: copy a CA's wrapped key
// (id, algorithm and blob) onto a managed certificate's key columns.
func tCopyCAKeyToCert(t *testing.T, db *sql.DB, caName, serial string) {
	t.Helper()
	from := func(col string) string {
		return "(SELECT " + col + " FROM cas WHERE name = '" + caName + "')"
	}
	tExec(t, db, 1, "UPDATE certificates SET managed_key_id = "+from("key_id")+
		", managed_key_algorithm = "+from("key_algorithm")+", managed_key_blob = "+from("key_blob")+
		" WHERE serial = '"+serial+"'")
}

// tCAPublicKey is the public key of a CA as the API shows it.
func tCAPublicKey(t *testing.T, in *tInstance, name string) crypto.PublicKey {
	t.Helper()
	var c apitypes.CA
	in.must(http.StatusOK, "GET", "/api/v1/cas/"+name, nil, &c)
	return tPEMCert(t, c.CertificatePEM).PublicKey
}

func tPEMCert(t *testing.T, s string) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode([]byte(s))
	if b == nil {
		t.Fatalf("no PEM certificate in %q", tTrim([]byte(s)))
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// tPEMKeyPublic parses a PKCS#8 PEM private key and returns its public half.
func tPEMKeyPublic(t *testing.T, b []byte) crypto.PublicKey {
	t.Helper()
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("no PEM key in %q", tTrim(b))
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k.(crypto.Signer).Public()
}

func tSamePublic(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}

// tKeyExporter creates a machine principal with key:export (role issuer)
// and returns its Authorization header.
func tKeyExporter(t *testing.T, in *tInstance, name string) string {
	t.Helper()
	var res apitypes.CreatePrincipalResult
	in.must(http.StatusCreated, "POST", "/api/v1/principals",
		apitypes.CreatePrincipalRequest{Name: name, Kind: "machine", Role: "issuer", Token: true}, &res)
	return "Bearer " + res.Token.Token
}

// tIssueRetained issues, as auth, a certificate whose key the server keeps
// (auto_renew retains it) and returns it.
func tIssueRetained(t *testing.T, in *tInstance, auth, name string) apitypes.IssuedCertificate {
	t.Helper()
	r := in.raw("POST", "/api/v1/certificates/issue", auth, strings.NewReader(tJSON(t, apitypes.IssueRequest{
		Profile: "internal_service", DNSNames: []string{name}, AutoRenew: true,
	})))
	if r.status != http.StatusCreated {
		t.Fatalf("issue %s: %d %s", name, r.status, tTrim(r.body))
	}
	var out apitypes.IssuedCertificate
	if err := json.Unmarshal(r.body, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// tAuditEvents returns the audit events with action, in order.
func tAuditEventsOf(t *testing.T, in *tInstance, action string) []audit.Event {
	t.Helper()
	var out []audit.Event
	err := in.app.store.EachAuditEvent(context.Background(), 0, func(e *audit.Event) error {
		if e.Action == action {
			c := *e
			c.Details = append(json.RawMessage(nil), e.Details...)
			out = append(out, c)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// tSignWith signs a fresh CSR under web_server on CA ca (as admin).
func tSignWith(t *testing.T, in *tInstance, ca, name string) tResp {
	t.Helper()
	csr := tCSR(t, tECKey(t, elliptic.P256()), name)
	return in.call("POST", "/api/v1/certificates/sign", apitypes.SignRequest{CSRPEM: string(csr), Profile: "web_server", CA: ca})
}

// TestCopiedCAKeyNotExported is issue 13 #4 as an attacker did it: with
// write access to the database but no KEK, copy the issuing CA's wrapped
// key onto a managed certificate's row, then ask for that certificate's
// key with a key:export token. The key is refused (409, audited) and is
// not the CA's; the issuing CA keeps working.
func TestCopiedCAKeyNotExported(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			in := tNewServer(t, be.dbURL(t))
			deployer := tKeyExporter(t, in, "deployer")
			cert := tIssueRetained(t, in, deployer, "svc.example.internal")
			path := "/api/v1/certificates/" + cert.Serial + "/key"

			// Before: the machine gets the certificate's own key, and
			// exporting leaves no unwrapped key behind (#20).
			cached := tCachedSigners(in)
			r := in.raw("GET", path, deployer, nil)
			if r.status != http.StatusOK {
				t.Fatalf("export before the attack: %d %s", r.status, tTrim(r.body))
			}
			if !tSamePublic(tPEMKeyPublic(t, r.body), tPEMCert(t, cert.CertificatePEM).PublicKey) {
				t.Fatal("exported key is not the certificate's key")
			}
			if after := tCachedSigners(in); after != cached {
				t.Errorf("export left the key in the signer cache: %d unwrapped keys before, %d after", cached, after)
			}

			caPub := tCAPublicKey(t, in, "issuing")
			tCopyCAKeyToCert(t, tDBWriter(t, in.cfg), "issuing", cert.Serial)

			r = in.raw("GET", path, deployer, nil)
			if r.status == http.StatusOK && strings.Contains(string(r.body), "PRIVATE KEY") &&
				tSamePublic(tPEMKeyPublic(t, r.body), caPub) {
				t.Fatal("the issuing CA's private key was handed out")
			}
			if r.status != http.StatusConflict {
				t.Fatalf("export after the attack: status %d, want 409: %s", r.status, tTrim(r.body))
			}
			if strings.Contains(string(r.body), "PRIVATE KEY") {
				t.Fatalf("refusal carries a key: %s", tTrim(r.body))
			}
			if d := r.apiErr(t).Detail; !strings.Contains(d, cert.Serial) || !strings.Contains(d, "not that certificate's key") {
				t.Errorf("refusal detail %q does not say what is wrong", d)
			}
			evs := tAuditEventsOf(t, in, "key.export")
			if len(evs) != 2 || evs[1].Outcome != audit.Failed || evs[1].Target != cert.Serial {
				t.Errorf("key.export events = %+v, want a success then a failure for %s", evs, cert.Serial)
			}

			// The issuing CA still signs, with its own key.
			r = tSignWith(t, in, "issuing", "after.example.internal")
			if r.status != http.StatusCreated {
				t.Fatalf("issuing CA after the attack: %d %s", r.status, tTrim(r.body))
			}
			var out apitypes.IssuedCertificate
			if err := json.Unmarshal(r.body, &out); err != nil {
				t.Fatal(err)
			}
			ca, leaf := tPEMCert(t, out.ChainPEM), tPEMCert(t, out.CertificatePEM)
			if err := leaf.CheckSignatureFrom(ca); err != nil || !tSamePublic(ca.PublicKey, caPub) {
				t.Fatalf("certificate after the attack not signed by the issuing CA: %v", err)
			}
		})
	}
}

// TestCAKeyMovedBetweenCAsDoesNotSign: a wrapped key copied from one CA's
// row onto another CA's row does not unwrap there, so the second CA
// cannot sign with the first one's key (and the server refuses to start
// with it); the first keeps working.
func TestCAKeyMovedBetweenCAsDoesNotSign(t *testing.T) {
	tStillRun(t, func(t *testing.T, in *tInstance, clk *clock.Fake) {
		in.must(http.StatusCreated, "POST", "/api/v1/cas", apitypes.CreateCARequest{
			Name: "team", Type: "intermediate", Parent: "root", CommonName: "Team CA",
		}, nil)
		if r := tSignWith(t, in, "team", "before.example.internal"); r.status != http.StatusCreated {
			t.Fatalf("team CA before the attack: %d %s", r.status, tTrim(r.body))
		}
		before := in.certCount()
		db := tDBWriter(t, in.cfg)
		from := func(col string) string { return "(SELECT " + col + " FROM cas WHERE name = 'issuing')" }
		tExec(t, db, 1, "UPDATE cas SET key_id = "+from("key_id")+", key_algorithm = "+from("key_algorithm")+
			", key_blob = "+from("key_blob")+" WHERE name = 'team'")
		// A change written to the database past this server reaches
		// its CA cache within ca.CacheMaxAge.
		clk.Advance(ca.CacheMaxAge)

		r := tSignWith(t, in, "team", "moved.example.internal")
		if r.status == http.StatusCreated {
			t.Fatalf("team CA signed with the issuing CA's key: %s", tTrim(r.body))
		}
		if got := in.certCount(); got != before {
			t.Errorf("%d certificates after the refused signature, want %d", got, before)
		}
		if r := tSignWith(t, in, "issuing", "still.example.internal"); r.status != http.StatusCreated {
			t.Fatalf("issuing CA after the attack: %d %s", r.status, tTrim(r.body))
		}
		// The copied key does not unwrap as team's: it is bound to
		// the issuing CA.
		ctx := context.Background()
		team, err := in.app.store.GetCA(ctx, "team")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := in.app.keys.Signer(ctx, team.Key, keys.CAPurpose(team.ID)); !errors.Is(err, keys.ErrWrongKEK) {
			t.Errorf("issuing CA's key on team's row unwraps for team: %v, want ErrWrongKEK", err)
		}
		// And a restart refuses to run with a CA whose key is not its own.
		if err := in.stop(); err != nil {
			t.Fatal(err)
		}
		a, err := Open(ctx, in.cfg, tLogger(), clock.Real{})
		if err == nil {
			a.Close()
			t.Fatal("Open succeeded with another CA's key on team's row")
		}
		if !strings.Contains(err.Error(), "CA team") {
			t.Errorf("Open error %q does not name CA team", err)
		}
	})
}

// TestServerTLSKeyNotExportedWhenRelabelled: the server's own TLS key is
// bound to the server's purpose, so a database writer who relabels the
// server's certificate as a machine's (requester name and id) cannot have it exported.
func TestServerTLSKeyNotExportedWhenRelabelled(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			in := tNewServer(t, be.dbURL(t))
			deployer := tKeyExporter(t, in, "deployer")
			serial, err := in.app.store.GetSetting(context.Background(), settingServerTLS)
			if err != nil {
				t.Fatal(err)
			}
			var who apitypes.Principal
			in.must(http.StatusOK, "GET", "/api/v1/principals/deployer", nil, &who)
			// Both marks of ownership, name and principal id, say deployer:
			// what still refuses is the key's purpose binding.
			tExec(t, tDBWriter(t, in.cfg), 1, "UPDATE certificates SET requester = 'deployer', requester_id = '"+who.ID+"' WHERE serial = '"+string(serial)+"'")
			r := in.raw("GET", "/api/v1/certificates/"+string(serial)+"/key", deployer, nil)
			if r.status == http.StatusOK || strings.Contains(string(r.body), "PRIVATE KEY") {
				t.Fatalf("the server's TLS key was handed out after relabelling its certificate: %d", r.status)
			}
			if r.status != http.StatusConflict {
				t.Errorf("status %d, want 409: %s", r.status, tTrim(r.body))
			}
		})
	}
}

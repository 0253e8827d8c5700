package app

import (
	"crypto/elliptic"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// TestWhoamiSaysCredentialAndExpiry: whoami names the principal, the
// permissions its roles grant, and the credential of the request with its
// expiry: a token's, or the client certificate's notAfter.
func TestWhoamiSaysCredentialAndExpiry(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			in := tNewServer(t, be.dbURL(t))
			const uri = "spiffe://example.internal/agent/ci"
			in.tCreatePrincipal(t, "ci", "issuer", apitypes.Scope{Profiles: []string{"internal_service"}}, false)
			var tok apitypes.NewToken
			in.must(http.StatusCreated, "POST", "/api/v1/principals/ci/tokens", apitypes.CreateTokenRequest{ExpiresIn: "30d"}, &tok)
			whoami := func(c *tInstance, auth string) apitypes.Whoami {
				t.Helper()
				r := c.raw("GET", "/api/v1/whoami", auth, nil)
				var w apitypes.Whoami
				if r.status != http.StatusOK || json.Unmarshal(r.body, &w) != nil {
					t.Fatalf("whoami: status %d: %s", r.status, tTrim(r.body))
				}
				return w
			}

			w := whoami(in, "Bearer "+tok.Token)
			issuer, _ := authz.BuiltinRole(authz.RoleIssuer)
			var want []string
			for _, p := range issuer.Permissions {
				want = append(want, string(p))
			}
			slices.Sort(want)
			if w.Name != "ci" || w.Kind != "machine" || w.AuthMethod != "token" || w.TokenID != tok.Record.ID ||
				w.Auth != "token:"+tok.Record.ID || w.CertificateSerial != "" {
				t.Errorf("whoami by token = %+v", w)
			}
			// The store keeps microseconds.
			if w.ExpiresAt == nil || w.ExpiresAt.Sub(*tok.Record.ExpiresAt).Abs() > time.Millisecond {
				t.Errorf("whoami expires_at %v, want the token's %v", w.ExpiresAt, tok.Record.ExpiresAt)
			}
			if !slices.Equal(w.Permissions, want) {
				t.Errorf("whoami permissions %v, want the issuer role's %v", w.Permissions, want)
			}
			if len(w.Bindings) != 1 || w.Bindings[0].Role != "issuer" || !slices.Equal(w.Bindings[0].Scope.Profiles, []string{"internal_service"}) {
				t.Errorf("whoami bindings %+v", w.Bindings)
			}
			if w := whoami(in, in.bearer()); w.Name != "admin" || w.ExpiresAt != nil {
				t.Errorf("admin whoami = %+v, want a token that does not expire", w)
			}

			in.tAddIdentity(t, "ci", "uri", uri)
			key := tECKey(t, elliptic.P256())
			r, cert := in.tSignAs(t, in.bearer(), tCSRURI(t, key, "ci", uri))
			if r.status != http.StatusCreated {
				t.Fatalf("sign ci's client certificate: status %d: %s", r.status, tTrim(r.body))
			}
			b, _ := pem.Decode([]byte(cert.CertificatePEM))
			leaf, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			w = whoami(in.tWithClientCert(t, []byte(cert.CertificatePEM+cert.ChainPEM), key), "")
			if w.Name != "ci" || w.AuthMethod != "client_certificate" || w.CertificateSerial != cert.Serial || w.TokenID != "" {
				t.Errorf("whoami by client certificate = %+v", w)
			}
			if w.ExpiresAt == nil || !w.ExpiresAt.Equal(leaf.NotAfter) {
				t.Errorf("whoami expires_at %v, want the certificate's notAfter %v", w.ExpiresAt, leaf.NotAfter.Format(time.RFC3339))
			}
		})
	}
}

// TestRootsServedWithoutCredentials: /roots.pem on the HTTPS listener
// answers anyone with the root certificate, which login pins by fingerprint.
func TestRootsServedWithoutCredentials(t *testing.T) {
	t.Parallel()
	in := tNewServer(t, "")
	r := in.raw("GET", "/roots.pem", "", nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET /roots.pem: status %d: %s", r.status, tTrim(r.body))
	}
	served, err := pki.ParseCertificates(r.body)
	if err != nil {
		t.Fatal(err)
	}
	rootPEM, err := os.ReadFile(filepath.Join(in.cfg.DataDir, RootFile))
	if err != nil {
		t.Fatal(err)
	}
	roots, err := pki.ParseCertificates(rootPEM)
	if err != nil {
		t.Fatal(err)
	}
	if len(served) != 1 || !served[0].Equal(roots[0]) {
		t.Errorf("served %d certificates, want exactly the root of root.pem", len(served))
	}
	if r.header.Get("Strict-Transport-Security") == "" {
		t.Error("/roots.pem lacks the HTTPS security headers")
	}
}

// TestWhoamiWithoutRoles: a principal holding no role (a person whose
// first sign-in created it before anyone granted one) is told who it is
// and that it may do nothing, rather than refused.
func TestWhoamiWithoutRoles(t *testing.T) {
	t.Parallel()
	in := tNewServer(t, tBackends[0].dbURL(t))
	auth := in.tCreatePrincipal(t, "newcomer", "", apitypes.Scope{}, true)
	r := in.raw("GET", "/api/v1/whoami", auth, nil)
	var w apitypes.Whoami
	if r.status != http.StatusOK || json.Unmarshal(r.body, &w) != nil {
		t.Fatalf("whoami with no role: status %d: %s, want 200", r.status, tTrim(r.body))
	}
	if w.Name != "newcomer" || len(w.Permissions) != 0 || len(w.Bindings) != 0 {
		t.Errorf("whoami = %s with permissions %v and bindings %v, want newcomer with none", w.Name, w.Permissions, w.Bindings)
	}
	// Authentication is still required.
	if r := in.raw("GET", "/api/v1/whoami", "Bearer cwt_0000000000000000_bad", nil); r.status != http.StatusUnauthorized {
		t.Errorf("whoami with a bad token: %d, want 401", r.status)
	}
}

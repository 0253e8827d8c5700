package app

import (
	"context"
	"crypto"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-acme/lego/v4/certificate"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// ---- mTLS identities are bound to the principal they were issued to
// (issue 13, finding 2): a client certificate carrying a principal's
// registered SAN URI or DNS name authenticates as that principal only when
// it was issued to it (by the principal itself or by its administrator,
// after the identity was registered). Anyone else's certificate with the
// same name — a scoped issuer's, an ACME account's — is refused.

// tCSRURI makes a CSR for the URI SAN uri with key.
func tCSRURI(t *testing.T, key crypto.Signer, cn, uri string) string {
	t.Helper()
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}, URIs: []*url.URL{u}}, key)
	if err != nil {
		t.Fatalf("CSR: %v", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// tWithClientCert returns a copy of in whose requests present the client
// certificate chainPEM (leaf first) with key, and no token unless given.
func (in *tInstance) tWithClientCert(t *testing.T, chainPEM []byte, key crypto.PrivateKey) *tInstance {
	t.Helper()
	var chain [][]byte
	for rest := chainPEM; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			chain = append(chain, b.Bytes)
		}
	}
	if len(chain) == 0 {
		t.Fatal("no certificate in the client chain")
	}
	cfg := in.tlsConfig()
	cfg.Certificates = []tls.Certificate{{Certificate: chain, PrivateKey: key}}
	tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	out := *in
	out.t = t
	out.client = &http.Client{Timeout: 30 * time.Second, Transport: tr}
	return &out
}

// tWhoAmI asks the API who the client certificate of c authenticates as.
func (c *tInstance) tWhoAmI(t *testing.T) (int, string, string) {
	t.Helper()
	r := c.raw("GET", "/api/v1/whoami", "", nil)
	var who struct{ Name, Auth string }
	if r.status == http.StatusOK {
		if err := json.Unmarshal(r.body, &who); err != nil {
			t.Fatal(err)
		}
	}
	return r.status, who.Name, who.Auth
}

// tCreatePrincipal creates a machine principal as the admin and returns
// its token ("" unless token).
func (in *tInstance) tCreatePrincipal(t *testing.T, name, role string, scope apitypes.Scope, token bool) string {
	t.Helper()
	var res apitypes.CreatePrincipalResult
	in.must(http.StatusCreated, "POST", "/api/v1/principals",
		apitypes.CreatePrincipalRequest{Name: name, Kind: "machine", Role: role, Scope: scope, Token: token}, &res)
	if token {
		return "Bearer " + res.Token.Token
	}
	return ""
}

func (in *tInstance) tAddIdentity(t *testing.T, principal, kind, value string) {
	t.Helper()
	in.must(http.StatusCreated, "POST", "/api/v1/principals/"+principal+"/identities", apitypes.Identity{Kind: kind, Value: value}, nil)
}

// tSignAs signs csrPEM under internal_service with the Authorization
// header auth.
func (in *tInstance) tSignAs(t *testing.T, auth, csrPEM string) (tResp, apitypes.IssuedCertificate) {
	t.Helper()
	r := in.raw("POST", "/api/v1/certificates/sign", auth, strings.NewReader(tJSON(t, apitypes.SignRequest{CSRPEM: csrPEM, Profile: "internal_service"})))
	var out apitypes.IssuedCertificate
	if r.status == http.StatusCreated {
		if err := json.Unmarshal(r.body, &out); err != nil {
			t.Fatal(err)
		}
	}
	return r, out
}

// TestMTLSScopedIssuerCannotMintAdminIdentity is the reproduction: an
// issuer scoped to internal_service asks for a client certificate carrying
// the URI identity of an admin principal. Issuance is refused with the
// rule named, nothing is stored; and a certificate with such a name that
// the issuer got before the identity was registered does not log in as
// the admin (401).
func TestMTLSScopedIssuerCannotMintAdminIdentity(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			in := tNewServer(t, be.dbURL(t))
			const adminURI, laterURI = "spiffe://example.internal/deploy-admin", "spiffe://example.internal/deploy-admin-2"
			in.tCreatePrincipal(t, "deploy-admin", "admin", apitypes.Scope{}, false)
			in.tAddIdentity(t, "deploy-admin", "uri", adminURI)
			ci := in.tCreatePrincipal(t, "ci", "issuer", apitypes.Scope{Profiles: []string{"internal_service"}}, true)
			key := tECKey(t, elliptic.P256())

			before := in.certCount()
			r, _ := in.tSignAs(t, ci, tCSRURI(t, key, "ci build", adminURI))
			if r.status != http.StatusForbidden {
				t.Fatalf("scoped issuer signing a CSR with the admin's identity %s: status %d, want 403: %s", adminURI, r.status, tTrim(r.body))
			}
			// ci may not read principals: the detail does not name the admin.
			if e := r.apiErr(t); !strings.Contains(e.Detail, "mTLS identity of another principal") || !strings.Contains(e.Detail, "rule") || strings.Contains(e.Detail, "principal deploy-admin") {
				t.Errorf("403 detail %q does not name the identity rule", e.Detail)
			}
			if n := in.certCount(); n != before {
				t.Errorf("%d certificates after the refused request, want %d", n, before)
			}

			// A certificate the issuer got before the name became the
			// admin's identity is still no credential of the admin.
			r, old := in.tSignAs(t, ci, tCSRURI(t, key, "ci build", laterURI))
			if r.status != http.StatusCreated {
				t.Fatalf("sign %s before it is anyone's identity: status %d: %s", laterURI, r.status, tTrim(r.body))
			}
			in.tAddIdentity(t, "deploy-admin", "uri", laterURI)
			c := in.tWithClientCert(t, []byte(old.CertificatePEM+old.ChainPEM), key)
			if st, name, _ := c.tWhoAmI(t); st != http.StatusUnauthorized {
				t.Errorf("certificate %s (requester ci, carrying deploy-admin's identity): whoami status %d as %q, want 401", old.Serial, st, name)
			}
			if r := c.raw("POST", "/api/v1/principals", "", strings.NewReader(tJSON(t, apitypes.CreatePrincipalRequest{Name: "backdoor", Kind: "machine", Role: "admin", Token: true}))); r.status != http.StatusUnauthorized {
				t.Errorf("create principal with the spoofing certificate: status %d, want 401: %s", r.status, tTrim(r.body))
			}
			if r := in.call("GET", "/api/v1/principals/backdoor", nil); r.status != http.StatusNotFound {
				t.Errorf("principal backdoor: status %d, want 404", r.status)
			}
		})
	}
}

// TestMTLSACMECertificateIsNoCredential is the ACME reproduction: an
// anonymous ACME account, through a provisioner whose profile has
// clientAuth, gets a certificate for a name that is (or later becomes) a
// principal's DNS identity. The certificate does not authenticate (401),
// and once the name is an identity, ACME issuance for it is refused.
func TestMTLSACMECertificateIsNoCredential(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			e := tLegoNewEnv(t, be.dbURL(t))
			e.must(http.StatusCreated, "POST", "/api/v1/acme/provisioners", apitypes.CreateProvisionerRequest{
				Name: "clients", CA: "issuing", Profile: "internal_service", Challenges: []string{"http-01"},
			}, nil)
			a := e.newClient(t, "clients", tECKey(t, elliptic.P256()), "http-01")
			a.register(t)
			const name = "ops-bot.acme.test"
			c := a.obtain(t, certificate.ObtainRequest{Domains: []string{name}})
			if !slices.Contains(c.leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
				t.Fatalf("the ACME certificate has no clientAuth (EKU %v): the test needs one that could authenticate", c.leaf.ExtKeyUsage)
			}
			e.tCreatePrincipal(t, "ops-bot", "admin", apitypes.Scope{}, false)
			e.tAddIdentity(t, "ops-bot", "dns", name)

			kb, _ := pem.Decode(c.res.PrivateKey)
			if kb == nil {
				t.Fatal("lego returned no private key PEM")
			}
			key, err := x509.ParseECPrivateKey(kb.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			cl := e.tInstance.tWithClientCert(t, c.res.Certificate, key)
			if st, who, _ := cl.tWhoAmI(t); st != http.StatusUnauthorized {
				t.Errorf("ACME certificate %s for %s (the DNS identity of admin ops-bot): whoami status %d as %q, want 401", c.serial, name, st, who)
			}

			// Now that the name is an identity, ACME does not issue it.
			before := e.certCount()
			_, err = a.Certificate.Obtain(certificate.ObtainRequest{Domains: []string{name}, Bundle: true})
			if err == nil {
				t.Fatalf("ACME issued a client certificate for %s, the DNS identity of principal ops-bot", name)
			}
			if !strings.Contains(err.Error(), "mTLS identity") || strings.Contains(err.Error(), "principal ops-bot") {
				t.Errorf("ACME refusal %q does not name the identity rule, or names the principal", err)
			}
			if n := e.certCount(); n != before {
				t.Errorf("%d certificates after the refused order, want %d", n, before)
			}
		})
	}
}

// TestMTLSEnrolledIdentityAuthenticates: the legitimate paths still work.
// A client certificate for a registered identity authenticates as its
// principal when the principal requested it itself, or when an
// administrator who holds everything the principal holds (and
// principal:manage) issued it. A principal administrator who holds less
// than the target may not mint its identity.
func TestMTLSEnrolledIdentityAuthenticates(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			in := tNewServer(t, be.dbURL(t))
			const uri = "spiffe://example.internal/agent/web-1"
			agentTok := in.tCreatePrincipal(t, "web-1", "issuer", apitypes.Scope{Profiles: []string{"internal_service"}}, true)
			in.tAddIdentity(t, "web-1", "uri", uri)

			check := func(what string, cert apitypes.IssuedCertificate, key crypto.Signer) {
				t.Helper()
				c := in.tWithClientCert(t, []byte(cert.CertificatePEM+cert.ChainPEM), key)
				st, name, auth := c.tWhoAmI(t)
				if st != http.StatusOK || name != "web-1" || auth != "mtls:"+cert.Serial {
					t.Errorf("%s: whoami status %d as %q (%s), want 200 as web-1 (mtls:%s)", what, st, name, auth, cert.Serial)
				}
			}
			// Enrolled by the admin.
			k1 := tECKey(t, elliptic.P256())
			r, byAdmin := in.tSignAs(t, in.bearer(), tCSRURI(t, k1, "web-1", uri))
			if r.status != http.StatusCreated {
				t.Fatalf("admin signs web-1's client certificate: status %d: %s", r.status, tTrim(r.body))
			}
			check("issued by the admin", byAdmin, k1)
			// Requested by the principal itself.
			k2 := tECKey(t, elliptic.P256())
			r, own := in.tSignAs(t, agentTok, tCSRURI(t, k2, "web-1", uri))
			if r.status != http.StatusCreated {
				t.Fatalf("web-1 signs its own client certificate: status %d: %s", r.status, tTrim(r.body))
			}
			check("issued to web-1 itself", own, k2)

			// A team lead holding principal:manage and an unscoped issuer
			// role covers web-1 and may enrol it, but not an admin.
			in.must(http.StatusCreated, "POST", "/api/v1/roles", apitypes.Role{Name: "iam", Permissions: []string{"principal:manage", "principal:read"}}, nil)
			lead := in.tCreatePrincipal(t, "lead", "issuer", apitypes.Scope{}, true)
			var lb apitypes.Binding
			in.must(http.StatusCreated, "POST", "/api/v1/bindings", apitypes.CreateBindingRequest{Principal: "lead", Role: "iam"}, &lb)
			k3 := tECKey(t, elliptic.P256())
			r, byLead := in.tSignAs(t, lead, tCSRURI(t, k3, "web-1", uri))
			if r.status != http.StatusCreated {
				t.Fatalf("lead enrols web-1: status %d: %s", r.status, tTrim(r.body))
			}
			check("issued by the lead", byLead, k3)
			in.tCreatePrincipal(t, "root-ops", "admin", apitypes.Scope{}, false)
			in.tAddIdentity(t, "root-ops", "dns", "root-ops.svc.internal")
			r, _ = in.tSignAs(t, lead, string(tCSR(t, k3, "root-ops.svc.internal")))
			if r.status != http.StatusForbidden {
				t.Errorf("lead (not an admin) mints admin root-ops's identity: status %d, want 403: %s", r.status, tTrim(r.body))
			}
			// Only the client certificate's own principal is ever a match:
			// web-1 cannot mint root-ops's name either.
			r, _ = in.tSignAs(t, agentTok, string(tCSR(t, k2, "root-ops.svc.internal")))
			if r.status != http.StatusForbidden {
				t.Errorf("web-1 mints root-ops's identity: status %d, want 403: %s", r.status, tTrim(r.body))
			}
			// A server-TLS-only certificate for an identity name is no
			// client credential and stays allowed.
			var out apitypes.IssuedCertificate
			in.must(http.StatusCreated, "POST", "/api/v1/certificates/sign",
				apitypes.SignRequest{CSRPEM: string(tCSR(t, k3, "root-ops.svc.internal")), Profile: "web_server"}, &out)
		})
	}
}

// TestEveryRouteRefusesAnotherPrincipalsIdentity walks the whole route
// table presenting a client certificate that carries an admin's registered
// identity but was issued to another requester (a scoped issuer, before
// the name was registered): every route answers 401, and nothing changes.
func TestEveryRouteRefusesAnotherPrincipalsIdentity(t *testing.T) {
	t.Parallel()
	// Every route refused from one address in a second: lift the
	// per-source limit (TestUnauthenticatedFloodIsBounded tests it) so
	// each refusal is the 401 under test, not a 429.
	cfg := tConfig(t, "")
	cfg.Audit.UnauthenticatedBurst = 1_000_000
	tInit(t, cfg, clock.Real{})
	in := tStart(t, cfg, clock.Real{})
	ctx := context.Background()
	const uri = "spiffe://example.internal/ops-admin"
	ci := in.tCreatePrincipal(t, "ci", "issuer", apitypes.Scope{Profiles: []string{"internal_service"}}, true)
	key := tECKey(t, elliptic.P256())
	r, spoof := in.tSignAs(t, ci, tCSRURI(t, key, "ci", uri))
	if r.status != http.StatusCreated {
		t.Fatalf("sign %s before it is an identity: status %d: %s", uri, r.status, tTrim(r.body))
	}
	in.tCreatePrincipal(t, "ops-admin", "admin", apitypes.Scope{}, false)
	in.tAddIdentity(t, "ops-admin", "uri", uri)
	c := in.tWithClientCert(t, []byte(spoof.CertificatePEM+spoof.ChainPEM), key)

	serverSerial, err := in.app.store.GetSetting(ctx, settingServerTLS)
	if err != nil {
		t.Fatal(err)
	}
	snapshot := func() map[string]string {
		out := map[string]string{}
		for _, p := range []string{"/api/v1/certificates?limit=1000", "/api/v1/cas", "/api/v1/profiles", "/api/v1/principals",
			"/api/v1/bindings", "/api/v1/roles", "/api/v1/principals/ops-admin/tokens", "/api/v1/acme/provisioners", "/api/v1/requests", "/api/v1/rotations"} {
			r := in.call("GET", p, nil)
			if r.status != http.StatusOK {
				t.Fatalf("GET %s: status %d: %s", p, r.status, tTrim(r.body))
			}
			out[p] = string(r.body)
		}
		return out
	}
	var lastSeq int64
	if err := in.app.store.EachAuditEvent(ctx, 0, func(e *audit.Event) error { lastSeq = e.Seq; return nil }); err != nil {
		t.Fatal(err)
	}
	before := snapshot()

	values := map[string]string{"ca": "issuing", "serial": string(serverSerial), "name": "ops-admin", "id": "0123456789abcdef", "kind": "issued"}
	routes := tAPIRoutes(t, in.app)
	if len(routes) < tMinRoutes {
		t.Fatalf("%d routes, want at least %d", len(routes), tMinRoutes)
	}
	for _, rt := range routes {
		path := tPath(t, rt.Pattern, values)
		var r tResp
		if rt.Method == "POST" || rt.Method == "PUT" {
			r = c.raw(rt.Method, path, "", strings.NewReader("{}"))
		} else {
			r = c.raw(rt.Method, path, "", nil)
		}
		if r.status != http.StatusUnauthorized {
			t.Errorf("%s %s with ci's certificate carrying ops-admin's identity: status %d, want 401: %s", rt.Method, rt.Pattern, r.status, tTrim(r.body))
		}
	}

	after := snapshot()
	for p, b := range before {
		if after[p] != b {
			t.Errorf("GET %s changed after the refused requests:\nbefore %s\nafter  %s", p, tTrim([]byte(b)), tTrim([]byte(after[p])))
		}
	}
	err = in.app.store.EachAuditEvent(ctx, lastSeq+1, func(e *audit.Event) error {
		if e.Principal == "ops-admin" || e.Principal == "ci" || (e.Outcome == audit.Success && e.Principal != "system" && e.Principal != "admin") {
			t.Errorf("audit event %d after the walk: %s by %s (%s): the spoofing certificate acted", e.Seq, e.Action, e.Principal, e.Outcome)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

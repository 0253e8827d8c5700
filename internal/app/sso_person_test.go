package app

import (
	"context"
	"crypto"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/oidc"
	"github.com/certwright/certwright/internal/oidc/oidctest"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/web/api"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// cliSignIn signs user in as certwright login --sso does through the
// device grant: the CLI's client gets an ID token from the provider (the
// person approving on "another device"), and the server exchanges it for
// a short-lived token, whose bearer header this returns.
func (s *tSSO) cliSignIn(t *testing.T, user string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	approved := make(chan error, 1)
	bind, err := oidc.NewBinding(s.in.httpsAddr())
	if err != nil {
		t.Fatal(err)
	}
	nonce, err := bind.Nonce()
	if err != nil {
		t.Fatal(err)
	}
	tok, err := oidc.DeviceLogin(ctx, oidc.ClientParams{Issuer: s.idp.Issuer(), ClientID: "certwright-cli"}, nonce, func(uri, _, code string) {
		go func() { approved <- oidctest.ApproveDevice(ctx, oidctest.NewBrowser(), uri, code, user, tSSOPassword) }()
	})
	if err != nil {
		t.Fatalf("device sign-in of %s: %v", user, err)
	}
	if err := <-approved; err != nil {
		t.Fatal(err)
	}
	in, err := s.in.app.sso.Exchange(ctx, api.SSOExchange{Provider: "corp", IDToken: tok.RawIDToken, Binder: bind.Binder,
		Host: s.in.httpsAddr(), Source: "127.0.0.1"})
	if err != nil {
		t.Fatalf("token exchange for %s: %v", user, err)
	}
	return "Bearer " + in.Secret
}

// tPersonCSR makes a CSR with the common name cn and the given e-mail
// addresses (and DNS names, which a person certificate must not carry).
func tPersonCSR(t *testing.T, key crypto.Signer, cn string, emails []string, dns ...string) string {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: cn}, EmailAddresses: emails, DNSNames: dns,
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// personCert asks for a person certificate with the Authorization header
// auth and returns the answer, and the certificate when one was issued.
func (in *tInstance) personCert(t *testing.T, auth string, req apitypes.PersonCertificateRequest) (tResp, apitypes.IssuedCertificate, *x509.Certificate) {
	t.Helper()
	r := in.raw("POST", "/api/v1/certificates/person", auth, strings.NewReader(tJSON(t, req)))
	var out apitypes.IssuedCertificate
	if r.status != http.StatusCreated {
		return r, out, nil
	}
	if err := json.Unmarshal(r.body, &out); err != nil {
		t.Fatal(err)
	}
	certs, err := pki.ParseCertificates([]byte(out.CertificatePEM))
	if err != nil {
		t.Fatal(err)
	}
	return r, out, certs[0]
}

// TestSSOPersonCertificate is issue 17's deliverable 5 end to end: alice
// signs in through the provider's device flow as certwright login --sso
// does, sends a CSR for alice@example.test (the key stays here: the answer
// carries no key), and gets a client certificate of 12 hours carrying
// her address and nothing else, recorded as hers and audited; with it,
// and no token, the API knows her (whoami over mTLS). She may ask for up
// to 24 hours, not more. bob, a viewer, gets his own too. Disabling alice
// in Certwright ends her certificate's access at once.
func TestSSOPersonCertificate(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			s := tNewSSO(t, be.dbURL(t))
			in := s.in
			from := tAuditHead(t, in)
			alice := s.cliSignIn(t, "alice")
			key := tECKey(t, elliptic.P256())

			r, res, leaf := in.personCert(t, alice, apitypes.PersonCertificateRequest{CSRPEM: tPersonCSR(t, key, "alice@example.test", []string{"alice@example.test"})})
			if r.status != http.StatusCreated {
				t.Fatalf("alice's person certificate: %d %s", r.status, tTrim(r.body))
			}
			if strings.Contains(string(r.body), "PRIVATE KEY") || res.PrivateKeyPEM != "" || res.PKCS12 != nil {
				t.Error("the answer carries a private key")
			}
			if !leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(key.Public()) {
				t.Error("the certificate is not for the CSR's key")
			}
			if !slices.Equal(leaf.EmailAddresses, []string{"alice@example.test"}) || len(leaf.DNSNames)+len(leaf.IPAddresses)+len(leaf.URIs) != 0 ||
				leaf.Subject.String() != "CN=alice@example.test" {
				t.Errorf("names: subject %q, e-mail %v, DNS %v, IP %v, URI %v", leaf.Subject, leaf.EmailAddresses, leaf.DNSNames, leaf.IPAddresses, leaf.URIs)
			}
			if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) || leaf.KeyUsage != x509.KeyUsageDigitalSignature || leaf.IsCA {
				t.Errorf("usages: EKU %v, KU %b, CA %v", leaf.ExtKeyUsage, leaf.KeyUsage, leaf.IsCA)
			}
			if d := leaf.NotAfter.Sub(leaf.NotBefore); d != 12*time.Hour {
				t.Errorf("validity %s, want the person profile's default 12h", d)
			}
			if res.Profile != "person" || res.Requester != "alice" {
				t.Errorf("inventory: profile %q, requester %q", res.Profile, res.Requester)
			}

			// The certificate, and no token, authenticates as alice.
			c := in.tWithClientCert(t, []byte(res.CertificatePEM+res.ChainPEM), key)
			if st, name, auth := c.tWhoAmI(t); st != http.StatusOK || name != "alice" || auth != "mtls:"+res.Serial {
				t.Errorf("whoami with alice's person certificate: %d as %q (%s)", st, name, auth)
			}

			// Up to 24 hours on request, never more.
			for _, v := range []struct {
				validity string
				want     time.Duration
			}{{"24h", 24 * time.Hour}, {"90m", 90 * time.Minute}, {"25h", 0}, {"48h", 0}} {
				r, _, leaf := in.personCert(t, alice, apitypes.PersonCertificateRequest{
					CSRPEM: tPersonCSR(t, tECKey(t, elliptic.P256()), "", []string{"alice@example.test"}), Validity: v.validity})
				switch {
				case v.want == 0 && (r.status != http.StatusBadRequest || r.apiErr(t).Rule != "max_validity_days"):
					t.Errorf("validity %s: %d %s, want 400 (max_validity_days)", v.validity, r.status, tTrim(r.body))
				case v.want != 0 && (leaf == nil || leaf.NotAfter.Sub(leaf.NotBefore) != v.want):
					t.Errorf("validity %s: %d %s", v.validity, r.status, tTrim(r.body))
				}
			}

			// bob is a viewer, without cert:issue: his sign-in is what gives him his own.
			bob := s.cliSignIn(t, "bob")
			bobKey := tECKey(t, elliptic.P256())
			r, bobRes, _ := in.personCert(t, bob, apitypes.PersonCertificateRequest{CSRPEM: tPersonCSR(t, bobKey, "bob@example.test", []string{"bob@example.test"})})
			if r.status != http.StatusCreated {
				t.Fatalf("bob's person certificate: %d %s", r.status, tTrim(r.body))
			}
			if st, name, _ := in.tWithClientCert(t, []byte(bobRes.CertificatePEM+bobRes.ChainPEM), bobKey).tWhoAmI(t); st != http.StatusOK || name != "bob" {
				t.Errorf("whoami with bob's person certificate: %d as %q", st, name)
			}

			evs := tAuditEvents(t, in, from)
			var issued int
			for _, ev := range evs {
				if ev.Action == "certificate.issue" && ev.Target == res.Serial {
					issued++
					var d map[string]any
					if err := json.Unmarshal(ev.Details, &d); err != nil || ev.Principal != "alice" || d["person"] != true || d["via"] != "oidc:corp" || d["profile"] != "person" {
						t.Errorf("issuance event: %+v %s", ev, ev.Details)
					}
				}
			}
			if issued != 1 {
				t.Errorf("%d issuance events for %s, want 1", issued, res.Serial)
			}
			signIns := tFindEvents(t, evs, "sso.sign_in", 2)
			if !strings.Contains(string(signIns[0].Details), `"email_identity":"alice@example.test added"`) {
				t.Errorf("alice's sign-in: %s", signIns[0].Details)
			}

			// Disabled in Certwright: the certificate no longer gets in.
			in.must(http.StatusOK, "POST", "/api/v1/principals/alice/disable", nil, nil)
			if st, _, _ := c.tWhoAmI(t); st != http.StatusUnauthorized {
				t.Errorf("whoami with disabled alice's certificate: %d, want 401", st)
			}
		})
	}
}

// TestSSOPersonCertificateRefusals: a person certificate carries only the
// caller's own verified address (bob's, a DNS name, a foreign common name
// are refused with 400 naming them), and only the token of a sign-in
// through the provider asks for one: not alice's long-lived token, not
// her person certificate itself. The API takes a CSR and nothing else.
// And the identity rule holds for e-mail addresses: a certificate with
// alice's address that another principal got before she signed in does
// not authenticate as her, and once the address is her identity nobody
// else gets it issued.
func TestSSOPersonCertificateRefusals(t *testing.T) {
	t.Parallel()
	s := tNewSSO(t, "")
	in := s.in
	ci := in.tCreatePrincipal(t, "ci", "issuer", apitypes.Scope{Profiles: []string{"client_auth"}}, true)
	ciKey := tECKey(t, elliptic.P256())
	signClient := func() (tResp, apitypes.IssuedCertificate) {
		t.Helper()
		r := in.raw("POST", "/api/v1/certificates/sign", ci, strings.NewReader(tJSON(t, apitypes.SignRequest{
			CSRPEM: tPersonCSR(t, ciKey, "ci", []string{"alice@example.test"}), Profile: "client_auth"})))
		var out apitypes.IssuedCertificate
		if r.status == http.StatusCreated {
			if err := json.Unmarshal(r.body, &out); err != nil {
				t.Fatal(err)
			}
		}
		return r, out
	}
	r, early := signClient()
	if r.status != http.StatusCreated {
		t.Fatalf("ci signs a client certificate with alice's address before it is anyone's: %d %s", r.status, tTrim(r.body))
	}

	alice := s.cliSignIn(t, "alice")
	key := tECKey(t, elliptic.P256())
	before := in.certCount()
	for _, tc := range []struct {
		name       string
		csr        string
		rule, want string
	}{
		{"bob's address", tPersonCSR(t, key, "", []string{"bob@example.test"}), "names.email", "bob@example.test is not an e-mail address of requester alice"},
		{"her address and bob's", tPersonCSR(t, key, "", []string{"alice@example.test", "bob@example.test"}), "names.email", "bob@example.test"},
		{"a DNS name too", tPersonCSR(t, key, "", []string{"alice@example.test"}, "alice.example.test"), "names.dns", "alice.example.test"},
		{"a common name of her choice", tPersonCSR(t, key, "Alice, Head of Security", []string{"alice@example.test"}), "subject_fields", "Alice, Head of Security"},
		// "ſ" (long s) folds to "s" under Unicode case folding, not in
		// ASCII: the common name would not be her address.
		{"a look-alike common name", tPersonCSR(t, key, "alice@example.te\u017ft", []string{"alice@example.test"}), "subject_fields", "is not one of the certificate's e-mail addresses"},
		{"no address", tPersonCSR(t, key, "", nil), "names.email", "no e-mail address"},
	} {
		r, _, _ := in.personCert(t, alice, apitypes.PersonCertificateRequest{CSRPEM: tc.csr})
		if r.status != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", tc.name, r.status, tTrim(r.body))
			continue
		}
		if e := r.apiErr(t); e.Rule != tc.rule || !strings.Contains(e.Detail, tc.want) {
			t.Errorf("%s: rule %q, detail %q; want %q naming %q", tc.name, e.Rule, e.Detail, tc.rule, tc.want)
		}
	}
	// The key goes nowhere: a body with one is refused before anything is read.
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	body := `{"csr_pem":` + tJSON(t, tPersonCSR(t, key, "", []string{"alice@example.test"})) + `,"private_key_pem":` +
		tJSON(t, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))) + `}`
	if r := in.raw("POST", "/api/v1/certificates/person", alice, strings.NewReader(body)); r.status != http.StatusBadRequest || !strings.Contains(r.apiErr(t).Detail, "private_key_pem") {
		t.Errorf("a request carrying a private key: %d %s, want 400", r.status, tTrim(r.body))
	}

	// Only the token of an SSO sign-in: not a long-lived token of alice's.
	var long apitypes.NewToken
	in.must(http.StatusCreated, "POST", "/api/v1/principals/alice/tokens", apitypes.CreateTokenRequest{ExpiresIn: "30d"}, &long)
	for _, auth := range []struct{ name, header string }{{"alice's long-lived token", "Bearer " + long.Token}, {"the admin's token", in.bearer()}} {
		r, _, _ := in.personCert(t, auth.header, apitypes.PersonCertificateRequest{CSRPEM: tPersonCSR(t, key, "", []string{"alice@example.test"})})
		if r.status != http.StatusForbidden || r.apiErr(t).Rule != apitypes.RuleSSOSignIn {
			t.Errorf("%s: %d %s, want 403 (%s)", auth.name, r.status, tTrim(r.body), apitypes.RuleSSOSignIn)
		}
	}
	if n := in.certCount(); n != before {
		t.Errorf("%d certificates after the refusals, want %d", n, before)
	}
	// Nor the person certificate itself: it cannot extend itself.
	r, res, _ := in.personCert(t, alice, apitypes.PersonCertificateRequest{CSRPEM: tPersonCSR(t, key, "", []string{"alice@example.test"})})
	if r.status != http.StatusCreated {
		t.Fatalf("alice's person certificate: %d %s", r.status, tTrim(r.body))
	}
	mtls := in.tWithClientCert(t, []byte(res.CertificatePEM+res.ChainPEM), key)
	r, _, _ = mtls.personCert(t, "", apitypes.PersonCertificateRequest{CSRPEM: tPersonCSR(t, tECKey(t, elliptic.P256()), "", []string{"alice@example.test"})})
	if r.status != http.StatusForbidden || r.apiErr(t).Rule != apitypes.RuleSSOSignIn {
		t.Errorf("with the person certificate: %d %s, want 403 (%s)", r.status, tTrim(r.body), apitypes.RuleSSOSignIn)
	}

	// ci's certificate with alice's address, issued before she signed in:
	// no credential of hers. Now the address is her identity: refused.
	if st, name, _ := in.tWithClientCert(t, []byte(early.CertificatePEM+early.ChainPEM), ciKey).tWhoAmI(t); st != http.StatusUnauthorized {
		t.Errorf("ci's certificate carrying alice@example.test: whoami %d as %q, want 401", st, name)
	}
	if r, _ := signClient(); r.status != http.StatusForbidden || !strings.Contains(r.apiErr(t).Detail, "email alice@example.test is the mTLS identity of another principal") {
		t.Errorf("ci signing alice's address now: %d %s, want 403 (identity rule)", r.status, tTrim(r.body))
	}

	evs := tAuditEvents(t, in, 0)
	var denied int
	for _, ev := range evs {
		if ev.Action == "certificate.issue" && ev.Outcome == audit.Denied && ev.Target == "/api/v1/certificates/person" {
			denied++
		}
	}
	if denied < 8 {
		t.Errorf("%d refused person-certificate requests audited, want at least 8", denied)
	}
}

// TestPersonCertificatesRaiseNoExpiryAlerts: a person certificate lapses
// by design within a day: the expiry check raises no alert for it, while
// a certificate of another profile expiring as soon still gets its
// expiring and expired alerts.
func TestPersonCertificatesRaiseNoExpiryAlerts(t *testing.T) {
	t.Parallel()
	cfg := tConfig(t, "")
	clk := clock.NewFake(time.Now().UTC().Truncate(time.Second))
	tInit(t, cfg, clk)
	in := tStart(t, cfg, clk)
	tRunJob(t, in, "expiry-check")
	var person apitypes.IssuedCertificate
	in.must(http.StatusCreated, "POST", "/api/v1/certificates/sign", apitypes.SignRequest{
		CSRPEM: tPersonCSR(t, tECKey(t, elliptic.P256()), "carol@example.test", []string{"carol@example.test"}), Profile: "person",
	}, &person)
	other := tSignDays(t, in, "internal_service", 1, "short.internal.test")
	for range 3 {
		tRunJob(t, in, "expiry-check")
		clk.Advance(12 * time.Hour)
	}
	tRunJob(t, in, "expiry-check")
	var list apitypes.AlertList
	in.must(http.StatusOK, "GET", "/api/v1/alerts", nil, &list)
	kinds := map[string][]string{}
	for _, a := range list.Alerts {
		kinds[a.Serial] = append(kinds[a.Serial], a.Kind)
	}
	if len(kinds[person.Serial]) != 0 {
		t.Errorf("alerts for the person certificate: %v", kinds[person.Serial])
	}
	if !slices.Contains(kinds[other.Serial], "expiring") || !slices.Contains(kinds[other.Serial], "expired") {
		t.Errorf("alerts for the internal_service certificate: %v, want expiring and expired", kinds[other.Serial])
	}
}

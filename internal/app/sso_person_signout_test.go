package app

import (
	"crypto"
	"crypto/elliptic"
	"encoding/json"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/crypto/ocsp"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// tSignedInCert is a person certificate and what it was minted with.
type tSignedInCert struct {
	auth    string // the sign-in's Authorization header
	tokenID string
	res     apitypes.IssuedCertificate
	key     crypto.Signer
	client  *tInstance // the instance, presenting the certificate
}

// signedInCert signs user in through the CLI's path and gets a person
// certificate for address with that sign-in's token; the certificate
// authenticates as user and OCSP says good.
func (s *tSSO) signedInCert(t *testing.T, user, address string) *tSignedInCert {
	t.Helper()
	in := s.in
	auth := s.cliSignIn(t, user)
	id := tTokenID(t, auth)
	key := tECKey(t, elliptic.P256())
	r, res, _ := in.personCert(t, auth, apitypes.PersonCertificateRequest{CSRPEM: tPersonCSR(t, key, address, []string{address})})
	if r.status != http.StatusCreated {
		t.Fatalf("%s's person certificate: %d %s", user, r.status, tTrim(r.body))
	}
	c := &tSignedInCert{auth: auth, tokenID: id, res: res, key: key, client: in.tWithClientCert(t, []byte(res.CertificatePEM+res.ChainPEM), key)}
	if st, name, _ := c.client.tWhoAmI(t); st != http.StatusOK || name != user {
		t.Fatalf("whoami with %s's new person certificate: %d as %q", user, st, name)
	}
	if got := c.ocsp(t, in); got.Status != ocsp.Good {
		t.Fatalf("OCSP of %s's new person certificate: status %d, want good", user, got.Status)
	}
	return c
}

func (c *tSignedInCert) ocsp(t *testing.T, in *tInstance) *ocsp.Response {
	t.Helper()
	return tOCSPResponse(t, in, tPEMCert(t, c.res.CertificatePEM), tPEMCert(t, c.res.ChainPEM))
}

// ended checks that the certificate no longer authenticates and that
// OCSP (and openssl ocsp, when installed) says revoked, cessation of
// operation, audited with the token's ID.
func (c *tSignedInCert) ended(t *testing.T, in *tInstance, why string, evs []audit.Event) {
	t.Helper()
	if st, name, _ := c.client.tWhoAmI(t); st != http.StatusUnauthorized {
		t.Errorf("%s: whoami with the person certificate %s: %d as %q, want 401", why, c.res.Serial, st, name)
	}
	got := c.ocsp(t, in)
	if got.Status != ocsp.Revoked || got.RevocationReason != ocsp.CessationOfOperation {
		t.Errorf("%s: OCSP of %s: status %d reason %d, want revoked (cessationOfOperation)", why, c.res.Serial, got.Status, got.RevocationReason)
	}
	if _, err := exec.LookPath("openssl"); err == nil {
		tOpenSSLOCSPSays(t, in, c.res.CertificatePEM, c.res.ChainPEM, "revoked")
	}
	n := 0
	for _, ev := range evs {
		if ev.Action != "certificate.revoke" || ev.Target != c.res.Serial {
			continue
		}
		n++
		var d map[string]any
		if err := json.Unmarshal(ev.Details, &d); err != nil || d["token_id"] != c.tokenID || d["reason"] != pki.ReasonCessationOfOperation.String() {
			t.Errorf("%s: revocation event of %s: %+v %s", why, c.res.Serial, ev, ev.Details)
		}
	}
	if n != 1 {
		t.Errorf("%s: %d certificate.revoke events for %s, want 1", why, n, c.res.Serial)
	}
}

// TestSSOPersonCertificateEndsWithSignIn is the review finding "the
// person certificate outlives the sign-in that minted it": revoking the
// token of a sign-in — by an administrator, by the person signing out,
// or by disabling the person — revokes the unexpired person certificates
// that token asked for, so that neither the API nor OCSP takes them any
// longer. A certificate of another, still valid sign-in of the same
// person is untouched.
func TestSSOPersonCertificateEndsWithSignIn(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			s := tNewSSO(t, be.dbURL(t))
			in := s.in
			from := tAuditHead(t, in)

			// An administrator revokes the token of one of alice's sign-ins.
			first := s.signedInCert(t, "alice", "alice@example.test")
			second := s.signedInCert(t, "alice", "alice@example.test")
			in.must(http.StatusOK, "POST", "/api/v1/tokens/"+first.tokenID+"/revoke", nil, nil)
			evs := tAuditEvents(t, in, from)
			first.ended(t, in, "token revoked by an administrator", evs)
			if st, name, _ := second.client.tWhoAmI(t); st != http.StatusOK || name != "alice" {
				t.Errorf("whoami with the certificate of alice's other sign-in: %d as %q, want 200 alice", st, name)
			}
			if got := second.ocsp(t, in); got.Status != ocsp.Good {
				t.Errorf("OCSP of the certificate of alice's other sign-in: status %d, want good", got.Status)
			}

			// alice signs out: her token and its certificate end.
			if r := in.raw("POST", "/api/v1/sign-out", second.auth, nil); r.status != http.StatusOK {
				t.Fatalf("alice signs out: %d %s", r.status, tTrim(r.body))
			}
			if r := in.raw("GET", "/api/v1/whoami", second.auth, nil); r.status != http.StatusUnauthorized {
				t.Errorf("whoami with the token alice signed out of: %d, want 401", r.status)
			}
			evs = tAuditEvents(t, in, from)
			second.ended(t, in, "alice signed out", evs)
			var self int
			for _, ev := range evs {
				if ev.Action == "token.revoke" && ev.Principal == "alice" && strings.Contains(string(ev.Details), `"token_id":"`+second.tokenID+`"`) {
					self++
				}
			}
			if self != 1 {
				t.Errorf("%d token.revoke events by alice for %s, want 1", self, second.tokenID)
			}

			// bob is disabled: his person certificates are revoked with his tokens.
			bob := s.signedInCert(t, "bob", "bob@example.test")
			in.must(http.StatusOK, "POST", "/api/v1/principals/bob/disable", nil, nil)
			bob.ended(t, in, "bob disabled", tAuditEvents(t, in, from))
		})
	}
}

// TestSSOSignOutWithoutRoles: signing out needs only authentication. A
// person whose groups were all removed at the provider has no role after
// the next sign-in, and can still sign out of that one and of an older
// one.
func TestSSOSignOutWithoutRoles(t *testing.T) {
	t.Parallel()
	s := tNewSSO(t, "")
	in := s.in
	older := s.cliSignIn(t, "alice")
	if err := s.idp.SetGroups("alice", nil); err != nil {
		t.Fatal(err)
	}
	newer := s.cliSignIn(t, "alice")
	for name, auth := range map[string]string{"the older sign-in": older, "the sign-in without roles": newer} {
		if r := in.raw("POST", "/api/v1/sign-out", auth, nil); r.status != http.StatusOK {
			t.Errorf("alice, with no role left, signs out of %s: %d %s, want 200", name, r.status, tTrim(r.body))
			continue
		}
		if r := in.raw("GET", "/api/v1/whoami", auth, nil); r.status != http.StatusUnauthorized {
			t.Errorf("whoami with %s after signing out: %d, want 401", name, r.status)
		}
	}
}

// tTokenID is the ID of the token in the Authorization header auth.
func tTokenID(t *testing.T, auth string) string {
	t.Helper()
	id, _, ok := strings.Cut(strings.TrimPrefix(auth, "Bearer cwt_"), "_")
	if !ok || len(id) != 16 {
		t.Fatalf("sign-in token %q has no ID", auth)
	}
	return id
}

// tSignClientCert signs a client_auth certificate for address as the
// caller in (its client certificate, or auth when not empty).
func (in *tInstance) tSignClientCert(t *testing.T, auth, tokenID, address string) *tSignedInCert {
	t.Helper()
	key := tECKey(t, elliptic.P256())
	r := in.raw("POST", "/api/v1/certificates/sign", auth, strings.NewReader(tJSON(t, apitypes.SignRequest{
		CSRPEM: tPersonCSR(t, key, address, []string{address}), Profile: "client_auth"})))
	if r.status != http.StatusCreated {
		t.Fatalf("a client_auth certificate for %s: %d %s", address, r.status, tTrim(r.body))
	}
	var res apitypes.IssuedCertificate
	if err := json.Unmarshal(r.body, &res); err != nil {
		t.Fatal(err)
	}
	c := &tSignedInCert{auth: auth, tokenID: tokenID, res: res, key: key, client: in.tWithClientCert(t, []byte(res.CertificatePEM+res.ChainPEM), key)}
	if st, _, _ := c.client.tWhoAmI(t); st != http.StatusOK {
		t.Fatalf("whoami with the new client certificate for %s: %d", address, st)
	}
	return c
}

// TestSSOSignInCredentialsEndWithIt: every client credential a sign-in
// mints ends with it, not only person certificates. A signed-in person
// who may issue gets an ordinary client certificate with their own
// identity (POST /api/v1/certificates/sign), and with that certificate
// another: signing out revokes both. A certificate of another sign-in is
// untouched.
func TestSSOSignInCredentialsEndWithIt(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			s := tNewSSO(t, be.dbURL(t))
			in := s.in
			from := tAuditHead(t, in)
			signIn := s.cliSignIn(t, "alice")
			id := tTokenID(t, signIn)
			direct := in.tSignClientCert(t, signIn, id, "alice@example.test")
			// The certificate of the sign-in mints one more.
			derived := direct.client.tSignClientCert(t, "", id, "alice@example.test")
			other := s.cliSignIn(t, "alice")
			kept := in.tSignClientCert(t, other, tTokenID(t, other), "alice@example.test")

			if r := in.raw("POST", "/api/v1/sign-out", signIn, nil); r.status != http.StatusOK {
				t.Fatalf("alice signs out: %d %s", r.status, tTrim(r.body))
			}
			evs := tAuditEvents(t, in, from)
			direct.ended(t, in, "minted with the sign-in's token", evs)
			derived.ended(t, in, "minted with a certificate of the sign-in", evs)
			if st, name, _ := kept.client.tWhoAmI(t); st != http.StatusOK || name != "alice" {
				t.Errorf("whoami with the certificate of alice's other sign-in: %d as %q, want 200 alice", st, name)
			}
		})
	}
}

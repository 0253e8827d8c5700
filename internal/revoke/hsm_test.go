//go:build cgo

package revoke_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	xocsp "golang.org/x/crypto/ocsp"

	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/keys"
	"github.com/certwright/certwright/internal/keys/pkcs11"
	"github.com/certwright/certwright/internal/keys/pkcs11/softhsmtest"
	"github.com/certwright/certwright/internal/keys/software"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/revoke"
)

// newHSMEnv is newEnv with the root's and the issuing CA's keys in a
// fresh SoftHSM2 token (skipped without SoftHSM2), the services holding a
// keys.Router over the software provider and the token, as serve does.
func newHSMEnv(t *testing.T) (*env, *softhsmtest.Token) {
	t.Helper()
	tk := softhsmtest.New(t, "revoke")
	// One quick reconnection: a call while the token is away fails fast.
	p, err := pkcs11.Open(context.Background(), pkcs11.Config{
		Module: tk.Module, TokenLabel: tk.Label, PINFile: tk.PINFile(t), Retries: 1, RetryBackoff: 10 * time.Millisecond,
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("pkcs11.Open: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	route := func(t *testing.T, soft *software.Provider) keys.Provider {
		r, err := keys.NewRouter(software.Name, map[string]keys.Provider{software.Name: soft, pkcs11.Name: pkcs11.NewKeyProvider(p)})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	// The service's log goes to the test's: what it says while the token
	// is away is part of what a failure needs.
	e := newEnvKeys(t, envKeys{route: route, caProvider: pkcs11.Name}, func(c *revoke.Config) {
		c.Log = slog.New(slog.NewTextHandler(t.Output(), nil))
	})
	for _, c := range []*ca.CA{e.root, e.inter} {
		if c.Key.Provider != pkcs11.Name {
			t.Fatalf("CA %s: key provider %q, want pkcs11", c.Name, c.Key.Provider)
		}
	}
	return e, tk
}

// tokenPrivateKeys lists the labels of the token's private keys with
// their Access words, as pkcs11-tool --list-objects prints them.
func tokenPrivateKeys(t *testing.T, tk *softhsmtest.Token) map[string]map[string]bool {
	t.Helper()
	out := map[string]map[string]bool{}
	for k, access := range tk.Objects(t) {
		if label, ok := strings.CutPrefix(k, "Private Key Object/"); ok {
			out[label] = access
		}
	}
	return out
}

// responderLabel is the token label of an OCSP responder key of CA caID.
func responderLabel(caID string, ref keys.Ref) string {
	return string(keys.OCSPPurpose(caID)) + "/" + ref.ID
}

// checkTokenResponder checks that caID's stored responder is cert and
// that its key is in the token: a private key pkcs11-tool shows
// sensitive and never extractable, labelled for caID's responder, whose
// public key object is cert's public key. It returns the stored key.
func checkTokenResponder(t *testing.T, e *env, tk *softhsmtest.Token, caID string, cert *x509.Certificate) keys.Ref {
	t.Helper()
	stored, err := e.db.GetOCSPResponder(context.Background(), caID)
	if err != nil {
		t.Fatal(err)
	}
	if cert != nil && !bytes.Equal(stored.CertDER, cert.Raw) {
		t.Fatalf("CA %s: the stored responder is not the one that signed the response", caID)
	}
	if stored.Key.Provider != pkcs11.Name {
		t.Fatalf("CA %s: OCSP responder key provider %q, want pkcs11 (the CA's key is in the token)", caID, stored.Key.Provider)
	}
	label := responderLabel(caID, stored.Key)
	access, ok := tokenPrivateKeys(t, tk)[label]
	if !ok || !softhsmtest.Safe(access) {
		t.Fatalf("CA %s: token key %q: found %v, Access %v; want sensitive, never extractable", caID, label, ok, access)
	}
	out := filepath.Join(t.TempDir(), "pub.der")
	tk.Tool(t, "--read-object", "--type", "pubkey", "--id", stored.Key.ID, "--output-file", out)
	der, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if c := mustParse(t, stored.CertDER); !bytes.Equal(der, c.RawSubjectPublicKeyInfo) {
		t.Fatalf("CA %s: the token's public key with CKA_ID %s is not the responder certificate's", caID, stored.Key.ID)
	}
	return stored.Key
}

// TestHSMResponderKeys: with a CA's key in a PKCS#11 token, its delegated
// OCSP responder's key is made there too, so every OCSP answer is signed
// in the token; a rotation makes a new token key and destroys the old one
// once the grace for other replicas has passed; a CA with a software key
// keeps a software responder key; and while the token is away the
// pre-signed responses are still served, a retired key's destruction is
// retried, and everything works again once it is back.
func TestHSMResponderKeys(t *testing.T) {
	ctx := context.Background()
	e, tk := newHSMEnv(t)
	team, err := e.issuer.CreateIntermediate(ctx, admin, "root", &ca.Spec{
		Name: "team", Subject: pkix.Name{Organization: []string{"Certwright Test"}, CommonName: "Certwright Test Team CA"},
		KeyAlg: pki.ECDSAP256, Validity: 5 * 365 * day, MaxPathLen: 0, KeyProvider: software.Name,
	})
	if err != nil {
		t.Fatalf("CreateIntermediate in software: %v", err)
	}
	teamCert := mustParse(t, team.CertDER)
	leaves := e.leaves(t, 3, leafOpts{})

	r := wantStatus(t, e.svc, e.inter.ID, leaves[0], e.interCert, xocsp.Good)
	if r.Certificate == nil {
		t.Fatal("response carries no responder certificate")
	}
	checkResponder(t, r.Certificate, e.interCert, e.clk.Now(), revoke.DefaultResponderLifetime)
	first := checkTokenResponder(t, e, tk, e.inter.ID, r.Certificate)

	// Maintenance gives every CA its responder: the root's key in the
	// token, the software CA's a software key (an answer from it
	// verifies: "unknown" for a serial it did not issue).
	e.svc.MaintainOCSP(ctx)
	rootFirst := checkTokenResponder(t, e, tk, e.root.ID, nil)
	if r := wantStatus(t, e.svc, team.ID, leaves[0], teamCert, xocsp.Unknown); r.Certificate == nil || r.Certificate.CheckSignatureFrom(teamCert) != nil {
		t.Fatal("the software CA's answer is not from its delegated responder")
	}
	teamResp, err := e.db.GetOCSPResponder(ctx, team.ID)
	if err != nil || teamResp.Key.Provider != software.Name {
		t.Fatalf("software CA's responder %+v, %v; want a software key", teamResp, err)
	}
	wantTokenKeys := func(labels ...string) {
		t.Helper()
		got := tokenPrivateKeys(t, tk)
		want := []string{string(keys.CAPurpose(e.root.ID)), string(keys.CAPurpose(e.inter.ID))}
		want = append(want, labels...)
		if len(got) != len(want) {
			t.Errorf("token private keys %v, want %v", got, want)
		}
		for _, l := range want {
			if access, ok := got[l]; !ok || !softhsmtest.Safe(access) {
				t.Errorf("token key %q: found %v, Access %v", l, ok, access)
			}
		}
	}
	wantTokenKeys(responderLabel(e.inter.ID, first), responderLabel(e.root.ID, rootFirst))

	// A restart loads the responder key from the token by its CKA_ID.
	restarted := e.restart(t)
	if r := wantStatus(t, restarted, e.inter.ID, leaves[1], e.interCert, xocsp.Good); !bytes.Equal(r.Certificate.Raw, mustParse(t, mustResponder(t, e, e.inter.ID).CertDER).Raw) {
		t.Error("after a restart, the answer is not from the stored responder")
	}

	// Rotation: a new key in the token; the old one stays while other
	// replicas may still sign with it, and is destroyed after the grace.
	e.clk.Set(r.Certificate.NotBefore.Add(revoke.DefaultResponderLifetime*2/3 + time.Minute))
	e.svc.MaintainOCSP(ctx)
	r = wantStatus(t, e.svc, e.inter.ID, leaves[2], e.interCert, xocsp.Good)
	second := checkTokenResponder(t, e, tk, e.inter.ID, r.Certificate)
	rootSecond := checkTokenResponder(t, e, tk, e.root.ID, nil)
	if second.ID == first.ID || rootSecond.ID == rootFirst.ID {
		t.Fatal("the rotated responders kept their token keys")
	}
	wantTokenKeys(responderLabel(e.inter.ID, first), responderLabel(e.root.ID, rootFirst),
		responderLabel(e.inter.ID, second), responderLabel(e.root.ID, rootSecond))
	teamSecond := mustResponder(t, e, team.ID).Key
	// The token keys wait out the grace; the software key's record went at
	// once, its key with it.
	wantRetired(t, e, first, rootFirst)
	if teamSecond.ID == teamResp.Key.ID || teamSecond.Provider != software.Name {
		t.Fatalf("the software CA's rotated responder key %+v, was %+v", teamSecond, teamResp.Key)
	}

	// The grace passes while the token is away: the pre-signed responses
	// are still served, an answer that needs a signature is tryLater,
	// the retired token keys' destruction fails and is kept for later.
	late := e.leaf(t, leafOpts{})
	e.clk.Advance(revoke.RetiredKeyGrace + time.Minute)
	away := filepath.Join(t.TempDir(), "away")
	dir := tk.TokenDir(t)
	if err := os.Rename(dir, away); err != nil {
		t.Fatal(err)
	}
	wantError(t, e.svc.Respond(ctx, e.inter.ID, ocspReq(t, late, e.interCert, 0)), xocsp.TryLater)
	e.svc.MaintainOCSP(ctx)
	for _, l := range leaves {
		wantStatus(t, e.svc, e.inter.ID, l, e.interCert, xocsp.Good)
	}
	wantRetired(t, e, first, rootFirst)
	if n := auditCount(t, e, "key.destroy", ""); n != 0 {
		t.Errorf("%d key.destroy events while the token was away", n)
	}
	// Past half their lifetime the cached responses are due to be signed
	// again; while that fails they are served until their nextUpdate.
	e.clk.Advance(revoke.DefaultOCSPLifetime / 2)
	for _, l := range leaves {
		if r := wantStatus(t, e.svc, e.inter.ID, l, e.interCert, xocsp.Good); !e.clk.Now().Before(r.NextUpdate) ||
			!e.clk.Now().After(r.ThisUpdate.Add(revoke.DefaultOCSPLifetime/2)) {
			t.Errorf("while the token is away, response %s..%s served at %s", r.ThisUpdate, r.NextUpdate, e.clk.Now())
		}
	}

	// The token is back: answers are signed again, and the next
	// maintenance destroys the retired keys, leaving the current ones.
	if err := os.Rename(away, dir); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, e.svc, e.inter.ID, late, e.interCert, xocsp.Good)
	e.svc.MaintainOCSP(ctx)
	wantRetired(t, e)
	wantTokenKeys(responderLabel(e.inter.ID, second), responderLabel(e.root.ID, rootSecond))
	for _, id := range []string{e.inter.ID, e.root.ID} {
		if n := auditCount(t, e, "key.destroy", string(keys.OCSPPurpose(id))); n != 1 {
			t.Errorf("%d key.destroy events for CA %s's retired responder key, want 1", n, id)
		}
	}
	for _, l := range append(leaves, late) {
		r := wantStatus(t, e.restart(t), e.inter.ID, l, e.interCert, xocsp.Good)
		if !bytes.Equal(r.Certificate.Raw, mustResponder(t, e, e.inter.ID).CertDER) {
			t.Error("after the rotation, an answer is not from the new responder")
		}
	}
}

// wantRetired checks the retired keys waiting to be destroyed.
func wantRetired(t *testing.T, e *env, want ...keys.Ref) {
	t.Helper()
	got, err := e.db.RetiredKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, k := range got {
		ids[k.Key.Provider+"/"+k.Key.ID] = true
	}
	for _, w := range want {
		if !ids[w.Provider+"/"+w.ID] {
			t.Errorf("retired key %s/%s not listed", w.Provider, w.ID)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d retired keys listed, want %d: %+v", len(got), len(want), got)
	}
}

func mustResponder(t *testing.T, e *env, caID string) *revoke.Responder {
	t.Helper()
	r, err := e.db.GetOCSPResponder(context.Background(), caID)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

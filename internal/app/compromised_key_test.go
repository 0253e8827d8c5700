package app

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// tWantCompromised fails t unless r is the compromised-key refusal naming
// the report (want, e.g. "rotation ID").
func tWantCompromised(t *testing.T, what string, r tResp, want string) {
	t.Helper()
	var e struct{ Error, Detail, Rule string }
	_ = json.Unmarshal(r.body, &e)
	if r.status != http.StatusBadRequest || e.Rule != "compromised_key" ||
		!strings.Contains(e.Detail, "reported compromised on ") || !strings.Contains(e.Detail, want) ||
		!strings.Contains(e.Detail, "generate a new key") {
		t.Errorf("%s: %d %s, want 400 compromised_key naming %q", what, r.status, tTrim(r.body), want)
	}
}

// tValidWithKey lists the unexpired, unrevoked certificates of a key: what
// revoke-bulk would revoke (a dry run).
func tValidWithKey(t *testing.T, in *tInstance, spki string) []string {
	t.Helper()
	r := in.call("POST", "/api/v1/revocations", apitypes.BulkRevokeRequest{
		Selector: apitypes.Selector{SPKISHA256: spki}, Reason: "key_compromise", DryRun: true})
	switch r.status {
	case http.StatusNotFound:
		return nil
	case http.StatusOK:
		var res apitypes.BulkRevokeResult
		if err := json.Unmarshal(r.body, &res); err != nil {
			t.Fatal(err)
		}
		return res.Serials
	}
	t.Fatalf("revoke-bulk dry run: %d %s", r.status, tTrim(r.body))
	return nil
}

// TestRotationByKeyNeverRecertifiesTheKey reproduces the review finding:
// after `rotate --key-spki H` started, `cert renew --reuse-key` certified
// the leaked key again (201), the rotation counted that as the replacement,
// and the new certificate answered OCSP good after the rotation was done.
// Now the key is on the compromised-key list from the moment the rotation
// starts: the reuse-key renewal, the automatic renewal of the auto-renew
// CSR certificate and a cert sign with a CSR for the key are refused with
// the rule and the rotation, audited; a new key is fine; after the grace
// period no certificate of the key is valid and OCSP says revoked.
func TestRotationByKeyNeverRecertifiesTheKey(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			in, _, clk := tStartOnFakeClock(t, be.dbURL(t))
			in.tUseMachineAdmin(t)
			prof := tReuseProfile(t, in)
			leaked := tECKey(t, elliptic.P256())
			var first, auto apitypes.IssuedCertificate
			in.must(http.StatusCreated, "POST", "/api/v1/certificates/sign", apitypes.SignRequest{
				CSRPEM: string(tCSR(t, leaked, "leak.internal.test")), Profile: prof.Name, ValidityDays: 30,
			}, &first)
			in.must(http.StatusCreated, "POST", "/api/v1/certificates/sign", apitypes.SignRequest{
				CSRPEM: string(tCSR(t, leaked, "leak2.internal.test")), Profile: prof.Name, ValidityDays: 30, AutoRenew: true,
			}, &auto)
			var rot apitypes.Rotation
			in.must(http.StatusCreated, "POST", "/api/v1/rotations", apitypes.RotationRequest{SPKISHA256: first.SPKISHA256, Grace: "1h"}, &rot)
			from := tAuditHead(t, in)

			// The holder renews with the same key during the grace period.
			r := in.call("POST", "/api/v1/certificates/"+first.Serial+"/renew", apitypes.RenewRequest{ReuseKey: true})
			tWantCompromised(t, "renew --reuse-key during the rotation", r, "rotation "+rot.ID)
			// cert sign with a CSR for the key.
			r = in.call("POST", "/api/v1/certificates/sign", apitypes.SignRequest{
				CSRPEM: string(tCSR(t, leaked, "leak.internal.test")), Profile: prof.Name, ValidityDays: 30, Replaces: first.Serial,
			})
			tWantCompromised(t, "cert sign with a CSR for the key", r, "rotation "+rot.ID)
			// The renewal job (the rotation asked for the auto-renew
			// certificate's renewal now) reuses the key: refused, recorded.
			tRunJob(t, in, "renewal")
			if got := tGetCert(t, in, auto.Serial); got.RenewedBy != "" || !strings.Contains(got.RenewError, "reported compromised") {
				t.Errorf("automatic renewal of %s with the leaked key: renewed_by %q, renew_error %q", auto.Serial, got.RenewedBy, got.RenewError)
			}
			refused := 0
			for _, ev := range tAuditEvents(t, in, from) {
				if ev.Outcome == audit.Denied && strings.Contains(string(ev.Details), "reported compromised") {
					refused++
				}
			}
			if refused != 2 {
				t.Errorf("%d refusals naming the compromised key audited, want 2 (renew, sign)", refused)
			}
			if got := tValidWithKey(t, in, first.SPKISHA256); len(got) != 2 {
				t.Fatalf("certificates of the leaked key during the grace period: %v, want the 2 old ones", got)
			}

			// A new key for the same names is fine, and replaces it.
			var fresh apitypes.IssuedCertificate
			in.must(http.StatusCreated, "POST", "/api/v1/certificates/sign", apitypes.SignRequest{
				CSRPEM: string(tCSR(t, tECKey(t, elliptic.P256()), "leak.internal.test")), Profile: prof.Name, ValidityDays: 30, Replaces: first.Serial,
			}, &fresh)

			tRunJob(t, in, "rotation")
			clk.Advance(61 * time.Minute)
			tRunJob(t, in, "rotation")
			in.must(http.StatusOK, "GET", "/api/v1/rotations/"+rot.ID, nil, &rot)
			if rot.Status != "done" || rot.Counts["revoked"] != 2 {
				t.Fatalf("after the grace period: %s %+v", rot.Status, rot.Items)
			}
			if got := tValidWithKey(t, in, first.SPKISHA256); len(got) != 0 {
				t.Errorf("certificates of the leaked key valid after the rotation: %v", got)
			}
			for _, c := range []apitypes.IssuedCertificate{first, auto} {
				if s := tOCSPStatus(t, in, tPEMCert(t, c.CertificatePEM), tPEMCert(t, c.ChainPEM)); s != ocsp.Revoked {
					t.Errorf("OCSP for %s: status %d, want revoked", c.Serial, s)
				}
			}
			if s := tOCSPStatus(t, in, tPEMCert(t, fresh.CertificatePEM), tPEMCert(t, fresh.ChainPEM)); s != ocsp.Good {
				t.Errorf("OCSP for the replacement with a new key %s: status %d, want good", fresh.Serial, s)
			}
			// After the rotation too.
			r = in.call("POST", "/api/v1/certificates/sign", apitypes.SignRequest{
				CSRPEM: string(tCSR(t, leaked, "leak.internal.test")), Profile: prof.Name, ValidityDays: 30,
			})
			tWantCompromised(t, "cert sign with the key after the rotation", r, "rotation "+rot.ID)
		})
	}
}

// TestKeyCompromiseRevocationBlocksTheKey: a certificate revoked with
// reason key_compromise (one, or in bulk by key) puts its key on the list:
// cert sign with a CSR for that key is refused naming the revocation; a
// different key is fine; another reason does not block the key.
func TestKeyCompromiseRevocationBlocksTheKey(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			cfg := tConfig(t, be.dbURL(t))
			tInit(t, cfg, clock.Real{})
			in := tStart(t, cfg, clock.Real{})
			in.tUseMachineAdmin(t)
			sign := func(key *ecdsa.PrivateKey, name string) tResp {
				return in.call("POST", "/api/v1/certificates/sign", apitypes.SignRequest{
					CSRPEM: string(tCSR(t, key, name)), Profile: "web_server", ValidityDays: 30})
			}
			issued := func(key *ecdsa.PrivateKey, name string) apitypes.IssuedCertificate {
				t.Helper()
				r := sign(key, name)
				var out apitypes.IssuedCertificate
				if r.status != http.StatusCreated || json.Unmarshal(r.body, &out) != nil {
					t.Fatalf("sign %s: %d %s", name, r.status, tTrim(r.body))
				}
				return out
			}

			one, bulk, retired := tECKey(t, elliptic.P256()), tECKey(t, elliptic.P256()), tECKey(t, elliptic.P256())
			c1 := issued(one, "one.internal.test")
			in.must(http.StatusOK, "POST", "/api/v1/certificates/"+c1.Serial+"/revoke", apitypes.RevokeRequest{Reason: "key_compromise"}, nil)
			tWantCompromised(t, "sign with the key of a certificate revoked as key_compromise", sign(one, "one.internal.test"),
				"revocation of serial "+c1.Serial)
			tWantCompromised(t, "the same key for other names", sign(one, "other.internal.test"), "revocation of serial "+c1.Serial)
			if k := tGetCert(t, in, c1.Serial).KeyCompromised; k == nil || k.Source != "revocation" || k.Ref != c1.Serial {
				t.Errorf("cert show %s: key_compromised %+v, want the revocation", c1.Serial, k)
			}

			b1, b2 := issued(bulk, "bulk.internal.test"), issued(bulk, "bulk2.internal.test")
			in.must(http.StatusOK, "POST", "/api/v1/revocations", apitypes.BulkRevokeRequest{
				Selector: apitypes.Selector{SPKISHA256: b1.SPKISHA256}, Reason: "key_compromise"}, nil)
			tWantCompromised(t, "sign with a key revoked in bulk as key_compromise", sign(bulk, "bulk.internal.test"),
				"revocation of serial "+min(b1.Serial, b2.Serial))

			c3 := issued(retired, "retired.internal.test")
			in.must(http.StatusOK, "POST", "/api/v1/certificates/"+c3.Serial+"/revoke", apitypes.RevokeRequest{Reason: "superseded"}, nil)
			if k := tGetCert(t, in, issued(retired, "retired.internal.test").Serial).KeyCompromised; k != nil {
				t.Errorf("cert show of a key revoked as superseded: key_compromised %+v", k)
			}
			issued(tECKey(t, elliptic.P256()), "one.internal.test")
		})
	}
}

// TestACMEFinalizeWithCompromisedKeyIsBadPublicKey: an ACME order
// finalized with a CSR for a key revoked as keyCompromise is refused with
// badPublicKey and stays ready; finalized again with a new key it is
// issued.
func TestACMEFinalizeWithCompromisedKeyIsBadPublicKey(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			s := tACStart(t, be.dbURL(t), nil)
			c := s.account(t, "default")
			leaked := tECKey(t, elliptic.P256())
			id := tACDNS("leak.acme.test")
			_, chain, err := c.obtain(s.h01, leaked, id)
			tACNoErr(t, err)
			b, _ := pem.Decode(chain)
			if b == nil {
				t.Fatal("no certificate in the chain")
			}
			leaf, err := x509.ParseCertificate(b.Bytes)
			tACNoErr(t, err)
			serial := pki.SerialHex(leaf.SerialNumber)
			s.in.must(http.StatusOK, "POST", "/api/v1/certificates/"+serial+"/revoke", apitypes.RevokeRequest{Reason: "key_compromise"}, nil)

			o, orderURL, err := c.newOrder(id)
			tACNoErr(t, err)
			tACNoErr(t, c.validateHTTP01(s.h01, o))
			csr, err := tACCSR(leaked, id)
			tACNoErr(t, err)
			_, err = c.finalize(o.Finalize, csr)
			p := tACWantProblem(t, tACProblemOf(t, err), http.StatusBadRequest, "badPublicKey")
			if !strings.Contains(p.Detail, "reported compromised") || !strings.Contains(p.Detail, serial) {
				t.Errorf("problem detail %q, want the compromised-key rule naming %s", p.Detail, serial)
			}
			if o, err = c.order(orderURL); err != nil || o.Status != "ready" {
				t.Fatalf("order after the refusal: %+v %v, want ready", o, err)
			}
			if csr, err = tACCSR(tECKey(t, elliptic.P256()), id); err != nil {
				t.Fatal(err)
			}
			if o, err = c.finalize(o.Finalize, csr); err != nil {
				t.Fatalf("finalize with a new key: %v", err)
			}
			if o.Status != "valid" && o.Status != "processing" {
				t.Errorf("order after finalize with a new key: %s", o.Status)
			}
		})
	}
}

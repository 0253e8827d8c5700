//go:build cgo

package app

import (
	"bytes"
	"context"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/config"
	"github.com/certwright/certwright/internal/keys"
	"github.com/certwright/certwright/internal/keys/pkcs11"
	"github.com/certwright/certwright/internal/keys/pkcs11/softhsmtest"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// tHSMConfig is tConfig with the CA keys in a fresh SoftHSM2 token (the
// test is skipped without SoftHSM2). It sets SOFTHSM2_CONF, so the test
// does not run in parallel with others.
func tHSMConfig(t *testing.T, dbURL string) (*config.Config, *softhsmtest.Token) {
	t.Helper()
	tk := softhsmtest.New(t, "certwright")
	cfg := tConfig(t, dbURL)
	cfg.Keys = config.KeysConfig{
		CAKeyProvider: config.KeyProviderPKCS11,
		PKCS11:        config.PKCS11Config{Module: tk.Module, TokenLabel: tk.Label, PINFile: tk.PINFile(t)},
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg, tk
}

// tIssueVerified issues a certificate for name under web_server and
// verifies it up to root.
func tIssueVerified(t *testing.T, in *tInstance, root, issuing *x509.Certificate, name string) *x509.Certificate {
	t.Helper()
	out := in.sign(tCSR(t, tECKey(t, elliptic.P256()), name))
	leaf := tPEMCert(t, out.CertificatePEM)
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(root)
	inter.AddCert(issuing)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: name}); err != nil {
		t.Fatalf("certificate for %s does not verify: %v", name, err)
	}
	return leaf
}

// tCRLSignedListing waits for the CRL of CA issuing (id) to list serial and
// checks it is signed by issuing's key.
func tCRLSignedListing(t *testing.T, in *tInstance, id string, issuing *x509.Certificate, serial string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		crl := tCRL(t, in, id)
		if err := crl.CheckSignatureFrom(issuing); err != nil {
			t.Fatalf("CRL of the issuing CA: %v", err)
		}
		if tCRLLists(crl, serial) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the CRL does not list %s after 15s", serial)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestHSMCAKeys runs an instance whose root and issuing CA keys init made
// in a SoftHSM2 token: issuance, CRL and OCSP are signed there, before and
// after a restart and by 32 clients at once; the token holds the CA keys
// and their OCSP responders' keys (sensitive, never extractable) and
// nothing else; a wrong PIN, a missing
// token and a configuration without the token refuse to start; and a
// CA's key reference copied onto another CA's record is refused.
func TestHSMCAKeys(t *testing.T) {
	for _, b := range tBackends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			cfg, tk := tHSMConfig(t, b.dbURL(t))
			tInit(t, cfg, clock.Real{})
			saved, err := config.ReadFile(filepath.Join(cfg.DataDir, config.FileName), cfg.DataDir)
			if err != nil {
				t.Fatal(err)
			}
			if saved.Keys != cfg.Keys {
				t.Fatalf("config.yaml keeps keys %+v, want %+v", saved.Keys, cfg.Keys)
			}

			in := tStart(t, cfg, clock.Real{})
			var list apitypes.CAList
			in.must(http.StatusOK, "GET", "/api/v1/cas", nil, &list)
			ids := map[string]string{}
			for _, c := range list.CAs {
				if c.KeyProvider != pkcs11.Name {
					t.Errorf("CA %s: key provider %q, want pkcs11", c.Name, c.KeyProvider)
				}
				ids[c.Name] = c.ID
			}
			if len(ids) != 2 || ids["root"] == "" || ids["issuing"] == "" {
				t.Fatalf("CAs %v, want root and issuing", ids)
			}
			for _, ev := range tFindEvents(t, tAuditEvents(t, in, 0), "ca.create", 2) {
				if p := tDetails(t, ev)["key_provider"]; p != pkcs11.Name {
					t.Errorf("ca.create of %s: key_provider %v, want pkcs11", ev.Target, p)
				}
			}
			var rootCA, issuingCA apitypes.CA
			in.must(http.StatusOK, "GET", "/api/v1/cas/root", nil, &rootCA)
			in.must(http.StatusOK, "GET", "/api/v1/cas/issuing", nil, &issuingCA)
			root, issuing := tPEMCert(t, rootCA.CertificatePEM), tPEMCert(t, issuingCA.CertificatePEM)

			leaf := tIssueVerified(t, in, root, issuing, "hsm.example.internal")
			serial := pki.SerialHex(leaf.SerialNumber)
			tHSMConcurrentIssue(t, in, 32)
			in.must(http.StatusOK, "POST", "/api/v1/certificates/"+serial+"/revoke", apitypes.RevokeRequest{Reason: "superseded"}, nil)
			tCRLSignedListing(t, in, ids["issuing"], issuing, serial)
			r := tOCSPResponse(t, in, leaf, issuing) // verifies the signature and the responder's certificate
			if r.Status != ocsp.Revoked || r.Certificate == nil {
				t.Fatalf("OCSP status %d, responder %v; want revoked from a delegated responder", r.Status, r.Certificate)
			}
			if err := r.Certificate.CheckSignatureFrom(issuing); err != nil {
				t.Fatalf("OCSP responder certificate not issued by the HSM-held issuing CA: %v", err)
			}

			// The API names the provider per CA: a software-key CA under
			// the HSM-held root; no Ed25519 key in a token; no other
			// provider.
			var team apitypes.CA
			in.must(http.StatusCreated, "POST", "/api/v1/cas", apitypes.CreateCARequest{
				Name: "team", Type: "intermediate", Parent: "root", CommonName: "Team CA", KeyProvider: "software",
			}, &team)
			if team.KeyProvider != "software" {
				t.Errorf("team CA: key provider %q, want software", team.KeyProvider)
			}
			for _, req := range []apitypes.CreateCARequest{
				{Name: "ed", Type: "intermediate", Parent: "root", CommonName: "Ed CA", KeyProvider: "pkcs11", KeyAlgorithm: "ed25519"},
				{Name: "tpm", Type: "root", CommonName: "TPM CA", KeyProvider: "tpm"},
			} {
				if r := in.call("POST", "/api/v1/cas", req); r.status != http.StatusBadRequest || !strings.Contains(r.apiErr(t).Detail, "key") {
					t.Errorf("create %s: status %d %s, want 400 about the key", req.Name, r.status, tTrim(r.body))
				}
			}

			// The token holds the two CA keys, labelled with their
			// purpose, and their OCSP responders' keys, labelled
			// "ocsp:<CA id>/<CKA_ID>" (the issuing CA's signed the answer
			// above; the root's is made by the first maintenance pass),
			// all sensitive and never extractable; the audit and TLS keys
			// are not in it.
			objs := tk.Objects(t)
			responders := map[string]int{}
			for k, access := range objs {
				label, ok := strings.CutPrefix(k, "Private Key Object/")
				if !ok {
					continue
				}
				if !softhsmtest.Safe(access) {
					t.Errorf("token key %q: Access %v; want sensitive, never extractable", label, access)
				}
				owner := ""
				for name, id := range ids {
					if label == string(keys.CAPurpose(id)) {
						owner = name
					} else if strings.HasPrefix(label, string(keys.OCSPPurpose(id))+"/") {
						owner = name
						responders[name]++
					}
				}
				if owner == "" {
					t.Errorf("token key %q is neither a CA's nor its OCSP responder's", label)
				}
			}
			if responders["issuing"] != 1 || responders["root"] > 1 {
				t.Errorf("OCSP responder keys in the token by CA %v, want the issuing CA's (and the root's)", responders)
			}
			for name, id := range ids {
				access, ok := objs["Private Key Object/"+string(keys.CAPurpose(id))]
				if !ok || !softhsmtest.Safe(access) {
					t.Errorf("CA %s: token key %q: found %v, Access %v; want sensitive, never extractable", name, keys.CAPurpose(id), ok, access)
				}
			}

			// Restart: the keys are found again by their CKA_ID.
			if err := in.stop(); err != nil {
				t.Fatal(err)
			}
			in = tStart(t, cfg, clock.Real{})
			leaf = tIssueVerified(t, in, root, issuing, "after-restart.example.internal")
			serial = pki.SerialHex(leaf.SerialNumber)
			in.must(http.StatusOK, "POST", "/api/v1/certificates/"+serial+"/revoke", apitypes.RevokeRequest{Reason: "superseded"}, nil)
			tCRLSignedListing(t, in, ids["issuing"], issuing, serial)
			if err := in.stop(); err != nil {
				t.Fatal(err)
			}

			// Each refusal also shows the failed start closed the
			// module: the next Open would otherwise find it in use.
			wrongPIN, noToken, noHSM := *cfg, *cfg, *cfg
			wrongPIN.Keys.PKCS11.PINFile = softhsmtest.WritePIN(t, "9999\n", 0o600)
			noToken.Keys.PKCS11.TokenLabel = "absent"
			noHSM.Keys = config.KeysConfig{CAKeyProvider: config.KeyProviderSoftware}
			for _, tt := range []struct {
				name   string
				cfg    *config.Config
				target error
				says   string
			}{
				{"wrong PIN", &wrongPIN, pkcs11.ErrPIN, "keys.pkcs11.pin_file"},
				{"token missing", &noToken, pkcs11.ErrTokenNotFound, "keys.pkcs11.token_label"},
				{"token not configured", &noHSM, keys.ErrUnknownProvider, `"pkcs11"`},
			} {
				tHSMRefused(t, tt.cfg, tt.target, tt.says)
			}

			// A CA's key reference copied onto the issuing CA's record,
			// as is and with its label rewritten to the issuing CA's
			// purpose, does not open there.
			db := tDBWriter(t, cfg)
			var rootKeyID string
			if err := db.QueryRowContext(ctx, `SELECT key_id FROM cas WHERE name = 'root'`).Scan(&rootKeyID); err != nil {
				t.Fatal(err)
			}
			tExec(t, db, 1, `UPDATE cas SET key_id = '`+rootKeyID+`', key_algorithm = 'ecdsa-p384', key_blob = (SELECT key_blob FROM cas WHERE name = 'root') WHERE name = 'issuing'`)
			tHSMRefused(t, cfg, pkcs11.ErrNotBound, `labelled "ca:`+ids["root"]+`"`)
			blob := "X'" + hex.EncodeToString([]byte(keys.CAPurpose(ids["issuing"]))) + "'"
			if cfg.DB != "" {
				blob = `'\x` + hex.EncodeToString([]byte(keys.CAPurpose(ids["issuing"]))) + `'::bytea`
			}
			tExec(t, db, 1, `UPDATE cas SET key_blob = `+blob+` WHERE name = 'issuing'`)
			tHSMRefused(t, cfg, pkcs11.ErrNotBound, `the token's key with CKA_ID `+rootKeyID+` is labelled "ca:`+ids["root"]+`"`)
		})
	}
}

// tHSMRefused fails unless cfg's instance refuses to start with an error
// wrapping target and saying says.
func tHSMRefused(t *testing.T, cfg *config.Config, target error, says string) {
	t.Helper()
	a, err := Open(context.Background(), cfg, tLogger(), clock.Real{})
	if err == nil {
		a.Close()
		t.Fatal("Open succeeded")
	}
	if !errors.Is(err, target) || !strings.Contains(err.Error(), says) {
		t.Fatalf("Open: %v\nwant an error wrapping %v saying %s", err, target, says)
	}
}

// tHSMConcurrentIssue issues n certificates at once through the API.
func tHSMConcurrentIssue(t *testing.T, in *tInstance, n int) {
	t.Helper()
	bodies := make([][]byte, n)
	for i := range bodies {
		csr := tCSR(t, tECKey(t, elliptic.P256()), fmt.Sprintf("c%d.hsm.example.internal", i))
		b, err := json.Marshal(apitypes.SignRequest{CSRPEM: string(csr), Profile: "web_server"})
		if err != nil {
			t.Fatal(err)
		}
		bodies[i] = b
	}
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for _, body := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, err := http.NewRequest("POST", in.l.HTTPSURL+"/api/v1/certificates/sign", bytes.NewReader(body))
			if err != nil {
				errs <- err
				return
			}
			req.Header.Set("Authorization", in.bearer())
			req.Header.Set("Content-Type", "application/json")
			resp, err := in.client.Do(req)
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusCreated {
				errs <- fmt.Errorf("status %d: %s", resp.StatusCode, tTrim(b))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent issuance: %v", err)
	}
}

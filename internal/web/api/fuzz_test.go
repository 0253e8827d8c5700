package api

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// requestTypes are the body types the API decodes, one per write route
// shape; FuzzRequestBodies feeds the same bytes to the strict decoder for
// each.
func requestTypes() []any {
	return []any{
		&apitypes.CreateCARequest{}, &apitypes.ImportCARequest{}, &apitypes.SignRequest{}, &apitypes.IssueRequest{},
		&apitypes.RevokeRequest{}, &apitypes.BulkRevokeRequest{}, &apitypes.CreatePrincipalRequest{},
		&apitypes.CreateTokenRequest{}, &apitypes.Identity{}, &apitypes.Role{}, &apitypes.CreateBindingRequest{},
		&apitypes.Decision{}, &apitypes.CreateProvisionerRequest{}, &apitypes.CreateEABKeyRequest{},
		&apitypes.RenewNowRequest{}, &apitypes.ImportRequest{}, &apitypes.RenewRequest{}, &apitypes.AlertTestRequest{},
		&apitypes.DeployFailure{}, &apitypes.RotationRequest{},
	}
}

func bodyRequest(body []byte) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/api/v1/x", bytes.NewReader(body))
	r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, 1<<20)
	return r
}

// FuzzRequestBodies: for every request type, decode never panics, refuses
// with errBadInput (or the size limit) only, and whatever it accepts
// survives a marshal/decode round trip unchanged; the pure validators
// behind it (CIDRs of name constraints, revocation reasons and dates, the
// certificates of a CA import) never panic either.
func FuzzRequestBodies(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"name":"team","type":"intermediate","parent":"root","common_name":"Team CA","name_constraints":{"permitted_dns":["example.internal"],"permitted_ip":["10.0.0.0/8"]}}`,
		`{"csr_pem":"-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n","profile":"web_server"}`,
		`{"reason":"key_compromise","invalidity_date":"2026-01-01T00:00:00Z"}`,
		`{"selector":{"ca":"issuing","san":"*.example.com"},"reason":"superseded"}`,
		`{"name":"bot","kind":"machine","role":"issuer","scope":{"cas":["issuing"]},"token":true}`,
		`{"principal":"bot","role":"issuer"}`, `{"comment":"ok"}`, `{"reuse_key":true}`, `{"channel":"ops"}`,
		`{"name":"p","unknown":1}`, `{"name":"a"}{"name":"b"}`, `[]`, `null`, `"x"`, `{"name":"\u0000"}`,
		`{"pem":"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n","tags":["a"]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, proto := range requestTypes() {
			v := reflect.New(reflect.TypeOf(proto).Elem()).Interface()
			err := decode(bodyRequest(body), v)
			if err != nil {
				var mbe *http.MaxBytesError
				if !errors.Is(err, errBadInput) && !errors.As(err, &mbe) {
					t.Fatalf("%T: decode error %v is not a bad-input error", v, err)
				}
				continue
			}
			again, err := json.Marshal(v)
			if err != nil {
				t.Fatalf("%T: re-marshal: %v", v, err)
			}
			w := reflect.New(reflect.TypeOf(proto).Elem()).Interface()
			if err := decode(bodyRequest(again), w); err != nil {
				t.Fatalf("%T: accepted %q but not its own re-encoding %q: %v", v, body, again, err)
			}
			// Compared as JSON once the encoding has settled: an empty list
			// and an absent one are the same request (omitempty, omitzero).
			third, _ := json.Marshal(w)
			x := reflect.New(reflect.TypeOf(proto).Elem()).Interface()
			if err := decode(bodyRequest(third), x); err != nil {
				t.Fatalf("%T: re-encoding %q refused: %v", v, third, err)
			}
			if fourth, _ := json.Marshal(x); !bytes.Equal(third, fourth) {
				t.Fatalf("%T: round trip does not settle: %s != %s", v, third, fourth)
			}
			switch req := v.(type) {
			case *apitypes.CreateCARequest:
				_, _ = parseCIDRs("name_constraints.permitted_ip", req.Constraints.PermittedIP)
				_, _ = parseCIDRs("name_constraints.excluded_ip", req.Constraints.ExcludedIP)
			case *apitypes.RevokeRequest:
				_, _, _ = reasonAndDate(req.Reason, req.InvalidityDate, true)
			case *apitypes.BulkRevokeRequest:
				_, _, _ = reasonAndDate(req.Reason, req.InvalidityDate, false)
			case *apitypes.ImportCARequest:
				_, _, _ = importedCertificates(*req)
			}
		}
	})
}

// importFixture is an external CA's key and a root that signed its
// certificate: what `ca create-external` and an outside CA produce.
type importFixture struct {
	key       *ecdsa.PrivateKey
	good      []byte // the CA certificate signed by root, PEM
	root      []byte // PEM
	leaf      []byte // a non-CA certificate for the same key, PEM
	wrongKey  []byte // a CA certificate for another key, PEM
	notBefore time.Time
}

func newImportFixture(tb testing.TB) importFixture {
	tb.Helper()
	now := time.Now()
	rootKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rootT := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Outside Root"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), BasicConstraintsValid: true, IsCA: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootT, rootT, rootKey.Public(), rootKey)
	if err != nil {
		tb.Fatal(err)
	}
	root, _ := x509.ParseCertificate(rootDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sign := func(pub any, isCA bool, serial int64) []byte {
		t := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "External CA"},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(12 * time.Hour), BasicConstraintsValid: true, IsCA: isCA,
			KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, PermittedDNSDomains: []string{"example.internal"}}
		if !isCA {
			t.KeyUsage = x509.KeyUsageDigitalSignature
		}
		der, err := x509.CreateCertificate(rand.Reader, t, root, pub, rootKey)
		if err != nil {
			tb.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	return importFixture{
		key: key, good: sign(key.Public(), true, 2), root: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rootDER}),
		leaf: sign(key.Public(), false, 3), wrongKey: sign(other.Public(), true, 4), notBefore: now,
	}
}

// FuzzImportCA fuzzes the body of POST /api/v1/cas/{ca}/certificate, the
// upload of an externally signed CA certificate after `ca create-external`:
// strict decode, the PEM/DER parse of certificate and chain, and
// ca.CheckImport against the pending CA's key. Nothing panics, and an
// accepted certificate is a CA certificate for exactly that key, signed
// by the first chain certificate when a chain is given.
func FuzzImportCA(f *testing.F) {
	fx := newImportFixture(f)
	j := func(cert, chain []byte) []byte {
		b, _ := json.Marshal(apitypes.ImportCARequest{CertificatePEM: string(cert), ChainPEM: string(chain)})
		return b
	}
	f.Add(j(fx.good, fx.root))
	f.Add(j(fx.good, nil))
	f.Add(j(append(append([]byte{}, fx.good...), fx.root...), nil))
	f.Add(j(fx.leaf, fx.root))
	f.Add(j(fx.wrongKey, fx.root))
	f.Add(j(fx.root, fx.good))
	f.Add(j([]byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), nil))
	f.Add(j(nil, nil))
	f.Add([]byte(`{"certificate_pem":"`))
	wantSPKI, err := x509.MarshalPKIXPublicKey(fx.key.Public())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req apitypes.ImportCARequest
		if err := decode(bodyRequest(body), &req); err != nil {
			return
		}
		cert, chain, err := importedCertificates(req)
		if err != nil {
			if !errors.Is(err, errBadInput) {
				t.Fatalf("parse error %v is not a bad-input error", err)
			}
			return
		}
		if cert == nil {
			t.Fatal("no error and no certificate")
		}
		if err := ca.CheckImport(cert, fx.key.Public(), chain, fx.notBefore); err != nil {
			if !errors.Is(err, ca.ErrImport) {
				t.Fatalf("CheckImport error %v is not ca.ErrImport", err)
			}
			return
		}
		if !bytes.Equal(cert.RawSubjectPublicKeyInfo, wantSPKI) || !cert.IsCA || !cert.BasicConstraintsValid {
			t.Fatalf("accepted a certificate that is not a CA certificate for the pending key")
		}
		if len(chain) > 0 && cert.CheckSignatureFrom(chain[0]) != nil {
			t.Fatalf("accepted a certificate not signed by the chain given")
		}
	})
}

// TestImportFixtureSeeds: the good seed is accepted and each bad one is
// refused, so the fuzz corpus starts on both sides of the check.
func TestImportFixtureSeeds(t *testing.T) {
	t.Parallel()
	fx := newImportFixture(t)
	for _, tt := range []struct {
		name        string
		cert, chain []byte
		ok          bool
	}{
		{"good with chain", fx.good, fx.root, true},
		{"good alone", fx.good, nil, true},
		{"leaf", fx.leaf, fx.root, false},
		{"wrong key", fx.wrongKey, fx.root, false},
		{"root as the CA", fx.root, nil, false},
		{"wrong chain", fx.good, fx.good, false},
	} {
		cert, chain, err := importedCertificates(apitypes.ImportCARequest{CertificatePEM: string(tt.cert), ChainPEM: string(tt.chain)})
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		err = ca.CheckImport(cert, fx.key.Public(), chain, fx.notBefore)
		if (err == nil) != tt.ok {
			t.Errorf("%s: CheckImport = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

package ocsp_test

import (
	"bytes"
	"crypto"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	xocsp "golang.org/x/crypto/ocsp"

	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/revoke/ocsp"
)

// seeds are the requests in testdata (made by openssl ocsp -reqout) and
// x/crypto requests for every supported hash.
func seeds(t testing.TB) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	files, err := filepath.Glob(filepath.Join("testdata", "*.der"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no seeds in testdata: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = b
	}
	p := newPKI(t, time.Now(), pki.ECDSAP256)
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512} {
		der, err := xocsp.CreateRequest(p.leaf, p.inter, &xocsp.RequestOptions{Hash: h})
		if err != nil {
			t.Fatal(err)
		}
		out["xcrypto-"+h.String()] = der
	}
	return out
}

// TestParseRequestTestdata pins what the stored openssl requests parse to.
func TestParseRequestTestdata(t *testing.T) {
	t.Parallel()
	for name, der := range seeds(t) {
		req, err := ocsp.ParseRequest(der)
		switch {
		case name == "openssl-two-requests.der":
			if !errors.Is(err, ocsp.ErrMultipleRequests) {
				t.Errorf("%s: %v, want ErrMultipleRequests", name, err)
			}
		case err != nil:
			t.Errorf("%s: %v", name, err)
		case name == "openssl-signed.der" && !req.Signed:
			t.Errorf("%s: not marked signed", name)
		}
	}
}

func FuzzParseRequest(f *testing.F) {
	for _, der := range seeds(f) {
		f.Add(der)
	}
	f.Add(goodSpec().der())
	f.Fuzz(func(t *testing.T, der []byte) {
		req, err := ocsp.ParseRequest(der)
		again, err2 := ocsp.ParseRequest(der)
		if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
			t.Fatalf("not deterministic: %v / %v", err, err2)
		}
		if err != nil {
			if req != nil {
				t.Fatal("request with error")
			}
			if ocsp.StatusFor(err) == ocsp.StatusInternalError {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		if !sameCertID(req.CertID, again.CertID) {
			t.Fatal("two parses differ")
		}
		if len(der) > ocsp.MaxRequestBytes || req.Serial.Sign() < 0 || len(req.NameHash) != req.Hash.Size() || len(req.KeyHash) != req.Hash.Size() {
			t.Fatalf("accepted an out-of-profile request: %+v", req)
		}
		// Re-encoding the CertID through x/crypto parses back to the same.
		re, err := (&xocsp.Request{HashAlgorithm: req.Hash, IssuerNameHash: req.NameHash, IssuerKeyHash: req.KeyHash, SerialNumber: req.Serial}).Marshal()
		if err != nil {
			t.Fatalf("x/crypto cannot marshal %+v: %v", req.CertID, err)
		}
		back, err := ocsp.ParseRequest(re)
		if err != nil || !sameCertID(back.CertID, req.CertID) {
			t.Fatalf("re-encoded request parses to %+v, %v", back, err)
		}
		// Where x/crypto also accepts an unsigned request, it reads the same CertID.
		if x, err := xocsp.ParseRequest(der); err == nil && !req.Signed {
			xid := ocsp.CertID{Hash: x.HashAlgorithm, NameHash: x.IssuerNameHash, KeyHash: x.IssuerKeyHash, Serial: x.SerialNumber}
			if !sameCertID(xid, req.CertID) {
				t.Fatalf("x/crypto reads %+v, we read %+v", xid, req.CertID)
			}
		}
	})
}

func sameCertID(a, b ocsp.CertID) bool {
	return a.Hash == b.Hash && bytes.Equal(a.NameHash, b.NameHash) && bytes.Equal(a.KeyHash, b.KeyHash) &&
		a.Serial != nil && b.Serial != nil && a.Serial.Cmp(b.Serial) == 0
}

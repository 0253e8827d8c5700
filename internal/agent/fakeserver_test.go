package agent

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// testCA is a root and an issuing CA under it.
type testCA struct {
	root, issuing       *x509.Certificate
	rootKey, issuingKey crypto.Signer
	// crlURL, when set, is named in the leaves issued.
	crlURL string
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	ca := &testCA{rootKey: mustKey(t), issuingKey: mustKey(t)}
	now := time.Now()
	ca.root = mustCert(t, &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test Root"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(10 * 365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}, nil, ca.rootKey.Public(), ca.rootKey)
	ca.issuing = mustCert(t, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "Test Issuing"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(5 * 365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}, ca.root, ca.issuingKey.Public(), ca.rootKey)
	return ca
}

func mustKey(t *testing.T) crypto.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustCert(t *testing.T, tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) *x509.Certificate {
	t.Helper()
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// leaf issues an end-entity certificate from the issuing CA.
func (ca *testCA) leaf(t *testing.T, pub crypto.PublicKey, notBefore time.Time, life time.Duration, dns []string, ips []net.IP) *x509.Certificate {
	t.Helper()
	serial, err := pki.NewSerial(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cn := ""
	if len(dns) > 0 {
		cn = dns[0]
	}
	var crl []string
	if ca.crlURL != "" {
		crl = []string{ca.crlURL}
	}
	return mustCert(t, &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn}, DNSNames: dns, IPAddresses: ips,
		NotBefore: notBefore, NotAfter: notBefore.Add(life),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		CRLDistributionPoints: crl,
	}, ca.issuing, pub, ca.issuingKey)
}

func pemOf(certs ...*x509.Certificate) string { return string(certsPEM(certs...)) }

// fakeCert is the fake server's record of a certificate it issued.
type fakeCert struct {
	cert      *x509.Certificate
	renewNow  bool
	renewedBy string
	revoked   bool
	profile   string
}

// fakeServer is an httptest stand-in for the Certwright API routes the
// agent calls, signing with a test CA.
type fakeServer struct {
	t        *testing.T
	ca       *testCA
	srv      *httptest.Server
	token    string
	life     time.Duration
	skew     time.Duration // added to the server's clock
	mtls     bool
	mu       sync.Mutex
	certs    map[string]*fakeCert
	signs    []apitypes.SignRequest
	signedBy []string // the client certificate serial of each sign, with mTLS
	infos    int
	failures []apitypes.DeployFailure
	down     bool // answer 503
	// retryAfter is the Retry-After header of the 503s, when set.
	retryAfter string
	// crlRevoked are the serials the CRL of serveCRL lists;
	// revokeOnSign adds every certificate signed to them.
	crlRevoked   []*big.Int
	revokeOnSign bool
}

func newFakeServer(t *testing.T, mtls bool) *fakeServer {
	t.Helper()
	f := &fakeServer{t: t, ca: newTestCA(t), token: "cwt_test_" + strings.Repeat("a", 20), life: 90 * 24 * time.Hour,
		mtls: mtls, certs: map[string]*fakeCert{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/certificates/sign", f.sign)
	mux.HandleFunc("GET /api/v1/certificates/{serial}/renewal-info", f.renewalInfo)
	mux.HandleFunc("GET /api/v1/certificates/{serial}", f.certificate)
	mux.HandleFunc("POST /api/v1/alerts/deploy-failed", f.deployFailed)
	f.srv = httptest.NewUnstartedServer(f.auth(mux))
	tlsKey := mustKey(t)
	tlsCert := f.ca.leaf(t, tlsKey.Public(), time.Now().Add(-time.Hour), 24*time.Hour, nil, []net.IP{net.IPv4(127, 0, 0, 1)})
	f.srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{tlsCert.Raw, f.ca.issuing.Raw}, PrivateKey: tlsKey}}}
	if mtls {
		f.srv.TLS.ClientAuth = tls.RequireAndVerifyClientCert
		f.srv.TLS.ClientCAs = x509.NewCertPool()
		f.srv.TLS.ClientCAs.AddCert(f.ca.root)
	}
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeServer) now() time.Time { return time.Now().Add(f.skew) }

func writeErr(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(apitypes.Error{Error: msg})
}

func writeOK(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeServer) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		down, retryAfter := f.down, f.retryAfter
		f.mu.Unlock()
		if down {
			if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			writeErr(w, http.StatusServiceUnavailable, "database unavailable")
			return
		}
		if f.mtls {
			if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
				writeErr(w, http.StatusUnauthorized, "unauthorized")
				return
			}
		} else if r.Header.Get("Authorization") != "Bearer "+f.token {
			writeErr(w, http.StatusUnauthorized, "unauthorized")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (f *fakeServer) sign(w http.ResponseWriter, r *http.Request) {
	var req apitypes.SignRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		writeErr(w, http.StatusBadRequest, err.Error())
		return
	}
	csr, err := pki.ParseCSR([]byte(req.CSRPEM))
	if err != nil {
		writeErr(w, http.StatusBadRequest, err.Error())
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.signs = append(f.signs, req)
	if f.mtls {
		f.signedBy = append(f.signedBy, pki.SerialHex(r.TLS.PeerCertificates[0].SerialNumber))
	}
	if req.Replaces != "" {
		old := f.certs[req.Replaces]
		if old == nil || old.renewedBy != "" || old.revoked {
			writeErr(w, http.StatusConflict, "replaces: not a valid certificate that is not yet replaced")
			return
		}
	}
	c := f.ca.leaf(f.t, csr.PublicKey, f.now().Add(-time.Minute), f.life, csr.DNSNames, csr.IPAddresses)
	if f.revokeOnSign {
		f.crlRevoked = append(f.crlRevoked, c.SerialNumber)
	}
	serial := pki.SerialHex(c.SerialNumber)
	f.certs[serial] = &fakeCert{cert: c, profile: req.Profile}
	if req.Replaces != "" {
		f.certs[req.Replaces].renewedBy = serial
	}
	writeOK(w, http.StatusCreated, apitypes.IssuedCertificate{
		Certificate: apitypes.Certificate{Serial: serial, NotAfter: c.NotAfter, Profile: req.Profile, Replaces: req.Replaces,
			CertificatePEM: pemOf(c)},
		ChainPEM: pemOf(f.ca.issuing), RootPEM: pemOf(f.ca.root),
	})
}

func (f *fakeServer) renewalInfo(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.infos++
	c := f.certs[r.PathValue("serial")]
	if c == nil {
		writeErr(w, http.StatusNotFound, "no such certificate")
		return
	}
	life := c.cert.NotAfter.Sub(c.cert.NotBefore)
	ws := c.cert.NotBefore.Add(life * 2 / 3)
	info := apitypes.RenewalInfo{Serial: r.PathValue("serial"), NotAfter: c.cert.NotAfter, WindowStart: ws,
		WindowEnd: c.cert.NotAfter.Add(-life / 6), RenewedBy: c.renewedBy, Revoked: c.revoked, ServerTime: f.now()}
	if c.renewNow {
		info.RenewNow, info.Reason = true, "requested"
		info.WindowStart, info.WindowEnd = f.now().Add(-time.Minute), f.now()
	}
	writeOK(w, http.StatusOK, info)
}

func (f *fakeServer) certificate(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.certs[r.PathValue("serial")]
	if c == nil {
		writeErr(w, http.StatusNotFound, "no such certificate")
		return
	}
	writeOK(w, http.StatusOK, apitypes.Certificate{Serial: r.PathValue("serial"), Profile: c.profile, CA: "issuing"})
}

func (f *fakeServer) deployFailed(w http.ResponseWriter, r *http.Request) {
	var req apitypes.DeployFailure
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		writeErr(w, http.StatusBadRequest, err.Error())
		return
	}
	f.mu.Lock()
	f.failures = append(f.failures, req)
	f.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

// record adds a certificate the server knows (as if issued earlier).
func (f *fakeServer) record(c *x509.Certificate) *fakeCert {
	f.mu.Lock()
	defer f.mu.Unlock()
	fc := &fakeCert{cert: c, profile: "internal_service"}
	f.certs[pki.SerialHex(c.SerialNumber)] = fc
	return fc
}

func (f *fakeServer) signCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.signs)
}

func (f *fakeServer) lastSign() apitypes.SignRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.signs) == 0 {
		f.t.Fatal("no sign request")
	}
	return f.signs[len(f.signs)-1]
}

func (f *fakeServer) setRenewNow(serial string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.certs[serial].renewNow = true
}

func (f *fakeServer) setDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
}

func (f *fakeServer) setRetryAfter(v string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.retryAfter = v
}

func (f *fakeServer) deployFailures() []apitypes.DeployFailure {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]apitypes.DeployFailure(nil), f.failures...)
}

// writeRoot writes the root certificate to dir/root.pem.
func (f *fakeServer) writeRoot(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "root.pem")
	if err := os.WriteFile(p, []byte(pemOf(f.ca.root)), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func encodeKey(t *testing.T, k crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// setCRL makes the leaves issued from now on name url as their CRL.
func (f *fakeServer) setCRL(url string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ca.crlURL = url
}

// serveCRL serves the issuing CA's CRL, listing crlRevoked, on a loopback
// HTTP server that the leaves issued from now on name; with revoke set,
// every certificate signed from now on is listed. It returns the count
// of fetches.
func (f *fakeServer) serveCRL(t *testing.T, revoke bool) *atomic.Int32 {
	t.Helper()
	hits := new(atomic.Int32)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		f.mu.Lock()
		var entries []x509.RevocationListEntry
		for _, sn := range f.crlRevoked {
			entries = append(entries, x509.RevocationListEntry{SerialNumber: sn, RevocationTime: time.Now().Add(-time.Minute)})
		}
		f.mu.Unlock()
		now := time.Now()
		der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
			Number: big.NewInt(now.UnixNano()), ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour),
			RevokedCertificateEntries: entries,
		}, f.ca.issuing, f.ca.issuingKey)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/pkix-crl")
		_, _ = w.Write(der)
	}))
	t.Cleanup(srv.Close)
	f.mu.Lock()
	f.revokeOnSign = revoke
	f.mu.Unlock()
	f.setCRL(srv.URL + "/issuing.crl")
	return hits
}

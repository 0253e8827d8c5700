package app

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	globalest "github.com/globalsign/est"

	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/profile"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// tESTCA is a manufacturer (IDevID) CA of the test.
type tESTCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func tNewESTCA(t testing.TB, cn string) *tESTCA {
	t.Helper()
	key := tECKey(t, elliptic.P256())
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().AddDate(20, 0, 0), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &tESTCA{cert: c, key: key}
}

func (ca *tESTCA) pem() string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw}))
}

// idevid issues a device certificate with serial number sn and DNS name dns.
func (ca *tESTCA) idevid(t *testing.T, sn, dns string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	return ca.idevidWith(t, sn, dns, x509.ExtKeyUsageClientAuth)
}

// tESTCSR makes a CSR with key for cn and the DNS names given.
func tESTCSR(t *testing.T, key crypto.Signer, cn string, dns ...string) *x509.CertificateRequest {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}, DNSNames: dns}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, _ := x509.ParseCertificateRequest(der)
	return csr
}

// tESTClient is the globalsign/est client for provisioner label on in.
func tESTClient(in *tInstance, label string) *globalest.Client {
	return &globalest.Client{Host: in.httpsAddr(), AdditionalPathSegment: label, ExplicitAnchor: in.pool, DisableKeepAlives: true}
}

// tESTStatus is the HTTP status of an est client error (0 for none).
func tESTStatus(err error) int {
	var e globalest.Error
	if errors.As(err, &e) {
		return e.StatusCode()
	}
	return 0
}

// tDeviceProfile is internal_service with 1-hour certificates, so that
// expiry and the grace period can be tested on the instance's clock.
func tDeviceProfile(t *testing.T) string {
	t.Helper()
	return tProfileCopy(t, "internal_service", "device_1h")
}

// tProfileCopy is built-in profile from as JSON, renamed name and valid
// for an hour.
func tProfileCopy(t *testing.T, from, name string) string {
	t.Helper()
	for _, p := range profile.Builtins() {
		if p.Name == from {
			c := p.Clone()
			c.Name, c.Builtin, c.DefaultValidityHours, c.MaxValidityDays, c.RenewBeforeDays = name, false, 1, 1, 0
			b, err := c.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
	}
	t.Fatalf("no built-in profile %s", from)
	return ""
}

// TestEST enrols with the globalsign/est client on SQLite and PostgreSQL:
// cacerts, csrattrs, enrolment with a one-time secret and with an IDevID,
// server key generation, re-enrolment within and beyond the grace period,
// and every refusal the brief names, each leaving nothing stored.
func TestEST(t *testing.T) {
	tESTReviewRun(t, func(t *testing.T, e *tESTEnv) { tESTRun(t, e.in, e.clk) })
}

func tESTRun(t *testing.T, in *tInstance, clk *clock.Fake) {
	ctx := context.Background()
	in.tUseMachineAdmin(t) // fleet generates keys: its secrets come from a machine with key:export
	maker, other := tNewESTCA(t, "Maker IDevID CA"), tNewESTCA(t, "Other Maker CA")
	var prov apitypes.ESTProvisioner
	in.must(http.StatusCreated, "POST", "/api/v1/est/provisioners", apitypes.CreateESTProvisionerRequest{
		Name: "fleet", CA: "issuing", Profile: "device_1h", Auth: "any", BootstrapPEM: maker.pem(),
		IdentityFrom: "san:*.devices.example.com", ServerKeyGen: true, ReenrollGrace: "48h",
	}, &prov)
	if prov.URL != "https://"+in.httpsAddr()+"/.well-known/est/fleet/" || len(prov.BootstrapCAs) != 1 {
		t.Errorf("provisioner view: %+v", prov)
	}
	fleet := tESTClient(in, "fleet")

	// cacerts: the issuing CA and the root; csrattrs: channel binding and P-256.
	cas, err := fleet.CACerts(ctx)
	if err != nil || len(cas) != 2 || !cas[0].IsCA {
		t.Fatalf("cacerts: %d certificates, %v", len(cas), err)
	}
	attrs, err := fleet.CSRAttrs(ctx)
	if err != nil || len(attrs.OIDs) == 0 {
		t.Fatalf("csrattrs: %+v, %v", attrs, err)
	}

	// A one-time secret over HTTP Basic: enrols once.
	const id = "dev-0001.devices.example.com"
	var sec apitypes.NewESTSecret
	in.must(http.StatusCreated, "POST", "/api/v1/est/provisioners/fleet/secrets", apitypes.CreateESTSecretRequest{Identity: id, TTL: "1h"}, &sec)
	key := tECKey(t, elliptic.P256())
	basic := tESTClient(in, "fleet")
	basic.Username, basic.Password = id, sec.Secret
	before := in.certCount()

	// Refusals that must store nothing and leave the secret usable.
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := basic.Enroll(ctx, tESTCSR(t, rsaKey, id, id)); tESTStatus(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "RSA") {
		t.Errorf("CSR with an RSA key under an ECDSA-only profile: %v, want 400 naming the key", err)
	}
	if _, err := basic.Enroll(ctx, tESTCSR(t, key, "dev-0002.devices.example.com", "dev-0002.devices.example.com")); tESTStatus(err) != http.StatusForbidden {
		t.Errorf("CSR for another identity: %v, want 403", err)
	}
	for name, body := range map[string]string{
		"garbage":       "this is not base64 !!!",
		"bad base64":    "QUJD=QUJD",
		"not a CSR":     base64.StdEncoding.EncodeToString([]byte("hello world")),
		"empty":         "",
		"oversized CSR": strings.Repeat("QUFB\n", 20000),
	} {
		want := http.StatusBadRequest
		if name == "oversized CSR" {
			want = http.StatusRequestEntityTooLarge
		}
		req, _ := http.NewRequest("POST", in.l.HTTPSURL+"/.well-known/est/fleet/simpleenroll", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/pkcs10")
		req.SetBasicAuth(id, sec.Secret)
		resp, err := in.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
			t.Errorf("%s body: status %d (%s), want %d with a text message", name, resp.StatusCode, resp.Header.Get("Content-Type"), want)
		}
	}
	if n := in.certCount(); n != before {
		t.Fatalf("refused requests stored %d certificates", n-before)
	}
	cert, err := basic.Enroll(ctx, tESTCSR(t, key, id, id))
	if err != nil {
		t.Fatalf("enrol with a one-time secret: %v", err)
	}
	if cert.Subject.CommonName != id || !slices.Equal(cert.DNSNames, []string{id}) {
		t.Errorf("enrolled certificate: %s %v", cert.Subject, cert.DNSNames)
	}
	if _, err := basic.Enroll(ctx, tESTCSR(t, key, id, id)); tESTStatus(err) != http.StatusUnauthorized {
		t.Errorf("reused one-time secret: %v, want 401", err)
	}

	// Each refusal above spent a token of this address's budget on the
	// provisioner: let it refill.
	clk.Advance(30 * time.Second)

	// Racing requests with one fresh secret: exactly one enrols.
	var race apitypes.NewESTSecret
	const rid = "dev-0003.devices.example.com"
	in.must(http.StatusCreated, "POST", "/api/v1/est/provisioners/fleet/secrets", apitypes.CreateESTSecretRequest{Identity: rid}, &race)
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := tESTClient(in, "fleet")
			c.Username, c.Password = rid, race.Secret
			if _, err := c.Enroll(ctx, tESTCSR(t, key, rid, rid)); err == nil {
				mu.Lock()
				won++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if won != 1 {
		t.Errorf("%d of 6 racing requests enrolled with one secret, want 1", won)
	}

	// Each refusal above spent a token of this address's budget on the
	// provisioner: let it refill.
	clk.Advance(30 * time.Second)

	// An IDevID from the manufacturer CA: identity from its DNS name.
	devCert, devKey := maker.idevid(t, "SN0004", "dev-0004.devices.example.com")
	dev := tESTClient(in, "fleet")
	dev.Certificates, dev.PrivateKey = []*x509.Certificate{devCert}, devKey
	if _, err := dev.Enroll(ctx, tESTCSR(t, key, "dev-0004.devices.example.com", "dev-0004.devices.example.com")); err != nil {
		t.Fatalf("enrol with an IDevID: %v", err)
	}
	if _, err := dev.Enroll(ctx, tESTCSR(t, key, id, id)); tESTStatus(err) != http.StatusForbidden {
		t.Errorf("IDevID asking for another identity: %v, want 403", err)
	}
	wrongCert, wrongKey := other.idevid(t, "SN0005", "dev-0005.devices.example.com")
	wrong := tESTClient(in, "fleet")
	wrong.Certificates, wrong.PrivateKey = []*x509.Certificate{wrongCert}, wrongKey
	if _, err := wrong.Enroll(ctx, tESTCSR(t, key, "dev-0005.devices.example.com", "dev-0005.devices.example.com")); tESTStatus(err) != http.StatusUnauthorized {
		t.Errorf("IDevID from another manufacturer: %v, want 401", err)
	}

	// serverkeygen: a P-256 key as PKCS#8 with its certificate.
	kgCert, kgKey, err := dev.ServerKeyGen(ctx, tESTCSR(t, key, "dev-0004.devices.example.com", "dev-0004.devices.example.com"))
	if err != nil {
		t.Fatalf("serverkeygen: %v", err)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(kgKey)
	if err != nil {
		t.Fatalf("serverkeygen key: %v", err)
	}
	if pub, ok := parsed.(*ecdsa.PrivateKey); !ok || !pub.PublicKey.Equal(kgCert.PublicKey) {
		t.Errorf("serverkeygen: the key is not the certificate's")
	}

	// Each refusal above spent a token of this address's budget on the
	// provisioner: let it refill.
	clk.Advance(30 * time.Second)

	// Re-enrolment with the current certificate, then past expiry within
	// and beyond the 48h grace.
	re := tESTClient(in, "fleet")
	re.Certificates, re.PrivateKey = []*x509.Certificate{cert}, key
	renewed, err := re.Reenroll(ctx, tESTCSR(t, key, id, id))
	if err != nil {
		t.Fatalf("reenroll: %v", err)
	}
	re.Certificates = []*x509.Certificate{renewed} // the replaced one re-enrols no more
	if _, err := re.Reenroll(ctx, tESTCSR(t, key, id, id, "extra.devices.example.com")); tESTStatus(err) != http.StatusForbidden {
		t.Errorf("reenroll with other SANs: %v, want 403", err)
	}
	if _, err := dev.Reenroll(ctx, tESTCSR(t, key, "dev-0004.devices.example.com", "dev-0004.devices.example.com")); tESTStatus(err) != http.StatusUnauthorized {
		t.Errorf("reenroll with an IDevID: %v, want 401", err)
	}
	clk.Advance(3 * time.Hour) // expired 2h ago: within the grace
	if _, err := re.Reenroll(ctx, tESTCSR(t, key, id, id)); err != nil {
		t.Errorf("reenroll 2h after expiry (grace 48h): %v", err)
	}
	clk.Advance(72 * time.Hour) // beyond the grace
	if _, err := re.Reenroll(ctx, tESTCSR(t, key, id, id)); tESTStatus(err) != http.StatusUnauthorized || !strings.Contains(err.Error(), "grace") {
		t.Errorf("reenroll beyond the grace: %v, want 401 naming the grace", err)
	}

	// The inventory names the provisioner as requester; the audit log has
	// the secret's creation and use and the refusals.
	var list apitypes.CertificateList
	in.must(http.StatusOK, "GET", "/api/v1/certificates?limit=1000", nil, &list)
	est := 0
	for _, c := range list.Certificates {
		if c.Requester == "est:fleet" {
			est++
		}
	}
	if est != 6 { // secret, race winner, IDevID, serverkeygen, two re-enrolments
		t.Errorf("%d certificates with requester est:fleet, want 6", est)
	}
	var b bytes.Buffer
	r := in.raw("GET", "/api/v1/audit/events", in.bearer(), nil)
	b.Write(r.body)
	for _, action := range []string{"est.provisioner.create", "est.secret.create", "est.secret.use", "est.enroll"} {
		if !strings.Contains(b.String(), `"action":"`+action+`"`) {
			t.Errorf("no %s audit event", action)
		}
	}
	if strings.Contains(b.String(), sec.Secret) {
		t.Error("the audit log holds an enrolment secret")
	}
}

package app

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smallstep/pkcs7"
	smscep "github.com/smallstep/scep"
	"github.com/smallstep/scep/x509util"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/profile"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// tSCEPDevice is a device enrolling with the smallstep/scep library's
// client side: its key and the self-signed certificate it signs with.
type tSCEPDevice struct {
	t    *testing.T
	in   *tInstance
	prov string
	key  *rsa.PrivateKey
	self *x509.Certificate
	ra   *x509.Certificate
	// txID is the transaction of the last request.
	txID smscep.TransactionID
	// sans are DNS names the next CSRs ask for besides the common name.
	sans []string
}

// tRSAKey returns an RSA-2048 key no other call of this test returned.
// Tests share them: the nth key a test asks for is the nth of
// tRSAKeyList, so each test's devices have keys of their own while the
// tests, each against a server of its own, reuse one set (generating a
// key for every device was 7 % of this package's CPU).
func tRSAKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	n := tRSAKeyList.nextFor(t)
	return tRSAKeyList.get(t, n)
}

var tRSAKeyList = &tKeyList{next: map[*testing.T]int{}}

// tKeyList is tRSAKey's list, each key generated on first use.
type tKeyList struct {
	mu   sync.Mutex
	keys []*tLazyKey
	next map[*testing.T]int // the index of each running test's next key
}

type tLazyKey struct {
	once sync.Once
	key  *rsa.PrivateKey
	err  error
}

// nextFor returns the index of t's next key.
func (l *tKeyList) nextFor(t *testing.T) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, seen := l.next[t]
	if !seen {
		t.Cleanup(func() {
			l.mu.Lock()
			delete(l.next, t)
			l.mu.Unlock()
		})
	}
	l.next[t] = n + 1
	for len(l.keys) <= n {
		l.keys = append(l.keys, &tLazyKey{})
	}
	return n
}

// get returns key n, generating it (outside the list's lock) if needed.
func (l *tKeyList) get(t *testing.T, n int) *rsa.PrivateKey {
	t.Helper()
	l.mu.Lock()
	k := l.keys[n]
	l.mu.Unlock()
	k.once.Do(func() { k.key, k.err = rsa.GenerateKey(rand.Reader, 2048) })
	if k.err != nil {
		t.Fatal(k.err)
	}
	return k.key
}

func tSCEPSelfSigned(t *testing.T, key *rsa.PrivateKey, cn string) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

func (in *tInstance) scepURL(prov string) string {
	return in.l.HTTPURL + "/scep/" + url.PathEscape(prov)
}

// scepGet sends a GET operation and returns status and body.
func (in *tInstance) scepGet(prov, op string) (int, []byte) {
	in.t.Helper()
	resp, err := http.Get(in.scepURL(prov) + "?operation=" + op)
	if err != nil {
		in.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// scepPost sends a PKIOperation and returns status and body.
func (in *tInstance) scepPost(prov string, body []byte) (int, []byte) {
	in.t.Helper()
	resp, err := http.Post(in.scepURL(prov)+"?operation=PKIOperation", "application/x-pki-message", bytes.NewReader(body))
	if err != nil {
		in.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func tNewSCEPDevice(t *testing.T, in *tInstance, prov string) *tSCEPDevice {
	t.Helper()
	st, der := in.scepGet(prov, "GetCACert")
	if st != http.StatusOK {
		t.Fatalf("GetCACert: %d %s", st, der)
	}
	certs, err := smscep.CACerts(der)
	if err != nil || len(certs) < 2 {
		t.Fatalf("GetCACert: %d certificates, %v", len(certs), err)
	}
	key := tRSAKey(t)
	return &tSCEPDevice{t: t, in: in, prov: prov, key: key, self: tSCEPSelfSigned(t, key, "device"), ra: certs[0]}
}

// request sends a PKCSReq (or, with signer set, a RenewalReq signed by
// it) for a new CSR with challenge, and returns the parsed CertRep.
func (d *tSCEPDevice) request(cn, challenge string, signer *x509.Certificate, signerKey *rsa.PrivateKey) *smscep.PKIMessage {
	d.t.Helper()
	tmpl := &smscep.PKIMessage{MessageType: smscep.PKCSReq, Recipients: []*x509.Certificate{d.ra}, SignerKey: d.key, SignerCert: d.self}
	if signer != nil {
		tmpl.MessageType, tmpl.SignerCert, tmpl.SignerKey = smscep.RenewalReq, signer, signerKey
	}
	return d.send(d.build(cn, challenge, tmpl), tmpl.SignerCert, tmpl.SignerKey.(*rsa.PrivateKey))
}

// rawRequest is a PKCSReq's DER, not sent.
func (d *tSCEPDevice) rawRequest(cn, challenge string) []byte {
	d.t.Helper()
	return d.build(cn, challenge, &smscep.PKIMessage{MessageType: smscep.PKCSReq, Recipients: []*x509.Certificate{d.ra}, SignerKey: d.key, SignerCert: d.self})
}

// build makes the PKIMessage tmpl describes for a new CSR of the
// device's key, and remembers its transaction.
func (d *tSCEPDevice) build(cn, challenge string, tmpl *smscep.PKIMessage) []byte {
	d.t.Helper()
	csrDER, err := x509util.CreateCertificateRequest(rand.Reader, &x509util.CertificateRequest{
		CertificateRequest: x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}, DNSNames: d.sans}, ChallengePassword: challenge,
	}, d.key)
	if err != nil {
		d.t.Fatal(err)
	}
	csr, _ := x509.ParseCertificateRequest(csrDER)
	msg, err := smscep.NewCSRRequest(csr, tmpl)
	if err != nil {
		d.t.Fatal(err)
	}
	d.txID = msg.TransactionID
	return msg.Raw
}

// send posts a PKIMessage and parses the CertRep, decrypting a success
// with the signer's key.
func (d *tSCEPDevice) send(raw []byte, signer *x509.Certificate, key *rsa.PrivateKey) *smscep.PKIMessage {
	d.t.Helper()
	st, body := d.in.scepPost(d.prov, raw)
	if st != http.StatusOK {
		d.t.Fatalf("PKIOperation: status %d: %s", st, body)
	}
	rep, err := smscep.ParsePKIMessage(body, smscep.WithCACerts([]*x509.Certificate{d.ra}))
	if err != nil {
		d.t.Fatalf("CertRep: %v", err)
	}
	if rep.PKIStatus == smscep.SUCCESS {
		if err := rep.DecryptPKIEnvelope(signer, key); err != nil {
			d.t.Fatalf("CertRep envelope: %v", err)
		}
	}
	return rep
}

// poll sends GetCertInitial (CertPoll) for the last transaction; the
// library builds no such message, so it is made here as RFC 8894 §3.3.3
// says: the same transactionID, signed with the same key.
func (d *tSCEPDevice) poll() *smscep.PKIMessage {
	d.t.Helper()
	ias, err := asn1Marshal(d.ra.RawIssuer, d.self.RawSubject)
	if err != nil {
		d.t.Fatal(err)
	}
	e7, err := pkcs7.Encrypt(ias, []*x509.Certificate{d.ra})
	if err != nil {
		d.t.Fatal(err)
	}
	sd, err := pkcs7.NewSignedData(e7)
	if err != nil {
		d.t.Fatal(err)
	}
	nonce := make([]byte, 16)
	rand.Read(nonce)
	oid := func(n int) []int { return []int{2, 16, 840, 1, 113733, 1, 9, n} }
	err = sd.AddSigner(d.self, d.key, pkcs7.SignerInfoConfig{ExtraSignedAttributes: []pkcs7.Attribute{
		{Type: oid(7), Value: string(d.txID)}, {Type: oid(2), Value: "20"}, {Type: oid(5), Value: nonce},
	}})
	if err != nil {
		d.t.Fatal(err)
	}
	raw, err := sd.Finish()
	if err != nil {
		d.t.Fatal(err)
	}
	return d.send(raw, d.self, d.key)
}

// asn1Marshal is IssuerAndSubject (RFC 8894 §3.3.3): two names.
func asn1Marshal(issuer, subject []byte) ([]byte, error) {
	var b bytes.Buffer
	body := append(append([]byte{}, issuer...), subject...)
	b.WriteByte(0x30)
	if len(body) < 128 {
		b.WriteByte(byte(len(body)))
	} else {
		b.Write([]byte{0x82, byte(len(body) >> 8), byte(len(body))})
	}
	b.Write(body)
	return b.Bytes(), nil
}

func tWantSCEPFailure(t *testing.T, rep *smscep.PKIMessage, what string) {
	t.Helper()
	if rep.PKIStatus != smscep.FAILURE || rep.FailInfo != smscep.BadRequest {
		t.Errorf("%s: status %s failInfo %q, want FAILURE badRequest", what, rep.PKIStatus, string(rep.FailInfo))
	}
}

func (in *tInstance) scepChallenge(prov, identity string) string {
	in.t.Helper()
	var c apitypes.SCEPChallenge
	in.must(http.StatusCreated, "POST", "/api/v1/scep/provisioners/"+prov+"/challenges", apitypes.CreateSCEPChallengeRequest{Identity: identity}, &c)
	return c.Challenge
}

// auditActions counts the audit events with each action and outcome
// ("scep.challenge.reuse/denied") since start.
func (in *tInstance) auditActions(start time.Time) map[string]int {
	in.t.Helper()
	out := map[string]int{}
	err := in.app.store.EachAuditEventBetween(context.Background(), start, time.Now().Add(time.Minute), func(e *audit.Event) error {
		out[e.Action+"/"+string(e.Outcome)]++
		return nil
	})
	if err != nil {
		in.t.Fatal(err)
	}
	return out
}

// lastSCEPRefusal is the reason of the newest SCEP refusal audited.
func (in *tInstance) lastSCEPRefusal() string {
	in.t.Helper()
	var reason string
	err := in.app.store.EachAuditEventBetween(context.Background(), time.Now().Add(-time.Hour), time.Now().Add(time.Minute), func(e *audit.Event) error {
		if strings.HasPrefix(e.Action, "scep.") && e.Outcome == audit.Denied {
			reason = string(e.Details)
		}
		return nil
	})
	if err != nil {
		in.t.Fatal(err)
	}
	return reason
}

// TestSCEPEnrolmentWithLibraryClient drives SCEP with the smallstep/scep
// client side, on SQLite and PostgreSQL: dynamic and static challenges,
// a reused, wrong or raced challenge, unknown provisioners and CAs, bad
// input, renewal by the current certificate, and a request held for
// approval polled with GetCertInitial until issued.
func TestSCEPEnrolmentWithLibraryClient(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			in := tNewServer(t, be.dbURL(t))
			start := time.Now().Add(-time.Second)
			var prov apitypes.SCEPProvisioner
			in.must(http.StatusCreated, "POST", "/api/v1/scep/provisioners", apitypes.CreateSCEPProvisionerRequest{
				Name: "mdm", CA: "issuing", Profile: "client_auth", Challenge: "dynamic"}, &prov)
			if prov.Principal != "scep:mdm" || len(prov.RASHA256) != 64 {
				t.Fatalf("created %+v", prov)
			}
			in.must(http.StatusCreated, "POST", "/api/v1/scep/provisioners", apitypes.CreateSCEPProvisionerRequest{
				Name: "kiosk", CA: "issuing", Profile: "client_auth", Challenge: "static", StaticChallenge: "kiosk-secret-0123456789"}, nil)
			// An unknown CA, a short static secret, a taken name: refused.
			for _, bad := range []struct {
				req  apitypes.CreateSCEPProvisionerRequest
				want int
			}{
				{apitypes.CreateSCEPProvisionerRequest{Name: "x", CA: "no-such-ca", Profile: "client_auth", Challenge: "dynamic"}, http.StatusNotFound},
				{apitypes.CreateSCEPProvisionerRequest{Name: "x", CA: "issuing", Profile: "client_auth", Challenge: "static", StaticChallenge: "short"}, http.StatusBadRequest},
				{apitypes.CreateSCEPProvisionerRequest{Name: "mdm", CA: "issuing", Profile: "client_auth", Challenge: "dynamic"}, http.StatusConflict},
			} {
				if r := in.call("POST", "/api/v1/scep/provisioners", bad.req); r.status != bad.want {
					t.Errorf("create %+v: status %d, want %d: %s", bad.req, r.status, bad.want, tTrim(r.body))
				}
			}

			if st, caps := in.scepGet("mdm", "GetCACaps"); st != http.StatusOK || !strings.Contains(string(caps), "POSTPKIOperation") {
				t.Fatalf("GetCACaps: %d %q", st, caps)
			}
			dev := tNewSCEPDevice(t, in, "mdm")
			_, caDER := in.scepGet("mdm", "GetCACert")
			certs, _ := smscep.CACerts(caDER)
			if err := certs[0].CheckSignatureFrom(certs[1]); err != nil {
				t.Fatalf("the RA certificate is not issued by the provisioner's CA: %v", err)
			}
			before := in.certCount()

			// Dynamic challenge: enrols once.
			ch := in.scepChallenge("mdm", "")
			rep := dev.request("laptop-1", ch, nil, nil)
			if rep.PKIStatus != smscep.SUCCESS || rep.Certificate == nil || rep.Certificate.Subject.CommonName != "laptop-1" {
				t.Fatalf("enrol: status %s failInfo %s: %s", rep.PKIStatus, rep.FailInfo, in.lastSCEPRefusal())
			}
			got := tGetCert(t, in, strings.ToLower(rep.Certificate.SerialNumber.Text(16)))
			if got.Requester != "scep:mdm" || got.Profile != "client_auth" {
				t.Errorf("inventory: requester %q profile %q, want scep:mdm client_auth", got.Requester, got.Profile)
			}
			// A device certificate is no API credential of scep:mdm.
			if cred, err := in.app.store.ClientCredential(context.Background(), got.Serial); err == nil && cred.PrincipalID != "" {
				t.Errorf("SCEP certificate authenticates as principal %q, want none", cred.PrincipalID)
			}
			// Reused by another device: refused and audited.
			tWantSCEPFailure(t, tNewSCEPDevice(t, in, "mdm").request("laptop-2", ch, nil, nil), "reused challenge")
			// Wrong, or another provisioner's: refused.
			tWantSCEPFailure(t, tNewSCEPDevice(t, in, "mdm").request("laptop-3", "not-a-challenge", nil, nil), "wrong challenge")
			// An envelope the RA cannot open is answered as a wrong
			// challenge is (no padding oracle on the RA key).
			other := tNewSCEPDevice(t, in, "mdm")
			k := tRSAKey(t)
			other.ra = tSCEPSelfSigned(t, k, "not the RA")
			st, body := in.scepPost("mdm", other.rawRequest("laptop-3", in.scepChallenge("mdm", "")))
			if st != http.StatusOK {
				t.Fatalf("undecryptable envelope: status %d %s", st, body)
			}
			if rep, err := smscep.ParsePKIMessage(body); err != nil || rep.PKIStatus != smscep.FAILURE || rep.FailInfo != smscep.BadRequest {
				t.Errorf("undecryptable envelope: %+v %v, want FAILURE badRequest", rep, err)
			}
			tWantSCEPFailure(t, tNewSCEPDevice(t, in, "kiosk").request("laptop-3", in.scepChallenge("mdm", ""), nil, nil), "dynamic challenge on a static provisioner")
			// A challenge for one identity does not enrol another, and is not spent by trying.
			idc := in.scepChallenge("mdm", "laptop-9")
			tWantSCEPFailure(t, tNewSCEPDevice(t, in, "mdm").request("laptop-8", idc, nil, nil), "challenge for another identity")
			if rep := tNewSCEPDevice(t, in, "mdm").request("laptop-9", idc, nil, nil); rep.PKIStatus != smscep.SUCCESS {
				t.Errorf("challenge for laptop-9 after a refused attempt: %s %s", rep.PKIStatus, rep.FailInfo)
			}
			// Static challenge: right and wrong.
			if rep := tNewSCEPDevice(t, in, "kiosk").request("kiosk-1", "kiosk-secret-0123456789", nil, nil); rep.PKIStatus != smscep.SUCCESS {
				t.Errorf("static challenge: %s %s", rep.PKIStatus, rep.FailInfo)
			}
			tWantSCEPFailure(t, tNewSCEPDevice(t, in, "kiosk").request("kiosk-2", "kiosk-secret-012345678X", nil, nil), "wrong static challenge")
			if n := in.certCount(); n != before+3 {
				t.Errorf("inventory grew by %d, want 3 (refused requests store nothing)", n-before)
			}

			// Renewal signed by the current certificate; not by a stranger's.
			renewed := dev.request("laptop-1", "", rep.Certificate, dev.key)
			if renewed.PKIStatus != smscep.SUCCESS {
				t.Fatalf("RenewalReq: %s %s: %s", renewed.PKIStatus, renewed.FailInfo, in.lastSCEPRefusal())
			}
			tWantSCEPFailure(t, dev.request("laptop-2", "", rep.Certificate, dev.key), "RenewalReq for another common name")
			stranger := tRSAKey(t)
			tWantSCEPFailure(t, dev.request("laptop-1", "", tSCEPSelfSigned(t, stranger, "laptop-1"), stranger), "RenewalReq signed by an unknown certificate")

			// A challenge raced by 8 devices enrols exactly one.
			raced := in.scepChallenge("mdm", "")
			var wg sync.WaitGroup
			var mu sync.Mutex
			wins := 0
			for i := range 8 {
				d := tNewSCEPDevice(t, in, "mdm")
				wg.Add(1)
				go func() {
					defer wg.Done()
					if d.request("race-"+string(rune('a'+i)), raced, nil, nil).PKIStatus == smscep.SUCCESS {
						mu.Lock()
						wins++
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			if wins != 1 {
				t.Errorf("a one-time challenge raced by 8 devices enrolled %d, want 1", wins)
			}
			acts := in.auditActions(start)
			if acts["scep.challenge.reuse/denied"] != 8 || acts["scep.enrol.refuse/denied"] < 2 || acts["scep.provisioner.create/success"] != 2 ||
				acts["scep.challenge.use/success"] != 4 { // laptop-1, laptop-8 (released), laptop-9, the race
				t.Errorf("audit: %v", acts)
			}

			// Bad input: clear 4xx, nothing stored.
			before = in.certCount()
			for _, c := range []struct {
				name string
				do   func() (int, []byte)
				want int
			}{
				{"garbage body", func() (int, []byte) { return in.scepPost("mdm", []byte("not pkcs7")) }, http.StatusBadRequest},
				{"empty body", func() (int, []byte) { return in.scepPost("mdm", nil) }, http.StatusBadRequest},
				{"oversized body", func() (int, []byte) { return in.scepPost("mdm", make([]byte, 100<<10)) }, http.StatusRequestEntityTooLarge},
				{"base64 garbage", func() (int, []byte) { return in.scepGet("mdm", "PKIOperation&message=%25%25notbase64!!") }, http.StatusBadRequest},
				{"base64 of garbage", func() (int, []byte) {
					return in.scepGet("mdm", "PKIOperation&message="+url.QueryEscape(base64.StdEncoding.EncodeToString([]byte{0x30, 0x03, 1, 2, 3})))
				}, http.StatusBadRequest},
				{"unknown operation", func() (int, []byte) { return in.scepGet("mdm", "GetNothing") }, http.StatusBadRequest},
				{"unknown provisioner", func() (int, []byte) { return in.scepGet("nope", "GetCACert") }, http.StatusNotFound},
				{"unknown provisioner PKIOperation", func() (int, []byte) { return in.scepPost("nope", []byte("x")) }, http.StatusNotFound},
			} {
				if st, body := c.do(); st != c.want {
					t.Errorf("%s: status %d, want %d: %s", c.name, st, c.want, body)
				}
			}
			if n := in.certCount(); n != before {
				t.Errorf("bad input stored %d certificates", n-before)
			}

			// Approval: PENDING, polled with GetCertInitial until issued.
			p, _ := profile.Builtin("client_auth")
			p.Name, p.Builtin, p.RequireApproval = "client_approved", false, true
			if err := in.app.profiles.Create(context.Background(), authz.System(), p); err != nil {
				t.Fatal(err)
			}
			in.must(http.StatusOK, "PATCH", "/api/v1/scep/provisioners/mdm", apitypes.UpdateSCEPProvisionerRequest{Profile: &p.Name}, nil)
			held := tNewSCEPDevice(t, in, "mdm")
			if rep := held.request("held-1", in.scepChallenge("mdm", ""), nil, nil); rep.PKIStatus != smscep.PENDING {
				t.Fatalf("under require_approval: %s %s, want PENDING", rep.PKIStatus, rep.FailInfo)
			}
			if rep := held.poll(); rep.PKIStatus != smscep.PENDING {
				t.Fatalf("GetCertInitial before approval: %s %s", rep.PKIStatus, rep.FailInfo)
			}
			var reqs apitypes.ApprovalRequestList
			in.must(http.StatusOK, "GET", "/api/v1/requests?status=pending", nil, &reqs)
			if len(reqs.Requests) != 1 || reqs.Requests[0].Requester != "scep:mdm" {
				t.Fatalf("pending requests: %+v", reqs.Requests)
			}
			in.must(http.StatusOK, "POST", "/api/v1/requests/"+reqs.Requests[0].ID+"/approve", apitypes.Decision{Comment: "ok"}, nil)
			rep = held.poll()
			if rep.PKIStatus != smscep.SUCCESS || rep.Certificate.Subject.CommonName != "held-1" {
				t.Fatalf("GetCertInitial after approval: %s %s", rep.PKIStatus, rep.FailInfo)
			}
			// Another key cannot collect it.
			thief := tNewSCEPDevice(t, in, "mdm")
			thief.txID = held.txID
			if rep := thief.poll(); rep.PKIStatus != smscep.FAILURE {
				t.Errorf("GetCertInitial with another key: %s, want FAILURE", rep.PKIStatus)
			}

			// Disabled: 403; delete needs disabled first.
			if r := in.call("DELETE", "/api/v1/scep/provisioners/mdm", nil); r.status != http.StatusBadRequest {
				t.Errorf("delete enabled: %d %s", r.status, tTrim(r.body))
			}
			in.must(http.StatusOK, "POST", "/api/v1/scep/provisioners/mdm/disable", nil, nil)
			if st, _ := in.scepGet("mdm", "GetCACert"); st != http.StatusForbidden {
				t.Errorf("GetCACert on a disabled provisioner: %d, want 403", st)
			}
			in.must(http.StatusOK, "GET", "/api/v1/scep/provisioners/mdm", nil, &prov)
			in.must(http.StatusOK, "DELETE", "/api/v1/scep/provisioners/mdm", nil, nil)
			if st, _ := in.scepGet("mdm", "GetCACert"); st != http.StatusNotFound {
				t.Errorf("GetCACert on a deleted provisioner: %d, want 404", st)
			}
			// Its RA, which nothing serves now, is revoked; the
			// certificates it issued are not.
			if ra := tGetCert(t, in, prov.RASerial); ra.Revocation == nil || ra.Revocation.Reason != "cessation_of_operation" {
				t.Errorf("the deleted provisioner's RA certificate: revocation %+v, want cessation_of_operation", ra.Revocation)
			}
			if c := tGetCert(t, in, got.Serial); c.Revocation != nil {
				t.Errorf("a certificate the deleted provisioner issued was revoked: %+v", c.Revocation)
			}
		})
	}
}

package app

import (
	"context"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/store"
	"github.com/certwright/certwright/internal/store/postgres"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// tReplicas starts two replicas, A and B, of one instance on one fresh
// PostgreSQL schema, skipping t without PostgreSQL (the bus is
// PostgreSQL's; SQLite has one process).
func tReplicas(t *testing.T) (a, b *tInstance) {
	t.Helper()
	cfg := tPGConfig(t)
	clk := clock.Real{}
	tInit(t, cfg, clk)
	return tStart(t, cfg, clk), tStart(t, cfg, clk)
}

// tIssued issues a certificate through in and returns it with its issuer.
func tIssued(t *testing.T, in *tInstance, name string) (leaf, issuer *x509.Certificate) {
	t.Helper()
	out := in.sign(tCSR(t, tECKey(t, elliptic.P256()), name))
	var certs []*x509.Certificate
	rest := []byte(out.CertificatePEM + out.ChainPEM)
	for {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c)
	}
	if len(certs) < 2 {
		t.Fatalf("chain of %d certificates", len(certs))
	}
	return certs[0], certs[1]
}

// tWaitOCSPRevoked polls in's OCSP responder about leaf until it answers
// revoked, and returns how long that took, failing past limit.
func tWaitOCSPRevoked(t *testing.T, in *tInstance, leaf, issuer *x509.Certificate, since time.Time, limit time.Duration) time.Duration {
	t.Helper()
	for {
		if tOCSPStatus(t, in, leaf, issuer) == ocsp.Revoked {
			return time.Since(since)
		}
		if time.Since(since) > limit {
			t.Fatalf("replica B still answers %s not revoked %s after the revocation through A", pki.SerialHex(leaf.SerialNumber), limit)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func tRevokeThrough(t *testing.T, in *tInstance, leaf *x509.Certificate) time.Time {
	t.Helper()
	in.must(http.StatusOK, "POST", "/api/v1/certificates/"+pki.SerialHex(leaf.SerialNumber)+"/revoke",
		apitypes.RevokeRequest{Reason: "key_compromise"}, nil)
	return time.Now()
}

// TestReplicaRevocationReachesOCSP: a certificate revoked through replica
// A is answered revoked by replica B's OCSP responder, which had a "good"
// answer cached, within a second (the notification bus), measured over 50
// revocations.
func TestReplicaRevocationReachesOCSP(t *testing.T) {
	t.Parallel()
	a, b := tReplicas(t)
	const n = 50
	lat := make([]time.Duration, 0, n)
	for i := range n {
		leaf, issuer := tIssued(t, a, fmt.Sprintf("r%d.example.com", i))
		if st := tOCSPStatus(t, b, leaf, issuer); st != ocsp.Good {
			t.Fatalf("before the revocation B answers %d, want good", st)
		}
		at := tRevokeThrough(t, a, leaf)
		lat = append(lat, tWaitOCSPRevoked(t, b, leaf, issuer, at, time.Second))
	}
	slices.Sort(lat)
	t.Logf("revocation through A to revoked on B's OCSP, %d revocations: p50 %s, p99 %s, max %s",
		n, lat[n/2], lat[n*99/100], lat[n-1])
}

// TestReplicaRevocationAfterLostListener: with B's listening connection
// killed just before the revocation (so the notification may well be
// lost to it), B answers revoked within the catch-up bound: it reconnects
// and asks what it missed.
func TestReplicaRevocationAfterLostListener(t *testing.T) {
	t.Parallel()
	a, b := tReplicas(t)
	raw, err := postgres.Open(context.Background(), a.cfg.DB)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for i := range 3 {
		leaf, issuer := tIssued(t, a, fmt.Sprintf("lost%d.example.com", i))
		if st := tOCSPStatus(t, b, leaf, issuer); st != ocsp.Good {
			t.Fatalf("before the revocation B answers %d, want good", st)
		}
		pid := b.app.store.ListenerPID()
		var killed bool
		if err := raw.QueryRow("SELECT pg_terminate_backend($1)", int64(pid)).Scan(&killed); err != nil || !killed {
			t.Fatalf("pg_terminate_backend(%d) = %v, %v", pid, killed, err)
		}
		at := tRevokeThrough(t, a, leaf)
		bound := store.CatchUpInterval + 2*time.Second
		took := tWaitOCSPRevoked(t, b, leaf, issuer, at, bound)
		t.Logf("listener killed: revoked on B after %s (bound %s)", took, bound)
		// The listener is back (with a new connection) for the next round.
		for b.app.store.ListenerPID() == pid {
			if time.Since(at) > 10*time.Second {
				t.Fatal("B's listener did not reconnect")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// TestReplicaTokenRevocation: a token revoked through A is refused by B
// at once, well before the token cache's one-second age would drop it.
func TestReplicaTokenRevocation(t *testing.T) {
	t.Parallel()
	a, b := tReplicas(t)
	var res apitypes.CreatePrincipalResult
	a.must(http.StatusCreated, "POST", "/api/v1/principals",
		apitypes.CreatePrincipalRequest{Name: "bot", Kind: "machine", Role: "admin", Token: true}, &res)
	bot := "Bearer " + res.Token.Token
	// B authenticates the token now and keeps it in its cache.
	for range 3 {
		if r := b.raw("GET", "/api/v1/cas", bot, nil); r.status != http.StatusOK {
			t.Fatalf("B refuses the new token: %d %s", r.status, tTrim(r.body))
		}
	}
	a.must(http.StatusOK, "POST", "/api/v1/tokens/"+res.Token.Record.ID+"/revoke", nil, nil)
	at := time.Now()
	for {
		r := b.raw("GET", "/api/v1/cas", bot, nil)
		if r.status == http.StatusUnauthorized {
			break
		}
		if r.status != http.StatusOK {
			t.Fatalf("B: %d %s", r.status, tTrim(r.body))
		}
		time.Sleep(2 * time.Millisecond)
	}
	took := time.Since(at)
	t.Logf("token revoked through A refused by B after %s", took)
	if took > 500*time.Millisecond {
		t.Errorf("B refused the revoked token after %s; want well under the cache's 1s", took)
	}
}

// TestReplicaSharedCRL: after a revocation through A, both replicas serve
// the same CRL, listing it, and each CRL number was signed once (one
// crl.sign audit event per number).
func TestReplicaSharedCRL(t *testing.T) {
	t.Parallel()
	a, b := tReplicas(t)
	leaf, issuer := tIssued(t, a, "crl.example.com")
	caID := a.tCAID(t, issuer)
	before := tCRL(t, b, caID)
	at := tRevokeThrough(t, a, leaf)
	serial := pki.SerialHex(leaf.SerialNumber)
	for {
		ca, cb := tCRL(t, a, caID), tCRL(t, b, caID)
		if ca.Number.Cmp(cb.Number) == 0 && tCRLLists(ca, serial) && tCRLLists(cb, serial) {
			if ca.Number.Int64() <= before.Number.Int64() {
				t.Fatalf("CRL number %d after %d", ca.Number, before.Number)
			}
			t.Logf("both replicas serve CRL %d listing the revocation %s after it", ca.Number, time.Since(at))
			break
		}
		if time.Since(at) > 5*time.Second {
			t.Fatalf("5s after the revocation A serves CRL %d (lists it: %v), B CRL %d (lists it: %v)",
				ca.Number, tCRLLists(ca, serial), cb.Number, tCRLLists(cb, serial))
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Let any duplicate build that was under way land before counting.
	time.Sleep(time.Second)
	signed := map[int64]int{}
	for _, ev := range tAuditEvents(t, a, 0) {
		if ev.Action != "crl.sign" || ev.Target != caID {
			continue
		}
		var d struct {
			Number int64 `json:"number"`
		}
		if err := json.Unmarshal(ev.Details, &d); err != nil {
			t.Fatal(err)
		}
		signed[d.Number]++
	}
	if len(signed) == 0 {
		t.Fatal("no crl.sign events")
	}
	for n, c := range signed {
		if c != 1 {
			t.Errorf("CRL number %d signed %d times", n, c)
		}
	}
}

// tCAID returns the ID of in's CA whose certificate is cert.
func (in *tInstance) tCAID(t *testing.T, cert *x509.Certificate) string {
	t.Helper()
	cas, err := in.app.store.ListCAs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cas {
		if string(c.CertDER) == string(cert.Raw) {
			return c.ID
		}
	}
	t.Fatal("no CA has the issuer's certificate")
	return ""
}

// tCRL fetches caID's CRL from in's plain-HTTP listener.
func tCRL(t *testing.T, in *tInstance, caID string) *x509.RevocationList {
	t.Helper()
	resp, err := http.Get("http://" + in.httpAddr() + "/crl/" + caID + ".crl")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	der, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET CRL of %s: %d, %v", caID, resp.StatusCode, err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	return crl
}

func tCRLLists(crl *x509.RevocationList, serial string) bool {
	for _, e := range crl.RevokedCertificateEntries {
		if strings.EqualFold(pki.SerialHex(e.SerialNumber), serial) {
			return true
		}
	}
	return false
}

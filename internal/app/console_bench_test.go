package app

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/lifecycle"
	"github.com/certwright/certwright/internal/pki"
)

// seedInventory inserts n certificates of caID as an inventory looks after
// years of use: expiries spread from 60 days ago to two years ahead, one
// in twenty revoked, one in ten renewed, two profiles, a DNS name each
// (in certificate_names too, for the name filter), fifty owners, one in
// ten from ACME (tagged "acme", requested by one of seven accounts), one
// in a hundred tagged "pci", a fingerprint each, each row holding the DER
// of one real certificate (so the compliance summary parses and lints
// every row as it would a real one). It writes rows directly, in batches,
// so that a million take a minute, not hours.
func seedInventory(b *testing.B, a *App, caID string, n int) (serials []string) {
	b.Helper()
	db, pg := rawStore(b, a)
	ctx := context.Background()
	now := time.Now().UTC()
	timeArg, ph := rawArgs(pg)
	der := benchLeafDER(b, now)
	serials = make([]string, n)
	for i := range serials {
		s, err := pki.NewSerialAt(nil, now.Add(-time.Duration(n-i)*time.Second))
		if err != nil {
			b.Fatal(err)
		}
		serials[i] = pki.SerialHex(s)
	}
	const batch = 400
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	for start := 0; start < n; start += batch {
		end := min(start+batch, n)
		var q, names strings.Builder
		var args, nameArgs []any
		q.WriteString(`INSERT INTO certificates (serial, ca_id, profile, requester, subject, sans, not_before, not_after,
			key_algorithm, key_bits, signature_algorithm, status, fingerprint, spki_sha256, tags, lint_warnings, der, created_at, renewed_by, owner) VALUES `)
		names.WriteString(`INSERT INTO certificate_names (kind, value, serial) VALUES `)
		for i := start; i < end; i++ {
			if i > start {
				q.WriteString(",")
				names.WriteString(",")
			}
			name := benchName(i)
			profile, status, renewed := "web_server", "valid", ""
			if i%3 == 0 {
				profile = "internal_service"
			}
			if i%20 == 7 {
				status = "revoked"
			}
			if i%10 == 3 {
				renewed = serials[(i+1)%n]
			}
			notAfter := now.Add(time.Duration(i%790-60) * 24 * time.Hour)
			requester, tags := "bench", []string{}
			if i%10 == 0 {
				requester, tags = "acme:bench/acct-"+strconv.Itoa(i%7), append(tags, "acme")
			}
			if i%100 == 1 {
				tags = append(tags, "pci")
			}
			tagsJSON, _ := json.Marshal(tags)
			k := len(args)
			fmt.Fprintf(&q, "(%s,%s,%s,%s,%s,%s,%s,%s,'ECDSA',256,'ECDSA-SHA256',%s,%s,'',%s,'[]',%s,%s,%s,%s)",
				ph(k+1), ph(k+2), ph(k+3), ph(k+4), ph(k+5), ph(k+6), ph(k+7), ph(k+8), ph(k+9), ph(k+10), ph(k+11), ph(k+12), ph(k+13), ph(k+14), ph(k+15))
			args = append(args, serials[i], caID, profile, requester, "CN="+name, `["`+name+`"]`, timeArg(notAfter.Add(-90*24*time.Hour)),
				timeArg(notAfter), status, benchFingerprint(serials[i]), string(tagsJSON), der, timeArg(now), renewed, "team-"+strconv.Itoa(i%50))
			m := len(nameArgs)
			fmt.Fprintf(&names, "('san',%s,%s)", ph(m+1), ph(m+2))
			nameArgs = append(nameArgs, name, serials[i])
			for _, tag := range tags {
				m := len(nameArgs)
				fmt.Fprintf(&names, ",('tag',%s,%s)", ph(m+1), ph(m+2))
				nameArgs = append(nameArgs, tag, serials[i])
			}
		}
		if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
			b.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, names.String(), nameArgs...); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	// Statistics as a server keeps them: PostgreSQL's autovacuum would
	// analyse; on SQLite, sqlite.Optimize's bounded ANALYZE, without
	// sqlite_stat4 samples (which a full ANALYZE writes and no server
	// keeps: with them SQLite re-plans statements per value bound).
	stmts := []string{"VACUUM ANALYZE"}
	if !pg {
		// Rows written around the store are counted as the migrations
		// that added certificate_counts and issuance_counts count existing ones (on
		// PostgreSQL their triggers counted them).
		stmts = []string{"DELETE FROM certificate_counts", `INSERT INTO certificate_counts (ca_id, profile, status, renewed, expiry_day, n)
			SELECT ca_id, profile, status, renewed_by <> '', (not_after - ((not_after % 86400000000) + 86400000000) % 86400000000) / 86400000000, COUNT(*) FROM certificates GROUP BY 1, 2, 3, 4, 5`,
			"DELETE FROM issuance_counts", `INSERT INTO issuance_counts (day, ca_id, n)
			SELECT (created_at - ((created_at % 86400000000) + 86400000000) % 86400000000) / 86400000000, ca_id, COUNT(*) FROM certificates WHERE source = 'issued' GROUP BY 1, 2`,
			"PRAGMA analysis_limit=400", "ANALYZE", "DROP TABLE IF EXISTS sqlite_stat4"}
	}
	for _, q := range stmts {
		if _, err := db.ExecContext(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	return serials
}

// benchFingerprint is the seeded fingerprint of serial: any 64 hex
// digits, one per certificate.
func benchFingerprint(serial string) string {
	h := sha256.Sum256([]byte(serial))
	return hex.EncodeToString(h[:])
}

// benchName is the seeded name of the i-th certificate.
func benchName(i int) string { return fmt.Sprintf("host-%d.svc-%d.example.internal", i, i%97) }

// BenchmarkConsolePages renders each console page for a signed-in admin
// against an inventory of CERTWRIGHT_BENCH_CERTS certificates (default
// 1,000,000), through the whole HTTPS handler (session check included, the
// network not), and reports ms/page. The goal is under 200 ms a page.
// benchLeafDER is a TLS server certificate for a bench host, signed by a
// throwaway P-256 issuer.
func benchLeafDER(b *testing.B, now time.Time) []byte {
	b.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	ski, err := pki.SubjectKeyID(key.Public())
	if err != nil {
		b.Fatal(err)
	}
	issuer := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Bench Issuing CA"}, SubjectKeyId: ski}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "host.svc.example.internal"}, DNSNames: []string{"host.svc.example.internal"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(90 * 24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, AuthorityKeyId: ski,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, key.Public(), key)
	if err != nil {
		b.Fatal(err)
	}
	return der
}

func BenchmarkConsolePages(b *testing.B) {
	n := 1_000_000
	if s := os.Getenv("CERTWRIGHT_BENCH_CERTS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			b.Fatalf("CERTWRIGHT_BENCH_CERTS=%q: want a positive number", s)
		}
		n = v
	}
	for _, kind := range benchStores(b) {
		b.Run(kind, func(b *testing.B) {
			a := benchApp(b, kind)
			caID := issuingCA(b, a)
			serials := seedInventory(b, a, caID, n)
			h, err := a.Handler()
			if err != nil {
				b.Fatal(err)
			}
			token, err := os.ReadFile(filepath.Join(a.cfg.DataDir, TokenFile))
			if err != nil {
				b.Fatal(err)
			}
			const origin = "https://console.bench"
			req := func(method, path string, form url.Values, cookie string) *httptest.ResponseRecorder {
				var r *http.Request
				if form != nil {
					r = httptest.NewRequest(method, origin+path, strings.NewReader(form.Encode()))
					r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					r.Header.Set("Origin", origin)
				} else {
					r = httptest.NewRequest(method, origin+path, nil)
				}
				if cookie != "" {
					r.AddCookie(&http.Cookie{Name: "__Host-certwright", Value: cookie})
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				return w
			}
			login := req("POST", "/login", url.Values{"token": {strings.TrimSpace(string(token))}}, "")
			var cookie string
			for _, c := range login.Result().Cookies() {
				if c.Name == "__Host-certwright" {
					cookie = c.Value
				}
			}
			if login.Code != http.StatusSeeOther || cookie == "" {
				b.Fatalf("sign-in: %d", login.Code)
			}
			// The summary the compliance page shows, as its job builds it
			// (hourly, and when the server starts).
			start := time.Now()
			st, err := a.scheduler.RunJob(context.Background(), ComplianceJob)
			if err != nil || st.Outcome != lifecycle.OutcomeOK {
				b.Fatalf("compliance summary: %v %+v", err, st)
			}
			b.Logf("%s job over %d certificates: %s, %s wall", ComplianceJob, n, st.Detail, time.Since(start).Round(time.Millisecond))
			mid := serials[len(serials)/2]
			midName := benchName(len(serials) / 2)
			for _, p := range []struct{ name, path string }{
				{"overview", "/"},
				{"certificates", "/certificates"},
				{"certificates-expiring-30d", "/certificates?status=valid&current=1&within=30&sort=expiry"},
				{"certificates-by-name", "/certificates?name=host-" + strconv.Itoa(len(serials)/2) + ".svc-" + strconv.Itoa(len(serials)/2%97) + ".example.internal"},
				{"certificates-revoked-page-2", "/certificates?status=revoked&after=" + mid},
				{"certificates-by-name-sort", "/certificates?sort=name"},
				{"certificates-by-name-desc-middle", "/certificates?sort=name&dir=desc&after=" + url.QueryEscape(midName+"_"+mid)},
				{"certificates-by-issued-desc", "/certificates?sort=issued&dir=desc"},
				{"certificates-by-status-middle", "/certificates?sort=status&after=valid_" + mid},
				{"certificates-by-ca-desc", "/certificates?sort=ca&dir=desc"},
				{"certificates-by-profile-valid", "/certificates?sort=profile&status=valid"},
				{"certificates-fingerprint", "/certificates?name=" + benchFingerprint(mid)},
				{"certificates-owner", "/certificates?owner=team-7"},
				{"certificates-owner-by-expiry", "/certificates?owner=team-7&sort=expiry"},
				{"certificates-tag", "/certificates?tag=pci&sort=name"},
				{"certificates-requester", "/certificates?requester=acme:bench/acct-3"},
				{"certificates-source-acme", "/certificates?source=acme&sort=expiry&dir=desc"},
				{"certificates-source-imported", "/certificates?source=imported"},
				{"certificate", "/certificates/" + mid},
				{"audit", "/audit"},
				{"requests", "/requests"},
				{"cas", "/cas"},
				{"alerts", "/alerts"},
				{"acme", "/acme-provisioners"},
				{"access", "/access"},
				{"compliance", "/compliance"},
			} {
				b.Run(p.name, func(b *testing.B) {
					w := req("GET", p.path, nil, cookie)
					want := http.StatusOK
					if p.name == "certificates-fingerprint" {
						want = http.StatusSeeOther // to the certificate
						if loc := w.Header().Get("Location"); loc != "/certificates/"+mid {
							b.Fatalf("GET %s: to %q, want /certificates/%s", p.path, loc, mid)
						}
					}
					if w.Code != want {
						b.Fatalf("GET %s: %d %s", p.path, w.Code, w.Body.String())
					}
					// A page that lost the seeded rows would be fast for
					// the wrong reason.
					if p.name == "overview" && strings.Contains(w.Body.String(), `<span class="n">0</span> valid`) {
						b.Fatal("the overview counts no valid certificate")
					}
					if p.name == "compliance" && strings.Contains(w.Body.String(), `<span class="n">0</span> reported on`) {
						b.Fatal("the compliance summary reports on no certificate")
					}
					start := time.Now()
					for b.Loop() {
						if w := req("GET", p.path, nil, cookie); w.Code != want {
							b.Fatalf("GET %s: %d", p.path, w.Code)
						}
					}
					b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(b.N), "ms/page")
				})
			}
		})
	}
}

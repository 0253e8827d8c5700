package metrics_test

import (
	"compress/gzip"
	"context"
	"database/sql"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/store"
	"github.com/certwright/certwright/internal/store/postgres"
	"github.com/certwright/certwright/internal/store/storetest"
)

// benchCerts is the inventory size of BenchmarkMetricsScrape.
const benchCerts = 100_000

// BenchmarkMetricsScrape scrapes /metrics over loopback HTTP the way
// Prometheus does (gzip) with 100,000 unexpired certificates in the store
// and max_certificates 100,000, so every certificate has its series.
// "uncached" moves the clock past the 10 s inventory cache before each
// scrape, so each one queries the store; "cached" is a second scraper
// within the cache window. It reports the response size, compressed and
// not.
func BenchmarkMetricsScrape(b *testing.B) {
	for _, d := range []struct {
		name string
		open func(b *testing.B) (db *store.DB, raw *sql.DB, numbered bool)
	}{
		{"sqlite", func(b *testing.B) (*store.DB, *sql.DB, bool) {
			path := filepath.Join(b.TempDir(), "bench.db")
			db, err := store.Open(context.Background(), path, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { db.Close() })
			raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { raw.Close() })
			return db, raw, false
		}},
		{"postgres", func(b *testing.B) (*store.DB, *sql.DB, bool) {
			url := storetest.PostgresSchema(b, storetest.PostgresURL(b))
			db, err := store.Open(context.Background(), url, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { db.Close() })
			raw, err := postgres.Open(context.Background(), url)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { raw.Close() })
			return db, raw, true
		}},
	} {
		b.Run(d.name, func(b *testing.B) {
			db, raw, numbered := d.open(b)
			e := newEnvOn(b, db, benchCerts)
			fillBench(b, raw, numbered, e.ica.ID, e.clk.Now())
			client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
			defer client.CloseIdleConnections()

			// Every certificate is exported, and nothing more.
			zipped, plain := benchScrape(b, client, e.srv.URL, true)
			if n := strings.Count(plain, "\ncertwright_certificate_expiry_seconds{"); n != benchCerts {
				b.Fatalf("%d expiry series, want %d", n, benchCerts)
			}
			if !strings.Contains(plain, "\ncertwright_certificate_expiry_series_truncated 0\n") {
				b.Fatal("the series were reported truncated")
			}
			for _, mode := range []string{"uncached", "cached"} {
				b.Run(mode, func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						if mode == "uncached" {
							e.clk.Advance(11 * time.Second)
						}
						benchScrape(b, client, e.srv.URL, false)
					}
					b.ReportMetric(float64(len(plain)), "bytes/scrape")
					b.ReportMetric(float64(zipped), "gzip-bytes/scrape")
				})
			}
		})
	}
}

// benchScrape fetches url asking for gzip, as Prometheus does, and returns
// the compressed size and, when decompress is set, the text (unzipping is
// the scraper's cost, so the timed scrapes skip it).
func benchScrape(b *testing.B, client *http.Client, url string, decompress bool) (int, string) {
	b.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Encoding") != "gzip" {
		b.Fatalf("scrape: %s, Content-Encoding %q: %.200s", resp.Status, resp.Header.Get("Content-Encoding"), body)
	}
	if !decompress {
		return len(body), ""
	}
	zr, err := gzip.NewReader(strings.NewReader(string(body)))
	if err != nil {
		b.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		b.Fatal(err)
	}
	return len(body), string(plain)
}

// fillBench writes benchCerts certificates of caID with SQL: issuance-shaped
// rows (two SANs, a 1,200-byte DER) expiring a minute apart from an hour
// after now, then refreshes the planner's statistics.
func fillBench(b *testing.B, raw *sql.DB, numbered bool, caID string, now time.Time) {
	b.Helper()
	ctx := context.Background()
	var err error
	if numbered {
		_, err = raw.ExecContext(ctx, `INSERT INTO certificates (serial, ca_id, profile, requester, subject, sans, not_before, not_after,
				key_algorithm, key_bits, signature_algorithm, status, fingerprint, spki_sha256, tags, lint_warnings, der, created_at)
			SELECT lpad(to_hex(i), 32, '0'), $1, 'web_server', 'bench', 'CN=host' || i || '.example.com',
				jsonb_build_array('host' || i || '.example.com', 'www.example.com'), $2::timestamptz,
				$2::timestamptz + interval '1 hour' + i * interval '1 minute', 'ECDSA', 256, 'ECDSA-SHA256', 'valid', 'fp', 'spki',
				'[]', '[]', convert_to(repeat('x', 1200), 'UTF8'), $2::timestamptz
			FROM generate_series(1, $3::integer) AS i`, caID, now, benchCerts)
		if err == nil {
			_, err = raw.ExecContext(ctx, "VACUUM ANALYZE certificates")
		}
	} else {
		at := now.UnixMicro()
		_, err = raw.ExecContext(ctx, `WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ?)
			INSERT INTO certificates (serial, ca_id, profile, requester, subject, sans, not_before, not_after,
				key_algorithm, key_bits, signature_algorithm, status, fingerprint, spki_sha256, tags, lint_warnings, der, created_at)
			SELECT printf('%032x', i), ?, 'web_server', 'bench', 'CN=host' || i || '.example.com',
				json_array('host' || i || '.example.com', 'www.example.com'), ?, ? + 3600000000 + i * 60000000,
				'ECDSA', 256, 'ECDSA-SHA256', 'valid', 'fp', 'spki', '[]', '[]', zeroblob(1200), ?
			FROM s`, benchCerts, caID, at, at, at)
		if err == nil {
			_, err = raw.ExecContext(ctx, "ANALYZE")
		}
	}
	if err != nil {
		b.Fatalf("fill %d certificates: %v", benchCerts, err)
	}
}

package store_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/store"
	"github.com/certwright/certwright/internal/store/storetest"
)

// BenchmarkInsertCertificateParallel measures issuance-shaped inserts from
// many goroutines, as the issuing API makes them: group commit on SQLite,
// a transaction per call on PostgreSQL.
func BenchmarkInsertCertificateParallel(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) {
		benchInsert(b, filepath.Join(b.TempDir(), "bench.db"))
	})
	b.Run("postgres", func(b *testing.B) {
		benchInsert(b, storetest.PostgresSchema(b, storetest.PostgresURL(b)))
	})
}

func benchInsert(b *testing.B, url string) {
	db, err := store.Open(context.Background(), url, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	der := make([]byte, 1200) // a typical ECDSA leaf
	now := time.Now()
	var seq atomic.Int64
	b.SetParallelism(32) // 32 × GOMAXPROCS concurrent callers
	b.ReportAllocs()
	cpu0 := processCPU(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			n := seq.Add(1)
			// Serials as issuance makes them (time first, then random);
			// the key hash and fingerprint random, as they are.
			sn, err := pki.NewSerial(nil)
			if err != nil {
				b.Error(err)
				return
			}
			serial := pki.SerialHex(sn)
			spki := sha256.Sum256([]byte(serial))
			fp := sha256.Sum256(spki[:])
			host := fmt.Sprintf("host%d", n)
			err = db.InsertCertificate(ctx, &inventory.Certificate{
				Serial: serial, CAID: "ca1", Profile: "server", Requester: "bench",
				Subject: "CN=" + host, SANs: []string{host + ".example.com", "www.example.com"},
				NotBefore: now, NotAfter: now.Add(90 * 24 * time.Hour),
				KeyAlgorithm: pki.FamilyECDSA, KeyBits: 256, SignatureAlgorithm: "ECDSA-SHA256",
				Status: inventory.StatusValid, Fingerprint: hex.EncodeToString(fp[:]), SPKISHA256: hex.EncodeToString(spki[:]),
				Tags: []string{"bench"}, DER: der, CreatedAt: now,
			}, tev())
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "inserts/s")
	b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/float64(b.N), "cpu-us/op")
}

// processCPU returns the user and system CPU time this process has used:
// on a machine shared with other work, CPU per insert says more than
// wall-clock time.
func processCPU(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkListCertificates lists one full page (1000 rows) out of 20,000,
// unfiltered and by CA.
func BenchmarkListCertificates(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) {
		benchList(b, filepath.Join(b.TempDir(), "bench.db"))
	})
	b.Run("postgres", func(b *testing.B) {
		benchList(b, storetest.PostgresSchema(b, storetest.PostgresURL(b)))
	})
}

func benchList(b *testing.B, url string) {
	ctx := context.Background()
	db, err := store.Open(ctx, url, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	const n = 20000
	now := time.Now()
	der := make([]byte, 1200)
	var wg sync.WaitGroup
	next := make(chan int)
	for range 32 {
		wg.Go(func() {
			for i := range next {
				serial := fmt.Sprintf("%032x", i)
				err := db.InsertCertificate(ctx, &inventory.Certificate{
					Serial: serial, CAID: []string{"ca1", "ca2"}[i%2], Profile: "server", Requester: "bench",
					Subject: "CN=host" + serial, SANs: []string{"host" + serial + ".example.com", "www.example.com"},
					NotBefore: now, NotAfter: now.Add(90 * 24 * time.Hour),
					KeyAlgorithm: pki.FamilyECDSA, KeyBits: 256, SignatureAlgorithm: "ECDSA-SHA256",
					Status: inventory.StatusValid, Fingerprint: serial + serial, Tags: []string{"bench"},
					DER: der, CreatedAt: now,
				}, tev())
				if err != nil {
					b.Error(err)
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, f := range []struct {
		name string
		f    inventory.Filter
	}{
		{"all", inventory.Filter{After: fmt.Sprintf("%032x", n/2)}},
		{"ca", inventory.Filter{CAID: "ca2", After: fmt.Sprintf("%032x", n/4)}},
	} {
		b.Run(f.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				got, err := db.ListCertificates(ctx, f.f)
				if err != nil || len(got) != store.DefaultListLimit {
					b.Fatal(len(got), err)
				}
			}
		})
	}
}

// BenchmarkEachRevoked1M streams one CA's 1,000,000 unexpired revocations,
// as building its CRL does, among 200,000 rows the scan must skip (another
// CA's, expired ones). Setup writes the rows with SQL and takes a while.
func BenchmarkEachRevoked1M(b *testing.B) {
	forBenchDialects(b, func(b *testing.B, db *store.DB, raw *rawDB) {
		ctx := context.Background()
		now := time.Now()
		fillRevocations(b, raw, "ca1", 1_000_000, now.Add(24*time.Hour))
		fillRevocations(b, raw, "ca2", 100_000, now.Add(24*time.Hour))
		fillRevocations(b, raw, "ca1", 100_000, now.Add(-100*24*time.Hour)) // expired
		raw.analyze(b)
		b.ResetTimer()
		for b.Loop() {
			n := 0
			err := db.EachRevoked(ctx, "ca1", now, func(r *inventory.Revocation) error {
				n++
				return nil
			})
			if err != nil || n != 1_000_000 {
				b.Fatalf("EachRevoked: %d rows, %v", n, err)
			}
		}
		b.ReportMetric(float64(b.N)*1e6/b.Elapsed().Seconds(), "rows/s")
	})
}

// BenchmarkRevokeMatching100k revokes 100,000 certificates sharing a key
// among 200,000, in one call.
func BenchmarkRevokeMatching100k(b *testing.B) {
	forBenchDialects(b, func(b *testing.B, db *store.DB, raw *rawDB) {
		ctx := context.Background()
		now := time.Now()
		const key = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		fillCertificates(b, raw, "ca1", key, 100_000, now.Add(24*time.Hour))
		fillCertificates(b, raw, "ca1", "bbbb", 100_000, now.Add(24*time.Hour))
		raw.analyze(b)
		b.ResetTimer()
		for b.Loop() {
			recs, err := db.RevokeMatching(ctx, inventory.Selector{SPKISHA256: key}, now,
				inventory.Revocation{RevokedAt: now, Reason: pki.ReasonKeyCompromise, RevokedBy: "bench"}, false, tev())
			if err != nil || len(recs) != 100_000 {
				b.Fatalf("RevokeMatching: %d records, %v", len(recs), err)
			}
			b.StopTimer()
			raw.exec(b, "DELETE FROM revocations")
			raw.exec(b, "UPDATE certificates SET status = 'valid'")
			b.StartTimer()
		}
	})
}

func forBenchDialects(b *testing.B, fn func(b *testing.B, db *store.DB, raw *rawDB)) {
	for _, d := range dialects {
		b.Run(d.name, func(b *testing.B) {
			url, raw := d.new(b)
			db, err := store.Open(context.Background(), url, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			fn(b, db, raw)
		})
	}
}

// fillRevocations inserts n revocations under caID with random serials and
// NotAfter from notAfter on, a second apart.
func fillRevocations(b *testing.B, raw *rawDB, caID string, n int, notAfter time.Time) {
	b.Helper()
	if raw.numbered {
		raw.exec(b, `INSERT INTO revocations (serial, ca_id, revoked_at, reason, invalidity_date, revoked_by, not_after, ca)
			SELECT md5(random()::text), ?, now(), i % 6, CASE WHEN i % 3 = 0 THEN now() END, 'admin',
				?::timestamptz + i * interval '1 second', false
			FROM generate_series(1, ?::integer) AS i ON CONFLICT DO NOTHING`, caID, notAfter, n)
		return
	}
	raw.exec(b, `WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ?)
		INSERT INTO revocations (serial, ca_id, revoked_at, reason, invalidity_date, revoked_by, not_after, ca)
		SELECT lower(hex(randomblob(16))), ?, ?, i % 6, CASE WHEN i % 3 = 0 THEN ? END, 'admin', ? + i * 1000000, 0
		FROM s WHERE true ON CONFLICT DO NOTHING`, n, caID, time.Now().UnixMicro(), time.Now().UnixMicro(), notAfter.UnixMicro())
}

// fillCertificates inserts n certificates of caID with the given SPKI hash.
func fillCertificates(b *testing.B, raw *rawDB, caID, spki string, n int, notAfter time.Time) {
	b.Helper()
	if raw.numbered {
		raw.exec(b, `INSERT INTO certificates (serial, ca_id, profile, requester, subject, sans, not_before, not_after,
				key_algorithm, key_bits, signature_algorithm, status, fingerprint, spki_sha256, tags, lint_warnings, der, created_at)
			SELECT md5(random()::text), ?, 'server', 'bench', 'CN=bench', '[]', now(), ?::timestamptz, 'ECDSA', 256,
				'ECDSA-SHA256', 'valid', 'fp', ?, '[]', '[]', '\x00'::bytea, now()
			FROM generate_series(1, ?::integer) AS i ON CONFLICT DO NOTHING`, caID, notAfter, spki, n)
		return
	}
	now := time.Now().UnixMicro()
	raw.exec(b, `WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ?)
		INSERT INTO certificates (serial, ca_id, profile, requester, subject, sans, not_before, not_after,
			key_algorithm, key_bits, signature_algorithm, status, fingerprint, spki_sha256, tags, lint_warnings, der, created_at)
		SELECT lower(hex(randomblob(16))), ?, 'server', 'bench', 'CN=bench', '[]', ?, ?, 'ECDSA', 256,
			'ECDSA-SHA256', 'valid', 'fp', ?, '[]', '[]', x'00', ?
		FROM s WHERE true ON CONFLICT DO NOTHING`, n, caID, now, notAfter.UnixMicro(), spki, now)
}

// analyze refreshes planner statistics (and, on PostgreSQL, the visibility
// map that index-only scans need), as a long-running server's autovacuum
// or PRAGMA optimize would have.
func (r *rawDB) analyze(b *testing.B) {
	b.Helper()
	if r.numbered {
		r.exec(b, "VACUUM ANALYZE")
		return
	}
	r.exec(b, "ANALYZE")
}

// BenchmarkEachUnexpired1M walks one CA's 1,000,000 unexpired certificates,
// 10% of them revoked, as refreshing its OCSP responses does.
func BenchmarkEachUnexpired1M(b *testing.B) {
	forBenchDialects(b, func(b *testing.B, db *store.DB, raw *rawDB) {
		ctx := context.Background()
		now := time.Now()
		fillCertificates(b, raw, "ca1", "aa", 900_000, now.Add(24*time.Hour))
		fillCertificates(b, raw, "ca1", "bb", 100_000, now.Add(24*time.Hour))
		fillCertificates(b, raw, "ca2", "aa", 100_000, now.Add(24*time.Hour))
		raw.analyze(b)
		recs, err := db.RevokeMatching(ctx, inventory.Selector{SPKISHA256: "bb"}, now,
			inventory.Revocation{RevokedAt: now, Reason: pki.ReasonKeyCompromise, RevokedBy: "bench"}, false, tev())
		if err != nil || len(recs) != 100_000 {
			b.Fatalf("RevokeMatching: %d records, %v", len(recs), err)
		}
		raw.analyze(b)
		b.ResetTimer()
		for b.Loop() {
			n, revoked := 0, 0
			err := db.EachUnexpired(ctx, "ca1", now, func(_ string, _ time.Time, rev *inventory.Revocation) error {
				n++
				if rev != nil {
					revoked++
				}
				return nil
			})
			if err != nil || n != 1_000_000 || revoked != 100_000 {
				b.Fatalf("EachUnexpired: %d rows, %d revoked, %v", n, revoked, err)
			}
		}
		b.ReportMetric(float64(b.N)*1e6/b.Elapsed().Seconds(), "rows/s")
	})
}

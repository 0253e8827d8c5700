package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
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
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			n := seq.Add(1)
			serial := fmt.Sprintf("%032x", n)
			err := db.InsertCertificate(ctx, &inventory.Certificate{
				Serial: serial, CAID: "ca1", Profile: "server", Requester: "bench",
				Subject: "CN=host" + serial, SANs: []string{"host" + serial + ".example.com", "www.example.com"},
				NotBefore: now, NotAfter: now.Add(90 * 24 * time.Hour),
				KeyAlgorithm: pki.FamilyECDSA, KeyBits: 256, SignatureAlgorithm: "ECDSA-SHA256",
				Status: inventory.StatusValid, Fingerprint: serial + serial, Tags: []string{"bench"},
				DER: der, CreatedAt: now,
			})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "inserts/s")
}

package pkcs11

import (
	"context"
	"crypto"
	"crypto/rand"
	"runtime"
	"testing"

	"github.com/certwright/certwright/internal/pki"
)

// BenchmarkSign signs SHA-256 digests with an ECDSA P-256 key in a
// SoftHSM2 token from 32 goroutines, through the provider's default pool,
// and reports signatures per second.
func BenchmarkSign(b *testing.B) {
	st := newSoftToken(b, "bench")
	p := open(b, st.config(b))
	sg, err := p.GenerateKey(context.Background(), pki.ECDSAP256, "bench", []byte{1})
	if err != nil {
		b.Fatal(err)
	}
	d := digest(crypto.SHA256, "benchmark")
	const goroutines = 32
	b.SetParallelism((goroutines + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := sg.Sign(rand.Reader, d, crypto.SHA256); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sigs/s")
}

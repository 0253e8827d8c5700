package app

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"

	xocsp "golang.org/x/crypto/ocsp"

	"github.com/certwright/certwright/internal/pki"
)

// BenchmarkOCSPRandomSerial compares, through the revocation service's
// Respond (no HTTP), a request for an issued certificate whose response is
// pre-signed (cached-good) with requests for never-issued random serials,
// each new (random-serial) or repeated from a small set (repeat-unknown).
// Issue 13 #16: a random serial must not cost a CA list parse and a
// signature each.
func BenchmarkOCSPRandomSerial(b *testing.B) {
	a := benchApp(b, "sqlite")
	caID := issuingCA(b, a)
	serials := seedCerts(b, a, caID, 1000, false)
	if _, err := a.revoker.Presign(context.Background(), caID); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	decode := func(paths []string) [][]byte {
		out := make([][]byte, len(paths))
		for i, p := range paths {
			der, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(p, "/ocsp/"+caID+"/"))
			if err != nil {
				b.Fatal(err)
			}
			out[i] = der
		}
		return out
	}
	good := decode(ocspGETPaths(b, a, caID, serials))
	randomSerials := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			s, err := pki.NewSerial(rand.Reader)
			if err != nil {
				b.Fatal(err)
			}
			out[i] = pki.SerialHex(s)
		}
		return out
	}
	check := func(der []byte, want int) {
		r := a.revoker.Respond(ctx, caID, der)
		resp, err := xocsp.ParseResponse(r.DER, nil)
		if err != nil || resp.Status != want {
			b.Fatalf("response: %v %+v", err, resp)
		}
	}
	check(good[0], xocsp.Good)
	b.Run("cached-good", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			a.revoker.Respond(ctx, caID, good[i%len(good)])
		}
	})
	b.Run("repeat-unknown", func(b *testing.B) {
		reqs := decode(ocspGETPaths(b, a, caID, randomSerials(100)))
		check(reqs[0], xocsp.Unknown)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			a.revoker.Respond(ctx, caID, reqs[i%len(reqs)])
		}
	})
	b.Run("random-serial", func(b *testing.B) {
		reqs := decode(ocspGETPaths(b, a, caID, randomSerials(20000)))
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			a.revoker.Respond(ctx, caID, reqs[i%len(reqs)])
		}
	})
}

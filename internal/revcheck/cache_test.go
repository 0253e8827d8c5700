package revcheck

import (
	"crypto/x509"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/crypto/ocsp"

	"github.com/certwright/certwright/internal/revcheck/revchecktest"
)

// TestFetchCache: checks sharing a cache fetch each CRL and OCSP answer
// once, concurrent ones included; a failed fetch is not kept, and an
// answer beyond the cache's size is fetched again.
func TestFetchCache(t *testing.T) {
	t.Parallel()
	f := revchecktest.New(t, revchecktest.Options{})
	crl := f.FreshCRL(t)
	var crlFails atomic.Bool
	crlFails.Store(true)
	f.CRL = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if crlFails.Load() {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		revchecktest.ServeBody(crl)(w, r)
	})
	f.OCSP = f.OCSPFresh(t, f.Inter, false, ocsp.Good)
	f.Start()
	chain, roots := []*x509.Certificate{f.Leaf.Cert, f.Inter.Cert}, []*x509.Certificate{f.Root.Cert}
	rc := &Checker{Cache: NewFetchCache(1 << 20)}
	check := func() *Report { return rc.CheckChain(t.Context(), chain, roots) }

	// The CRL fails: OCSP answers, and the failure is not kept.
	if rep := check(); rep.Status != StatusGood {
		t.Fatalf("first check: %+v", rep)
	}
	crlFails.Store(false)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if rep := check(); rep.Status != StatusGood {
				t.Errorf("concurrent check: %s", problemsText(rep))
			}
		})
	}
	wg.Wait()
	// One failed CRL fetch and one OCSP fetch, then one CRL fetch.
	if n := len(f.UserAgents()); n != 3 {
		t.Errorf("%d requests for 9 checks sharing a cache, want 3", n)
	}
	small := &Checker{Cache: NewFetchCache(16)}
	small.CheckChain(t.Context(), chain, roots)
	small.CheckChain(t.Context(), chain, roots)
	if n := len(f.UserAgents()); n != 7 {
		t.Errorf("%d requests after two checks with a cache too small to keep anything, want 7", n)
	}
}

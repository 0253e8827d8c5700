package app

import (
	"crypto/elliptic"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/certwright/certwright/internal/acme/validate/validatetest"
	"github.com/certwright/certwright/internal/config"
)

// TestACMESourceLimitThroughServer: acme.source_validations_in_flight
// counts the challenges that anonymous accounts answer from one address,
// across accounts. With it set to 1 and the first validation held by a
// tarpit, a second account answering from the same address (127.0.0.1) is
// refused with rateLimited naming the address, while an account answering
// from another address (127.0.0.2) is queued.
func TestACMESourceLimitThroughServer(t *testing.T) {
	t.Parallel()
	tarpit, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	validatetest.Tarpit(t, tarpit)
	s := tACStart(t, "", func(a *config.ACMEConfig) {
		a.HTTP01Port = tarpit.Addr().(*net.TCPAddr).Port
		a.ValidationTimeout = "5s"
		a.SourceValidationsInFlight = 1
	})
	challenge := func(c *tACClient, name string) string {
		t.Helper()
		o, _, err := c.newOrder(tACDNS(name))
		tACNoErr(t, err)
		a, err := c.authz(o.Authorizations[0])
		tACNoErr(t, err)
		ch, err := tACChallengeOf(a, "http-01")
		tACNoErr(t, err)
		return ch.URL
	}
	first := s.account(t, "default")
	if _, err := first.respond(challenge(first, "first.source.test")); err != nil {
		t.Fatalf("first account's challenge: %v", err)
	}
	second := s.account(t, "default")
	_, err = second.respond(challenge(second, "second.source.test"))
	p := tACWantProblem(t, tACProblemOf(t, err), http.StatusTooManyRequests, "rateLimited")
	if !strings.Contains(p.Detail, "from your address (127.0.0.1)") {
		t.Errorf("refusal %q does not name the address", p.Detail)
	}

	tr := s.in.client.Transport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext
	elsewhere, err := tACNewClient(&http.Client{Transport: tr, Timeout: s.in.client.Timeout}, s.dirURL("default"), tECKey(t, elliptic.P256()))
	tACNoErr(t, err)
	tACNoErr(t, elsewhere.newAccount())
	if _, err := elsewhere.respond(challenge(elsewhere, "elsewhere.source.test")); err != nil {
		t.Fatalf("account answering from another address: %v", err)
	}
}

package app

import (
	"net"
	"net/http"
	"strconv"
	"testing"

	"github.com/certwright/certwright/internal/acme"
	"github.com/certwright/certwright/internal/acme/validate/validatetest"
	"github.com/certwright/certwright/internal/config"
)

// TestACMEValidationLimitsFromConfig: acme.validations_in_flight reaches
// the running ACME service. With it set to 1 and the first challenge held
// by a tarpit (accepts, never answers), the account's second challenge is
// refused with rateLimited (the default, 100, would have queued it).
func TestACMEValidationLimitsFromConfig(t *testing.T) {
	t.Parallel()
	tarpit, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	validatetest.Tarpit(t, tarpit)
	port := tarpit.Addr().(*net.TCPAddr).Port
	s := tACStart(t, "", func(a *config.ACMEConfig) {
		a.HTTP01Port = port
		a.ValidationTimeout = "5s"
		a.ValidationsInFlight = 1
	})
	c := s.account(t, "default")
	o, _, err := c.newOrder(tACDNS("one.limit.test"), tACDNS("two.limit.test"))
	tACNoErr(t, err)
	var urls []string
	for _, az := range o.Authorizations {
		a, err := c.authz(az)
		tACNoErr(t, err)
		ch, err := tACChallengeOf(a, "http-01")
		tACNoErr(t, err)
		urls = append(urls, ch.URL)
	}
	if _, err := c.respond(urls[0]); err != nil {
		t.Fatalf("first challenge: %v", err)
	}
	_, err = c.respond(urls[1])
	r := tACProblemOf(t, err)
	tACWantProblem(t, r, http.StatusTooManyRequests, "rateLimited")
	if secs, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || secs <= 0 {
		t.Errorf("Retry-After %q, want delta-seconds", r.header.Get("Retry-After"))
	}
}

// TestACMEQueueSizeMatchesConfig: config bounds the in-flight limits by
// the validation queue's size, which acme defines; the two must agree.
func TestACMEQueueSizeMatchesConfig(t *testing.T) {
	t.Parallel()
	if config.MaxValidationsQueued != acme.DefaultQueueSize {
		t.Errorf("config.MaxValidationsQueued = %d, acme.DefaultQueueSize = %d", config.MaxValidationsQueued, acme.DefaultQueueSize)
	}
}

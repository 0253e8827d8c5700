package app

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/config"
)

// tACStepZeroValidity is the newOrder payload the smallstep step CLI
// (v0.30.6) sends: Go's zero time for notBefore and notAfter.
const tACStepZeroValidity = `{"identifiers":[{"type":"dns","value":"step.example.test"}],` +
	`"notBefore":"0001-01-01T00:00:00Z","notAfter":"0001-01-01T00:00:00Z"}`

// TestACMEInterop: the step CLI's zero notBefore/notAfter is treated as
// absent, a real validity is still refused, and a contact without mailto:
// is refused with a detail that says how to write it.
func TestACMEInterop(t *testing.T) {
	t.Parallel()
	s := tACStart(t, "", nil)
	c := s.account(t, "default")

	var o tACOrder
	_, err := c.postWant("new-order", c.url("newOrder"), []byte(tACStepZeroValidity), &o, http.StatusCreated)
	tACNoErr(t, err)
	if o.Status != "pending" || len(o.Identifiers) != 1 || o.Identifiers[0].Value != "step.example.test" {
		t.Fatalf("order %+v", o)
	}
	r, err := c.post(c.url("newOrder"), []byte(`{"identifiers":[{"type":"dns","value":"step.example.test"}],"notBefore":"2030-01-01T00:00:00Z"}`))
	tACNoErr(t, err)
	tACWantProblem(t, r, http.StatusBadRequest, "malformed")

	nc := s.client(t, "default")
	r, err = nc.post(nc.url("newAccount"), map[string]any{"termsOfServiceAgreed": true, "contact": []string{"ops@example.com"}})
	tACNoErr(t, err)
	p := tACWantProblem(t, r, http.StatusBadRequest, "unsupportedContact")
	if !strings.Contains(p.Detail, `use "mailto:ops@example.com"`) {
		t.Errorf("detail %q does not say how to fix the contact", p.Detail)
	}
}

// tACMetadata is the body of the fake metadata service; none of it may
// reach an ACME client.
const tACMetadata = "iam/security-credentials/INTERNALROLE AKIAINTERNALKEY"

// TestACMESSRFThroughServer is the reported attack end to end: an anonymous
// account on the default provisioner validates 127.0.0.6, which redirects
// to a metadata service on 127.0.0.5; and a name whose server redirects by
// name to it. The challenge error never carries the metadata body.
func TestACMESSRFThroughServer(t *testing.T) {
	t.Parallel()
	meta, err := net.Listen("tcp", "127.0.0.5:0")
	if err != nil {
		t.Skipf("127.0.0.5: %v", err)
	}
	port := meta.Addr().(*net.TCPAddr).Port
	redir, err := net.Listen("tcp", "127.0.0.6:"+strconv.Itoa(port))
	if err != nil {
		meta.Close()
		t.Skipf("127.0.0.6:%d: %v", port, err)
	}
	for _, x := range []struct {
		ln net.Listener
		h  http.HandlerFunc
	}{
		{meta, func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(tACMetadata)) }},
		{redir, func(w http.ResponseWriter, r *http.Request) {
			loc := "http://127.0.0.5/latest/meta-data/"
			if r.Host == "attacker.test" {
				loc = "http://metadata.test/latest/meta-data/"
			}
			http.Redirect(w, r, loc, http.StatusFound)
		}},
	} {
		srv := httptest.NewUnstartedServer(x.h)
		srv.Listener.Close()
		srv.Listener = x.ln
		srv.Start()
		t.Cleanup(srv.Close)
	}
	s := tACStart(t, "", func(a *config.ACMEConfig) { a.HTTP01Port = port })
	s.dns.SetA("attacker.test", netip.MustParseAddr("127.0.0.6"))
	s.dns.SetA("metadata.test", netip.MustParseAddr("127.0.0.5"))
	c := s.account(t, "default")
	for _, id := range []tACIdent{{Type: "ip", Value: "127.0.0.6"}, tACDNS("attacker.test")} {
		t.Run(id.Value, func(t *testing.T) {
			o, _, err := c.newOrder(id)
			tACNoErr(t, err)
			a, err := c.authz(o.Authorizations[0])
			tACNoErr(t, err)
			ch, err := tACChallengeOf(a, "http-01")
			tACNoErr(t, err)
			_, err = c.respond(ch.URL)
			tACNoErr(t, err)
			var done tACChallenge
			st, err := c.poll(ch.URL, 50*time.Millisecond, 15*time.Second, &done)
			tACNoErr(t, err)
			if st != "invalid" || done.Error == nil {
				t.Fatalf("challenge %s, error %+v", st, done.Error)
			}
			for _, part := range []string{"INTERNALROLE", "AKIA", "security-credentials"} {
				if strings.Contains(done.Error.Detail, part) {
					t.Fatalf("the challenge error echoes the metadata body: %q", done.Error.Detail)
				}
			}
			t.Logf("challenge error: %s %s", done.Error.Type, done.Error.Detail)
		})
	}
}

package validatetest_test

import (
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/certwright/certwright/internal/acme/validate/validatetest"
	"github.com/miekg/dns"
)

func query(t *testing.T, s *validatetest.DNSServer, network, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	r, _, err := (&dns.Client{Net: network}).ExchangeContext(t.Context(), m, s.Addr())
	if err != nil {
		t.Fatalf("%s %s %s: %v", network, name, dns.TypeToString[qtype], err)
	}
	return r
}

func answers(r *dns.Msg) []string {
	var out []string
	for _, rr := range r.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			out = append(out, rr.A.String())
		case *dns.AAAA:
			out = append(out, rr.AAAA.String())
		case *dns.TXT:
			out = append(out, strings.Join(rr.Txt, ""))
		}
	}
	return out
}

func TestDNSServer(t *testing.T) {
	t.Parallel()
	s := validatetest.NewDNSServer(t)
	v4, v6 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")
	s.SetA("Host.Test.", v4, v6)
	s.SetTXT("_acme-challenge.host.test", "one", "two")
	s.AddTXT("_ACME-challenge.host.test", "three")
	long := strings.Repeat("x", 600)
	s.SetTXT("long.test", long)

	tests := []struct {
		network, name string
		qtype         uint16
		rcode         int
		want          []string
	}{
		{"udp", "host.test", dns.TypeA, dns.RcodeSuccess, []string{"192.0.2.1"}},
		{"tcp", "HOST.test", dns.TypeAAAA, dns.RcodeSuccess, []string{"2001:db8::1"}},
		{"udp", "_acme-challenge.host.test", dns.TypeTXT, dns.RcodeSuccess, []string{"one", "two", "three"}},
		{"tcp", "long.test", dns.TypeTXT, dns.RcodeSuccess, []string{long}},
		{"udp", "host.test", dns.TypeTXT, dns.RcodeSuccess, nil},
		{"udp", "missing.test", dns.TypeA, dns.RcodeNameError, nil},
	}
	for _, tt := range tests {
		r := query(t, s, tt.network, tt.name, tt.qtype)
		if r.Rcode != tt.rcode || !slices.Equal(answers(r), tt.want) {
			t.Errorf("%s %s: rcode %s answers %q, want %s %q", tt.name, dns.TypeToString[tt.qtype],
				dns.RcodeToString[r.Rcode], answers(r), dns.RcodeToString[tt.rcode], tt.want)
		}
	}

	s.ClearTXT("_acme-challenge.host.test")
	if r := query(t, s, "udp", "_acme-challenge.host.test", dns.TypeTXT); r.Rcode != dns.RcodeNameError {
		t.Errorf("after ClearTXT: rcode %s, want NXDOMAIN", dns.RcodeToString[r.Rcode])
	}
	s.SetDefaultA(netip.MustParseAddr("127.0.0.1"))
	if r := query(t, s, "udp", "anything.test", dns.TypeA); !slices.Equal(answers(r), []string{"127.0.0.1"}) {
		t.Errorf("default A: %q", answers(r))
	}
	if r := query(t, s, "udp", "host.test", dns.TypeA); !slices.Equal(answers(r), []string{"192.0.2.1"}) {
		t.Errorf("own entry must win over the default: %q", answers(r))
	}
}

func TestDNSServerTruncatesOverUDP(t *testing.T) {
	t.Parallel()
	s := validatetest.NewDNSServer(t)
	for range 20 {
		s.AddTXT("big.test", strings.Repeat("v", 100))
	}
	if r := query(t, s, "udp", "big.test", dns.TypeTXT); !r.Truncated {
		t.Errorf("UDP answer of %d records not truncated", len(r.Answer))
	}
	if r := query(t, s, "tcp", "big.test", dns.TypeTXT); r.Truncated || len(r.Answer) != 20 {
		t.Errorf("TCP answer: truncated %v, %d records", r.Truncated, len(r.Answer))
	}
}

func TestDNSServerConcurrent(t *testing.T) {
	t.Parallel()
	s := validatetest.NewDNSServer(t)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				s.AddTXT("c.test", "v")
				s.SetA("c.test", netip.MustParseAddr("127.0.0.1"))
				m := new(dns.Msg)
				m.SetQuestion("c.test.", dns.TypeTXT)
				if _, _, err := new(dns.Client).ExchangeContext(t.Context(), m, s.Addr()); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

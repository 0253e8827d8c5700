// Package validatetest provides targets for tests of ACME challenge
// validation: an in-process DNS server (create one with NewDNSServer, point
// validate.Config.Resolver at its Addr, and set the records a test needs)
// and a tarpit that accepts connections and never answers (Tarpit).
package validatetest

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// txtChunk is the longest character-string in a TXT record (RFC 1035 §3.3).
const txtChunk = 255

// ttl of every answer; nothing caches in tests, but zero looks suspicious.
const ttl = 60

// DNSServer is an in-process authoritative-style DNS server on 127.0.0.1 (UDP and TCP, same port) for tests.
type DNSServer struct {
	addr string

	mu   sync.Mutex
	a    map[string][]netip.Addr
	def  []netip.Addr
	txts map[string][]string
}

// NewDNSServer starts a DNSServer, stopped via t.Cleanup.
func NewDNSServer(t testing.TB) *DNSServer {
	t.Helper()
	s := &DNSServer{a: map[string][]netip.Addr{}, txts: map[string][]string{}}
	pc, ln, err := listen()
	if err != nil {
		t.Fatalf("validatetest: %v", err)
	}
	s.addr = pc.LocalAddr().String()

	servers := []*dns.Server{
		{PacketConn: pc, Handler: dns.HandlerFunc(s.serveDNS)},
		{Listener: ln, Handler: dns.HandlerFunc(s.serveDNS)},
	}
	var wg sync.WaitGroup
	for _, srv := range servers {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		wg.Go(func() { _ = srv.ActivateAndServe() })
		select {
		case <-started:
		case <-time.After(5 * time.Second):
			t.Fatalf("validatetest: DNS server on %s did not start", s.addr)
		}
	}
	t.Cleanup(func() {
		for _, srv := range servers {
			_ = srv.Shutdown()
		}
		wg.Wait()
	})
	return s
}

// listen binds UDP and TCP on the same 127.0.0.1 port; the TCP port may be
// taken by someone else, so try a few.
func listen() (net.PacketConn, net.Listener, error) {
	var lastErr error
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, fmt.Errorf("listening on UDP: %w", err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		lastErr = err
	}
	return nil, nil, fmt.Errorf("listening on TCP and UDP on one port: %w", lastErr)
}

// Addr returns the server's "127.0.0.1:PORT".
func (s *DNSServer) Addr() string { return s.addr }

func canonical(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, "."))
}

// SetA sets the A and AAAA answers for name (case-insensitive, trailing dot
// optional). No addresses removes name's entry.
func (s *DNSServer) SetA(name string, ips ...netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(ips) == 0 {
		delete(s.a, canonical(name))
		return
	}
	s.a[canonical(name)] = append([]netip.Addr(nil), ips...)
}

// SetDefaultA sets the A and AAAA answers for every name without its own
// entry, so arbitrary test names resolve. Without a default (the initial
// state, or SetDefaultA()) such names are NXDOMAIN.
func (s *DNSServer) SetDefaultA(ips ...netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.def = append([]netip.Addr(nil), ips...)
}

// SetTXT replaces the TXT values for name. No values removes them.
func (s *DNSServer) SetTXT(name string, values ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(values) == 0 {
		delete(s.txts, canonical(name))
		return
	}
	s.txts[canonical(name)] = append([]string(nil), values...)
}

// AddTXT adds one TXT value for name.
func (s *DNSServer) AddTXT(name, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := canonical(name)
	s.txts[n] = append(s.txts[n], value)
}

// ClearTXT removes the TXT values for name.
func (s *DNSServer) ClearTXT(name string) {
	s.SetTXT(name)
}

func (s *DNSServer) serveDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	m.RecursionAvailable = true
	if len(req.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		_ = w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	m.Answer, m.Rcode = s.answer(q)

	size := dns.MinMsgSize
	if opt := req.IsEdns0(); opt != nil {
		size = max(int(opt.UDPSize()), dns.MinMsgSize)
		m.SetEdns0(uint16(size), false)
	}
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		m.Truncate(size)
	}
	_ = w.WriteMsg(m)
}

func (s *DNSServer) answer(q dns.Question) ([]dns.RR, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name := canonical(q.Name)
	addrs, hasA := s.a[name]
	txts, hasTXT := s.txts[name]
	if !hasA {
		addrs, hasA = s.def, len(s.def) > 0
	}
	if !hasA && !hasTXT {
		return nil, dns.RcodeNameError
	}
	hdr := dns.RR_Header{Name: q.Name, Rrtype: q.Qtype, Class: dns.ClassINET, Ttl: ttl}
	var rrs []dns.RR
	switch q.Qtype {
	case dns.TypeA:
		for _, a := range addrs {
			if a.Is4() {
				rrs = append(rrs, &dns.A{Hdr: hdr, A: a.AsSlice()})
			}
		}
	case dns.TypeAAAA:
		for _, a := range addrs {
			if a.Is6() {
				rrs = append(rrs, &dns.AAAA{Hdr: hdr, AAAA: a.AsSlice()})
			}
		}
	case dns.TypeTXT:
		for _, v := range txts {
			rrs = append(rrs, &dns.TXT{Hdr: hdr, Txt: split(v)})
		}
	}
	return rrs, dns.RcodeSuccess
}

// split cuts a TXT value into character-strings, as a zone file would.
func split(v string) []string {
	out := []string{}
	for len(v) > txtChunk {
		out = append(out, v[:txtChunk])
		v = v[txtChunk:]
	}
	return append(out, v)
}

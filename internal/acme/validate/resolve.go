package validate

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// ednsSize is the DNS flag day 2020 UDP payload size; larger answers come
// back truncated and are retried over TCP.
const ednsSize = 1232

// query asks the configured resolvers, in order, for name/qtype. It moves to
// the next resolver only on a network error; any answer, NXDOMAIN and SERVFAIL
// included, is returned for the caller to judge.
func (v *Validator) query(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = true
	m.SetEdns0(ednsSize, false)

	var lastErr error
	for _, server := range v.resolvers {
		r, err := exchange(ctx, "udp", server, m)
		if err == nil && r.Truncated {
			r, err = exchange(ctx, "tcp", server, m)
		}
		if err == nil {
			return r, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

func exchange(ctx context.Context, network, server string, m *dns.Msg) (*dns.Msg, error) {
	c := &dns.Client{Net: network}
	conn, err := c.DialContext(ctx, server)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", network, server, err)
	}
	defer conn.Close()
	// The library honours the deadline but not cancellation; closing the
	// connection covers the latter.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	r, _, err := c.ExchangeWithConnContext(ctx, m, conn)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", network, server, err)
	}
	q := m.Question[0]
	if len(r.Question) != 1 || r.Question[0].Qtype != q.Qtype || !strings.EqualFold(r.Question[0].Name, q.Name) {
		return nil, fmt.Errorf("%s %s: answer does not match question %s", network, server, q.Name)
	}
	return r, nil
}

// dnsError reports a failed lookup; cancellation and timeouts are reported as
// such rather than as a DNS problem.
func dnsError(ctx context.Context, what string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return netError(ctx, typeDNS, what, err)
	}
	return newError(typeDNS, err, "%s: %s", what, clip(err.Error()))
}

// lookup turns a host (DNS name or IP literal) into the addresses to try,
// IPv4 first, and refuses the whole host if any address is denied: a name
// pointing partly into a denied range is not one we talk to.
func (v *Validator) lookup(ctx context.Context, host string) ([]netip.Addr, error) {
	if addr, err := netip.ParseAddr(host); err == nil {
		if addr.Zone() != "" {
			return nil, newError(typeMalformed, nil, "address %q has a zone", clip(host))
		}
		addr = addr.Unmap()
		if err := v.allowed(addr); err != nil {
			return nil, err
		}
		return []netip.Addr{addr}, nil
	}

	if v.hostsFile != "" {
		if addrs := hostsLookup(v.hostsFile, host); len(addrs) > 0 {
			for _, a := range addrs {
				if err := v.allowed(a); err != nil {
					return nil, err
				}
			}
			return addrs, nil
		}
	}
	var addrs []netip.Addr
	var firstErr error
	for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
		what := fmt.Sprintf("looking up %s for %s", dns.TypeToString[qtype], host)
		r, err := v.query(ctx, host, qtype)
		if err != nil {
			if ctx.Err() != nil {
				return nil, dnsError(ctx, what, err)
			}
			if firstErr == nil {
				firstErr = dnsError(ctx, what, err)
			}
			continue
		}
		switch r.Rcode {
		case dns.RcodeSuccess:
		case dns.RcodeNameError:
			return nil, newError(typeDNS, nil, "NXDOMAIN %s", what)
		default:
			if firstErr == nil {
				firstErr = newError(typeDNS, nil, "%s %s", dns.RcodeToString[r.Rcode], what)
			}
			continue
		}
		// The answer may hold a CNAME chain; the addresses at its end are
		// what the resolver vouches for.
		for _, rr := range r.Answer {
			switch rr := rr.(type) {
			case *dns.A:
				if a, ok := netip.AddrFromSlice(rr.A.To4()); ok && qtype == dns.TypeA {
					addrs = append(addrs, a)
				}
			case *dns.AAAA:
				if a, ok := netip.AddrFromSlice(rr.AAAA.To16()); ok && qtype == dns.TypeAAAA {
					addrs = append(addrs, a.Unmap())
				}
			}
		}
	}
	if len(addrs) == 0 {
		if firstErr != nil {
			return nil, firstErr
		}
		return nil, newError(typeDNS, nil, "no A or AAAA records found for %s", host)
	}
	for _, a := range addrs {
		if err := v.allowed(a); err != nil {
			return nil, err
		}
	}
	return addrs, nil
}

// dial connects to the first of addrs that accepts on port. Each connect
// gets at most the connect timeout and, but for the last address, a fair
// share of the remaining time, so one black-holed address does not use up
// the whole attempt. The dialer's Control hook checks the deny list once
// more on the address actually dialled.
func (v *Validator) dial(ctx context.Context, at *attempt, addrs []netip.Addr, port uint16) (net.Conn, error) {
	var lastErr error
	d := net.Dialer{Control: v.control}
	for i, a := range addrs {
		target := netip.AddrPortFrom(a, port).String()
		at.add(target)
		limit := v.connectTimeout
		if left := len(addrs) - i; left > 1 {
			if deadline, ok := ctx.Deadline(); ok {
				limit = min(limit, time.Until(deadline)/time.Duration(left))
			}
		}
		actx, cancel := context.WithTimeout(ctx, limit)
		conn, err := d.DialContext(actx, "tcp", target)
		timedOut := actx.Err() != nil && ctx.Err() == nil
		cancel()
		if err == nil {
			return conn, nil
		}
		if opErr, ok := errors.AsType[*net.OpError](err); ok && opErr.Err != nil {
			err = opErr.Err // its message repeats the address
		}
		if timedOut {
			lastErr = newError(typeConnection, err, "connecting to %s: timed out after %s", target, limit.Round(time.Millisecond))
		} else {
			lastErr = netError(ctx, typeConnection, "connecting to "+target, err)
		}
		if ctx.Err() != nil {
			break
		}
	}
	if lastErr == nil {
		lastErr = newError(typeDNS, nil, "no addresses to connect to")
	}
	return nil, lastErr
}

// maxHostsFile bounds how much of the hosts file is read.
const maxHostsFile = 1 << 20

// hostsLookup returns host's addresses in a hosts(5) file, IPv4 first; a
// missing or unreadable file gives none.
func hostsLookup(path, host string) []netip.Addr {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	var v4, v6 []netip.Addr
	sc := bufio.NewScanner(io.LimitReader(f, maxHostsFile))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		a, err := netip.ParseAddr(fields[0])
		if err != nil || a.Zone() != "" {
			continue
		}
		for _, name := range fields[1:] {
			if strings.ToLower(strings.TrimSuffix(name, ".")) != host {
				continue
			}
			if a = a.Unmap(); a.Is4() {
				v4 = append(v4, a)
			} else {
				v6 = append(v6, a)
			}
			break
		}
	}
	return append(v4, v6...)
}

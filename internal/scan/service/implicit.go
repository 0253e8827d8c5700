package service

import (
	"context"
	"crypto/tls"
)

// TLS record content types and the version byte every TLS/SSLv3 record
// header starts with (RFC 8446 section 5.1).
const (
	recordAlert     = 0x15
	recordHandshake = 0x16
	recordMajor     = 0x03
)

// looksLikeTLS reports whether the first bytes a server sent form a TLS
// record header: a handshake (ServerHello) or an alert, which also proves a
// TLS server that merely disliked our hello.
func looksLikeTLS(first []byte) bool {
	return len(first) >= 3 && (first[0] == recordHandshake || first[0] == recordAlert) &&
		first[1] == recordMajor && first[2] <= 0x04
}

// tlsConfig offers every suite and version Go has so that the handshake
// succeeds with as many servers as possible. It verifies nothing: this
// handshake only finds out what runs inside TLS; the TLS scan judges the
// certificate and the parameters.
func (d *detector) tlsConfig(alpn []string) *tls.Config {
	var suites []uint16
	for _, s := range tls.CipherSuites() {
		suites = append(suites, s.ID)
	}
	for _, s := range tls.InsecureCipherSuites() {
		suites = append(suites, s.ID)
	}
	return &tls.Config{
		ServerName:         d.opts.ServerName,
		InsecureSkipVerify: true, //nolint:gosec // identification only; verification is the TLS scan's job
		MinVersion:         tls.VersionTLS10,
		CipherSuites:       suites,
		NextProtos:         alpn,
	}
}

// implicitTLS sends a ClientHello on w. When a TLS server answers it
// identifies the protocol inside: inner when the port names one, else a
// greeting, else HTTP.
func (d *detector) implicitTLS(ctx context.Context, w *wire, inner *protocol, r *Result) error {
	bc := &bufConn{Conn: w.conn, r: w.r}
	var alpn []string
	if inner != nil {
		alpn = inner.alpn
	}
	tc := tls.Client(bc, d.tlsConfig(alpn))
	if err := w.arm(d.opts.IOTimeout); err != nil {
		return err
	}
	herr := tc.HandshakeContext(ctx)
	if !looksLikeTLS(bc.first) {
		if len(bc.first) == 0 {
			return notThis("no TLS reply to a ClientHello (%v)", herr)
		}
		return notThis("the reply to a TLS ClientHello was %s, not TLS", quoted(bc.first))
	}
	r.Protocol = ProtoTLS
	r.Encryption = EncryptionImplicitTLS
	r.TLSDialer = d.plainDialer()
	if herr != nil {
		r.add(CodeTLSIncomplete, SeverityInfo,
			"The server at %s answers a ClientHello as a TLS server, but a handshake with Go's TLS client failed (%s); the TLS scan reports what it does support.",
			d.addr, shown([]byte(herr.Error())))
		return nil
	}
	cs := tc.ConnectionState()
	r.ALPN = shown([]byte(cs.NegotiatedProtocol))
	if cs.NegotiatedProtocol == "postgresql" {
		r.Protocol = ProtoPostgreSQL
		return nil
	}
	tw := newWire(ctx, tc, d.opts.IOTimeout)
	defer tw.stop()
	p := inner
	if p == nil || p.serverFirst {
		got, _ := tw.waitBanner(d.opts.BannerTimeout)
		switch {
		case got:
			if p = classifyBanner(tw.peekBuffered(bannerPeek), hint{proto: inner}); p == nil {
				r.Banner = shown(firstLine(tw.peekBuffered(maxShown)))
				return nil
			}
		case p == nil:
			p = protocols[ProtoHTTP]
		default:
			return nil
		}
	}
	inside := newResult(d.addr)
	if err := p.run(ctx, d, &session{w: tw, tls: true}, inside); err != nil {
		return nil
	}
	r.Protocol, r.Banner, r.Version, r.HSTS = inside.Protocol, inside.Banner, inside.Version, inside.HSTS
	r.Findings = append(r.Findings, inside.Findings...)
	return nil
}

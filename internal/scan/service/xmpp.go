package service

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// XMPP client streams (RFC 6120 sections 4.3 and 5.4): only the stream
// features and the STARTTLS <proceed/>, read into a bounded buffer and
// parsed by encoding/xml (which expands no custom entities).

const (
	nsStreams = "http://etherx.jabber.org/streams"
	nsTLS     = "urn:ietf:params:xml:ns:xmpp-tls"
	nsSASL    = "urn:ietf:params:xml:ns:xmpp-sasl"
)

// xmppFeatures is what Detect reads from <stream:features>.
type xmppFeatures struct {
	starttls   bool
	required   bool
	mechanisms []string
	// streamError is the condition of a <stream:error> sent instead.
	streamError string
}

func xmppStreamHeader(to string) string {
	var b strings.Builder
	b.WriteString("<?xml version='1.0'?><stream:stream to='")
	_ = xml.EscapeText(&b, []byte(to))
	b.WriteString("' version='1.0' xmlns='jabber:client' xmlns:stream='" + nsStreams + "'>")
	return b.String()
}

// readUntil reads from w until buf contains one of the markers, at most max bytes.
func readUntil(w *wire, max int, markers ...string) ([]byte, error) {
	if err := w.arm(w.timeout); err != nil {
		return nil, err
	}
	var buf []byte
	chunk := make([]byte, readBufSize)
	for {
		for _, m := range markers {
			if bytes.Contains(buf, []byte(m)) {
				return buf, nil
			}
		}
		if len(buf) >= max {
			return nil, fmt.Errorf("%w: no %q in the first %d bytes", errTooLong, markers[0], max)
		}
		n, err := w.r.Read(chunk[:min(len(chunk), max-len(buf))])
		buf = append(buf, chunk[:n]...)
		if err != nil {
			if len(buf) > 0 && errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return buf, err
		}
	}
}

// parseXMPPFeatures walks the tokens of a stream opening up to the end of
// <stream:features> or <stream:error>.
func parseXMPPFeatures(b []byte) (xmppFeatures, error) {
	var f xmppFeatures
	dec := xml.NewDecoder(bytes.NewReader(b))
	dec.Strict = true
	var path []xml.Name
	sawStream := false
	for {
		tok, err := dec.Token()
		if err != nil {
			if !sawStream {
				return f, notThis("not an XMPP stream: %v", err)
			}
			return f, nil
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(path) == 0 {
				if t.Name.Space != nsStreams || t.Name.Local != "stream" {
					return f, notThis("first element is <%s>, not <stream:stream>", shown([]byte(t.Name.Local)))
				}
				sawStream = true
			}
			if len(path) == 2 && path[1].Space == nsStreams && path[1].Local == "error" && f.streamError == "" {
				f.streamError = t.Name.Local
			}
			if len(path) == 2 && t.Name.Space == nsTLS && t.Name.Local == "starttls" {
				f.starttls = true
			}
			if len(path) == 3 && path[2].Space == nsTLS && t.Name.Local == "required" {
				f.required = true
			}
			path = append(path, t.Name)
			if len(path) > 8 {
				return f, fmt.Errorf("service: XMPP features nested deeper than 8")
			}
		case xml.EndElement:
			if len(path) == 0 {
				return f, nil
			}
			path = path[:len(path)-1]
			if len(path) == 1 {
				return f, nil // end of <stream:features> or <stream:error>
			}
		case xml.CharData:
			if len(path) == 4 && path[2].Space == nsSASL && path[3].Local == "mechanism" && len(f.mechanisms) < 32 {
				f.mechanisms = append(f.mechanisms, strings.TrimSpace(string(t)))
			}
		}
	}
}

func xmppOpen(w *wire, to string) (xmppFeatures, error) {
	if err := w.writeString(xmppStreamHeader(to)); err != nil {
		return xmppFeatures{}, err
	}
	buf, err := readUntil(w, maxPacket, "</stream:features>", "<stream:features/>", "</features>", "</stream:error>")
	if err != nil && len(buf) == 0 {
		return xmppFeatures{}, err
	}
	return parseXMPPFeatures(buf)
}

func xmppStartTLS(w *wire) error {
	if err := w.writeString("<starttls xmlns='" + nsTLS + "'/>"); err != nil {
		return err
	}
	buf, err := readUntil(w, maxLine, "/>", "</proceed>", "</failure>")
	if err != nil {
		return err
	}
	if !bytes.Contains(buf, []byte("<proceed")) {
		return fmt.Errorf("server answered %s instead of <proceed/>", quoted(buf))
	}
	return nil
}

func runXMPP(_ context.Context, d *detector, s *session, r *Result) error {
	f, err := xmppOpen(s.w, d.opts.ServerName)
	if err != nil {
		return err
	}
	r.Protocol = ProtoXMPP
	if f.streamError != "" {
		r.add(CodeServiceRefused, SeverityInfo, "The XMPP server at %s closed the stream for %s with <%s/>; set the server name to the XMPP domain.",
			d.addr, quoted([]byte(d.opts.ServerName)), shown([]byte(f.streamError)))
		return nil
	}
	if s.tls {
		return nil
	}
	if !f.starttls {
		r.Encryption = EncryptionNone
		r.add(CodeNoTLS, SeverityHigh, "The XMPP server at %s does not offer STARTTLS: messages and passwords cross the network in the clear.", d.addr)
		return nil
	}
	if err := xmppStartTLS(s.w); err != nil {
		r.Encryption = EncryptionNone
		r.add(CodeUpgradeRefused, SeverityHigh, "The XMPP server at %s advertises STARTTLS but refused it: %s.", d.addr, err)
		return nil
	}
	r.Encryption = EncryptionStartTLS
	if !f.required {
		r.Encryption = EncryptionOptional
		if len(f.mechanisms) > 0 {
			r.add(CodeAuthBeforeTLS, authSeverity(f.mechanisms), "The XMPP server at %s offers SASL %s before STARTTLS, which it does not require.", d.addr, mechList(f.mechanisms))
		} else {
			r.add(CodeTLSOptional, SeverityMedium, "The XMPP server at %s offers STARTTLS without <required/>: clients may carry on in the clear.", d.addr)
		}
	}
	return nil
}

func upgradeXMPP(_ context.Context, d *detector, w *wire) error {
	f, err := xmppOpen(w, d.opts.ServerName)
	if err != nil {
		return fmt.Errorf("stream features: %w", err)
	}
	if !f.starttls {
		return errors.New("stream features: no <starttls/>")
	}
	return xmppStartTLS(w)
}

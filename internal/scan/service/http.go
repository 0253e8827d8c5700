package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
)

// HTTP/1.1 (RFC 9112) response heads read by hand, bounded, and
// Strict-Transport-Security (RFC 6797).

const (
	maxHeaders        = 100
	maxHeadBytes      = 32 << 10
	hstsOneYear       = 365 * 24 * 60 * 60
	httpDefaultPort   = "80"
	httpsDefaultPort  = "443"
	headerHSTS        = "strict-transport-security"
	headerLocation    = "location"
	headerServer      = "server"
	httpStatusMinimum = 100
)

type httpHead struct {
	status  int
	line    []byte
	headers [][2]string // lower-cased name, raw value
}

func (h httpHead) get(name string) (string, bool) {
	for _, kv := range h.headers {
		if kv[0] == name {
			return kv[1], true
		}
	}
	return "", false
}

// parseStatusLine accepts "HTTP/1.x NNN[ reason]".
func parseStatusLine(line []byte) (int, error) {
	rest, ok := bytes.CutPrefix(line, []byte("HTTP/1."))
	if !ok || len(rest) < 5 || rest[1] != ' ' {
		return 0, notThis("status line %s", quoted(line))
	}
	code, err := strconv.Atoi(string(rest[2:5]))
	if err != nil || code < httpStatusMinimum || (len(rest) > 5 && rest[5] != ' ') {
		return 0, notThis("status line %s", quoted(line))
	}
	return code, nil
}

// readHTTPHead reads the status line and header fields.
func readHTTPHead(w *wire) (httpHead, error) {
	var h httpHead
	line, err := w.readLine(maxLine)
	if err != nil {
		return h, err
	}
	if h.status, err = parseStatusLine(line); err != nil {
		return h, err
	}
	h.line = line
	total := len(line)
	for {
		line, err := w.readLine(maxLine)
		if err != nil {
			return h, err
		}
		if len(line) == 0 {
			return h, nil
		}
		if total += len(line); total > maxHeadBytes || len(h.headers) >= maxHeaders {
			return h, fmt.Errorf("%w: response head over %d bytes or %d fields", errTooLong, maxHeadBytes, maxHeaders)
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || len(name) == 0 || bytes.ContainsAny(name, " \t") {
			continue // obs-fold or garbage: ignored, as RFC 9112 section 5.2 allows
		}
		h.headers = append(h.headers, [2]string{strings.ToLower(string(name)), string(bytes.TrimSpace(value))})
	}
}

func (d *detector) hostHeader(tls bool) string {
	_, port, _ := net.SplitHostPort(d.addr)
	def := httpDefaultPort
	if tls {
		def = httpsDefaultPort
	}
	if port == def {
		if strings.Contains(d.opts.ServerName, ":") {
			return "[" + d.opts.ServerName + "]" // IPv6 literal (RFC 9110 section 7.2)
		}
		return d.opts.ServerName
	}
	return net.JoinHostPort(d.opts.ServerName, port)
}

func runHTTP(_ context.Context, d *detector, s *session, r *Result) error {
	req := "GET / HTTP/1.1\r\nHost: " + d.hostHeader(s.tls) + "\r\nUser-Agent: certwright-scan\r\nAccept: */*\r\nConnection: close\r\n\r\n"
	if err := s.w.writeString(req); err != nil {
		return err
	}
	h, err := readHTTPHead(s.w)
	if err != nil {
		return err
	}
	r.Protocol = ProtoHTTP
	r.Banner = shown(h.line)
	if v, ok := h.get(headerServer); ok {
		r.Version = shown([]byte(v))
	}
	if s.tls {
		hstsFindings(d, h, r)
		return nil
	}
	r.Encryption = EncryptionNone
	loc, _ := h.get(headerLocation)
	if h.status >= 300 && h.status < 400 && strings.HasPrefix(strings.ToLower(loc), "https://") {
		return nil
	}
	if h.status >= 300 && h.status < 400 {
		r.add(CodeNoHTTPSRedirect, SeverityMedium, "The HTTP server at %s redirects GET / to %s, not to https://.", d.addr, quoted([]byte(loc)))
	} else {
		r.add(CodeNoHTTPSRedirect, SeverityMedium, "The HTTP server at %s answers GET / with %s instead of redirecting to https://.", d.addr, quoted(h.line))
	}
	return nil
}

func hstsFindings(d *detector, h httpHead, r *Result) {
	v, ok := h.get(headerHSTS)
	if !ok {
		r.add(CodeHSTSMissing, SeverityMedium, "The HTTPS server at %s sends no Strict-Transport-Security header: a browser can be led to http:// on a first visit or a typed address.", d.addr)
		return
	}
	hsts, err := parseHSTS(v)
	if err != nil {
		r.add(CodeHSTSInvalid, SeverityMedium, "The HTTPS server at %s sends Strict-Transport-Security %s, which browsers ignore: %v.", d.addr, quoted([]byte(v)), err)
		return
	}
	r.HSTS = &hsts
	switch {
	case hsts.MaxAge == 0:
		r.add(CodeHSTSDisabled, SeverityMedium, "The HTTPS server at %s sends max-age=0, which tells browsers to forget its HSTS policy.", d.addr)
	case hsts.MaxAge < hstsOneYear:
		r.add(CodeHSTSShort, SeverityLow, "The HTTPS server at %s sets HSTS max-age=%d, under one year (%d).", d.addr, hsts.MaxAge, hstsOneYear)
	}
	if !hsts.IncludeSubDomains && hsts.MaxAge > 0 {
		r.add(CodeHSTSNoSubdomains, SeverityInfo, "The HTTPS server at %s does not set includeSubDomains in its HSTS policy.", d.addr)
	}
}

var errHSTS = errors.New("service: invalid Strict-Transport-Security")

// isTchar reports RFC 9110 token characters.
func isTchar(c byte) bool {
	return c > ' ' && c < 0x7f && !strings.ContainsRune(`"(),/:;<=>?@[\]{}`, rune(c))
}

// parseHSTS parses a header value per RFC 6797 section 6.1: directives
// separated by ";", names case-insensitive, each at most once, max-age
// required with a delta-seconds value (token or quoted-string).
func parseHSTS(v string) (HSTS, error) {
	h := HSTS{Header: shown([]byte(v))}
	seen := map[string]bool{}
	i := 0
	skipOWS := func() {
		for i < len(v) && (v[i] == ' ' || v[i] == '\t') {
			i++
		}
	}
	for i <= len(v) {
		skipOWS()
		if i == len(v) {
			break
		}
		if v[i] == ';' {
			i++
			continue
		}
		start := i
		for i < len(v) && isTchar(v[i]) {
			i++
		}
		if i == start {
			return h, fmt.Errorf("%w: unexpected %s", errHSTS, quoted([]byte{v[i]}))
		}
		name := strings.ToLower(v[start:i])
		if seen[name] {
			return h, fmt.Errorf("%w: directive %s appears twice", errHSTS, shown([]byte(name)))
		}
		seen[name] = true
		skipOWS()
		var value string
		hasValue := false
		if i < len(v) && v[i] == '=' {
			i++
			skipOWS()
			val, n, err := hstsValue(v[i:])
			if err != nil {
				return h, err
			}
			value, hasValue, i = val, true, i+n
			skipOWS()
		}
		if i < len(v) && v[i] != ';' {
			return h, fmt.Errorf("%w: expected ';' after directive %s", errHSTS, shown([]byte(name)))
		}
		switch name {
		case "max-age":
			if !hasValue {
				return h, fmt.Errorf("%w: max-age has no value", errHSTS)
			}
			age, err := deltaSeconds(value)
			if err != nil {
				return h, err
			}
			h.MaxAge = age
		case "includesubdomains":
			h.IncludeSubDomains = true
		case "preload":
			h.Preload = true
		}
	}
	if !seen["max-age"] {
		return h, fmt.Errorf("%w: max-age is missing", errHSTS)
	}
	return h, nil
}

// hstsValue reads a token or quoted-string and returns it with the bytes used.
func hstsValue(s string) (string, int, error) {
	if s == "" {
		return "", 0, fmt.Errorf("%w: empty directive value", errHSTS)
	}
	if s[0] != '"' {
		n := 0
		for n < len(s) && isTchar(s[n]) {
			n++
		}
		if n == 0 {
			return "", 0, fmt.Errorf("%w: empty directive value", errHSTS)
		}
		return s[:n], n, nil
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			return b.String(), i + 1, nil
		case c == '\\' && i+1 < len(s):
			i++
			b.WriteByte(s[i])
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, fmt.Errorf("%w: unterminated quoted string", errHSTS)
}

// deltaSeconds parses 1*DIGIT, capping values beyond int64 (RFC 6797
// section 6.1.1 lets a user agent cap them).
func deltaSeconds(s string) (int64, error) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("%w: max-age %s is not a number of seconds", errHSTS, quoted([]byte(s)))
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return math.MaxInt64, nil
	}
	return n, nil
}

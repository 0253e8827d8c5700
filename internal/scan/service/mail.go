package service

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
)

// reply is one SMTP (RFC 5321 section 4.2) or FTP (RFC 959 section 4.2)
// reply: a three-digit code and the text of each line after the code.
type reply struct {
	code  int
	lines [][]byte
}

// parseReplyLine splits "250-text" / "250 text" / "250".
func parseReplyLine(line []byte) (code int, more bool, text []byte, ok bool) {
	if len(line) < 3 {
		return 0, false, nil, false
	}
	for _, c := range line[:3] {
		if c < '0' || c > '9' {
			return 0, false, nil, false
		}
	}
	code = int(line[0]-'0')*100 + int(line[1]-'0')*10 + int(line[2]-'0')
	switch {
	case len(line) == 3:
		return code, false, nil, true
	case line[3] == ' ':
		return code, false, line[4:], true
	case line[3] == '-':
		return code, true, line[4:], true
	}
	return 0, false, nil, false
}

// readReply reads one reply, multi-line included. It accepts SMTP's
// "code-" continuation lines and FTP's free-text ones between "code-" and
// "code ".
func readReply(w *wire) (reply, error) {
	var rep reply
	total := 0
	for i := 0; ; i++ {
		if i >= maxReplyLines {
			return reply{}, fmt.Errorf("%w: reply over %d lines", errTooLong, maxReplyLines)
		}
		line, err := w.readLine(maxLine)
		if err != nil {
			return reply{}, err
		}
		if total += len(line); total > maxReplyBytes {
			return reply{}, fmt.Errorf("%w: reply over %d bytes", errTooLong, maxReplyBytes)
		}
		code, more, text, ok := parseReplyLine(line)
		switch {
		case i == 0 && !ok:
			return reply{}, notThis("reply %s has no three-digit code", quoted(line))
		case i == 0:
			rep.code = code
		case !ok || code != rep.code:
			rep.lines = append(rep.lines, line) // FTP free-text continuation
			continue
		}
		rep.lines = append(rep.lines, text)
		if !more {
			return rep, nil
		}
	}
}

func command(w *wire, cmd string) (reply, error) {
	if err := w.writeString(cmd + "\r\n"); err != nil {
		return reply{}, err
	}
	return readReply(w)
}

func (rep reply) text() []byte { return bytes.Join(rep.lines, []byte(" ")) }

// keywords maps each line's first word, upper-cased, to the rest; "AUTH=X"
// (pre-RFC 4954 servers) counts as "AUTH X".
func keywords(lines [][]byte) map[string][]string {
	out := map[string][]string{}
	for _, l := range lines {
		f := strings.Fields(strings.ReplaceAll(string(l), "=", " "))
		if len(f) == 0 {
			continue
		}
		k := strings.ToUpper(f[0])
		out[k] = append(out[k], f[1:]...)
	}
	return out
}

// plaintextSecrets reports whether any mechanism sends the password itself.
func plaintextSecrets(mechs []string) bool {
	for _, m := range mechs {
		switch strings.ToUpper(m) {
		case "PLAIN", "LOGIN", "USER", "LOGIN-COMMAND":
			return true
		}
	}
	return false
}

func authSeverity(mechs []string) Severity {
	if plaintextSecrets(mechs) {
		return SeverityHigh
	}
	return SeverityMedium
}

func mechList(mechs []string) string { return shown([]byte(strings.Join(mechs, " "))) }

// --- SMTP (RFC 5321, STARTTLS RFC 3207) ---

func greetsSMTP(b []byte, _ bool) bool { return replyCode(b, "220", "421", "554") }

func runSMTP(_ context.Context, d *detector, s *session, r *Result) error {
	greet, err := readReply(s.w)
	if err != nil {
		return err
	}
	r.Protocol = ProtoSMTP
	r.Banner = shown(greet.lines[0])
	if greet.code != 220 {
		r.add(CodeServiceRefused, SeverityInfo, "The SMTP server at %s refused the session: %d %s.", d.addr, greet.code, quoted(greet.text()))
		return nil
	}
	defer func() { _ = s.w.writeString("QUIT\r\n") }()
	ehlo, err := command(s.w, "EHLO "+d.opts.LocalName)
	if err != nil {
		return err
	}
	var ext map[string][]string
	if ehlo.code == 250 {
		ext = keywords(ehlo.lines[1:])
	}
	if s.tls {
		return nil
	}
	auth := ext["AUTH"]
	if _, ok := ext["STARTTLS"]; !ok {
		r.Encryption = EncryptionNone
		r.add(CodeNoTLS, SeverityHigh, "The SMTP server at %s does not offer STARTTLS: mail and any credentials cross the network in the clear.", d.addr)
		if len(auth) > 0 {
			r.add(CodeAuthBeforeTLS, authSeverity(auth), "The SMTP server at %s offers AUTH %s without TLS: a client can send its password in the clear.", d.addr, mechList(auth))
		}
		return nil
	}
	rep, err := command(s.w, "STARTTLS")
	if err != nil {
		return err
	}
	if rep.code != 220 {
		r.Encryption = EncryptionNone
		r.add(CodeUpgradeRefused, SeverityHigh, "The SMTP server at %s advertises STARTTLS but answered it with %d %s.", d.addr, rep.code, quoted(rep.text()))
		return nil
	}
	r.Encryption = EncryptionStartTLS
	if len(auth) > 0 {
		r.Encryption = EncryptionOptional
		r.add(CodeAuthBeforeTLS, authSeverity(auth), "The SMTP server at %s offers AUTH %s before STARTTLS: a client can send its password in the clear.", d.addr, mechList(auth))
	}
	return nil
}

func expect(rep reply, err error, code int, step string) error {
	if err != nil {
		return fmt.Errorf("%s: %w", step, err)
	}
	if rep.code != code {
		return fmt.Errorf("%s: server answered %d %s, expected %d", step, rep.code, quoted(rep.text()), code)
	}
	return nil
}

func upgradeSMTP(_ context.Context, d *detector, w *wire) error {
	rep, err := readReply(w)
	if err := expect(rep, err, 220, "greeting"); err != nil {
		return err
	}
	rep, err = command(w, "EHLO "+d.opts.LocalName)
	if err := expect(rep, err, 250, "EHLO"); err != nil {
		return err
	}
	rep, err = command(w, "STARTTLS")
	return expect(rep, err, 220, "STARTTLS")
}

// --- IMAP (RFC 9051; STARTTLS and LOGINDISABLED section 6.2) ---

func greetsIMAP(b []byte, _ bool) bool {
	u := bytes.ToUpper(b)
	return bytes.HasPrefix(u, []byte("* OK")) || bytes.HasPrefix(u, []byte("* PREAUTH")) || bytes.HasPrefix(u, []byte("* BYE"))
}

// imapCapabilities collects the atoms of "[CAPABILITY ...]" response codes
// and "* CAPABILITY" lines, upper-cased.
func imapCapabilities(lines [][]byte) map[string]bool {
	caps := map[string]bool{}
	for _, l := range lines {
		u := bytes.ToUpper(l)
		var list []byte
		if i := bytes.Index(u, []byte("[CAPABILITY ")); i >= 0 {
			list = u[i+len("[CAPABILITY "):]
			if j := bytes.IndexByte(list, ']'); j >= 0 {
				list = list[:j]
			}
		} else if rest, ok := bytes.CutPrefix(u, []byte("* CAPABILITY ")); ok {
			list = rest
		}
		for _, a := range bytes.Fields(list) {
			caps[string(a)] = true
		}
	}
	return caps
}

// imapCommand sends "tag cmd" and returns the untagged lines and the
// tagged status ("OK", "NO", "BAD").
func imapCommand(w *wire, tag, cmd string) (untagged [][]byte, status string, err error) {
	if err := w.writeString(tag + " " + cmd + "\r\n"); err != nil {
		return nil, "", err
	}
	for range maxReplyLines {
		line, err := w.readLine(maxLine)
		if err != nil {
			return nil, "", err
		}
		if rest, ok := bytes.CutPrefix(line, []byte(tag+" ")); ok {
			f := bytes.Fields(rest)
			if len(f) == 0 {
				return nil, "", notThis("empty tagged IMAP response")
			}
			return untagged, strings.ToUpper(string(f[0])), nil
		}
		untagged = append(untagged, line)
	}
	return nil, "", fmt.Errorf("%w: IMAP response over %d lines", errTooLong, maxReplyLines)
}

func runIMAP(_ context.Context, d *detector, s *session, r *Result) error {
	greet, err := s.w.readLine(maxLine)
	if err != nil {
		return err
	}
	if !greetsIMAP(greet, true) {
		return notThis("IMAP greeting %s", quoted(greet))
	}
	r.Protocol = ProtoIMAP
	r.Banner = shown(greet)
	if bytes.HasPrefix(bytes.ToUpper(greet), []byte("* BYE")) {
		r.add(CodeServiceRefused, SeverityInfo, "The IMAP server at %s refused the session: %s.", d.addr, quoted(greet))
		return nil
	}
	defer func() { _ = s.w.writeString("z LOGOUT\r\n") }()
	caps := imapCapabilities([][]byte{greet})
	if len(caps) == 0 {
		lines, status, err := imapCommand(s.w, "a", "CAPABILITY")
		if err != nil {
			return err
		}
		if status == "OK" {
			caps = imapCapabilities(lines)
		}
	}
	if s.tls {
		return nil
	}
	if bytes.HasPrefix(bytes.ToUpper(greet), []byte("* PREAUTH")) {
		r.add(CodeUnauthenticated, SeverityHigh, "The IMAP server at %s greets with PREAUTH: the session is logged in before any TLS.", d.addr)
	}
	var offered []string
	if !caps["LOGINDISABLED"] {
		offered = append(offered, "LOGIN-COMMAND")
	}
	for c := range caps {
		if m, ok := strings.CutPrefix(c, "AUTH="); ok {
			offered = append(offered, m)
		}
	}
	slices.Sort(offered)
	if !caps["STARTTLS"] {
		r.Encryption = EncryptionNone
		r.add(CodeNoTLS, SeverityHigh, "The IMAP server at %s does not offer STARTTLS: mail and passwords cross the network in the clear.", d.addr)
		return nil
	}
	_, status, err := imapCommand(s.w, "b", "STARTTLS")
	if err != nil {
		return err
	}
	if status != "OK" {
		r.Encryption = EncryptionNone
		r.add(CodeUpgradeRefused, SeverityHigh, "The IMAP server at %s advertises STARTTLS but answered it with %s.", d.addr, quoted([]byte(status)))
		return nil
	}
	r.Encryption = EncryptionStartTLS
	if len(offered) > 0 {
		r.Encryption = EncryptionOptional
		r.add(CodeAuthBeforeTLS, authSeverity(offered),
			"The IMAP server at %s accepts logins before STARTTLS (%s; LOGINDISABLED is %s): a client can send its password in the clear.",
			d.addr, mechList(offered), presence(caps["LOGINDISABLED"]))
	}
	return nil
}

func presence(b bool) string {
	if b {
		return "advertised"
	}
	return "not advertised"
}

func upgradeIMAP(_ context.Context, _ *detector, w *wire) error {
	greet, err := w.readLine(maxLine)
	if err != nil {
		return fmt.Errorf("greeting: %w", err)
	}
	if !bytes.HasPrefix(bytes.ToUpper(greet), []byte("* OK")) {
		return fmt.Errorf("greeting %s is not * OK", quoted(greet))
	}
	_, status, err := imapCommand(w, "a", "STARTTLS")
	if err != nil {
		return fmt.Errorf("STARTTLS: %w", err)
	}
	if status != "OK" {
		return fmt.Errorf("STARTTLS: server answered %s", quoted([]byte(status)))
	}
	return nil
}

// --- POP3 (RFC 1939; CAPA RFC 2449; STLS RFC 2595) ---

func greetsPOP3(b []byte, _ bool) bool {
	return bytes.HasPrefix(b, []byte("+OK")) || bytes.HasPrefix(b, []byte("-ERR"))
}

// readPOP3Multi reads the lines of a multi-line response up to ".".
func readPOP3Multi(w *wire) ([][]byte, error) {
	var lines [][]byte
	for range maxReplyLines {
		line, err := w.readLine(maxLine)
		if err != nil {
			return nil, err
		}
		if string(line) == "." {
			return lines, nil
		}
		lines = append(lines, bytes.TrimPrefix(line, []byte(".")))
	}
	return nil, fmt.Errorf("%w: POP3 response over %d lines", errTooLong, maxReplyLines)
}

func pop3Command(w *wire, cmd string) ([]byte, bool, error) {
	if err := w.writeString(cmd + "\r\n"); err != nil {
		return nil, false, err
	}
	line, err := w.readLine(maxLine)
	if err != nil {
		return nil, false, err
	}
	switch {
	case bytes.HasPrefix(line, []byte("+OK")):
		return line, true, nil
	case bytes.HasPrefix(line, []byte("-ERR")):
		return line, false, nil
	}
	return nil, false, notThis("POP3 status %s", quoted(line))
}

func runPOP3(_ context.Context, d *detector, s *session, r *Result) error {
	greet, err := s.w.readLine(maxLine)
	if err != nil {
		return err
	}
	if !greetsPOP3(greet, true) {
		return notThis("POP3 greeting %s", quoted(greet))
	}
	r.Protocol = ProtoPOP3
	r.Banner = shown(greet)
	if bytes.HasPrefix(greet, []byte("-ERR")) {
		r.add(CodeServiceRefused, SeverityInfo, "The POP3 server at %s refused the session: %s.", d.addr, quoted(greet))
		return nil
	}
	defer func() { _ = s.w.writeString("QUIT\r\n") }()
	_, ok, err := pop3Command(s.w, "CAPA")
	if err != nil {
		return err
	}
	var caps map[string][]string
	if ok {
		lines, err := readPOP3Multi(s.w)
		if err != nil {
			return err
		}
		caps = keywords(lines)
	}
	if s.tls {
		return nil
	}
	var offered []string
	if _, ok := caps["USER"]; ok {
		offered = append(offered, "USER")
	}
	offered = append(offered, caps["SASL"]...)
	_, advertised := caps["STLS"]
	if caps != nil && !advertised {
		r.Encryption = EncryptionNone
		r.add(CodeNoTLS, SeverityHigh, "The POP3 server at %s does not offer STLS: mail and passwords cross the network in the clear.", d.addr)
		return nil
	}
	// With CAPA listing STLS, or without CAPA at all, ask for it.
	status, ok, err := pop3Command(s.w, "STLS")
	if err != nil {
		return err
	}
	if !ok {
		r.Encryption = EncryptionNone
		if advertised {
			r.add(CodeUpgradeRefused, SeverityHigh, "The POP3 server at %s advertises STLS but answered it with %s.", d.addr, quoted(status))
		} else {
			r.add(CodeNoTLS, SeverityHigh, "The POP3 server at %s does not support STLS: mail and passwords cross the network in the clear.", d.addr)
		}
		return nil
	}
	r.Encryption = EncryptionStartTLS
	if len(offered) > 0 {
		r.Encryption = EncryptionOptional
		r.add(CodeAuthBeforeTLS, authSeverity(offered), "The POP3 server at %s offers %s before STLS: a client can send its password in the clear.", d.addr, mechList(offered))
	}
	return nil
}

func upgradePOP3(_ context.Context, _ *detector, w *wire) error {
	greet, err := w.readLine(maxLine)
	if err != nil {
		return fmt.Errorf("greeting: %w", err)
	}
	if !bytes.HasPrefix(greet, []byte("+OK")) {
		return fmt.Errorf("greeting %s is not +OK", quoted(greet))
	}
	status, ok, err := pop3Command(w, "STLS")
	if err != nil {
		return fmt.Errorf("STLS: %w", err)
	}
	if !ok {
		return fmt.Errorf("STLS: server answered %s", quoted(status))
	}
	return nil
}

// --- FTP (RFC 959; FEAT RFC 2389; AUTH TLS RFC 4217) ---

func greetsFTP(b []byte, expected bool) bool {
	return replyCode(b, "220", "120", "421") && (expected || containsFold(firstLine(b), "FTP"))
}

// ftpAuthTLS reports whether FEAT lines list AUTH with TLS among its
// parameters ("AUTH TLS", "AUTH TLS;TLS-C;SSL").
func ftpAuthTLS(lines [][]byte) bool {
	for _, l := range lines {
		f := strings.Fields(strings.ToUpper(strings.NewReplacer(";", " ", ",", " ").Replace(string(l))))
		if len(f) > 1 && f[0] == "AUTH" && slices.Contains(f[1:], "TLS") {
			return true
		}
	}
	return false
}

func runFTP(_ context.Context, d *detector, s *session, r *Result) error {
	greet, err := readReply(s.w)
	if err != nil {
		return err
	}
	r.Protocol = ProtoFTP
	r.Banner = shown(greet.lines[0])
	if greet.code != 220 {
		r.add(CodeServiceRefused, SeverityInfo, "The FTP server at %s refused the session: %d %s.", d.addr, greet.code, quoted(greet.text()))
		return nil
	}
	feat, err := command(s.w, "FEAT")
	if err != nil {
		return err
	}
	if s.tls {
		_ = s.w.writeString("QUIT\r\n")
		return nil
	}
	if feat.code != 211 || !ftpAuthTLS(feat.lines) {
		// FEAT may be missing while AUTH TLS works; asking is the only test.
		rep, err := command(s.w, "AUTH TLS")
		if err != nil {
			return err
		}
		if rep.code != 234 {
			_ = s.w.writeString("QUIT\r\n")
			r.Encryption = EncryptionNone
			r.add(CodeNoTLS, SeverityHigh, "The FTP server at %s does not offer AUTH TLS: files and passwords cross the network in the clear.", d.addr)
			return nil
		}
		r.Encryption = EncryptionStartTLS
		return nil
	}
	defer func() { _ = s.w.writeString("QUIT\r\n") }()
	// RFC 4217 section 6: a server that requires TLS refuses USER before AUTH.
	user, err := command(s.w, "USER certwright-scan")
	if err != nil {
		return err
	}
	r.Encryption = EncryptionStartTLS
	if user.code == 230 || user.code == 331 || user.code == 332 {
		r.Encryption = EncryptionOptional
		r.add(CodeAuthBeforeTLS, SeverityHigh, "The FTP server at %s offers AUTH TLS but accepts USER before it (%d): a client can send its password in the clear.", d.addr, user.code)
	}
	return nil
}

func upgradeFTP(_ context.Context, _ *detector, w *wire) error {
	rep, err := readReply(w)
	if err := expect(rep, err, 220, "greeting"); err != nil {
		return err
	}
	rep, err = command(w, "AUTH TLS")
	return expect(rep, err, 234, "AUTH TLS")
}

package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/lifecycle"
)

// Email TLS modes.
const (
	TLSStartTLS = "starttls" // plain connection upgraded with STARTTLS; refuse to send without it
	TLSImplicit = "implicit" // TLS from the first byte (SMTPS, port 465)
	TLSNone     = "none"     // no TLS; loopback relays only
)

const (
	defaultEmailTimeout = 30 * time.Second
	// maxRecipients caps To: an alert goes to a team's list, not a
	// mailing campaign.
	maxRecipients = 50
	// maxServerBytes caps what one conversation reads from the server.
	maxServerBytes = 1 << 20
	// maxDetail caps the detail copied into a message body.
	maxDetail = 16 << 10
)

// EmailConfig configures an email channel.
type EmailConfig struct {
	Name string
	Addr string // host:port of the SMTP server
	// TLS is "starttls" (default; refuse to send if the server does not
	// offer it), "implicit" (SMTPS, e.g. port 465) or "none" (plain;
	// only to a loopback relay).
	TLS string
	// Username and Password, when set, authenticate with AUTH PLAIN, only
	// ever over TLS or to a loopback relay.
	Username, Password string
	From               string
	To                 []string
	RootCAs            *x509.CertPool // nil: system roots
	ServerName         string         // TLS name; default: host of Addr
	Timeout            time.Duration  // whole conversation; 0: 30s
	Clock              clock.Clock    // Date header; nil: the system clock
}

// Email sends each alert as one plain-text message over SMTP.
type Email struct {
	name       string
	addr       string
	host       string
	tlsMode    string
	username   string
	password   string
	from       *mail.Address
	to         []*mail.Address
	rootCAs    *x509.CertPool
	serverName string
	timeout    time.Duration
	clock      clock.Clock
	helloName  string
}

var _ Channel = (*Email)(nil)

// dnsName is a plausible host name for EHLO and Message-ID.
var dnsName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,62}\.?)*$`)

// NewEmail checks cfg and returns the channel.
func NewEmail(cfg EmailConfig) (*Email, error) {
	const typ = "email"
	if err := validateName(typ, cfg.Name); err != nil {
		return nil, err
	}
	bad := func(format string, args ...any) (*Email, error) {
		return nil, configErr(typ, cfg.Name, format, args...)
	}
	// Line breaks would let a value add SMTP commands or headers.
	for _, f := range []struct{ field, value string }{
		{"smtp address", cfg.Addr}, {"tls", cfg.TLS}, {"username", cfg.Username},
		{"from", cfg.From}, {"server name", cfg.ServerName},
	} {
		if hasCRLF(f.value) {
			return bad("%s contains a line break", f.field)
		}
	}
	if hasCRLF(cfg.Password) {
		return bad("password contains a line break")
	}
	for i, to := range cfg.To {
		if hasCRLF(to) {
			return bad("to[%d] contains a line break", i)
		}
	}

	host, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil || host == "" {
		return bad("smtp address %q must be host:port", cfg.Addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return bad("smtp address %q: port must be a number from 1 to 65535", cfg.Addr)
	}
	mode := cfg.TLS
	if mode == "" {
		mode = TLSStartTLS
	}
	switch mode {
	case TLSStartTLS, TLSImplicit:
	case TLSNone:
		if !isLoopback(host) {
			return bad("tls %q sends mail and passwords in clear text and is only allowed to a loopback relay (localhost, 127.0.0.1, ::1), not %q: use %q or %q",
				TLSNone, host, TLSStartTLS, TLSImplicit)
		}
	default:
		return bad("tls must be %q, %q or %q, not %q", TLSStartTLS, TLSImplicit, TLSNone, cfg.TLS)
	}
	if (cfg.Username == "") != (cfg.Password == "") {
		return bad("username and password must be given together")
	}
	if len(cfg.Username) > 256 || len(cfg.Password) > 1024 || hasControl(cfg.Username) || hasControl(cfg.Password) {
		return bad("username or password too long or contains control characters")
	}

	from, err := parseAddress(cfg.From)
	if err != nil {
		return bad("from: %v", err)
	}
	if len(cfg.To) == 0 {
		return bad("to: at least one recipient is required")
	}
	if len(cfg.To) > maxRecipients {
		return bad("to: %d recipients, at most %d allowed", len(cfg.To), maxRecipients)
	}
	to := make([]*mail.Address, 0, len(cfg.To))
	for i, s := range cfg.To {
		a, err := parseAddress(s)
		if err != nil {
			return bad("to[%d]: %v", i, err)
		}
		to = append(to, a)
	}

	serverName := cfg.ServerName
	if serverName == "" {
		serverName = host
	}
	if strings.ContainsAny(serverName, " \t") {
		return bad("server name %q contains white space", serverName)
	}
	if cfg.Timeout < 0 {
		return bad("timeout must not be negative")
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = defaultEmailTimeout
	}
	clk := cfg.Clock
	if clk == nil {
		clk = clock.Real{}
	}
	helloName := "localhost"
	if h, err := os.Hostname(); err == nil && len(h) <= 253 && dnsName.MatchString(h) {
		helloName = h
	}
	return &Email{
		name: cfg.Name, addr: cfg.Addr, host: host, tlsMode: mode,
		username: cfg.Username, password: cfg.Password,
		from: from, to: to, rootCAs: cfg.RootCAs, serverName: serverName,
		timeout: timeout, clock: clk, helloName: helloName,
	}, nil
}

// parseAddress parses one RFC 5322 address whose addr-spec is ASCII (the
// client does not speak SMTPUTF8).
func parseAddress(s string) (*mail.Address, error) {
	if s == "" {
		return nil, errors.New("address is empty")
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not an email address: %w", s, err)
	}
	for _, r := range a.Address {
		if r > unicode.MaxASCII || unicode.IsControl(r) || r == ' ' {
			return nil, fmt.Errorf("%q: the address part must be plain ASCII without spaces", s)
		}
	}
	return a, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, unicode.IsControl)
}

// Name returns the channel's name.
func (e *Email) Name() string { return e.name }

// Send mails a to every recipient in one SMTP conversation; it does not
// retry. The whole conversation is bounded by the configured timeout.
func (e *Email) Send(ctx context.Context, a lifecycle.Alert) error {
	msg, err := e.Message(a)
	if err != nil {
		return e.fail(true, 0, "cannot build message", err)
	}
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	err = e.deliver(ctx, msg)
	var de *Error
	if err == nil || !errors.As(err, &de) || de.Code != 0 {
		return err
	}
	// The conversation was cut short: say why rather than "use of closed
	// network connection".
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		return e.fail(false, 0, de.Msg+": cancelled", ctx.Err())
	case ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded):
		return e.fail(false, 0, fmt.Sprintf("%s: conversation with %s did not finish within %s", de.Msg, e.addr, e.timeout), context.DeadlineExceeded)
	}
	return err
}

func (e *Email) deliver(ctx context.Context, msg []byte) error {
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", e.addr)
	if err != nil {
		return e.fail(false, 0, "cannot connect to "+e.addr, err)
	}
	defer raw.Close()
	// net/smtp takes no context: the deadline bounds every read and
	// write, and cancellation closes the connection under it.
	if dl, ok := ctx.Deadline(); ok {
		if err := raw.SetDeadline(dl); err != nil {
			return e.fail(false, 0, "cannot set deadline", err)
		}
	}
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()

	var conn net.Conn = &limitedConn{Conn: raw, left: maxServerBytes}
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: e.rootCAs, ServerName: e.serverName}
	if e.tlsMode == TLSImplicit {
		tc := tls.Client(conn, tlsConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			return e.fail(false, 0, "TLS handshake with "+e.addr+" failed", err)
		}
		conn = tc
	}
	c, err := smtp.NewClient(conn, e.host)
	if err != nil {
		return e.replyErr("greeting", err)
	}
	defer c.Close()
	if err := c.Hello(e.helloName); err != nil {
		return e.replyErr("EHLO", err)
	}
	if e.tlsMode == TLSStartTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return e.fail(false, 0, fmt.Sprintf("server %s does not offer STARTTLS, and tls %q refuses to send without it: use tls %q for an SMTPS port (465) or %q for a loopback relay",
				e.addr, TLSStartTLS, TLSImplicit, TLSNone), nil)
		}
		if err := c.StartTLS(tlsConfig); err != nil {
			return e.replyErr("STARTTLS", err)
		}
	}
	if e.username != "" {
		if ok, _ := c.Extension("AUTH"); !ok {
			return e.fail(false, 0, fmt.Sprintf("server %s does not offer AUTH, but a username is configured", e.addr), nil)
		}
		auth := plainAuth{username: e.username, password: e.password, clear: e.tlsMode == TLSNone}
		if err := c.Auth(auth); err != nil {
			return e.replyErr(fmt.Sprintf("AUTH PLAIN as %q", e.username), err)
		}
	}
	if err := c.Mail(e.from.Address); err != nil {
		return e.replyErr("MAIL FROM", err)
	}
	for _, to := range e.to {
		if err := c.Rcpt(to.Address); err != nil {
			return e.replyErr(fmt.Sprintf("RCPT TO <%s>", to.Address), err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return e.replyErr("DATA", err)
	}
	if _, err := w.Write(msg); err != nil {
		return e.replyErr("sending the message", err)
	}
	if err := w.Close(); err != nil {
		return e.replyErr("end of DATA", err)
	}
	// The server has taken the message: a failed QUIT must not make the
	// dispatcher send it twice.
	_ = c.Quit()
	return nil
}

// replyErr classifies a failure of one SMTP step: 5xx replies are
// permanent, 4xx replies and transport failures are worth retrying.
func (e *Email) replyErr(step string, err error) error {
	var te *textproto.Error
	if errors.As(err, &te) {
		return e.fail(te.Code/100 == 5, te.Code,
			fmt.Sprintf("%s: server %s answered %03d %s", step, e.addr, te.Code, excerpt([]byte(te.Msg), maxQuoted, []string{e.password})), nil)
	}
	return e.fail(false, 0, step+" with "+e.addr+" failed", err)
}

func (e *Email) fail(permanent bool, code int, msg string, err error) error {
	return &Error{Channel: e.name, Type: "email", Permanent: permanent, Code: code, Msg: msg, Err: err}
}

// plainAuth is RFC 4616 PLAIN, refusing a clear-text connection unless the
// channel was configured for a loopback relay.
type plainAuth struct {
	username, password string
	clear              bool
}

func (p plainAuth) Start(info *smtp.ServerInfo) (string, []byte, error) {
	if !info.TLS && !p.clear {
		return "", nil, errors.New("refusing to send a password over a connection without TLS")
	}
	return "PLAIN", []byte("\x00" + p.username + "\x00" + p.password), nil
}

func (p plainAuth) Next(_ []byte, more bool) ([]byte, error) {
	if more {
		return nil, errors.New("unexpected server challenge after AUTH PLAIN")
	}
	return nil, nil
}

// limitedConn fails reads once a server has sent more than any SMTP
// conversation needs, so a hostile server cannot exhaust memory.
type limitedConn struct {
	net.Conn
	left int64
}

func (c *limitedConn) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, fmt.Errorf("server sent more than %d bytes", maxServerBytes)
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.Conn.Read(p)
	c.left -= int64(n)
	return n, err
}

// Message renders a as the RFC 5322 message Send transmits.
func (e *Email) Message(a lifecycle.Alert) ([]byte, error) {
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, fmt.Errorf("message id: %w", err)
	}
	var b bytes.Buffer
	header := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	header("Date", e.clock.Now().Format(time.RFC1123Z))
	header("From", e.from.String())
	to := make([]string, len(e.to))
	for i, rcpt := range e.to {
		to[i] = rcpt.String()
	}
	header("To", strings.Join(to, ",\r\n "))
	header("Subject", encodeHeader("[Certwright] "+truncate(oneLine(summary(a)), summaryShown)))
	header("Message-ID", "<"+hex.EncodeToString(id)+"@"+messageIDDomain(e.from.Address)+">")
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "quoted-printable")
	header("X-Certwright-Alert-Id", headerSafe(a.ID))
	header("X-Certwright-Event", headerSafe(string(a.Kind)))
	b.WriteString("\r\n")

	qp := quotedprintable.NewWriter(&b)
	if _, err := qp.Write([]byte(body(a))); err != nil {
		return nil, fmt.Errorf("encode body: %w", err)
	}
	if err := qp.Close(); err != nil {
		return nil, fmt.Errorf("encode body: %w", err)
	}
	return b.Bytes(), nil
}

// encodeHeader RFC 2047-encodes s when it is not plain ASCII and folds
// between encoded words, so that no header line grows past the limit.
func encodeHeader(s string) string {
	enc := mime.QEncoding.Encode("utf-8", s)
	return strings.ReplaceAll(enc, "?= =?", "?=\r\n =?")
}

// messageIDDomain is the right-hand side of a Message-ID: the sender's
// domain when it is a plain host name.
func messageIDDomain(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		if d := addr[i+1:]; len(d) <= 253 && dnsName.MatchString(d) {
			return d
		}
	}
	return "certwright.invalid"
}

// body is the plain-text body: summary, detail, then one line per field.
func body(a lifecycle.Alert) string {
	var b strings.Builder
	b.WriteString(oneLine(summary(a)) + "\n")
	if d := cleanText(a.Detail); d != "" {
		b.WriteString("\n" + d + "\n")
	}
	var rows [][2]string
	add := func(label, v string) {
		if v = oneLine(v); v != "" {
			rows = append(rows, [2]string{label, v})
		}
	}
	if c := a.Cert; c != nil {
		add("Serial", c.Serial)
		names := c.SANs
		if len(names) == 0 && c.Subject != "" {
			names = []string{c.Subject}
		}
		add("Names", strings.Join(names, ", "))
		if !c.NotAfter.IsZero() {
			add("Not after", c.NotAfter.UTC().Format("2006-01-02 15:04:05 UTC"))
		}
		add("Days left", fmt.Sprintf("%s (%s)", strconv.FormatFloat(a.DaysLeft, 'f', 1, 64), lifecycle.FormatDays(a.DaysLeft)))
		add("CA", c.CA)
		add("Profile", c.Profile)
		add("Owner", c.Owner)
		add("Tags", strings.Join(c.Tags, ", "))
		add("Source", c.Source)
	}
	add("Threshold", a.Threshold)
	add("Kind", string(a.Kind))
	add("Severity", string(a.Severity))
	add("Alert ID", a.ID)
	if !a.CreatedAt.IsZero() {
		add("Raised", a.CreatedAt.UTC().Format("2006-01-02 15:04:05 UTC"))
	}
	b.WriteString("\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "%-10s %s\n", r[0]+":", r[1])
	}
	b.WriteString("\n-- \nSent by Certwright.\n")
	return b.String()
}

// cleanText keeps the line structure of free text but drops control
// characters and caps its size.
func cleanText(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' || !unicode.IsControl(r) {
			return r
		}
		return -1
	}, s)
	return truncate(strings.TrimSpace(s), maxDetail)
}

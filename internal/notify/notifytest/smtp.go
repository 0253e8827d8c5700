// Package notifytest owns the real peers that alert-delivery tests talk to:
// an SMTP server (github.com/emersion/go-smtp) and a webhook receiver, both
// listening on 127.0.0.1 only, recording what they receive.
//
// Tests start them with StartSMTP and StartWebhook; CLI testscripts run
// them in the background with ServeSMTPUntil and ServeWebhookUntil, which
// write each message or request to a directory.
package notifytest

import (
	"bytes"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// SMTP server TLS modes.
const (
	TLSNone     = "none"
	TLSStartTLS = "starttls"
	TLSImplicit = "implicit"
)

const (
	maxMessageBytes = 1 << 20
	serverTimeout   = 10 * time.Second
)

// SMTPOptions configures StartSMTP.
type SMTPOptions struct {
	// TLS is "none" (default), "starttls" (offer STARTTLS) or "implicit"
	// (TLS from the first byte).
	TLS string
	// Username and Password, when set, make AUTH PLAIN required before
	// MAIL FROM; a wrong pair is answered 535.
	Username, Password string
	// Cert is the server's certificate; zero: a fresh self-signed one for
	// 127.0.0.1, ::1 and localhost.
	Cert tls.Certificate
}

// Mail is one message the server accepted.
type Mail struct {
	From    string   // envelope sender
	To      []string // envelope recipients
	Data    []byte   // the message as received
	Subject string   // decoded Subject header
	Body    string   // decoded text body, line breaks as \n
	TLS     bool     // the message arrived over TLS (implicit or STARTTLS)
	User    string   // the AUTH PLAIN user, "" without AUTH
}

// SMTPServer is a real SMTP server on 127.0.0.1.
type SMTPServer struct {
	Addr string

	opts    SMTPOptions
	certPEM []byte
	srv     *smtp.Server
	ln      net.Listener
	served  chan struct{}
	// onMessage, when set, runs before a message is acknowledged; an
	// error refuses the message with 451.
	onMessage func(n int, m Mail) error

	mu      sync.Mutex
	msgs    []Mail
	changed chan struct{} // closed and replaced on every new message
}

// StartSMTP starts a server on 127.0.0.1:0.
func StartSMTP(opts SMTPOptions) (*SMTPServer, error) {
	return startSMTP(opts, nil)
}

func startSMTP(opts SMTPOptions, onMessage func(int, Mail) error) (*SMTPServer, error) {
	if opts.TLS == "" {
		opts.TLS = TLSNone
	}
	if opts.TLS != TLSNone && opts.TLS != TLSStartTLS && opts.TLS != TLSImplicit {
		return nil, fmt.Errorf("notifytest: TLS must be %q, %q or %q, not %q", TLSNone, TLSStartTLS, TLSImplicit, opts.TLS)
	}
	if (opts.Username == "") != (opts.Password == "") {
		return nil, errors.New("notifytest: username and password must be given together")
	}
	cert, certPEM, err := serverCert(opts.Cert)
	if err != nil {
		return nil, err
	}
	s := &SMTPServer{opts: opts, certPEM: certPEM, served: make(chan struct{}), onMessage: onMessage, changed: make(chan struct{})}

	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{s: s, conn: c}, nil
	}))
	srv.Domain = "localhost"
	srv.ReadTimeout = serverTimeout
	srv.WriteTimeout = serverTimeout
	srv.MaxMessageBytes = maxMessageBytes
	srv.MaxRecipients = 50
	srv.AllowInsecureAuth = opts.TLS == TLSNone
	srv.ErrorLog = log.New(io.Discard, "", 0)
	tlsConfig := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("notifytest: listen: %w", err)
	}
	switch opts.TLS {
	case TLSStartTLS:
		srv.TLSConfig = tlsConfig
	case TLSImplicit:
		ln = tls.NewListener(ln, tlsConfig)
	}
	s.srv, s.ln = srv, ln
	s.Addr = ln.Addr().String()
	go func() {
		defer close(s.served)
		_ = srv.Serve(ln)
	}()
	return s, nil
}

// Messages returns the messages received so far.
func (s *SMTPServer) Messages() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return cloneMails(s.msgs)
}

// Wait returns the messages once at least n have arrived, or fails when
// ctx ends first.
func (s *SMTPServer) Wait(ctx context.Context, n int) ([]Mail, error) {
	for {
		s.mu.Lock()
		got, ch := len(s.msgs), s.changed
		if got >= n {
			defer s.mu.Unlock()
			return cloneMails(s.msgs), nil
		}
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("notifytest: SMTP server got %d of %d messages: %w", got, n, ctx.Err())
		}
	}
}

// CertPEM returns the server's certificate, for clients to trust.
func (s *SMTPServer) CertPEM() []byte { return bytes.Clone(s.certPEM) }

// Close stops the server and drops its connections.
func (s *SMTPServer) Close() error {
	err := s.srv.Close()
	// go-smtp only learns of the listener once Serve runs: a Close
	// before that must close it here, or Serve would accept forever.
	s.ln.Close()
	<-s.served
	if errors.Is(err, smtp.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

func (s *SMTPServer) record(m Mail) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.onMessage != nil {
		if err := s.onMessage(len(s.msgs)+1, m); err != nil {
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "cannot store message"}
		}
	}
	s.msgs = append(s.msgs, m)
	close(s.changed)
	s.changed = make(chan struct{})
	return nil
}

func cloneMails(in []Mail) []Mail {
	out := make([]Mail, len(in))
	for i, m := range in {
		m.To = append([]string(nil), m.To...)
		m.Data = bytes.Clone(m.Data)
		out[i] = m
	}
	return out
}

// session is one SMTP connection's state.
type session struct {
	s      *SMTPServer
	conn   *smtp.Conn
	user   string
	authed bool
	from   string
	to     []string
}

var _ smtp.AuthSession = (*session)(nil)

func (ss *session) AuthMechanisms() []string {
	if ss.s.opts.Username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	if ss.s.opts.Username == "" || mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		userOK := subtle.ConstantTimeCompare([]byte(username), []byte(ss.s.opts.Username))
		passOK := subtle.ConstantTimeCompare([]byte(password), []byte(ss.s.opts.Password))
		if userOK&passOK != 1 || (identity != "" && identity != username) {
			return smtp.ErrAuthFailed
		}
		ss.authed, ss.user = true, username
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.opts.Username != "" && !ss.authed {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, isTLS := ss.conn.TLSConnectionState()
	m := Mail{From: ss.from, To: append([]string(nil), ss.to...), Data: data, TLS: isTLS, User: ss.user}
	m.Subject, m.Body = decodeMessage(data)
	return ss.s.record(m)
}

func (ss *session) Reset() {
	ss.from = ""
	ss.to = nil
}

func (ss *session) Logout() error { return nil }

// decodeMessage returns the decoded Subject and text body of a message,
// or what it can of them when the message is malformed.
func decodeMessage(data []byte) (subject, body string) {
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		return "", ""
	}
	subject = msg.Header.Get("Subject")
	if dec, err := new(mime.WordDecoder).DecodeHeader(subject); err == nil {
		subject = dec
	}
	var r io.Reader = msg.Body
	switch strings.ToLower(strings.TrimSpace(msg.Header.Get("Content-Transfer-Encoding"))) {
	case "quoted-printable":
		r = quotedprintable.NewReader(r)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, r)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return subject, ""
	}
	return subject, strings.ReplaceAll(string(b), "\r\n", "\n")
}

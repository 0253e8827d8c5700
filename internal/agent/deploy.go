package agent

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/revcheck"
)

// maxOutput bounds the reload command's captured output.
const maxOutput = 64 << 10

// ErrDeploy marks a failed reload or check: the new files are in place,
// the service may not be using them, and the agent retries.
var ErrDeploy = errors.New("agent: deploy failed")

// boundedBuffer keeps the first max bytes written and counts the rest.
type boundedBuffer struct {
	buf     bytes.Buffer
	max     int
	dropped int
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	room := min(max(b.max-b.buf.Len(), 0), len(p))
	b.buf.Write(p[:room])
	b.dropped += len(p) - room
	return len(p), nil
}

func (b *boundedBuffer) String() string {
	s := strings.TrimSpace(b.buf.String())
	if b.dropped > 0 {
		s += fmt.Sprintf(" [%d more bytes not kept]", b.dropped)
	}
	return s
}

// reload runs e's reload command, if any, with the paths and the serial
// in its environment, and returns its (bounded) output.
func reload(ctx context.Context, e *Entry, serial string) (string, error) {
	var argv []string
	switch {
	case e.Reload != "":
		argv = []string{"/bin/sh", "-c", e.Reload}
	case len(e.ReloadArgv) > 0:
		argv = e.ReloadArgv
	default:
		return "", nil
	}
	ctx, cancel := context.WithTimeout(ctx, e.ReloadTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	killGroupOnCancel(cmd)
	// Children that keep the output pipes open must not hold the agent.
	cmd.WaitDelay = 5 * time.Second
	cmd.Env = append(os.Environ(),
		"CERTWRIGHT_ENTRY="+e.Name, "CERTWRIGHT_SERIAL="+serial,
		"CERTWRIGHT_CERT="+e.Cert, "CERTWRIGHT_CHAIN="+e.Chain,
		"CERTWRIGHT_KEY="+e.Key, "CERTWRIGHT_BUNDLE="+e.Bundle)
	out := &boundedBuffer{max: maxOutput}
	cmd.Stdout, cmd.Stderr = out, out
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return out.String(), fmt.Errorf("%w: reload command did not finish within %s", ErrDeploy, e.ReloadTimeout)
	}
	if err != nil {
		return out.String(), fmt.Errorf("%w: reload command: %w", ErrDeploy, err)
	}
	return out.String(), nil
}

// checkRetry is the pause between two attempts of the check.
const checkRetry = 500 * time.Millisecond

// checkServed connects to e.Check until it serves want, for at most
// e.CheckTimeout, and returns the chain served (leaf first); nothing when
// the entry has no check.
func checkServed(ctx context.Context, e *Entry, want *x509.Certificate) ([]*x509.Certificate, error) {
	if e.Check == "" {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, e.CheckTimeout)
	defer cancel()
	sni := ""
	if len(e.DNSNames) > 0 {
		sni = strings.TrimPrefix(e.DNSNames[0], "*.")
	}
	var last error
	for {
		chain, err := servedChain(ctx, e.Check, sni)
		switch {
		case err != nil:
			last = err
		case chain[0].Equal(want):
			return chain, nil
		default:
			last = fmt.Errorf("it serves serial %s, not the new %s", pki.SerialHex(chain[0].SerialNumber), pki.SerialHex(want.SerialNumber))
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: check %s within %s: %w", ErrDeploy, e.Check, e.CheckTimeout, last)
		case <-time.After(checkRetry):
		}
	}
}

// servedChain returns the chain addr presents for sni, leaf first.
func servedChain(ctx context.Context, addr, sni string) ([]*x509.Certificate, error) {
	d := tls.Dialer{
		NetDialer: &net.Dialer{Timeout: 5 * time.Second},
		Config: &tls.Config{
			ServerName: sni,
			MinVersion: tls.VersionTLS12,
			// The check only compares the served leaf, byte for byte,
			// with the certificate just deployed, and sends nothing:
			// that comparison is stronger than chain validation here.
			InsecureSkipVerify: true,
		},
	}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	certs := conn.(*tls.Conn).ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return nil, errors.New("the server presented no certificate")
	}
	return certs, nil
}

// revocationFetchTimeout bounds one CRL or OCSP exchange of the
// revocation check; check_timeout bounds the whole check.
const revocationFetchTimeout = 10 * time.Second

// clockFunc lets the agent's clock tell revcheck the time.
type clockFunc func() time.Time

func (f clockFunc) Now() time.Time { return f() }

// checkRevocation asks, from this host and within e.CheckTimeout, the
// CRLs and OCSP responders of the chain the check was served, with the
// checker verify and scan use: so that an operator learns when the
// certificate served is revoked, or when the CA's URLs cannot be reached
// from where it is served. A revoked certificate fails the check; an
// undetermined status fails it only under check_revocation: require, and
// is otherwise a warning. Sources that failed beside one that answered
// are warnings too.
func (a *Agent) checkRevocation(ctx context.Context, e *Entry, m *material, served []*x509.Certificate) error {
	if e.CheckRevocation == RevocationOff || len(served) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, e.CheckTimeout)
	defer cancel()
	rc := &revcheck.Checker{
		Timeout: min(e.CheckTimeout, revocationFetchTimeout), Clock: clockFunc(a.now), UserAgent: "certwright-agent",
		IssuerSources: "the served chain, the root the server sent with the certificate and ca_file",
	}
	roots := m.roots
	if len(roots) == 0 {
		roots = a.caRoots
	}
	rep := rc.CheckChain(ctx, served, roots)
	var problems []string
	for _, p := range rep.Problems() {
		problems = append(problems, p.Message)
	}
	detail := strings.Join(problems, "; ")
	log := []any{"entry", e.Name, "serial", m.serial(), "check", e.Check, "status", rep.Status}
	for _, w := range rep.Warnings {
		a.log.Warn("agent revocation source failed", append(log, "detail", w)...)
	}
	switch {
	case rep.Status == revcheck.StatusRevoked:
		return fmt.Errorf("%w: check %s: the served chain holds a revoked certificate: %s", ErrDeploy, e.Check, detail)
	case rep.Status == revcheck.StatusUndetermined && e.CheckRevocation == RevocationRequire:
		return fmt.Errorf("%w: check %s: check_revocation is require, and the %s", ErrDeploy, e.Check, detail)
	case rep.Status == revcheck.StatusUndetermined:
		a.log.Warn("agent revocation check", append(log, "detail", detail,
			"hint", "clients on this network may not be able to check revocation either; check_revocation: off silences this, require fails the check")...)
	default:
		a.log.Info("agent revocation check", log...)
	}
	return nil
}

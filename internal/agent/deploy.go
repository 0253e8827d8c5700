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
// e.CheckTimeout.
func checkServed(ctx context.Context, e *Entry, want *x509.Certificate) error {
	if e.Check == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, e.CheckTimeout)
	defer cancel()
	sni := ""
	if len(e.DNSNames) > 0 {
		sni = strings.TrimPrefix(e.DNSNames[0], "*.")
	}
	var last error
	for {
		got, err := servedLeaf(ctx, e.Check, sni)
		switch {
		case err != nil:
			last = err
		case got.Equal(want):
			return nil
		default:
			last = fmt.Errorf("it serves serial %s, not the new %s", pki.SerialHex(got.SerialNumber), pki.SerialHex(want.SerialNumber))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: check %s within %s: %w", ErrDeploy, e.Check, e.CheckTimeout, last)
		case <-time.After(checkRetry):
		}
	}
}

// servedLeaf returns the leaf certificate addr presents for sni.
func servedLeaf(ctx context.Context, addr, sni string) (*x509.Certificate, error) {
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
	return certs[0], nil
}

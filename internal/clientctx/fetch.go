package clientctx

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/certwright/certwright/internal/pki"
)

// RootsPath is where the server serves its root certificates over HTTPS,
// without authentication (pkipub.RootsPath).
const RootsPath = "/roots.pem"

// maxRoots bounds the roots document read from a server not yet trusted.
const maxRoots = 1 << 20

// MismatchError is a server that offered no root with the fingerprint the
// user gave: it may be the wrong server, or someone in between.
type MismatchError struct {
	Server string
	Want   Fingerprint
	// Offered are the fingerprints of the self-signed CA certificates the
	// server offered (empty when it offered none).
	Offered []Fingerprint
}

func (e *MismatchError) Error() string {
	if len(e.Offered) == 0 {
		return fmt.Sprintf("clientctx: %s offered no root CA certificate; wanted fingerprint %s", e.Server, e.Want)
	}
	got := make([]string, len(e.Offered))
	for i, f := range e.Offered {
		got[i] = f.String()
	}
	return fmt.Sprintf("clientctx: %s offered no root CA with fingerprint %s; its root CA fingerprint is %s",
		e.Server, e.Want, strings.Join(got, ", or "))
}

// FetchRoot connects to server over TLS trusting nothing yet, finds among
// the certificates the server presents and the roots it serves at
// RootsPath the one whose SHA-256 is want, requires it to be a
// self-signed CA, and verifies the server's TLS chain to it for the
// server's host name. Only then is the root returned; no credential is
// sent on the way.
func FetchRoot(ctx context.Context, server *url.URL, want Fingerprint) (*x509.Certificate, error) {
	var (
		mu        sync.Mutex
		presented []*x509.Certificate
	)
	tc := &tls.Config{
		MinVersion: tls.VersionTLS12,
		// Nothing is trusted yet: the chain is checked below against the
		// root the user pinned by fingerprint, before anything is saved or
		// any credential sent. This connection carries one GET of public
		// certificates.
		InsecureSkipVerify: true, //nolint:gosec // verified against the pinned root below
		VerifyConnection: func(cs tls.ConnectionState) error {
			mu.Lock()
			presented = cs.PeerCertificates
			mu.Unlock()
			return nil
		},
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	hc := &http.Client{
		Transport: &http.Transport{DialContext: dialer.DialContext, TLSClientConfig: tc, DisableKeepAlives: true,
			TLSHandshakeTimeout: 10 * time.Second, ResponseHeaderTimeout: 20 * time.Second},
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	defer hc.CloseIdleConnections()
	served, fetchErr := fetchRoots(ctx, hc, server.JoinPath(RootsPath).String())
	mu.Lock()
	chain := presented
	mu.Unlock()
	if len(chain) == 0 {
		if fetchErr == nil {
			fetchErr = errors.New("no certificate presented")
		}
		return nil, fmt.Errorf("clientctx: connect to %s: %w", server.Redacted(), fetchErr)
	}
	var root *x509.Certificate
	var offered []Fingerprint
	for _, c := range append(append([]*x509.Certificate{}, chain...), served...) {
		fp := FingerprintOf(c.Raw)
		if fp == want {
			root = c
			break
		}
		if c.IsCA && pki.SelfSigned(c) && !slices.Contains(offered, fp) {
			offered = append(offered, fp)
		}
	}
	if root == nil {
		return nil, &MismatchError{Server: server.Redacted(), Want: want, Offered: offered}
	}
	if !root.BasicConstraintsValid || !root.IsCA || !pki.SelfSigned(root) {
		return nil, fmt.Errorf("clientctx: the certificate with fingerprint %s (%s) is not a self-signed CA certificate: give the fingerprint of the root CA", want, root.Subject)
	}
	roots := x509.NewCertPool()
	roots.AddCert(root)
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{DNSName: server.Hostname(), Roots: roots, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		return nil, fmt.Errorf("clientctx: the TLS certificate of %s does not verify against the root with fingerprint %s: %w", server.Redacted(), want, err)
	}
	return root, nil
}

// fetchRoots GETs the roots document; a server that does not serve one
// leaves only the presented chain to look in.
func fetchRoots(ctx context.Context, hc *http.Client, u string) ([]*x509.Certificate, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, nil
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxRoots+1))
	if err != nil || len(data) > maxRoots {
		return nil, nil
	}
	certs, err := pki.ParseCertificates(data)
	if err != nil {
		return nil, nil
	}
	return certs, nil
}

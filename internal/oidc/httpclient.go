package oidc

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Bounds on what a provider may send: its answers are untrusted input.
const (
	httpTimeout      = 10 * time.Second
	maxResponseBytes = 1 << 20
)

// HTTPClient returns the client this package talks to providers with:
// 10 s timeout, TLS 1.2 or later trusting the system roots plus caPEM (may
// be empty), no redirects (discovery, keys and token endpoints never need
// one, and following them could lead anywhere), and responses over 1 MiB
// refused.
func HTTPClient(caPEM []byte) (*http.Client, error) {
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if len(caPEM) > 0 && !roots.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("oidc: the CA bundle holds no PEM certificate")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	tr.ResponseHeaderTimeout = httpTimeout
	return &http.Client{
		Timeout:   httpTimeout,
		Transport: limitTransport{tr},
		CheckRedirect: func(req *http.Request, _ []*http.Request) error {
			return fmt.Errorf("provider redirected to %s: not followed", req.URL.Redacted())
		},
	}, nil
}

// limitTransport makes reading a response body beyond maxResponseBytes an
// error, where the libraries above would read it all.
type limitTransport struct{ next http.RoundTripper }

func (t limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &limitedBody{rc: resp.Body, left: maxResponseBytes}
	return resp, nil
}

var errTooLarge = fmt.Errorf("provider response larger than %d bytes", maxResponseBytes)

type limitedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One more byte means the body is over the limit.
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n > 0 {
			return 0, errTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

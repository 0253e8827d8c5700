package cli

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/pki"
)

// Files that "certwright serve" leaves in the data directory for clients.
const (
	defaultDataDir = "./certwright-data"
	serverFile     = "server.json"
	tokenFile      = "admin.token"
	rootFile       = "root.pem"
)

const discoveryHint = "is `certwright serve` running in this directory? or pass --server/--token-file/--ca-file (or --data-dir)"

// endpoint is where and how a client command reaches the server.
type endpoint struct {
	server *url.URL
	token  string
	roots  *x509.CertPool
	// clientCert authenticates over mTLS; certFile names it in hints.
	clientCert *tls.Certificate
	certFile   string
}

// dataDir resolves the data directory: flag, then environment, then default.
func (r *runner) dataDir(cf *clientFlags) string {
	return firstNonEmpty(cf.dataDir, r.getenv("CERTWRIGHT_DATA_DIR"), defaultDataDir)
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// discover finds the server URL, the token and the roots to trust: each
// from its flag, then its environment variable, then the data directory.
// A client certificate comes from its flags or environment only.
func (r *runner) discover(cf *clientFlags) (*endpoint, error) {
	dir := r.dataDir(cf)
	ep := &endpoint{}
	var missing []string

	rawURL, err := r.findServerURL(cf, dir)
	if err != nil {
		return nil, err
	}
	if rawURL == "" {
		missing = append(missing, "server URL (--server, $CERTWRIGHT_SERVER or "+filepath.Join(dir, serverFile)+")")
	}
	if ep.clientCert, ep.certFile, err = r.findClientCert(cf); err != nil {
		return nil, err
	}
	// With a client certificate and no token named explicitly, the
	// certificate is the credential: DIR/admin.token is not read.
	if ep.clientCert == nil || r.explicitToken(cf) {
		if ep.token, err = r.findToken(cf, dir); err != nil {
			return nil, err
		}
	}
	if ep.token == "" && ep.clientCert == nil {
		missing = append(missing, "API token (--token-file, $CERTWRIGHT_TOKEN_FILE, $CERTWRIGHT_TOKEN or "+filepath.Join(dir, tokenFile)+")")
	}
	if ep.roots, err = r.findRoots(cf, dir); err != nil {
		return nil, err
	}
	if ep.roots == nil {
		missing = append(missing, "root certificate (--ca-file, $CERTWRIGHT_CA_FILE or "+filepath.Join(dir, rootFile)+")")
	}
	if len(missing) == 3 {
		why := "it holds no " + serverFile + ", " + tokenFile + " or " + rootFile
		if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			why = "it does not exist"
		}
		return nil, &hintError{fmt.Errorf("cannot find the server: data directory %s: %s", dir, why), discoveryHint}
	}
	if len(missing) > 0 {
		return nil, &hintError{fmt.Errorf("cannot find the %s", strings.Join(missing, ", nor the ")), discoveryHint}
	}
	if ep.server, err = parseServerURL(rawURL); err != nil {
		return nil, err
	}
	return ep, nil
}

func (r *runner) findServerURL(cf *clientFlags, dir string) (string, error) {
	if s := firstNonEmpty(cf.server, r.getenv("CERTWRIGHT_SERVER")); s != "" {
		return s, nil
	}
	path := filepath.Join(dir, serverFile)
	data, err := readLimited(path, 64<<10)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read server address: %w", err)
	}
	var doc struct {
		URL string `json:"url"`
	}
	if err := json.Unmarshal(data, &doc); err != nil || doc.URL == "" {
		return "", &hintError{fmt.Errorf("read server address: %s does not hold {\"url\": \"https://...\"}", path),
			"restart `certwright serve`, or pass --server"}
	}
	return doc.URL, nil
}

func parseServerURL(s string) (*url.URL, error) {
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return nil, &hintError{fmt.Errorf("server URL %q is not a URL", s), "pass --server https://HOST:PORT"}
	}
	if u.Scheme != "https" {
		return nil, &hintError{fmt.Errorf("server URL %q: the API is only served over https", s), "pass --server https://HOST:PORT"}
	}
	u.RawQuery, u.Fragment = "", ""
	return u, nil
}

// explicitToken reports whether a token was named by flag or environment,
// as opposed to the data directory's admin.token.
func (r *runner) explicitToken(cf *clientFlags) bool {
	return cf.tokenFile != "" || strings.TrimSpace(r.getenv("CERTWRIGHT_TOKEN")) != "" || r.getenv("CERTWRIGHT_TOKEN_FILE") != ""
}

// findClientCert loads the TLS client certificate and key, from the flags
// or the environment; both or neither must be given.
func (r *runner) findClientCert(cf *clientFlags) (*tls.Certificate, string, error) {
	certFile := firstNonEmpty(cf.clientCert, r.getenv("CERTWRIGHT_CLIENT_CERT"))
	keyFile := firstNonEmpty(cf.clientKey, r.getenv("CERTWRIGHT_CLIENT_KEY"))
	switch {
	case certFile == "" && keyFile == "":
		return nil, "", nil
	case keyFile == "":
		return nil, "", &hintError{fmt.Errorf("client certificate %s: no private key given", certFile),
			"pass --client-key FILE (or set $CERTWRIGHT_CLIENT_KEY) with --client-cert"}
	case certFile == "":
		return nil, "", &hintError{fmt.Errorf("client key %s: no certificate given", keyFile),
			"pass --client-cert FILE (or set $CERTWRIGHT_CLIENT_CERT) with --client-key"}
	}
	if fi, err := os.Stat(keyFile); err == nil && runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		fmt.Fprintf(r.stderr, "certwright: warning: client key file %s is readable by group or others (mode %04o); run chmod 600 %s\n",
			keyFile, fi.Mode().Perm(), keyFile)
	}
	certPEM, err := readLimited(certFile, pki.MaxPEMInput)
	if err != nil {
		return nil, "", fmt.Errorf("read client certificate: %w", err)
	}
	keyPEM, err := readLimited(keyFile, pki.MaxPEMInput)
	if err != nil {
		return nil, "", fmt.Errorf("read client key: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	clear(keyPEM)
	if err != nil {
		return nil, "", &hintError{fmt.Errorf("load client certificate %s and key %s: %w", certFile, keyFile, err),
			"both files must be PEM, the key unencrypted, and the key must belong to the certificate"}
	}
	return &pair, certFile, nil
}

func (r *runner) findToken(cf *clientFlags, dir string) (string, error) {
	if cf.tokenFile != "" {
		return r.readToken(cf.tokenFile)
	}
	if t := strings.TrimSpace(r.getenv("CERTWRIGHT_TOKEN")); t != "" {
		return t, nil
	}
	if f := r.getenv("CERTWRIGHT_TOKEN_FILE"); f != "" {
		return r.readToken(f)
	}
	path := filepath.Join(dir, tokenFile)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	return r.readToken(path)
}

// readToken reads a token file, warning when others may read it.
func (r *runner) readToken(path string) (string, error) {
	if fi, err := os.Stat(path); err == nil && runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		fmt.Fprintf(r.stderr, "certwright: warning: token file %s is readable by group or others (mode %04o); run chmod 600 %s\n",
			path, fi.Mode().Perm(), path)
	}
	data, err := readLimited(path, 64<<10)
	if err != nil {
		return "", fmt.Errorf("read token: %w", err)
	}
	tok := strings.TrimSpace(string(data))
	if tok == "" {
		return "", fmt.Errorf("read token: %s is empty", path)
	}
	if strings.ContainsAny(tok, " \t\r\n") {
		return "", fmt.Errorf("read token: %s holds more than one word; it must hold only the token", path)
	}
	return tok, nil
}

func (r *runner) findRoots(cf *clientFlags, dir string) (*x509.CertPool, error) {
	path := firstNonEmpty(cf.caFile, r.getenv("CERTWRIGHT_CA_FILE"))
	if path == "" {
		path = filepath.Join(dir, rootFile)
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
	}
	data, err := readLimited(path, pki.MaxPEMInput)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	certs, err := pki.ParseCertificates(data)
	if err != nil {
		return nil, fmt.Errorf("read CA file %s: %w", path, err)
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

// readLimited reads a whole file, refusing one larger than max bytes.
func readLimited(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readAllLimited(f, path, max)
}

func readAllLimited(rd io.Reader, name string, max int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(rd, max+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, max)
	}
	return data, nil
}

// httpClient trusts only the given roots: the server's certificate comes
// from the private PKI, never from the system's public roots.
func httpClient(roots *x509.CertPool, clientCert *tls.Certificate) *http.Client {
	tc := &tls.Config{
		MinVersion: tls.VersionTLS12,
		RootCAs:    roots,
	}
	if clientCert != nil {
		tc.Certificates = []tls.Certificate{*clientCert}
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Client{
		Transport: &http.Transport{
			DialContext:           dialer.DialContext,
			TLSClientConfig:       tc,
			ForceAttemptHTTP2:     true,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 2 * time.Minute,
			ExpectContinueTimeout: time.Second,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConnsPerHost:   4,
		},
		Timeout: 5 * time.Minute,
		// The bearer token must not follow a redirect anywhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

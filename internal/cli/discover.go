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
	if ep.token, err = r.findToken(cf, dir); err != nil {
		return nil, err
	}
	if ep.token == "" {
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
func httpClient(roots *x509.CertPool) *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Client{
		Transport: &http.Transport{
			DialContext: dialer.DialContext,
			TLSClientConfig: &tls.Config{
				MinVersion: tls.VersionTLS12,
				RootCAs:    roots,
			},
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

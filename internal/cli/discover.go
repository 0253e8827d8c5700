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

	"github.com/certwright/certwright/internal/clientctx"
	"github.com/certwright/certwright/internal/pki"
)

// Files that "certwright serve" leaves in the data directory for clients.
const (
	defaultDataDir = "./certwright-data"
	serverFile     = "server.json"
	tokenFile      = "admin.token"
	rootFile       = "root.pem"
)

const discoveryHint = "is `certwright serve` running in this directory? or log in once with `certwright login --server URL --fingerprint SHA256`, or pass --server/--token-file/--ca-file (or --data-dir, --context)"

// endpoint is where and how a client command reaches the server.
type endpoint struct {
	server *url.URL
	token  string
	roots  *x509.CertPool
	// clientCert authenticates over mTLS; certFile names it in hints.
	clientCert *tls.Certificate
	certFile   string
	// from says where the settings came from, for whoami.
	from string
}

// source is where the settings not given by flag or environment come
// from: a data directory, or a context saved by "certwright login".
type source struct {
	dir string
	ctx *clientctx.Saved
}

func (s *source) name() string {
	if s.ctx != nil {
		return "context " + s.ctx.Name
	}
	return "data directory " + s.dir
}

// where names the file (or context entry) a setting would come from.
func (s *source) where(file string) string {
	if s.ctx != nil {
		return "context " + s.ctx.Name
	}
	return filepath.Join(s.dir, file)
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// contextStore is the per-user store of contexts.
func (r *runner) contextStore() (*clientctx.Store, error) {
	dir, err := clientctx.Dir(r.getenv)
	if err != nil {
		return nil, &hintError{err, "set $XDG_CONFIG_HOME or $HOME: contexts are saved under $XDG_CONFIG_HOME/certwright"}
	}
	return clientctx.Open(dir), nil
}

// loadContext reads a saved context, naming the fix when there is none.
func (r *runner) loadContext(name string) (*clientctx.Saved, error) {
	st, err := r.contextStore()
	if err != nil {
		return nil, err
	}
	sv, err := st.Load(name)
	var nf *clientctx.NotFoundError
	if errors.As(err, &nf) {
		return nil, &hintError{err, fmt.Sprintf("log in first: certwright login --context %s --server URL --fingerprint SHA256; `certwright context list` shows the saved ones", name)}
	}
	return sv, err
}

// pickSource decides where the settings not given by flag or environment
// come from, in this order:
//
//  1. --context NAME or $CERTWRIGHT_CONTEXT: that saved context;
//  2. --data-dir DIR or $CERTWRIGHT_DATA_DIR: that data directory;
//  3. ./certwright-data, when it exists: the server's own directory;
//  4. the current context, set by the last login or "context use";
//  5. else ./certwright-data, which then reports what is missing.
func (r *runner) pickSource(cf *clientFlags) (*source, error) {
	if name := firstNonEmpty(cf.context, r.getenv("CERTWRIGHT_CONTEXT")); name != "" {
		sv, err := r.loadContext(name)
		if err != nil {
			return nil, err
		}
		return &source{ctx: sv}, nil
	}
	if dir := firstNonEmpty(cf.dataDir, r.getenv("CERTWRIGHT_DATA_DIR")); dir != "" {
		return &source{dir: dir}, nil
	}
	if fi, err := os.Stat(defaultDataDir); err == nil && fi.IsDir() {
		// A ./certwright-data in a directory someone else controls (a
		// clone, /tmp) would otherwise silently take the place of the
		// server this user logged in to: say so.
		if st, err := r.contextStore(); err == nil {
			if cur, err := st.Current(); err == nil && cur != "" {
				fmt.Fprintf(r.stderr, "certwright: note: using %s in this directory, not your current context %q (pass --context %s for it)\n", defaultDataDir, cur, cur)
			}
		}
		return &source{dir: defaultDataDir}, nil
	}
	if st, err := r.contextStore(); err == nil {
		cur, err := st.Current()
		if err != nil {
			return nil, err
		}
		if cur != "" {
			sv, err := r.loadContext(cur)
			if err != nil {
				return nil, err
			}
			return &source{ctx: sv}, nil
		}
	}
	return &source{dir: defaultDataDir}, nil
}

// discover finds the server URL, the token and the roots to trust: each
// from its flag, then its environment variable, then the source (a data
// directory or a saved context, see pickSource). A client certificate
// comes from its flags or environment, or from a context.
func (r *runner) discover(cf *clientFlags) (*endpoint, error) {
	src, err := r.pickSource(cf)
	if err != nil {
		return nil, err
	}
	ep := &endpoint{from: src.name()}
	var missing []string

	rawURL, err := r.findServerURL(cf, src)
	if err != nil {
		return nil, err
	}
	if rawURL == "" {
		missing = append(missing, "server URL (--server, $CERTWRIGHT_SERVER or "+src.where(serverFile)+")")
	}
	if ep.clientCert, ep.certFile, err = r.findClientCert(cf, src); err != nil {
		return nil, err
	}
	// With a client certificate and no token named explicitly, the
	// certificate is the credential: DIR/admin.token is not read. A
	// context holds a token only when its login gave one.
	if ep.clientCert == nil || r.explicitToken(cf) || src.ctx != nil {
		if ep.token, err = r.findToken(cf, src); err != nil {
			return nil, err
		}
	}
	if ep.token == "" && ep.clientCert == nil {
		missing = append(missing, "API token (--token-file, $CERTWRIGHT_TOKEN_FILE, $CERTWRIGHT_TOKEN or "+src.where(tokenFile)+")")
	}
	if ep.roots, err = r.findRoots(cf, src); err != nil {
		return nil, err
	}
	if ep.roots == nil {
		missing = append(missing, "root certificate (--ca-file, $CERTWRIGHT_CA_FILE or "+src.where(rootFile)+")")
	}
	if len(missing) == 3 && src.ctx == nil {
		why := "it holds no " + serverFile + ", " + tokenFile + " or " + rootFile
		if _, err := os.Stat(src.dir); errors.Is(err, fs.ErrNotExist) {
			why = "it does not exist"
		}
		return nil, &hintError{fmt.Errorf("cannot find the server: data directory %s: %s", src.dir, why), discoveryHint}
	}
	if len(missing) > 0 {
		return nil, &hintError{fmt.Errorf("cannot find the %s", strings.Join(missing, ", nor the ")), discoveryHint}
	}
	if ep.server, err = parseServerURL(rawURL); err != nil {
		return nil, err
	}
	return ep, nil
}

func (r *runner) findServerURL(cf *clientFlags, src *source) (string, error) {
	if s := firstNonEmpty(cf.server, r.getenv("CERTWRIGHT_SERVER")); s != "" {
		return s, nil
	}
	if src.ctx != nil {
		return src.ctx.Server, nil
	}
	path := filepath.Join(src.dir, serverFile)
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
func (r *runner) findClientCert(cf *clientFlags, src *source) (*tls.Certificate, string, error) {
	certFile := firstNonEmpty(cf.clientCert, r.getenv("CERTWRIGHT_CLIENT_CERT"))
	keyFile := firstNonEmpty(cf.clientKey, r.getenv("CERTWRIGHT_CLIENT_KEY"))
	if certFile == "" && keyFile == "" && src != nil && src.ctx != nil {
		certFile, keyFile = src.ctx.ClientCert, src.ctx.ClientKey
	}
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

func (r *runner) findToken(cf *clientFlags, src *source) (string, error) {
	if cf.tokenFile != "" {
		return r.readToken(cf.tokenFile)
	}
	if t := strings.TrimSpace(r.getenv("CERTWRIGHT_TOKEN")); t != "" {
		return t, nil
	}
	if f := r.getenv("CERTWRIGHT_TOKEN_FILE"); f != "" {
		return r.readToken(f)
	}
	if src.ctx != nil {
		if src.ctx.TokenPath == "" {
			return "", nil
		}
		return r.readToken(src.ctx.TokenPath)
	}
	path := filepath.Join(src.dir, tokenFile)
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
	return checkToken(string(data), path)
}

func (r *runner) findRoots(cf *clientFlags, src *source) (*x509.CertPool, error) {
	path := firstNonEmpty(cf.caFile, r.getenv("CERTWRIGHT_CA_FILE"))
	if path == "" && src.ctx != nil {
		path = src.ctx.RootPath
	}
	if path == "" {
		path = filepath.Join(src.dir, rootFile)
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

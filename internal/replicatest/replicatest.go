// Package replicatest runs the certwright binary as several replicas on one
// PostgreSQL database behind HAProxy, set up as the README's "Several
// replicas" example and deploy/haproxy/certwright.cfg set them up, for
// end-to-end tests: init once, copy the data directory per replica, start
// each serve process, kill and restart them.
package replicatest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/store/postgres"

	"github.com/certwright/certwright/internal/store/storetest"
)

// EnvBinary names a certwright binary to run instead of building one
// (CI's static build: .ci/run sets it).
const EnvBinary = "CERTWRIGHT_TEST_STATIC_BINARY"

// The example's addresses in deploy/haproxy/certwright.cfg; a cluster
// puts free ports in their place.
const (
	exampleLBHTTPS = 8443
	exampleLBHTTP  = 8080
)

// exampleReplicaHTTPS and exampleReplicaHTTP are replica i's example ports
// (i from 0).
func exampleReplicaHTTPS(i int) int { return 9441 + i }
func exampleReplicaHTTP(i int) int  { return 9081 + i }

// Options shape a cluster. The zero value is three replicas with the
// configuration init writes.
type Options struct {
	// Replicas is how many serve processes run (default 3, at most 3:
	// the HAProxy file names three).
	Replicas int
	// InitArgs are more flags for certwright init.
	InitArgs []string
	// EditConfig, when set, edits config.yaml after init and before the
	// data directory is copied; the lb argument holds the load
	// balancer's URLs.
	EditConfig func(config string, lb LB) string
}

// LB is the load balancer's address: HTTPS (API, ACME) and plain HTTP
// (CRL, OCSP). The replicas' public URLs name it; without HAProxy nothing
// listens there.
type LB struct {
	HTTPS, HTTP string // https://127.0.0.1:PORT, http://127.0.0.1:PORT
}

// Cluster is a running set of replicas sharing one PostgreSQL schema.
type Cluster struct {
	t        testing.TB
	Bin      string // the certwright binary
	Dir      string // working directory: init's data directory "init", one per replica, logs
	DBURL    string // the schema's URL, as the replicas use it
	LB       LB
	Replicas []*Replica
	// HAProxy is true when haproxy was found and runs in front.
	HAProxy bool

	pool    *x509.CertPool
	token   string
	haproxy *proc
}

// Replica is one serve process with its own data directory.
type Replica struct {
	Name      string // its replica_name
	Dir       string // its data directory
	HTTPSAddr string // 127.0.0.1:PORT of https_listen
	HTTPAddr  string // 127.0.0.1:PORT of http_listen

	c    *Cluster
	mu   sync.Mutex
	proc *proc
}

// proc is a started process: done closes when it has exited.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// Binary returns the certwright binary to run: EnvBinary when set, else
// one built now into a directory of tb's.
func Binary(tb testing.TB) string {
	tb.Helper()
	if b := os.Getenv(EnvBinary); b != "" {
		return b
	}
	out := filepath.Join(tb.TempDir(), "certwright")
	build := exec.Command("go", "build", "-o", out, "github.com/certwright/certwright/cmd/certwright")
	if b, err := build.CombinedOutput(); err != nil {
		tb.Fatalf("go build certwright: %v\n%s", err, b)
	}
	return out
}

// HAProxyConfigFile is the repository's deploy/haproxy/certwright.cfg.
func HAProxyConfigFile(tb testing.TB) string {
	tb.Helper()
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		tb.Fatal("replicatest: cannot locate the repository")
	}
	return filepath.Join(filepath.Dir(self), "..", "..", "deploy", "haproxy", "certwright.cfg")
}

// FreePort returns a loopback port nothing listens on right now.
func FreePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Start initialises a fresh schema of the PostgreSQL database at baseURL
// (CERTWRIGHT_TEST_POSTGRES) with certwright init, copies the data
// directory once per replica, starts every replica and, when haproxy is
// on PATH, HAProxy in front of them with deploy/haproxy/certwright.cfg.
// Everything stops when tb ends.
func Start(tb testing.TB, bin, baseURL string, opts Options) *Cluster {
	tb.Helper()
	n := opts.Replicas
	if n == 0 {
		n = 3
	}
	if n < 1 || n > 3 {
		tb.Fatalf("replicatest: %d replicas; the HAProxy file names 1 to 3", n)
	}
	c := &Cluster{t: tb, Bin: bin, Dir: tb.TempDir(), DBURL: storetest.PostgresSchema(tb, baseURL)}
	lbHTTPS, lbHTTP := FreePort(tb), FreePort(tb)
	c.LB = LB{HTTPS: fmt.Sprintf("https://127.0.0.1:%d", lbHTTPS), HTTP: fmt.Sprintf("http://127.0.0.1:%d", lbHTTP)}
	for i := range n {
		c.Replicas = append(c.Replicas, &Replica{
			Name:      fmt.Sprintf("r%d", i+1),
			Dir:       filepath.Join(c.Dir, fmt.Sprintf("r%d", i+1)),
			HTTPSAddr: fmt.Sprintf("127.0.0.1:%d", FreePort(tb)),
			HTTPAddr:  fmt.Sprintf("127.0.0.1:%d", FreePort(tb)),
			c:         c,
		})
	}

	initDir := filepath.Join(c.Dir, "init")
	r1 := c.Replicas[0]
	args := append([]string{"init", "--data-dir", initDir, "--db", c.DBURL,
		"--https-listen", r1.HTTPSAddr, "--http-listen", r1.HTTPAddr, "--public-http-url", c.LB.HTTP}, opts.InitArgs...)
	c.Run(args...)
	cfgPath := filepath.Join(initDir, "config.yaml")
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		tb.Fatal(err)
	}
	edited := SetACMEBaseURL(tb, string(cfg), c.LB.HTTPS)
	if opts.EditConfig != nil {
		edited = opts.EditConfig(edited, c.LB)
	}
	if err := os.WriteFile(cfgPath, []byte(edited), 0o600); err != nil {
		tb.Fatal(err)
	}
	for _, r := range c.Replicas {
		if err := copyDir(r.Dir, initDir); err != nil {
			tb.Fatalf("copy the data directory: %v", err)
		}
		appendFile(tb, filepath.Join(r.Dir, "config.yaml"), "replica_name: "+r.Name+"\n")
	}
	root, err := os.ReadFile(filepath.Join(initDir, "root.pem"))
	if err != nil {
		tb.Fatal(err)
	}
	c.pool = x509.NewCertPool()
	if !c.pool.AppendCertsFromPEM(root) {
		tb.Fatal("replicatest: root.pem holds no certificate")
	}
	tok, err := os.ReadFile(filepath.Join(initDir, "admin.token"))
	if err != nil {
		tb.Fatal(err)
	}
	c.token = strings.TrimSpace(string(tok))

	tb.Cleanup(c.stopAll)
	for _, r := range c.Replicas {
		r.Start()
	}
	for _, r := range c.Replicas {
		r.WaitReady(90 * time.Second)
	}
	if _, err := exec.LookPath("haproxy"); err == nil {
		c.startHAProxy(lbHTTPS, lbHTTP)
	}
	return c
}

// SetACMEBaseURL sets acme.base_url in config (as init writes it) to url.
func SetACMEBaseURL(tb testing.TB, config, url string) string {
	tb.Helper()
	out := regexp.MustCompile(`(?m)^acme:\n`).ReplaceAllString(config, "acme:\n    base_url: "+url+"\n")
	if strings.Count(out, "base_url: ") != 1 {
		tb.Fatalf("replicatest: config.yaml has no single acme: block to set base_url in:\n%s", config)
	}
	return out
}

// copyDir copies the files of directory src (not its subdirectories; a
// data directory has none) into a new directory dst, modes kept, as cp -a
// would.
func copyDir(dst, src string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	if err := os.Mkdir(dst, 0o700); err != nil {
		return err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			return fmt.Errorf("%s: not a regular file", filepath.Join(src, e.Name()))
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, info.Mode().Perm()); err != nil {
			return err
		}
	}
	return nil
}

func appendFile(tb testing.TB, path, text string) {
	tb.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := f.WriteString(text); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
}

// haproxyConfig returns deploy/haproxy/certwright.cfg with the example's
// ports replaced by the cluster's, and fails tb if an example port is
// left (the file and this harness disagree).
func (c *Cluster) haproxyConfig(lbHTTPS, lbHTTP int) string {
	c.t.Helper()
	b, err := os.ReadFile(HAProxyConfigFile(c.t))
	if err != nil {
		c.t.Fatal(err)
	}
	port := func(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }
	// Fewer replicas: drop the server lines of the others.
	var keep []string
	for _, l := range strings.Split(string(b), "\n") {
		if m := serverLine.FindStringSubmatch(l); m != nil {
			if i, _ := strconv.Atoi(m[1]); i > len(c.Replicas) {
				continue
			}
		}
		keep = append(keep, l)
	}
	pairs := []string{
		"127.0.0.1:" + strconv.Itoa(exampleLBHTTPS), "127.0.0.1:" + strconv.Itoa(lbHTTPS),
		"127.0.0.1:" + strconv.Itoa(exampleLBHTTP), "127.0.0.1:" + strconv.Itoa(lbHTTP),
	}
	for i, r := range c.Replicas {
		https, http := strconv.Itoa(exampleReplicaHTTPS(i)), strconv.Itoa(exampleReplicaHTTP(i))
		pairs = append(pairs,
			"127.0.0.1:"+https, r.HTTPSAddr,
			"127.0.0.1:"+http, r.HTTPAddr,
			"port "+http, "port "+port(r.HTTPAddr))
	}
	out := strings.NewReplacer(pairs...).Replace(strings.Join(keep, "\n"))
	if m := regexp.MustCompile(`\b(8443|8080|944[1-3]|908[1-3])\b`).FindString(out); m != "" {
		c.t.Fatalf("replicatest: %s still names the example port %s after substitution: update the harness or the file", HAProxyConfigFile(c.t), m)
	}
	return out
}

// serverLine matches a backend's server line of replica rN.
var serverLine = regexp.MustCompile(`^\s*server r(\d+) `)

func (c *Cluster) startHAProxy(lbHTTPS, lbHTTP int) {
	c.t.Helper()
	path := filepath.Join(c.Dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(c.haproxyConfig(lbHTTPS, lbHTTP)), 0o600); err != nil {
		c.t.Fatal(err)
	}
	if out, err := exec.Command("haproxy", "-c", "-q", "-f", path).CombinedOutput(); err != nil {
		c.t.Fatalf("haproxy -c: %v\n%s", err, out)
	}
	// -db: stay in the foreground.
	c.haproxy = c.start(filepath.Join(c.Dir, "haproxy.log"), "haproxy", "-db", "-f", path)
	c.HAProxy = true
	// Ready when every replica passed its health checks: the HTTP
	// frontend answers /readyz through each (round robin).
	deadline := time.Now().Add(30 * time.Second)
	for ok := 0; ok < 2*len(c.Replicas); {
		if time.Now().After(deadline) {
			c.t.Fatalf("HAProxy did not answer %s/readyz within 30s\n%s", c.LB.HTTP, tail(filepath.Join(c.Dir, "haproxy.log")))
		}
		if code, _ := httpStatus(c.LB.HTTP + "/readyz"); code == http.StatusOK {
			ok++
		} else {
			ok = 0
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The HTTPS backend's checks run on the same schedule; give them the
	// same time to rise.
	time.Sleep(2 * time.Second)
}

func httpStatus(url string) (int, error) {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// start runs name args with its output appended to logPath.
func (c *Cluster) start(logPath, name string, args ...string) *proc {
	c.t.Helper()
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(name, args...)
	cmd.Dir = c.Dir
	cmd.Env = c.env()
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		c.t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		log.Close()
		close(p.done)
	}()
	return p
}

// env is the environment of every process the cluster runs: this one's,
// without CERTWRIGHT_* settings, with HOME in the cluster's directory so
// no saved client context applies.
func (c *Cluster) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CERTWRIGHT_") && !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	return append(env, "HOME="+c.Dir)
}

// stop ends p: SIGTERM, then SIGKILL after grace.
func (p *proc) stop(grace time.Duration) {
	if p == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (c *Cluster) stopAll() {
	c.haproxy.stop(5 * time.Second)
	var wg sync.WaitGroup
	for _, r := range c.Replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.mu.Lock()
			p := r.proc
			r.mu.Unlock()
			p.stop(20 * time.Second)
		}()
	}
	wg.Wait()
	if c.t.Failed() {
		for _, r := range c.Replicas {
			c.t.Logf("---- %s log (last lines):\n%s", r.Name, tail(r.LogPath()))
		}
		if c.HAProxy {
			c.t.Logf("---- haproxy log (last lines):\n%s", tail(filepath.Join(c.Dir, "haproxy.log")))
		}
	}
}

// tail returns the last 40 lines of the file at path.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-40):], "\n")
}

// Run runs the certwright command line with args and returns its standard
// output; it fails the test if the command fails.
func (c *Cluster) Run(args ...string) string {
	c.t.Helper()
	out, err := c.TryRun(args...)
	if err != nil {
		c.t.Fatalf("certwright %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// TryRun is Run returning the failure: its error holds standard error.
func (c *Cluster) TryRun(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.Bin, args...)
	cmd.Dir = c.Dir
	cmd.Env = c.env()
	cmd.Stdin = nil
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%w\n%s%s", err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// Pool trusts the cluster's root CA.
func (c *Cluster) Pool() *x509.CertPool { return c.pool }

// AdminToken is the admin API token init wrote.
func (c *Cluster) AdminToken() string { return c.token }

// Client returns an HTTP client trusting the cluster's root.
func (c *Cluster) Client() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: c.pool, MinVersion: tls.VersionTLS12},
	}}
}

// DB opens the cluster's schema; it closes when the test ends.
func (c *Cluster) DB() *sql.DB {
	c.t.Helper()
	db, err := postgres.Open(context.Background(), c.DBURL)
	if err != nil {
		c.t.Fatal(err)
	}
	db.SetMaxOpenConns(2)
	c.t.Cleanup(func() { db.Close() })
	return db
}

// Replica returns the replica named name (its replica_name).
func (c *Cluster) Replica(name string) *Replica {
	c.t.Helper()
	for _, r := range c.Replicas {
		if r.Name == name {
			return r
		}
	}
	c.t.Fatalf("replicatest: no replica named %q", name)
	return nil
}

// LogPath is the file the replica's output goes to (kept across restarts).
func (r *Replica) LogPath() string { return filepath.Join(r.c.Dir, r.Name+".log") }

// HTTPSURL is the replica's own API base URL (not through HAProxy).
func (r *Replica) HTTPSURL() string { return "https://" + r.HTTPSAddr }

// HTTPURL is the replica's own plain-HTTP base URL.
func (r *Replica) HTTPURL() string { return "http://" + r.HTTPAddr }

// Start starts the replica's serve process; it must not be running.
func (r *Replica) Start() {
	r.c.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc != nil {
		select {
		case <-r.proc.done:
		default:
			r.c.t.Fatalf("replicatest: %s is running already", r.Name)
		}
	}
	r.proc = r.c.start(r.LogPath(), r.c.Bin, "serve", "--data-dir", r.Dir,
		"--https-listen", r.HTTPSAddr, "--http-listen", r.HTTPAddr)
}

// WaitReady waits until the replica's /readyz answers 200, and fails the
// test if the process exits or d passes first.
func (r *Replica) WaitReady(d time.Duration) {
	r.c.t.Helper()
	r.mu.Lock()
	p := r.proc
	r.mu.Unlock()
	deadline := time.Now().Add(d)
	for {
		if code, _ := httpStatus(r.HTTPURL() + "/readyz"); code == http.StatusOK {
			return
		}
		select {
		case <-p.done:
			r.c.t.Fatalf("%s exited before it was ready (%v)\n%s", r.Name, p.cmd.ProcessState, tail(r.LogPath()))
		default:
		}
		if time.Now().After(deadline) {
			r.c.t.Fatalf("%s not ready within %v\n%s", r.Name, d, tail(r.LogPath()))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Kill sends SIGKILL to the replica's process and waits until it is gone.
func (r *Replica) Kill() {
	r.c.t.Helper()
	r.mu.Lock()
	p := r.proc
	r.mu.Unlock()
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		r.c.t.Fatalf("kill %s: %v", r.Name, err)
	}
	<-p.done
}

// Stop ends the replica with SIGTERM (SIGKILL after 20 s).
func (r *Replica) Stop() {
	r.mu.Lock()
	p := r.proc
	r.mu.Unlock()
	p.stop(20 * time.Second)
}

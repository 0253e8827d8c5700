package metrics

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
)

// maxInFlight bounds concurrent scrapes: each builds the whole exposition
// in memory.
const maxInFlight = 4

// Handler serves the registry in the Prometheus exposition formats,
// gzipped when the scraper accepts it. The inventory is read (or its
// cached copy reused) within the request's context, and the whole scrape
// is bounded by the scrape timeout. A collector that fails does not fail
// the scrape: the rest is served and the failure logged and counted.
func (m *Metrics) Handler() http.Handler {
	prom := promhttp.HandlerFor(gatherer{m}, promhttp.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(m.cfg.Log.Handler(), slog.LevelWarn),
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: maxInFlight,
		// Compressed below at BestSpeed: at the default level gzip costs
		// more than everything else in a large scrape, for output less
		// than a tenth smaller.
		DisableCompression: true,
	})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "metrics: use GET", http.StatusMethodNotAllowed)
			return
		}
		_ = m.inv.refresh(r.Context()) // counted and logged; stale values are served
		w.Header().Add("Vary", "Accept-Encoding")
		var zw *gzip.Writer
		if acceptsGzip(r.Header.Values("Accept-Encoding")) {
			zw, _ = gzip.NewWriterLevel(w, gzip.BestSpeed) // fails only for an invalid level
		}
		if zw == nil {
			prom.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Encoding", "gzip")
		prom.ServeHTTP(gzipWriter{ResponseWriter: w, zw: zw}, r)
		if err := zw.Close(); err != nil && r.Context().Err() == nil {
			m.cfg.Log.Warn("metrics: finishing the compressed response failed", "err", err)
		}
	})
	return http.TimeoutHandler(h, m.cfg.ScrapeTimeout, "metrics: scrape timed out\n")
}

// acceptsGzip reports whether Accept-Encoding values admit gzip (RFC 9110
// 12.5.3): listed, or covered by "*", and not with weight q=0.
func acceptsGzip(values []string) bool {
	star := false
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			coding, params, _ := strings.Cut(part, ";")
			coding = strings.ToLower(strings.TrimSpace(coding))
			if coding != "gzip" && coding != "*" {
				continue
			}
			admitted := true
			if k, w, ok := strings.Cut(strings.TrimSpace(params), "="); ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				q, err := strconv.ParseFloat(strings.TrimSpace(w), 64)
				admitted = err == nil && q > 0
			}
			if coding == "gzip" {
				return admitted
			}
			star = admitted
		}
	}
	return star
}

// gzipWriter compresses the body; the headers go to the wrapped writer.
type gzipWriter struct {
	http.ResponseWriter
	zw *gzip.Writer
}

func (w gzipWriter) Write(b []byte) (int, error) { return w.zw.Write(b) }

// gatherer is the registry plus the per-certificate expiry family, which
// is built outside the registry (see expiryFamily).
type gatherer struct{ m *Metrics }

func (g gatherer) Gather() ([]*dto.MetricFamily, error) {
	mfs, err := g.m.reg.Gather() // sorted by name; partial on error
	if fam := g.m.inv.expiryFamily(g.m.cfg.Clock.Now()); fam != nil {
		i, _ := slices.BinarySearchFunc(mfs, fam.GetName(), func(f *dto.MetricFamily, name string) int {
			return strings.Compare(f.GetName(), name)
		})
		mfs = slices.Insert(mfs, i, fam)
	}
	return mfs, err
}

// maxTokenFile bounds the token file read by LoadToken.
const maxTokenFile = 4 << 10

// LoadToken reads the bearer token a metrics listener requires from path:
// one line, surrounding white space ignored. The file holds a secret, so
// it must not be readable by group or others (0600).
func LoadToken(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("metrics: token file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("metrics: token file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("metrics: token file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("metrics: token file %s has mode %04o: it holds a secret, so it must not be readable by group or others (chmod 600)", path, perm)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxTokenFile+1))
	if err != nil {
		return nil, fmt.Errorf("metrics: token file %s: %w", path, err)
	}
	if len(b) > maxTokenFile {
		return nil, fmt.Errorf("metrics: token file %s is larger than %d bytes", path, maxTokenFile)
	}
	tok := bytes.TrimSpace(b)
	if len(tok) == 0 {
		return nil, fmt.Errorf("metrics: token file %s is empty", path)
	}
	if bytes.ContainsAny(tok, " \t\r\n") {
		return nil, fmt.Errorf("metrics: token file %s holds more than one word; put only the token in it", path)
	}
	return tok, nil
}

// BearerAuth lets through requests carrying "Authorization: Bearer TOKEN"
// and answers 401 to everything else. The comparison takes the same time
// whatever the presented token. An empty token admits nobody.
func BearerAuth(token []byte, next http.Handler) http.Handler {
	// Hashing first makes the comparison constant-time in the length too.
	want := sha256.Sum256(token)
	empty := len(token) == 0
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, got, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		sum := sha256.Sum256([]byte(strings.TrimSpace(got)))
		match := subtle.ConstantTimeCompare(sum[:], want[:]) == 1
		if empty || !ok || !strings.EqualFold(scheme, "Bearer") || !match {
			w.Header().Set("WWW-Authenticate", `Bearer realm="certwright-metrics"`)
			http.Error(w, "metrics: a valid bearer token is required", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Serve answers GET /metrics on ln until ctx ends, then shuts down
// gracefully. It is the listener of its own (metrics.listen) that a
// Prometheus server scrapes without an API token. With a token, every
// request must bear it (BearerAuth). Without one, ln must be a loopback
// address: the metrics name every certificate in the inventory, which is
// not for the whole network to read.
func (m *Metrics) Serve(ctx context.Context, ln net.Listener, token []byte) error {
	h := m.Handler()
	if len(token) > 0 {
		h = BearerAuth(token, h)
	} else if !loopback(ln.Addr()) {
		ln.Close()
		return fmt.Errorf("metrics: the listener on %s is reachable from other hosts: give it a bearer token (metrics.token_file) or listen on a loopback address", ln.Addr())
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", h)
	srv := &http.Server{
		Handler:           mux,
		ErrorLog:          slog.NewLogLogger(m.cfg.Log.Handler(), slog.LevelWarn),
		ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: m.cfg.ScrapeTimeout + 10*time.Second, IdleTimeout: 120 * time.Second,
		MaxHeaderBytes: 16 << 10,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("metrics: serve: %w", err)
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		return fmt.Errorf("metrics: shut down: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics: serve: %w", err)
	}
	return nil
}

// loopback reports whether addr is a TCP address on a loopback interface.
func loopback(addr net.Addr) bool {
	a, ok := addr.(*net.TCPAddr)
	return ok && a.IP.IsLoopback()
}

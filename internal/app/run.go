package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/certwright/certwright/internal/compliance"
	"github.com/certwright/certwright/internal/config"
	"github.com/certwright/certwright/internal/store"
	"github.com/certwright/certwright/internal/web/acmeapi"
	"github.com/certwright/certwright/internal/web/api"
	"github.com/certwright/certwright/internal/web/console"
	"github.com/certwright/certwright/internal/web/estapi"
	"github.com/certwright/certwright/internal/web/pkipub"
	"github.com/certwright/certwright/internal/web/scepweb"
)

// Listening reports where a running instance serves.
type Listening struct {
	HTTPSURL string
	HTTPURL  string
}

// securityHeaders adds the headers every HTTPS response carries.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// API returns the /api/v1 handler wired to the core.
func (a *App) API() (*api.Handler, error) {
	var signOn api.SSO
	if a.sso != nil {
		signOn = ssoAPI{a.sso}
	}
	return api.New(api.Deps{
		Log: a.log, Clock: a.clock, Auth: a.auth, Issuer: a.issuer, Approvals: a.issuer, CAs: a.cas,
		Inventory: a.store, Profiles: a.profiles, Revoker: a.revoker, Access: a.access,
		Auditor: auditor{DB: a.store, app: a}, Reports: a.store,
		ACME:      a.acme,
		EST:       a.est,
		SCEP:      a.scep,
		Lifecycle: lifecycleAPI{Service: a.lifecycle, sched: a.scheduler},
		Imports:   a.imports, Compliance: a.compliance, Scans: a.discovery,
		DefaultCA: a.cfg.DefaultCA, MaxBody: a.cfg.MaxBodyBytes,
		Refusals: a.refusals, UnauthenticatedPerSecond: a.cfg.Audit.UnauthenticatedPerSecond,
		UnauthenticatedBurst: a.cfg.Audit.UnauthenticatedBurst,
		Origins:              apiOrigins(a.cfg), OwnHosts: a.cfg.TLSNames,
		StoreTimeout:  a.cfg.StoreDeadline(),
		SSO:           signOn,
		CursorKey:     a.cursorKey,
		PublicHTTPURL: a.cfg.PublicHTTPURL,
	})
}

// scepHandler serves SCEP (/scep/NAME) on both listeners: devices and
// MDM systems speak it over plain HTTP (RFC 8894 protects the messages
// themselves), and may use HTTPS.
func (a *App) scepHandler() (http.Handler, error) {
	return scepweb.New(scepweb.Deps{Log: a.log.With("component", "scep-http"), Service: a.scep, Timeout: a.cfg.StoreDeadline()})
}

// Console returns the web console's handler wired to the core.
func (a *App) Console() (*console.Handler, error) {
	var signOn console.SSO
	if a.sso != nil {
		signOn = a.sso
	}
	return console.New(console.Deps{
		Log: a.log.With("component", "console"), Clock: a.clock, Auth: a.auth, Sessions: a.store,
		Inventory: a.store, CAs: a.cas, Authority: a.issuer, Revoker: a.revoker, Audit: auditor{DB: a.store, app: a}, Approvals: a.issuer, Refusals: a.refusals, Access: a.access,
		Lifecycle: lifecycleAPI{Service: a.lifecycle, sched: a.scheduler}, ACME: a.acme, EST: a.est,
		Compliance: complianceReports{Reporter: a.compliance, store: a.store}, Chains: a.issuer, Views: a.store, Scans: a.discovery, StoreTimeout: a.cfg.StoreDeadline(),
		IdleTimeout: a.cfg.Console.Idle(), MaxAge: a.cfg.Console.Max(),
		SSO: signOn,
	})
}

// complianceReports are the console's compliance reports: built on demand
// by the reporter, or the newest summary its job stored.
type complianceReports struct {
	*compliance.Reporter
	store *store.DB
}

func (c complianceReports) LatestSnapshot(ctx context.Context) (*compliance.Snapshot, error) {
	return c.store.LatestComplianceSnapshot(ctx)
}

func (complianceReports) JobName() string { return ComplianceJob }

// Handler returns the HTTPS handler (exported for tests).
func (a *App) Handler() (http.Handler, error) {
	apiH, err := a.API()
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/api/", apiH)
	acmeH, err := acmeapi.New(acmeapi.Deps{Log: a.log.With("component", "acme-api"), Service: a.acme, BaseURL: a.cfg.ACME.BaseURL,
		StoreTimeout: a.cfg.StoreDeadline()})
	if err != nil {
		return nil, err
	}
	mux.Handle("/acme/", a.metrics.ACMEMiddleware(acmeH))
	estH, err := estapi.New(estapi.Deps{Log: a.log.With("component", "est-api"), Service: a.est, Timeout: a.cfg.StoreDeadline()})
	if err != nil {
		return nil, err
	}
	mux.Handle(estapi.Prefix, estH)
	scepH, err := a.scepHandler()
	if err != nil {
		return nil, err
	}
	mux.Handle(scepweb.Prefix, scepH)
	mux.Handle("GET /metrics", a.metricsAuth(a.metrics.Handler()))
	mux.Handle("GET /healthz", a.health.Healthz())
	mux.Handle("GET /readyz", a.health.Readyz(a.notReady))
	mux.Handle("GET "+pkipub.RootsPath, pkipub.Roots(a.store, a.log))
	con, err := a.Console()
	if err != nil {
		return nil, err
	}
	mux.Handle("/", con)
	return recoverHTTP(a.log, securityHeaders(mux)), nil
}

// shutdownTimeout bounds the drain after shutdown_delay: in-flight
// requests on both listeners and ACME validations share it.
const shutdownTimeout = 15 * time.Second

// drainer is what Run asks of a component with work in flight that
// should finish, within the shutdown deadline, before the background
// loops stop: the ACME service's validations, once it offers Drain (Run
// calls it when it does; until then validations in flight end with the
// loops, and the ACME package's recovery re-queues them).
type drainer interface {
	Drain(ctx context.Context) error
}

// Run serves until ctx ends, then drains and shuts down. ready is called
// once both listeners accept connections.
//
// Start-up (README "Several replicas"): the replica registers itself,
// refused if a running replica's agreed settings differ; the server
// certificate and the audit key are made or loaded, one replica at a
// time; the listeners open with /readyz answering 503 "starting", and it
// turns ready once the revocation state is loaded.
//
// Shutdown, in this order: /readyz answers 503 "draining"; the listeners
// keep serving for shutdown_delay so a load balancer stops sending; both
// listeners shut down at once (no new connections, requests in flight
// finish) under one deadline of shutdownTimeout; ACME validations in
// flight get the rest of it (drainer); then the background loops are
// cancelled and waited for, the replica leaves the registry and the
// refused-request counts are written.
func (a *App) Run(ctx context.Context, ready func(Listening)) error {
	if err := a.register(ctx); err != nil {
		return err
	}
	a.warnKEKPlacement()
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		a.removeReplica(rctx)
	}()
	if err := a.EnsureServerCertificate(ctx, a.cfg.TLSNames); err != nil {
		return err
	}
	if err := a.notePublicURL(ctx); err != nil {
		return err
	}
	if _, err := a.ensureAuditKey(ctx); err != nil {
		return fmt.Errorf("app: audit key: %w", err)
	}
	if err := a.auditStart(ctx); err != nil {
		return err
	}
	h, err := a.Handler()
	if err != nil {
		return err
	}
	httpsLn, err := net.Listen("tcp", a.cfg.HTTPSListen)
	if err != nil {
		return fmt.Errorf("app: listen %s: %w", a.cfg.HTTPSListen, err)
	}
	httpLn, err := net.Listen("tcp", a.cfg.HTTPListen)
	if err != nil {
		httpsLn.Close()
		return fmt.Errorf("app: listen %s: %w", a.cfg.HTTPListen, err)
	}
	if a.sso != nil {
		// A CLI sign-in is bound to the port the listener serves.
		if err := a.sso.listening(httpsLn.Addr().(*net.TCPAddr).Port); err != nil {
			httpsLn.Close()
			httpLn.Close()
			return err
		}
	}
	errLog := slog.NewLogLogger(a.log.Handler(), slog.LevelWarn)
	httpsSrv := &http.Server{
		Handler: h, TLSConfig: a.tls.tlsConfig(), ErrorLog: errLog, ConnContext: api.ConnContext,
		ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10,
	}
	pub, err := a.PublicHandler()
	if err != nil {
		httpsLn.Close()
		httpLn.Close()
		return err
	}
	httpSrv := &http.Server{
		Handler: pub, ErrorLog: errLog,
		ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 60 * time.Second, MaxHeaderBytes: 16 << 10,
	}
	l := Listening{HTTPSURL: "https://" + clientHost(httpsLn.Addr(), a.tls.tlsNames()), HTTPURL: "http://" + clientAddr(httpLn.Addr())}
	if err := a.writeClientInfo(l.HTTPSURL); err != nil {
		httpsLn.Close()
		httpLn.Close()
		return err
	}
	metricsLn, metricsToken, err := a.metricsListener()
	if err != nil {
		httpsLn.Close()
		httpLn.Close()
		return err
	}

	a.ready.phase.Store(phaseStarting)
	defer a.ready.phase.Store(phaseStopped)
	// The loops outlive ctx by the drain: they stop after the listeners.
	loopCtx, stopLoops := context.WithCancel(context.WithoutCancel(ctx))
	defer stopLoops()
	failed := make(chan struct{})
	var failOnce sync.Once
	errc := make(chan error, 16)
	var wg sync.WaitGroup
	start := func(f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.supervise(loopCtx, f); err != nil {
				errc <- err
				failOnce.Do(func() { close(failed) })
			}
		}()
	}
	start(func() error {
		if err := httpsSrv.ServeTLS(httpsLn, "", ""); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("app: https: %w", err)
		}
		return nil
	})
	start(func() error {
		if err := httpSrv.Serve(httpLn); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("app: http: %w", err)
		}
		return nil
	})
	start(func() error { return a.cas.Run(loopCtx, time.Hour) })
	start(func() error { return a.renewLoop(loopCtx, time.Hour) })
	start(func() error { return a.revoker.Run(loopCtx) })
	start(func() error { return a.runReplicas(loopCtx) })
	start(func() error { return a.heartbeat(loopCtx) })
	start(func() error { a.audit.Run(loopCtx); return nil })
	start(func() error { a.refusals.Run(loopCtx); return nil })
	start(func() error { return a.expireLoop(loopCtx, time.Minute) })
	start(func() error { return a.acme.Run(loopCtx) })
	start(func() error { return a.runLifecycle(loopCtx) })
	if metricsLn != nil {
		start(func() error { return a.metrics.Serve(loopCtx, metricsLn, metricsToken) })
	}
	if ready != nil {
		ready(l)
	}
	stop := a.stopping(ctx, failed)
	select {
	case <-a.revoker.Loaded():
		a.ready.phase.Store(phaseServing)
		<-stop
	case <-stop:
	}

	a.ready.phase.Store(phaseDraining)
	if delay := a.cfg.ShutdownPause(); delay > 0 && ctx.Err() != nil {
		a.log.Info("shutting down: not ready; serving on for shutdown_delay", "shutdown_delay", delay)
		select {
		case <-time.After(delay):
		case <-failed:
		}
	}
	a.log.Info("shutting down")
	shutCtx, done := context.WithTimeout(context.Background(), shutdownTimeout)
	defer done()
	var servers sync.WaitGroup
	for _, srv := range []*http.Server{httpsSrv, httpSrv} {
		servers.Go(func() {
			if err := srv.Shutdown(shutCtx); err != nil {
				a.log.Warn("requests still running at the shutdown deadline were cut", "err", err)
			}
		})
	}
	servers.Wait()
	if d, ok := any(a.acme).(drainer); ok {
		if err := d.Drain(shutCtx); err != nil {
			a.log.Warn("ACME validations still running at the shutdown deadline were cut", "err", err)
		}
	}
	stopLoops()
	wg.Wait()
	// Requests refused while the listeners drained are counted after the
	// counter's own final write.
	if err := a.refusals.Flush(shutCtx, true); err != nil {
		a.log.Error("write refused requests at shutdown", "err", err)
	}
	close(errc)
	return <-errc
}

// stopping returns a channel closed when ctx ends or a component failed.
func (a *App) stopping(ctx context.Context, failed <-chan struct{}) <-chan struct{} {
	c := make(chan struct{})
	go func() {
		defer close(c)
		select {
		case <-ctx.Done():
		case <-failed:
		}
	}()
	return c
}

// sessionRetention is how long a console session's row is kept after it
// ended (its sign-in and sign-out stay in the audit log).
const sessionRetention = 30 * 24 * time.Hour

// expireLoop marks approval requests past their lifetime expired, and
// about hourly deletes console sessions ended longer than
// sessionRetention ago.
func (a *App) expireLoop(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	var pruned time.Time
	for {
		if _, err := a.issuer.ExpireRequests(ctx); err != nil && ctx.Err() == nil {
			a.log.Error("expiring approval requests failed; will retry", "err", err)
		}
		if now := a.clock.Now(); now.Sub(pruned) >= time.Hour {
			if _, err := a.store.PruneSessions(ctx, now.Add(-sessionRetention)); err != nil && ctx.Err() == nil {
				a.log.Error("pruning console sessions failed; will retry", "err", err)
			} else {
				pruned = now
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (a *App) renewLoop(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	// Another replica may replace the certificate (an emergency rotation):
	// a cheap check each minute picks that up long before the hour.
	changed := time.NewTicker(time.Minute)
	defer changed.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-changed.C:
			if !a.tls.replaced(ctx) {
				continue
			}
		}
		if err := a.tls.refresh(ctx, false); err != nil && ctx.Err() == nil {
			a.log.Error("server TLS renewal failed; will retry", "err", err)
		}
	}
}

// clientAddr turns a listen address into one a local client can dial.
func clientAddr(addr net.Addr) string {
	host, port, _ := net.SplitHostPort(addr.String())
	ip := net.ParseIP(host)
	if ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// apiOrigins are the browser origins besides its own that the API accepts
// writes from: the configured acme.base_url, if any.
func apiOrigins(cfg *config.Config) []string {
	if cfg.ACME.BaseURL != "" {
		return []string{cfg.ACME.BaseURL}
	}
	return nil
}

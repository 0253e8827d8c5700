package pkipub

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// Probe is what the health checks ask the store.
type Probe interface {
	// Ping reports whether the store answers.
	Ping(ctx context.Context) error
	// CanCommit reports whether the store commits a write now.
	CanCommit(ctx context.Context) error
}

// Health answers /healthz and /readyz on both listeners within
// healthAnswerWithin, whatever the store does: each check runs at most
// once per healthCacheFor, shared by every caller, under its own deadline.
type Health struct {
	log             *slog.Logger
	commit, answers *sharedCheck
}

const (
	// healthAnswerWithin bounds a health answer.
	healthAnswerWithin = time.Second
	// probeTimeout bounds one check; it leaves room to write the answer.
	probeTimeout = 800 * time.Millisecond
	// healthCacheFor is how long a check's result is reused: health
	// requests are not rate limited, and must not become store load.
	healthCacheFor = time.Second
)

var errProbeTimeout = errors.New("pkipub: the store did not answer the health check in time")

// NewHealth returns the health checks of store p. now is the clock the
// cached results age by.
func NewHealth(p Probe, log *slog.Logger, now func() time.Time) *Health {
	return &Health{log: log,
		commit:  &sharedCheck{fn: p.CanCommit, now: now, log: log, what: "health: the store cannot commit"},
		answers: &sharedCheck{fn: p.Ping, now: now, log: log, what: "ready: the store does not answer"}}
}

// Healthz answers 200 "ok" while the store commits writes, and 503
// "degraded" when it cannot (unreachable, read-only, disk full, stalled):
// CRLs and OCSP responses are still served from memory then, but nothing
// can be issued, revoked or audited.
func (h *Health) Healthz() http.Handler {
	return h.answer(h.commit, nil, "ok\n",
		"degraded: the database cannot commit (unreachable, read-only, full or stalled); revocation data is served from memory; see the server log\n")
}

// Readyz answers 200 "ready" while notReady returns "" and the store
// answers, 503 otherwise with "not ready: " and the reason: what a load
// balancer asks before sending requests here. notReady is the server's
// own state (starting, draining, ...) and must be quick.
func (h *Health) Readyz(notReady func() string) http.Handler {
	return h.answer(h.answers, notReady, "ready\n",
		"not ready: the database does not answer; see the server log\n")
}

// answer serves one check: 200 with ok when it passes (and notReady, when
// given, returns ""), 503 with down when it fails.
func (h *Health) answer(c *sharedCheck, notReady func() string, ok, down string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if notReady != nil {
			if why := notReady(); why != "" {
				writeHealth(w, http.StatusServiceUnavailable, "not ready: "+why+"\n")
				return
			}
		}
		if err := c.run(r.Context()); err != nil {
			if r.Context().Err() != nil {
				return
			}
			writeHealth(w, http.StatusServiceUnavailable, down)
			return
		}
		writeHealth(w, http.StatusOK, ok)
	})
}

func writeHealth(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// sharedCheck runs fn at most once at a time and reuses its result for
// healthCacheFor; a caller waits for a running check no longer than its
// own answer deadline.
type sharedCheck struct {
	fn  func(context.Context) error
	now func() time.Time

	// log and what report a change of the check's outcome (failing, then
	// passing again) once, not once per request.
	log  *slog.Logger
	what string

	mu      sync.Mutex
	at      time.Time
	err     error
	running chan struct{} // closed when the running check ends; nil when none runs
}

func (c *sharedCheck) run(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, healthAnswerWithin-100*time.Millisecond)
	defer cancel()
	c.mu.Lock()
	if c.running == nil && !c.at.IsZero() && c.now().Sub(c.at) < healthCacheFor {
		err := c.err
		c.mu.Unlock()
		return err
	}
	if c.running == nil {
		c.running = make(chan struct{})
		go c.probe(c.running)
	}
	done := c.running
	c.mu.Unlock()
	select {
	case <-done:
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.err
	case <-ctx.Done():
		return errProbeTimeout
	}
}

// probe runs the check detached from any one request, under probeTimeout.
func (c *sharedCheck) probe(done chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	err := c.fn(ctx)
	cancel()
	if err != nil && ctx.Err() != nil {
		err = errors.Join(errProbeTimeout, err)
	}
	c.mu.Lock()
	wasFailing, first := c.err != nil, c.at.IsZero()
	c.at, c.err, c.running = c.now(), err, nil
	c.mu.Unlock()
	switch {
	case err != nil && (first || !wasFailing):
		c.log.Warn(c.what, "err", err)
	case err == nil && wasFailing:
		c.log.Info("store health check passes again", "was", c.what)
	}
	close(done)
}

package scan

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/discovery"
)

// StandaloneOptions tune a scan run without a server. The zero value is
// ready to use.
type StandaloneOptions struct {
	// Clock defaults to the system clock, Log to discarding everything.
	Clock clock.Clock
	Log   *slog.Logger
	// Ports are scanned on targets given without one (nil: 443).
	Ports []uint16
	// Roots are trusted beside the system roots: a private CA's root,
	// so that what it issued grades as trusted.
	Roots    []*x509.Certificate
	Resolver Resolver
	// Timeout, IOTimeout, BannerTimeout, Concurrency, PerHost,
	// MaxConnections and SkipRevocation are those of EngineConfig (same
	// defaults).
	Timeout, IOTimeout, BannerTimeout    time.Duration
	Concurrency, PerHost, MaxConnections int
	SkipRevocation                       bool
	// FetchAnywhere lets revocation checks connect anywhere; by default
	// they reach public addresses and the targets' own addresses and
	// names (on any port) only.
	FetchAnywhere bool
}

// ErrNoTargets is returned by Standalone when it is given none.
var ErrNoTargets = errors.New("scan: no targets given; name at least one, like 127.0.0.1:5432, example.com or 10.0.0.0/28:443,8443")

// Standalone is "certwright scan TARGET...": it parses the targets (see
// discovery.ParseTargets: host:port, hostnames, port lists, CIDR ranges)
// and scans them with the full engine, allowing every target, since the
// user running it chose them; revocation checks fetch from public
// addresses and the targets' own addresses and names (a certificate's
// URLs are its issuer's choice, not the user's), or from anywhere with
// FetchAnywhere. It returns the
// observations in the order of the targets, for WriteTable or WriteJSON;
// an error is a bad target (wrapping discovery.ErrInvalid) or ctx ending
// (with the observations finished).
func Standalone(ctx context.Context, args []string, opts StandaloneOptions) ([]discovery.Observation, error) {
	if len(args) == 0 {
		return nil, ErrNoTargets
	}
	targets, err := discovery.ParseTargets(args, opts.Ports)
	if err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	e, err := NewEngine(EngineConfig{
		Clock: opts.Clock, Log: opts.Log,
		Allow: AllowEverything(), Fetch: standaloneFetch(targets, opts.FetchAnywhere), Roots: opts.Roots, Resolver: opts.Resolver,
		Timeout: opts.Timeout, IOTimeout: opts.IOTimeout, BannerTimeout: opts.BannerTimeout, Concurrency: opts.Concurrency, PerHost: opts.PerHost,
		MaxConnections: opts.MaxConnections, SkipRevocation: opts.SkipRevocation,
	})
	if err != nil {
		return nil, err
	}
	return e.Scan(ctx, targets)
}

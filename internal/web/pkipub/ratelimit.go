package pkipub

import (
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/certwright/certwright/internal/netsource"
)

// Per-source rate limit of the plain-HTTP listener (issue 13 #16). Anyone
// can reach /ocsp and /crl, and a request for a serial nobody issued costs
// a store lookup and possibly a signature, so each source address gets a
// token bucket. IPv6 sources are keyed by their /64, the block one
// subscriber usually holds. Loopback peers (a reverse proxy on the same
// host, local checks) are exempt unless Deps.RateLimitLoopback is set:
// behind a proxy every request has the proxy's address, and the proxy is
// the place to limit.

// Defaults of the per-source limit.
const (
	// DefaultRatePerSecond is the sustained rate per source; the burst is
	// twice it.
	DefaultRatePerSecond = 100
	// maxSources bounds the buckets kept; idle full buckets are dropped
	// first, then arbitrary ones.
	maxSources = 16384
)

type bucket struct {
	tokens float64
	last   time.Time
}

type limiter struct {
	rate  float64 // tokens per second; 0: no limit
	burst float64
	now   func() time.Time
	mu    sync.Mutex
	m     map[netip.Addr]*bucket
	// retry is the Retry-After value of a refusal, in whole seconds.
	retry []string
	// loopback: limit loopback peers too.
	loopback bool
}

func newLimiter(perSecond int, loopback bool, now func() time.Time) *limiter {
	if perSecond <= 0 {
		return &limiter{}
	}
	return &limiter{
		rate: float64(perSecond), burst: float64(2 * perSecond), now: now,
		m: map[netip.Addr]*bucket{}, retry: []string{"1"}, loopback: loopback,
	}
}

// sourceKey is the bucket key of a RemoteAddr; ok is false for an exempt
// or unparsable peer.
func (l *limiter) sourceKey(remote string) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	if a.Unmap().IsLoopback() && !l.loopback {
		return netip.Addr{}, false
	}
	return netsource.Addr(a), true
}

// allow takes a token for the request's source.
func (l *limiter) allow(r *http.Request) bool {
	if l.rate == 0 {
		return true
	}
	key, ok := l.sourceKey(r.RemoteAddr)
	if !ok {
		return true
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.m[key]
	if b == nil {
		if len(l.m) >= maxSources {
			l.evict(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.m[key] = b
	}
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(l.burst, b.tokens+d.Seconds()*l.rate)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// evict drops buckets that have refilled (their source has been quiet),
// then, if that freed nothing, an eighth of the map: the map never
// outgrows maxSources whatever the number of sources.
func (l *limiter) evict(now time.Time) {
	for k, b := range l.m {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
			delete(l.m, k)
		}
	}
	if len(l.m) < maxSources {
		return
	}
	n := len(l.m) / 8
	for k := range l.m {
		if n == 0 {
			break
		}
		delete(l.m, k)
		n--
	}
}

// sources is the number of buckets held (tests).
func (l *limiter) sources() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

// tooMany answers 429 with Retry-After.
func (h *handler) tooMany(w http.ResponseWriter) {
	w.Header()["Retry-After"] = h.lim.retry
	w.Header()["Cache-Control"] = h.hv.noStore
	h.text(w, http.StatusTooManyRequests, "too many requests from this address; retry after 1 second\n")
}

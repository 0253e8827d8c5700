package netsource

import (
	"math"
	"sync"
	"time"
)

// Defaults of a Limiter made with a rate or burst of zero.
const (
	DefaultPerSecond = 10
	DefaultBurst     = 20
	// maxSources bounds the sources a Limiter tracks; past it, new
	// sources share one bucket.
	maxSources = 10000
)

// Limiter is a token bucket per source (Key): each failure a source
// causes spends a token, and tokens come back at a steady rate up to a
// burst. Callers decide what counts as a failure and what a source over
// its budget gets (the API answers 429 to requests that would be refused,
// but still serves one whose credential verifies, since many clients can
// share an address). It tracks at most maxSources sources; past that, new
// sources share one bucket. It is safe for concurrent use.
type Limiter struct {
	now   func() time.Time
	rate  float64 // tokens a second
	burst float64

	mu      sync.Mutex
	buckets map[string]*tokenBucket
}

type tokenBucket struct {
	tokens float64
	at     time.Time
}

// overflowSource is the bucket shared by sources past maxSources.
const overflowSource = "*"

// NewLimiter returns a Limiter refilling rate tokens a second up to burst
// (DefaultPerSecond and DefaultBurst when zero or less).
func NewLimiter(now func() time.Time, rate float64, burst int) *Limiter {
	if rate <= 0 {
		rate = DefaultPerSecond
	}
	if burst <= 0 {
		burst = DefaultBurst
	}
	return &Limiter{now: now, rate: rate, burst: float64(burst), buckets: map[string]*tokenBucket{}}
}

func (l *Limiter) refill(b *tokenBucket, now time.Time) {
	if d := now.Sub(b.at).Seconds(); d > 0 {
		b.tokens = math.Min(l.burst, b.tokens+d*l.rate)
	}
	b.at = now
}

// Wait returns how long source must wait before its next refused request
// is answered other than 429: 0 when it is within its budget.
func (l *Limiter) Wait(source string) time.Duration {
	source = Key(source)
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[source]
	if b == nil {
		if len(l.buckets) < maxSources {
			return 0
		}
		if b = l.buckets[overflowSource]; b == nil {
			return 0
		}
	}
	l.refill(b, now)
	if b.tokens >= 1 {
		return 0
	}
	return time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
}

// Fail spends one token of source's bucket.
func (l *Limiter) Fail(source string) {
	source = Key(source)
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[source]
	if b == nil {
		if len(l.buckets) >= maxSources {
			l.prune(now)
		}
		if len(l.buckets) >= maxSources {
			source = overflowSource
			b = l.buckets[source]
		}
		if b == nil {
			b = &tokenBucket{tokens: l.burst, at: now}
			l.buckets[source] = b
		}
	}
	l.refill(b, now)
	b.tokens = math.Max(0, b.tokens-1)
}

// prune forgets the sources whose buckets have filled up again.
func (l *Limiter) prune(now time.Time) {
	for s, b := range l.buckets {
		l.refill(b, now)
		if b.tokens >= l.burst {
			delete(l.buckets, s)
		}
	}
}

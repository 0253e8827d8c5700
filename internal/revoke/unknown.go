package revoke

import (
	"context"
	"crypto/x509"
	"math/big"
	"sync"
	"time"
)

// Never-issued serials (issue 13 #16). RFC 6960 binds every signed answer,
// "unknown" included, to the request's CertID, so no answer for an unknown
// serial can be signed in advance. What an anonymous client can make the
// responder do for one is therefore kept small and bounded:
//
//   - the subordinate-CA certificates a CA signed are read once and kept
//     (childSet), not listed and parsed on every miss;
//   - a signed "unknown" is kept in a bounded negative cache for
//     UnknownCacheTTL, so a client asking again costs a map lookup;
//   - signing a new "unknown" draws on a per-CA budget
//     (Config.OCSPUnknownPerSecond); past it the answer is the unsigned
//     tryLater (RFC 6960 2.3), which costs nothing to send. Issued and
//     revoked certificates never draw on it.
//
// The per-source limit of the plain-HTTP listener (pkipub) bounds what
// one client can ask for at all.

// Defaults for never-issued serials.
const (
	// DefaultOCSPUnknownCacheEntries bounds the signed "unknown" answers
	// kept across all CAs.
	DefaultOCSPUnknownCacheEntries = 10_000
	// DefaultOCSPUnknownPerSecond is the per-CA rate of new "unknown"
	// answers signed; the burst is twice that.
	DefaultOCSPUnknownPerSecond = 200
	// UnknownCacheTTL is how long a signed "unknown" is reused. A serial is
	// 128 random bits chosen at issuance, so an answer going stale inside
	// this window needs someone to have asked for a serial before it was
	// drawn; the bound keeps even that short.
	UnknownCacheTTL = 5 * time.Minute
	// childRefresh is the least time between two reads of the CA list made
	// to find a subordinate CA certificate not yet in childSet: a CA made
	// a moment ago answers "good" within this time.
	childRefresh = 5 * time.Second
)

// childSet is the serials of the CA certificates one CA signed.
type childSet struct {
	mu      sync.Mutex
	serials map[string]bool // big-endian serial bytes
	loaded  time.Time       // clock time of the last read; zero before the first
}

// isChildCA reports whether serial is the certificate of a subordinate CA
// that st signed (CA certificates are not in the leaf inventory). It reads
// the CA list only when the serial is not known and the last read is older
// than childRefresh.
func (s *Service) isChildCA(ctx context.Context, st *caState, serial *big.Int) (bool, error) {
	key := string(serial.Bytes())
	c := &st.children
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.serials[key] {
		return true, nil
	}
	now := s.cfg.Clock.Now()
	if !c.loaded.IsZero() && now.Sub(c.loaded) < childRefresh && !now.Before(c.loaded) {
		return false, nil
	}
	cas, err := s.store.ListCAs(ctx)
	if err != nil {
		return false, err
	}
	serials := map[string]bool{}
	for _, x := range cas {
		if x.ParentID != st.id || len(x.CertDER) == 0 {
			continue
		}
		cert, err := x509.ParseCertificate(x.CertDER)
		if err == nil {
			serials[string(cert.SerialNumber.Bytes())] = true
		}
	}
	c.serials, c.loaded = serials, now
	return serials[key], nil
}

// unknownBudget is a token bucket on the clock of the service.
type unknownBudget struct {
	mu     sync.Mutex
	tokens float64
	last   time.Time
}

// take reports whether a new "unknown" may be signed now.
func (b *unknownBudget) take(now time.Time, rate int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	burst := float64(2 * rate)
	if b.last.IsZero() {
		b.tokens, b.last = burst, now
	}
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(burst, b.tokens+d.Seconds()*float64(rate))
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// cachedUnknown returns a reusable signed "unknown" for key, or nil.
func (s *Service) cachedUnknown(st *caState, key string, now time.Time) *entry {
	st.mu.RLock()
	e := st.unknown[key]
	st.mu.RUnlock()
	if e == nil || now.Unix() >= e.this+int64(UnknownCacheTTL/time.Second) || !s.fresh(e, now) {
		return nil
	}
	return e
}

// insertUnknown keeps a signed "unknown", evicting another of this CA's
// when the cache is full, so a flood of random serials keeps the cache
// bounded and still useful for repeated ones.
func (s *Service) insertUnknown(st *caState, key string, e *entry) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.dropped {
		return
	}
	if _, have := st.unknown[key]; have {
		st.unknown[key] = e
		return
	}
	if s.unknownCached.Load() >= int64(s.cfg.OCSPUnknownCacheEntries) {
		evicted := false
		for k := range st.unknown { // map order is unspecified: an arbitrary victim
			delete(st.unknown, k)
			evicted = true
			break
		}
		if !evicted {
			return
		}
	} else {
		s.unknownCached.Add(1)
	}
	st.unknown[key] = e
}

// UnknownCached is the number of signed "unknown" answers kept (tests,
// metrics).
func (s *Service) UnknownCached() int { return int(s.unknownCached.Load()) }

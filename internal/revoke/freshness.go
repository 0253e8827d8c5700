package revoke

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"
)

// Freshness is what this server knows about how current one CA's
// revocation data is: the CRL it serves, its OCSP responder and pre-signed
// responses, and the last failure to refresh either. Times are on the
// service's clock. A zero time means "not yet" (no CRL built, no
// pre-signing pass finished, no responder loaded since this process
// started).
type Freshness struct {
	CAID   string
	CAName string

	// CRLNumber, CRLThisUpdate, CRLNextUpdate and CRLEntries describe the
	// CRL currently served; CRLThisUpdate is when it was built.
	CRLNumber     int64
	CRLThisUpdate time.Time
	CRLNextUpdate time.Time
	CRLEntries    int
	// CRLRefreshDue is when the scheduled rebuild is due (a third of the
	// CRL lifetime after CRLThisUpdate); well past it means rebuilding fails.
	CRLRefreshDue time.Time

	// OCSPResponderNotAfter is the expiry of the delegated responder
	// certificate that signs the CA's OCSP responses.
	OCSPResponderNotAfter time.Time
	// OCSPLastPresign is when the last pass that re-signs every
	// certificate's response finished; OCSPRefreshDue is when the next is
	// due (a quarter of the response lifetime later).
	OCSPLastPresign time.Time
	OCSPRefreshDue  time.Time
	// OCSPNextUpdate is the earliest nextUpdate a pre-signed response can
	// carry: the last pass re-signed every response older than a quarter
	// of the lifetime, so all are good until three quarters of it after
	// the pass (or the responder certificate's expiry, if sooner).
	OCSPNextUpdate time.Time

	// CRLError is the error of the latest attempt to build the CRL, and
	// CRLErrorSince when attempts started failing; both are empty once an
	// attempt succeeds. OCSPError and OCSPErrorSince are the same for
	// rotating the responder and pre-signing responses.
	CRLError       string
	CRLErrorSince  time.Time
	OCSPError      string
	OCSPErrorSince time.Time
	// LastError is the most recent of CRLError ("CRL: ...") and OCSPError
	// ("OCSP: ...") still unresolved, and LastErrorAt when it happened;
	// empty when both kinds of refresh last succeeded.
	LastError   string
	LastErrorAt time.Time
}

// Failing reports whether the latest refresh of the CRL or of the OCSP
// responses failed.
func (f Freshness) Failing() bool { return f.CRLError != "" || f.OCSPError != "" }

// Stale reports whether the CA's CRL and its OCSP responses are stale at
// now: the latest refresh failed, or the due one is more than grace late
// (maintenance runs every minute, so a little lateness is normal).
func (f Freshness) Stale(now time.Time, grace time.Duration) (crl, ocsp bool) {
	crl = f.CRLError != "" || (!f.CRLRefreshDue.IsZero() && now.After(f.CRLRefreshDue.Add(grace)))
	ocsp = f.OCSPError != "" || (!f.OCSPRefreshDue.IsZero() && now.After(f.OCSPRefreshDue.Add(grace)))
	return crl, ocsp
}

// StaleGrace is how far past its refresh time revocation data may be
// before it counts as stale: the alerts and the console say so from then.
const StaleGrace = 5 * time.Minute

// Freshness returns the revocation state of every CA this service has
// loaded (all of them, once Run's first maintenance pass has run), ordered
// by CA name. It reads memory only.
func (s *Service) Freshness() []Freshness {
	s.mu.RLock()
	sts := make([]*caState, 0, len(s.cas))
	for _, st := range s.cas {
		sts = append(sts, st)
	}
	s.mu.RUnlock()
	out := make([]Freshness, 0, len(sts))
	for _, st := range sts {
		f := Freshness{CAID: st.id, CAName: st.name}
		if c := st.crl.Load(); c != nil {
			f.CRLNumber, f.CRLThisUpdate, f.CRLNextUpdate, f.CRLEntries = c.Number, c.ThisUpdate, c.NextUpdate, c.Entries
			f.CRLRefreshDue = c.ThisUpdate.Add(s.timings().CRLLifetime / 3)
			if st.offline {
				f.CRLRefreshDue = uploadDue(c)
			}
		}
		if r := st.responder.Load(); r != nil && r.Cert != nil {
			f.OCSPResponderNotAfter = r.Cert.NotAfter
		}
		st.mu.RLock()
		f.OCSPLastPresign = st.lastPresign
		st.mu.RUnlock()
		if !f.OCSPLastPresign.IsZero() {
			f.OCSPRefreshDue = f.OCSPLastPresign.Add(s.timings().OCSPLifetime / 4)
			f.OCSPNextUpdate = f.OCSPLastPresign.Add(s.timings().OCSPLifetime * 3 / 4)
			if !f.OCSPResponderNotAfter.IsZero() && f.OCSPResponderNotAfter.Before(f.OCSPNextUpdate) {
				f.OCSPNextUpdate = f.OCSPResponderNotAfter
			}
		}
		s.refreshes.fill(&f)
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b Freshness) int {
		if c := strings.Compare(a.CAName, b.CAName); c != 0 {
			return c
		}
		return strings.Compare(a.CAID, b.CAID)
	})
	return out
}

// Refresh kinds noted in freshLog. The responder and the pre-signing pass
// are separate: each attempt clears only its own kind's failure.
const (
	refreshCRL = iota
	refreshResponder
	refreshPresign
	refreshKinds
)

// failure is a refresh kind's unresolved failure.
type failure struct {
	err   string
	since time.Time // the first failure of the streak
	at    time.Time // the latest
}

// freshLog keeps each CA's unresolved refresh failures. Its zero value is
// ready to use.
type freshLog struct {
	mu   sync.Mutex
	byCA map[string]*[refreshKinds]failure
}

// note records the outcome of one refresh of kind for caID at now: a
// failure's error, or, for nil, that the kind works again.
func (l *freshLog) note(caID string, kind int, now time.Time, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fs := l.byCA[caID]
	if err == nil {
		if fs != nil {
			fs[kind] = failure{}
		}
		return
	}
	if fs == nil {
		if l.byCA == nil {
			l.byCA = map[string]*[refreshKinds]failure{}
		}
		fs = new([refreshKinds]failure)
		l.byCA[caID] = fs
	}
	f := &fs[kind]
	if f.err == "" {
		f.since = now
	}
	f.err, f.at = err.Error(), now
}

// fill copies f.CAID's failures into f.
func (l *freshLog) fill(f *Freshness) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fs := l.byCA[f.CAID]
	if fs == nil {
		return
	}
	c := fs[refreshCRL]
	// OCSP: the latest of the responder's and the pass's failures, failing
	// since the earlier.
	var o failure
	for _, x := range []failure{fs[refreshResponder], fs[refreshPresign]} {
		if x.err == "" {
			continue
		}
		if o.err == "" || x.since.Before(o.since) {
			o.since = x.since
		}
		if o.err == "" || x.at.After(o.at) {
			o.err, o.at = x.err, x.at
		}
	}
	f.CRLError, f.CRLErrorSince = c.err, c.since
	f.OCSPError, f.OCSPErrorSince = o.err, o.since
	if c.err != "" {
		f.LastError, f.LastErrorAt = "CRL: "+c.err, c.at
	}
	if o.err != "" && (c.err == "" || o.at.After(c.at)) {
		f.LastError, f.LastErrorAt = "OCSP: "+o.err, o.at
	}
}

// noteCRL records the outcome of an attempt to build st's CRL. An attempt
// cut short by the caller's context (shutdown, a client gone) says nothing
// about the CA and is not recorded.
func (s *Service) noteCRL(ctx context.Context, st *caState, err error) {
	s.note(ctx, st, refreshCRL, err)
}

// noteResponder records the outcome of making sure st has a current OCSP
// responder certificate, like noteCRL.
func (s *Service) noteResponder(ctx context.Context, st *caState, err error) {
	s.note(ctx, st, refreshResponder, err)
}

// notePresign records the outcome of a pass pre-signing st's OCSP
// responses, like noteCRL.
func (s *Service) notePresign(ctx context.Context, st *caState, err error) {
	s.note(ctx, st, refreshPresign, err)
}

func (s *Service) note(ctx context.Context, st *caState, kind int, err error) {
	if ctx.Err() == nil {
		s.refreshes.note(st.id, kind, s.cfg.Clock.Now(), err)
	}
}

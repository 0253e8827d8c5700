package revoke

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"log/slog"
	"math/big"
	"time"

	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/keys"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/revoke/ocsp"
)

// OCSPResponse is what the responder sends for one request.
type OCSPResponse struct {
	DER        []byte
	ETag       string // quoted
	ThisUpdate time.Time
	NextUpdate time.Time
	// Cacheable is false for error responses (malformedRequest,
	// unauthorized, tryLater), which carry no times.
	Cacheable bool
}

// presignHash is the CertID hash responses are pre-signed for: SHA-1, the
// one RFC 5019 clients use. Requests with other hashes are signed on first
// use and cached as well.
const presignHash = crypto.SHA1

func cacheKey(h crypto.Hash, serial []byte) string {
	b := make([]byte, 0, 1+len(serial))
	b = append(b, byte(h))
	return string(append(b, serial...))
}

func errorResponse(status ocsp.ResponseStatus) OCSPResponse {
	return OCSPResponse{DER: ocsp.ErrorResponse(status)}
}

func (e *entry) response() OCSPResponse {
	return OCSPResponse{DER: e.der, ETag: e.etag, ThisUpdate: time.Unix(e.this, 0).UTC(), NextUpdate: time.Unix(e.next, 0).UTC(), Cacheable: true}
}

// fresh reports whether e may still be served: less than half its lifetime
// has passed. Older entries are re-signed on the next request, and served
// until their nextUpdate only while that fails (stillValid).
func (s *Service) fresh(e *entry, now time.Time) bool {
	return now.Unix() < e.this+int64(s.timings().OCSPLifetime/time.Second)/2 && now.Unix() < e.next
}

// stillValid returns e when it is still key's cached response and before
// its nextUpdate: while a fresher one cannot be signed (a CA whose key, and
// so its responder's, is in a token that is away), a response a client
// accepts answers better than tryLater. A revocation since drops it from
// the cache, so it is never served after one.
func (s *Service) stillValid(st *caState, key string, e *entry, now time.Time) *entry {
	if e == nil || now.Unix() >= e.next {
		return nil
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	if st.cache[key] != e {
		return nil
	}
	return e
}

// Respond answers one DER OCSP request for the CA with ID caID. It never
// fails: problems become OCSP error responses. A request for a certificate
// whose response is cached costs a parse and a map lookup.
func (s *Service) Respond(ctx context.Context, caID string, reqDER []byte) OCSPResponse {
	req, err := ocsp.ParseRequest(reqDER)
	if err != nil {
		return errorResponse(ocsp.StatusFor(err))
	}
	st, err := s.state(ctx, caID)
	if err != nil {
		if errors.Is(err, ErrNoCA) {
			return errorResponse(ocsp.StatusUnauthorized)
		}
		s.cfg.Log.Error("OCSP: load CA", "ca", caID, "err", err)
		return errorResponse(ocsp.StatusTryLater)
	}
	// A CertID naming another issuer is not ours to answer (RFC 6960 2.3),
	// nor is a request to an offline root, whose key is not here.
	if st.offline || !st.issuer.Matches(req.CertID) {
		return errorResponse(ocsp.StatusUnauthorized)
	}
	serial := req.Serial.Bytes()
	key := cacheKey(req.Hash, serial)
	now := s.cfg.Clock.Now()
	st.mu.RLock()
	e, epoch := st.cache[key], st.epoch
	st.mu.RUnlock()
	if e != nil && s.fresh(e, now) {
		return e.response()
	}
	if e := s.cachedUnknown(st, key, now); e != nil {
		return e.response()
	}
	cached := e
	e, err = s.lookupAndSign(ctx, st, req.CertID, now)
	if errors.Is(err, errUnknownBudget) {
		return errorResponse(ocsp.StatusTryLater)
	}
	if err != nil {
		if ctx.Err() == nil {
			s.cfg.Log.Error("OCSP: answer", "ca", st.name, "serial", hex.EncodeToString(serial), "err", err)
		}
		if old := s.stillValid(st, key, cached, now); old != nil {
			return old.response()
		}
		return errorResponse(ocsp.StatusTryLater)
	}
	if e.status != ocsp.Unknown {
		s.insert(st, key, e, func() bool { return st.epoch == epoch })
	} else {
		s.insertUnknown(st, key, e)
	}
	return e.response()
}

// errUnknownBudget: the CA's budget for signing new "unknown" answers is
// spent for now.
var errUnknownBudget = errors.New("revoke: OCSP budget for unknown serials spent")

// lookupAndSign reads a certificate's status from the store and signs it.
func (s *Service) lookupAndSign(ctx context.Context, st *caState, id ocsp.CertID, now time.Time) (*entry, error) {
	serialHex := pki.SerialHex(id.Serial)
	issued, rev, err := s.store.LookupSerial(ctx, st.id, serialHex)
	if err != nil {
		return nil, err
	}
	if !issued && rev == nil {
		if issued, err = s.isChildCA(ctx, st, id.Serial); err != nil {
			return nil, err
		}
	}
	a := ocsp.Answer{Status: ocsp.Unknown}
	switch {
	case rev != nil:
		a = ocsp.Answer{Status: ocsp.Revoked, RevokedAt: rev.RevokedAt, Reason: rev.Reason}
	case issued:
		a.Status = ocsp.Good
	case !st.unknownBudget.take(now, s.timings().OCSPUnknownPerSecond):
		return nil, errUnknownBudget
	}
	return s.sign(ctx, st, id, a, now)
}

// sign signs answer a for id with st's current responder.
func (s *Service) sign(ctx context.Context, st *caState, id ocsp.CertID, a ocsp.Answer, now time.Time) (*entry, error) {
	r, err := s.responder(ctx, st)
	if err != nil {
		return nil, err
	}
	this := now.UTC().Truncate(time.Second)
	next := this.Add(s.timings().OCSPLifetime)
	if next.After(r.Cert.NotAfter) {
		next = r.Cert.NotAfter.UTC().Truncate(time.Second)
	}
	a.ThisUpdate, a.NextUpdate = this, next
	der, err := r.Sign(s.cfg.Rand, id, a)
	if err != nil {
		return nil, fmt.Errorf("sign OCSP response: %w", err)
	}
	sum := sha256.Sum256(der)
	e := &entry{
		der: der, etag: `"` + hex.EncodeToString(sum[:12]) + `"`,
		this: this.Unix(), next: next.Unix(), status: a.Status,
	}
	e.seen(s.pass.Load())
	return e, nil
}

// insert caches e under key when ok (checked under the lock) allows and
// the cache has room.
func (s *Service) insert(st *caState, key string, e *entry, ok func() bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.dropped || ok != nil && !ok() {
		return
	}
	if _, have := st.cache[key]; !have {
		if s.cached.Load() >= int64(s.timings().OCSPCacheEntries) {
			return
		}
		s.cached.Add(1)
	}
	st.cache[key] = e
}

// revoked drops the cached responses of newly revoked serials, so that no
// request after the revocation is answered "good", and pre-signs the
// revoked responses again for small sets (larger ones are signed on demand
// and by the next pre-signing pass).
func (st *caState) revoked(ctx context.Context, s *Service, recs []*inventory.Revocation) {
	serials := make([]string, len(recs))
	for i, r := range recs {
		serials[i] = r.Serial
	}
	st.forget(s, serials, false)
	if len(recs) > maxResignRevoked {
		s.requestWarm(st.id)
		return
	}
	st.presignRevoked(ctx, s, recs)
}

// maxResignRevoked is the most revoked responses signed again at once
// after a revocation; past it the CA's pre-signing pass does it.
const maxResignRevoked = 64

// forget moves st's epoch (so that an answer signed from a lookup made
// before cannot be cached) and drops the cached responses, under every
// CertID hash, of serials (hex), bar those that say revoked when
// keepRevoked is set (revocation is final). A running pre-signing pass
// will not cache them either. It returns the serials of which a response
// was dropped.
func (st *caState) forget(s *Service, serials []string, keepRevoked bool) []string {
	var dropped []string
	st.mu.Lock()
	defer st.mu.Unlock()
	st.epoch++
	for _, serial := range serials {
		b, err := hex.DecodeString(serial)
		if err != nil {
			continue
		}
		hit := false
		for _, h := range ocsp.Hashes() {
			k := cacheKey(h, b)
			if e, ok := st.cache[k]; ok && !(keepRevoked && e.status == ocsp.Revoked) {
				delete(st.cache, k)
				s.cached.Add(-1)
				hit = true
			}
			if _, ok := st.unknown[k]; ok {
				delete(st.unknown, k)
				s.unknownCached.Add(-1)
				hit = true
			}
		}
		if hit {
			dropped = append(dropped, serial)
		}
		if st.passRevoked != nil {
			st.passRevoked[serial] = true
		}
	}
	return dropped
}

// forgetAll is forget for every serial of st's CA: it keeps only the
// responses that say revoked, and the running pre-signing pass, if any,
// caches nothing more.
func (st *caState) forgetAll(s *Service) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.epoch++
	for k, e := range st.cache {
		if e.status != ocsp.Revoked {
			delete(st.cache, k)
			s.cached.Add(-1)
		}
	}
	s.unknownCached.Add(-int64(len(st.unknown)))
	clear(st.unknown)
	st.passVoid = true
}

// presignRevoked signs and caches the revoked responses of recs.
func (st *caState) presignRevoked(ctx context.Context, s *Service, recs []*inventory.Revocation) {
	now := s.cfg.Clock.Now()
	for _, r := range recs {
		serial, err := hex.DecodeString(r.Serial)
		if err != nil {
			continue
		}
		id, err := st.issuer.CertID(presignHash, new(big.Int).SetBytes(serial))
		if err != nil {
			continue
		}
		e, err := s.sign(ctx, st, id, ocsp.Answer{Status: ocsp.Revoked, RevokedAt: r.RevokedAt, Reason: r.Reason}, now)
		if err != nil {
			s.cfg.Log.Error("OCSP: pre-sign revoked response", "ca", st.name, "serial", r.Serial, "err", err)
			continue
		}
		// Revocation is final, so a revoked answer is always safe to cache.
		s.insert(st, cacheKey(presignHash, serial), e, nil)
	}
}

func (s *Service) requestWarm(caID string) {
	select {
	case s.warm <- caID:
	default:
	}
}

// Presign signs and caches a response for every unexpired certificate of
// the CA caID that lacks a fresh one, and drops responses for certificates
// that have expired. It is the background half of "a request costs a
// lookup".
func (s *Service) Presign(ctx context.Context, caID string) (signed int, err error) {
	st, err := s.state(ctx, caID)
	if err != nil {
		return 0, err
	}
	return s.presign(ctx, st)
}

func (s *Service) presign(ctx context.Context, st *caState) (signed int, err error) {
	if st.offline {
		return 0, nil
	}
	// One pass per CA at a time: passRevoked belongs to the running pass.
	st.presignMu.Lock()
	defer st.presignMu.Unlock()
	defer func() { s.notePresign(ctx, st, err) }()
	pass := s.pass.Add(1)
	st.mu.Lock()
	st.passRevoked, st.passVoid = map[string]bool{}, false
	st.mu.Unlock()
	defer func() {
		st.mu.Lock()
		st.passRevoked, st.passVoid = nil, false
		st.mu.Unlock()
	}()
	start := time.Now()
	now := s.cfg.Clock.Now()
	// Entries are re-signed once a quarter of their lifetime has passed, so
	// a pass every quarter lifetime keeps every one of them fresh.
	refresh := int64(s.timings().OCSPLifetime/time.Second) / 4
	full := false
	err = s.store.EachUnexpired(ctx, st.id, now, func(serialHex string, _ time.Time, rev *inventory.Revocation) error {
		serial, err := hex.DecodeString(serialHex)
		if err != nil {
			return fmt.Errorf("serial %q: %w", serialHex, err)
		}
		key := cacheKey(presignHash, serial)
		want := ocsp.Good
		if rev != nil {
			want = ocsp.Revoked
		}
		st.mu.RLock()
		e := st.cache[key]
		st.mu.RUnlock()
		if e != nil && e.status == want && now.Unix() < e.this+refresh {
			e.seen(pass)
			return nil
		}
		if full && e == nil {
			return nil
		}
		id, err := st.issuer.CertID(presignHash, new(big.Int).SetBytes(serial))
		if err != nil {
			return err
		}
		a := ocsp.Answer{Status: want}
		if rev != nil {
			a.RevokedAt, a.Reason = rev.RevokedAt, rev.Reason
		}
		ne, err := s.sign(ctx, st, id, a, now)
		if err != nil {
			return err
		}
		ne.seen(pass)
		s.insert(st, key, ne, func() bool { return !st.passVoid && !st.passRevoked[serialHex] })
		if e == nil && s.cached.Load() >= int64(s.timings().OCSPCacheEntries) {
			full = true
		}
		signed++
		return nil
	})
	if err != nil {
		return signed, fmt.Errorf("revoke: pre-sign OCSP responses of CA %s: %w", st.name, err)
	}
	// Whatever the pass did not see has expired (or is keyed by a rarer
	// hash and will be signed again on demand).
	evicted := 0
	st.mu.Lock()
	for k, e := range st.cache {
		if e.passSeen() < pass {
			delete(st.cache, k)
			evicted++
		}
	}
	st.lastPresign = now
	dropped := 0
	for k, e := range st.unknown {
		if now.Unix() >= e.this+int64(UnknownCacheTTL/time.Second) {
			delete(st.unknown, k)
			dropped++
		}
	}
	st.mu.Unlock()
	s.unknownCached.Add(-int64(dropped))
	s.cached.Add(-int64(evicted))
	if full {
		s.cfg.Log.Warn("OCSP response cache is full; further responses are signed on demand", "entries", s.timings().OCSPCacheEntries)
	}
	level := slog.LevelInfo
	if signed == 0 && evicted == 0 {
		level = slog.LevelDebug // nothing was due
	}
	s.cfg.Log.Log(ctx, level, "OCSP responses pre-signed", "ca", st.name, "signed", signed, "evicted", evicted,
		"took", time.Since(start).Round(time.Millisecond))
	return signed, nil
}

// responderWait bounds how long obtaining a CA's OCSP responder may take,
// waits for the locks included.
const responderWait = 20 * time.Second

// responder returns st's delegated OCSP responder, issuing a new one when
// there is none or the current one is in the last third of its life.
// Replicas sharing the database issue one between them: under the CA's
// responder lock, the stored responder (another replica's, or this one's
// from before a restart) is taken when still good, and only otherwise is a
// new one issued and stored.
//
// The wait for the lock (this process's, then the database's) and the
// issuance together last at most responderWait: an OCSP request, whose
// context has no deadline of its own, answers tryLater rather than wait
// for ever behind a stuck holder.
func (s *Service) responder(ctx context.Context, st *caState) (*ocsp.Responder, error) {
	if st.offline {
		return nil, fmt.Errorf("%w: CA %s is an offline root and has no OCSP responder", ErrNoCA, st.name)
	}
	now := s.cfg.Clock.Now()
	if r := st.responder.Load(); r != nil && !s.responderDue(st, r.Cert, now) {
		return r, nil
	}
	ctx, cancel := context.WithTimeoutCause(ctx, responderWait,
		fmt.Errorf("revoke: OCSP responder of CA %s: not obtained within %s", st.name, responderWait))
	defer cancel()
	select {
	case st.respLock <- struct{}{}:
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	defer func() { <-st.respLock }()
	if r := st.responder.Load(); r != nil && !s.responderDue(st, r.Cert, now) {
		return r, nil
	}
	var r *ocsp.Responder
	err := s.store.Exclusive(ctx, "ocsp-responder:"+st.id, func(ctx context.Context) error {
		var err error
		if r, err = s.storedResponder(ctx, st, now); err != nil || r != nil {
			return err
		}
		r, err = s.issueResponder(ctx, st, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	st.responder.Store(r)
	return r, nil
}

// storedResponder returns st's stored responder if it is signed by st's
// certificate and not due for replacement, nil otherwise.
func (s *Service) storedResponder(ctx context.Context, st *caState, now time.Time) (*ocsp.Responder, error) {
	rec, err := s.store.GetOCSPResponder(ctx, st.id)
	if err != nil {
		return nil, nil // none stored, or unreadable: a new one is issued
	}
	cert, err := x509.ParseCertificate(rec.CertDER)
	if err != nil || cert.CheckSignatureFrom(st.cert) != nil || s.responderDue(st, cert, now) {
		return nil, nil // not usable: a new one is issued
	}
	key, err := s.keys.Signer(ctx, rec.Key, keys.OCSPPurpose(st.id))
	if err == nil {
		err = keys.CheckPublic(key, cert.PublicKey)
	}
	if err != nil {
		return nil, fmt.Errorf("load OCSP responder key of CA %s: %w", st.name, err)
	}
	return &ocsp.Responder{Issuer: st.cert, Cert: cert, Key: key}, nil
}

// responderDue reports whether cert should be replaced: it has expired, or
// less than a third of the configured lifetime is left and a new one
// would last longer (a CA near its own end caps its responder).
func (s *Service) responderDue(st *caState, cert *x509.Certificate, now time.Time) bool {
	if !now.Before(cert.NotAfter) {
		return true
	}
	if cert.NotAfter.Sub(now) >= s.timings().ResponderLifetime/3 {
		return false
	}
	return st.cert.NotAfter.After(cert.NotAfter.Add(time.Hour))
}

// keyPlacer is the part of the key provider (keys.Router) that says what
// the provider of a key allows and creates a key in a named provider.
type keyPlacer interface {
	CapabilitiesOf(ref keys.Ref) (keys.Capabilities, error)
	GenerateIn(ctx context.Context, name string, alg pki.KeyAlgorithm, purpose keys.Purpose) (keys.Ref, crypto.Signer, error)
}

// newResponderKey creates a responder key for st's CA: in the provider of
// the CA's own key when that provider's keys never leave it (a CA whose
// key is in a token has its OCSP answers signed in the token too), in the
// default (software) provider otherwise.
func (s *Service) newResponderKey(ctx context.Context, st *caState) (keys.Ref, crypto.Signer, error) {
	purpose := keys.OCSPPurpose(st.id)
	if p, ok := s.keys.(keyPlacer); ok {
		c, err := p.CapabilitiesOf(st.key)
		if err != nil {
			return keys.Ref{}, nil, fmt.Errorf("key provider of CA %s: %w", st.name, err)
		}
		if !c.Exportable {
			return p.GenerateIn(ctx, st.key.Provider, pki.ECDSAP256, purpose)
		}
	}
	return s.keys.Generate(ctx, pki.ECDSAP256, purpose)
}

func (s *Service) issueResponder(ctx context.Context, st *caState, now time.Time) (_ *ocsp.Responder, err error) {
	ref, key, err := s.newResponderKey(ctx, st)
	if err != nil {
		return nil, fmt.Errorf("generate OCSP responder key for CA %s: %w", st.name, err)
	}
	// Until the responder is stored, nobody else knows the key: one that
	// fails before is destroyed at once (a software key just goes).
	storing := false
	defer func() {
		if err != nil && !storing {
			s.discardKey(ctx, ref, keys.OCSPPurpose(st.id), st.name)
		}
	}()
	serial, err := pki.NewSerialAt(s.cfg.Rand, now)
	if err != nil {
		return nil, err
	}
	notBefore := now.Add(-time.Minute).UTC().Truncate(time.Second)
	notAfter := notBefore.Add(s.timings().ResponderLifetime)
	if notAfter.After(st.cert.NotAfter) {
		notAfter = st.cert.NotAfter
	}
	if !notAfter.After(now) {
		return nil, fmt.Errorf("CA %s expired on %s: no OCSP responder can be issued", st.name, st.cert.NotAfter.Format(time.RFC3339))
	}
	tmpl, err := ocsp.ResponderTemplate(st.cert, key.Public(), serial, notBefore, notAfter)
	if err != nil {
		return nil, fmt.Errorf("OCSP responder template for CA %s: %w", st.name, err)
	}
	if _, err := s.linter.Check(tmpl, key.Public(), st.cert, false); err != nil {
		return nil, fmt.Errorf("OCSP responder certificate for CA %s: %w", st.name, err)
	}
	caKey, err := s.caSigner(ctx, st)
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificate(s.cfg.Rand, tmpl, st.cert, key.Public(), caKey)
	if err != nil {
		return nil, fmt.Errorf("sign OCSP responder certificate for CA %s: %w", st.name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	ev := audit.New(authz.System(), now, "ocsp.responder.issue", st.id, map[string]any{
		"ca": st.name, "ca_key": st.key.ID, "serial": pki.SerialHex(cert.SerialNumber), "not_after": cert.NotAfter,
		"key_provider": ref.Provider, "key_id": ref.ID,
	})
	// A failed write may yet have committed: the key is not destroyed
	// after it, and one left over is named in the log.
	storing = true
	if err := s.store.PutOCSPResponder(ctx, &Responder{CAID: st.id, CertDER: der, Key: ref, NotAfter: cert.NotAfter, CreatedAt: now}, ev); err != nil {
		if !s.endsWithRecord(ref) {
			s.cfg.Log.Warn("OCSP responder not stored: its new key may be left in its provider", "ca", st.name,
				"key_provider", ref.Provider, "key_id", ref.ID, "label", string(ref.Blob), "err", err)
		}
		return nil, fmt.Errorf("store OCSP responder of CA %s: %w", st.name, err)
	}
	s.cfg.Log.Info("OCSP responder certificate issued", "ca", st.name, "serial", pki.SerialHex(cert.SerialNumber), "not_after", cert.NotAfter,
		"key_provider", ref.Provider)
	return &ocsp.Responder{Issuer: st.cert, Cert: cert, Key: key}, nil
}

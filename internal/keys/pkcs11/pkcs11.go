// Package pkcs11 owns keys held in a PKCS#11 token (an HSM; SoftHSM2 in
// tests): it generates or adopts signing keys and an AES-256 key-encryption
// key inside the token, and signs and seals there, so no usable key
// material is on disk or in memory. Open one Provider per module with a
// Config; it keeps a bounded pool of logged-in sessions and reconnects by
// itself when the token goes away and comes back.
package pkcs11

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/miekg/pkcs11"
)

// Provider is one logged-in PKCS#11 token. It is safe for concurrent use.
type Provider struct {
	cfg Config
	pin string
	log *slog.Logger
	mod *pkcs11.Ctx
	// token is the label and serial of the token found at Open.
	token Token

	// mu is held for reading by every call that uses the module and for
	// writing while reconnecting or closing, so the module is never
	// finalised under a call in flight.
	mu     sync.RWMutex
	closed bool
	// conn is nil while the token cannot be reached; lastErr says why.
	conn    *conn
	lastErr error
	// pinRefused, once the token refuses the PIN on a reconnection, is
	// returned by every call from then on: logging in again with the same
	// PIN would count towards locking the token's user PIN.
	pinRefused error
	// gen counts connections. Object handles are valid within one:
	// keys look theirs up again when it changes.
	gen uint64

	// genMu makes check-then-create of an object one step, so two calls
	// generating under one label cannot both succeed.
	genMu sync.Mutex
}

// conn is one connection to the token: the slot it was found in, the
// session that holds the login (a token logs its user out when the last
// session closes) and the pool the operations use.
type conn struct {
	slot  uint
	login pkcs11.SessionHandle
	pool  *pool
}

// session is a pooled session lent to one operation.
type session struct {
	mod  *pkcs11.Ctx
	slot uint
	h    pkcs11.SessionHandle
	gen  uint64
}

// Open loads and initialises cfg.Module, finds the token, logs in as the
// user and returns a provider for it. The module is checked first
// (CheckModule: a library that anyone but root could replace is refused,
// ErrUnsafeModule) and its path and SHA-256 logged. A PIN the token
// refuses is an error wrapping ErrPIN; a module initialised already in
// this process is ErrModuleInUse. A nil logger discards.
func Open(ctx context.Context, cfg Config, logger *slog.Logger) (*Provider, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("pkcs11: open: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pin, err := cfg.readPIN()
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	m, err := CheckModule(cfg.Module)
	if err != nil {
		return nil, err
	}
	logger.Info("pkcs11: loading the PKCS#11 module", "module", m.Path, "file", m.File, "sha256", m.SHA256)
	// The file checked is the one loaded: a symbolic link on the way,
	// wherever it is, cannot be pointed elsewhere in between.
	mod := pkcs11.New(m.File)
	if mod == nil {
		return nil, fmt.Errorf("%w %s: cannot be loaded as a PKCS#11 library", ErrModule, cfg.Module)
	}
	if err := mod.Initialize(); err != nil {
		mod.Destroy()
		if errors.Is(err, pkcs11.Error(pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
			return nil, fmt.Errorf("%w: %s", ErrModuleInUse, cfg.Module)
		}
		return nil, fmt.Errorf("%w %s: C_Initialize: %w", ErrModule, cfg.Module, err)
	}
	p := &Provider{cfg: cfg, pin: pin, log: logger, mod: mod, gen: 1}
	c, err := p.connect()
	if err != nil {
		_ = mod.Finalize()
		mod.Destroy()
		return nil, err
	}
	p.conn = c
	return p, nil
}

// Token names a token by the label and serial number it reports.
type Token struct {
	Label  string
	Serial string
}

// Token returns the label and serial number of the token the provider
// logged in to, as the token reported them at Open.
func (p *Provider) Token() Token { return p.token }

// Close logs out, closes every session and unloads the module. Calls made
// after it fail with ErrClosed.
func (p *Provider) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	p.conn = nil
	// C_Finalize closes every session, which logs the user out.
	err := p.mod.Finalize()
	p.mod.Destroy()
	if err != nil && !errors.Is(err, pkcs11.Error(pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED)) {
		return fmt.Errorf("pkcs11: close: C_Finalize: %w", err)
	}
	return nil
}

// connect finds the token, opens the login session and logs in.
func (p *Provider) connect() (*conn, error) {
	slot, info, err := p.findSlot()
	if err != nil {
		return nil, err
	}
	login, err := p.mod.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return nil, fmt.Errorf("pkcs11: %s: C_OpenSession: %w", p.cfg.token(), err)
	}
	if err := p.mod.Login(login, pkcs11.CKU_USER, p.pin); err != nil &&
		!errors.Is(err, pkcs11.Error(pkcs11.CKR_USER_ALREADY_LOGGED_IN)) {
		_ = p.mod.CloseSession(login)
		var rv pkcs11.Error
		if errors.As(err, &rv) && pinError(rv) {
			return nil, fmt.Errorf("%w: %s: log in as user: %w", ErrPIN, p.cfg.token(), err)
		}
		return nil, fmt.Errorf("pkcs11: %s: log in as user: %w", p.cfg.token(), err)
	}
	if p.token == (Token{}) {
		p.token = Token{Label: info.Label, Serial: info.SerialNumber}
	}
	return &conn{slot: slot, login: login, pool: newPool(p.mod, slot, poolSize(p.cfg.MaxSessions, info))}, nil
}

// findSlot returns the slot holding the configured token.
func (p *Provider) findSlot() (uint, pkcs11.TokenInfo, error) {
	slots, err := p.mod.GetSlotList(true)
	if err != nil {
		return 0, pkcs11.TokenInfo{}, fmt.Errorf("pkcs11: C_GetSlotList: %w", err)
	}
	var seen []string
	for _, slot := range slots {
		info, err := p.mod.GetTokenInfo(slot)
		if err != nil {
			seen = append(seen, fmt.Sprintf("slot %d: %v", slot, err))
			continue
		}
		if info.Flags&pkcs11.CKF_TOKEN_INITIALIZED == 0 {
			continue
		}
		if (p.cfg.TokenLabel != "" && info.Label == p.cfg.TokenLabel) ||
			(p.cfg.TokenSerial != "" && info.SerialNumber == p.cfg.TokenSerial) {
			return slot, info, nil
		}
		seen = append(seen, fmt.Sprintf("%q (serial %s)", info.Label, info.SerialNumber))
	}
	present := "no initialised token"
	if len(seen) > 0 {
		present = "present: " + strings.Join(seen, ", ")
	}
	return 0, pkcs11.TokenInfo{}, fmt.Errorf("%w: no %s in %s (%s)", ErrTokenNotFound, p.cfg.token(), p.cfg.Module, present)
}

// poolSize is the number of operation sessions: want (DefaultMaxSessions
// when 0), less than the token's session limits, keeping one session for
// the login.
func poolSize(want int, info pkcs11.TokenInfo) int {
	if want == 0 {
		want = DefaultMaxSessions
	}
	for _, limit := range []uint{info.MaxSessionCount, info.MaxRwSessionCount} {
		if limit == pkcs11.CK_EFFECTIVELY_INFINITE || limit == pkcs11.CK_UNAVAILABLE_INFORMATION {
			continue
		}
		if avail := int(limit) - 1; avail < want {
			want = avail
		}
	}
	return max(want, 1)
}

// do runs fn on a pooled session. When the session, the login or the token
// was lost it reconnects and runs fn again, up to cfg.Retries times with a
// doubling backoff, giving up early when ctx ends.
func (p *Provider) do(ctx context.Context, op string, fn func(s session) error) error {
	backoff := p.cfg.backoff()
	for attempt := 0; ; attempt++ {
		gen, lost, err := p.try(ctx, fn)
		if err == nil {
			return nil
		}
		if !lost {
			return fmt.Errorf("pkcs11: %s: %w", op, err)
		}
		if attempt == p.cfg.retries() {
			return fmt.Errorf("%w: %s: %s failed after %d reconnections: %w", ErrTokenUnavailable, p.cfg.token(), op, attempt, err)
		}
		// The first reconnection is at once: a session closed under us
		// is back in a moment. Later ones wait for the token.
		if attempt > 0 {
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("%w: %s: %s: %w (last failure: %w)", ErrTokenUnavailable, p.cfg.token(), op, ctx.Err(), err)
			case <-t.C:
			}
			backoff *= 2
		}
		p.reconnect(gen, err)
	}
}

// try runs fn once on a session from the pool. It returns the connection
// generation it ran under and whether its error calls for a reconnection.
func (p *Provider) try(ctx context.Context, fn func(s session) error) (uint64, bool, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return p.gen, false, ErrClosed
	}
	if p.pinRefused != nil {
		return p.gen, false, p.pinRefused
	}
	if p.conn == nil {
		return p.gen, true, fmt.Errorf("%w: %w", errLost, p.lastErr)
	}
	h, err := p.conn.pool.get(ctx)
	if err != nil {
		return p.gen, lostErr(err), err
	}
	s := session{mod: p.mod, slot: p.conn.slot, h: h, gen: p.gen}
	defer func() {
		// A panic in fn must not keep the session's slot: the pool would
		// run dry, and callers would block holding the read lock.
		if r := recover(); r != nil {
			p.conn.pool.put(h, true)
			panic(r)
		}
	}()
	err = fn(s)
	lost := err != nil && s.lost(err)
	// A session whose call failed may hold an unfinished operation or be
	// gone: close it rather than lend it again.
	p.conn.pool.put(h, err != nil)
	return p.gen, lost, err
}

// reconnect finalises and re-initialises the module and connects again,
// unless another call has done so since generation gen failed. A fresh
// C_Initialize is what makes a module look at its slots again, which is
// how most modules (SoftHSM2 among them) notice a token that came back.
func (p *Provider) reconnect(gen uint64, cause error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.gen != gen || p.pinRefused != nil {
		return
	}
	p.gen++
	if p.conn != nil {
		p.log.Warn("pkcs11: lost the token; reconnecting", "token", p.cfg.token(), "err", cause)
		p.conn = nil
	}
	_ = p.mod.Finalize()
	if err := p.mod.Initialize(); err != nil {
		p.lastErr = fmt.Errorf("%w %s: C_Initialize: %w", ErrModule, p.cfg.Module, err)
		p.log.Debug("pkcs11: reconnection failed", "token", p.cfg.token(), "err", p.lastErr)
		return
	}
	c, err := p.connect()
	if errors.Is(err, ErrPIN) {
		p.pinRefused = fmt.Errorf("%w (no further log-in is tried, so as not to lock the user PIN: restart with the token's current PIN)", err)
		p.log.Error("pkcs11: the token refused the PIN on reconnecting; every key operation fails until the server is restarted with the right PIN",
			"token", p.cfg.token(), "err", err)
		return
	}
	if err != nil {
		p.lastErr = err
		p.log.Debug("pkcs11: reconnection failed", "token", p.cfg.token(), "err", err)
		return
	}
	p.conn, p.lastErr = c, nil
	p.log.Info("pkcs11: reconnected to the token", "token", p.cfg.token(), "slot", c.slot)
}

// Sessions reports the session pool's bound and use since the provider
// last connected to the token (zero while it is not connected).
func (p *Provider) Sessions() SessionStats {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.conn == nil {
		return SessionStats{}
	}
	return p.conn.pool.stats()
}

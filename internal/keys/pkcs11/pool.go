package pkcs11

import (
	"context"
	"fmt"
	"sync"

	"github.com/miekg/pkcs11"
)

// pool lends sessions to operations. At most size sessions are lent at
// once (more callers wait), and a returned session is lent again, so the
// number open never exceeds size however many goroutines sign.
type pool struct {
	mod  *pkcs11.Ctx
	slot uint
	sem  chan struct{}

	mu     sync.Mutex
	idle   []pkcs11.SessionHandle
	open   int // sessions open now, lent or idle
	peak   int // most sessions ever open at once
	opened int // sessions opened in all
}

func newPool(mod *pkcs11.Ctx, slot uint, size int) *pool {
	return &pool{mod: mod, slot: slot, sem: make(chan struct{}, size)}
}

// get lends a session, opening one when none is idle.
func (q *pool) get(ctx context.Context) (pkcs11.SessionHandle, error) {
	select {
	case q.sem <- struct{}{}:
	case <-ctx.Done():
		return 0, fmt.Errorf("waiting for a session: %w", ctx.Err())
	}
	q.mu.Lock()
	if n := len(q.idle); n > 0 {
		h := q.idle[n-1]
		q.idle = q.idle[:n-1]
		q.mu.Unlock()
		return h, nil
	}
	q.mu.Unlock()
	h, err := q.mod.OpenSession(q.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		<-q.sem
		return 0, fmt.Errorf("C_OpenSession: %w", err)
	}
	q.mu.Lock()
	q.open++
	q.opened++
	q.peak = max(q.peak, q.open)
	q.mu.Unlock()
	return h, nil
}

// put takes a lent session back, closing it when discard is set.
func (q *pool) put(h pkcs11.SessionHandle, discard bool) {
	q.mu.Lock()
	if discard {
		q.open--
	} else {
		q.idle = append(q.idle, h)
	}
	q.mu.Unlock()
	if discard {
		_ = q.mod.CloseSession(h)
	}
	<-q.sem
}

// SessionStats says how the provider's session pool is used.
type SessionStats struct {
	// Max is the most sessions lent at once (the pool's bound).
	Max int
	// Open is the number of sessions open now, lent or idle.
	Open int
	// Peak is the most sessions open at once since the last connection.
	Peak int
	// Opened counts the sessions opened since the last connection: it
	// stays at Peak while sessions are reused.
	Opened int
}

func (q *pool) stats() SessionStats {
	q.mu.Lock()
	defer q.mu.Unlock()
	return SessionStats{Max: cap(q.sem), Open: q.open, Peak: q.peak, Opened: q.opened}
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"
)

// Nonce uses are group-committed on SQLite. Every ACME request consumes a
// nonce, and SQLite's one writer with synchronous=FULL pays an fsync per
// transaction; recording every use queued while the previous commit ran in
// one transaction shares that fsync, as certificate inserts do (batch.go).
// PostgreSQL has concurrent writers and no head lock on this table, so it
// writes each use directly.
type nonceReq struct {
	id      string
	expires any
	done    chan nonceRes // buffered: the writer never blocks answering
}

type nonceRes struct {
	fresh bool
	err   error
}

type nonceBatcher struct {
	db    *DB
	queue chan *nonceReq
	// mu orders stop after every send in progress.
	mu      sync.RWMutex
	closed  bool
	stopped chan struct{}
}

func newNonceBatcher(db *DB) *nonceBatcher {
	b := &nonceBatcher{db: db, queue: make(chan *nonceReq, queueDepth), stopped: make(chan struct{})}
	go b.run()
	return b
}

var errNonceBatcherClosed = errors.New("store: closed")

// use records one nonce and reports whether it was fresh.
func (b *nonceBatcher) use(ctx context.Context, id string, expires time.Time) (bool, error) {
	r := &nonceReq{id: id, expires: b.db.timeArg(expires), done: make(chan nonceRes, 1)}
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return false, errNonceBatcherClosed
	}
	select {
	case b.queue <- r:
		b.mu.RUnlock()
	case <-ctx.Done():
		b.mu.RUnlock()
		return false, ctx.Err()
	}
	select {
	case res := <-r.done:
		return res.fresh, res.err
	case <-ctx.Done():
		// The use may still be recorded: the nonce is spent either way.
		return false, ctx.Err()
	}
}

func (b *nonceBatcher) run() {
	defer close(b.stopped)
	batch := make([]*nonceReq, 0, maxBatch)
	for r := range b.queue {
		batch = append(batch[:0], r)
	fill:
		for len(batch) < maxBatch {
			select {
			case r, ok := <-b.queue:
				if !ok {
					break fill
				}
				batch = append(batch, r)
			default:
				break fill
			}
		}
		b.commitGuarded(batch)
	}
}

// commitGuarded is commit that survives a panic: the writer goes on and
// every caller of the batch not yet answered gets an error.
func (b *nonceBatcher) commitGuarded(batch []*nonceReq) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		b.db.logger.Error("nonce group commit panicked; its callers get an error", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		for _, r := range batch {
			select {
			case r.done <- nonceRes{err: fmt.Errorf("store: record nonce use: the group commit failed (panic: %v)", v)}:
			default: // answered already
			}
		}
	}()
	b.commit(batch)
}

func (b *nonceBatcher) commit(batch []*nonceReq) {
	fresh := make([]bool, len(batch))
	err := b.db.inTx(context.Background(), func(tx *sql.Tx) error {
		use := b.db.wr.tx(tx).bind(context.Background(), b.db.d.rebind(sqlUseNonce))
		for i, r := range batch {
			res, err := use.ExecContext(context.Background(), r.id, r.expires)
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			fresh[i] = n == 1
		}
		return nil
	})
	for i, r := range batch {
		if err != nil {
			r.done <- nonceRes{err: fmt.Errorf("store: use ACME nonce: %w", err)}
		} else {
			r.done <- nonceRes{fresh: fresh[i]}
		}
	}
}

// stop answers everything queued, then ends the writer.
func (b *nonceBatcher) stop() {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.queue)
	}
	b.mu.Unlock()
	<-b.stopped
}

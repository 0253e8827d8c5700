package store

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/certwright/certwright/internal/audit"
)

// Group commit. SQLite has one writer and synchronous=FULL costs one fsync
// per commit, so a transaction per issuance would cap throughput at the
// disk's fsync rate. Instead InsertCertificate queues its row and a single
// writer goroutine takes everything queued (up to maxBatch), writes it in one
// transaction, commits once and answers every caller. There is no linger:
// rows that arrive while a commit is in flight form the next batch, so a lone
// caller pays one commit and a busy server shares each fsync widely.
//
// PostgreSQL batches too: every audited write holds the audit_head row lock
// until it commits, so certificate transactions of their own would
// serialise on that lock at one commit latency each; a batch takes the lock
// once for all its certificates and their events.
const (
	maxBatch   = 256
	queueDepth = 4 * maxBatch
)

// A request's state decides, exactly once, whether the writer writes its row
// or its caller gives up on it.
const (
	reqQueued int32 = iota
	reqTaken
	reqAbandoned
)

type insertReq struct {
	ctx   context.Context
	row   *certRow
	ev    *audit.Event // normalized; appended when the row is
	state atomic.Int32
	done  chan error // buffered: the writer never blocks answering
}

type batcher struct {
	db    *DB
	queue chan *insertReq
	// mu orders Close after every send in progress: senders hold it shared,
	// stop takes it exclusively before closing queue.
	mu      sync.RWMutex
	closed  bool
	stopped chan struct{}
}

func newBatcher(db *DB) *batcher {
	b := &batcher{
		db:      db,
		queue:   make(chan *insertReq, queueDepth),
		stopped: make(chan struct{}),
	}
	go b.run()
	return b
}

// insert queues r with its audit event and waits for the outcome. If ctx
// ends before the writer has taken the row, it returns ctx's error and
// neither is ever written; once taken, it waits for the commit so the
// answer is never a guess.
func (b *batcher) insert(ctx context.Context, r *certRow, ev *audit.Event) error {
	req := &insertReq{ctx: ctx, row: r, ev: ev, done: make(chan error, 1)}
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return fmt.Errorf("store: insert certificate %s: %w", r.serial, errClosed)
	}
	select {
	case b.queue <- req:
		b.mu.RUnlock()
	case <-ctx.Done():
		b.mu.RUnlock()
		return fmt.Errorf("store: insert certificate %s: %w", r.serial, ctx.Err())
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		if req.state.CompareAndSwap(reqQueued, reqAbandoned) {
			return fmt.Errorf("store: insert certificate %s: %w", r.serial, ctx.Err())
		}
		return <-req.done
	}
}

// stop lets the writer finish everything queued and waits for it.
func (b *batcher) stop() {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.queue)
	}
	b.mu.Unlock()
	<-b.stopped
}

func (b *batcher) run() {
	defer close(b.stopped)
	batch := make([]*insertReq, 0, maxBatch)
	for first := range b.queue {
		batch = append(batch[:0], first)
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
		clear(batch)
	}
}

// commitGuarded is commit that survives a panic: the writer goes on, and
// every caller of the batch not yet answered gets an error instead of
// waiting forever (or the process dying with it).
func (b *batcher) commitGuarded(batch []*insertReq) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		b.db.logger.Error("certificate group commit panicked; its callers get an error", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		for _, r := range batch {
			select {
			case r.done <- fmt.Errorf("store: insert certificate %s: the group commit failed (panic: %v)", r.row.serial, v):
			default: // answered already
			}
		}
	}()
	b.commit(batch)
}

// commit writes the live requests of batch in one transaction and answers
// each caller.
func (b *batcher) commit(batch []*insertReq) {
	live := make([]*insertReq, 0, len(batch))
	for _, r := range batch {
		if !r.state.CompareAndSwap(reqQueued, reqTaken) {
			continue
		}
		if err := r.ctx.Err(); err != nil {
			r.done <- fmt.Errorf("store: insert certificate %s: %w", r.row.serial, err)
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	results, rowErr, err := b.write(live)
	if rowErr && len(live) > 1 {
		// A statement failed for a reason other than a taken serial.
		// Write each row alone so that only the row at fault fails.
		b.db.logger.Warn("batched certificate insert failed; retrying rows one by one", "rows", len(live), "err", err)
		for _, r := range live {
			res, _, err := b.write([]*insertReq{r})
			if err != nil {
				res = []error{err}
			}
			r.done <- res[0]
		}
		return
	}
	for i, r := range live {
		if err != nil {
			r.done <- err
		} else {
			r.done <- results[i]
		}
	}
}

// write inserts reqs in one transaction, then appends the events of the rows
// written, in request order, as the transaction's last statements. results[i]
// is nil or a conflict error for reqs[i] (whose event is not appended); err
// is set when the transaction failed as a whole, with rowErr true when a
// statement (not BEGIN or COMMIT) failed.
func (b *batcher) write(reqs []*insertReq) (results []error, rowErr bool, err error) {
	db := b.db
	// Not a caller's context: one caller giving up must not abort the
	// others' transaction.
	ctx := context.Background()
	fail := func(err error) error {
		if len(reqs) == 1 {
			return fmt.Errorf("store: insert certificate %s: %w", reqs[0].row.serial, err)
		}
		return fmt.Errorf("store: insert certificate (batch of %d): %w", len(reqs), err)
	}
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, false, fail(err)
	}
	defer tx.Rollback()
	// Prepared once per store on SQLite; nil on PostgreSQL, where pgx
	// reuses its own prepared statement for the query text.
	certStmt := db.wr.in(ctx, tx, db.q.insertCert)
	nameStmt := db.wr.in(ctx, tx, db.q.insertName)

	results = make([]error, len(reqs))
	evs := make([]*audit.Event, 0, len(reqs))
	var many []bool // each row written by one statement (PostgreSQL)
	if db.d.multiRowInsert {
		rows := make([]*certRow, len(reqs))
		for i, r := range reqs {
			rows[i] = r.row
		}
		if many, err = db.insertCertsPG(ctx, tx, rows); err != nil {
			return nil, true, fail(err)
		}
	}
	for i, r := range reqs {
		inserted := many != nil && many[i]
		if many == nil {
			if inserted, err = db.insertCert(ctx, tx, certStmt, nameStmt, r.row); err != nil {
				return nil, true, fail(err)
			}
		}
		if !inserted {
			results[i] = conflict("certificate serial", r.row.serial)
			continue
		}
		evs = append(evs, r.ev)
	}
	if err := db.appendAudit(ctx, tx, evs...); err != nil {
		return nil, true, fail(err)
	}
	if err := tx.Commit(); err != nil {
		return nil, false, fail(err)
	}
	return results, false, nil
}

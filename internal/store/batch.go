package store

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/certwright/certwright/internal/audit"
)

// Group commit. SQLite has one writer and synchronous=FULL costs one fsync
// per commit, so a transaction per issuance would cap throughput at the
// disk's fsync rate. Instead InsertCertificate queues its row and a single
// writer goroutine takes everything queued (up to maxBatch), writes it in one
// transaction, commits once and answers every caller. Rows that arrive while
// a commit is in flight form the next batch. On SQLite that alone shares
// little under load: a commit takes less time than an issuance, so the
// writer found one or two rows waiting and paid a commit, its WAL frames
// and an fsync for each (1.4 rows a commit at 32 clients). So an issuance
// announces itself once its certificate is on its way (ExpectCertificate:
// template, lint, signature, audit event left), and while one is
// announced and has not yet arrived, or the last batch held more than one
// row, the writer waits for more rows, up to sqliteCommitLinger after it
// took the first: at 32 clients a commit then holds ten rows or more and a
// certificate costs about a quarter less CPU, while a lone caller, its
// batches of one row and nothing announced behind it, pays no wait.
//
// PostgreSQL batches too: every audited write holds the audit_head row lock
// until it commits, so certificate transactions of their own would
// serialise on that lock at one commit latency each; a batch takes the lock
// once for all its certificates and their events.
const (
	maxBatch   = 256
	queueDepth = 4 * maxBatch
	// sqliteCommitLinger bounds the wait for more rows. It is added to an
	// issuance's latency only under concurrent load, whose queueing for
	// the CPU costs far more (p99 fell from about 47 ms to 25 ms at 32
	// clients, the commits being fewer).
	sqliteCommitLinger = 2 * time.Millisecond
)

type insertReq struct {
	groupCall
	row *certRow
	ev  *audit.Event // normalized; appended when the row is
}

type batcher struct {
	db *DB
	q  *groupQueue[*insertReq]
	// expected counts the announced issuances that have not yet arrived.
	expected atomic.Int64
}

func newBatcher(db *DB) *batcher {
	b := &batcher{db: db}
	lp := lingerPolicy{linger: db.d.commitLinger, coming: func() bool { return b.expected.Load() > 0 }}
	b.q = newGroupQueue(db.logger, "certificate group commit", lp, b.commit, func(r *insertReq, v any) {
		r.answerOnce(fmt.Errorf("store: insert certificate %s: the group commit failed (panic: %v)", r.row.serial, v))
	})
	return b
}

// expect announces a row and returns the function that withdraws the
// announcement, once, however often it is called.
func (b *batcher) expect() (arrived func()) {
	b.expected.Add(1)
	var once atomic.Bool
	return func() {
		if once.CompareAndSwap(false, true) {
			b.expected.Add(-1)
		}
	}
}

// insert queues r with its audit event and waits for the outcome. If ctx
// ends before the writer has taken the row, it returns ctx's error and
// neither is ever written; once taken, it waits for the commit so the
// answer is never a guess.
func (b *batcher) insert(ctx context.Context, r *certRow, ev *audit.Event) error {
	req := &insertReq{groupCall: newGroupCall(ctx), row: r, ev: ev}
	if err := b.q.send(ctx, req); err != nil {
		return fmt.Errorf("store: insert certificate %s: %w", r.serial, err)
	}
	abandoned, err := req.wait()
	if abandoned {
		return fmt.Errorf("store: insert certificate %s: %w", r.serial, err)
	}
	return err
}

// stop lets the writer finish everything queued and waits for it.
func (b *batcher) stop() { b.q.stop() }

// commit writes the live requests of batch in one transaction and answers
// each caller.
func (b *batcher) commit(batch []*insertReq) {
	live := make([]*insertReq, 0, len(batch))
	for _, r := range batch {
		if r.take(func(err error) error { return fmt.Errorf("store: insert certificate %s: %w", r.row.serial, err) }) {
			live = append(live, r)
		}
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
	// A credential of a sign-in that has ended is not written. Of the
	// rows left, an ACME finalization's certificate completes its order,
	// and is left out (its signature audited as discarded) when the
	// finalization lost the order's claim: an order is completed only by
	// a certificate that is then written. at[k] is the request of rows[k].
	all := make([]*certRow, len(reqs))
	for i, r := range reqs {
		all[i] = r.row
	}
	refused, err := db.endedSignIns(ctx, tx, all)
	if err != nil {
		return nil, true, fail(err)
	}
	rows := make([]*certRow, 0, len(reqs))
	at := make([]int, 0, len(reqs))
	evs := make([]*audit.Event, 0, len(reqs))
	for i, r := range reqs {
		if refused[i] != nil {
			results[i] = refused[i]
			continue
		}
		if r.row.order != nil {
			ok, err := db.completeOrder(ctx, tx, r.row)
			if err != nil {
				return nil, true, fail(err)
			}
			if !ok {
				results[i] = orderClaimLost(r.row.serial, r.row.order.ID)
				discard, err := discardEvent(r.ev, r.row)
				if err != nil {
					return nil, true, fail(err)
				}
				evs = append(evs, discard)
				continue
			}
		}
		rows = append(rows, r.row)
		at = append(at, i)
	}
	// written[k]: rows[k] was inserted (not a serial already there); on
	// PostgreSQL one statement writes them all.
	var written []bool
	if db.d.multiRowInsert && len(rows) > 0 {
		if written, err = db.insertCertsPG(ctx, tx, rows); err != nil {
			return nil, true, fail(err)
		}
	} else {
		written = make([]bool, len(rows))
	}
	for k, row := range rows {
		if !db.d.multiRowInsert {
			if written[k], err = db.insertCert(ctx, tx, certStmt, nameStmt, row); err != nil {
				return nil, true, fail(err)
			}
		}
		if !written[k] {
			if row.order != nil {
				// The order is marked valid with a certificate not
				// written: the whole transaction goes.
				return nil, true, fail(conflict("certificate serial", row.serial))
			}
			results[at[k]] = conflict("certificate serial", row.serial)
			continue
		}
		evs = append(evs, reqs[at[k]].ev)
	}
	if err := db.countInserted(ctx, tx, rows, written); err != nil {
		return nil, true, fail(err)
	}
	if err := db.appendAudit(ctx, tx, evs...); err != nil {
		return nil, true, fail(err)
	}
	if err := tx.Commit(); err != nil {
		return nil, false, fail(err)
	}
	return results, false, nil
}

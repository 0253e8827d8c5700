package store

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/certwright/certwright/internal/recovery"
)

// The notification bus: how a change committed by one replica reaches the
// in-memory state of every other replica sharing the PostgreSQL database
// (README "Several replicas"). Once a writing transaction has committed,
// the writer sends a small notice with pg_notify, signed under a key every
// replica derives from the KEK (SetBusKey), which PostgreSQL delivers to
// every listening session. Each process keeps one dedicated connection
// (outside the pool) LISTENing, and hands what arrives, once its signature
// and age are checked, to a NoticeHandler. Notices are a fast path only:
// they are not stored, one sent while a listener was disconnected is lost
// to it, and a writer may die between its commit and its notice. So on
// every (re)connect and every CatchUpInterval the listener asks the
// database what it may have missed: the revocations committed since its
// last look, exactly (see catchUp), the latest CRL numbers and which CA
// records changed; the other caches the notices speed up keep copies at
// most a second old whatever the bus does. Every step of the listener runs
// under a deadline (busOpTimeout), so a connection that goes silent ends
// the session within seconds, and the store reports how long ago the
// listener last caught up (BusBehindFor) for readiness. On SQLite there is
// one process and no bus: sending does nothing and Listen returns at once.

// NoticeKind says what changed.
type NoticeKind string

const (
	// NoticeRevoked: revocations recorded under CA. Serials lists them, or
	// All says there were too many to list.
	NoticeRevoked NoticeKind = "revoked"
	// NoticeCA: the CA record CA changed (created, updated, disabled,
	// revoked, re-wrapped); CA empty for several or unknown ones.
	NoticeCA NoticeKind = "ca"
	// NoticeCRL: a new CRL of CA was stored (PublishCRL).
	NoticeCRL NoticeKind = "crl"
	// NoticeResync: any notice, and for all the listener can tell any
	// revocation, may have been missed: the listener (re)connected, or the
	// database's transaction IDs went back (a failover to an asynchronous
	// standby, a point-in-time recovery, a restore into another cluster),
	// which the catch-up cannot see past. Every cache fed by the bus
	// should start afresh: the CA records reloaded, every cached OCSP
	// answer other than "revoked" dropped.
	NoticeResync NoticeKind = "resync"

	// Handled inside the store (the in-process generations), never passed
	// to the handler.
	noticeAccess      NoticeKind = "access"
	noticeACME        NoticeKind = "acme"
	noticeEST         NoticeKind = "est"
	noticeCompromised NoticeKind = "compromised"
)

// Notice is one change another process committed (or, for NoticeResync,
// may have committed).
type Notice struct {
	Kind    NoticeKind `json:"k"`
	CA      string     `json:"ca,omitempty"`
	Serials []string   `json:"s,omitempty"`
	All     bool       `json:"all,omitempty"`
	// Origin is the sending process's random ID: a process ignores its
	// own notices, having updated its memory when it wrote.
	Origin string `json:"o,omitempty"`
	// At is when the notice was sent, in Unix milliseconds on the
	// sender's clock: a notice older than noticeMaxAge is dropped, so one
	// recorded off the channel cannot be replayed later.
	At int64 `json:"t,omitempty"`
}

// NoticeHandler applies a notice to this process's memory. It runs on the
// listener's goroutine, one notice at a time, under a deadline of a few
// seconds (ctx), and should be quick.
type NoticeHandler func(ctx context.Context, n Notice)

const (
	// notifyChannel is the one LISTEN/NOTIFY channel.
	notifyChannel = "certwright"
	// maxNoticeSerials bounds the serials one notice lists; more become
	// All. 150 serials of at most 40 hex digits keep a payload well under
	// PostgreSQL's 8000-byte limit.
	maxNoticeSerials = 150
	// maxNoticePayload is PostgreSQL's limit on a NOTIFY payload (less one).
	maxNoticePayload = 7999
	// noticeMACLen is the length of a payload's signature prefix: the
	// HMAC-SHA256 in unpadded base64url, and a dot.
	noticeMACLen = 44
	// maxNoticeBody bounds a notice's JSON, the signature prefix left out.
	maxNoticeBody = maxNoticePayload - noticeMACLen
	// noticeMaxAge is how old (or how far ahead of this clock) a notice
	// may be: replicas' clocks agree to well within it.
	noticeMaxAge = 30 * time.Second
	// CatchUpInterval is how often a listener asks the database what it
	// may have missed (and how soon after a reconnect it has done so).
	CatchUpInterval = 2 * time.Second
	// busOpTimeout bounds each step of the listener on its connection
	// (LISTEN, a catch-up's reads) and the handling of each notice: a step
	// that takes longer ends the session, which reconnects.
	busOpTimeout = 3 * time.Second
	// busConnectTimeout bounds opening the listener's connection.
	busConnectTimeout = 5 * time.Second
	// maxReconnectPause bounds the pause between reconnection attempts.
	maxReconnectPause = 2 * time.Second
	// allEvery is how often at most one CA's "all" is handled (it drops
	// the CA's cached OCSP answers); more within it are coalesced into one
	// handled when it has passed.
	allEvery = time.Second
	// rejectLogEvery is how often at most the dropping of unsigned or
	// stale notices is logged.
	rejectLogEvery = time.Minute
	// noticeSendTimeout bounds sending a committed transaction's notices.
	noticeSendTimeout = 2 * time.Second
)

// noticePayload encodes n, listing its serials only while that stays
// within both bounds (the signature prefix left out).
func noticePayload(n Notice) (string, error) {
	if len(n.Serials) > maxNoticeSerials {
		n.Serials, n.All = nil, true
	}
	b, err := json.Marshal(n)
	if err != nil {
		return "", err
	}
	if len(b) > maxNoticeBody {
		n.Serials, n.All = nil, true
		if b, err = json.Marshal(n); err != nil {
			return "", err
		}
	}
	if len(b) > maxNoticeBody {
		return "", fmt.Errorf("notice for CA %q is %d bytes, over the %d-byte limit", n.CA, len(b), maxNoticeBody)
	}
	return string(b), nil
}

// SetBusKey sets the key that signs and checks the bus's notices: the
// instance's keys.DeriveBus secret, derived from the KEK every replica
// holds, so they accept each other's notices and no one else's (any
// database role can send on the channel). Call it after Open, before
// Listen and any write. Until then the store holds a random key of its
// own, so notices pass between no processes.
func (db *DB) SetBusKey(key []byte) error {
	if len(key) < 32 {
		return fmt.Errorf("store: the notification bus key is %d bytes, want 32", len(key))
	}
	k := bytes.Clone(key)
	db.busKey.Store(&k)
	return nil
}

// sealNotice encodes n as this process's signed payload.
func (db *DB) sealNotice(n Notice) (string, error) {
	n.Origin, n.At = db.origin, time.Now().UnixMilli()
	body, err := noticePayload(n)
	if err != nil {
		return "", fmt.Errorf("notify: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(db.noticeMAC(body)) + "." + body, nil
}

func (db *DB) noticeMAC(body string) []byte {
	m := hmac.New(sha256.New, *db.busKey.Load())
	m.Write([]byte(body))
	return m.Sum(nil)
}

// errBadNotice is a notice that is not this instance's: unsigned, signed
// under another key, malformed or stale.
var errBadNotice = errors.New("not a notice of this instance")

// openNotice checks payload's signature and age and decodes it.
func (db *DB) openNotice(payload string, now time.Time) (Notice, error) {
	var n Notice
	mac, body, ok := strings.Cut(payload, ".")
	if !ok || len(mac) != noticeMACLen-1 {
		return n, errBadNotice
	}
	sum, err := base64.RawURLEncoding.DecodeString(mac)
	if err != nil || !hmac.Equal(sum, db.noticeMAC(body)) {
		return n, errBadNotice
	}
	if err := json.Unmarshal([]byte(body), &n); err != nil {
		return n, errBadNotice
	}
	if age := now.Sub(time.UnixMilli(n.At)); age > noticeMaxAge || age < -noticeMaxAge {
		return n, errBadNotice
	}
	return n, nil
}

// notifyTx queues n for delivery to the other processes once tx commits.
// It does nothing on SQLite.
//
// The notice is sent after the commit (sendNotices), not with pg_notify
// inside the transaction: a NOTIFY inside it would make PostgreSQL refuse
// the commit whenever its notification queue is full (a listening session
// that stops reading, such as one left idle in a transaction, holds the
// queue back), so every revocation, token or CA change would fail. What
// every notice says is also found without it: the catch-up reports the
// revocations, CRLs and CA records changed within CatchUpInterval, and the
// token, ACME and compromised-key caches never use a copy older than a
// second. A writer dying between its commit and its notice costs at most
// those bounds.
func (db *DB) notifyTx(ctx context.Context, tx *sql.Tx, n Notice) error {
	if db.dial == nil {
		return nil
	}
	p, err := db.sealNotice(n)
	if err != nil {
		return err
	}
	db.outbox.mu.Lock()
	q, ok := db.outbox.byTx[tx]
	if ok {
		db.outbox.byTx[tx] = append(q, p)
	}
	db.outbox.mu.Unlock()
	if ok {
		return nil
	}
	// A transaction inTx did not open: the notice goes with it.
	if _, err := tx.ExecContext(ctx, `SELECT pg_notify($1, $2)`, notifyChannel, p); err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	return nil
}

// outbox holds the notices of transactions not yet committed.
type outbox struct {
	mu   sync.Mutex
	byTx map[*sql.Tx][]string
}

// openOutbox starts collecting tx's notices (PostgreSQL only).
func (db *DB) openOutbox(tx *sql.Tx) {
	if db.dial == nil {
		return
	}
	db.outbox.mu.Lock()
	if db.outbox.byTx == nil {
		db.outbox.byTx = map[*sql.Tx][]string{}
	}
	db.outbox.byTx[tx] = nil
	db.outbox.mu.Unlock()
}

// takeOutbox returns tx's notices and forgets them.
func (db *DB) takeOutbox(tx *sql.Tx) []string {
	if db.dial == nil {
		return nil
	}
	db.outbox.mu.Lock()
	defer db.outbox.mu.Unlock()
	q := db.outbox.byTx[tx]
	delete(db.outbox.byTx, tx)
	return q
}

// sendNotices sends a committed transaction's notices, best effort (see
// notifyTx): a failure is logged.
func (db *DB) sendNotices(ctx context.Context, payloads []string) {
	if len(payloads) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), noticeSendTimeout)
	defer cancel()
	_, err := db.write.ExecContext(ctx, `SELECT pg_notify($1, p) FROM unnest(CAST($2 AS text[])) AS p`, notifyChannel, payloads)
	if err != nil {
		db.logger.Warn("could not tell the other replicas about a committed change; they pick it up within their catch-up and cache bounds (2 s)", "err", err)
	}
}

// notifyRevoked queues a NoticeRevoked per CA for the serials byCA lists.
func (db *DB) notifyRevoked(ctx context.Context, tx *sql.Tx, byCA map[string][]string) error {
	for _, ca := range slices.Sorted(maps.Keys(byCA)) {
		if err := db.notifyTx(ctx, tx, Notice{Kind: NoticeRevoked, CA: ca, Serials: byCA[ca]}); err != nil {
			return err
		}
	}
	return nil
}

// newOrigin returns a random process ID for notices.
func newOrigin() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// newBusKey returns a random key: no other process accepts what it signs.
func newBusKey() *[]byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return &k
}

// ListenerPID returns the PostgreSQL server process ID of the listener's
// latest connection (pg_stat_activity.pid), 0 before the first: for
// diagnostics.
func (db *DB) ListenerPID() uint32 { return db.busPID.Load() }

// BusBehindFor reports how long ago the notification listener last
// completed a catch-up (counted from Listen's start before the first):
// what this process may have missed of other replicas' revocations is at
// most that old. For readiness: a listener whose connection was lost, or
// went silent, stops catching up, and this grows past CatchUpInterval
// plus busOpTimeout. 0 on SQLite (no bus) and while Listen is not
// running.
func (db *DB) BusBehindFor() time.Duration {
	if db.dial == nil {
		return 0
	}
	at := db.busCaughtUp.Load()
	if at == 0 {
		return 0
	}
	return time.Since(time.Unix(0, at))
}

// BusRejected counts the notices dropped for want of this instance's
// signature, or as stale (a database role without the KEK sending on the
// channel, an instance with another KEK sharing the database).
func (db *DB) BusRejected() uint64 { return db.busRejected.Load() }

// Listen receives the other processes' notices until ctx ends and passes
// them to h, bar those the store applies itself (the generations of the
// token, ACME account and compromised-key caches). It reconnects after a
// lost or silent connection, pausing up to maxReconnectPause between
// attempts, and recovers from (and logs) a panic in h. On SQLite it
// returns at once.
func (db *DB) Listen(ctx context.Context, h NoticeHandler) error {
	if db.dial == nil {
		return nil
	}
	l := &listener{db: db, h: h, snap: db.bootSnap, crls: map[string]int64{},
		allLast: map[string]time.Time{}, allDue: map[string]time.Time{}}
	pause := 100 * time.Millisecond
	db.busCaughtUp.Store(time.Now().UnixNano())
	defer db.busCaughtUp.Store(0)
	for ctx.Err() == nil {
		start := time.Now()
		err := recovery.Call(func() error { return l.session(ctx) })
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(start) > time.Minute {
			pause = 100 * time.Millisecond
		}
		recovery.Log(db.logger, "notification listener (reconnecting in "+pause.String()+")", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(pause):
		}
		pause = min(2*pause, maxReconnectPause)
	}
	return nil
}

// listener is one process's receiving end of the bus.
type listener struct {
	db *DB
	h  NoticeHandler
	// snap is the snapshot of the last catch-up (pg_snapshot as text):
	// the revocations it could not see are the next one's to report.
	snap string
	// crls is the CRL number of each CA at the last catch-up.
	crls map[string]int64
	// cas is each CA record's row version (xmin) at the last catch-up,
	// nil before the first.
	cas map[string]string
	// allLast is when each CA's "all" was last handled; allDue when a
	// coalesced one is to be.
	allLast, allDue map[string]time.Time
}

// session connects, listens and serves notices until the connection
// fails or goes silent, or ctx ends.
func (l *listener) session(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, busConnectTimeout)
	conn, err := l.db.dial.Connect(cctx)
	cancel()
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		conn.Close(cctx)
	}()
	lctx, cancel := context.WithTimeout(ctx, busOpTimeout)
	_, err = conn.Exec(lctx, "LISTEN "+notifyChannel)
	cancel()
	if err != nil {
		return fmt.Errorf("store: listen: %w", err)
	}
	l.db.busPID.Store(conn.PgConn().PID())
	// Listening from here: what committed before is the catch-up's, and
	// what it cannot tell (a revocation from another cluster's history)
	// the resync's.
	l.resync(ctx)
	if err := l.catchUp(ctx, conn); err != nil {
		return err
	}
	next := time.Now().Add(CatchUpInterval)
	for {
		wake := next
		for _, due := range l.allDue {
			if due.Before(wake) {
				wake = due
			}
		}
		wctx, cancel := context.WithDeadline(ctx, wake)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil && !pgconn.Timeout(err):
			return fmt.Errorf("store: wait for notifications: %w", err)
		case err == nil && n != nil:
			l.deliver(ctx, n.Payload)
		}
		l.flushAll(ctx, time.Now())
		if !time.Now().Before(next) {
			if err := l.catchUp(ctx, conn); err != nil {
				return err
			}
			next = time.Now().Add(CatchUpInterval)
		}
	}
}

// deliver checks and decodes one payload and applies it.
func (l *listener) deliver(ctx context.Context, payload string) {
	n, err := l.db.openNotice(payload, time.Now())
	if err != nil {
		l.reject()
		return
	}
	if n.Origin == l.db.origin {
		return
	}
	l.apply(ctx, n)
}

// reject counts a notice dropped as not this instance's, and logs the
// count at most every rejectLogEvery.
func (l *listener) reject() {
	total := l.db.busRejected.Add(1)
	now := time.Now().UnixNano()
	last := l.db.busRejectLogged.Load()
	if last != 0 && now-last < int64(rejectLogEvery) || !l.db.busRejectLogged.CompareAndSwap(last, now) {
		return
	}
	l.db.logger.Warn("ignoring notifications on channel "+notifyChannel+" that are not signed under this instance's key, or are stale: "+
		"sent by a database role without the KEK, or by an instance with another KEK sharing the database (give it a database of its own)",
		"dropped_since_start", total)
}

// apply applies n: the store's own generations here, the rest in h.
func (l *listener) apply(ctx context.Context, n Notice) {
	switch n.Kind {
	case noticeAccess:
		l.db.accessGen.Add(1)
	case noticeACME:
		l.db.acmeGen.Add(1)
	case noticeEST:
		l.db.estGen.Add(1)
	case noticeCompromised:
		l.db.compromisedGen.Add(1)
	case NoticeCA:
		l.db.caGen.Add(1)
		l.handle(ctx, n)
	case NoticeRevoked:
		if n.All {
			l.all(ctx, n.CA, time.Now())
			return
		}
		l.handle(ctx, n)
	case NoticeCRL:
		l.handle(ctx, n)
	default:
		l.db.logger.Warn("ignoring a notification of an unknown kind", "kind", n.Kind)
	}
}

// all handles an "all" for ca now, or, when one was handled less than
// allEvery ago, once that has passed (coalescing any more meanwhile).
func (l *listener) all(ctx context.Context, ca string, now time.Time) {
	if last, ok := l.allLast[ca]; ok && now.Sub(last) < allEvery {
		l.allDue[ca] = last.Add(allEvery)
		return
	}
	l.allLast[ca] = now
	delete(l.allDue, ca)
	l.handle(ctx, Notice{Kind: NoticeRevoked, CA: ca, All: true})
}

// flushAll handles the coalesced "all"s that are due.
func (l *listener) flushAll(ctx context.Context, now time.Time) {
	for _, ca := range slices.Sorted(maps.Keys(l.allDue)) {
		if !now.Before(l.allDue[ca]) {
			l.all(ctx, ca, now)
		}
	}
}

func (l *listener) handle(ctx context.Context, n Notice) {
	if l.h == nil {
		return
	}
	hctx, cancel := context.WithTimeout(ctx, busOpTimeout)
	defer cancel()
	recovery.Do(l.db.logger, "notification handler ("+string(n.Kind)+")", func() { l.h(hctx, n) })
}

// resync drops everything the notices keep current, any of which may have
// been missed.
func (l *listener) resync(ctx context.Context) {
	l.db.accessGen.Add(1)
	l.db.acmeGen.Add(1)
	l.db.estGen.Add(1)
	l.db.compromisedGen.Add(1)
	l.db.caGen.Add(1)
	clear(l.allDue)
	l.handle(ctx, Notice{Kind: NoticeResync})
}

// catchUp reports the revocations committed since the previous catch-up,
// the CRLs stored and the CA records changed since, as notices, under
// busOpTimeout for its reads.
//
// Why it cannot miss a revocation: every revocations row carries the ID of
// the transaction that wrote it (recorded_xid). A catch-up reads, in one
// REPEATABLE READ transaction and so one snapshot S, S itself and the rows
// whose transaction S sees but the previous catch-up's snapshot P did not
// (NOT pg_visible_in_snapshot(recorded_xid, P)). A committed transaction is
// visible in every snapshot taken after its commit, so each revocation is
// reported by the first catch-up after its commit, whatever order
// transactions started, wrote or committed in: a transaction running when
// P was taken is invisible in P however long ago it wrote, where a
// sequence or timestamp cut-off would pass a late commit by. Rows visible
// in P have recorded_xid below P's xmax and were committed then, and those
// below P's xmin all were, so the index range starts at P's xmin. The first
// P is taken when the store opens, before any cache here is filled.
//
// That holds while transaction IDs only grow. When S's xmax is below P's,
// the database went back in time (a failover to an asynchronous standby,
// a point-in-time recovery, a restore into another cluster) and IDs are
// being reused: the catch-up resyncs (NoticeResync) and starts again from
// S. A reconnect resyncs too (session), which covers a change of cluster
// whose IDs happen to be ahead.
func (l *listener) catchUp(ctx context.Context, conn *pgx.Conn) error {
	rctx, cancel := context.WithTimeout(ctx, busOpTimeout)
	r, err := catchUpRead(rctx, conn, l.snap)
	cancel()
	if err != nil {
		return fmt.Errorf("store: catch up: %w", err)
	}
	prev := l.snap
	l.snap = r.snap
	if l.snap != "" && prev != "" && snapshotXmax(r.snap) < snapshotXmax(prev) {
		l.db.logger.Warn("the database's transaction IDs went back (a failover, a point-in-time recovery or a restore?): dropping every cached answer the bus keeps current",
			"previous_snapshot", prev, "snapshot", r.snap)
		l.resync(ctx)
	} else {
		for _, ca := range slices.Sorted(maps.Keys(r.byCA)) {
			l.handle(ctx, Notice{Kind: NoticeRevoked, CA: ca, Serials: r.byCA[ca]})
		}
		now := time.Now()
		for _, ca := range slices.Sorted(maps.Keys(r.all)) {
			l.all(ctx, ca, now)
		}
	}
	for ca, n := range r.crls {
		if l.crls[ca] != n {
			l.crls[ca] = n
			l.handle(ctx, Notice{Kind: NoticeCRL, CA: ca})
		}
	}
	if l.cas != nil {
		var changed []string
		for id, v := range r.cas {
			if l.cas[id] != v {
				changed = append(changed, id)
			}
		}
		for id := range l.cas {
			if _, ok := r.cas[id]; !ok {
				changed = append(changed, id)
			}
		}
		if len(changed) > 0 {
			l.db.caGen.Add(1)
		}
		slices.Sort(changed)
		for _, id := range changed {
			l.handle(ctx, Notice{Kind: NoticeCA, CA: id})
		}
	}
	l.cas = r.cas
	l.db.busCaughtUp.Store(time.Now().UnixNano())
	return nil
}

// snapshotXmax returns the xmax of a pg_snapshot in text form
// ("xmin:xmax:xip,..."), 0 when it does not parse.
func snapshotXmax(s string) uint64 {
	parts := strings.SplitN(s, ":", 3)
	if len(parts) < 2 {
		return 0
	}
	x, _ := strconv.ParseUint(parts[1], 10, 64)
	return x
}

// sqlCatchUp lists, up to $3 per CA, the revocations committed after
// snapshot $1 and visible in snapshot $2 (see catchUp). The bound on $2's
// xmax leaves out nothing a transaction of this cluster wrote, and keeps
// out the IDs of rows restored from another cluster's dump, which may lie
// in this one's future.
const sqlCatchUp = `SELECT ca_id, serial FROM (
		SELECT ca_id, serial, row_number() OVER (PARTITION BY ca_id ORDER BY serial) AS n
		FROM revocations
		WHERE recorded_xid >= pg_snapshot_xmin(CAST($1 AS pg_snapshot))
			AND recorded_xid < pg_snapshot_xmax(CAST($2 AS pg_snapshot))
			AND NOT pg_visible_in_snapshot(recorded_xid, CAST($1 AS pg_snapshot))
	) x WHERE n <= $3 ORDER BY ca_id, serial`

// catchUpResult is what one catch-up read: its snapshot, the revocations
// since the previous one by CA — or in all for a CA with more than
// maxNoticeSerials — every CA's CRL number, and every CA record's row
// version (xmin, which every UPDATE of the row changes).
type catchUpResult struct {
	snap string
	byCA map[string][]string
	all  map[string]bool
	crls map[string]int64
	cas  map[string]string
}

// catchUpRead runs the catch-up's reads in one snapshot, the revocations
// only when prev is set and not ahead of it.
func catchUpRead(ctx context.Context, conn *pgx.Conn, prev string) (*catchUpResult, error) {
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	r := &catchUpResult{byCA: map[string][]string{}, all: map[string]bool{}, crls: map[string]int64{}, cas: map[string]string{}}
	if err := tx.QueryRow(ctx, `SELECT CAST(pg_current_snapshot() AS text)`).Scan(&r.snap); err != nil {
		return nil, err
	}
	if prev != "" && snapshotXmax(r.snap) >= snapshotXmax(prev) {
		rows, err := tx.Query(ctx, sqlCatchUp, prev, r.snap, maxNoticeSerials+1)
		if err != nil {
			return nil, err
		}
		var ca, serial string
		_, err = pgx.ForEachRow(rows, []any{&ca, &serial}, func() error {
			if r.all[ca] {
				return nil
			}
			if len(r.byCA[ca]) == maxNoticeSerials {
				delete(r.byCA, ca)
				r.all[ca] = true
				return nil
			}
			r.byCA[ca] = append(r.byCA[ca], serial)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	rows, err := tx.Query(ctx, `SELECT ca_id, number FROM crls`)
	if err != nil {
		return nil, err
	}
	var ca string
	var n int64
	if _, err := pgx.ForEachRow(rows, []any{&ca, &n}, func() error { r.crls[ca] = n; return nil }); err != nil {
		return nil, err
	}
	rows, err = tx.Query(ctx, `SELECT id, CAST(xmin AS text) FROM cas`)
	if err != nil {
		return nil, err
	}
	var id, version string
	if _, err := pgx.ForEachRow(rows, []any{&id, &version}, func() error { r.cas[id] = version; return nil }); err != nil {
		return nil, err
	}
	return r, tx.Commit(ctx)
}

// takeBootSnapshot records the snapshot the first catch-up starts from.
func (db *DB) takeBootSnapshot(ctx context.Context) error {
	if db.dial == nil {
		return nil
	}
	err := db.write.QueryRowContext(ctx, `SELECT CAST(pg_current_snapshot() AS text)`).Scan(&db.bootSnap)
	if err != nil {
		return fmt.Errorf("store: open: read the notification bus's first snapshot: %w", err)
	}
	return nil
}

// busState is the bus part of DB.
type busState struct {
	// origin identifies this process's notices (newOrigin).
	origin string
	// busKey signs and checks notices (SetBusKey).
	busKey atomic.Pointer[[]byte]
	// outbox holds the notices of transactions not yet committed.
	outbox outbox
	// bootSnap is the database snapshot at Open (takeBootSnapshot).
	bootSnap string
	// busPID is the server process of the listener's latest connection.
	busPID atomic.Uint32
	// busCaughtUp is when the listener last completed a catch-up (Listen's
	// start before the first), in Unix nanoseconds; 0 while Listen is not
	// running.
	busCaughtUp atomic.Int64
	// busRejected counts notices dropped as not this instance's;
	// busRejectLogged is when that was last logged (Unix nanoseconds).
	busRejected     atomic.Uint64
	busRejectLogged atomic.Int64
	// caGen moves with every change to a CA record, here or (through the
	// bus) elsewhere (CAGeneration).
	caGen atomic.Uint64
}

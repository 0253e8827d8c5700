package store

import (
	"context"
	"database/sql"
	"time"
)

// SetClock replaces the clock of the store's in-memory freshness bounds.
func SetClock(db *DB, now func() time.Time) { db.now = now }

// SetSteerBound sets the rows a filter's index may find before a listing
// tests the filter row by row (steerIndexes).
func SetSteerBound(db *DB, n int) { db.steerBound = n }

// NoticePayload is noticePayload.
func NoticePayload(n Notice) (string, error) { return noticePayload(n) }

// MaxNoticeSerials and MaxNoticePayload are the notice bounds.
const (
	MaxNoticeSerials = maxNoticeSerials
	MaxNoticePayload = maxNoticePayload
	NoticeMACLen     = noticeMACLen
	AllEvery         = allEvery
)

// ListenerApply returns, for a listener of db passing to h, what applies
// one notice that passed its checks, and what handles the coalesced
// "all"s due at a time.
func ListenerApply(db *DB, h NoticeHandler) (apply func(Notice), flush func(time.Time)) {
	l := &listener{db: db, h: h, crls: map[string]int64{}, allLast: map[string]time.Time{}, allDue: map[string]time.Time{}}
	ctx := context.Background()
	return func(n Notice) { l.apply(ctx, n) }, func(now time.Time) { l.flushAll(ctx, now) }
}

// CatchUp runs one catch-up read after snapshot prev on a connection of
// its own: the revocations by CA, the CAs with too many to list, and the
// snapshot to pass next time.
func CatchUp(ctx context.Context, db *DB, prev string) (byCA map[string][]string, all map[string]bool, cur string, err error) {
	conn, err := db.dial.Connect(ctx)
	if err != nil {
		return nil, nil, "", err
	}
	defer conn.Close(ctx)
	r, err := catchUpRead(ctx, conn, prev)
	if err != nil {
		return nil, nil, "", err
	}
	return r.byCA, r.all, r.snap, nil
}

// BootSnapshot is the snapshot the first catch-up starts from.
func BootSnapshot(db *DB) string { return db.bootSnap }

// Write is the write pool.
func Write(db *DB) *sql.DB { return db.write }

// StealLease hands the lease on name to holder at once, as another
// replica's TryLock does once the lease has lapsed.
func StealLease(ctx context.Context, db *DB, name, holder string) error {
	_, err := db.write.ExecContext(ctx, db.d.rebind(`UPDATE job_leases SET holder = ?, replica = ? WHERE name = ?`), holder, holder, name)
	return err
}

// ExpireClaims makes every claim on an alert delivery lapse now.
func ExpireClaims(ctx context.Context, db *DB) error {
	_, err := db.write.ExecContext(ctx, `UPDATE alert_deliveries SET claimed_until = `+db.d.now+` WHERE claimed_by <> ''`)
	return err
}

// CatchUpNotices runs one catch-up of a listener whose previous snapshot
// is prev, on a connection of its own, passing what it reports to h; it
// returns the snapshot the listener would pass next time.
func CatchUpNotices(ctx context.Context, db *DB, prev string, h NoticeHandler) (string, error) {
	conn, err := db.dial.Connect(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	l := &listener{db: db, h: h, snap: prev, crls: map[string]int64{}, allLast: map[string]time.Time{}, allDue: map[string]time.Time{}}
	err = l.catchUp(ctx, conn)
	return l.snap, err
}

// SetLockTimeout sets how long Exclusive waits for a lock another
// process holds.
func SetLockTimeout(db *DB, d time.Duration) { db.lockTimeout = d }

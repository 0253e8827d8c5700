package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/pki"
)

// Revocation is permanent: a serial has at most one revocations row, and
// every write below inserts with ON CONFLICT DO NOTHING, so the first record
// stands and concurrent revocations of one serial cannot both succeed. The
// row is the truth; certificates.status follows it in the same transaction.

// RevokeCertificate records r for the certificate r.Serial and marks the
// certificate revoked, in one transaction. It fills r.CAID and r.NotAfter
// from the certificate (r.CA is false: certificates rows are leaves). When
// the serial is already revoked it changes nothing and returns the first
// record with created false. An unknown serial is ErrNotFound. ev is
// appended to the audit log in the same transaction, only when the
// revocation is created.
func (db *DB) RevokeCertificate(ctx context.Context, r *inventory.Revocation, ev audit.Event) (stored *inventory.Revocation, created bool, err error) {
	if err := normalizeEvent(&ev); err != nil {
		return nil, false, fmt.Errorf("store: revoke certificate %s: %w", r.Serial, err)
	}
	rec := normRevocation(*r)
	rec.CA = false
	err = db.compromisedTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, db.q.getCertRev, rec.Serial).Scan(&rec.CAID, timeScan{&rec.NotAfter})
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("certificate serial", rec.Serial)
		}
		if err != nil {
			return err
		}
		if stored, created, err = db.insertRevocation(ctx, tx, &rec); err != nil || !created {
			return err
		}
		if _, err = tx.ExecContext(ctx, db.q.setRevoked, rec.Serial); err != nil {
			return err
		}
		if err := db.notifyRevoked(ctx, tx, map[string][]string{rec.CAID: {rec.Serial}}); err != nil {
			return err
		}
		if rec.Reason == pki.ReasonKeyCompromise {
			js, err := json.Marshal([]string{rec.Serial})
			if err != nil {
				return err
			}
			if err := db.reportCompromisedCerts(ctx, tx, string(js), rec.RevokedBy, rec.RevokedAt); err != nil {
				return err
			}
		}
		return db.appendAudit(ctx, tx, &ev)
	})
	if err != nil {
		return nil, false, fmt.Errorf("store: revoke certificate %s: %w", r.Serial, err)
	}
	r.CAID, r.NotAfter = rec.CAID, rec.NotAfter
	return stored, created, nil
}

// RevokeCA records r (r.CA true, r.CAID the parent, r.Serial and r.NotAfter
// those of the CA's certificate) and stores the updated CA c, every column
// as UpdateCA does, in one transaction. When the serial is already revoked
// it changes nothing, c included, and returns the first record with created
// false. An unknown c.ID is ErrNotFound and a name taken by another CA
// ErrConflict; either way nothing is written. ev is appended to the audit
// log in the same transaction, only when the revocation is created.
func (db *DB) RevokeCA(ctx context.Context, r *inventory.Revocation, c *ca.CA, ev audit.Event) (stored *inventory.Revocation, created bool, err error) {
	if r.Serial == "" || r.CAID == "" {
		return nil, false, fmt.Errorf("store: revoke CA %q: the revocation needs the certificate's serial and the parent CA's ID", c.ID)
	}
	if err := normalizeEvent(&ev); err != nil {
		return nil, false, fmt.Errorf("store: revoke CA %q (serial %s): %w", c.ID, r.Serial, err)
	}
	rec := normRevocation(*r)
	rec.CA = true
	args, err := db.caArgs(c)
	if err != nil {
		return nil, false, err
	}
	err = db.caTx(ctx, func(tx *sql.Tx) ([]string, error) {
		if stored, created, err = db.insertRevocation(ctx, tx, &rec); err != nil || !created {
			return nil, err
		}
		if err := db.notifyRevoked(ctx, tx, map[string][]string{rec.CAID: {rec.Serial}}); err != nil {
			return nil, err
		}
		n, err := execAffected(ctx, tx, db.q.updateCA, append(args, c.ID)...)
		if db.d.uniqueViolation(err) {
			return nil, conflict("CA name", c.Name)
		}
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, notFound("CA", c.ID)
		}
		return []string{c.ID}, db.appendAudit(ctx, tx, &ev)
	})
	if err != nil {
		return nil, false, fmt.Errorf("store: revoke CA %q (serial %s): %w", c.ID, r.Serial, err)
	}
	return stored, created, nil
}

// insertRevocation inserts rec unless its serial is revoked, in which case
// it returns the existing record and false.
func (db *DB) insertRevocation(ctx context.Context, tx *sql.Tx, rec *inventory.Revocation) (*inventory.Revocation, bool, error) {
	n, err := execAffected(ctx, tx, db.q.insertRev, db.revArgs(rec)...)
	if err != nil {
		return nil, false, err
	}
	if n == 1 {
		out := *rec
		return &out, true, nil
	}
	var old inventory.Revocation
	if err := tx.QueryRowContext(ctx, db.q.getRev, rec.Serial).Scan(revDest(&old)...); err != nil {
		return nil, false, fmt.Errorf("read the existing revocation: %w", err)
	}
	return &old, false, nil
}

// RevokeMatching revokes, in one transaction, every certificate that
// matches every non-empty field of sel (SAN and SPKISHA256
// case-insensitively), has status valid, is not yet revoked and has not
// expired at now (NotAfter at or after now: RFC 5280 validity is
// inclusive). Each record takes tmpl's RevokedAt, Reason, InvalidityDate and
// RevokedBy; its serial, CA and expiry come from the certificate. It returns
// the new records ordered by serial: an empty, non-nil slice when nothing
// matches. With dryRun it writes nothing and returns what it would do.
//
// Each certificate revoked gets a copy of ev, Target its serial, appended
// to the audit log in the same transaction in serial order; a dry run
// appends none, but ev must be valid all the same.
//
// A certificate revoked concurrently is either revoked here or skipped,
// never counted twice. The new records and their audit events are held in
// memory, a few hundred bytes each, and on SQLite the transaction holds the
// single writer (other writes wait) for its whole run: 1.5 to 2 s per
// 100,000 certificates before audit events, which add about as much again.
func (db *DB) RevokeMatching(ctx context.Context, sel inventory.Selector, now time.Time, tmpl inventory.Revocation, dryRun bool, ev audit.Event) ([]*inventory.Revocation, error) {
	if sel.Empty() {
		return nil, errors.New("store: revoke matching: the selector is empty and would match every certificate")
	}
	if err := normalizeEvent(&ev); err != nil {
		return nil, fmt.Errorf("store: revoke matching: %w", err)
	}
	where, args := db.matchWhere(sel, now)
	t := normRevocation(tmpl)
	var out []*inventory.Revocation
	collect := func(rows *sql.Rows) error {
		defer rows.Close()
		for rows.Next() {
			r := t
			r.CA = false
			if err := rows.Scan(&r.Serial, &r.CAID, timeScan{&r.NotAfter}); err != nil {
				return err
			}
			out = append(out, &r)
		}
		return rows.Err()
	}

	if dryRun {
		rows, err := db.read.QueryContext(ctx, db.d.rebind(`SELECT serial, ca_id, not_after FROM certificates
			WHERE `+where+` AND NOT EXISTS (SELECT 1 FROM revocations r WHERE r.serial = certificates.serial)`), args...)
		if err == nil {
			err = collect(rows)
		}
		if err != nil {
			return nil, fmt.Errorf("store: revoke matching (dry run): %w", err)
		}
	} else {
		// Rows go in serial order so that two bulk revocations on
		// PostgreSQL take the serials' index locks in the same order and
		// cannot deadlock. The SELECT's parameters need casts: nothing in
		// the statement fixes their type on PostgreSQL.
		insert := db.d.rebind(`INSERT INTO revocations (` + revColumns + `)
			SELECT serial, ca_id, CAST(? AS ` + db.d.timeType + `), CAST(? AS INTEGER), CAST(? AS ` + db.d.timeType + `),
				CAST(? AS TEXT), not_after, false
			FROM certificates WHERE ` + where + ` ORDER BY serial
			ON CONFLICT (serial) DO NOTHING RETURNING serial, ca_id, not_after`)
		insArgs := append([]any{db.timeArg(t.RevokedAt), int64(t.Reason), db.zeroNullTimeArg(t.InvalidityDate), t.RevokedBy}, args...)
		update := db.d.rebind(`UPDATE certificates SET status = '` + string(inventory.StatusRevoked) + `'
			WHERE serial IN (` + db.d.stringsFromJSON + `)`)
		err := db.compromisedTx(ctx, func(tx *sql.Tx) error {
			rows, err := tx.QueryContext(ctx, insert, insArgs...)
			if err != nil {
				return err
			}
			if err := collect(rows); err != nil {
				return err
			}
			if len(out) == 0 {
				return nil
			}
			list := make([]string, len(out))
			for i, r := range out {
				list[i] = r.Serial
			}
			js, err := json.Marshal(list)
			if err != nil {
				return err
			}
			n, err := execAffected(ctx, tx, update, string(js))
			if err != nil {
				return err
			}
			if n != int64(len(out)) {
				return fmt.Errorf("marked %d certificates revoked, want %d", n, len(out))
			}
			byCA := map[string][]string{}
			for _, r := range out {
				byCA[r.CAID] = append(byCA[r.CAID], r.Serial)
			}
			if err := db.notifyRevoked(ctx, tx, byCA); err != nil {
				return err
			}
			if t.Reason == pki.ReasonKeyCompromise {
				if err := db.reportCompromisedCerts(ctx, tx, string(js), t.RevokedBy, t.RevokedAt); err != nil {
					return err
				}
			}
			slices.SortFunc(out, func(a, b *inventory.Revocation) int { return strings.Compare(a.Serial, b.Serial) })
			evs := make([]audit.Event, len(out))
			ptrs := make([]*audit.Event, len(out))
			for i, r := range out {
				evs[i] = ev
				evs[i].Target = r.Serial
				ptrs[i] = &evs[i]
			}
			return db.appendAudit(ctx, tx, ptrs...)
		})
		if err != nil {
			return nil, fmt.Errorf("store: revoke matching: %w", err)
		}
	}
	if out == nil {
		out = []*inventory.Revocation{}
	}
	slices.SortFunc(out, func(a, b *inventory.Revocation) int { return strings.Compare(a.Serial, b.Serial) })
	return out, nil
}

// matchWhere is the condition on certificates for RevokeMatching.
func (db *DB) matchWhere(sel inventory.Selector, now time.Time) (string, []any) {
	return db.matchWhereIn(sel, now, "")
}

// matchWhereIn is matchWhere with every column prefixed by p (e.g. "c.").
func (db *DB) matchWhereIn(sel inventory.Selector, now time.Time, p string) (string, []any) {
	where := []string{p + "status = '" + string(inventory.StatusValid) + "'", p + "not_after >= ?"}
	args := []any{db.timeArg(now)}
	cond := func(c string, arg any) {
		where = append(where, c)
		args = append(args, arg)
	}
	if sel.CAID != "" {
		cond(p+"ca_id = ?", sel.CAID)
	}
	if sel.Profile != "" {
		cond(p+"profile = ?", sel.Profile)
	}
	if sel.SAN != "" {
		cond(p+"serial IN (SELECT serial FROM certificate_names WHERE kind = '"+nameKindSAN+"' AND value = ?)", strings.ToLower(sel.SAN))
	}
	if sel.SPKISHA256 != "" {
		cond(p+"spki_sha256 = ?", strings.ToLower(sel.SPKISHA256))
	}
	return strings.Join(where, " AND "), args
}

// GetRevocation returns the revocation of serial, or ErrNotFound.
func (db *DB) GetRevocation(ctx context.Context, serial string) (*inventory.Revocation, error) {
	var r inventory.Revocation
	err := db.read.QueryRowContext(ctx, db.q.getRev, serial).Scan(revDest(&r)...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("revocation of serial", serial)
	}
	if err != nil {
		return nil, fmt.Errorf("store: get revocation %s: %w", serial, err)
	}
	return &r, nil
}

// LookupSerial reports whether caID issued the leaf certificate serial
// and, if a revocation of serial is listed under caID (a leaf's or a
// subordinate CA's own certificate), returns it. One query.
func (db *DB) LookupSerial(ctx context.Context, caID, serial string) (issued bool, rev *inventory.Revocation, err error) {
	var nr nullRevScan
	err = db.rd.QueryRowContext(ctx, db.q.lookupSerial, serial, caID, serial, caID).Scan(append([]any{&issued}, nr.dest()...)...)
	if err != nil {
		return false, nil, fmt.Errorf("store: look up serial %s of CA %q: %w", serial, caID, err)
	}
	return issued, nr.revocation(), nil
}

// EachRevoked calls fn for every revocation listed under caID whose
// certificate has not expired at now (NotAfter at or after now), in no
// particular order. fn gets the same *Revocation each call, overwritten; it
// must not keep it. The rows stream from one read (a WAL snapshot on SQLite,
// which writers do not wait for); an error from fn stops the scan and is
// returned as is.
func (db *DB) EachRevoked(ctx context.Context, caID string, now time.Time, fn func(*inventory.Revocation) error) error {
	return db.eachRevoked(ctx, db.read, caID, now, fn)
}

// EachUnexpired calls fn for every leaf certificate caID issued that has
// not expired at now (NotAfter at or after now), with its revocation or
// nil, in no particular order. The revocation pointed to is reused between
// calls. An error from fn stops the scan and is returned as is.
//
// The revoked certificates are read from their revocations rows, not
// joined row by row (which costs a random lookup per certificate), so a
// certificate inserted with Status revoked but never revoked through this
// store, which only tests do, is not listed at all.
func (db *DB) EachUnexpired(ctx context.Context, caID string, now time.Time, fn func(serial string, notAfter time.Time, rev *inventory.Revocation) error) error {
	rows, err := db.read.QueryContext(ctx, db.q.eachUnexpired, caID, db.timeArg(now), caID, db.timeArg(now))
	if err != nil {
		return fmt.Errorf("store: unexpired certificates of CA %q: %w", caID, err)
	}
	defer rows.Close()
	var (
		serial   string
		notAfter time.Time
		nr       nullRevScan
		r        inventory.Revocation
	)
	dest := append([]any{&serial, timeScan{&notAfter}}, nr.dest()...)
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("store: unexpired certificates of CA %q: %w", caID, err)
		}
		var rev *inventory.Revocation
		if nr.fill(&r) {
			rev = &r
		}
		if err := fn(serial, notAfter, rev); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: unexpired certificates of CA %q: %w", caID, err)
	}
	return nil
}

// sqlRaiseCRLNumbers lifts the last CRL number of every CA but the
// offline roots (key provider the second parameter) to at least a floor.
const sqlRaiseCRLNumbers = `INSERT INTO crl_numbers (ca_id, number) SELECT id, ? FROM cas WHERE key_provider <> ?
	ON CONFLICT (ca_id) DO UPDATE SET number = CASE WHEN crl_numbers.number < excluded.number
		THEN excluded.number ELSE crl_numbers.number END`

// sqlDropRaisedCRLs deletes the stored CRLs numbered up to a floor, but
// not the offline roots' (key provider the second parameter).
const sqlDropRaisedCRLs = `DELETE FROM crls WHERE number <= ?
	AND ca_id NOT IN (SELECT id FROM cas WHERE key_provider = ?)`

// RaiseCRLNumbers makes every CA's next CRL number greater than floor.
// A restored database calls it: the instance it was copied from may have
// published CRLs numbered past the copy's counters, and RFC 5280 wants a
// CA's CRL numbers to increase, never repeat.
//
// The stored CRLs numbered up to floor go too: serving one again would
// take the numbers a client has seen backwards; the next CRL of each CA is
// built afresh above floor.
//
// An offline root (ca.OfflineKeyProvider) is left alone: its CRLs are
// signed at its ceremony and numbered there (1, 2, 3...), this server
// cannot build another, and its stored CRL is the high-water mark that
// refuses an older upload (revoke.Service.ImportCRL).
func (db *DB) RaiseCRLNumbers(ctx context.Context, floor int64) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, db.d.rebind(sqlRaiseCRLNumbers), floor, ca.OfflineKeyProvider); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, db.d.rebind(sqlDropRaisedCRLs), floor, ca.OfflineKeyProvider)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: raise CRL numbers: %w", err)
	}
	return nil
}

// NextCRLNumber allocates caID's next CRL number, 1 first. The increment is
// one atomic statement, committed before it returns: numbers never repeat,
// across restarts or between processes sharing the database.
func (db *DB) NextCRLNumber(ctx context.Context, caID string) (int64, error) {
	var n int64
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, db.q.nextCRLNumber, caID).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("store: next CRL number of CA %q: %w", caID, err)
	}
	return n, nil
}

// inTx runs fn in a write transaction and commits it. As in
// InsertCertificate, the transaction outlives ctx so that a cancellation
// cannot land between the server committing and the answer: fn's
// statements run under ctx, ctx is checked last before COMMIT, and a failure
// anywhere rolls everything back. The bus notices fn queues (notifyTx) are
// sent once the transaction has committed.
func (db *DB) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	tx, err := db.write.BeginTx(context.WithoutCancel(ctx), nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	db.openOutbox(tx)
	defer db.takeOutbox(tx) // what a failed transaction queued
	if err := fn(tx); err != nil {
		// A cancellation mid-statement surfaces from the driver as an
		// interrupted statement or a broken connection; say that it was
		// the caller's context.
		if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
			err = errors.Join(cerr, err)
		}
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	db.sendNotices(ctx, db.takeOutbox(tx))
	return nil
}

// normRevocation returns r with its times as the database returns them.
func normRevocation(r inventory.Revocation) inventory.Revocation {
	r.RevokedAt, r.NotAfter = utc(r.RevokedAt), utc(r.NotAfter)
	if !r.InvalidityDate.IsZero() {
		r.InvalidityDate = utc(r.InvalidityDate)
	}
	return r
}

// revArgs returns r's column values in revColumns order.
func (db *DB) revArgs(r *inventory.Revocation) []any {
	return []any{r.Serial, r.CAID, db.timeArg(r.RevokedAt), int64(r.Reason), db.zeroNullTimeArg(r.InvalidityDate),
		r.RevokedBy, db.timeArg(r.NotAfter), r.CA}
}

// revDest returns scan destinations for revColumns into r.
func revDest(r *inventory.Revocation) []any {
	return []any{&r.Serial, &r.CAID, timeScan{&r.RevokedAt}, reasonScan{&r.Reason},
		zeroTimeScan{&r.InvalidityDate}, &r.RevokedBy, timeScan{&r.NotAfter}, &r.CA}
}

// nullRevScan reads revColumns from the outer side of a LEFT JOIN: all NULL
// when there is no revocation.
type nullRevScan struct {
	serial, caID, revokedBy           sql.NullString
	reason                            sql.NullInt64
	ca                                sql.NullBool
	revokedAtT, notAfterT, invalidity time.Time
}

func (n *nullRevScan) dest() []any {
	return []any{&n.serial, &n.caID, zeroTimeScan{&n.revokedAtT}, &n.reason,
		zeroTimeScan{&n.invalidity}, &n.revokedBy, zeroTimeScan{&n.notAfterT}, &n.ca}
}

// fill sets *r from the scanned row and reports whether there was one.
func (n *nullRevScan) fill(r *inventory.Revocation) bool {
	if !n.serial.Valid {
		return false
	}
	*r = inventory.Revocation{
		Serial: n.serial.String, CAID: n.caID.String, RevokedAt: n.revokedAtT, Reason: pki.Reason(n.reason.Int64),
		InvalidityDate: n.invalidity, RevokedBy: n.revokedBy.String, NotAfter: n.notAfterT, CA: n.ca.Bool,
	}
	return true
}

// revocation returns the scanned revocation, or nil.
func (n *nullRevScan) revocation() *inventory.Revocation {
	var r inventory.Revocation
	if !n.fill(&r) {
		return nil
	}
	return &r
}

// zeroTimeScan reads a nullable time column, NULL as the zero time.
type zeroTimeScan struct{ dst *time.Time }

func (s zeroTimeScan) Scan(src any) error {
	if src == nil {
		*s.dst = time.Time{}
		return nil
	}
	return timeScan(s).Scan(src)
}

// reasonScan reads a CRLReason code.
type reasonScan struct{ dst *pki.Reason }

func (s reasonScan) Scan(src any) error {
	v, ok := src.(int64)
	if !ok {
		return fmt.Errorf("store: cannot read a revocation reason from a %T column value", src)
	}
	*s.dst = pki.Reason(v)
	return nil
}

// zeroNullTimeArg encodes t, the zero time as NULL.
func (db *DB) zeroNullTimeArg(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return db.timeArg(t)
}

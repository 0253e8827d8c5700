package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/certwright/certwright/internal/acme"
	"github.com/certwright/certwright/internal/audit"
)

// Claims on ACME work in processing (acme.Claim, README "Several
// replicas"). Claim times come from PostgreSQL's clock, which every
// replica shares, and from the caller's on SQLite (one process): each
// time in these statements is claimAt's fragment and takes one argument,
// claimArg's.

// claimAt is the SQL of a claim time: now plus a number of seconds.
func (db *DB) claimAt() string {
	if db.d == &postgresDialect {
		return "(now() + make_interval(secs => CAST(? AS double precision)))"
	}
	return "?"
}

// claimArg is claimAt's argument for now + d.
func (db *DB) claimArg(now time.Time, d time.Duration) any {
	if db.d == &postgresDialect {
		return d.Seconds()
	}
	return db.timeArg(now.Add(d))
}

// skipLocked is the locking clause of a sweep's selection: rows another
// replica's sweep holds are skipped, not waited for. SQLite has one
// writer, and no such clause.
func (db *DB) skipLocked() string {
	if db.d == &postgresDialect {
		return " FOR UPDATE SKIP LOCKED"
	}
	return ""
}

const (
	sqlClaimChallenge = `UPDATE acme_challenges SET status = '` + acme.StatusProcessing + `', claimed_by = ?, claim = ?,
		claimed_at = %[1]s, claimed_until = %[1]s, attempts = attempts + 1, source = ? WHERE id = ? AND status = '` + acme.StatusPending + `'`
	sqlRenewChallengeClaim = `UPDATE acme_challenges SET claimed_until = %s
		WHERE id = ? AND status = '` + acme.StatusProcessing + `' AND claim = ?`
	// The challenges a sweep takes: claims expired (or the replica's own,
	// at start-up), oldest first.
	sqlTakeOverChallenges = `UPDATE acme_challenges SET claimed_by = ?, claim = ?, claimed_at = %[1]s, claimed_until = %[1]s,
		attempts = attempts + 1 WHERE id IN (SELECT id FROM acme_challenges
		WHERE status = '` + acme.StatusProcessing + `' AND %[2]s ORDER BY claimed_until LIMIT ?%[3]s) RETURNING id`
	sqlClaimedChallenges = `SELECT c.id, c.authz_id, c.type, c.token, c.status, c.source, c.attempts,
		a.ident_type, a.ident_value, a.account_id, a.provisioner_id, COALESCE(p.name, ''),
		COALESCE(acc.key_thumbprint, ''), acc.eab_key_id IS NOT NULL
		FROM acme_challenges c JOIN acme_authorizations a ON a.id = c.authz_id
		LEFT JOIN acme_accounts acc ON acc.id = a.account_id
		LEFT JOIN acme_provisioners p ON p.id = a.provisioner_id
		WHERE c.id IN (%s) AND c.claim = ?`
	sqlRecordChallenge = `UPDATE acme_challenges SET status = ?, validated = ?, error = ?, claimed_until = NULL
		WHERE id = ? AND authz_id = ? AND status = '` + acme.StatusProcessing + `' AND claim = ?`
	sqlRecordAuthz = `UPDATE acme_authorizations SET status = ?, expires = ?
		WHERE id = ? AND status = '` + acme.StatusPending + `'`

	sqlClaimOrder = `UPDATE acme_orders SET status = ?, error = ?, cert_serial = ?, updated_at = ?,
		claimed_by = ?, claim = ?, claimed_at = %[1]s, claimed_until = %[1]s WHERE id = ? AND status = ?`
	sqlUpdateClaimedOrder = `UPDATE acme_orders SET status = ?, error = ?, cert_serial = ?, updated_at = ?,
		claimed_until = NULL WHERE id = ? AND status = '` + acme.StatusProcessing + `' AND claim = ?`
	sqlReturnStuckOrders = `UPDATE acme_orders SET status = '` + acme.StatusReady + `', updated_at = ?,
		claimed_until = NULL WHERE id IN (SELECT id FROM acme_orders
		WHERE status = '` + acme.StatusProcessing + `' AND %s ORDER BY claimed_until LIMIT ?%s) RETURNING id`
)

// ClaimChallenge moves a pending challenge to processing under cl.
func (db *DB) ClaimChallenge(ctx context.Context, chID string, cl acme.Claim, source string) error {
	q := db.d.rebind(fmt.Sprintf(sqlClaimChallenge, db.claimAt()))
	n, err := db.execWrite(ctx, q, cl.Replica, cl.Token, db.claimArg(cl.Now, 0), db.claimArg(cl.Now, cl.TTL), source, chID)
	if err == nil && n == 0 {
		err = db.casFailed(ctx, sqlChallengeStatus, "ACME challenge", chID, acme.StatusPending)
	}
	if err != nil {
		return fmt.Errorf("store: claim ACME challenge %q: %w", chID, err)
	}
	return nil
}

// RenewChallengeClaim moves the end of claim cl.Token on the challenge to
// cl.Now + cl.TTL.
func (db *DB) RenewChallengeClaim(ctx context.Context, chID string, cl acme.Claim) error {
	q := db.d.rebind(fmt.Sprintf(sqlRenewChallengeClaim, db.claimAt()))
	n, err := db.execWrite(ctx, q, db.claimArg(cl.Now, cl.TTL), chID, cl.Token)
	if err == nil && n == 0 {
		err = fmt.Errorf("%w: ACME challenge %q is no longer processing under this claim", ErrConflict, chID)
	}
	if err != nil {
		return fmt.Errorf("store: renew claim on ACME challenge %q: %w", chID, err)
	}
	return nil
}

// claimWhere selects the processing rows a sweep takes: those whose claim
// has expired, or (own) those cl.Replica claimed before cl.Started,
// expired or not, in another life than cl.Life, and its arguments. A
// claim under the same name taken since (by a live replica wrongly given
// this one's name) is left alone, and so is one this life took (at the
// same instant as its start, on a clock as coarse as a test's). On
// PostgreSQL cl.Started is placed on the database's clock as now() less
// the time since it on the caller's.
func (db *DB) claimWhere(cl acme.Claim, own bool) (string, []any) {
	if own {
		var since time.Duration
		if !cl.Started.IsZero() {
			since = cl.Now.Sub(cl.Started)
		}
		where, args := "claimed_by = ? AND (claimed_at IS NULL OR claimed_at <= "+db.claimAt()+")", []any{cl.Replica, db.claimArg(cl.Now, -since)}
		if cl.Life != "" {
			where += " AND substr(claim, 1, ?) <> ?"
			args = append(args, len(cl.Life), cl.Life)
		}
		return where, args
	}
	return "claimed_until <= " + db.claimAt(), []any{db.claimArg(cl.Now, 0)}
}

// TakeOverChallenges claims expired (or, own, cl.Replica's) processing
// challenges under cl and returns them with what validating them needs.
func (db *DB) TakeOverChallenges(ctx context.Context, cl acme.Claim, own bool, limit int) ([]*acme.ClaimedChallenge, error) {
	if limit <= 0 {
		return nil, nil
	}
	where, wargs := db.claimWhere(cl, own)
	q := db.d.rebind(fmt.Sprintf(sqlTakeOverChallenges, db.claimAt(), where, db.skipLocked()))
	args := append([]any{cl.Replica, cl.Token, db.claimArg(cl.Now, 0), db.claimArg(cl.Now, cl.TTL)}, wargs...)
	args = append(args, limit)
	var out []*acme.ClaimedChallenge
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		out = nil
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		ids, err := collect(rows, func(s scanner) (any, error) {
			var id string
			err := s.Scan(&id)
			return id, err
		})
		if err != nil || len(ids) == 0 {
			return err
		}
		rows, err = tx.QueryContext(ctx, db.d.rebind(fmt.Sprintf(sqlClaimedChallenges, params(len(ids)))), append(ids, cl.Token)...)
		if err != nil {
			return err
		}
		out, err = collect(rows, scanClaimedChallenge)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: take over ACME challenges: %w", err)
	}
	return out, nil
}

func scanClaimedChallenge(s scanner) (*acme.ClaimedChallenge, error) {
	var c acme.ClaimedChallenge
	ch := &c.Challenge
	if err := s.Scan(&ch.ID, &ch.AuthzID, &ch.Type, &ch.Token, &ch.Status, &c.Source, &c.Attempts,
		&c.Identifier.Type, &c.Identifier.Value, &c.AccountID, &c.ProvisionerID, &c.ProvisionerName,
		&c.KeyThumbprint, &c.Bound); err != nil {
		return nil, err
	}
	return &c, nil
}

// RecordValidation writes a validation's outcome under claim token.
func (db *DB) RecordValidation(ctx context.Context, a *acme.Authorization, ch *acme.Challenge, token string, ev audit.Event) (bool, error) {
	if err := normalizeEvent(&ev); err != nil {
		return false, err
	}
	p, err := problemArg(ch.Error)
	if err != nil {
		return false, fmt.Errorf("store: record ACME validation %q: %w", ch.ID, err)
	}
	var updated, lost bool
	err = db.groupTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		updated, lost = false, false
		n, err := execAffected(ctx, tx, db.d.rebind(sqlRecordChallenge), ch.Status, db.zeroNullTimeArg(ch.Validated), p,
			ch.ID, a.ID, token)
		if err != nil {
			return err
		}
		if n == 0 {
			// Another replica took the challenge over: the attempt
			// happened all the same.
			lost = true
			return db.appendAudit(ctx, tx, &ev)
		}
		n, err = execAffected(ctx, tx, db.d.rebind(sqlRecordAuthz), a.Status, db.timeArg(a.Expires), a.ID)
		if err != nil {
			return err
		}
		updated = n == 1
		return db.appendAudit(ctx, tx, &ev)
	})
	if err == nil && lost {
		err = fmt.Errorf("%w: ACME challenge %q is no longer processing under this claim", ErrConflict, ch.ID)
	}
	if err != nil {
		return false, fmt.Errorf("store: record ACME validation %q: %w", ch.ID, err)
	}
	return updated, nil
}

// ClaimOrder writes o, in processing, with claim cl when the stored status
// is from.
func (db *DB) ClaimOrder(ctx context.Context, o *acme.Order, from string, cl acme.Claim) error {
	problem, err := problemArg(o.Error)
	if err != nil {
		return fmt.Errorf("store: claim ACME order %q: %w", o.ID, err)
	}
	q := db.d.rebind(fmt.Sprintf(sqlClaimOrder, db.claimAt()))
	n, err := db.execWrite(ctx, q, o.Status, problem, nullIfBlank(o.CertSerial), db.timeArg(o.UpdatedAt),
		cl.Replica, cl.Token, db.claimArg(cl.Now, 0), db.claimArg(cl.Now, cl.TTL), o.ID, from)
	if err == nil && n == 0 {
		err = db.casFailed(ctx, sqlOrderStatus, "ACME order", o.ID, from)
	}
	if err != nil {
		return fmt.Errorf("store: claim ACME order %q: %w", o.ID, err)
	}
	return nil
}

// UpdateClaimedOrder writes o and ends its claim, provided the order is
// processing under claim token.
func (db *DB) UpdateClaimedOrder(ctx context.Context, o *acme.Order, token string) error {
	problem, err := problemArg(o.Error)
	if err != nil {
		return fmt.Errorf("store: update ACME order %q: %w", o.ID, err)
	}
	n, err := db.execWrite(ctx, db.d.rebind(sqlUpdateClaimedOrder), o.Status, problem, nullIfBlank(o.CertSerial),
		db.timeArg(o.UpdatedAt), o.ID, token)
	if err == nil && n == 0 {
		err = fmt.Errorf("%w: ACME order %q is no longer processing under this claim", ErrConflict, o.ID)
	}
	if err != nil {
		return fmt.Errorf("store: update ACME order %q: %w", o.ID, err)
	}
	return nil
}

// ReturnStuckOrders sends expired (or, own, cl.Replica's) processing
// orders back to ready.
func (db *DB) ReturnStuckOrders(ctx context.Context, cl acme.Claim, own bool, limit int) ([]string, error) {
	if limit <= 0 {
		return nil, nil
	}
	where, wargs := db.claimWhere(cl, own)
	q := db.d.rebind(fmt.Sprintf(sqlReturnStuckOrders, where, db.skipLocked()))
	args := append(append([]any{db.timeArg(cl.Now)}, wargs...), limit)
	var out []string
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		out, err = collect(rows, func(s scanner) (string, error) {
			var id string
			err := s.Scan(&id)
			return id, err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: return stuck ACME orders: %w", err)
	}
	return out, nil
}

// completeOrderSQL marks an ACME order valid with its certificate, in the
// certificate's insert transaction, provided the finalization that issued
// it still holds the order's claim.
const completeOrderSQL = `UPDATE acme_orders SET status = '` + acme.StatusValid + `', error = NULL, cert_serial = ?,
	updated_at = ?, claimed_until = NULL WHERE id = ? AND status = '` + acme.StatusProcessing + `' AND claim = ?`

// completeOrder runs completeOrderSQL for r in tx; false when the claim is
// lost (the order is not changed, and r must not be written).
func (db *DB) completeOrder(ctx context.Context, tx *sql.Tx, r *certRow) (bool, error) {
	o := r.order
	n, err := execAffected(ctx, tx, db.d.rebind(completeOrderSQL), r.serial, db.timeArg(o.UpdatedAt), o.ID, o.Claim)
	return n == 1, err
}

// orderClaimLost is the error of a certificate whose ACME order's claim
// was lost before it could be stored.
func orderClaimLost(serial, order string) error {
	return fmt.Errorf("store: insert certificate %s: %w: ACME order %q is no longer processing under the finalization's claim",
		serial, ErrConflict, order)
}

// discardReason is the reason a discarded certificate's audit event gives.
const discardReason = "the ACME finalization lost its order's claim (another replica took the order over) before the certificate could be stored; it was signed, but is neither stored nor delivered"

// discardEvent is the audit event of r's certificate when its ACME
// order's claim was lost: the event its issuance would have appended
// (issued) is not, and the signature made with the CA's key is audited
// by this one instead, under the same principal and request.
func discardEvent(issued *audit.Event, r *certRow) (*audit.Event, error) {
	details, err := json.Marshal(map[string]string{"serial": r.serial, "ca": r.ca, "acme_order": r.order.ID, "reason": discardReason})
	if err != nil {
		return nil, err
	}
	ev := audit.Event{
		Time: issued.Time, Principal: issued.Principal, PrincipalID: issued.PrincipalID, Source: issued.Source,
		Action: "certificate.discard", Target: r.serial, Outcome: audit.Failed, RequestID: issued.RequestID, Details: details,
	}
	if err := normalizeEvent(&ev); err != nil {
		return nil, err
	}
	return &ev, nil
}

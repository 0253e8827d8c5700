package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/keys"
	"github.com/certwright/certwright/internal/pki"
)

// Listing page sizes.
const (
	DefaultListLimit = 1000
	MaxListLimit     = 10000
)

// Kinds of row in certificate_names.
const (
	nameKindSAN = "san"
	nameKindTag = "tag"
)

// certRow is a certificate encoded for insertion, built on the caller's
// goroutine so that the single SQLite writer only executes statements.
type certRow struct {
	serial string
	// replaces is the predecessor's serial, marked renewed by this one in
	// the same transaction.
	replaces string
	// credential is the principal the certificate authenticates as over
	// mTLS ("" for none), a client_credentials row.
	credential string
	// credentialToken is the token whose sign-in asked for the
	// certificate ("" for none), kept in the client_credentials row.
	credentialToken string
	// order is the ACME order the certificate completes (acme_claims.go).
	order *inventory.OrderClaim
	ca    string   // the issuing CA's ID
	args  []any    // certColumns order
	names []string // kind, value pairs
	// count is the certificate_counts group the row adds to.
	count countKey
	// issued: the certificate was issued here (not imported), and is
	// counted in issuance_counts on issuedDay, created_at's UTC day.
	issued    bool
	issuedDay int64
}

func (db *DB) encodeCert(c *inventory.Certificate) (*certRow, error) {
	if c.Serial == "" {
		return nil, errors.New("store: insert certificate: serial is required")
	}
	sans, err := jsonList(c.SANs)
	if err != nil {
		return nil, fmt.Errorf("store: insert certificate %s: %w", c.Serial, err)
	}
	tags, err := jsonList(c.Tags)
	if err != nil {
		return nil, fmt.Errorf("store: insert certificate %s: %w", c.Serial, err)
	}
	lint, err := jsonList(c.LintWarnings)
	if err != nil {
		return nil, fmt.Errorf("store: insert certificate %s: %w", c.Serial, err)
	}
	var mkProvider, mkID, mkAlg any
	var mkBlob []byte
	if k := c.ManagedKey; k != nil {
		mkProvider, mkID, mkAlg, mkBlob = k.Provider, k.ID, string(k.Algorithm), k.Blob
	}
	chain, err := json.Marshal(nonNilChain(c.Chain))
	if err != nil {
		return nil, fmt.Errorf("store: insert certificate %s: chain: %w", c.Serial, err)
	}
	source := c.Source
	if source == "" {
		source = inventory.SourceIssued
	}
	der := c.DER
	if der == nil {
		der = []byte{}
	}
	spki := strings.ToLower(c.SPKISHA256)
	if spki == "" {
		// Unparsable DER (only tests write it) leaves the column empty.
		spki, _ = spkiSHA256(der)
	}
	r := &certRow{
		serial:          c.Serial,
		replaces:        c.Replaces,
		credential:      c.ClientPrincipalID,
		credentialToken: c.ClientTokenID,
		order:           c.Completes,
		ca:              c.CAID,
		count: countKey{caID: c.CAID, profile: c.Profile, status: string(c.Status), renewed: c.RenewedBy != "",
			expiryDay: expiryDay(c.NotAfter)},
		args: []any{
			c.Serial, c.CAID, c.Profile, c.Requester, c.Subject, sans,
			db.timeArg(c.NotBefore), db.timeArg(c.NotAfter), c.KeyAlgorithm, c.KeyBits,
			c.SignatureAlgorithm, string(c.Status), c.Fingerprint, spki, tags, lint, der,
			mkProvider, mkID, mkAlg, nilIfEmpty(mkBlob), db.timeArg(c.CreatedAt),
			db.zeroNullTimeArg(c.RenewNowAt),
			string(source), c.Owner, c.Issuer, c.IssuerSerial, string(chain), c.AutoRenew, c.Replaces,
			c.RenewedBy, string(c.RenewalKind), c.RenewFailures, db.zeroNullTimeArg(c.RenewRetryAt), c.RenewError,
			db.zeroNullTimeArg(c.SupersedeAt), c.RequesterID,
		},
	}
	if source == inventory.SourceIssued {
		r.issued, r.issuedDay = true, expiryDay(c.CreatedAt)
	}
	// Each name once: a certificate may list a SAN in two spellings.
	seen := make(map[[2]string]bool, len(c.SANs)+len(c.Tags))
	add := func(kind, value string) {
		k := [2]string{kind, value}
		if !seen[k] {
			seen[k] = true
			r.names = append(r.names, kind, value)
		}
	}
	for _, s := range c.SANs {
		add(nameKindSAN, strings.ToLower(s))
	}
	for _, t := range c.Tags {
		add(nameKindTag, t)
	}
	return r, nil
}

func jsonList(s []string) (string, error) {
	if s == nil {
		return "[]", nil
	}
	b, err := json.Marshal(s)
	return string(b), err
}

// ExpectCertificate announces an issuance whose certificate will soon
// reach InsertCertificate (nothing open-ended left before it), so that the
// certificate group commit waits a little for it (see batch.go) instead
// of committing the rows it has and paying another commit for this one.
// The caller calls arrived just before InsertCertificate, or when it gives
// up; an announcement never withdrawn only makes commits wait their full
// linger. Calls after the first do nothing.
func (db *DB) ExpectCertificate() (arrived func()) {
	if db.batch == nil {
		return func() {}
	}
	return db.batch.expect()
}

// InsertCertificate records an issued certificate and appends ev to the
// audit log, in one transaction. It returns ErrConflict, appending nothing,
// when the serial exists. The row and its event are durably committed when
// it returns nil.
func (db *DB) InsertCertificate(ctx context.Context, c *inventory.Certificate, ev audit.Event) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: insert certificate %s: %w", c.Serial, err)
	}
	if err := normalizeEvent(&ev); err != nil {
		return fmt.Errorf("store: insert certificate %s: %w", c.Serial, err)
	}
	r, err := db.encodeCert(c)
	if err != nil {
		return err
	}
	if db.batch != nil && r.replaces == "" {
		return db.batch.insert(ctx, r, &ev)
	}
	// The transaction outlives ctx so that a cancellation cannot land
	// between the server committing and the answer: ctx is checked last
	// before COMMIT, and after that the caller learns the real outcome.
	tx, err := db.write.BeginTx(context.WithoutCancel(ctx), nil)
	if err != nil {
		return fmt.Errorf("store: insert certificate %s: %w", r.serial, err)
	}
	defer tx.Rollback()
	if r.order != nil {
		ok, err := db.completeOrder(ctx, tx, r)
		if err != nil {
			return fmt.Errorf("store: insert certificate %s: complete ACME order %s: %w", r.serial, r.order.ID, err)
		}
		if !ok {
			// The signature is audited all the same, on its own.
			tx.Rollback()
			err := orderClaimLost(r.serial, r.order.ID)
			discard, derr := discardEvent(&ev, r)
			if derr == nil {
				derr = db.AppendAudit(context.WithoutCancel(ctx), *discard)
			}
			if derr != nil {
				return errors.Join(err, fmt.Errorf("store: audit the discarded certificate %s: %w", r.serial, derr))
			}
			return err
		}
	}
	if refused, err := db.endedSignIns(ctx, tx, []*certRow{r}); err != nil {
		return fmt.Errorf("store: insert certificate %s: %w", r.serial, err)
	} else if refused[0] != nil {
		return refused[0]
	}
	if r.replaces != "" {
		// The predecessor is renewed once: a second renewal loses here.
		res, err := tx.ExecContext(ctx, db.d.rebind(`UPDATE certificates SET renewed_by = ?, renew_retry_at = NULL, renew_error = ''
			WHERE serial = ? AND renewed_by = ''`), r.serial, r.replaces)
		if err != nil {
			return fmt.Errorf("store: insert certificate %s: mark %s renewed: %w", r.serial, r.replaces, err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			if err != nil {
				return fmt.Errorf("store: insert certificate %s: %w", r.serial, err)
			}
			return conflict("renewal of certificate", r.replaces)
		}
	}
	inserted, err := db.insertCert(ctx, tx, db.wr.in(ctx, tx, db.q.insertCert), db.wr.in(ctx, tx, db.q.insertName), r)
	if err != nil {
		// A cancellation mid-statement surfaces from the driver as a broken
		// connection; say that it was the caller's context.
		if cerr := ctx.Err(); cerr != nil {
			err = errors.Join(cerr, err)
		}
		return fmt.Errorf("store: insert certificate %s: %w", r.serial, err)
	}
	if !inserted {
		return conflict("certificate serial", r.serial)
	}
	if err := db.countInserted(ctx, tx, []*certRow{r}, nil); err != nil {
		return fmt.Errorf("store: insert certificate %s: %w", r.serial, err)
	}
	if err := db.appendAudit(ctx, tx, &ev); err != nil {
		if cerr := ctx.Err(); cerr != nil {
			err = errors.Join(cerr, err)
		}
		return fmt.Errorf("store: insert certificate %s: %w", r.serial, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: insert certificate %s: %w", r.serial, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: insert certificate %s: %w", r.serial, err)
	}
	return nil
}

// insertCert writes r and its names in tx, through the prepared statements
// when given. It reports false, writing nothing, when the serial exists.
func (db *DB) insertCert(ctx context.Context, tx *sql.Tx, certStmt, nameStmt *sql.Stmt, r *certRow) (bool, error) {
	var res sql.Result
	var err error
	if certStmt != nil {
		res, err = certStmt.ExecContext(ctx, r.args...)
	} else {
		res, err = tx.ExecContext(ctx, db.q.insertCert, r.args...)
	}
	if err != nil {
		return false, err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return false, err
	}
	if r.credential != "" {
		if _, err := tx.ExecContext(ctx, db.d.rebind(sqlInsertClientCredential), r.serial, r.credential, r.credentialToken); err != nil {
			return false, err
		}
	}
	if len(r.names) == 0 {
		return true, nil
	}
	if db.d.multiRowInsert {
		args := make([]any, 0, len(r.names)/2*3)
		for i := 0; i < len(r.names); i += 2 {
			args = append(args, r.names[i], r.names[i+1], r.serial)
		}
		q := "INSERT INTO certificate_names (kind, value, serial) VALUES " +
			strings.TrimSuffix(strings.Repeat("(?, ?, ?), ", len(r.names)/2), ", ")
		_, err := tx.ExecContext(ctx, db.d.rebind(q), args...)
		return err == nil, err
	}
	for i := 0; i < len(r.names); i += 2 {
		if nameStmt != nil {
			_, err = nameStmt.ExecContext(ctx, r.names[i], r.names[i+1], r.serial)
		} else {
			_, err = tx.ExecContext(ctx, db.q.insertName, r.names[i], r.names[i+1], r.serial)
		}
		if err != nil {
			return false, err
		}
	}
	return true, nil
}

// GetCertificate returns the certificate with the given serial, its
// Revocation set when it is revoked.
func (db *DB) GetCertificate(ctx context.Context, serial string) (*inventory.Certificate, error) {
	c, err := scanCert(db.rd.QueryRowContext(ctx, db.q.getCert, serial), new(certScan))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("certificate serial", serial)
	}
	if err != nil {
		return nil, fmt.Errorf("store: get certificate %s: %w", serial, err)
	}
	return c, nil
}

// ListCertificates returns one page of the certificates matching every
// non-zero field of f (SAN and SPKISHA256 case-insensitively), ordered by
// f.Order then serial (reversed by f.Desc), each with its Revocation when
// revoked. The next page starts after the last certificate returned
// (f.Continue). f.Limit <= 0 means DefaultListLimit;
// more than MaxListLimit is capped. Every order has an index of its key
// and the serial (migration 0020), so a page is an index range however
// deep it starts.
func (db *DB) ListCertificates(ctx context.Context, f inventory.Filter) ([]*inventory.Certificate, error) {
	var where []string
	var args []any
	key, ok := db.orderKey(f.Order)
	if !ok {
		return nil, fmt.Errorf("store: list certificates: unknown order %q", f.Order)
	}
	cmp, dir := ">", ""
	if f.Desc {
		cmp, dir = "<", " DESC"
	}
	switch {
	case f.After == "":
	case f.Order == inventory.OrderSerial:
		where = append(where, "c.serial "+cmp+" ?")
		args = append(args, f.After)
	default:
		// A row value, which both stores seek a (column, serial) index
		// by; SQLite seeks an expression's index only by the
		// expression's own bound, added for it.
		var k any = f.AfterKey
		if f.Order.Timed() {
			k = db.timeArg(f.AfterTime)
		}
		if !strings.HasPrefix(key, "c.") {
			where = append(where, key+" "+cmp+"= ?")
			args = append(args, k)
		}
		where = append(where, "("+key+", c.serial) "+cmp+" (?, ?)")
		args = append(args, k, f.After)
	}
	// Filters an index could find the rows by, grouped by the column
	// they test (group "" for those without a choice to make).
	var terms []filterTerm
	add := func(col, sql string, arg ...any) { terms = append(terms, filterTerm{col: col, sql: sql, args: arg}) }
	if f.CAID != "" {
		add("c.ca_id", "c.ca_id = ?", f.CAID)
	}
	if f.Profile != "" {
		add("c.profile", "c.profile = ?", f.Profile)
	}
	if f.Status != "" {
		add("c.status", "c.status = ?", string(f.Status))
	}
	if f.SAN != "" {
		add("", "c.serial IN (SELECT serial FROM certificate_names WHERE kind = '"+nameKindSAN+"' AND value = ?)", strings.ToLower(f.SAN))
	}
	if f.Tag != "" {
		t := tagged("?")
		t.args = []any{f.Tag}
		terms = append(terms, t)
	}
	if f.SPKISHA256 != "" {
		add("", "c.spki_sha256 = ?", strings.ToLower(f.SPKISHA256))
	}
	if f.Fingerprint != "" {
		add("", "c.fingerprint = ?", strings.ToLower(f.Fingerprint))
	}
	if f.Owner != "" {
		add("c.owner", "c.owner = ?", f.Owner)
	}
	if f.Requester != "" {
		add("c.requester", "c.requester = ?", f.Requester)
	}
	// Sources as literals, so that SQLite may use the partial index of
	// imported certificates. ACME's are issued ones tagged "acme" by a
	// requester in the reserved "acme:" namespace, tested with LIKE,
	// whose prefix PostgreSQL estimates from its histogram.
	const acmeRequester = "c.requester LIKE 'acme:%'"
	acmeTagged := tagged("'acme'")
	switch f.Source {
	case "":
	case inventory.SourceImported:
		add("", "c.source = '"+string(inventory.SourceImported)+"'")
	case inventory.SourceDiscovered:
		add("c.source", "c.source = '"+string(inventory.SourceDiscovered)+"'")
	case inventory.SourceACME:
		add("c.source", "c.source = '"+string(inventory.SourceIssued)+"'")
		add("", acmeRequester)
		terms = append(terms, acmeTagged)
	case inventory.SourceIssued:
		add("c.source", "c.source = '"+string(inventory.SourceIssued)+"'")
		add("", "NOT ("+acmeRequester+" AND "+acmeTagged.steered+")")
	default:
		return nil, fmt.Errorf("store: list certificates: unknown source %q", f.Source)
	}
	if !f.ExpiringBefore.IsZero() {
		add("c.not_after", "c.not_after < ?", db.timeArg(f.ExpiringBefore))
	}
	if !f.ExpiredAt.IsZero() {
		add("c.not_after", "c.not_after <= ? AND c.status <> '"+string(inventory.StatusRevoked)+"'", db.timeArg(f.ExpiredAt))
	}
	if !f.UnexpiredAt.IsZero() {
		add("c.not_after", "c.not_after > ?", db.timeArg(f.UnexpiredAt))
	}
	if f.Current {
		add("", "c.status <> '"+string(inventory.StatusRevoked)+"' AND c.renewed_by = ''")
	}
	if db.d.noIndex != nil {
		if err := db.steerIndexes(ctx, terms, key); err != nil {
			return nil, fmt.Errorf("store: list certificates: %w", err)
		}
	}
	for _, t := range terms {
		sql := t.sql
		switch {
		case t.skipIndex && t.steered != "":
			sql = t.steered
		case t.skipIndex:
			sql = strings.Replace(sql, t.col, db.d.noIndex(t.col), 1)
		}
		where = append(where, sql)
		args = append(args, t.args...)
	}
	limit := f.Limit
	switch {
	case limit <= 0:
		limit = DefaultListLimit
	case limit > MaxListLimit:
		limit = MaxListLimit
	}
	var b strings.Builder
	b.WriteString(db.q.certSelect)
	if len(where) > 0 {
		b.WriteString(" WHERE " + strings.Join(where, " AND "))
	}
	b.WriteString(" ORDER BY ")
	if f.Order != inventory.OrderSerial {
		b.WriteString(key + dir + ", ")
	}
	b.WriteString("c.serial" + dir + " LIMIT ?")
	args = append(args, limit)

	var q querier = db.read
	if db.d.name == "postgres" {
		// A page walks an index and stops at its LIMIT: PostgreSQL's
		// parallel workers only add their start-up to it (a tag on 1% of
		// a million certificates by name: 150 ms with two workers, 86 ms
		// without, EXPLAIN ANALYZE), so this read runs without them.
		tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
		if err != nil {
			return nil, fmt.Errorf("store: list certificates: %w", err)
		}
		defer func() { _ = tx.Rollback() }()
		if _, err := tx.ExecContext(ctx, "SET LOCAL max_parallel_workers_per_gather = 0"); err != nil {
			return nil, fmt.Errorf("store: list certificates: %w", err)
		}
		q = tx
	}
	rows, err := q.QueryContext(ctx, db.d.rebind(b.String()), args...)
	if err != nil {
		return nil, fmt.Errorf("store: list certificates: %w", err)
	}
	defer rows.Close()
	out := []*inventory.Certificate{}
	var cs certScan
	for rows.Next() {
		c, err := scanCert(rows, &cs)
		if err != nil {
			return nil, fmt.Errorf("store: list certificates: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list certificates: %w", err)
	}
	return out, nil
}

// filterTerm is one condition of a listing: col is the column whose
// index could find its rows ("" when there is no choice to make);
// steered, when set, is the condition to test row by row instead.
type filterTerm struct {
	col, sql, steered string
	args              []any
	skipIndex         bool
}

// tagged is the filter keeping certificates with tag value (a parameter
// when value is "?"): by the list of their serials, or steered, by a
// look-up per row (building the list of a common tag would cost more
// than a page).
func tagged(value string) filterTerm {
	return filterTerm{col: "c.serial",
		sql:     "c.serial IN (SELECT serial FROM certificate_names WHERE kind = '" + nameKindTag + "' AND value = " + value + ")",
		steered: "EXISTS (SELECT 1 FROM certificate_names n WHERE n.kind = '" + nameKindTag + "' AND n.value = " + value + " AND n.serial = c.serial)"}
}

// steerBound is how many rows a filter's own index may find before a
// listing in another order walks that order's index instead.
const steerBound = 2000

// steerIndexes chooses between finding a page's rows by a filter's index
// and sorting them, and walking the order's index testing each row.
// SQLite's statistics (no samples, see sqlite.Optimize) know a column's
// average rows per value, not that "valid" holds 95% of them or a tag 1%,
// and it would sort half a million rows for a page. So a group of terms
// on one column whose index finds steerBound rows or more (counted on that
// index alone, up to the bound) is tested row by row instead; one that
// finds fewer keeps its index and sorts few rows. Terms on the order's
// own column keep theirs, the index being in order; in serial order so is
// every index but expiry's (each ends in the serial, and a tag's rows
// come in serial order).
func (db *DB) steerIndexes(ctx context.Context, terms []filterTerm, orderKey string) error {
	done := map[string]bool{"": true, orderKey: true}
	for _, t := range terms {
		if done[t.col] || (orderKey == "" && t.col != "c.not_after") || db.d.noIndex(t.col) == "" {
			continue
		}
		done[t.col] = true
		var conds []string
		var args []any
		for _, u := range terms {
			if u.col == t.col {
				conds = append(conds, u.sql)
				args = append(args, u.args...)
			}
		}
		var n int
		q := "SELECT COUNT(*) FROM (SELECT 1 FROM certificates c WHERE " + strings.Join(conds, " AND ") + " LIMIT " + strconv.Itoa(db.steerBound) + ") AS x"
		if err := db.read.QueryRowContext(ctx, db.d.rebind(q), args...).Scan(&n); err != nil {
			return err
		}
		if n >= db.steerBound {
			for i := range terms {
				if terms[i].col == t.col {
					terms[i].skipIndex = true
				}
			}
		}
	}
	return nil
}

// orderKey is the SQL of order o's key, the expression its index
// (migration 0020) is built on, as inventory.Order.Key computes it; ""
// for serial order.
func (db *DB) orderKey(o inventory.Order) (string, bool) {
	switch o {
	case inventory.OrderSerial:
		return "", true
	case inventory.OrderExpiry:
		return "c.not_after", true
	case inventory.OrderIssued:
		return "c.not_before", true
	case inventory.OrderName:
		return db.d.firstName, true
	case inventory.OrderCA:
		return "c.ca_id", true
	case inventory.OrderProfile:
		return "c.profile", true
	case inventory.OrderStatus:
		return "(c.status || '')", true
	case inventory.OrderSource:
		return "(c.source || '')", true
	}
	return "", false
}

// CountCertificates returns how many certificates caID issued; an empty
// caID counts all certificates.
func (db *DB) CountCertificates(ctx context.Context, caID string) (int, error) {
	q, args := "SELECT COUNT(*) FROM certificates", []any(nil)
	if caID != "" {
		q, args = db.d.rebind(q+" WHERE ca_id = ?"), []any{caID}
	}
	var n int
	if err := db.read.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count certificates of CA %q: %w", caID, err)
	}
	return n, nil
}

// certScan is scanCert's scratch row, reused across the rows of one query
// so that the scan destinations are built once.
type certScan struct {
	c                      inventory.Certificate
	sans, tags, lint       []byte
	status                 string
	mkProvider, mkID, mkAl sql.NullString
	mkBlob                 []byte
	source, kind           string
	chain                  []byte
	rev                    nullRevScan
	dest                   []any
}

// certDest returns scan destinations for certColumns.
func (cs *certScan) certDest() []any {
	x := &cs.c
	return []any{&x.Serial, &x.CAID, &x.Profile, &x.Requester, &x.Subject, &cs.sans,
		timeScan{&x.NotBefore}, timeScan{&x.NotAfter}, &x.KeyAlgorithm, &x.KeyBits,
		&x.SignatureAlgorithm, &cs.status, &x.Fingerprint, &x.SPKISHA256, &cs.tags, &cs.lint, &x.DER,
		&cs.mkProvider, &cs.mkID, &cs.mkAl, &cs.mkBlob, timeScan{&x.CreatedAt}, (*zeroTime)(&x.RenewNowAt),
		&cs.source, &x.Owner, &x.Issuer, &x.IssuerSerial, &cs.chain, &x.AutoRenew, &x.Replaces, &x.RenewedBy, &cs.kind,
		&x.RenewFailures, (*zeroTime)(&x.RenewRetryAt), &x.RenewError, (*zeroTime)(&x.SupersedeAt), &x.RequesterID}
}

// zeroTime reads a nullable time column, NULL as the zero time, through a
// pointer into the destination: nullable (reports.go) can then zero it.
type zeroTime time.Time

func (z *zeroTime) Scan(src any) error { return zeroTimeScan{(*time.Time)(z)}.Scan(src) }

// scanCert reads certColumns then revColumns (NULLs when not revoked).
func scanCert(s scanner, cs *certScan) (*inventory.Certificate, error) {
	if cs.dest == nil {
		cs.dest = append(cs.certDest(), cs.rev.dest()...)
	}
	if err := s.Scan(cs.dest...); err != nil {
		return nil, err
	}
	return cs.build()
}

// build returns a new certificate from the scanned row.
func (cs *certScan) build() (*inventory.Certificate, error) {
	c := cs.c
	c.Status = inventory.Status(cs.status)
	c.Source = inventory.Source(cs.source)
	c.RenewalKind = inventory.RenewalKind(cs.kind)
	c.Chain = nil
	if len(cs.chain) > 0 {
		if err := json.Unmarshal(cs.chain, &c.Chain); err != nil {
			return nil, fmt.Errorf("certificate %s chain: %w", c.Serial, err)
		}
		if len(c.Chain) == 0 {
			c.Chain = nil
		}
	}
	for _, l := range []struct {
		raw []byte
		dst *[]string
	}{{cs.sans, &c.SANs}, {cs.tags, &c.Tags}, {cs.lint, &c.LintWarnings}} {
		if err := json.Unmarshal(l.raw, l.dst); err != nil {
			return nil, fmt.Errorf("certificate %s: %w", c.Serial, err)
		}
		if *l.dst == nil {
			*l.dst = []string{}
		}
	}
	if cs.mkProvider.Valid {
		c.ManagedKey = &keys.Ref{
			Provider:  cs.mkProvider.String,
			ID:        cs.mkID.String,
			Algorithm: pki.KeyAlgorithm(cs.mkAl.String),
			Blob:      nilIfEmpty(cs.mkBlob),
		}
	}
	c.Revocation = cs.rev.revocation()
	return &c, nil
}

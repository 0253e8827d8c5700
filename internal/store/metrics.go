package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/inventory"
)

// Certificate counts by state, as CertificateCounts reports them.
const (
	CountValid     = "valid"      // not revoked, not expired
	CountExpired   = "expired"    // not revoked, expired
	CountRevoked   = "revoked"    // revoked, expired or not
	CountImported  = "imported"   // valid and imported
	CountAutoRenew = "auto_renew" // valid, renewed automatically, not yet renewed
)

// EachExpiry calls fn for up to limit certificates that are not revoked,
// have not been renewed (renewed_by is empty) and expire after
// notAfterFrom, soonest first (ties by serial). It walks the not_after
// index, so its cost grows with limit, not with the inventory. An error
// from fn stops the walk and is returned wrapped.
func (db *DB) EachExpiry(ctx context.Context, notAfterFrom time.Time, limit int, fn func(inventory.ExpiryRow) error) error {
	if limit <= 0 {
		return fmt.Errorf("store: certificate expiry: limit %d must be positive", limit)
	}
	first := "COALESCE(json_extract(sans, '$[0]'), '')"
	if db.d.numbered {
		first = "COALESCE(sans->>0, '')"
	}
	q := db.d.rebind(`SELECT serial, ca_id, profile, ` + first + `, subject, not_after FROM certificates
		WHERE not_after > ? AND status <> '` + string(inventory.StatusRevoked) + `' AND renewed_by = ''
		ORDER BY not_after, serial LIMIT ?`)
	rows, err := db.read.QueryContext(ctx, q, db.timeArg(notAfterFrom), limit)
	if err != nil {
		return fmt.Errorf("store: certificate expiry: %w", err)
	}
	defer rows.Close()
	var (
		r       inventory.ExpiryRow
		subject string
		dest    = []any{&r.Serial, &r.CAID, &r.Profile, &r.Name, &subject, timeScan{&r.NotAfter}}
	)
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("store: certificate expiry: %w", err)
		}
		if r.Name == "" {
			r.Name = commonName(subject)
		}
		if err := fn(r); err != nil {
			return fmt.Errorf("store: certificate expiry: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: certificate expiry: %w", err)
	}
	return nil
}

// CertificateCounts returns how many certificates are in each state at
// now, keyed by CountValid, CountExpired, CountRevoked, CountImported and
// CountAutoRenew; every key is present. Valid, expired and revoked
// partition the inventory; imported and auto_renew are subsets of valid.
//
// One statement, three plans: the partition is counted from an index
// holding status and not_after (never the table, whose rows carry the
// DER); auto_renew from the renewal job's partial index; imported from a
// partial index on source = 'imported' when the schema has one, else a
// table scan.
func (db *DB) CertificateCounts(ctx context.Context, now time.Time) (map[string]int, error) {
	const notRevoked = `status <> '` + string(inventory.StatusRevoked) + `'`
	// The renewal job's partial index is usable only when the query
	// repeats its predicate as written.
	autoRenew := "auto_renew = 1 AND renewed_by = ''"
	if db.d.name == postgresDialect.name {
		autoRenew = "auto_renew AND renewed_by = ''"
	}
	q := db.d.rebind(`SELECT v.valid, v.expired, v.revoked,
		(SELECT COUNT(*) FROM certificates WHERE source = '` + string(inventory.SourceImported) + `' AND not_after > ? AND ` + notRevoked + `),
		(SELECT COUNT(*) FROM certificates WHERE ` + autoRenew + ` AND not_after > ? AND ` + notRevoked + `)
		FROM (SELECT
			COALESCE(SUM(CASE WHEN ` + notRevoked + ` AND not_after > ? THEN 1 ELSE 0 END), 0) AS valid,
			COALESCE(SUM(CASE WHEN ` + notRevoked + ` AND not_after <= ? THEN 1 ELSE 0 END), 0) AS expired,
			COALESCE(SUM(CASE WHEN ` + notRevoked + ` THEN 0 ELSE 1 END), 0) AS revoked
			FROM certificates) AS v`)
	t := db.timeArg(now)
	var valid, expired, revoked, imported, auto int64
	if err := db.read.QueryRowContext(ctx, q, t, t, t, t).Scan(&valid, &expired, &revoked, &imported, &auto); err != nil {
		return nil, fmt.Errorf("store: count certificates by state: %w", err)
	}
	return map[string]int{
		CountValid: int(valid), CountExpired: int(expired), CountRevoked: int(revoked),
		CountImported: int(imported), CountAutoRenew: int(auto),
	}, nil
}

// commonName returns the value of the first CN attribute of an RFC 4514
// distinguished name as pkix.Name.String writes it ("CN=a\,b,O=x"), or ""
// when there is none.
func commonName(dn string) string {
	for dn != "" {
		var attr string
		attr, dn = nextAttr(dn)
		if typ, val, ok := strings.Cut(attr, "="); ok && strings.EqualFold(strings.TrimSpace(typ), "CN") {
			return unescapeDN(val)
		}
	}
	return ""
}

// nextAttr splits off the first type=value pair of dn, at the first
// unescaped ',' or '+'.
func nextAttr(dn string) (attr, rest string) {
	for i := 0; i < len(dn); i++ {
		switch dn[i] {
		case '\\':
			i++ // skip the escaped character
		case ',', '+':
			return dn[:i], dn[i+1:]
		}
	}
	return dn, ""
}

// unescapeDN undoes RFC 4514 escaping: \c for a special character and \hh
// for a byte.
func unescapeDN(v string) string {
	if !strings.Contains(v, `\`) {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] != '\\' || i+1 >= len(v) {
			b.WriteByte(v[i])
			continue
		}
		if i+2 < len(v) && isHex(v[i+1]) && isHex(v[i+2]) {
			b.WriteByte(unhex(v[i+1])<<4 | unhex(v[i+2]))
			i += 2
			continue
		}
		b.WriteByte(v[i+1])
		i++
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	default:
		return c - 'a' + 10
	}
}

// expiryDay is t's expiry_day: whole UTC days since 1970, rounded down.
func expiryDay(t time.Time) int64 {
	d := t.Unix() / 86400
	if t.Unix()%86400 < 0 {
		d--
	}
	return d
}

// InventoryCounts returns the risk summary at now (inventory.Counts) with
// one count per bound (ascending, each after now). Whole days come from
// certificate_counts, which triggers keep in step with every write to
// certificates; the parts of days at either end of a window (today
// before and after now, and a bound's own day up to the bound) are
// counted exactly from the not_after index. Its cost grows with the
// number of CA × profile × day combinations and with the certificates of
// those few partial days, not with the inventory.
func (db *DB) InventoryCounts(ctx context.Context, now time.Time, bounds []time.Time) (inventory.Counts, error) {
	var out inventory.Counts
	day0 := expiryDay(now)
	notRenewed := "renewed = 0"
	if db.d.numbered {
		notRenewed = "NOT renewed"
	}
	sel := []string{
		"COALESCE(SUM(CASE WHEN status = 'valid' AND expiry_day > ? THEN n ELSE 0 END), 0)",
		"COALESCE(SUM(CASE WHEN status = 'valid' AND expiry_day < ? THEN n ELSE 0 END), 0)",
		"COALESCE(SUM(CASE WHEN status = 'revoked' THEN n ELSE 0 END), 0)",
	}
	args := []any{day0, day0}
	for i, b := range bounds {
		if !b.After(now) || i > 0 && b.Before(bounds[i-1]) {
			return out, fmt.Errorf("store: inventory counts: bounds must be after now and ascending")
		}
		sel = append(sel, "COALESCE(SUM(CASE WHEN status = 'valid' AND "+notRenewed+" AND expiry_day > ? AND expiry_day < ? THEN n ELSE 0 END), 0)")
		args = append(args, day0, expiryDay(b))
	}
	vals := make([]int64, len(sel))
	dest := make([]any, len(sel))
	for i := range vals {
		dest[i] = &vals[i]
	}
	q := db.d.rebind(`SELECT ` + strings.Join(sel, ", ") + ` FROM certificate_counts`)
	if err := db.read.QueryRowContext(ctx, q, args...).Scan(dest...); err != nil {
		return out, fmt.Errorf("store: inventory counts: %w", err)
	}
	out.Valid, out.Expired, out.Revoked = int(vals[0]), int(vals[1]), int(vals[2])
	out.Expiring = make([]int, len(bounds))
	for i := range bounds {
		out.Expiring[i] = int(vals[3+i])
	}

	// Today, on either side of now.
	var later, earlier, laterNotRenewed int64
	today := db.d.rebind(`SELECT
		COALESCE(SUM(CASE WHEN not_after > ? THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN not_after <= ? THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN not_after > ? AND renewed_by = '' THEN 1 ELSE 0 END), 0)
		FROM certificates WHERE not_after >= ? AND not_after < ? AND status = 'valid'`)
	t := db.timeArg(now)
	if err := db.read.QueryRowContext(ctx, today, t, t, t, db.timeArg(dayStart(day0)), db.timeArg(dayStart(day0+1))).Scan(&later, &earlier, &laterNotRenewed); err != nil {
		return out, fmt.Errorf("store: inventory counts: %w", err)
	}
	out.Valid += int(later)
	out.Expired += int(earlier)

	// Each bound's own day, up to the bound (or, for a bound today, the
	// part of today up to it).
	part := db.d.rebind(`SELECT COUNT(*) FROM certificates
		WHERE not_after > ? AND not_after <= ? AND status = 'valid' AND renewed_by = ''`)
	for i, b := range bounds {
		from := dayStart(expiryDay(b))
		if expiryDay(b) == day0 {
			from = now
		} else {
			out.Expiring[i] += int(laterNotRenewed)
			from = from.Add(-time.Microsecond) // not_after > from: the day's first instant included
		}
		var n int64
		if err := db.read.QueryRowContext(ctx, part, db.timeArg(from), db.timeArg(b)).Scan(&n); err != nil {
			return out, fmt.Errorf("store: inventory counts: %w", err)
		}
		out.Expiring[i] += int(n)
	}
	return out, nil
}

// CountsByCA returns how many certificates each CA issued (any status),
// from certificate_counts: its cost grows with the CAs, profiles and days
// of expiry, not with the inventory.
func (db *DB) CountsByCA(ctx context.Context) (map[string]int, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT ca_id, SUM(n) FROM certificate_counts GROUP BY ca_id`)
	if err != nil {
		return nil, fmt.Errorf("store: counts by CA: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n int64
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("store: counts by CA: %w", err)
		}
		out[id] = int(n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: counts by CA: %w", err)
	}
	return out, nil
}

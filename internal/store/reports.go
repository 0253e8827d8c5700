package store

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"reflect"
	"time"

	"github.com/certwright/certwright/internal/inventory"
)

// EachIssued calls fn for the certificates whose created_at is in [since,
// until) (a zero until: no upper bound), ordered by created_at then serial,
// each with its Revocation when revoked. Each call gets a new certificate.
// The rows stream from one query; an error from fn stops the scan and is
// returned as is.
func (db *DB) EachIssued(ctx context.Context, since, until time.Time, fn func(*inventory.Certificate) error) error {
	q, args := db.q.certSelect+` WHERE c.created_at >= ?`, []any{db.timeArg(since)}
	if !until.IsZero() {
		q += ` AND c.created_at < ?`
		args = append(args, db.timeArg(until))
	}
	wrap := func(err error) error {
		return fmt.Errorf("store: certificates issued between %s and %s: %w", since.Format(time.RFC3339), until.Format(time.RFC3339), err)
	}
	rows, err := db.read.QueryContext(ctx, db.d.rebind(q+` ORDER BY c.created_at, c.serial`), args...)
	if err != nil {
		return wrap(err)
	}
	defer rows.Close()
	var cs certScan
	for rows.Next() {
		c, err := scanCert(rows, &cs)
		if err != nil {
			return wrap(err)
		}
		if err := fn(c); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return wrap(err)
	}
	return nil
}

// EachRevokedBetween calls fn for the revocations whose revoked_at is in
// [since, until) (a zero until: no upper bound), ordered by revoked_at then
// serial. cert is the revoked certificate's row, its Revocation set, or nil
// for the revocation of a CA's certificate. Each call gets new values. The
// rows stream from one query; an error from fn stops the scan and is
// returned as is.
func (db *DB) EachRevokedBetween(ctx context.Context, since, until time.Time, fn func(r *inventory.Revocation, cert *inventory.Certificate) error) error {
	q := `SELECT ` + qualify("r", revColumns) + `, ` + qualify("c", certColumns) + `
		FROM revocations r LEFT JOIN certificates c ON c.serial = r.serial AND NOT r.ca
		WHERE r.revoked_at >= ?`
	args := []any{db.timeArg(since)}
	if !until.IsZero() {
		q += ` AND r.revoked_at < ?`
		args = append(args, db.timeArg(until))
	}
	wrap := func(err error) error {
		return fmt.Errorf("store: revocations between %s and %s: %w", since.Format(time.RFC3339), until.Format(time.RFC3339), err)
	}
	rows, err := db.read.QueryContext(ctx, db.d.rebind(q+` ORDER BY r.revoked_at, r.serial`), args...)
	if err != nil {
		return wrap(err)
	}
	defer rows.Close()
	var (
		r    inventory.Revocation
		cs   certScan
		dest = revDest(&r)
	)
	// The certificate's columns are all NULL for a CA's revocation.
	for _, d := range cs.certDest() {
		dest = append(dest, nullable{d})
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return wrap(err)
		}
		rec := r
		var cert *inventory.Certificate
		if cs.c.Serial != "" {
			if cert, err = cs.build(); err != nil {
				return wrap(err)
			}
			rc := r
			cert.Revocation = &rc
		}
		if err := fn(&rec, cert); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return wrap(err)
	}
	return nil
}

// nullable scans a column that may be NULL into dst, one of the scan
// destinations certDest returns: NULL sets dst's zero value.
type nullable struct{ dst any }

func (n nullable) Scan(src any) error {
	if t, ok := n.dst.(timeScan); ok {
		if src == nil {
			*t.dst = time.Time{}
			return nil
		}
		return t.Scan(src)
	}
	v := reflect.ValueOf(n.dst).Elem()
	if src == nil {
		v.SetZero()
		return nil
	}
	if s, ok := n.dst.(sql.Scanner); ok {
		return s.Scan(src)
	}
	switch v.Kind() {
	case reflect.String:
		switch s := src.(type) {
		case string:
			v.SetString(s)
			return nil
		case []byte:
			v.SetString(string(s))
			return nil
		}
	case reflect.Int, reflect.Int64, reflect.Int32:
		if i, ok := src.(int64); ok {
			v.SetInt(i)
			return nil
		}
	case reflect.Bool:
		switch b := src.(type) {
		case bool:
			v.SetBool(b)
			return nil
		case int64:
			v.SetBool(b != 0)
			return nil
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			switch b := src.(type) {
			case []byte:
				v.SetBytes(bytes.Clone(b))
				return nil
			case string:
				v.SetBytes([]byte(b))
				return nil
			}
		}
	}
	return fmt.Errorf("store: cannot scan a %T column value into %s", src, v.Type())
}

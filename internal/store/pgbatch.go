package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
)

// On PostgreSQL a group commit writes all its certificates with one
// statement, their names with another and their audit events with a third,
// instead of a round trip (and a statement's start-up in the server) per
// row. Each statement takes one array per column and unnests them, so its
// text is the same whatever the batch size and pgx prepares it once per
// connection.

// Column types on PostgreSQL, in certColumns order. jsonb columns travel as
// text and are cast in the SELECT.
var certColumnTypes = [...]string{
	"text", "text", "text", "text", "text", "jsonb", "timestamptz", "timestamptz", "text",
	"int4", "text", "text", "text", "text", "jsonb", "jsonb", "bytea",
	"text", "text", "text", "bytea", "timestamptz", "timestamptz",
	"text", "text", "text", "text", "jsonb", "bool", "text", "text", "text",
	"int4", "timestamptz", "text", "timestamptz", "text",
}

// auditColumnTypes are the PostgreSQL types of auditColumns.
var auditColumnTypes = [...]string{
	"int8", "timestamptz", "text", "text", "text", "text", "text", "text", "text", "bytea", "bytea", "text",
}

// unnestInsert returns INSERT INTO table (columns) SELECT ... FROM
// unnest($1::type[], ...), then tail: one array parameter per column.
func unnestInsert(table, columns string, types []string, tail string) string {
	var params, sel strings.Builder
	for i, t := range types {
		if i > 0 {
			params.WriteString(", ")
			sel.WriteString(", ")
		}
		n := strconv.Itoa(i + 1)
		at := t
		if t == "jsonb" {
			at = "text"
		}
		params.WriteString("$" + n + "::" + at + "[]")
		sel.WriteString("c" + n)
		if t == "jsonb" {
			sel.WriteString("::jsonb")
		}
	}
	names := make([]string, len(types))
	for i := range names {
		names[i] = "c" + strconv.Itoa(i+1)
	}
	return `INSERT INTO ` + table + ` (` + columns + `) SELECT ` + sel.String() +
		` FROM unnest(` + params.String() + `) AS u(` + strings.Join(names, ", ") + `)` + tail
}

var (
	pgInsertCerts = unnestInsert("certificates", certColumns, certColumnTypes[:],
		` ON CONFLICT (serial) DO NOTHING RETURNING serial`)
	pgInsertNames  = unnestInsert("certificate_names", "kind, value, serial", []string{"text", "text", "text"}, "")
	pgInsertEvents = unnestInsert("audit_events", auditColumns, auditColumnTypes[:], "")
)

// columnsOf transposes rows of values into one array per column.
func columnsOf(n, width int, row func(i int) []any) []any {
	cols := make([][]any, width)
	for j := range cols {
		cols[j] = make([]any, n)
	}
	for i := range n {
		for j, v := range row(i) {
			cols[j][i] = v
		}
	}
	out := make([]any, width)
	for j := range cols {
		out[j] = cols[j]
	}
	return out
}

// insertCertsPG writes rows in tx with one statement per table and
// reports, for each, whether it was written: false for a serial that
// exists, or that an earlier row of rows takes.
func (db *DB) insertCertsPG(ctx context.Context, tx *sql.Tx, rows []*certRow) ([]bool, error) {
	res, err := tx.QueryContext(ctx, pgInsertCerts, columnsOf(len(rows), len(certColumnTypes), func(i int) []any { return rows[i].args })...)
	if err != nil {
		return nil, err
	}
	written := make(map[string]bool, len(rows))
	for res.Next() {
		var serial string
		if err := res.Scan(&serial); err != nil {
			res.Close()
			return nil, err
		}
		written[serial] = true
	}
	if err := res.Err(); err != nil {
		return nil, err
	}
	inserted := make([]bool, len(rows))
	var kinds, values, serials []any
	for i, r := range rows {
		if !written[r.serial] {
			continue
		}
		delete(written, r.serial) // a later row with the serial lost
		inserted[i] = true
		if r.credential != "" {
			if _, err := tx.ExecContext(ctx, db.d.rebind(sqlInsertClientCredential), r.serial, r.credential, r.credentialToken); err != nil {
				return nil, err
			}
		}
		for k := 0; k < len(r.names); k += 2 {
			kinds, values, serials = append(kinds, r.names[k]), append(values, r.names[k+1]), append(serials, r.serial)
		}
	}
	if len(kinds) > 0 {
		if _, err := tx.ExecContext(ctx, pgInsertNames, kinds, values, serials); err != nil {
			return nil, fmt.Errorf("names: %w", err)
		}
	}
	return inserted, nil
}

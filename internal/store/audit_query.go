package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/certwright/certwright/internal/audit"
)

// FindAuditEvents returns up to q.Limit events matching q, newest first.
// An exact target, principal or action reads its index (target, seq),
// (principal, seq) or (action, seq); a time range reads (time, seq),
// newest first; the action
// prefix is checked on the rows read, so a query with only a prefix should
// set q.Floor to bound the read.
func (db *DB) FindAuditEvents(ctx context.Context, q audit.Query) ([]*audit.Event, error) {
	if q.Limit <= 0 {
		return nil, fmt.Errorf("store: audit events: a limit is required")
	}
	var where []string
	var args []any
	add := func(cond string, v any) {
		where = append(where, cond)
		args = append(args, v)
	}
	// The first exact column set (target, principal, action) picks the
	// index; the others are compared as expressions (col || ''), which no
	// index serves, so SQLite cannot pick a less selective one.
	indexed := ""
	for _, c := range []struct{ col, v string }{{"target", q.Target}, {"principal", q.Principal}, {"action", q.Action}} {
		switch {
		case c.v == "":
		case indexed == "":
			indexed = c.col
			add(c.col+" = ?", c.v)
		default:
			add(c.col+" || '' = ?", c.v)
		}
	}
	if q.ActionPrefix != "" {
		add("substr(action, 1, ?) = ?", len(q.ActionPrefix))
		args = append(args, q.ActionPrefix)
	}
	if !q.Since.IsZero() {
		add("time >= ?", db.timeArg(q.Since))
	}
	if !q.Until.IsZero() {
		add("time < ?", db.timeArg(q.Until))
	}
	if q.Before > 0 {
		add("seq < ?", q.Before)
	}
	if q.Floor > 0 {
		add("seq >= ?", q.Floor)
	}
	sqlq := `SELECT ` + auditColumns + ` FROM audit_events`
	if len(where) > 0 {
		sqlq += ` WHERE ` + strings.Join(where, ` AND `)
	}
	// The order names the index to walk, from its newest end (an exact
	// column first: constant, it leaves the order by seq), so that SQLite
	// does not walk the whole log by seq instead.
	order := ` ORDER BY seq DESC`
	switch {
	case indexed != "":
		order = ` ORDER BY ` + indexed + ` DESC, seq DESC`
	case !q.Since.IsZero() || !q.Until.IsZero():
		order = ` ORDER BY time DESC, seq DESC`
	}
	args = append(args, q.Limit)
	var out []*audit.Event
	err := db.eachAudit(ctx, db.read, db.d.rebind(sqlq+order+` LIMIT ?`), args, func(ev *audit.Event) error {
		c := *ev
		c.Details = append([]byte(nil), ev.Details...)
		c.PrevHash = append([]byte(nil), ev.PrevHash...)
		c.Hash = append([]byte(nil), ev.Hash...)
		out = append(out, &c)
		return nil
	}, func(err error) error {
		return fmt.Errorf("store: audit events: %w", err)
	})
	return out, err
}

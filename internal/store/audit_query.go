package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/certwright/certwright/internal/audit"
)

// FindAuditEvents returns up to q.Limit events matching q, newest first.
// An exact principal, target or action reads its index (principal, seq),
// (target, seq) or (action, seq); a time range reads (time, seq), newest first; the action
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
	if q.Principal != "" {
		add("principal = ?", q.Principal)
	}
	if q.Target != "" {
		add("target = ?", q.Target)
	}
	if q.Action != "" {
		add("action = ?", q.Action)
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
	// With a time range and no exact match, walk the time index from its
	// newest end; otherwise seq order serves every index named above.
	order := ` ORDER BY seq DESC`
	if (!q.Since.IsZero() || !q.Until.IsZero()) && q.Principal == "" && q.Target == "" && q.Action == "" {
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

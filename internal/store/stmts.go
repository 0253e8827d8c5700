package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// prepared runs the hot statements of one pool through statements
// prepared once, at Open, instead of parsing their SQL on every call.
//
// Only SQLite needs it: pgx already prepares each statement once per
// connection and reuses it (its statement cache), so on PostgreSQL the
// set is empty and every call goes to the pool as written. On SQLite a
// *sql.Stmt holds one compiled statement per connection of the pool,
// compiled on the connection's first use and kept while it lives.
//
// The set is fixed before any caller runs and never changes, so lookups
// take no lock. A query not in the set goes to the pool as it is: a
// rarely used or built-at-run-time query costs what it did.
type prepared struct {
	pool  *sql.DB
	stmts map[string]*sql.Stmt
}

// prepare prepares qs on pool (nothing when on is false). It must run
// before the pool is used concurrently: on the single-connection SQLite
// write pool, preparing inside a transaction would wait for the
// connection the transaction holds.
func prepare(ctx context.Context, pool *sql.DB, on bool, qs ...string) (*prepared, error) {
	p := &prepared{pool: pool, stmts: make(map[string]*sql.Stmt, len(qs))}
	if !on {
		return p, nil
	}
	for _, q := range qs {
		if _, ok := p.stmts[q]; ok {
			continue
		}
		s, err := pool.PrepareContext(ctx, q)
		if err != nil {
			p.close()
			return nil, fmt.Errorf("store: prepare: %w", err)
		}
		p.stmts[q] = s
	}
	return p, nil
}

// close closes every statement. Queries in flight finish first
// (database/sql defers the close of a statement in use).
func (p *prepared) close() error {
	var errs []error
	for _, s := range p.stmts {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}

// QueryRowContext is the pool's, through q's statement when prepared.
func (p *prepared) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	if s, ok := p.stmts[q]; ok {
		return s.QueryRowContext(ctx, args...)
	}
	return p.pool.QueryRowContext(ctx, q, args...)
}

// QueryContext is the pool's, through q's statement when prepared.
func (p *prepared) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if s, ok := p.stmts[q]; ok {
		return s.QueryContext(ctx, args...)
	}
	return p.pool.QueryContext(ctx, q, args...)
}

// ExecContext is the pool's, through q's statement when prepared.
func (p *prepared) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if s, ok := p.stmts[q]; ok {
		return s.ExecContext(ctx, args...)
	}
	return p.pool.ExecContext(ctx, q, args...)
}

// in returns q's statement bound to tx, a transaction of the pool, or nil
// when q is not prepared. The statement is closed with tx.
func (p *prepared) in(ctx context.Context, tx *sql.Tx, q string) *sql.Stmt {
	if s, ok := p.stmts[q]; ok {
		return tx.StmtContext(ctx, s)
	}
	return nil
}

// tx returns the statements of the pool bound to its transaction tx.
func (p *prepared) tx(tx *sql.Tx) preparedTx { return preparedTx{p: p, tx: tx} }

// preparedTx runs statements in a transaction, through the prepared ones
// when prepared.
type preparedTx struct {
	p  *prepared
	tx *sql.Tx
}

// ExecContext is tx's, through q's statement when prepared.
func (t preparedTx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if s := t.p.in(ctx, t.tx, q); s != nil {
		return s.ExecContext(ctx, args...)
	}
	return t.tx.ExecContext(ctx, q, args...)
}

// QueryRowContext is tx's, through q's statement when prepared.
func (t preparedTx) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	if s := t.p.in(ctx, t.tx, q); s != nil {
		return s.QueryRowContext(ctx, args...)
	}
	return t.tx.QueryRowContext(ctx, q, args...)
}

// bind returns q bound to the transaction, for executing it several times.
func (t preparedTx) bind(ctx context.Context, q string) boundStmt {
	return boundStmt{s: t.p.in(ctx, t.tx, q), tx: t.tx, q: q}
}

// boundStmt is a statement of a transaction: prepared, or its text when
// it is not.
type boundStmt struct {
	s  *sql.Stmt
	tx *sql.Tx
	q  string
}

// ExecContext executes the statement with args.
func (b boundStmt) ExecContext(ctx context.Context, args ...any) (sql.Result, error) {
	if b.s != nil {
		return b.s.ExecContext(ctx, args...)
	}
	return b.tx.ExecContext(ctx, b.q, args...)
}

// execBoundAffected executes b with args and returns the rows it affected.
func execBoundAffected(ctx context.Context, b boundStmt, args ...any) (int64, error) {
	res, err := b.ExecContext(ctx, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

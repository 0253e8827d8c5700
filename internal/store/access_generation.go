package store

import (
	"context"
	"database/sql"
	"sync/atomic"
)

// AccessGeneration changes after every change this process commits (or
// tries to) to API tokens, principals, client-certificate identities,
// custom roles, role bindings or SCEP provisioners. The authenticator's
// token cache (authz.Store) and the SCEP service's provisioner and
// principal caches (scep.Store) drop what they hold when it changes.
func (db *DB) AccessGeneration() uint64 { return db.accessGen.Load() }

// accessTx is inTx for every write to the tables authentication reads
// (principals, api_tokens, principal_identities, roles, role_bindings)
// and to scep_provisioners, bar the last-used time of a token. The generation moves after the
// transaction has ended, committed or not, so that an authentication that
// read the generation before the change and the rows before the commit
// cannot keep what it read: it carries the old generation.
// TestAccessWritesUseAccessTx fails for a write to those tables that
// does not go through here.
func (db *DB) accessTx(ctx context.Context, fn func(*sql.Tx) error) error {
	return db.genTx(ctx, &db.accessGen, noticeAccess, fn)
}

// genTx is inTx that moves gen once the transaction has ended, committed
// or not: the shape of accessTx, acmeTx and compromisedTx, whose names the
// source tests look for. The transaction also tells the other processes
// (a notice of kind, notify.go), whose listeners move their gen when it
// commits.
func (db *DB) genTx(ctx context.Context, gen *atomic.Uint64, kind NoticeKind, fn func(*sql.Tx) error) error {
	defer gen.Add(1)
	return db.inTx(ctx, func(tx *sql.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return db.notifyTx(ctx, tx, Notice{Kind: kind})
	})
}

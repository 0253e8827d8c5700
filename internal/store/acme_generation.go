package store

import (
	"context"
	"database/sql"
)

// ACMEGeneration changes after every change this process commits (or
// tries to) to ACME provisioners, accounts or external account keys:
// what resolving a request's account reads. The ACME service's account
// cache drops what it holds when it changes (acme.Store).
func (db *DB) ACMEGeneration() uint64 { return db.acmeGen.Load() }

// acmeTx is inTx for every write to the tables ACME account resolution
// reads (acme_provisioners, acme_accounts, acme_eab_keys). The generation
// moves after the transaction has ended, committed or not, so that a
// resolution that read the generation before the change and the rows
// before the commit cannot keep what it read: it carries the old
// generation. TestACMEWritesUseACMETx fails for a write to those tables
// that does not go through here.
func (db *DB) acmeTx(ctx context.Context, fn func(*sql.Tx) error) error {
	return db.genTx(ctx, &db.acmeGen, noticeACME, fn)
}

package store

import (
	"context"
	"database/sql"
)

// ESTGeneration changes after every change this process commits (or
// tries to) to EST provisioners, and when another replica's change is
// announced: the EST service's provisioner cache drops what it holds when
// it changes (est.Store).
func (db *DB) ESTGeneration() uint64 { return db.estGen.Load() }

// estTx is inTx for every write to est_provisioners, moving the
// generation after the transaction has ended, committed or not (see
// acmeTx).
func (db *DB) estTx(ctx context.Context, fn func(*sql.Tx) error) error {
	return db.genTx(ctx, &db.estGen, noticeEST, fn)
}

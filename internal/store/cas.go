package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/pki"
)

// CreateCA stores a new CA and appends ev to the audit log, in one
// transaction. It returns ErrConflict when the ID or the name is taken (a
// purged CA's name is free again).
func (db *DB) CreateCA(ctx context.Context, c *ca.CA, ev audit.Event) error {
	if c.ID == "" || c.Name == "" {
		return errors.New("store: create CA: ID and name are required")
	}
	if err := normalizeEvent(&ev); err != nil {
		return fmt.Errorf("store: create CA %q: %w", c.ID, err)
	}
	args, err := db.caArgs(c)
	if err != nil {
		return err
	}
	err = db.caTx(ctx, func(tx *sql.Tx) ([]string, error) {
		n, err := execAffected(ctx, tx, db.q.insertCA, append([]any{c.ID}, args...)...)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, fmt.Errorf("%w: CA with ID %q or name %q", ErrConflict, c.ID, c.Name)
		}
		return []string{c.ID}, db.appendAudit(ctx, tx, &ev)
	})
	if err != nil {
		return fmt.Errorf("store: create CA %q: %w", c.ID, err)
	}
	return nil
}

// UpdateCA replaces every column of the CA with c.ID and appends ev to the
// audit log, in one transaction. It returns ErrNotFound for an unknown ID
// and ErrConflict when the new name is another CA's.
func (db *DB) UpdateCA(ctx context.Context, c *ca.CA, ev audit.Event) error {
	if err := normalizeEvent(&ev); err != nil {
		return fmt.Errorf("store: update CA %q: %w", c.ID, err)
	}
	args, err := db.caArgs(c)
	if err != nil {
		return err
	}
	err = db.caTx(ctx, func(tx *sql.Tx) ([]string, error) {
		n, err := execAffected(ctx, tx, db.q.updateCA, append(args, c.ID)...)
		if db.d.uniqueViolation(err) {
			return nil, conflict("CA name", c.Name)
		}
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, notFound("CA", c.ID)
		}
		return []string{c.ID}, db.appendAudit(ctx, tx, &ev)
	})
	if err != nil {
		return fmt.Errorf("store: update CA %q: %w", c.ID, err)
	}
	return nil
}

// caArgs returns the column values after id, in caColumns order.
func (db *DB) caArgs(c *ca.CA) ([]any, error) {
	chain, err := json.Marshal(nonNilChain(c.ChainDER))
	if err != nil {
		return nil, fmt.Errorf("store: CA %q chain: %w", c.ID, err)
	}
	return []any{
		c.Name, string(c.Kind), c.ParentID, c.External, string(c.Status),
		c.Key.Provider, c.Key.ID, string(c.Key.Algorithm), nilIfEmpty(c.Key.Blob),
		nilIfEmpty(c.CertDER), nilIfEmpty(c.CSRDER), string(chain), string(c.PreviousStatus),
		db.timeArg(c.CreatedAt), db.timeArg(c.UpdatedAt), db.nullTimeArg(c.DeletedAt), db.nullTimeArg(c.RestorableUntil),
	}, nil
}

// GetCA returns the CA whose ID or name is idOrName.
func (db *DB) GetCA(ctx context.Context, idOrName string) (*ca.CA, error) {
	c, err := scanCA(db.rd.QueryRowContext(ctx, db.q.getCA, idOrName, idOrName, idOrName))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("CA", idOrName)
	}
	if err != nil {
		return nil, fmt.Errorf("store: get CA %q: %w", idOrName, err)
	}
	return c, nil
}

// ListCAs returns every CA, soft-deleted ones included, oldest first (ties
// by ID).
func (db *DB) ListCAs(ctx context.Context) ([]*ca.CA, error) {
	rows, err := db.read.QueryContext(ctx, db.q.listCAs)
	if err != nil {
		return nil, fmt.Errorf("store: list CAs: %w", err)
	}
	defer rows.Close()
	out := []*ca.CA{}
	for rows.Next() {
		c, err := scanCA(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list CAs: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list CAs: %w", err)
	}
	return out, nil
}

// PurgeCAs hard-deletes the soft-deleted CAs whose restore window ended
// before now, wrapped key blob included, and returns their IDs. Rows of the
// certificates they issued are kept. Each purged CA gets a copy of ev,
// Target its ID, appended to the audit log in the same transaction.
func (db *DB) PurgeCAs(ctx context.Context, now time.Time, ev audit.Event) ([]string, error) {
	if err := normalizeEvent(&ev); err != nil {
		return nil, fmt.Errorf("store: purge CAs: %w", err)
	}
	var ids []string
	err := db.caTx(ctx, func(tx *sql.Tx) ([]string, error) {
		ids = []string{}
		rows, err := tx.QueryContext(ctx, db.q.purgeCAs, string(ca.StatusDeleted), db.timeArg(now))
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				return nil, err
			}
			ids = append(ids, id)
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
		slices.Sort(ids)
		evs := make([]*audit.Event, len(ids))
		for i, id := range ids {
			e := ev
			e.Target = id
			evs[i] = &e
		}
		return ids, db.appendAudit(ctx, tx, evs...)
	})
	if err != nil {
		return nil, fmt.Errorf("store: purge CAs: %w", err)
	}
	return ids, nil
}

type scanner interface{ Scan(dest ...any) error }

func scanCA(s scanner) (*ca.CA, error) {
	var (
		c                          ca.CA
		kind, status, prev, keyAlg string
		chain                      []byte
	)
	err := s.Scan(&c.ID, &c.Name, &kind, &c.ParentID, &c.External, &status,
		&c.Key.Provider, &c.Key.ID, &keyAlg, &c.Key.Blob, &c.CertDER, &c.CSRDER, &chain, &prev,
		timeScan{&c.CreatedAt}, timeScan{&c.UpdatedAt}, nullTimeScan{&c.DeletedAt}, nullTimeScan{&c.RestorableUntil})
	if err != nil {
		return nil, err
	}
	c.Kind, c.Status, c.PreviousStatus, c.Key.Algorithm = ca.Kind(kind), ca.Status(status), ca.Status(prev), pki.KeyAlgorithm(keyAlg)
	if err := json.Unmarshal(chain, &c.ChainDER); err != nil {
		return nil, fmt.Errorf("CA %q chain: %w", c.ID, err)
	}
	if len(c.ChainDER) == 0 {
		c.ChainDER = nil
	}
	c.Key.Blob, c.CertDER, c.CSRDER = nilIfEmpty(c.Key.Blob), nilIfEmpty(c.CertDER), nilIfEmpty(c.CSRDER)
	return &c, nil
}

func nonNilChain(c [][]byte) [][]byte {
	if c == nil {
		return [][]byte{}
	}
	return c
}

// nilIfEmpty maps empty byte slices to nil (SQL NULL), so nil and empty
// both read back as nil.
func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// CAGeneration changes after every change to a CA record this process
// commits (or tries to), and, through the notification bus, after every
// one another process commits. Caches of CA records (the mTLS client
// certificate pools) drop what they hold when it changes.
func (db *DB) CAGeneration() uint64 { return db.caGen.Load() }

// caTx is inTx for every write to the cas table. Like accessTx it moves
// the generation once the transaction has ended, and it tells the other
// processes which CAs fn changed (a NoticeCA each; an empty ID for "some")
// when it commits. TestCAWritesUseCATx fails for a write to that table
// that does not go through here.
func (db *DB) caTx(ctx context.Context, fn func(*sql.Tx) (changed []string, err error)) error {
	defer db.caGen.Add(1)
	return db.inTx(ctx, func(tx *sql.Tx) error {
		changed, err := fn(tx)
		if err != nil {
			return err
		}
		for _, id := range changed {
			if err := db.notifyTx(ctx, tx, Notice{Kind: NoticeCA, CA: id}); err != nil {
				return err
			}
		}
		return nil
	})
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/audit"
)

// Kinds of record that hold a secret sealed under the KEK (not a key), as
// in SealedSecret.Kind.
const (
	SecretKindEAB = "acme_eab" // acme_eab_keys.sealed; Owner is the key ID
)

// SealedSecret is a small secret sealed directly under the KEK as it sits
// in the store: which kind of record holds it and whose.
type SealedSecret struct {
	Kind, Owner string
	Sealed      []byte
}

// Where names the record for logs and audit details.
func (s *SealedSecret) Where() string { return s.Kind + " " + s.Owner }

// sealedTable describes where one kind of sealed secret lives.
type sealedTable struct {
	kind   string
	sel    string // owner, sealed
	update string // new sealed, owner, old sealed
}

var sealedTables = []sealedTable{
	{
		kind:   SecretKindEAB,
		sel:    `SELECT id, sealed FROM acme_eab_keys WHERE length(sealed) > 0 ORDER BY id`,
		update: `UPDATE acme_eab_keys SET sealed = ? WHERE id = ? AND sealed = ?`,
	},
}

// KEKRotation says how RotateKEK moves the database from one KEK to
// another.
type KEKRotation struct {
	// Provider is the provider whose keys are re-wrapped; Prefixes are
	// the blob prefixes of the keys passed to Key (every format the
	// provider writes or still holds).
	Provider string
	Prefixes [][]byte
	// Setting names the setting that records the fingerprint of the KEK
	// the database's keys are under; From and To are the old and the new
	// KEK's fingerprints.
	Setting, From, To string
	// Key returns a key's blob under the new KEK, nil to leave the row
	// as it is; Secret the same for a sealed secret. An error from either
	// changes nothing.
	Key    func(*WrappedKey) ([]byte, error)
	Secret func(*SealedSecret) ([]byte, error)
	// Event returns the audit event appended in the same transaction.
	Event func(*KEKRotationResult) *audit.Event
	// BeforeCommit, when set, runs last in the transaction; an error
	// from it rolls everything back (tests use it as a crash).
	BeforeCommit func() error
}

// KEKRotationResult counts what RotateKEK did, by kind of record
// (KeyKind* and SecretKind*).
type KEKRotationResult struct {
	// Already is true when the database already recorded the new KEK (an
	// earlier run committed): nothing was read or changed.
	Already bool
	// Found counts the records read, Rewrapped the ones replaced.
	Found, Rewrapped map[string]int
}

// ErrOtherKEK is returned by RotateKEK when the database records a KEK
// that is neither the old nor the new one.
var ErrOtherKEK = errors.New("store: the database's keys are under another key-encryption key")

// LiveReplicasError refuses a step that needs every replica stopped.
type LiveReplicasError struct{ Live []*Replica }

func (e *LiveReplicasError) Error() string {
	names := make([]string, len(e.Live))
	for i, r := range e.Live {
		names[i] = fmt.Sprintf("%s (last seen %s)", r.Name, r.LastSeen.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("%d replica(s) are running on this database: %s", len(e.Live), strings.Join(names, ", "))
}

// RotateKEK re-wraps every key of r.Provider (in CAs, managed
// certificates, OCSP responders and audit keys) and re-seals every sealed
// secret, records r.To in r.Setting and appends r.Event, all in one
// transaction. It refuses, with a *LiveReplicasError, while a replica is
// running (seen within ReplicaLive), and holds the replica registry's lock
// until it has committed, so no replica registers meanwhile (a replica
// checks the recorded KEK when it registers). On SQLite the registry is
// not kept: the caller makes sure no server runs.
//
// When r.Setting already holds r.To nothing is done (Already). When it
// holds neither r.From nor r.To (nor nothing: a database from before the
// fingerprint was recorded) the error wraps ErrOtherKEK.
func (db *DB) RotateKEK(ctx context.Context, r KEKRotation) (*KEKRotationResult, error) {
	if r.Provider == "" || len(r.Prefixes) == 0 || r.Setting == "" || r.From == "" || r.To == "" || r.Key == nil || r.Secret == nil {
		return nil, errors.New("store: rotate KEK: incomplete request")
	}
	var res *KEKRotationResult
	err := db.Exclusive(ctx, replicasLock, func(ctx context.Context) error {
		live, err := db.LiveReplicas(ctx, "")
		if err != nil {
			return err
		}
		if len(live) > 0 {
			return &LiveReplicasError{Live: live}
		}
		// No notice is sent: no replica runs to receive it.
		return db.inTx(ctx, func(tx *sql.Tx) error {
			res = &KEKRotationResult{Found: map[string]int{}, Rewrapped: map[string]int{}}
			var cur []byte
			switch err := tx.QueryRowContext(ctx, db.q.getSetting, r.Setting).Scan(&cur); {
			case err != nil && !errors.Is(err, sql.ErrNoRows):
				return fmt.Errorf("read %s: %w", r.Setting, err)
			case string(cur) == r.To:
				res.Already = true
				return nil
			case len(cur) > 0 && string(cur) != r.From:
				return fmt.Errorf("%w: it records KEK %s, not %s (the KEK file) nor %s (the new one)", ErrOtherKEK, cur, r.From, r.To)
			}
			count := func(kind string, rewrapped int) {
				res.Found[kind]++
				res.Rewrapped[kind] += rewrapped
			}
			for _, prefix := range r.Prefixes {
				if err := db.rewrapRows(ctx, tx, r.Provider, prefix, r.Key, count); err != nil {
					return err
				}
			}
			if err := db.resealRows(ctx, tx, r.Secret, count); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, db.q.putSetting, r.Setting, []byte(r.To)); err != nil {
				return fmt.Errorf("write %s: %w", r.Setting, err)
			}
			if r.Event != nil {
				if ev := r.Event(res); ev != nil {
					if err := db.appendAudit(ctx, tx, ev); err != nil {
						return err
					}
				}
			}
			if r.BeforeCommit != nil {
				return r.BeforeCommit()
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: rotate KEK: %w", err)
	}
	return res, nil
}

// resealRows replaces in tx every sealed secret of sealedTables with what
// fn returns for it (nil: left as it is).
func (db *DB) resealRows(ctx context.Context, tx *sql.Tx, fn func(*SealedSecret) ([]byte, error), count func(kind string, rewrapped int)) error {
	for _, tb := range sealedTables {
		found, err := db.sealedRows(ctx, tx, tb)
		if err != nil {
			return err
		}
		for _, f := range found {
			sealed, err := fn(&f)
			if err != nil {
				return err
			}
			if sealed == nil {
				count(tb.kind, 0)
				continue
			}
			n, err := execAffected(ctx, tx, db.d.rebind(tb.update), sealed, f.Owner, f.Sealed)
			if err != nil {
				return fmt.Errorf("%s: %w", f.Where(), err)
			}
			count(tb.kind, int(n))
		}
	}
	return nil
}

// sealedRows reads the sealed secrets of one table, all before any is
// updated.
func (db *DB) sealedRows(ctx context.Context, tx *sql.Tx, tb sealedTable) ([]SealedSecret, error) {
	rows, err := tx.QueryContext(ctx, db.d.rebind(tb.sel))
	if err != nil {
		return nil, fmt.Errorf("read %s secrets: %w", tb.kind, err)
	}
	defer rows.Close()
	var out []SealedSecret
	for rows.Next() {
		s := SealedSecret{Kind: tb.kind}
		if err := rows.Scan(&s.Owner, &s.Sealed); err != nil {
			return nil, fmt.Errorf("read %s secrets: %w", tb.kind, err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s secrets: %w", tb.kind, err)
	}
	return out, nil
}

// ClaimSetting stores value under key unless the key already holds one,
// and returns the value it holds now (value, or the one found).
func (db *DB) ClaimSetting(ctx context.Context, key string, value []byte) ([]byte, error) {
	q := db.d.rebind(`INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`)
	if _, err := db.write.ExecContext(ctx, q, key, nonNil(value)); err != nil {
		return nil, fmt.Errorf("store: claim setting %q: %w", key, err)
	}
	return db.GetSetting(ctx, key)
}

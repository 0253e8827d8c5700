package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/certwright/certwright/internal/inventory"
)

// The compromised-key list (migration 0014): one row per public key
// reported compromised, the first report standing. Rows are written inside
// the transaction of the report (a rotation by key, a keyCompromise
// revocation), so a key is listed exactly when the report is stored.

const (
	compromisedColumns = `spki_sha256, reported_at, source, ref, reported_by`
	sqlCompromisedKey  = `SELECT ` + compromisedColumns + ` FROM compromised_keys WHERE spki_sha256 = ?`
)

// CompromisedKey returns the report of the key whose SPKI SHA-256 is
// spkiSHA256 (hex, any case), or nil when it was never reported
// compromised. Every issuance asks, almost always for a key that is not
// listed, so the answer "not listed" comes from an in-memory copy of the
// list when the list is small (compromisedCache); a listed key is read
// from the table, with its report.
func (db *DB) CompromisedKey(ctx context.Context, spkiSHA256 string) (*inventory.CompromisedKey, error) {
	spki := strings.ToLower(strings.TrimSpace(spkiSHA256))
	listed, known := db.compromised.lookup(db.compromisedGen.Load(), db.now(), spki)
	switch {
	case known:
	case db.compromised.startLoad():
		var err error
		if listed, err = db.loadCompromised(ctx, spki); err != nil {
			return nil, fmt.Errorf("store: compromised key %s: %w", spkiSHA256, err)
		}
	default:
		// Another caller is reading the list again: rather than every
		// issuance of that moment reading all of it too, this one looks
		// its key up in the table.
		listed = true
	}
	if !listed {
		return nil, nil
	}
	var k inventory.CompromisedKey
	err := db.rd.QueryRowContext(ctx, db.d.rebind(sqlCompromisedKey), spki).
		Scan(&k.SPKISHA256, timeScan{&k.ReportedAt}, &k.Source, &k.Ref, &k.ReportedBy)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: compromised key %s: %w", spkiSHA256, err)
	}
	return &k, nil
}

// CompromisedCacheMaxAge bounds how long this process answers "not
// listed" from its copy of the compromised-key list: a key reported
// through this process is refused at once (its report moves
// compromisedGen when its transaction ends), one reported through another
// replica within this long.
const CompromisedCacheMaxAge = time.Second

// maxCachedCompromised is the longest list kept in memory; a longer one is
// looked up key by key, as the table's primary key allows.
const maxCachedCompromised = 10_000

// compromisedCache is the in-memory copy of the compromised-key list.
type compromisedCache struct {
	mu       sync.Mutex
	gen      uint64
	loadedAt time.Time
	loaded   bool
	keys     map[string]struct{} // nil when the list is too long to hold
	loading  bool                // a caller is reading the list again
	loads    int                 // reads of the list, for tests
}

// startLoad reports whether the caller is to read the list again (and then
// must call loadCompromised, which ends the read): false while another
// caller is reading it.
func (c *compromisedCache) startLoad() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.loading {
		return false
	}
	c.loading = true
	c.loads++
	return true
}

// lookup answers from the copy when it was read under generation gen less
// than CompromisedCacheMaxAge before now; known is false when the copy
// cannot answer.
func (c *compromisedCache) lookup(gen uint64, now time.Time, spki string) (listed, known bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.loaded || c.gen != gen || now.Before(c.loadedAt) || now.Sub(c.loadedAt) >= CompromisedCacheMaxAge {
		return false, false
	}
	if c.keys == nil {
		return true, true // too long to hold: look in the table
	}
	_, listed = c.keys[spki]
	return listed, true
}

// loadCompromised reads the whole list when it is short enough to hold
// (one caller at a time: startLoad),
// keeps it under the generation read before the read (so that a report
// committed meanwhile leaves the copy stale), and answers for spki.
func (db *DB) loadCompromised(ctx context.Context, spki string) (bool, error) {
	c := &db.compromised
	defer func() {
		c.mu.Lock()
		c.loading = false
		c.mu.Unlock()
	}()
	gen, at := db.compromisedGen.Load(), db.now()
	rows, err := db.read.QueryContext(ctx, db.d.rebind(`SELECT spki_sha256 FROM compromised_keys LIMIT ?`), maxCachedCompromised+1)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	keys := map[string]struct{}{}
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return false, err
		}
		keys[k] = struct{}{}
	}
	if err := rows.Err(); err != nil {
		return false, err
	}
	_, listed := keys[spki]
	if len(keys) > maxCachedCompromised {
		// Too long to hold: the caller looks the key up in the table.
		keys, listed = nil, true
	}
	c.mu.Lock()
	c.gen, c.loadedAt, c.loaded, c.keys = gen, at, true, keys
	c.mu.Unlock()
	return listed, nil
}

// compromisedTx is inTx for every write that may list a key as
// compromised; the generation moves when the transaction has ended, as
// accessTx's does.
func (db *DB) compromisedTx(ctx context.Context, fn func(*sql.Tx) error) error {
	return db.genTx(ctx, &db.compromisedGen, noticeCompromised, fn)
}

// reportCompromisedKey lists the key spkiSHA256 as compromised by the
// rotation id, unless it is listed already.
func (db *DB) reportCompromisedKey(ctx context.Context, tx *sql.Tx, spkiSHA256, rotationID, by string, at time.Time) error {
	spki := strings.ToLower(strings.TrimSpace(spkiSHA256))
	if spki == "" {
		return nil
	}
	_, err := tx.ExecContext(ctx, db.d.rebind(`INSERT INTO compromised_keys (`+compromisedColumns+`)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (spki_sha256) DO NOTHING`),
		spki, db.timeArg(at), inventory.CompromiseRotation, rotationID, by)
	if err != nil {
		return fmt.Errorf("list key %s as compromised: %w", spki, err)
	}
	return nil
}

// reportCompromisedCerts lists the keys of the certificates whose serials
// are in the JSON array serialsJSON as compromised by their revocation,
// unless listed already; a key several of them share names the lowest
// serial.
func (db *DB) reportCompromisedCerts(ctx context.Context, tx *sql.Tx, serialsJSON, by string, at time.Time) error {
	_, err := tx.ExecContext(ctx, db.d.rebind(`INSERT INTO compromised_keys (`+compromisedColumns+`)
		SELECT spki_sha256, CAST(? AS `+db.d.timeType+`), CAST(? AS TEXT), MIN(serial), CAST(? AS TEXT)
		FROM certificates WHERE serial IN (`+db.d.stringsFromJSON+`) AND spki_sha256 <> ''
		GROUP BY spki_sha256
		ON CONFLICT (spki_sha256) DO NOTHING`),
		db.timeArg(at), inventory.CompromiseRevocation, by, serialsJSON)
	if err != nil {
		return fmt.Errorf("list the keys of certificates revoked as keyCompromise: %w", err)
	}
	return nil
}

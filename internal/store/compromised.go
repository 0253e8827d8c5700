package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
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
// compromised. One primary-key lookup.
func (db *DB) CompromisedKey(ctx context.Context, spkiSHA256 string) (*inventory.CompromisedKey, error) {
	var k inventory.CompromisedKey
	err := db.rd.QueryRowContext(ctx, db.d.rebind(sqlCompromisedKey),
		strings.ToLower(strings.TrimSpace(spkiSHA256))).
		Scan(&k.SPKISHA256, timeScan{&k.ReportedAt}, &k.Source, &k.Ref, &k.ReportedBy)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: compromised key %s: %w", spkiSHA256, err)
	}
	return &k, nil
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

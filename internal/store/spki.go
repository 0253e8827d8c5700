package store

import (
	"context"
	"crypto/x509"
	"database/sql"
	"fmt"

	"github.com/certwright/certwright/internal/pki"
)

// spkiBackfillBatch is how many rows backfillSPKI reads and updates per
// transaction.
const spkiBackfillBatch = 1000

// spkiSHA256 returns the hex SHA-256 of the SubjectPublicKeyInfo of the
// certificate der, as the issuance path computes it.
func spkiSHA256(der []byte) (string, error) {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return "", err
	}
	return pki.Fingerprint(c.RawSubjectPublicKeyInfo), nil
}

// backfillSPKI fills spki_sha256 on certificates written before migration
// 0002 added it, in batches of committed transactions, so an interrupted run
// resumes where it stopped. Rows whose DER does not parse keep ” (and are
// read again at each Open); with nothing to do it costs one index probe.
// Several processes may run it at once: each update applies only to a row
// still empty.
func (db *DB) backfillSPKI(ctx context.Context) error {
	sel := db.d.rebind(`SELECT serial, der FROM certificates
		WHERE spki_sha256 = '' AND serial > ? ORDER BY serial LIMIT ?`)
	upd := db.d.rebind(`UPDATE certificates SET spki_sha256 = ? WHERE serial = ? AND spki_sha256 = ''`)
	type fill struct{ serial, spki string }
	var filled, skipped int
	for after := ""; ; {
		rows, err := db.write.QueryContext(ctx, sel, after, spkiBackfillBatch)
		if err != nil {
			return fmt.Errorf("store: backfill SPKI hashes: %w", err)
		}
		var batch []fill
		n := 0
		for rows.Next() {
			var serial string
			var der []byte
			if err := rows.Scan(&serial, &der); err != nil {
				rows.Close()
				return fmt.Errorf("store: backfill SPKI hashes: %w", err)
			}
			n, after = n+1, serial
			if h, err := spkiSHA256(der); err == nil {
				batch = append(batch, fill{serial, h})
			} else {
				skipped++
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("store: backfill SPKI hashes: %w", err)
		}
		if len(batch) > 0 {
			err := db.inTx(ctx, func(tx *sql.Tx) error {
				stmt, err := tx.PrepareContext(ctx, upd)
				if err != nil {
					return err
				}
				defer stmt.Close()
				for _, f := range batch {
					if _, err := stmt.ExecContext(ctx, f.spki, f.serial); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("store: backfill SPKI hashes: %w", err)
			}
			filled += len(batch)
			db.logger.Info("backfilled certificate public key hashes", "rows", filled)
		}
		if n < spkiBackfillBatch {
			break
		}
	}
	if skipped > 0 {
		db.logger.Debug("certificates whose DER does not parse have no public key hash", "rows", skipped)
	}
	return nil
}

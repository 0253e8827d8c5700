package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/certwright/certwright/internal/pki"
)

// wrappedKeyQueries select every wrapped key of one kind of record: owner,
// requester, provider, key ID, algorithm and blob.
var wrappedKeyQueries = []struct{ kind, sel string }{
	{KeyKindCA, `SELECT id, '', key_provider, key_id, key_algorithm, key_blob FROM cas
		WHERE key_blob IS NOT NULL ORDER BY id`},
	{KeyKindOCSP, `SELECT ca_id, '', key_provider, key_id, key_algorithm, key_blob FROM ocsp_responders
		WHERE key_blob IS NOT NULL ORDER BY ca_id`},
	{KeyKindAudit, `SELECT id, '', key_provider, key_id, key_algorithm, key_blob FROM audit_keys
		WHERE key_blob IS NOT NULL ORDER BY id`},
	{KeyKindManaged, `SELECT serial, requester, COALESCE(managed_key_provider, ''), COALESCE(managed_key_id, ''),
		COALESCE(managed_key_algorithm, ''), managed_key_blob
		FROM certificates WHERE managed_key_blob IS NOT NULL ORDER BY serial`},
}

// ListWrappedKeys returns every private key the store holds, of any
// provider, as it sits in its record (Kind, Owner, Requester and Ref; no
// public key), read in one read-only transaction so the list is one
// committed state: CAs' (soft-deleted and pending ones included), OCSP
// responders', audit keys' and managed certificates' (the server's own TLS
// certificates among them).
func (db *DB) ListWrappedKeys(ctx context.Context) ([]WrappedKey, error) {
	tx, err := db.read.BeginTx(ctx, &snapshotTx)
	if err != nil {
		return nil, fmt.Errorf("store: list wrapped keys: %w", err)
	}
	defer tx.Rollback()
	var out []WrappedKey
	for _, q := range wrappedKeyQueries {
		if out, err = appendWrappedKeys(ctx, tx, db.d.rebind(q.sel), q.kind, out); err != nil {
			return nil, fmt.Errorf("store: list wrapped keys: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("store: list wrapped keys: %w", err)
	}
	return out, nil
}

func appendWrappedKeys(ctx context.Context, tx *sql.Tx, q, kind string, out []WrappedKey) ([]WrappedKey, error) {
	rows, err := tx.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("%s keys: %w", kind, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			k   WrappedKey
			alg string
		)
		if err := rows.Scan(&k.Owner, &k.Requester, &k.Ref.Provider, &k.Ref.ID, &alg, &k.Ref.Blob); err != nil {
			return nil, fmt.Errorf("%s keys: %w", kind, err)
		}
		k.Kind, k.Ref.Algorithm = kind, pki.KeyAlgorithm(alg)
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s keys: %w", kind, err)
	}
	return out, nil
}

// InstanceID returns the ID of the instance the database belongs to, ""
// when none is recorded yet.
func (db *DB) InstanceID(ctx context.Context) (string, error) {
	v, err := db.GetSetting(ctx, instanceIDSetting)
	if errors.Is(err, ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return string(v), nil
}

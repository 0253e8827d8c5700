package store

import (
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
)

// InstanceKeys returns the public keys of the instance's own keys: every
// CA's (from its certificate, or the CSR of a pending external CA;
// soft-deleted CAs included), every OCSP responder's and every audit
// key's. None of them may ever be a managed, exportable key. A record
// whose public key does not parse is skipped.
func (db *DB) InstanceKeys(ctx context.Context) ([]crypto.PublicKey, error) {
	var out []crypto.PublicKey
	for _, q := range []struct {
		sql   string
		parse func([]byte) (crypto.PublicKey, error)
	}{
		{`SELECT cert_der FROM cas WHERE cert_der IS NOT NULL`, certPublic},
		{`SELECT csr_der FROM cas WHERE csr_der IS NOT NULL`, csrPublic},
		{`SELECT cert_der FROM ocsp_responders WHERE cert_der IS NOT NULL`, certPublic},
		{`SELECT public_key FROM audit_keys WHERE public_key IS NOT NULL`, spkiPublic},
	} {
		rows, err := db.read.QueryContext(ctx, q.sql)
		if err != nil {
			return nil, fmt.Errorf("store: instance keys: %w", err)
		}
		for rows.Next() {
			var der []byte
			if err := rows.Scan(&der); err != nil {
				rows.Close()
				return nil, fmt.Errorf("store: instance keys: %w", err)
			}
			if pub, err := q.parse(der); err == nil {
				out = append(out, pub)
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("store: instance keys: %w", err)
		}
	}
	return out, nil
}

func csrPublic(der []byte) (crypto.PublicKey, error) {
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, err
	}
	return csr.PublicKey, nil
}

func spkiPublic(der []byte) (crypto.PublicKey, error) { return x509.ParsePKIXPublicKey(der) }

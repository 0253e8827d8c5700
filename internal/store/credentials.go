package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/certwright/certwright/internal/authz"
)

// client_credentials holds, per certificate that may authenticate as a
// principal over mTLS, that principal's ID. The row is written with the
// certificate (insertCert).
const sqlInsertClientCredential = `INSERT INTO client_credentials (serial, principal_id) VALUES (?, ?)`

// ClientCredential returns the ID of the principal the certificate serial
// was issued to as an mTLS credential, or ErrNotFound when it is none.
func (db *DB) ClientCredential(ctx context.Context, serial string) (string, error) {
	var id string
	err := db.read.QueryRowContext(ctx, db.d.rebind(`SELECT principal_id FROM client_credentials WHERE serial = ?`), serial).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", notFound("client credential", serial)
	}
	if err != nil {
		return "", fmt.Errorf("store: client credential %s: %w", serial, err)
	}
	return id, nil
}

// CredentialHolder returns the ID of the principal the certificate serial
// was issued to as an mTLS credential, and "" when it is none.
func (db *DB) CredentialHolder(ctx context.Context, serial string) (string, error) {
	id, err := db.ClientCredential(ctx, serial)
	if errors.Is(err, ErrNotFound) {
		return "", nil
	}
	return id, err
}

// maxIdentityMatch bounds the names one MatchIdentities query asks about.
const maxIdentityMatch = 100

// MatchIdentities returns the registered identities among names (Kind and
// Value set; values as registered: URIs exact, DNS names lower case), with
// their principals. Names that are no identity are left out.
func (db *DB) MatchIdentities(ctx context.Context, names []authz.Identity) ([]*authz.Identity, error) {
	var out []*authz.Identity
	for len(names) > 0 {
		chunk := names[:min(len(names), maxIdentityMatch)]
		names = names[len(chunk):]
		args := make([]any, 0, 2*len(chunk))
		for _, n := range chunk {
			args = append(args, n.Kind, n.Value)
		}
		q := identitySelect + ` WHERE ` + strings.TrimSuffix(strings.Repeat(`(i.kind = ? AND i.value = ?) OR `, len(chunk)), ` OR `)
		rows, err := db.read.QueryContext(ctx, db.d.rebind(q), args...)
		if err != nil {
			return nil, fmt.Errorf("store: match identities: %w", err)
		}
		got, err := collect(rows, scanIdentity)
		if err != nil {
			return nil, fmt.Errorf("store: match identities: %w", err)
		}
		out = append(out, got...)
	}
	return out, nil
}

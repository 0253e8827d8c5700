package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/inventory"
)

// client_credentials holds, per certificate that may authenticate as a
// principal over mTLS, that principal's ID and, for a person certificate,
// the token of the sign-in it was issued to. The row is written with the
// certificate (insertCert).
const (
	sqlInsertClientCredential = `INSERT INTO client_credentials (serial, principal_id, token_id) VALUES (?, ?, ?)`
	sqlClientCredential       = `SELECT c.principal_id, c.token_id, t.id IS NOT NULL, t.revoked_at
		FROM client_credentials c LEFT JOIN api_tokens t ON c.token_id <> '' AND t.id = c.token_id
		WHERE c.serial = ?`
)

// signInOpen reads, in the issuing transaction, whether the token a
// credential is minted for has been revoked. On PostgreSQL the row is
// locked FOR SHARE until the transaction ends: a revocation (an UPDATE of
// the row) waits for the issuance to commit, and then lists the new
// certificate with the token's; or the issuance waits for the revocation
// and sees it. SQLite has one writer and BEGIN IMMEDIATE already.
func (db *DB) signInOpen(ctx context.Context, tx *sql.Tx, serial, tokenID string) error {
	q := `SELECT revoked_at FROM api_tokens WHERE id = ?`
	if db.d.name == "postgres" {
		q += ` FOR SHARE`
	}
	var revoked *time.Time
	err := tx.QueryRowContext(ctx, db.d.rebind(q), tokenID).Scan(nullTimeScan{&revoked})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil // a token this store does not hold: nothing to end it
	case err != nil:
		return err
	case revoked != nil:
		return fmt.Errorf("store: insert certificate %s: %w: the sign-in of token %s was ended (signed out, or revoked by an administrator) at %s, while the certificate was being issued; sign in again",
			serial, authz.ErrSignInEnded, tokenID, revoked.UTC().Format(time.RFC3339))
	}
	return nil
}

// endedSignIns checks, with signInOpen, the sign-in of each of rows that
// has one, in the order of the tokens' IDs (so that concurrent writers
// lock them in one order), and returns the refusal of each row whose
// sign-in has ended (nil for the others); err when a check failed.
func (db *DB) endedSignIns(ctx context.Context, tx *sql.Tx, rows []*certRow) (refused []error, err error) {
	refused = make([]error, len(rows))
	order := make([]int, 0, len(rows))
	for i, r := range rows {
		if r.credential != "" && r.credentialToken != "" {
			order = append(order, i)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int { return strings.Compare(rows[a].credentialToken, rows[b].credentialToken) })
	for _, i := range order {
		err := db.signInOpen(ctx, tx, rows[i].serial, rows[i].credentialToken)
		if errors.Is(err, authz.ErrSignInEnded) {
			refused[i] = err
		} else if err != nil {
			return nil, fmt.Errorf("the sign-in of token %s: %w", rows[i].credentialToken, err)
		}
	}
	return refused, nil
}

// ClientCredential returns the record of the certificate serial as an mTLS
// credential, with the state of the sign-in token it names, or ErrNotFound
// when it is none.
func (db *DB) ClientCredential(ctx context.Context, serial string) (*authz.Credential, error) {
	var c authz.Credential
	err := db.read.QueryRowContext(ctx, db.d.rebind(sqlClientCredential), serial).
		Scan(&c.PrincipalID, &c.TokenID, &c.TokenKnown, nullTimeScan{&c.TokenRevokedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("client credential", serial)
	}
	if err != nil {
		return nil, fmt.Errorf("store: client credential %s: %w", serial, err)
	}
	return &c, nil
}

// SignInCertificate is a person certificate and the token of the sign-in
// it was issued to.
type SignInCertificate struct {
	Serial  string
	TokenID string
}

// signInCertificates selects the unexpired person certificates not yet
// revoked, of the sign-ins the condition on client_credentials (cc)
// picks.
const signInCertificates = `SELECT cc.serial, cc.token_id FROM client_credentials cc
	JOIN certificates c ON c.serial = cc.serial
	WHERE c.status = '` + string(inventory.StatusValid) + `' AND c.not_after > ? AND `

// TokenCertificates returns the unexpired person certificates not yet
// revoked that were issued to the sign-in of token tokenID.
func (db *DB) TokenCertificates(ctx context.Context, tokenID string, now time.Time) ([]SignInCertificate, error) {
	if tokenID == "" {
		return nil, nil
	}
	return db.signInCertificates(ctx, "token "+tokenID, `cc.token_id = ? ORDER BY cc.serial`, db.timeArg(now), tokenID)
}

// PrincipalSignInCertificates returns the unexpired person certificates
// not yet revoked that were issued to any sign-in of principal
// principalID.
func (db *DB) PrincipalSignInCertificates(ctx context.Context, principalID string, now time.Time) ([]SignInCertificate, error) {
	return db.signInCertificates(ctx, "principal "+principalID, `cc.principal_id = ? AND cc.token_id <> '' ORDER BY cc.serial`, db.timeArg(now), principalID)
}

func (db *DB) signInCertificates(ctx context.Context, of, where string, args ...any) ([]SignInCertificate, error) {
	rows, err := db.read.QueryContext(ctx, db.d.rebind(signInCertificates+where), args...)
	if err != nil {
		return nil, fmt.Errorf("store: person certificates of %s: %w", of, err)
	}
	out, err := collect(rows, func(s scanner) (SignInCertificate, error) {
		var c SignInCertificate
		err := s.Scan(&c.Serial, &c.TokenID)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: person certificates of %s: %w", of, err)
	}
	return out, nil
}

// CredentialHolder returns the ID of the principal the certificate serial
// was issued to as an mTLS credential, and "" when it is none.
func (db *DB) CredentialHolder(ctx context.Context, serial string) (string, error) {
	c, err := db.ClientCredential(ctx, serial)
	if errors.Is(err, ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return c.PrincipalID, nil
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

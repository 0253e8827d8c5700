package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/certwright/certwright/internal/store/postgres"
	"github.com/certwright/certwright/internal/store/sqlite"
)

// DialectOf returns the dialect, "sqlite" or "postgres", of a store URL
// as Open reads it.
func DialectOf(url string) (string, error) {
	d, _, err := parseURL(url)
	if err != nil {
		return "", err
	}
	return d.name, nil
}

// SnapshotSQLite copies the SQLite database at url (as for Open) into dst,
// a new file (mode 0600), as of one read transaction, while a server may
// be writing it. It never migrates or otherwise writes the database.
func SnapshotSQLite(ctx context.Context, url, dst string) error {
	d, src, err := parseURL(url)
	if err != nil {
		return err
	}
	if d != &sqliteDialect {
		return fmt.Errorf("store: snapshot: %s is not a SQLite database", d.name)
	}
	return sqlite.Snapshot(ctx, src, dst)
}

// NamedCert is a certificate a backup lists by the name of the CA it
// belongs to.
type NamedCert struct {
	CA      string
	CertDER []byte
}

// Inspection is what a backup records about a database.
type Inspection struct {
	Dialect       string // "sqlite" or "postgres"
	SchemaVersion int
	CACerts       []NamedCert // every CA with a certificate, by name
	Responders    []NamedCert // each CA's delegated OCSP responder
}

// Inspect reads, without migrating or writing anything, the dialect,
// schema version and CA and OCSP responder certificates of the database
// at url (as for Open), so that a backup can be taken by a build other
// than the running server's without touching its schema.
func Inspect(ctx context.Context, url string) (*Inspection, error) {
	d, target, err := parseURL(url)
	if err != nil {
		return nil, err
	}
	var db *sql.DB
	if d == &sqliteDialect {
		db, err = sqlite.OpenQueryOnly(ctx, target)
	} else {
		db, err = postgres.Open(ctx, target)
	}
	if err != nil {
		return nil, err
	}
	defer db.Close()
	in := &Inspection{Dialect: d.name}
	var v sql.NullInt64
	if err := db.QueryRowContext(ctx, "SELECT MAX(version) FROM schema_migrations").Scan(&v); err != nil {
		return nil, fmt.Errorf("store: inspect: read the schema version (not a Certwright database?): %w", err)
	}
	if !v.Valid {
		return nil, errors.New("store: inspect: the database records no schema version (not a Certwright database?)")
	}
	in.SchemaVersion = int(v.Int64)
	if in.CACerts, err = namedCerts(ctx, db, "SELECT name, cert_der FROM cas WHERE cert_der IS NOT NULL ORDER BY name"); err != nil {
		return nil, err
	}
	if in.Responders, err = namedCerts(ctx, db, "SELECT c.name, r.cert_der FROM ocsp_responders r JOIN cas c ON c.id = r.ca_id ORDER BY c.name"); err != nil {
		return nil, err
	}
	return in, nil
}

func namedCerts(ctx context.Context, db *sql.DB, q string) ([]NamedCert, error) {
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("store: inspect: %w", err)
	}
	defer rows.Close()
	var out []NamedCert
	for rows.Next() {
		var c NamedCert
		if err := rows.Scan(&c.CA, &c.CertDER); err != nil {
			return nil, fmt.Errorf("store: inspect: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: inspect: %w", err)
	}
	return out, nil
}

// KnownSchemaVersion returns the newest schema version this build's
// migrations reach for dialect ("sqlite" or "postgres"): a database at a
// higher version was written by a newer Certwright.
func KnownSchemaVersion(dialect string) (int, error) {
	if dialect != sqliteDialect.name && dialect != postgresDialect.name {
		return 0, fmt.Errorf("store: unknown database dialect %q (want sqlite or postgres)", dialect)
	}
	ms, err := loadMigrations(dialect)
	if err != nil {
		return 0, err
	}
	return ms[len(ms)-1].version, nil
}

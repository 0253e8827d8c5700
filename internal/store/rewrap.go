package store

import (
	"context"
	"crypto"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/keys"
	"github.com/certwright/certwright/internal/pki"
)

// Kinds of record that hold a wrapped key, as in WrappedKey.Kind.
const (
	KeyKindCA      = "ca"          // cas.key_blob; Owner is the CA id
	KeyKindManaged = "certificate" // certificates.managed_key_blob; Owner is the serial
	KeyKindOCSP    = "ocsp"        // ocsp_responders.key_blob; Owner is the CA id
	KeyKindAudit   = "audit"       // audit_keys.key_blob; Owner is the audit key id
)

// WrappedKey is a wrapped private key as it sits in the store: which kind
// of record holds it and whose, the Ref, and the public key of that record
// (certificate, CA certificate or CSR, or stored SubjectPublicKeyInfo),
// against which the key must be checked. The purpose a key is bound to
// follows from Kind and Owner (and, for certificates, from whether the
// server owns the certificate), never from the Ref.
type WrappedKey struct {
	Kind  string
	Owner string
	// Requester is the certificate's requester (KeyKindManaged only).
	Requester string
	Ref       keys.Ref
	// Public is nil when the record's public key does not parse.
	Public crypto.PublicKey
	// CertDER is the certificate of a KeyKindManaged row, and IssuerDER
	// the certificate of the CA its ca_id names (nil when that CA has
	// none): a legacy key is re-wrapped for a certificate only when the
	// certificate really is an end-entity certificate issued by that CA.
	CertDER, IssuerDER []byte
}

// Where names the record for logs and audit details ("ca ca_…").
func (k *WrappedKey) Where() string { return k.Kind + " " + k.Owner }

// rewrapTable describes where one kind of wrapped key lives.
type rewrapTable struct {
	kind   string
	sel    string // owner, extra, key_id, key_algorithm, key_blob, public DER 1, public DER 2
	update string // new blob, owner, old blob
	public func(der1, der2 []byte) (crypto.PublicKey, error)
}

var rewrapTables = []rewrapTable{
	{
		kind: KeyKindCA,
		sel: `SELECT id, '', key_id, key_algorithm, key_blob, cert_der, csr_der FROM cas
			WHERE key_provider = ? AND substr(key_blob, 1, ?) = ? ORDER BY id`,
		update: `UPDATE cas SET key_blob = ? WHERE id = ? AND key_blob = ?`,
		public: func(certDER, csrDER []byte) (crypto.PublicKey, error) {
			if len(certDER) > 0 {
				return certPublic(certDER)
			}
			csr, err := x509.ParseCertificateRequest(csrDER)
			if err != nil {
				return nil, err
			}
			return csr.PublicKey, nil
		},
	},
	{
		kind: KeyKindManaged,
		sel: `SELECT c.serial, c.requester, c.managed_key_id, c.managed_key_algorithm, c.managed_key_blob, c.der, a.cert_der
			FROM certificates c LEFT JOIN cas a ON a.id = c.ca_id
			WHERE c.managed_key_provider = ? AND substr(c.managed_key_blob, 1, ?) = ? ORDER BY c.serial`,
		update: `UPDATE certificates SET managed_key_blob = ? WHERE serial = ? AND managed_key_blob = ?`,
		public: func(der, _ []byte) (crypto.PublicKey, error) { return certPublic(der) },
	},
	{
		kind: KeyKindOCSP,
		sel: `SELECT ca_id, '', key_id, key_algorithm, key_blob, cert_der, NULL FROM ocsp_responders
			WHERE key_provider = ? AND substr(key_blob, 1, ?) = ? ORDER BY ca_id`,
		update: `UPDATE ocsp_responders SET key_blob = ? WHERE ca_id = ? AND key_blob = ?`,
		public: func(der, _ []byte) (crypto.PublicKey, error) { return certPublic(der) },
	},
	{
		kind: KeyKindAudit,
		sel: `SELECT id, '', key_id, key_algorithm, key_blob, public_key, NULL FROM audit_keys
			WHERE key_provider = ? AND substr(key_blob, 1, ?) = ? ORDER BY id`,
		update: `UPDATE audit_keys SET key_blob = ? WHERE id = ? AND key_blob = ?`,
		public: func(spki, _ []byte) (crypto.PublicKey, error) { return x509.ParsePKIXPublicKey(spki) },
	},
}

func certPublic(der []byte) (crypto.PublicKey, error) {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return c.PublicKey, nil
}

// RewrapResult counts what RewrapKeys did.
type RewrapResult struct {
	// Done is true when the marker said an earlier run finished: nothing
	// was read.
	Done bool
	// Found is the number of keys whose blob started with the prefix.
	Found int
	// Rewrapped is the number whose blob was replaced.
	Rewrapped int
}

// RewrapKeys finds every wrapped key of provider whose blob starts with
// prefix — in CAs, managed certificates, OCSP responders and audit keys —
// and replaces each blob with what fn returns for it, all in one
// transaction: an error from fn (or the database) changes nothing. fn
// returning a nil blob leaves that row as it is. A row whose blob changed
// since it was read (another process migrating at the same time) is left
// alone.
//
// marker names the setting that records a finished run: when it holds
// "done" nothing is read (so a large inventory is not scanned at every
// start), and the run sets it in the same transaction. When anything was
// found and event is not nil, the event it returns is appended to the
// audit log in that transaction too.
func (db *DB) RewrapKeys(ctx context.Context, provider string, prefix []byte, marker string,
	fn func(*WrappedKey) ([]byte, error), event func(RewrapResult) *audit.Event) (RewrapResult, error) {
	var res RewrapResult
	if len(prefix) == 0 || marker == "" {
		return res, errors.New("store: rewrap keys: empty blob prefix or marker")
	}
	// A CA whose key blob changed is announced to the other processes
	// (as "some CA": the rows re-wrapped may be other tables').
	err := db.caTx(ctx, func(tx *sql.Tx) ([]string, error) {
		changed := func(err error) ([]string, error) {
			if err != nil || res.Rewrapped == 0 {
				return nil, err
			}
			return []string{""}, nil
		}
		res = RewrapResult{}
		var done []byte
		switch err := tx.QueryRowContext(ctx, db.q.getSetting, marker).Scan(&done); {
		case err == nil && string(done) == rewrapDone:
			res.Done = true
			return changed(nil)
		case err != nil && !errors.Is(err, sql.ErrNoRows):
			return changed(fmt.Errorf("read %s: %w", marker, err))
		}
		err := db.rewrapRows(ctx, tx, provider, prefix, fn, func(kind string, rewrapped int) {
			res.Found++
			res.Rewrapped += rewrapped
		})
		if err != nil {
			return changed(err)
		}
		if _, err := tx.ExecContext(ctx, db.q.putSetting, marker, []byte(rewrapDone)); err != nil {
			return changed(fmt.Errorf("write %s: %w", marker, err))
		}
		if res.Found == 0 || event == nil {
			return changed(nil)
		}
		ev := event(res)
		if ev == nil {
			return changed(nil)
		}
		return changed(db.appendAudit(ctx, tx, ev))
	})
	if err != nil {
		return RewrapResult{}, fmt.Errorf("store: rewrap keys: %w", err)
	}
	return res, nil
}

// rewrapDone is the marker setting's value once a run finished.
const rewrapDone = "done"

// rewrapRows replaces in tx the blob of every wrapped key of provider
// whose blob starts with prefix, in every table of rewrapTables, with what
// fn returns for it (nil: left as it is); count is told of each key found,
// with the number of rows its new blob replaced (0 or 1).
func (db *DB) rewrapRows(ctx context.Context, tx *sql.Tx, provider string, prefix []byte,
	fn func(*WrappedKey) ([]byte, error), count func(kind string, rewrapped int)) error {
	for _, tb := range rewrapTables {
		found, err := db.keysWithPrefix(ctx, tx, tb, provider, prefix)
		if err != nil {
			return err
		}
		for _, f := range found {
			blob, err := fn(&f.WrappedKey)
			if err != nil {
				return err
			}
			if blob == nil {
				count(tb.kind, 0)
				continue
			}
			n, err := execAffected(ctx, tx, db.d.rebind(tb.update), blob, f.Owner, f.Ref.Blob)
			if err != nil {
				return fmt.Errorf("%s: %w", f.Where(), err)
			}
			count(tb.kind, int(n))
		}
	}
	return nil
}

type foundKey struct{ WrappedKey }

// keysWithPrefix reads the rows of one table whose blob starts with
// prefix. All rows are read before any is updated.
func (db *DB) keysWithPrefix(ctx context.Context, tx *sql.Tx, tb rewrapTable, provider string, prefix []byte) ([]foundKey, error) {
	rows, err := tx.QueryContext(ctx, db.d.rebind(tb.sel), provider, len(prefix), prefix)
	if err != nil {
		return nil, fmt.Errorf("read %s keys: %w", tb.kind, err)
	}
	defer rows.Close()
	var out []foundKey
	for rows.Next() {
		var (
			f          foundKey
			alg        string
			der1, der2 []byte
		)
		if err := rows.Scan(&f.Owner, &f.Requester, &f.Ref.ID, &alg, &f.Ref.Blob, &der1, &der2); err != nil {
			return nil, fmt.Errorf("read %s keys: %w", tb.kind, err)
		}
		f.Kind, f.Ref.Provider, f.Ref.Algorithm = tb.kind, provider, pki.KeyAlgorithm(alg)
		if pub, err := tb.public(der1, der2); err == nil {
			f.Public = pub
		}
		if tb.kind == KeyKindManaged {
			f.CertDER, f.IssuerDER = der1, der2
		}
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s keys: %w", tb.kind, err)
	}
	return out, nil
}

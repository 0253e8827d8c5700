package store

import (
	"strings"

	"github.com/certwright/certwright/internal/inventory"
)

// Column lists shared by the statements that write and read a record, so
// that the two cannot drift apart.
const (
	caColumns = `id, name, kind, parent_id, external, status, key_provider, key_id, key_algorithm,
		key_blob, cert_der, csr_der, chain_der, previous_status, created_at, updated_at, deleted_at, restorable_until`
	certColumns = `serial, ca_id, profile, requester, subject, sans, not_before, not_after, key_algorithm,
		key_bits, signature_algorithm, status, fingerprint, spki_sha256, tags, lint_warnings, der,
		managed_key_provider, managed_key_id, managed_key_algorithm, managed_key_blob, created_at, renew_now_at,
		source, owner, issuer, issuer_serial, chain_der, auto_renew, replaces, renewed_by, renewal_kind,
		renew_failures, renew_retry_at, renew_error, supersede_at, requester_id`
	revColumns       = `serial, ca_id, revoked_at, reason, invalidity_date, revoked_by, not_after, ca`
	responderColumns = `ca_id, cert_der, key_provider, key_id, key_algorithm, key_blob, not_after, created_at`
	tokenColumns     = `id, name, role, secret_hash, created_at`
)

// queries are the fixed statements, rebound for the dialect once at Open.
type queries struct {
	insertCA, updateCA, getCA, listCAs, purgeCAs string

	insertCert, insertName, getCert string
	// certSelect reads certColumns then revColumns, certificates aliased
	// c and their revocations r; callers append WHERE and the rest.
	certSelect string

	getCertRev, insertRev, getRev, setRevoked, lookupSerial, eachRevoked, eachUnexpired string
	nextCRLNumber, getResponder, putResponder                                           string

	insertProfile, updateProfile, getProfile, listProfiles, deleteProfile string

	insertToken, getToken string

	getSetting, putSetting string
}

func buildQueries(d *dialect) queries {
	certSelect := `SELECT ` + qualify("c", certColumns) + `, ` + qualify("r", revColumns) + `
		FROM certificates c LEFT JOIN revocations r ON r.serial = c.serial`
	q := queries{
		insertCA: `INSERT INTO cas (` + caColumns + `) VALUES (` + params(18) + `) ON CONFLICT DO NOTHING`,
		updateCA: `UPDATE cas SET name = ?, kind = ?, parent_id = ?, external = ?, status = ?,
			key_provider = ?, key_id = ?, key_algorithm = ?, key_blob = ?, cert_der = ?, csr_der = ?,
			chain_der = ?, previous_status = ?, created_at = ?, updated_at = ?, deleted_at = ?,
			restorable_until = ? WHERE id = ?`,
		// An ID match wins over a name match when a name happens to equal
		// another CA's ID.
		getCA: `SELECT ` + caColumns + ` FROM cas WHERE id = ? OR name = ?
			ORDER BY CASE WHEN id = ? THEN 0 ELSE 1 END LIMIT 1`,
		listCAs:  `SELECT ` + caColumns + ` FROM cas ORDER BY created_at, id`,
		purgeCAs: `DELETE FROM cas WHERE status = ? AND restorable_until < ? RETURNING id`,

		insertCert: `INSERT INTO certificates (` + certColumns + `) VALUES (` + params(37) + `)
			ON CONFLICT (serial) DO NOTHING`,
		insertName: `INSERT INTO certificate_names (kind, value, serial) VALUES (?, ?, ?)`,
		getCert:    certSelect + ` WHERE c.serial = ?`,
		certSelect: certSelect,

		getCertRev: `SELECT ca_id, not_after FROM certificates WHERE serial = ?`,
		insertRev:  `INSERT INTO revocations (` + revColumns + `) VALUES (` + params(8) + `) ON CONFLICT (serial) DO NOTHING`,
		getRev:     `SELECT ` + revColumns + ` FROM revocations WHERE serial = ?`,
		setRevoked: `UPDATE certificates SET status = '` + string(inventory.StatusRevoked) + `' WHERE serial = ?`,
		// One row whatever the tables hold: whether the certificate exists,
		// and its revocation's columns or NULLs.
		lookupSerial: `SELECT EXISTS (SELECT 1 FROM certificates WHERE serial = ? AND ca_id = ?), ` + qualify("r", revColumns) + `
			FROM (SELECT 1 AS one) AS x LEFT JOIN revocations r ON r.serial = ? AND r.ca_id = ?`,
		// Served by revocations_crl alone.
		eachRevoked: `SELECT serial, revoked_at, reason, invalidity_date, revoked_by, not_after, ca
			FROM revocations WHERE ca_id = ? AND not_after >= ?`,
		// Two index-only range scans and no per-row lookup: the CA's
		// unexpired certificates not marked revoked, then its unexpired leaf
		// revocations, which carry the certificate's serial and expiry.
		eachUnexpired: `SELECT serial, not_after, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
			FROM certificates WHERE ca_id = ? AND not_after >= ? AND status <> '` + string(inventory.StatusRevoked) + `'
			UNION ALL
			SELECT serial, not_after, ` + revColumns + `
			FROM revocations WHERE ca_id = ? AND not_after >= ? AND NOT ca`,
		nextCRLNumber: `INSERT INTO crl_numbers (ca_id, number) VALUES (?, 1)
			ON CONFLICT (ca_id) DO UPDATE SET number = crl_numbers.number + 1 RETURNING number`,
		getResponder: `SELECT ` + responderColumns + ` FROM ocsp_responders WHERE ca_id = ?`,
		putResponder: `INSERT INTO ocsp_responders (` + responderColumns + `) VALUES (` + params(8) + `)
			ON CONFLICT (ca_id) DO UPDATE SET cert_der = excluded.cert_der, key_provider = excluded.key_provider,
			key_id = excluded.key_id, key_algorithm = excluded.key_algorithm, key_blob = excluded.key_blob,
			not_after = excluded.not_after, created_at = excluded.created_at`,

		insertProfile: `INSERT INTO profiles (name, doc) VALUES (?, ?) ON CONFLICT DO NOTHING`,
		updateProfile: `UPDATE profiles SET doc = ? WHERE name = ?`,
		getProfile:    `SELECT doc FROM profiles WHERE name = ?`,
		listProfiles:  `SELECT name, doc FROM profiles`,
		deleteProfile: `DELETE FROM profiles WHERE name = ?`,

		insertToken: `INSERT INTO tokens (` + tokenColumns + `) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		getToken:    `SELECT ` + tokenColumns + ` FROM tokens WHERE id = ?`,

		getSetting: `SELECT value FROM settings WHERE name = ?`,
		putSetting: `INSERT INTO settings (name, value) VALUES (?, ?)
			ON CONFLICT (name) DO UPDATE SET value = excluded.value`,
	}
	for _, s := range []*string{
		&q.insertCA, &q.updateCA, &q.getCA, &q.listCAs, &q.purgeCAs,
		&q.insertCert, &q.insertName, &q.getCert,
		&q.getCertRev, &q.insertRev, &q.getRev, &q.setRevoked, &q.lookupSerial, &q.eachRevoked, &q.eachUnexpired,
		&q.nextCRLNumber, &q.getResponder, &q.putResponder,
		&q.insertProfile, &q.updateProfile, &q.getProfile, &q.listProfiles, &q.deleteProfile,
		&q.insertToken, &q.getToken, &q.getSetting, &q.putSetting,
	} {
		*s = d.rebind(*s)
	}
	return q
}

// params returns n comma-separated placeholders.
func params(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// qualify prefixes each column of a comma-separated list with table alias t.
func qualify(t, columns string) string {
	cols := strings.Split(columns, ",")
	for i, c := range cols {
		cols[i] = t + "." + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}

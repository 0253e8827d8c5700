package store

import "strings"

// Column lists shared by the statements that write and read a record, so
// that the two cannot drift apart.
const (
	caColumns = `id, name, kind, parent_id, external, status, key_provider, key_id, key_algorithm,
		key_blob, cert_der, csr_der, chain_der, previous_status, created_at, updated_at, deleted_at, restorable_until`
	certColumns = `serial, ca_id, profile, requester, subject, sans, not_before, not_after, key_algorithm,
		key_bits, signature_algorithm, status, fingerprint, tags, lint_warnings, der,
		managed_key_provider, managed_key_id, managed_key_algorithm, managed_key_blob, created_at`
	tokenColumns = `id, name, role, secret_hash, created_at`
)

// queries are the fixed statements, rebound for the dialect once at Open.
type queries struct {
	insertCA, updateCA, getCA, listCAs, purgeCAs string

	insertCert, insertName, getCert string

	insertProfile, updateProfile, getProfile, listProfiles, deleteProfile string

	insertToken, getToken string

	getSetting, putSetting string
}

func buildQueries(d *dialect) queries {
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

		insertCert: `INSERT INTO certificates (` + certColumns + `) VALUES (` + params(21) + `)
			ON CONFLICT (serial) DO NOTHING`,
		insertName: `INSERT INTO certificate_names (kind, value, serial) VALUES (?, ?, ?)`,
		getCert:    `SELECT ` + certColumns + ` FROM certificates WHERE serial = ?`,

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

package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/certwright/certwright/internal/discovery"
)

var _ discovery.Store = (*DB)(nil)

func endpointStatus(ep *discovery.Endpoint) (status, fingerprint string) {
	if ep.Match == nil {
		return "", ""
	}
	return string(ep.Match.Status), ep.Match.Fingerprint
}

func endpointGrade(ep *discovery.Endpoint) string {
	if ep.Latest.Grade == nil {
		return ""
	}
	return ep.Latest.Grade.Letter
}

// normEndpoint is ep with its times as every time is stored: UTC, to the
// microsecond.
func normEndpoint(ep *discovery.Endpoint) *discovery.Endpoint {
	n := *ep
	n.FirstSeen, n.LastSeen, n.LastScanned, n.ExposedSince = utc(n.FirstSeen), utc(n.LastSeen), utc(n.LastScanned), utc(n.ExposedSince)
	n.Latest.ObservedAt = utc(n.Latest.ObservedAt)
	return &n
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// SaveScan writes one scan's endpoints (replacing their rows), events and
// sightings, and prunes the history before rec.PruneBefore, in one
// transaction.
func (db *DB) SaveScan(ctx context.Context, rec discovery.ScanRecord) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		upsert, err := tx.PrepareContext(ctx, db.d.rebind(`INSERT INTO endpoints
			(address, encryption, status, fingerprint, grade, gone, last_scanned, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (address) DO UPDATE SET encryption = excluded.encryption, status = excluded.status,
			fingerprint = excluded.fingerprint, grade = excluded.grade, gone = excluded.gone,
			last_scanned = excluded.last_scanned, body = excluded.body`))
		if err != nil {
			return err
		}
		defer upsert.Close()
		for _, ep := range rec.Endpoints {
			ep := normEndpoint(ep)
			body, err := json.Marshal(ep)
			if err != nil {
				return fmt.Errorf("endpoint %s: %w", ep.Address, err)
			}
			status, fp := endpointStatus(ep)
			if _, err := upsert.ExecContext(ctx, ep.Address, string(ep.Latest.Encryption), status, fp, endpointGrade(ep),
				boolInt(ep.Gone), db.timeArg(ep.LastScanned), string(body)); err != nil {
				return fmt.Errorf("endpoint %s: %w", ep.Address, err)
			}
		}
		if len(rec.Events) > 0 {
			ins, err := tx.PrepareContext(ctx, db.d.rebind(`INSERT INTO endpoint_events (address, kind, at, body) VALUES (?, ?, ?, ?)`))
			if err != nil {
				return err
			}
			defer ins.Close()
			for _, ev := range rec.Events {
				ev.At, ev.Since = utc(ev.At), utc(ev.Since)
				body, err := json.Marshal(ev)
				if err != nil {
					return err
				}
				if _, err := ins.ExecContext(ctx, ev.Address, string(ev.Kind), db.timeArg(ev.At), string(body)); err != nil {
					return fmt.Errorf("event of %s: %w", ev.Address, err)
				}
			}
		}
		if len(rec.Sightings) > 0 {
			seen, err := tx.PrepareContext(ctx, db.d.rebind(`INSERT INTO served_certificates (fingerprint, endpoint, serial, first_seen, last_seen)
				VALUES (?, ?, ?, ?, ?) ON CONFLICT (fingerprint, endpoint) DO UPDATE SET last_seen = excluded.last_seen, serial = excluded.serial`))
			if err != nil {
				return err
			}
			defer seen.Close()
			for _, s := range rec.Sightings {
				if _, err := seen.ExecContext(ctx, s.Fingerprint, s.Endpoint, s.Serial, db.timeArg(s.FirstSeen), db.timeArg(s.LastSeen)); err != nil {
					return fmt.Errorf("sighting of %s at %s: %w", s.Fingerprint, s.Endpoint, err)
				}
			}
		}
		if !rec.PruneBefore.IsZero() {
			cut := db.timeArg(rec.PruneBefore)
			for _, q := range []string{
				`DELETE FROM endpoint_events WHERE at < ?`,
				`DELETE FROM endpoints WHERE gone = 1 AND last_scanned < ?`,
				`DELETE FROM served_certificates WHERE last_seen < ?`,
			} {
				if _, err := tx.ExecContext(ctx, db.d.rebind(q), cut); err != nil {
					return fmt.Errorf("prune: %w", err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: save scan: %w", err)
	}
	return nil
}

// GetEndpoint returns the endpoint at address.
func (db *DB) GetEndpoint(ctx context.Context, address string) (*discovery.Endpoint, error) {
	var body string
	err := db.read.QueryRowContext(ctx, db.d.rebind(`SELECT body FROM endpoints WHERE address = ?`), address).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %w", notFound("endpoint", address), discovery.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: endpoint %s: %w", address, err)
	}
	var ep discovery.Endpoint
	if err := json.Unmarshal([]byte(body), &ep); err != nil {
		return nil, fmt.Errorf("store: endpoint %s: %w", address, err)
	}
	return &ep, nil
}

// ListEndpoints returns the endpoints q selects, by address.
func (db *DB) ListEndpoints(ctx context.Context, q discovery.EndpointQuery) ([]*discovery.Endpoint, error) {
	where, args := []string{"1 = 1"}, []any{}
	add := func(cond string, arg any) {
		where = append(where, cond)
		args = append(args, arg)
	}
	if !q.Gone {
		add("gone = ?", 0)
	}
	if q.Encryption != "" {
		add("encryption = ?", string(q.Encryption))
	}
	if q.Status != "" {
		add("status = ?", string(q.Status))
	}
	if q.After != "" {
		add("address > ?", q.After)
	}
	stmt := `SELECT body FROM endpoints WHERE ` + strings.Join(where, " AND ") + ` ORDER BY address`
	if q.Limit > 0 {
		stmt += " LIMIT ?"
		args = append(args, q.Limit)
	}
	rows, err := db.read.QueryContext(ctx, db.d.rebind(stmt), args...)
	if err != nil {
		return nil, fmt.Errorf("store: list endpoints: %w", err)
	}
	defer rows.Close()
	out := []*discovery.Endpoint{}
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, fmt.Errorf("store: list endpoints: %w", err)
		}
		ep := &discovery.Endpoint{}
		if err := json.Unmarshal([]byte(body), ep); err != nil {
			return nil, fmt.Errorf("store: list endpoints: %w", err)
		}
		out = append(out, ep)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list endpoints: %w", err)
	}
	return out, nil
}

// ListEndpointEvents returns the events q selects, newest first (ties by
// insertion, newest first).
func (db *DB) ListEndpointEvents(ctx context.Context, q discovery.EventQuery) ([]discovery.Event, error) {
	where, args := []string{"at >= ?"}, []any{db.timeArg(q.Since)}
	if q.Address != "" {
		where, args = append(where, "address = ?"), append(args, q.Address)
	}
	if q.Kind != "" {
		where, args = append(where, "kind = ?"), append(args, string(q.Kind))
	}
	stmt := `SELECT body FROM endpoint_events WHERE ` + strings.Join(where, " AND ") + ` ORDER BY at DESC, id DESC`
	if q.Limit > 0 {
		stmt += " LIMIT ?"
		args = append(args, q.Limit)
	}
	rows, err := db.read.QueryContext(ctx, db.d.rebind(stmt), args...)
	if err != nil {
		return nil, fmt.Errorf("store: list endpoint events: %w", err)
	}
	defer rows.Close()
	out := []discovery.Event{}
	for rows.Next() {
		var body string
		var ev discovery.Event
		if err := rows.Scan(&body); err != nil {
			return nil, fmt.Errorf("store: list endpoint events: %w", err)
		}
		if err := json.Unmarshal([]byte(body), &ev); err != nil {
			return nil, fmt.Errorf("store: list endpoint events: %w", err)
		}
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list endpoint events: %w", err)
	}
	return out, nil
}

// CertificateSightings lists the endpoints that served the certificate
// with fingerprint, most recently seen first.
func (db *DB) CertificateSightings(ctx context.Context, fingerprint string) ([]discovery.Sighting, error) {
	rows, err := db.read.QueryContext(ctx, db.d.rebind(`SELECT fingerprint, endpoint, serial, first_seen, last_seen
		FROM served_certificates WHERE fingerprint = ? ORDER BY last_seen DESC, endpoint`), fingerprint)
	if err != nil {
		return nil, fmt.Errorf("store: sightings of %s: %w", fingerprint, err)
	}
	defer rows.Close()
	out := []discovery.Sighting{}
	for rows.Next() {
		var s discovery.Sighting
		if err := rows.Scan(&s.Fingerprint, &s.Endpoint, &s.Serial, timeScan{&s.FirstSeen}, timeScan{&s.LastSeen}); err != nil {
			return nil, fmt.Errorf("store: sightings of %s: %w", fingerprint, err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: sightings of %s: %w", fingerprint, err)
	}
	return out, nil
}

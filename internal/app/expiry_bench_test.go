package app

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/clock"
	"github.com/certwright/certwright/internal/config"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/store/postgres"
	"github.com/certwright/certwright/internal/store/storetest"
)

// The synthetic inventory of the expiry benchmark and its plan test.
const (
	// expirySpread: not_after lies uniformly in (start, start+400d].
	expirySpread = 400 * 24 * time.Hour
	// expiryValidity is not_after - not_before (= created_at): every
	// certificate was added at least two days before the benchmark's
	// start, so the check's look at recently added certificates finds none.
	expiryValidity = 402 * 24 * time.Hour
	// expiryDERSize is close to a P-256 leaf's: the check reads the DER
	// column with the row, so its size counts, though nothing parses it.
	expiryDERSize = 600
	// Every expiryRevokedEvery-th certificate is revoked (status revoked
	// and a revocations row), so the check's LEFT JOIN meets real rows.
	expiryRevokedEvery = 50
	// firstRunLookbackCopy mirrors lifecycle.firstRunLookback (unexported):
	// the first check also reads certificates that expired this long ago.
	firstRunLookbackCopy = 7 * 24 * time.Hour
	// createdOverlapCopy mirrors lifecycle.createdOverlap (unexported).
	createdOverlapCopy = 10 * time.Minute
)

// expiryEnv is an opened (not serving) App over an inventory loaded
// directly into its database, a fake clock, and a raw connection to the
// same database for loading, counting and EXPLAIN.
type expiryEnv struct {
	a     *App
	clk   *clock.Fake
	raw   *sql.DB
	pg    bool
	start time.Time // the clock when the inventory was built
}

// expiryConfig is a data directory on dbURL ("" = SQLite) with one webhook
// channel, so every alert also queues a delivery row as it would in
// production. Nothing is ever delivered: the benchmark does not serve.
func expiryConfig(tb testing.TB, dbURL string) *config.Config {
	tb.Helper()
	cfg := &config.Config{
		DataDir: filepath.Join(tb.TempDir(), "data"), DB: dbURL,
		HTTPSListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0",
		PublicHTTPURL: "http://pki.test:8080", LogLevel: "error",
		Alerts: config.AlertsConfig{Channels: []config.ChannelConfig{
			{Name: "ops-hook", Type: "webhook", URL: "http://127.0.0.1:9/certwright-alerts"},
		}},
	}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		tb.Fatalf("config: %v", err)
	}
	return cfg
}

// newExpiryEnv initialises a data directory on the backend kind ("sqlite"
// or "postgres"), loads n certificates of its issuing CA and opens the App
// on them with a fake clock.
func newExpiryEnv(tb testing.TB, kind string, n int) *expiryEnv {
	tb.Helper()
	ctx := context.Background()
	dbURL := ""
	if kind == "postgres" {
		base := os.Getenv(tEnvPostgres)
		if base == "" {
			tb.Skip("set " + tEnvPostgres + "=postgres://... to run this on PostgreSQL")
		}
		dbURL = storetest.PostgresSchema(tb, base)
	}
	cfg := expiryConfig(tb, dbURL)
	start := time.Now().UTC().Truncate(time.Second)
	clk := clock.NewFake(start)
	if _, err := Init(ctx, cfg, tLogger(), clk); err != nil {
		tb.Fatalf("Init: %v", err)
	}
	// Open once for the issuing CA's ID, then close: the App opened after
	// the load and ANALYZE plans with the new statistics.
	a, err := Open(ctx, cfg, tLogger(), clk)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	issuing, err := a.store.GetCA(ctx, cfg.DefaultCA)
	a.Close()
	if err != nil {
		tb.Fatal(err)
	}
	env := &expiryEnv{clk: clk, pg: kind == "postgres", start: start}
	env.raw = expiryRawDB(tb, cfg)
	t0 := time.Now()
	if err := loadExpiryInventory(ctx, env.raw, env.pg, issuing.ID, start, n, 1); err != nil {
		tb.Fatalf("load %d certificates: %v", n, err)
	}
	loaded := time.Since(t0)
	t1 := time.Now()
	if err := analyzeAfterLoad(ctx, env.raw, env.pg); err != nil {
		tb.Fatal(err)
	}
	if n >= 100_000 {
		tb.Logf("%s: loaded %d certificates (%d revoked) in %s; statistics and checkpoint in %s",
			kind, n, n/expiryRevokedEvery, loaded.Round(100*time.Millisecond), time.Since(t1).Round(100*time.Millisecond))
	}
	if env.a, err = Open(ctx, cfg, tLogger(), clk); err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { env.a.Close() })
	return env
}

// expiryRawDB opens the App's database directly: a large page cache on
// SQLite so that a million random-key index inserts stay in memory.
func expiryRawDB(tb testing.TB, cfg *config.Config) *sql.DB {
	tb.Helper()
	u := DBURL(cfg)
	var db *sql.DB
	var err error
	if path, ok := strings.CutPrefix(u, "sqlite:"); ok {
		db, err = sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(30000)&_pragma=cache_size(-1048576)")
	} else {
		db, err = postgres.Open(context.Background(), u)
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// invBatch is up to one batch of generated certificates, by column.
type invBatch struct {
	serial, subject, sans, status, fp, spki, owner []string
	notAfter, created                              []time.Time
	der                                            [][]byte
	// The revoked ones among them.
	revSerial          []string
	revAt, revNotAfter []time.Time
	revReason          []int32
}

func (b *invBatch) reset() {
	*b = invBatch{
		serial: b.serial[:0], subject: b.subject[:0], sans: b.sans[:0], status: b.status[:0], fp: b.fp[:0],
		spki: b.spki[:0], owner: b.owner[:0], notAfter: b.notAfter[:0], created: b.created[:0], der: b.der[:0],
		revSerial: b.revSerial[:0], revAt: b.revAt[:0], revNotAfter: b.revNotAfter[:0], revReason: b.revReason[:0],
	}
}

// genInventory produces n web_server certificates in batches of size, in
// issuance order, as the server appends them: not_after (and with it
// created_at) ascending, serials random in Certwright's format. It is
// deterministic for a seed. fn may keep nothing of a batch.
func genInventory(start time.Time, n, size int, seed uint64, fn func(*invBatch) error) error {
	src := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 'c', 'w'})
	rng := rand.New(src)
	offsets := make([]int64, n)
	span := expirySpread.Microseconds()
	for i := range offsets {
		offsets[i] = 1 + rng.Int64N(span)
	}
	slices.Sort(offsets)
	var b invBatch
	for i := 0; i < n; i++ {
		s, err := pki.NewSerial(src)
		if err != nil {
			return err
		}
		serial := pki.SerialHex(s)
		der := make([]byte, expiryDERSize)
		_, _ = src.Read(der)
		der[0], der[1], der[2], der[3] = 0x30, 0x82, byte((expiryDERSize-4)>>8), byte((expiryDERSize-4)&0xff)
		spki := sha256.Sum256(der[100:191])
		name := "host" + strconv.Itoa(i) + ".example.internal"
		notAfter := start.Add(time.Duration(offsets[i]) * time.Microsecond)
		created := notAfter.Add(-expiryValidity)
		status := string(inventory.StatusValid)
		if i%expiryRevokedEvery == expiryRevokedEvery-1 {
			status = string(inventory.StatusRevoked)
			b.revSerial = append(b.revSerial, serial)
			b.revAt = append(b.revAt, created.Add(24*time.Hour))
			b.revNotAfter = append(b.revNotAfter, notAfter)
			b.revReason = append(b.revReason, int32(1+i%5))
		}
		b.serial = append(b.serial, serial)
		b.subject = append(b.subject, "CN="+name)
		b.sans = append(b.sans, `["`+name+`"]`)
		b.status = append(b.status, status)
		b.fp = append(b.fp, pki.Fingerprint(der))
		b.spki = append(b.spki, hex.EncodeToString(spki[:]))
		b.owner = append(b.owner, "team-"+strconv.Itoa(i%40))
		b.notAfter = append(b.notAfter, notAfter)
		b.created = append(b.created, created)
		b.der = append(b.der, der)
		if len(b.serial) == size || i == n-1 {
			if err := fn(&b); err != nil {
				return err
			}
			b.reset()
		}
	}
	return nil
}

// certInsertCols are the columns the load writes; the rest keep their
// defaults (issued here, not auto-renewed, not renewed, no managed key).
const certInsertCols = `serial, ca_id, profile, requester, subject, sans, not_before, not_after, key_algorithm,
	key_bits, signature_algorithm, status, fingerprint, spki_sha256, tags, lint_warnings, der, created_at, owner`

// loadExpiryInventory inserts n certificates of caID into the database
// in one transaction: on SQLite through one prepared multi-row INSERT of
// 1,000 rows (12 parameters each), on PostgreSQL through INSERT ... SELECT
// FROM unnest of column arrays, 10,000 rows per statement. The secondary
// indexes of both tables are dropped first and rebuilt from their own
// definitions after the rows (a sorted build instead of a million random
// inserts); the primary keys stay.
func loadExpiryInventory(ctx context.Context, db *sql.DB, pg bool, caID string, start time.Time, n int, seed uint64) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	indexes, err := dropSecondaryIndexes(ctx, tx, pg)
	if err != nil {
		return err
	}
	if pg {
		err = genInventory(start, n, 10_000, seed, func(b *invBatch) error {
			if _, err := tx.ExecContext(ctx, `INSERT INTO certificates (`+certInsertCols+`)
				SELECT u.serial, $1, 'web_server', 'token:ops', u.subject, u.sans::jsonb, u.created_at, u.not_after, 'ECDSA',
					256, 'ECDSA-SHA256', u.status, u.fp, u.spki, '[]', '[]', u.der, u.created_at, u.owner
				FROM unnest($2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[], $7::text[], $8::text[],
					$9::bytea[], $10::timestamptz[], $11::text[])
					AS u(serial, subject, sans, not_after, status, fp, spki, der, created_at, owner)`,
				caID, b.serial, b.subject, b.sans, b.notAfter, b.status, b.fp, b.spki, b.der, b.created, b.owner); err != nil {
				return fmt.Errorf("insert certificates: %w", err)
			}
			if len(b.revSerial) == 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO revocations (serial, ca_id, revoked_at, reason, invalidity_date, revoked_by, not_after, ca)
				SELECT u.serial, $1, u.revoked_at, u.reason, NULL, 'token:ops', u.not_after, false
				FROM unnest($2::text[], $3::timestamptz[], $4::int4[], $5::timestamptz[]) AS u(serial, revoked_at, reason, not_after)`,
				caID, b.revSerial, b.revAt, b.revReason, b.revNotAfter); err != nil {
				return fmt.Errorf("insert revocations: %w", err)
			}
			return nil
		})
	} else {
		err = loadSQLite(ctx, tx, caID, start, n, seed)
	}
	if err != nil {
		return err
	}
	for _, def := range indexes {
		if _, err := tx.ExecContext(ctx, def); err != nil {
			return fmt.Errorf("rebuild index: %s: %w", def, err)
		}
	}
	return tx.Commit()
}

// dropSecondaryIndexes drops the indexes of certificates and revocations
// that no constraint owns and returns their definitions.
func dropSecondaryIndexes(ctx context.Context, tx *sql.Tx, pg bool) ([]string, error) {
	q := `SELECT name, sql FROM sqlite_master
		WHERE type = 'index' AND tbl_name IN ('certificates', 'revocations') AND sql IS NOT NULL ORDER BY name`
	if pg {
		if _, err := tx.ExecContext(ctx, "SET LOCAL maintenance_work_mem = '256MB'"); err != nil {
			return nil, err
		}
		q = `SELECT indexname, indexdef FROM pg_indexes
			WHERE schemaname = current_schema() AND tablename IN ('certificates', 'revocations')
				AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE connamespace = current_schema()::regnamespace)
			ORDER BY indexname`
	}
	rows, err := tx.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("list indexes: %w", err)
	}
	var names, defs []string
	for rows.Next() {
		var name, def string
		if err := rows.Scan(&name, &def); err != nil {
			rows.Close()
			return nil, err
		}
		names, defs = append(names, name), append(defs, def)
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no secondary indexes on certificates: did the schema change?")
	}
	for _, name := range names {
		if _, err := tx.ExecContext(ctx, "DROP INDEX "+name); err != nil {
			return nil, fmt.Errorf("drop index %s: %w", name, err)
		}
	}
	return defs, nil
}

func loadSQLite(ctx context.Context, tx *sql.Tx, caID string, start time.Time, n int, seed uint64) error {
	const size = 1000
	const row = `(?, ?, 'web_server', 'token:ops', ?, ?, ?, ?, 'ECDSA', 256, 'ECDSA-SHA256', ?, ?, ?, '[]', '[]', ?, ?, ?)`
	insert := func(rows int) string {
		return `INSERT INTO certificates (` + certInsertCols + `) VALUES ` + strings.Repeat(row+",", rows-1) + row
	}
	full, err := tx.PrepareContext(ctx, insert(size))
	if err != nil {
		return err
	}
	defer full.Close()
	rev, err := tx.PrepareContext(ctx, `INSERT INTO revocations (serial, ca_id, revoked_at, reason, invalidity_date, revoked_by, not_after, ca)
		VALUES (?, ?, ?, ?, NULL, 'token:ops', ?, 0)`)
	if err != nil {
		return err
	}
	defer rev.Close()
	args := make([]any, 0, 12*size)
	return genInventory(start, n, size, seed, func(b *invBatch) error {
		args = args[:0]
		for i := range b.serial {
			c := b.created[i].UnixMicro()
			args = append(args, b.serial[i], caID, b.subject[i], b.sans[i], c, b.notAfter[i].UnixMicro(),
				b.status[i], b.fp[i], b.spki[i], b.der[i], c, b.owner[i])
		}
		var err error
		if len(b.serial) == size {
			_, err = full.ExecContext(ctx, args...)
		} else {
			_, err = tx.ExecContext(ctx, insert(len(b.serial)), args...)
		}
		if err != nil {
			return fmt.Errorf("insert certificates: %w", err)
		}
		for i, s := range b.revSerial {
			if _, err := rev.ExecContext(ctx, s, caID, b.revAt[i].UnixMicro(), b.revReason[i], b.revNotAfter[i].UnixMicro()); err != nil {
				return fmt.Errorf("insert revocations: %w", err)
			}
		}
		return nil
	})
}

// analyzeAfterLoad gives the planners statistics of the loaded tables; on
// SQLite it also moves the load out of the WAL into the database file, as
// the App's own checkpoints would have.
func analyzeAfterLoad(ctx context.Context, db *sql.DB, pg bool) error {
	stmts := []string{"ANALYZE", "PRAGMA optimize", "PRAGMA wal_checkpoint(TRUNCATE)"}
	if pg {
		stmts = []string{"VACUUM (ANALYZE) certificates", "VACUUM (ANALYZE) revocations"}
	}
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

// timeArg is a time as the store binds it.
func (e *expiryEnv) timeArg(t time.Time) any {
	if e.pg {
		return t.UTC()
	}
	return t.UnixMicro()
}

// countExpiring counts valid, not renewed certificates whose not_after
// lies in (from, to]: what the check must read for that range.
func (e *expiryEnv) countExpiring(tb testing.TB, from, to time.Time) int {
	tb.Helper()
	var n int
	if err := e.raw.QueryRowContext(context.Background(), pgRebind(e.pg, `SELECT count(*) FROM certificates
		WHERE not_after > ? AND not_after <= ? AND status = 'valid' AND renewed_by = ''`),
		e.timeArg(from), e.timeArg(to)).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

// countAdded counts valid, not renewed certificates added in (from, to]
// that expire by notAfterBefore.
func (e *expiryEnv) countAdded(tb testing.TB, from, to, notAfterBefore time.Time) int {
	tb.Helper()
	var n int
	if err := e.raw.QueryRowContext(context.Background(), pgRebind(e.pg, `SELECT count(*) FROM certificates
		WHERE created_at > ? AND created_at <= ? AND not_after <= ? AND status = 'valid' AND renewed_by = ''`),
		e.timeArg(from), e.timeArg(to), e.timeArg(notAfterBefore)).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

// checkpoint puts SQLite's WAL in the state a restart leaves it: every
// frame written back and the log empty. A check that starts then reads
// the database file directly, which changes how the commits it makes
// while its cursor is open can checkpoint. PostgreSQL has nothing alike.
func (e *expiryEnv) checkpoint(tb testing.TB) {
	tb.Helper()
	if e.pg {
		return
	}
	var busy, log, done int
	if err := e.raw.QueryRowContext(context.Background(), "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &log, &done); err != nil {
		tb.Fatal(err)
	}
	if busy != 0 {
		tb.Fatalf("WAL checkpoint blocked by another connection (log %d frames, %d written back)", log, done)
	}
}

// clearAlerts empties the alerts and their queued deliveries, so that a
// first check raises every alert again instead of finding them raised.
func (e *expiryEnv) clearAlerts(tb testing.TB) {
	tb.Helper()
	stmts := []string{"DELETE FROM alert_deliveries", "DELETE FROM alerts"}
	if e.pg {
		stmts = []string{"TRUNCATE alert_deliveries, alerts"}
	}
	for _, s := range stmts {
		if _, err := e.raw.ExecContext(context.Background(), s); err != nil {
			tb.Fatal(err)
		}
	}
}

// expiryThresholds returns what the check works with, derived as it does:
// every threshold it reads a range for (the configured ones, each
// profile's renewal threshold, and 0 for expiry itself), and those that
// raise an alert for a web_server certificate.
func (e *expiryEnv) expiryThresholds(tb testing.TB) (read, alerting []time.Duration) {
	tb.Helper()
	cfgT := e.a.cfg.Lifecycle.Durations().Thresholds
	profs, err := e.a.profiles.List(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	read = append([]time.Duration{0}, cfgT...)
	alerting = append([]time.Duration{0}, cfgT...)
	for _, p := range profs {
		if p.RenewBeforeDays > 0 {
			d := time.Duration(p.RenewBeforeDays) * 24 * time.Hour
			read = append(read, d)
			if p.Name == "web_server" {
				alerting = append(alerting, d)
			}
		}
	}
	slices.Sort(read)
	slices.Sort(alerting)
	return slices.Compact(read), slices.Compact(alerting)
}

// BenchmarkExpiryCheck measures the scheduled expiry check over an
// inventory of 1,000,000 certificates (not_after uniform over the next 400
// days, 2% revoked), built once per backend, with one alert channel.
//
//   - hourly: the steady state. Each iteration moves the fake clock one
//     hour and checks with prev = the previous now: the check reads only
//     the certificates whose expiry crossed a threshold in that hour (six
//     one-hour not_after ranges: expiry and 1, 7, 14, 30 and 90 days, the
//     last being code_signing's renewal threshold) and raises their alerts.
//     Alerts accumulate across iterations, as they do in production.
//   - first-run: the first check ever (prev zero): it reads every
//     certificate expiring between 7 days ago and the largest threshold
//     (90 days: code_signing's renewal threshold) and raises an alert for
//     each one inside a web_server threshold (30 days). Each iteration
//     empties the alerts and deliveries first, outside the timer, so every
//     iteration does the full work; de-duplication would otherwise make
//     the second and later ones cheaper.
//
// On SQLite every iteration starts, outside the timer, from a checkpointed
// WAL: the state after a restart, and the costlier one for a check whose
// commits happen while its read is open (checkpoints cannot proceed, and
// each commit retries one over the growing log).
//
// Both check their counts against COUNT(*) over the same ranges. Run:
//
//	go test ./internal/app -run XXX -bench 'BenchmarkExpiryCheck/.*/hourly' -benchtime 5x
//	go test ./internal/app -run XXX -bench 'BenchmarkExpiryCheck/.*/first-run' -benchtime 1x
func BenchmarkExpiryCheck(b *testing.B) {
	for _, kind := range benchStores(b) {
		b.Run(kind, func(b *testing.B) {
			env := newExpiryEnv(b, kind, 1_000_000)
			ctx := context.Background()
			read, alerting := env.expiryThresholds(b)
			env.logPlans(b, read[len(read)-1])

			b.Run("hourly", func(b *testing.B) {
				env.clearAlerts(b)
				begin := env.start.Add(time.Minute)
				env.clk.Set(begin)
				examined, raised := 0, 0
				for b.Loop() {
					b.StopTimer()
					env.checkpoint(b)
					b.StartTimer()
					prev := env.clk.Now()
					env.clk.Advance(time.Hour)
					res, err := env.a.lifecycle.CheckExpiry(ctx, prev)
					if err != nil {
						b.Fatal(err)
					}
					examined += res.Examined
					raised += res.Raised
				}
				b.StopTimer()
				end := env.clk.Now()
				wantExamined, wantRaised := 0, 0
				for _, t := range read {
					n := env.countExpiring(b, begin.Add(t), end.Add(t))
					wantExamined += n
					if slices.Contains(alerting, t) {
						wantRaised += n
					}
				}
				// Each run also reads what was added around it: only the
				// certificates Init issued (the server's own), in the first.
				added := 0
				for k := range b.N {
					prev := begin.Add(time.Duration(k) * time.Hour)
					now := prev.Add(time.Hour)
					added += env.countAdded(b, prev.Add(-createdOverlapCopy), now.Add(createdOverlapCopy), now.Add(read[len(read)-1]))
				}
				if examined != wantExamined+added || raised < wantRaised || raised > wantRaised+added {
					b.Errorf("over %d hours the check examined %d certificates and raised %d alerts; the inventory holds %d in the crossed ranges (%d raising an alert) and %d added during the runs",
						b.N, examined, raised, wantExamined, wantRaised, added)
				}
				b.ReportMetric(float64(examined)/float64(b.N), "certs/op")
				b.ReportMetric(float64(raised)/float64(b.N), "alerts/op")
			})

			b.Run("first-run", func(b *testing.B) {
				now := env.start.Add(time.Minute)
				env.clk.Set(now)
				examined, raised := 0, 0
				for b.Loop() {
					b.StopTimer()
					env.clearAlerts(b)
					env.checkpoint(b)
					b.StartTimer()
					res, err := env.a.lifecycle.CheckExpiry(ctx, time.Time{})
					if err != nil {
						b.Fatal(err)
					}
					examined += res.Examined
					raised += res.Raised
				}
				b.StopTimer()
				from := now.Add(-firstRunLookbackCopy)
				wantExamined := env.countExpiring(b, from, now.Add(read[len(read)-1]))
				wantRaised := env.countExpiring(b, from, now.Add(alerting[len(alerting)-1]))
				if examined != b.N*wantExamined || raised != b.N*wantRaised {
					b.Errorf("%d first checks examined %d certificates and raised %d alerts; want %d and %d each",
						b.N, examined, raised, wantExamined, wantRaised)
				}
				b.ReportMetric(float64(examined)/float64(b.N), "certs/op")
				b.ReportMetric(float64(raised)/float64(b.N), "alerts/op")
			})
		})
	}
}

// logPlans logs the plans of the check's queries at full size (maxT: the
// largest threshold) and fails the hourly ones that scan certificates.
func (e *expiryEnv) logPlans(b *testing.B, maxT time.Duration) {
	b.Helper()
	for _, pc := range expiryPlanCases(e.start, maxT) {
		for _, mode := range e.planModes() {
			lines, err := e.explain(context.Background(), pc.query, mode, pc.args)
			if err != nil {
				b.Fatal(err)
			}
			if err := checkPlan(lines, pc.index, e.pg); err != nil && pc.steady {
				b.Errorf("%s (%s): %v", pc.name, mode, err)
			}
			b.Logf("plan of %s (%s):\n\t%s", pc.name, mode, strings.Join(lines, "\n\t"))
		}
	}
}

// ---- the check's queries and their plans

// expiryCertSelect mirrors store.buildQueries' certSelect: certColumns and
// revColumns (internal/store/queries.go), qualified by c and r.
const expiryCertSelect = `SELECT c.serial, c.ca_id, c.profile, c.requester, c.subject, c.sans, c.not_before, c.not_after, c.key_algorithm,
	c.key_bits, c.signature_algorithm, c.status, c.fingerprint, c.spki_sha256, c.tags, c.lint_warnings, c.der,
	c.managed_key_provider, c.managed_key_id, c.managed_key_algorithm, c.managed_key_blob, c.created_at, c.renew_now_at,
	c.source, c.owner, c.issuer, c.issuer_serial, c.chain_der, c.auto_renew, c.replaces, c.renewed_by, c.renewal_kind,
	c.renew_failures, c.renew_retry_at, c.renew_error, c.supersede_at,
	r.serial, r.ca_id, r.revoked_at, r.reason, r.invalidity_date, r.revoked_by, r.not_after, r.ca
		FROM certificates c LEFT JOIN revocations r ON r.serial = c.serial`

// The statements of store.EachExpiringBetween and store.EachCreatedBetween
// (internal/store/lifecycle.go), '?' placeholders. Keep them in sync:
// TestExpiryCheckUsesIndex checks they return what the store returns.
const (
	expiringQuery = expiryCertSelect + ` WHERE c.not_after > ? AND c.not_after <= ? AND c.status = 'valid' AND c.renewed_by = '' ORDER BY c.not_after`
	createdQuery  = expiryCertSelect + ` WHERE c.created_at > ? AND c.created_at <= ? AND c.not_after <= ? AND c.status = 'valid' AND c.renewed_by = ''`
)

// pgRebind numbers '?' placeholders for PostgreSQL, as the store does.
func pgRebind(pg bool, q string) string {
	if !pg {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// planCase is one query with the arguments a check passes.
type planCase struct {
	name   string
	query  string
	index  string
	args   []time.Time
	steady bool // an hourly check's query (must use the index at any size)
}

// expiryPlanCases are the check's queries with the arguments of an hourly
// run (every threshold's range is one hour wide) and of a first run.
func expiryPlanCases(now time.Time, maxT time.Duration) []planCase {
	prev := now.Add(-time.Hour)
	return []planCase{
		{"expiring in the hour crossing 30d", expiringQuery, "certificates_not_after", []time.Time{prev.Add(30 * 24 * time.Hour), now.Add(30 * 24 * time.Hour)}, true},
		{"expired in the hour", expiringQuery, "certificates_not_after", []time.Time{prev, now}, true},
		{"added since the last run", createdQuery, "certificates_created_at",
			[]time.Time{prev.Add(-createdOverlapCopy), now.Add(createdOverlapCopy), now.Add(maxT)}, true},
		{"first run (all within 90d)", expiringQuery, "certificates_not_after", []time.Time{now.Add(-firstRunLookbackCopy), now.Add(maxT)}, false},
	}
}

// planModes: SQLite plans each statement with its arguments. The store's
// pgx driver prepares statements server-side and caches them, so
// PostgreSQL plans them with the arguments for the first five executions
// and may then switch to one generic plan: both must use the index.
func (e *expiryEnv) planModes() []string {
	if e.pg {
		return []string{"force_custom_plan", "force_generic_plan"}
	}
	return []string{"sqlite"}
}

// explain returns the plan of q with args: EXPLAIN QUERY PLAN's details on
// SQLite; on PostgreSQL EXPLAIN EXECUTE of the prepared statement under
// plan_cache_mode = mode.
func (e *expiryEnv) explain(ctx context.Context, q, mode string, args []time.Time) ([]string, error) {
	conn, err := e.raw.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	var rows *sql.Rows
	if e.pg {
		if _, err := conn.ExecContext(ctx, "SET plan_cache_mode = "+mode); err != nil {
			return nil, err
		}
		defer conn.ExecContext(ctx, "RESET plan_cache_mode")
		if _, err := conn.ExecContext(ctx, "PREPARE cw_expiry_plan AS "+pgRebind(true, q)); err != nil {
			return nil, fmt.Errorf("prepare: %w", err)
		}
		defer conn.ExecContext(ctx, "DEALLOCATE cw_expiry_plan")
		lits := make([]string, len(args))
		for i, t := range args {
			lits[i] = "'" + t.UTC().Format(time.RFC3339Nano) + "'::timestamptz"
		}
		rows, err = conn.QueryContext(ctx, "EXPLAIN EXECUTE cw_expiry_plan("+strings.Join(lits, ", ")+")")
	} else {
		a := make([]any, len(args))
		for i, t := range args {
			a[i] = t.UnixMicro()
		}
		rows, err = conn.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q, a...)
	}
	if err != nil {
		return nil, fmt.Errorf("explain: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var line string
		if e.pg {
			err = rows.Scan(&line)
		} else {
			var id, parent, unused int
			err = rows.Scan(&id, &parent, &unused, &line)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, line)
	}
	return out, rows.Err()
}

// checkPlan fails a plan that reads certificates other than through a
// range search on index.
func checkPlan(lines []string, index string, pg bool) error {
	uses := false
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if pg {
			if strings.Contains(l, "Seq Scan on certificates") {
				return fmt.Errorf("full table scan: %q", l)
			}
			if strings.Contains(l, "Index Scan using "+index+" on certificates") ||
				strings.Contains(l, "Index Only Scan using "+index+" on certificates") ||
				strings.Contains(l, "Bitmap Index Scan on "+index) {
				uses = true
			}
			continue
		}
		// "SCAN c" (with or without "USING INDEX") walks the whole table or
		// a whole index; "SEARCH c USING INDEX i (...)" is a range search.
		if strings.HasPrefix(l, "SCAN c") || strings.HasPrefix(l, "SCAN certificates") {
			return fmt.Errorf("full scan: %q", l)
		}
		if strings.HasPrefix(l, "SEARCH c USING INDEX "+index+" (") || strings.HasPrefix(l, "SEARCH c USING COVERING INDEX "+index+" (") {
			uses = true
		}
	}
	if !uses {
		return fmt.Errorf("no range search on %s in the plan:\n\t%s", index, strings.Join(lines, "\n\t"))
	}
	return nil
}

// TestExpiryCheckUsesIndex: the queries of the expiry check search the
// not_after and created_at indexes and never scan the certificates table,
// on SQLite and PostgreSQL (with the arguments and, on PostgreSQL, as the
// cached generic plan), over an analysed inventory of 20,000 certificates.
// It first checks that its copies of the store's statements return what
// the store's methods return.
func TestExpiryCheckUsesIndex(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			env := newExpiryEnv(t, be.name, 20_000)
			ctx := context.Background()
			now := env.start

			// The copies select what the store selects.
			ranges := []struct {
				q    string
				args []time.Time
				each func(fn func(*inventory.Certificate) error) error
			}{
				{expiringQuery, []time.Time{now.Add(10 * 24 * time.Hour), now.Add(40 * 24 * time.Hour)}, func(fn func(*inventory.Certificate) error) error {
					return env.a.store.EachExpiringBetween(ctx, now.Add(10*24*time.Hour), now.Add(40*24*time.Hour), fn)
				}},
				{createdQuery, []time.Time{now.Add(-30 * 24 * time.Hour), now, now.Add(expirySpread)}, func(fn func(*inventory.Certificate) error) error {
					return env.a.store.EachCreatedBetween(ctx, now.Add(-30*24*time.Hour), now, now.Add(expirySpread), fn)
				}},
			}
			for _, r := range ranges {
				var fromStore []string
				if err := r.each(func(c *inventory.Certificate) error {
					fromStore = append(fromStore, c.Serial)
					return nil
				}); err != nil {
					t.Fatal(err)
				}
				args := make([]any, len(r.args))
				for i, a := range r.args {
					args[i] = env.timeArg(a)
				}
				rows, err := env.raw.QueryContext(ctx, pgRebind(env.pg, r.q), args...)
				if err != nil {
					t.Fatalf("the copy of the store's query fails (out of sync with internal/store/lifecycle.go?): %v", err)
				}
				var fromCopy []string
				for rows.Next() {
					cols, _ := rows.Columns()
					dest := make([]any, len(cols))
					var serial string
					dest[0] = &serial
					for i := 1; i < len(dest); i++ {
						dest[i] = new(any)
					}
					if err := rows.Scan(dest...); err != nil {
						t.Fatal(err)
					}
					fromCopy = append(fromCopy, serial)
				}
				if err := rows.Close(); err != nil {
					t.Fatal(err)
				}
				if len(fromStore) == 0 {
					t.Fatalf("the store returned no certificates for %v: the inventory does not exercise the query", r.args)
				}
				slices.Sort(fromStore)
				slices.Sort(fromCopy)
				if !slices.Equal(fromStore, fromCopy) {
					t.Fatalf("the copy of the store's query returned %d certificates, the store %d: update expiringQuery/createdQuery from internal/store/lifecycle.go",
						len(fromCopy), len(fromStore))
				}
			}

			// The check recognises a scan: issuer has no index, and a row
			// matching either term must be found whatever the statistics say.
			lines, err := env.explain(ctx, expiryCertSelect+` WHERE c.issuer = ? OR c.not_after > ?`, env.planModes()[0], []time.Time{now, now})
			if err != nil {
				t.Fatal(err)
			}
			if err := checkPlan(lines, "certificates_not_after", env.pg); err == nil {
				t.Fatalf("checkPlan accepted a plan that filters on an unindexed column:\n\t%s", strings.Join(lines, "\n\t"))
			}

			read, _ := env.expiryThresholds(t)
			for _, pc := range expiryPlanCases(now, read[len(read)-1]) {
				for _, mode := range env.planModes() {
					lines, err := env.explain(ctx, pc.query, mode, pc.args)
					if err != nil {
						t.Fatalf("%s: %v", pc.name, err)
					}
					t.Logf("plan of %s (%s):\n\t%s", pc.name, mode, strings.Join(lines, "\n\t"))
					if err := checkPlan(lines, pc.index, env.pg); err != nil {
						if pc.steady {
							t.Errorf("%s (%s): %v", pc.name, mode, err)
						} else {
							t.Logf("%s (%s): %v", pc.name, mode, err)
						}
					}
				}
			}
		})
	}
}

package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/store"
)

// importTests cover certificate import (compliance.ImportStore) and the
// compliance report's queries (compliance.ReportStore).
var importTests = []struct {
	name string
	fn   func(*testing.T, func(*testing.T) *store.DB)
}{
	{"ImportCertificates", testImportCertificates},
	{"ImportCertificatesRefusesMismatch", testImportCertificatesMismatch},
	{"ComplianceCandidates", testComplianceCandidates},
	{"RenewalStats", testRenewalStats},
	{"ExpiryIncidents", testExpiryIncidents},
}

// importedCert is an imported certificate's record as the importer builds it.
func importedCert(serial string) *inventory.Certificate {
	c := newCert(serial, "")
	c.Profile, c.Source, c.Issuer, c.IssuerSerial = "", inventory.SourceImported, "CN=Elsewhere CA", "0102"
	c.Chain = [][]byte{[]byte("intermediate of " + serial)}
	c.Owner = "team-web"
	return c
}

func importEvent(serial string) audit.Event {
	ev := tev()
	ev.Action, ev.Target = "certificate.import", serial
	return ev
}

func auditSeq(t *testing.T, db *store.DB) int64 {
	t.Helper()
	seq, _, err := db.AuditHead(context.Background())
	must(t, err)
	return seq
}

func testImportCertificates(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	must(t, db.InsertCertificate(ctx, importedCert("f1"), importEvent("f1")))
	before := auditSeq(t, db)

	certs := []*inventory.Certificate{importedCert("f1"), importedCert("f2"), importedCert("f3")}
	evs := []audit.Event{importEvent("f1"), importEvent("f2"), importEvent("f3")}
	inserted, err := db.ImportCertificates(ctx, certs, evs)
	must(t, err)
	if want := []bool{false, true, true}; !slices.Equal(inserted, want) {
		t.Fatalf("inserted = %v, want %v (f1 was already there)", inserted, want)
	}
	if got := auditSeq(t, db); got != before+2 {
		t.Errorf("audit head %d after importing two new certificates, want %d: one event per inserted certificate", got, before+2)
	}
	for _, s := range []string{"f2", "f3"} {
		got, err := db.GetCertificate(ctx, s)
		must(t, err)
		checkCert(t, got, importedCert(s))
	}
	var actions []string
	must(t, db.EachAuditEvent(ctx, before+1, func(e *audit.Event) error {
		actions = append(actions, e.Action+" "+e.Target)
		return nil
	}))
	if want := []string{"certificate.import f2", "certificate.import f3"}; !slices.Equal(actions, want) {
		t.Errorf("audit events = %q, want %q", actions, want)
	}
	got, err := db.ListCertificates(ctx, inventory.Filter{Tag: "prod", SAN: "f3.example.com"})
	must(t, err)
	if len(got) != 1 || got[0].Serial != "f3" {
		t.Errorf("imported certificate not found by its SAN and tag: %v", got)
	}

	inserted, err = db.ImportCertificates(ctx, nil, nil)
	must(t, err)
	if len(inserted) != 0 {
		t.Errorf("empty import: inserted = %v", inserted)
	}
}

func testImportCertificatesMismatch(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	before := auditSeq(t, db)
	if _, err := db.ImportCertificates(ctx, []*inventory.Certificate{importedCert("f1")}, nil); err == nil {
		t.Fatal("ImportCertificates accepted one certificate with no audit event")
	}
	bad := importEvent("f2")
	bad.Action = ""
	_, err := db.ImportCertificates(ctx, []*inventory.Certificate{importedCert("f1"), importedCert("f2")}, []audit.Event{importEvent("f1"), bad})
	if err == nil {
		t.Fatal("ImportCertificates accepted an audit event without an action")
	}
	n, err := db.CountCertificates(ctx, "")
	must(t, err)
	if n != 0 || auditSeq(t, db) != before {
		t.Errorf("a refused import stored %d certificates and %d events, want none", n, auditSeq(t, db)-before)
	}
}

func testComplianceCandidates(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	now := base()
	since := now.Add(-90 * 24 * time.Hour)
	at := func(serial string, notAfter time.Time) *inventory.Certificate {
		c := newCert(serial, "ca1")
		c.NotBefore, c.NotAfter = notAfter.Add(-365*24*time.Hour), notAfter
		return c
	}
	certs := []*inventory.Certificate{
		at("01", now.Add(10*24*time.Hour)),            // current
		at("02", now.Add(-5*24*time.Hour)),            // expired in the period
		at("03", now.Add(-100*24*time.Hour)),          // expired before it
		at("04", now.Add(20*24*time.Hour)),            // revoked below
		at("05", now.Add(2*24*time.Hour)),             // renewed by 06
		at("06", now.Add(300*24*time.Hour)),           // its successor
		importedCert("f7"),                            // imported, current (base + 90 days)
		at("08", since),                               // exactly at since: included
		at("09", since.Add(-time.Microsecond)),        // just before: excluded
		at("0a", now.Add(-1*24*time.Hour)),            // expired, revoked below
		at("0b", now.Add(365*24*time.Hour+time.Hour)), // current, latest
	}
	certs[4].RenewedBy = "06"
	for _, c := range certs {
		must(t, db.InsertCertificate(ctx, c, tev()))
	}
	for _, s := range []string{"04", "0a"} {
		_, _, err := db.RevokeCertificate(ctx, newRev(s), tev())
		must(t, err)
	}
	var got []string
	var imported *inventory.Certificate
	must(t, db.EachComplianceCandidate(ctx, since, func(c *inventory.Certificate) error {
		got = append(got, c.Serial)
		if c.Source == inventory.SourceImported {
			imported = c
		}
		return nil
	}))
	want := []string{"08", "02", "01", "f7", "06", "0b"}
	if !slices.Equal(got, want) {
		t.Errorf("candidates = %v, want %v (valid, not renewed, not expired before since, soonest first)", got, want)
	}
	if imported == nil || len(imported.Chain) != 1 || imported.Owner != "team-web" {
		t.Errorf("imported candidate = %+v, want its chain and owner", imported)
	}
	stop := context.Canceled
	n := 0
	err := db.EachComplianceCandidate(ctx, since, func(*inventory.Certificate) error {
		n++
		return stop
	})
	if err != stop || n != 1 {
		t.Errorf("an error from fn: got %v after %d calls, want it returned as is after 1", err, n)
	}
}

func testRenewalStats(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	now := base()
	since := now.Add(-30 * 24 * time.Hour)
	attempts := []inventory.RenewalAttempt{
		{Serial: "01", NewSerial: "11", Kind: inventory.RenewalAuto, OK: true, At: now.Add(-time.Hour), DaysLeft: 20},
		{Serial: "02", NewSerial: "12", Kind: inventory.RenewalAgent, OK: true, At: now.Add(-2 * time.Hour), DaysLeft: 0.5},
		{Serial: "03", NewSerial: "13", Kind: inventory.RenewalManual, OK: true, At: now.Add(-3 * time.Hour), DaysLeft: 0.2},
		{Serial: "04", Kind: inventory.RenewalAuto, OK: false, Error: "CA disabled", At: now.Add(-4 * time.Hour), DaysLeft: 0.1},
		{Serial: "05", NewSerial: "15", Kind: inventory.RenewalACME, OK: true, At: since, DaysLeft: 10},
		{Serial: "06", NewSerial: "16", Kind: inventory.RenewalAuto, OK: true, At: since.Add(-time.Second), DaysLeft: 0.1}, // before the period
		{Serial: "07", NewSerial: "17", Kind: inventory.RenewalAuto, OK: true, At: now, DaysLeft: 0.1},                     // at until: excluded
	}
	for _, a := range attempts {
		must(t, db.RecordRenewalAttempt(ctx, a))
	}
	got, err := db.RenewalStats(ctx, since, now)
	must(t, err)
	if got.Attempts != 5 || got.Succeeded != 4 || got.NearMisses != 2 {
		t.Errorf("stats = %d attempts, %d succeeded, %d near misses; want 5, 4, 2", got.Attempts, got.Succeeded, got.NearMisses)
	}
	wantKinds := map[inventory.RenewalKind]int{inventory.RenewalAuto: 1, inventory.RenewalAgent: 1, inventory.RenewalManual: 1, inventory.RenewalACME: 1}
	for k, n := range wantKinds {
		if got.SucceededByKind[k] != n {
			t.Errorf("succeeded %s = %d, want %d (all: %v)", k, got.SucceededByKind[k], n, got.SucceededByKind)
		}
	}
	empty, err := db.RenewalStats(ctx, now.Add(time.Hour), now.Add(2*time.Hour))
	must(t, err)
	if empty.Attempts != 0 || empty.SucceededByKind == nil {
		t.Errorf("empty period: %+v, want no attempts and a non-nil map", empty)
	}
}

func testExpiryIncidents(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	now := base()
	since := now.Add(-30 * 24 * time.Hour)
	at := func(serial string, notAfter time.Time) *inventory.Certificate {
		c := newCert(serial, "ca1")
		c.NotBefore, c.NotAfter = notAfter.Add(-90*24*time.Hour), notAfter
		return c
	}
	certs := []*inventory.Certificate{
		at("01", now.Add(-24*time.Hour)),  // incident
		at("02", since),                   // incident, at the start of the period
		at("03", now.Add(-48*time.Hour)),  // renewed: not an incident
		at("04", now.Add(-72*time.Hour)),  // revoked: not an incident
		at("05", since.Add(-time.Second)), // before the period
		at("06", now.Add(time.Hour)),      // not expired
		at("07", now.Add(-12*time.Hour)),  // incident
		at("08", now),                     // at until: excluded
	}
	certs[2].RenewedBy = "99"
	for _, c := range certs {
		must(t, db.InsertCertificate(ctx, c, tev()))
	}
	_, _, err := db.RevokeCertificate(ctx, newRev("04"), tev())
	must(t, err)
	n, err := db.CountExpiryIncidents(ctx, since, now)
	must(t, err)
	if n != 3 {
		t.Errorf("expiry incidents = %d, want 3 (01, 02, 07)", n)
	}
}

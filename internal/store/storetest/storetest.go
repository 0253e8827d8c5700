package storetest

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/keys"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/store"
)

// Run is the store conformance suite. open returns a store on the database
// that belongs to t; called again with the same t (after Close) it must
// reopen that same database, and different tests must get different
// databases. open closes the store when t ends (Close is idempotent, so the
// suite may close it first).
func Run(t *testing.T, open func(t *testing.T) *store.DB) {
	tests := []struct {
		name string
		fn   func(*testing.T, func(*testing.T) *store.DB)
	}{
		{"Migrations", testMigrations},
		{"CAs", testCAs},
		{"CAOrder", testCAOrder},
		{"PurgeCAs", testPurgeCAs},
		{"Certificates", testCertificates},
		{"TimeRoundTrip", testTimeRoundTrip},
		{"ListCertificates", testListCertificates},
		{"ListLimits", testListLimits},
		{"CountCertificates", testCountCertificates},
		{"InventoryCounts", testInventoryCounts},
		{"InventoryCountsBackfill", testInventoryCountsBackfill},
		{"ConcurrentInsertDurable", testConcurrentInsertDurable},
		{"ConcurrentConflict", testConcurrentConflict},
		{"CancelledInsert", testCancelledInsert},
		{"CloseDrains", testCloseDrains},
		{"InsertAfterClose", testInsertAfterClose},
		{"Profiles", testProfiles},
		{"Settings", testSettings},
		{"AlertPages", testAlertPages},
	}
	tests = append(tests, revocationTests...)
	tests = append(tests, auditTests...)
	tests = append(tests, accessTests...)
	tests = append(tests, acmeTests...)
	tests = append(tests, importTests...)
	tests = append(tests, endpointTests...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open)
		})
	}
}

// base has nanoseconds and a zone so that round trips exercise truncation
// to microseconds and conversion to UTC.
func base() time.Time {
	return time.Date(2026, time.March, 4, 5, 6, 7, 123456789, time.FixedZone("UTC+1", 3600))
}

func ptr[T any](v T) *T { return &v }

// tev returns a valid audit event for the changes a test makes.
func tev() audit.Event {
	return audit.Event{Time: base(), Principal: "test", Action: "test.action", Outcome: audit.Success}
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("err = %v, want %v", err, target)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// stored is what a time reads back as.
func stored(tm time.Time) time.Time { return tm.UTC().Truncate(time.Microsecond) }

func checkTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(stored(want)) || got.Location() != time.UTC {
		t.Errorf("%s = %v, want %v in UTC", what, got, stored(want))
	}
}

func checkNullTime(t *testing.T, what string, got, want *time.Time) {
	t.Helper()
	switch {
	case got == nil && want == nil:
	case got == nil || want == nil:
		t.Errorf("%s = %v, want %v", what, got, want)
	default:
		checkTime(t, what, *got, *want)
	}
}

func newCA(id, name string) *ca.CA {
	return &ca.CA{
		ID:     id,
		Name:   name,
		Kind:   ca.KindRoot,
		Status: ca.StatusActive,
		Key: keys.Ref{
			Provider:  "software",
			ID:        "key-" + id,
			Algorithm: pki.ECDSAP256,
			Blob:      []byte("wrapped key of " + id + "\x00\xff"),
		},
		CertDER:   []byte("cert der of " + id),
		CreatedAt: base(),
		UpdatedAt: base().Add(time.Minute),
	}
}

func checkCA(t *testing.T, got, want *ca.CA) {
	t.Helper()
	checkTime(t, "CreatedAt", got.CreatedAt, want.CreatedAt)
	checkTime(t, "UpdatedAt", got.UpdatedAt, want.UpdatedAt)
	checkNullTime(t, "DeletedAt", got.DeletedAt, want.DeletedAt)
	checkNullTime(t, "RestorableUntil", got.RestorableUntil, want.RestorableUntil)
	g, w := *got, *want
	g.CreatedAt, g.UpdatedAt, g.DeletedAt, g.RestorableUntil = time.Time{}, time.Time{}, nil, nil
	w.CreatedAt, w.UpdatedAt, w.DeletedAt, w.RestorableUntil = time.Time{}, time.Time{}, nil, nil
	if !bytes.Equal(g.Key.Blob, w.Key.Blob) || !bytes.Equal(g.CertDER, w.CertDER) || !bytes.Equal(g.CSRDER, w.CSRDER) {
		t.Errorf("CA %s blobs: got key %q cert %q csr %q, want %q %q %q", w.ID, g.Key.Blob, g.CertDER, g.CSRDER, w.Key.Blob, w.CertDER, w.CSRDER)
	}
	if !slices.EqualFunc(g.ChainDER, w.ChainDER, bytes.Equal) {
		t.Errorf("CA %s ChainDER = %q, want %q", w.ID, g.ChainDER, w.ChainDER)
	}
	g.Key.Blob, g.CertDER, g.CSRDER, g.ChainDER = nil, nil, nil, nil
	w.Key.Blob, w.CertDER, w.CSRDER, w.ChainDER = nil, nil, nil, nil
	if !reflect.DeepEqual(g, w) {
		t.Errorf("CA = %+v, want %+v", g, w)
	}
}

func newCert(serial, caID string) *inventory.Certificate {
	return &inventory.Certificate{
		Serial:             serial,
		CAID:               caID,
		Profile:            "server",
		Requester:          "alice",
		Subject:            "CN=" + serial,
		SANs:               []string{serial + ".example.com", "Mixed.Example.ORG"},
		NotBefore:          base(),
		NotAfter:           base().Add(90 * 24 * time.Hour),
		KeyAlgorithm:       pki.FamilyECDSA,
		KeyBits:            256,
		SignatureAlgorithm: "ECDSA-SHA256",
		Status:             inventory.StatusValid,
		Source:             inventory.SourceIssued,
		Fingerprint:        "ab" + serial,
		Tags:               []string{"prod"},
		LintWarnings:       []string{},
		DER:                []byte("der of " + serial),
		CreatedAt:          base(),
	}
}

func checkCert(t *testing.T, got, want *inventory.Certificate) {
	t.Helper()
	checkTime(t, "NotBefore", got.NotBefore, want.NotBefore)
	checkTime(t, "NotAfter", got.NotAfter, want.NotAfter)
	checkTime(t, "CreatedAt", got.CreatedAt, want.CreatedAt)
	checkTime(t, "RenewRetryAt", got.RenewRetryAt, want.RenewRetryAt)
	checkTime(t, "SupersedeAt", got.SupersedeAt, want.SupersedeAt)
	for _, s := range [][]string{got.SANs, got.Tags, got.LintWarnings} {
		if s == nil {
			t.Errorf("certificate %s: SANs, Tags and LintWarnings must be non-nil, got %#v %#v %#v", want.Serial, got.SANs, got.Tags, got.LintWarnings)
			break
		}
	}
	g, w := *got, *want
	g.NotBefore, g.NotAfter, g.CreatedAt = time.Time{}, time.Time{}, time.Time{}
	w.NotBefore, w.NotAfter, w.CreatedAt = time.Time{}, time.Time{}, time.Time{}
	g.RenewRetryAt, g.SupersedeAt, w.RenewRetryAt, w.SupersedeAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	for _, s := range []*[]string{&w.SANs, &w.Tags, &w.LintWarnings} {
		if *s == nil {
			*s = []string{}
		}
	}
	if !bytes.Equal(g.DER, w.DER) {
		t.Errorf("certificate %s DER = %q, want %q", w.Serial, g.DER, w.DER)
	}
	g.DER, w.DER = nil, nil
	if !reflect.DeepEqual(g, w) {
		t.Errorf("certificate = %+v\nwant %+v", g, w)
	}
}

func serials(cs []*inventory.Certificate) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Serial
	}
	return out
}

func testMigrations(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	if d := db.Dialect(); d != "sqlite" && d != "postgres" {
		t.Errorf("Dialect() = %q", d)
	}
	must(t, db.PutSetting(ctx, "k", []byte("v")))
	must(t, db.Close())
	// Reopening runs the migrations again; they must see they are applied.
	for range 2 {
		db = open(t)
		got, err := db.GetSetting(ctx, "k")
		must(t, err)
		if string(got) != "v" {
			t.Errorf("setting after reopen = %q", got)
		}
		must(t, db.Close())
	}
}

func testCAs(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)

	if _, err := db.GetCA(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetCA(unknown) err = %v, want ErrNotFound", err)
	}
	cas, err := db.ListCAs(ctx)
	must(t, err)
	if len(cas) != 0 {
		t.Fatalf("ListCAs on empty store = %d CAs", len(cas))
	}

	root := newCA("root1", "Root One")
	pending := &ca.CA{
		ID: "int1", Name: "Intermediate One", Kind: ca.KindIntermediate, ParentID: "ext",
		External: true, Status: ca.StatusPending,
		Key:       keys.Ref{Provider: "pkcs11", ID: "label-1", Algorithm: pki.RSA3072},
		CSRDER:    []byte("csr"),
		ChainDER:  [][]byte{[]byte("issuer"), []byte("root\x00")},
		CreatedAt: base(), UpdatedAt: base(),
	}
	must(t, db.CreateCA(ctx, root, tev()))
	must(t, db.CreateCA(ctx, pending, tev()))

	for _, key := range []string{"root1", "Root One"} {
		got, err := db.GetCA(ctx, key)
		must(t, err)
		checkCA(t, got, root)
	}
	got, err := db.GetCA(ctx, "int1")
	must(t, err)
	checkCA(t, got, pending)
	if got.CertDER != nil || got.Key.Blob != nil {
		t.Errorf("pending CA: CertDER %q, Key.Blob %q, want nil", got.CertDER, got.Key.Blob)
	}

	wantErr(t, db.CreateCA(ctx, newCA("root1", "Another Name"), tev()), store.ErrConflict)
	wantErr(t, db.CreateCA(ctx, newCA("root2", "Root One"), tev()), store.ErrConflict)

	// Whole-row update, soft delete included.
	upd := *root
	upd.Name = "Root One Renamed"
	upd.Status, upd.PreviousStatus = ca.StatusDeleted, ca.StatusActive
	upd.DeletedAt = ptr(base().Add(time.Hour))
	upd.RestorableUntil = ptr(base().Add(30 * 24 * time.Hour))
	upd.UpdatedAt = base().Add(time.Hour)
	upd.Key.Blob = []byte("rewrapped")
	upd.ChainDER = [][]byte{[]byte("c")}
	must(t, db.UpdateCA(ctx, &upd, tev()))
	got, err = db.GetCA(ctx, "Root One Renamed")
	must(t, err)
	checkCA(t, got, &upd)
	if _, err := db.GetCA(ctx, "Root One"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetCA(old name) err = %v, want ErrNotFound", err)
	}

	wantErr(t, db.UpdateCA(ctx, newCA("ghost", "Ghost"), tev()), store.ErrNotFound)
	clash := *pending
	clash.Name = "Root One Renamed"
	wantErr(t, db.UpdateCA(ctx, &clash, tev()), store.ErrConflict)

	// An ID match wins over a name that happens to equal it.
	must(t, db.CreateCA(ctx, newCA("root3", "int1"), tev()))
	got, err = db.GetCA(ctx, "int1")
	must(t, err)
	if got.ID != "int1" {
		t.Errorf("GetCA(int1) = CA %q, want the CA with ID int1", got.ID)
	}
}

func testCAOrder(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	for _, c := range []struct {
		id      string
		created time.Time
		deleted bool
	}{
		{"c", base().Add(2 * time.Second), false},
		{"b", base(), true},
		{"a", base().Add(time.Second), false},
		{"d", base(), false},
	} {
		x := newCA(c.id, "CA "+c.id)
		x.CreatedAt = c.created
		if c.deleted {
			x.Status, x.DeletedAt, x.RestorableUntil = ca.StatusDeleted, ptr(base()), ptr(base())
		}
		must(t, db.CreateCA(ctx, x, tev()))
	}
	cas, err := db.ListCAs(ctx)
	must(t, err)
	var ids []string
	for _, c := range cas {
		ids = append(ids, c.ID)
	}
	if want := []string{"b", "d", "a", "c"}; !slices.Equal(ids, want) {
		t.Errorf("ListCAs order = %v, want %v (CreatedAt, then ID; deleted included)", ids, want)
	}
}

func testPurgeCAs(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	now := base().Add(100 * time.Hour)
	for _, c := range []struct {
		id         string
		status     ca.Status
		restorable *time.Time
	}{
		{"active", ca.StatusActive, nil},
		{"disabled-past", ca.StatusDisabled, ptr(now.Add(-time.Hour))},
		{"deleted-future", ca.StatusDeleted, ptr(now.Add(time.Hour))},
		{"deleted-now", ca.StatusDeleted, ptr(now)},
		{"deleted-past", ca.StatusDeleted, ptr(now.Add(-time.Hour))},
		{"deleted-long-ago", ca.StatusDeleted, ptr(now.Add(-1000 * time.Hour))},
	} {
		x := newCA(c.id, "name-"+c.id)
		x.Status, x.RestorableUntil = c.status, c.restorable
		if c.status == ca.StatusDeleted {
			x.DeletedAt, x.PreviousStatus = ptr(now.Add(-2000*time.Hour)), ca.StatusActive
		}
		must(t, db.CreateCA(ctx, x, tev()))
	}
	must(t, db.InsertCertificate(ctx, newCert("0a01", "deleted-past"), tev()))

	ids, err := db.PurgeCAs(ctx, now, tev())
	must(t, err)
	slices.Sort(ids)
	if want := []string{"deleted-long-ago", "deleted-past"}; !slices.Equal(ids, want) {
		t.Fatalf("PurgeCAs = %v, want %v", ids, want)
	}
	for _, id := range ids {
		if _, err := db.GetCA(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetCA(%s) after purge err = %v, want ErrNotFound", id, err)
		}
	}
	cas, err := db.ListCAs(ctx)
	must(t, err)
	if len(cas) != 4 {
		t.Errorf("ListCAs after purge = %d CAs, want 4", len(cas))
	}
	if _, err := db.GetCertificate(ctx, "0a01"); err != nil {
		t.Errorf("certificate of a purged CA: %v, want it kept", err)
	}
	ids, err = db.PurgeCAs(ctx, now, tev())
	must(t, err)
	if len(ids) != 0 {
		t.Errorf("second PurgeCAs = %v, want none", ids)
	}
	// A purged CA's name is free again.
	must(t, db.CreateCA(ctx, newCA("new", "name-deleted-past"), tev()))
}

func testCertificates(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)

	full := newCert("01ab", "ca1")
	full.LintWarnings = []string{"w_one", "w_two"}
	full.ManagedKey = &keys.Ref{Provider: "software", ID: "ee-1", Algorithm: pki.ECDSAP384, Blob: []byte{0, 1, 2, 0xff}}
	full.Tags = []string{"prod", "team-a"}
	full.Owner, full.AutoRenew, full.RenewalKind = "team-a", true, inventory.RenewalAgent
	full.RenewFailures, full.RenewRetryAt, full.RenewError = 2, base().Add(time.Hour), "CA disabled"
	full.SupersedeAt = base().Add(48 * time.Hour)
	must(t, db.InsertCertificate(ctx, full, tev()))
	got, err := db.GetCertificate(ctx, "01ab")
	must(t, err)
	checkCert(t, got, full)

	bare := &inventory.Certificate{Serial: "02", CAID: "ca1", Status: inventory.StatusRevoked, DER: []byte{1}, CreatedAt: base()}
	must(t, db.InsertCertificate(ctx, bare, tev()))
	got, err = db.GetCertificate(ctx, "02")
	must(t, err)
	bare.Source = inventory.SourceIssued // the column's default
	checkCert(t, got, bare)

	// A renewal marks its predecessor in the same transaction, once.
	must(t, db.InsertCertificate(ctx, newCert("0c01", "ca1"), tev()))
	succ := newCert("0c02", "ca1")
	succ.Replaces, succ.RenewalKind = "0c01", inventory.RenewalAuto
	must(t, db.InsertCertificate(ctx, succ, tev()))
	if got, err := db.GetCertificate(ctx, "0c01"); err != nil || got.RenewedBy != "0c02" {
		t.Fatalf("predecessor after renewal: %+v, %v", got, err)
	}
	again := newCert("01ad", "ca1")
	again.Replaces = "0c01"
	if err := db.InsertCertificate(ctx, again, tev()); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second renewal of 0c01: %v, want ErrConflict", err)
	}
	if _, err := db.GetCertificate(ctx, "01ad"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the refused renewal left a certificate behind: %v", err)
	}

	imp := newCert("fp01", "")
	imp.Source, imp.Issuer, imp.IssuerSerial = inventory.SourceImported, "CN=Public CA", "0a0b"
	imp.Chain = [][]byte{{1, 2, 3}, {4, 5}}
	must(t, db.InsertCertificate(ctx, imp, tev()))
	got, err = db.GetCertificate(ctx, "fp01")
	must(t, err)
	checkCert(t, got, imp)
	if got.ManagedKey != nil {
		t.Errorf("ManagedKey = %+v, want nil", got.ManagedKey)
	}

	dup := newCert("01ab", "other-ca")
	wantErr(t, db.InsertCertificate(ctx, dup, tev()), store.ErrConflict)
	got, err = db.GetCertificate(ctx, "01ab")
	must(t, err)
	checkCert(t, got, full) // the duplicate changed nothing

	if _, err := db.GetCertificate(ctx, "ffff"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetCertificate(unknown) err = %v, want ErrNotFound", err)
	}
}

func testTimeRoundTrip(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	for i, tm := range []time.Time{
		{},
		base(),
		time.Date(1969, time.December, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(9999, time.December, 31, 23, 59, 59, 999999000, time.FixedZone("W", -5*3600)),
		time.Now(), // carries a monotonic reading
	} {
		c := newCert(fmt.Sprintf("%04x", i), "ca1")
		c.NotBefore, c.NotAfter, c.CreatedAt = tm, tm, tm
		must(t, db.InsertCertificate(ctx, c, tev()))
		got, err := db.GetCertificate(ctx, c.Serial)
		must(t, err)
		checkCert(t, got, c)
		if tm.IsZero() && !got.NotAfter.IsZero() {
			t.Errorf("zero time read back as %v", got.NotAfter)
		}
	}
}

func testListCertificates(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	type fixture struct {
		serial, ca, profile string
		status              inventory.Status
		sans, tags          []string
		days                int // NotAfter = base + days
	}
	for _, f := range []fixture{
		{"0001", "caA", "server", inventory.StatusValid, []string{"www.example.com", "example.com"}, []string{"prod"}, 10},
		{"0002", "caA", "client", inventory.StatusRevoked, []string{"alice@example.com"}, []string{"prod", "team-a"}, 20},
		{"0003", "caB", "server", inventory.StatusValid, []string{"WWW.EXAMPLE.COM"}, nil, 30},
		{"0004", "caB", "server", inventory.StatusValid, []string{"api.example.com", "10.0.0.1"}, []string{"Prod"}, 40},
		{"0005", "caA", "server", inventory.StatusValid, nil, []string{"team-a"}, 50},
		{"00a0", "caC", "code", inventory.StatusRevoked, []string{"sub.www.example.com"}, []string{"staging"}, 5},
		// Serial order is bytewise: "00a0" < "00b" < "0100".
		{"00b", "caA", "server", inventory.StatusValid, []string{"www.example.com"}, []string{"prod"}, 60},
		{"0100", "caB", "client", inventory.StatusValid, []string{"bob@example.com"}, []string{"team-b"}, 15},
	} {
		c := newCert(f.serial, f.ca)
		c.Profile, c.Status, c.SANs, c.Tags = f.profile, f.status, f.sans, f.tags
		c.NotAfter = base().Add(time.Duration(f.days) * 24 * time.Hour)
		if f.serial == "0003" {
			c.RenewedBy = "0004" // superseded by a renewal
		}
		must(t, db.InsertCertificate(ctx, c, tev()))
	}
	// 0101 expires with 0001: the serial breaks the tie.
	tie := newCert("0101", "caB")
	tie.NotAfter, tie.Tags, tie.SANs = base().Add(10*24*time.Hour), nil, []string{"tie.example.net"}
	must(t, db.InsertCertificate(ctx, tie, tev()))
	day := func(n int) time.Time { return base().Add(time.Duration(n) * 24 * time.Hour) }
	all := []string{"0001", "0002", "0003", "0004", "0005", "00a0", "00b", "0100", "0101"}
	byExpiry := []string{"00a0", "0001", "0101", "0100", "0002", "0003", "0004", "0005", "00b"}

	for _, tc := range []struct {
		name string
		f    inventory.Filter
		want []string
	}{
		{"all", inventory.Filter{}, all},
		{"ca", inventory.Filter{CAID: "caA"}, []string{"0001", "0002", "0005", "00b"}},
		{"ca unknown", inventory.Filter{CAID: "nope"}, nil},
		{"profile", inventory.Filter{Profile: "client"}, []string{"0002", "0100"}},
		{"status", inventory.Filter{Status: inventory.StatusRevoked}, []string{"0002", "00a0"}},
		{"san", inventory.Filter{SAN: "www.example.com"}, []string{"0001", "0003", "00b"}},
		{"san case-insensitive", inventory.Filter{SAN: "Www.Example.Com"}, []string{"0001", "0003", "00b"}},
		{"san exact, not suffix", inventory.Filter{SAN: "example.com"}, []string{"0001"}},
		{"san ip", inventory.Filter{SAN: "10.0.0.1"}, []string{"0004"}},
		{"san email", inventory.Filter{SAN: "ALICE@example.com"}, []string{"0002"}},
		{"san none", inventory.Filter{SAN: "nothing.example"}, nil},
		{"tag", inventory.Filter{Tag: "prod"}, []string{"0001", "0002", "00b"}},
		{"tag case-sensitive", inventory.Filter{Tag: "Prod"}, []string{"0004"}},
		{"tag second", inventory.Filter{Tag: "team-a"}, []string{"0002", "0005"}},
		{"expiring before", inventory.Filter{ExpiringBefore: day(20)}, []string{"0001", "00a0", "0100", "0101"}},
		{"expiring before is strict", inventory.Filter{ExpiringBefore: day(10)}, []string{"00a0"}},
		{"after", inventory.Filter{After: "0004"}, []string{"0005", "00a0", "00b", "0100", "0101"}},
		{"after unknown serial", inventory.Filter{After: "00a"}, []string{"00a0", "00b", "0100", "0101"}},
		{"by expiry", inventory.Filter{Order: inventory.OrderExpiry}, byExpiry},
		{"by expiry after a tie", inventory.Filter{Order: inventory.OrderExpiry, After: "0001", AfterTime: day(10)}, byExpiry[2:]},
		{"expired", inventory.Filter{ExpiredAt: day(20)}, []string{"0001", "0100", "0101"}},
		{"expired includes the instant", inventory.Filter{ExpiredAt: day(15)}, []string{"0001", "0100", "0101"}},
		{"unexpired", inventory.Filter{Status: inventory.StatusValid, UnexpiredAt: day(15)}, []string{"0003", "0004", "0005", "00b"}},
		{"current", inventory.Filter{Current: true, ExpiringBefore: day(35)}, []string{"0001", "0100", "0101"}},
		{"limit", inventory.Filter{Limit: 2}, []string{"0001", "0002"}},
		{"combined", inventory.Filter{CAID: "caA", Profile: "server", Status: inventory.StatusValid, SAN: "WWW.example.com", Tag: "prod", ExpiringBefore: day(61)}, []string{"0001", "00b"}},
		{"combined with after", inventory.Filter{CAID: "caA", SAN: "www.example.com", After: "0001"}, []string{"00b"}},
		{"combined excluding", inventory.Filter{CAID: "caB", Tag: "prod"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := db.ListCertificates(ctx, tc.f)
			must(t, err)
			if got == nil {
				t.Error("ListCertificates returned nil, want an empty slice")
			}
			if s := serials(got); !slices.Equal(s, tc.want) && (len(s) != 0 || len(tc.want) != 0) {
				t.Errorf("serials = %v, want %v", s, tc.want)
			}
		})
	}

	for _, tc := range []struct {
		order inventory.Order
		want  []string
	}{{inventory.OrderSerial, all}, {inventory.OrderExpiry, byExpiry}} {
		t.Run("paging by "+cmp.Or(string(tc.order), "serial"), func(t *testing.T) {
			var paged []string
			f := inventory.Filter{Limit: 2, Order: tc.order}
			for page := 0; ; page++ {
				got, err := db.ListCertificates(ctx, f)
				must(t, err)
				if len(got) == 0 {
					break
				}
				if page > len(all) {
					t.Fatal("paging does not end")
				}
				paged = append(paged, serials(got)...)
				f.Continue(got[len(got)-1])
			}
			if !slices.Equal(paged, tc.want) {
				t.Errorf("paged = %v, want %v", paged, tc.want)
			}
		})
	}

	t.Run("full records", func(t *testing.T) {
		got, err := db.ListCertificates(ctx, inventory.Filter{SAN: "api.example.com"})
		must(t, err)
		if len(got) != 1 {
			t.Fatalf("got %d certificates", len(got))
		}
		want, err := db.GetCertificate(ctx, "0004")
		must(t, err)
		checkCert(t, got[0], want)
	})
}

func testListLimits(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	const n = store.DefaultListLimit + 5
	insertMany(t, db, n, func(i int) string { return fmt.Sprintf("%06x", i) })
	for _, tc := range []struct {
		limit, want int
	}{
		{0, store.DefaultListLimit},
		{-1, store.DefaultListLimit},
		{7, 7},
		{store.MaxListLimit * 2, n},
	} {
		got, err := db.ListCertificates(ctx, inventory.Filter{Limit: tc.limit})
		must(t, err)
		if len(got) != tc.want {
			t.Errorf("Limit %d: got %d certificates, want %d", tc.limit, len(got), tc.want)
		}
	}
	got, err := db.ListCertificates(ctx, inventory.Filter{After: fmt.Sprintf("%06x", store.DefaultListLimit-1)})
	must(t, err)
	if len(got) != 5 {
		t.Errorf("second page: %d certificates, want 5", len(got))
	}
}

// insertMany inserts n certificates from 16 goroutines.
func insertMany(t *testing.T, db *store.DB, n int, serial func(int) string) {
	t.Helper()
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	next := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range next {
				errs <- db.InsertCertificate(ctx, newCert(serial(i), "ca1"), tev())
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
}

func testCountCertificates(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	n, err := db.CountCertificates(ctx, "caA")
	must(t, err)
	if n != 0 {
		t.Errorf("count on empty store = %d", n)
	}
	for i, caID := range []string{"caA", "caA", "caB"} {
		must(t, db.InsertCertificate(ctx, newCert(fmt.Sprintf("%02x", i), caID), tev()))
	}
	for caID, want := range map[string]int{"caA": 2, "caB": 1, "caC": 0, "": 3} {
		n, err := db.CountCertificates(ctx, caID)
		must(t, err)
		if n != want {
			t.Errorf("CountCertificates(%q) = %d, want %d", caID, n, want)
		}
	}
}

func testConcurrentInsertDurable(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	const n = 200
	start := make(chan struct{})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = db.InsertCertificate(ctx, newCert(fmt.Sprintf("c%04d", i), "ca1"), tev())
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("insert %d: %v", i, err)
		}
	}
	must(t, db.Close())

	db = open(t)
	for i := range n {
		want := newCert(fmt.Sprintf("c%04d", i), "ca1")
		got, err := db.GetCertificate(ctx, want.Serial)
		if err != nil {
			t.Fatalf("after reopen: %v", err)
		}
		checkCert(t, got, want)
	}
	count, err := db.CountCertificates(ctx, "ca1")
	must(t, err)
	if count != n {
		t.Errorf("count after reopen = %d, want %d", count, n)
	}
}

func testConcurrentConflict(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	must(t, db.InsertCertificate(ctx, newCert("dup", "ca1"), tev()))

	// 197 fresh serials, one taken serial and one new serial inserted twice,
	// all released at once so that they share batches.
	var jobs []string
	for i := range 197 {
		jobs = append(jobs, fmt.Sprintf("u%03d", i))
	}
	jobs = append(jobs, "dup", "twin", "twin")
	start := make(chan struct{})
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	for i, serial := range jobs {
		wg.Go(func() {
			<-start
			c := newCert(serial, "ca1")
			c.Requester = fmt.Sprintf("job %d", i)
			errs[i] = db.InsertCertificate(ctx, c, tev())
		})
	}
	close(start)
	wg.Wait()

	var twinOK, twinConflict int
	for i, serial := range jobs {
		switch {
		case serial == "dup":
			wantErr(t, errs[i], store.ErrConflict)
		case serial == "twin" && errs[i] == nil:
			twinOK++
		case serial == "twin" && errors.Is(errs[i], store.ErrConflict):
			twinConflict++
		case errs[i] != nil:
			t.Errorf("insert %s: %v", serial, errs[i])
		}
	}
	if twinOK != 1 || twinConflict != 1 {
		t.Errorf("serial inserted twice: %d succeeded, %d conflicted; want 1 and 1", twinOK, twinConflict)
	}
	n, err := db.CountCertificates(ctx, "ca1")
	must(t, err)
	if want := 1 + 197 + 1; n != want {
		t.Errorf("count = %d, want %d", n, want)
	}
	got, err := db.GetCertificate(ctx, "dup")
	must(t, err)
	if got.Requester != "alice" {
		t.Errorf("the conflicting insert overwrote the first row: requester %q", got.Requester)
	}
}

func testCancelledInsert(t *testing.T, open func(*testing.T) *store.DB) {
	db := open(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	wantErr(t, db.InsertCertificate(ctx, newCert("aa", "ca1"), tev()), context.Canceled)
	if _, err := db.GetCertificate(context.Background(), "aa"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("cancelled insert was written: GetCertificate err = %v", err)
	}

	// Callers cancelled at random points either fail with their context's
	// error and leave no row, or succeed and leave their row.
	const n = 100
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i)*20*time.Microsecond)
			defer cancel()
			errs[i] = db.InsertCertificate(ctx, newCert(fmt.Sprintf("t%03d", i), "ca1"), tev())
		})
	}
	wg.Wait()
	for i, err := range errs {
		_, gerr := db.GetCertificate(context.Background(), fmt.Sprintf("t%03d", i))
		switch {
		case err == nil && gerr != nil:
			t.Errorf("insert %d succeeded but reads back: %v", i, gerr)
		case err != nil && !errors.Is(err, context.DeadlineExceeded):
			t.Errorf("insert %d: %v, want nil or context.DeadlineExceeded", i, err)
		case err != nil && !errors.Is(gerr, store.ErrNotFound):
			t.Errorf("insert %d failed (%v) but its row exists", i, err)
		}
	}
}

// testCloseDrains closes the store while inserts are in flight: each caller
// either succeeds, and its row survives a reopen, or fails, and no row exists.
func testCloseDrains(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	const n = 200
	errs := make([]error, n)
	started := make(chan struct{}, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			started <- struct{}{}
			errs[i] = db.InsertCertificate(ctx, newCert(fmt.Sprintf("d%04d", i), "ca1"), tev())
		})
	}
	for range n / 2 {
		<-started
	}
	must(t, db.Close())
	wg.Wait()

	db = open(t)
	var ok int
	for i, err := range errs {
		_, gerr := db.GetCertificate(ctx, fmt.Sprintf("d%04d", i))
		switch {
		case err == nil && gerr != nil:
			t.Errorf("insert %d succeeded before Close returned, but reads back: %v", i, gerr)
		case err != nil && !errors.Is(gerr, store.ErrNotFound):
			t.Errorf("insert %d failed (%v) but its row exists (%v)", i, err, gerr)
		case err == nil:
			ok++
		}
	}
	t.Logf("%d of %d inserts finished before Close", ok, n)
}

func testInsertAfterClose(t *testing.T, open func(*testing.T) *store.DB) {
	db := open(t)
	must(t, db.Close())
	if err := db.InsertCertificate(context.Background(), newCert("01", "ca1"), tev()); err == nil {
		t.Error("InsertCertificate after Close succeeded")
	}
	must(t, db.Close())
}

func testProfiles(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	list, err := db.ListProfiles(ctx)
	must(t, err)
	if len(list) != 0 {
		t.Errorf("ListProfiles on empty store = %v", list)
	}
	doc := []byte(`{"name":"web",  "validity":"90d"}`) // kept byte for byte
	must(t, db.CreateProfile(ctx, "web", doc, tev()))
	must(t, db.CreateProfile(ctx, "mail", []byte(`{}`), tev()))
	wantErr(t, db.CreateProfile(ctx, "web", []byte(`{}`), tev()), store.ErrConflict)

	got, err := db.GetProfile(ctx, "web")
	must(t, err)
	if !bytes.Equal(got, doc) {
		t.Errorf("GetProfile = %s, want %s", got, doc)
	}
	_, err = db.GetProfile(ctx, "nope")
	wantErr(t, err, store.ErrNotFound)

	must(t, db.UpdateProfile(ctx, "web", []byte(`{"v":2}`), tev()))
	wantErr(t, db.UpdateProfile(ctx, "nope", []byte(`{}`), tev()), store.ErrNotFound)
	list, err = db.ListProfiles(ctx)
	must(t, err)
	want := map[string][]byte{"web": []byte(`{"v":2}`), "mail": []byte(`{}`)}
	if !maps.EqualFunc(list, want, bytes.Equal) {
		t.Errorf("ListProfiles = %q, want %q", list, want)
	}

	must(t, db.DeleteProfile(ctx, "web", tev()))
	wantErr(t, db.DeleteProfile(ctx, "web", tev()), store.ErrNotFound)
	_, err = db.GetProfile(ctx, "web")
	wantErr(t, err, store.ErrNotFound)
	must(t, db.CreateProfile(ctx, "web", doc, tev())) // the name is free again
}

func testSettings(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	_, err := db.GetSetting(ctx, "tls.key")
	wantErr(t, err, store.ErrNotFound)
	for _, v := range [][]byte{[]byte("first\x00"), []byte("second"), {}} {
		must(t, db.PutSetting(ctx, "tls.key", v))
		got, err := db.GetSetting(ctx, "tls.key")
		must(t, err)
		if !bytes.Equal(got, v) || got == nil {
			t.Errorf("GetSetting = %q, want %q (non-nil)", got, v)
		}
	}
	must(t, db.PutSetting(ctx, "tls.cert", []byte("c")))
	got, err := db.GetSetting(ctx, "tls.cert")
	must(t, err)
	if string(got) != "c" {
		t.Errorf("GetSetting(tls.cert) = %q", got)
	}
}

// testInventoryCounts: the summary from certificate_counts and the partial
// days equals a count of every certificate, with expiries on every side of
// now and of each bound, after inserts, a revocation and a renewal (the
// triggers' update path).
func testInventoryCounts(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	// Mid-day, so that today has certificates on both sides of now.
	now := time.Date(2026, 6, 10, 13, 30, 0, 0, time.UTC)
	hour := time.Hour
	bounds := []time.Time{now.Add(7 * 24 * hour), now.Add(30 * 24 * hour), now.Add(90 * 24 * hour)}
	type cert struct {
		notAfter         time.Time
		revoked, renewed bool
	}
	var all []*cert
	var serial int
	add := func(c *inventory.Certificate) {
		t.Helper()
		must(t, db.InsertCertificate(ctx, c, tev()))
	}
	offsets := []time.Duration{-72 * hour, -24 * hour, -14 * hour, -2 * hour, -time.Minute, 0, time.Minute, 2 * hour, 9 * hour, 10*hour + 29*time.Minute,
		11 * hour, 30 * hour, 7*24*hour - time.Hour, 7 * 24 * hour, 7*24*hour + time.Minute, 7*24*hour + 11*hour, 29 * 24 * hour, 30 * 24 * hour,
		30*24*hour + time.Second, 89 * 24 * hour, 90 * 24 * hour, 91 * 24 * hour, 400 * 24 * hour}
	for i, off := range offsets {
		for k := range 3 {
			serial++
			c := newCert(fmt.Sprintf("%04x", serial), []string{"caA", "caB"}[k%2])
			c.NotAfter = now.Add(off)
			cc := &cert{notAfter: c.NotAfter}
			if (i+k)%5 == 0 {
				c.Status, cc.revoked = inventory.StatusRevoked, true
			}
			add(c)
			all = append(all, cc)
		}
	}
	want := func() inventory.Counts {
		var w inventory.Counts
		w.Expiring = make([]int, len(bounds))
		for _, c := range all {
			switch {
			case c.revoked:
				w.Revoked++
			case c.notAfter.After(now):
				w.Valid++
				for i, b := range bounds {
					if !c.renewed && !c.notAfter.After(b) {
						w.Expiring[i]++
					}
				}
			default:
				w.Expired++
			}
		}
		return w
	}
	check := func(when string) {
		t.Helper()
		got, err := db.InventoryCounts(ctx, now, bounds)
		must(t, err)
		if w := want(); !reflect.DeepEqual(got, w) {
			t.Errorf("%s: InventoryCounts = %+v, want %+v", when, got, w)
		}
	}
	check("after inserts")

	// Revoke a valid one expiring today after now; renew one expiring
	// within the first bound.
	var toRevoke, toRenew int
	for i, c := range all {
		if !c.revoked && c.notAfter.After(now) && c.notAfter.Before(now.Add(2*hour)) && toRevoke == 0 {
			toRevoke = i + 1
		}
		if !c.revoked && c.notAfter.After(now.Add(24*hour)) && c.notAfter.Before(bounds[0]) && toRenew == 0 {
			toRenew = i + 1
		}
	}
	if toRevoke == 0 || toRenew == 0 {
		t.Fatal("the test data lacks a certificate to revoke or renew")
	}
	rev := &inventory.Revocation{Serial: fmt.Sprintf("%04x", toRevoke), CAID: []string{"caA", "caB"}[(toRevoke-1)%3%2],
		RevokedAt: now, Reason: pki.ReasonKeyCompromise, RevokedBy: "alice", NotAfter: all[toRevoke-1].notAfter}
	if _, _, err := db.RevokeCertificate(ctx, rev, tev()); err != nil {
		t.Fatal(err)
	}
	all[toRevoke-1].revoked = true
	serial++
	next := newCert(fmt.Sprintf("%04x", serial), "caA")
	next.NotAfter, next.Replaces = now.Add(500*24*hour), fmt.Sprintf("%04x", toRenew)
	add(next)
	all[toRenew-1].renewed = true
	all = append(all, &cert{notAfter: next.NotAfter})
	check("after a revocation and a renewal")

	// Imports, several in one transaction, one of them already present.
	var imports []*inventory.Certificate
	var evs []audit.Event
	for i, off := range []time.Duration{-30 * hour, 3 * hour, 3 * 24 * hour, 3 * 24 * hour} {
		serial++
		c := newCert(fmt.Sprintf("%04x", serial), "caB")
		c.NotAfter, c.Source = now.Add(off), inventory.SourceImported
		if i == 3 {
			c.Serial = imports[2].Serial // a duplicate: not written, not counted
		} else {
			all = append(all, &cert{notAfter: c.NotAfter})
		}
		imports, evs = append(imports, c), append(evs, tev())
	}
	if _, err := db.ImportCertificates(ctx, imports, evs); err != nil {
		t.Fatal(err)
	}
	check("after an import")

	// A certificate that expired before 1970 (an import may carry any
	// date), then revoked: its day is the same on insert and on update.
	serial++
	old := newCert(fmt.Sprintf("%04x", serial), "caA")
	old.NotBefore, old.NotAfter, old.Source = time.Date(1969, 12, 30, 0, 0, 0, 0, time.UTC), time.Date(1969, 12, 31, 12, 0, 0, 0, time.UTC), inventory.SourceImported
	if _, err := db.ImportCertificates(ctx, []*inventory.Certificate{old}, []audit.Event{tev()}); err != nil {
		t.Fatal(err)
	}
	all = append(all, &cert{notAfter: old.NotAfter})
	if _, _, err := db.RevokeCertificate(ctx, &inventory.Revocation{Serial: old.Serial, CAID: "caA", RevokedAt: now,
		Reason: pki.ReasonKeyCompromise, RevokedBy: "alice", NotAfter: old.NotAfter}, tev()); err != nil {
		t.Fatal(err)
	}
	all[len(all)-1].revoked = true
	check("after revoking a certificate that expired before 1970")

	byCA, err := db.CountsByCA(ctx)
	must(t, err)
	if byCA["caA"]+byCA["caB"] != len(all) || byCA["caA"] == 0 || byCA["caB"] == 0 {
		t.Errorf("CountsByCA = %v, want %d certificates across caA and caB", byCA, len(all))
	}

	if _, err := db.InventoryCounts(ctx, now, []time.Time{now.Add(-hour)}); err == nil {
		t.Error("a bound before now accepted")
	}
}

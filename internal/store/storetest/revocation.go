package storetest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/keys"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/revoke"
	"github.com/certwright/certwright/internal/store"
)

// revocationTests are Run's revocation subtests.
var revocationTests = []struct {
	name string
	fn   func(*testing.T, func(*testing.T) *store.DB)
}{
	{"RevokeCertificate", testRevokeCertificate},
	{"RevokeCertificateConcurrent", testRevokeCertificateConcurrent},
	{"RevokeMatching", testRevokeMatching},
	{"RevokeMatchingCancelled", testRevokeMatchingCancelled},
	{"RevokeMatchingVersusSingle", testRevokeMatchingVersusSingle},
	{"RevokeCA", testRevokeCA},
	{"LookupSerial", testLookupSerial},
	{"EachRevoked", testEachRevoked},
	{"EachUnexpired", testEachUnexpired},
	{"NextCRLNumber", testNextCRLNumber},
	{"ImportCRL", testImportCRL},
	{"RaiseCRLNumbers", testRaiseCRLNumbers},
	{"OCSPResponder", testOCSPResponder},
	{"RetiredKeys", testRetiredKeys},
	{"SPKI", testSPKI},
}

// NewCertDER returns a self-signed certificate for key's public key, for
// tests that need DER that parses.
func NewCertDER(tb testing.TB, key crypto.Signer, serial int64) []byte {
	tb.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: fmt.Sprintf("test %d", serial)},
		NotBefore:    base(),
		NotAfter:     base().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		tb.Fatal(err)
	}
	return der
}

// SPKISHA256 is the hex SHA-256 of key's SubjectPublicKeyInfo.
func SPKISHA256(tb testing.TB, key crypto.Signer) string {
	tb.Helper()
	spki, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		tb.Fatal(err)
	}
	h := sha256.Sum256(spki)
	return hex.EncodeToString(h[:])
}

func newKey(tb testing.TB) *ecdsa.PrivateKey {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func newRev(serial string) *inventory.Revocation {
	return &inventory.Revocation{
		Serial:         serial,
		RevokedAt:      base().Add(time.Hour),
		Reason:         pki.ReasonKeyCompromise,
		InvalidityDate: base().Add(-time.Hour),
		RevokedBy:      "alice",
	}
}

func checkRev(t *testing.T, got, want *inventory.Revocation) {
	t.Helper()
	if got == nil || want == nil {
		if got != want {
			t.Fatalf("revocation = %+v, want %+v", got, want)
		}
		return
	}
	checkTime(t, "RevokedAt", got.RevokedAt, want.RevokedAt)
	checkTime(t, "NotAfter", got.NotAfter, want.NotAfter)
	if want.InvalidityDate.IsZero() {
		if !got.InvalidityDate.IsZero() {
			t.Errorf("InvalidityDate = %v, want zero", got.InvalidityDate)
		}
	} else {
		checkTime(t, "InvalidityDate", got.InvalidityDate, want.InvalidityDate)
	}
	g, w := *got, *want
	g.RevokedAt, g.NotAfter, g.InvalidityDate = time.Time{}, time.Time{}, time.Time{}
	w.RevokedAt, w.NotAfter, w.InvalidityDate = time.Time{}, time.Time{}, time.Time{}
	if g != w {
		t.Errorf("revocation = %+v\nwant %+v", g, w)
	}
}

// revokedSerials lists the serials with a revocations row, in order,
// through ListCertificates.
func revokedSerials(t *testing.T, db *store.DB) []string {
	t.Helper()
	all, err := db.ListCertificates(context.Background(), inventory.Filter{Limit: store.MaxListLimit})
	must(t, err)
	var out []string
	for _, c := range all {
		if c.Revocation != nil && c.Status != inventory.StatusRevoked {
			t.Errorf("certificate %s: status %s but revocation %+v", c.Serial, c.Status, c.Revocation)
		}
		if c.Revocation != nil {
			out = append(out, c.Serial)
		}
	}
	return out
}

func testRevokeCertificate(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	cert := newCert("0a", "ca1")
	must(t, db.InsertCertificate(ctx, cert, tev()))
	must(t, db.InsertCertificate(ctx, newCert("0b", "ca1"), tev()))

	_, err := db.GetRevocation(ctx, "0a")
	wantErr(t, err, store.ErrNotFound)

	r := newRev("0a")
	r.CAID, r.NotAfter, r.CA = "ignored", base(), true // the store sets these
	got, created, err := db.RevokeCertificate(ctx, r, tev())
	must(t, err)
	if !created {
		t.Error("first revocation: created = false")
	}
	want := newRev("0a")
	want.CAID, want.NotAfter = "ca1", cert.NotAfter
	checkRev(t, got, want)
	if r.CAID != "ca1" || !r.NotAfter.Equal(stored(cert.NotAfter)) {
		t.Errorf("RevokeCertificate did not fill r: CAID %q NotAfter %v", r.CAID, r.NotAfter)
	}

	// Again, with other facts: the first record stands.
	again := &inventory.Revocation{Serial: "0a", RevokedAt: base().Add(48 * time.Hour), Reason: pki.ReasonSuperseded, RevokedBy: "bob"}
	got, created, err = db.RevokeCertificate(ctx, again, tev())
	must(t, err)
	if created {
		t.Error("second revocation: created = true")
	}
	checkRev(t, got, want)

	got, err = db.GetRevocation(ctx, "0a")
	must(t, err)
	checkRev(t, got, want)

	c, err := db.GetCertificate(ctx, "0a")
	must(t, err)
	if c.Status != inventory.StatusRevoked {
		t.Errorf("status = %s, want revoked", c.Status)
	}
	checkRev(t, c.Revocation, want)
	c, err = db.GetCertificate(ctx, "0b")
	must(t, err)
	if c.Status != inventory.StatusValid || c.Revocation != nil {
		t.Errorf("unrevoked certificate: status %s, revocation %+v", c.Status, c.Revocation)
	}

	list, err := db.ListCertificates(ctx, inventory.Filter{Status: inventory.StatusRevoked})
	must(t, err)
	if len(list) != 1 || list[0].Serial != "0a" {
		t.Fatalf("revoked certificates = %v, want [0a]", serials(list))
	}
	checkRev(t, list[0].Revocation, want)
	if s := revokedSerials(t, db); !slices.Equal(s, []string{"0a"}) {
		t.Errorf("revoked serials = %v", s)
	}

	_, _, err = db.RevokeCertificate(ctx, newRev("ffff"), tev())
	wantErr(t, err, store.ErrNotFound)
	_, err = db.GetRevocation(ctx, "ffff")
	wantErr(t, err, store.ErrNotFound)

	// No invalidity date reads back as the zero time.
	plain := newRev("0b")
	plain.InvalidityDate = time.Time{}
	got, created, err = db.RevokeCertificate(ctx, plain, tev())
	must(t, err)
	if !created || !got.InvalidityDate.IsZero() {
		t.Errorf("created %v, InvalidityDate %v", created, got.InvalidityDate)
	}
	got, err = db.GetRevocation(ctx, "0b")
	must(t, err)
	if !got.InvalidityDate.IsZero() {
		t.Errorf("stored InvalidityDate = %v, want zero", got.InvalidityDate)
	}

	// Revocations survive a reopen.
	must(t, db.Close())
	db = open(t)
	got, err = db.GetRevocation(ctx, "0a")
	must(t, err)
	checkRev(t, got, want)
}

func testRevokeCertificateConcurrent(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	must(t, db.InsertCertificate(ctx, newCert("0c", "ca1"), tev()))
	const n = 16
	created := make([]bool, n)
	recs := make([]*inventory.Revocation, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r := newRev("0c")
			r.RevokedBy = fmt.Sprintf("caller %d", i)
			var err error
			recs[i], created[i], err = db.RevokeCertificate(ctx, r, tev())
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	var winner = -1
	for i, c := range created {
		if c {
			if winner >= 0 {
				t.Fatalf("callers %d and %d both created the revocation", winner, i)
			}
			winner = i
		}
	}
	if winner < 0 {
		t.Fatal("no caller created the revocation")
	}
	for i, r := range recs {
		if r != nil && r.RevokedBy != recs[winner].RevokedBy {
			t.Errorf("caller %d got the record of %q, want the first, %q", i, r.RevokedBy, recs[winner].RevokedBy)
		}
	}
}

// matchFixture is the set of certificates RevokeMatching is tested on. now
// is base() + 10 days.
type matchFixture struct {
	now        time.Time
	keyA, keyB string // SPKI hashes
}

func insertMatchFixture(t *testing.T, db *store.DB) matchFixture {
	t.Helper()
	ctx := context.Background()
	f := matchFixture{now: base().Add(10 * 24 * time.Hour)}
	ka, kb := newKey(t), newKey(t)
	f.keyA, f.keyB = SPKISHA256(t, ka), SPKISHA256(t, kb)
	for _, c := range []struct {
		serial, ca, profile string
		sans                []string
		key                 *ecdsa.PrivateKey
		days                int // NotAfter = base + days
		status              inventory.Status
	}{
		{"01", "caA", "server", []string{"www.example.com"}, ka, 90, inventory.StatusValid},
		{"02", "caA", "client", []string{"alice@example.com"}, kb, 90, inventory.StatusValid},
		{"03", "caB", "server", []string{"WWW.example.com", "api.example.com"}, ka, 90, inventory.StatusValid},
		{"04", "caB", "server", []string{"api.example.com"}, kb, 90, inventory.StatusValid},
		{"05", "caA", "server", []string{"old.example.com"}, ka, 5, inventory.StatusValid},  // expired at now
		{"06", "caA", "server", []string{"www.example.com"}, ka, 10, inventory.StatusValid}, // expires at now exactly: still valid
		{"07", "caA", "server", []string{"old.example.com"}, ka, 90, inventory.StatusValid}, // revoked below
		{"08", "caA", "server", []string{"old.example.com"}, ka, 90, inventory.StatusRevoked},
	} {
		cert := newCert(c.serial, c.ca)
		cert.Profile, cert.SANs, cert.Status = c.profile, c.sans, c.status
		cert.NotAfter = base().Add(time.Duration(c.days) * 24 * time.Hour)
		cert.DER = NewCertDER(t, c.key, 1)
		must(t, db.InsertCertificate(ctx, cert, tev()))
	}
	_, _, err := db.RevokeCertificate(ctx, newRev("07"), tev())
	must(t, err)
	return f
}

func testRevokeMatching(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	t.Run("empty selector", func(t *testing.T) {
		db := open(t)
		f := insertMatchFixture(t, db)
		for _, dry := range []bool{true, false} {
			got, err := db.RevokeMatching(ctx, inventory.Selector{}, f.now, *newRev(""), dry, tev())
			if err == nil || errors.Is(err, store.ErrNotFound) {
				t.Errorf("dry run %v: got %d records, err %v; want an error other than ErrNotFound", dry, len(got), err)
			}
		}
		if s := revokedSerials(t, db); !slices.Equal(s, []string{"07"}) {
			t.Errorf("revoked = %v, want [07]", s)
		}
	})

	for _, tc := range []struct {
		name string
		sel  func(matchFixture) inventory.Selector
		want []string
	}{
		{"ca", func(matchFixture) inventory.Selector { return inventory.Selector{CAID: "caA"} }, []string{"01", "02", "06"}},
		{"profile", func(matchFixture) inventory.Selector { return inventory.Selector{Profile: "server"} }, []string{"01", "03", "04", "06"}},
		{"san", func(matchFixture) inventory.Selector { return inventory.Selector{SAN: "WWW.Example.com"} }, []string{"01", "03", "06"}},
		{"spki", func(f matchFixture) inventory.Selector { return inventory.Selector{SPKISHA256: f.keyA} }, []string{"01", "03", "06"}},
		{"spki upper case", func(f matchFixture) inventory.Selector {
			return inventory.Selector{SPKISHA256: strings.ToUpper(f.keyB)}
		}, []string{"02", "04"}},
		{"ca and profile", func(matchFixture) inventory.Selector { return inventory.Selector{CAID: "caB", Profile: "server"} }, []string{"03", "04"}},
		{"san and ca", func(matchFixture) inventory.Selector { return inventory.Selector{SAN: "api.example.com", CAID: "caB"} }, []string{"03", "04"}},
		{"spki and profile", func(f matchFixture) inventory.Selector {
			return inventory.Selector{SPKISHA256: f.keyB, Profile: "client"}
		}, []string{"02"}},
		{"all four", func(f matchFixture) inventory.Selector {
			return inventory.Selector{CAID: "caB", Profile: "server", SAN: "www.example.com", SPKISHA256: f.keyA}
		}, []string{"03"}},
		{"nothing", func(matchFixture) inventory.Selector { return inventory.Selector{CAID: "caC"} }, nil},
		{"excluding combination", func(matchFixture) inventory.Selector { return inventory.Selector{CAID: "caA", SAN: "api.example.com"} }, nil},
		{"only expired or revoked", func(matchFixture) inventory.Selector { return inventory.Selector{SAN: "old.example.com"} }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := open(t)
			f := insertMatchFixture(t, db)
			sel := tc.sel(f)
			tmpl := inventory.Revocation{RevokedAt: f.now, Reason: pki.ReasonKeyCompromise, InvalidityDate: base(), RevokedBy: "bulk"}
			check := func(what string, got []*inventory.Revocation) {
				t.Helper()
				if got == nil {
					t.Fatalf("%s: nil slice, want non-nil", what)
				}
				var ss []string
				for _, r := range got {
					ss = append(ss, r.Serial)
					c, err := db.GetCertificate(ctx, r.Serial)
					must(t, err)
					want := tmpl
					want.Serial, want.CAID, want.NotAfter = c.Serial, c.CAID, c.NotAfter
					checkRev(t, r, &want)
				}
				if !slices.Equal(ss, tc.want) {
					t.Errorf("%s: serials = %v, want %v", what, ss, tc.want)
				}
			}

			dry, err := db.RevokeMatching(ctx, sel, f.now, tmpl, true, tev())
			must(t, err)
			check("dry run", dry)
			if s := revokedSerials(t, db); !slices.Equal(s, []string{"07"}) {
				t.Errorf("after dry run, revoked = %v, want [07]", s)
			}

			got, err := db.RevokeMatching(ctx, sel, f.now, tmpl, false, tev())
			must(t, err)
			check("revoke", got)
			want := slices.Sorted(slices.Values(append([]string{"07"}, tc.want...)))
			if s := revokedSerials(t, db); !slices.Equal(s, want) {
				t.Errorf("revoked = %v, want %v", s, want)
			}
			for _, r := range got {
				stored, err := db.GetRevocation(ctx, r.Serial)
				must(t, err)
				checkRev(t, stored, r)
			}

			again, err := db.RevokeMatching(ctx, sel, f.now, tmpl, false, tev())
			must(t, err)
			if again == nil || len(again) != 0 {
				t.Errorf("second run = %v, want an empty non-nil slice", again)
			}
		})
	}
}

// testRevokeMatchingCancelled cancels bulk revocations at random points:
// each either revokes every match or changes nothing.
func testRevokeMatchingCancelled(t *testing.T, open func(*testing.T) *store.DB) {
	db := open(t)
	bg := context.Background()
	ctx, cancel := context.WithCancel(bg)
	cancel()
	must(t, db.InsertCertificate(bg, newCert("0001", "ca1"), tev()))
	_, err := db.RevokeMatching(ctx, inventory.Selector{CAID: "ca1"}, base(), *newRev(""), false, tev())
	wantErr(t, err, context.Canceled)
	if s := revokedSerials(t, db); len(s) != 0 {
		t.Fatalf("cancelled bulk revocation revoked %v", s)
	}

	const n = 3000
	insertMany(t, db, n, func(i int) string { return fmt.Sprintf("c%05d", i) })
	countRevoked := func() int {
		var k int
		must(t, db.EachRevoked(bg, "ca1", base(), func(*inventory.Revocation) error { k++; return nil }))
		return k
	}
	var failed int
	// Deadlines from nothing upward, growing by a quarter: points all
	// through the transaction, in a bounded number of attempts.
	for timeout := time.Duration(0); ; timeout = timeout*5/4 + 100*time.Microsecond {
		ctx, cancel := context.WithTimeout(bg, timeout)
		got, err := db.RevokeMatching(ctx, inventory.Selector{CAID: "ca1"}, base(), *newRev(""), false, tev())
		cancel()
		k := countRevoked()
		if err != nil {
			wantErr(t, err, context.DeadlineExceeded)
			if k != 0 {
				t.Fatalf("bulk revocation failed after %v (%v) but left %d revocations", timeout, err, k)
			}
			failed++
			continue
		}
		if len(got) != n+1 || k != n+1 {
			t.Fatalf("bulk revocation returned %d records and stored %d, want %d", len(got), k, n+1)
		}
		t.Logf("succeeded with a %v timeout after %d cancelled attempts", timeout, failed)
		break
	}
	if s := revokedSerials(t, db); len(s) != n+1 {
		t.Errorf("%d certificates have status revoked, want %d", len(s), n+1)
	}
}

// testRevokeMatchingVersusSingle races single revocations against a bulk
// one over the same certificates: each certificate ends with exactly one
// record, returned by exactly one caller.
func testRevokeMatchingVersusSingle(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	const n = 400
	insertMany(t, db, n, func(i int) string { return fmt.Sprintf("s%04d", i) })
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		owners = map[string]int{}
		bulk   []*inventory.Revocation
	)
	start := make(chan struct{})
	for w := range 4 {
		wg.Go(func() {
			<-start
			for i := w; i < n; i += 4 {
				serial := fmt.Sprintf("s%04d", i)
				_, created, err := db.RevokeCertificate(ctx, newRev(serial), tev())
				if err != nil {
					t.Error(err)
					return
				}
				if created {
					mu.Lock()
					owners[serial]++
					mu.Unlock()
				}
			}
		})
	}
	wg.Go(func() {
		<-start
		var err error
		bulk, err = db.RevokeMatching(ctx, inventory.Selector{CAID: "ca1"}, base(), *newRev(""), false, tev())
		if err != nil {
			t.Error(err)
		}
	})
	close(start)
	wg.Wait()
	for _, r := range bulk {
		owners[r.Serial]++
	}
	for i := range n {
		if s := fmt.Sprintf("s%04d", i); owners[s] != 1 {
			t.Errorf("serial %s created %d times", s, owners[s])
		}
	}
	if s := revokedSerials(t, db); len(s) != n {
		t.Errorf("%d revoked, want %d", len(s), n)
	}
	t.Logf("bulk revocation took %d of %d", len(bulk), n)
}

func testRevokeCA(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	must(t, db.CreateCA(ctx, newCA("root", "Root"), tev()))
	sub := newCA("sub", "Sub")
	sub.Kind, sub.ParentID = ca.KindIntermediate, "root"
	must(t, db.CreateCA(ctx, sub, tev()))
	must(t, db.CreateCA(ctx, newCA("other", "Other"), tev()))

	r := &inventory.Revocation{
		Serial: "5ab", CAID: "root", RevokedAt: base().Add(time.Hour), Reason: pki.ReasonCACompromise,
		RevokedBy: "admin", NotAfter: base().Add(365 * 24 * time.Hour),
	}

	// Failures of the CA update write nothing.
	ghost := *sub
	ghost.ID = "ghost"
	_, _, err := db.RevokeCA(ctx, r, &ghost, tev())
	wantErr(t, err, store.ErrNotFound)
	clash := *sub
	clash.Name = "Other"
	_, _, err = db.RevokeCA(ctx, r, &clash, tev())
	wantErr(t, err, store.ErrConflict)
	_, err = db.GetRevocation(ctx, "5ab")
	wantErr(t, err, store.ErrNotFound)

	disabled := *sub
	must(t, disabled.Disable(base().Add(time.Hour)))
	got, created, err := db.RevokeCA(ctx, r, &disabled, tev())
	must(t, err)
	want := *r
	want.CA = true
	if !created {
		t.Error("created = false")
	}
	checkRev(t, got, &want)
	stored, err := db.GetRevocation(ctx, "5ab")
	must(t, err)
	checkRev(t, stored, &want)
	c, err := db.GetCA(ctx, "sub")
	must(t, err)
	checkCA(t, c, &disabled)

	// Again, with a different CA state: nothing changes.
	renamed := disabled
	renamed.Name, renamed.Status = "Renamed", ca.StatusActive
	again := *r
	again.Reason, again.RevokedAt = pki.ReasonSuperseded, base().Add(48*time.Hour)
	got, created, err = db.RevokeCA(ctx, &again, &renamed, tev())
	must(t, err)
	if created {
		t.Error("second RevokeCA: created = true")
	}
	checkRev(t, got, &want)
	c, err = db.GetCA(ctx, "sub")
	must(t, err)
	checkCA(t, c, &disabled)

	issued, rev, err := db.LookupSerial(ctx, "root", "5ab")
	must(t, err)
	if issued {
		t.Error("LookupSerial: a CA certificate is not an issued leaf")
	}
	checkRev(t, rev, &want)
	var listed []inventory.Revocation
	must(t, db.EachRevoked(ctx, "root", base(), func(r *inventory.Revocation) error {
		listed = append(listed, *r)
		return nil
	}))
	if len(listed) != 1 {
		t.Fatalf("EachRevoked(root) = %d entries, want 1", len(listed))
	}
	checkRev(t, &listed[0], &want)

	must(t, db.EachUnexpired(ctx, "root", base(), func(serial string, _ time.Time, _ *inventory.Revocation) error {
		t.Errorf("EachUnexpired(root) listed %s: a CA certificate is not a leaf", serial)
		return nil
	}))

	_, _, err = db.RevokeCA(ctx, &inventory.Revocation{CAID: "root"}, &disabled, tev())
	if err == nil {
		t.Error("RevokeCA without a serial succeeded")
	}
}

func testLookupSerial(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	must(t, db.InsertCertificate(ctx, newCert("0a", "ca1"), tev()))
	must(t, db.InsertCertificate(ctx, newCert("0b", "ca1"), tev()))
	want, _, err := db.RevokeCertificate(ctx, newRev("0b"), tev())
	must(t, err)
	for _, tc := range []struct {
		ca, serial string
		issued     bool
		rev        *inventory.Revocation
	}{
		{"ca1", "0a", true, nil},
		{"ca1", "0b", true, want},
		{"ca2", "0a", false, nil},
		{"ca2", "0b", false, nil},
		{"ca1", "ff", false, nil},
		{"", "", false, nil},
	} {
		issued, rev, err := db.LookupSerial(ctx, tc.ca, tc.serial)
		must(t, err)
		if issued != tc.issued {
			t.Errorf("LookupSerial(%q, %q) issued = %v, want %v", tc.ca, tc.serial, issued, tc.issued)
		}
		checkRev(t, rev, tc.rev)
	}
}

func testEachRevoked(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	now := base().Add(10 * 24 * time.Hour)
	want := map[string]*inventory.Revocation{}
	for i, c := range []struct {
		ca   string
		days int
	}{{"ca1", 90}, {"ca1", 10}, {"ca1", 9}, {"ca2", 90}, {"ca1", 30}} {
		cert := newCert(fmt.Sprintf("%02x", i), c.ca)
		cert.NotAfter = base().Add(time.Duration(c.days) * 24 * time.Hour)
		must(t, db.InsertCertificate(ctx, cert, tev()))
		r := newRev(cert.Serial)
		r.Reason = pki.Reason(i)
		if i%2 == 1 {
			r.InvalidityDate = time.Time{}
		}
		rec, _, err := db.RevokeCertificate(ctx, r, tev())
		must(t, err)
		if c.ca == "ca1" && c.days >= 10 {
			want[rec.Serial] = rec
		}
	}
	must(t, db.InsertCertificate(ctx, newCert("ff", "ca1"), tev())) // not revoked

	var first *inventory.Revocation
	got := map[string]*inventory.Revocation{}
	must(t, db.EachRevoked(ctx, "ca1", now, func(r *inventory.Revocation) error {
		if first == nil {
			first = r
		} else if r != first {
			t.Error("EachRevoked passed a new *Revocation; the contract is one reused value")
		}
		c := *r
		got[r.Serial] = &c
		return nil
	}))
	if len(got) != len(want) {
		t.Errorf("EachRevoked = %d entries, want %d", len(got), len(want))
	}
	for s, w := range want {
		checkRev(t, got[s], w)
	}

	stop := errors.New("stop")
	calls := 0
	err := db.EachRevoked(ctx, "ca1", now, func(*inventory.Revocation) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("EachRevoked with a failing fn: err %v after %d calls, want stop after 1", err, calls)
	}
	must(t, db.EachRevoked(ctx, "nope", now, func(*inventory.Revocation) error {
		t.Error("EachRevoked of an unknown CA called fn")
		return nil
	}))
}

func testEachUnexpired(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	now := base().Add(10 * 24 * time.Hour)
	for _, c := range []struct {
		serial, ca string
		days       int
		revoke     bool
	}{
		{"01", "ca1", 90, false},
		{"02", "ca1", 90, true},
		{"03", "ca1", 5, false},
		{"04", "ca1", 5, true},
		{"05", "ca2", 90, true},
		{"06", "ca1", 10, false},
	} {
		cert := newCert(c.serial, c.ca)
		cert.NotAfter = base().Add(time.Duration(c.days) * 24 * time.Hour)
		must(t, db.InsertCertificate(ctx, cert, tev()))
		if c.revoke {
			_, _, err := db.RevokeCertificate(ctx, newRev(c.serial), tev())
			must(t, err)
		}
	}
	type entry struct {
		notAfter time.Time
		rev      *inventory.Revocation
	}
	got := map[string]entry{}
	must(t, db.EachUnexpired(ctx, "ca1", now, func(serial string, notAfter time.Time, rev *inventory.Revocation) error {
		e := entry{notAfter: notAfter}
		if rev != nil {
			c := *rev
			e.rev = &c
		}
		got[serial] = e
		return nil
	}))
	if len(got) != 3 {
		t.Errorf("EachUnexpired = %v, want 01, 02, 06", slices.Sorted(func(yield func(string) bool) {
			for s := range got {
				if !yield(s) {
					return
				}
			}
		}))
	}
	for _, s := range []string{"01", "02", "06"} {
		c, err := db.GetCertificate(ctx, s)
		must(t, err)
		e, ok := got[s]
		if !ok {
			t.Errorf("EachUnexpired missed %s", s)
			continue
		}
		checkTime(t, "notAfter of "+s, e.notAfter, c.NotAfter)
		checkRev(t, e.rev, c.Revocation)
	}
	stop := errors.New("stop")
	err := db.EachUnexpired(ctx, "ca1", now, func(string, time.Time, *inventory.Revocation) error { return stop })
	wantErr(t, err, stop)
}

func testNextCRLNumber(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	next := func(caID string, want int64) {
		t.Helper()
		n, err := db.NextCRLNumber(ctx, caID)
		must(t, err)
		if n != want {
			t.Errorf("NextCRLNumber(%s) = %d, want %d", caID, n, want)
		}
	}
	next("caA", 1)
	next("caA", 2)
	next("caB", 1)
	next("caA", 3)
	must(t, db.Close())
	db = open(t)
	next("caA", 4)
	next("caB", 2)

	const workers, each = 8, 50
	got := make([][]int64, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for range each {
				n, err := db.NextCRLNumber(ctx, "caC")
				if err != nil {
					t.Error(err)
					return
				}
				got[w] = append(got[w], n)
			}
		})
	}
	wg.Wait()
	var all []int64
	for _, g := range got {
		if !slices.IsSorted(g) {
			t.Errorf("one caller's numbers went backwards: %v", g)
		}
		all = append(all, g...)
	}
	slices.Sort(all)
	for i, n := range all {
		if n != int64(i+1) {
			t.Fatalf("concurrent numbers: %d at position %d, want 1..%d each once", n, i, workers*each)
		}
	}
	if len(all) != workers*each {
		t.Errorf("got %d numbers, want %d", len(all), workers*each)
	}
	ctx2, cancel := context.WithCancel(ctx)
	cancel()
	_, err := db.NextCRLNumber(ctx2, "caC")
	wantErr(t, err, context.Canceled)
	next("caC", workers*each+1)
}

// testImportCRL: an uploaded CRL is stored with its audit event only when
// its number is above the stored one's; otherwise ErrConflict and nothing
// changes, whatever the order of the uploads.
func testImportCRL(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	crl := func(n int64) *revoke.StoredCRL {
		return &revoke.StoredCRL{Number: n, DER: []byte(fmt.Sprintf("crl %d", n)), ThisUpdate: base(), NextUpdate: base().Add(90 * 24 * time.Hour), Entries: int(n)}
	}
	imports := func() int {
		t.Helper()
		n := 0
		must(t, db.EachAuditEvent(ctx, 1, func(e *audit.Event) error {
			if e.Action == "ca.import_crl" {
				n++
			}
			return nil
		}))
		return n
	}
	latest := func(want int64) {
		t.Helper()
		got, err := db.LatestCRL(ctx, "offline")
		must(t, err)
		if got == nil || got.Number != want || string(got.DER) != fmt.Sprintf("crl %d", want) || got.Entries != int(want) {
			t.Fatalf("LatestCRL = %+v, want number %d", got, want)
		}
		checkTime(t, "NextUpdate", got.NextUpdate, base().Add(90*24*time.Hour))
	}
	must(t, db.ImportCRL(ctx, "offline", crl(5), ev("ca.import_crl", "offline")))
	latest(5)
	for _, n := range []int64{5, 3, 1} {
		wantErr(t, db.ImportCRL(ctx, "offline", crl(n), ev("ca.import_crl", "offline")), store.ErrConflict)
		latest(5)
	}
	if n := imports(); n != 1 {
		t.Fatalf("%d ca.import_crl events after one import and three refusals, want 1", n)
	}
	must(t, db.ImportCRL(ctx, "offline", crl(6), ev("ca.import_crl", "offline")))
	latest(6)
	if n := imports(); n != 2 {
		t.Errorf("%d ca.import_crl events, want 2", n)
	}
	if got, err := db.LatestCRL(ctx, "other"); err != nil || got != nil {
		t.Errorf("another CA's CRL = %+v, %v; want none", got, err)
	}
}

// testRaiseCRLNumbers: raising the CRL numbers after a restore drops the
// CRLs this server signed at or below the floor and lifts their CAs' next
// numbers above it, but leaves an offline root's uploaded CRL and its
// number alone: it is still served, and an older one is still refused.
func testRaiseCRLNumbers(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	off := newCA("off", "Offline Root")
	off.Key = keys.Ref{Provider: ca.OfflineKeyProvider, Algorithm: pki.ECDSAP256}
	must(t, db.CreateCA(ctx, newCA("ca1", "Online Root"), tev()))
	must(t, db.CreateCA(ctx, off, tev()))
	crl := func(n int64) *revoke.StoredCRL {
		return &revoke.StoredCRL{Number: n, DER: []byte(fmt.Sprintf("crl %d", n)), ThisUpdate: base(), NextUpdate: base().Add(90 * 24 * time.Hour)}
	}
	for range 5 {
		_, err := db.NextCRLNumber(ctx, "ca1")
		must(t, err)
	}
	must(t, db.ImportCRL(ctx, "ca1", crl(5), ev("ca.import_crl", "ca1")))
	must(t, db.ImportCRL(ctx, "off", crl(3), ev("ca.import_crl", "off")))

	const floor = 1_000_000
	must(t, db.RaiseCRLNumbers(ctx, floor))
	if got, err := db.LatestCRL(ctx, "ca1"); err != nil || got != nil {
		t.Errorf("the online CA's CRL 5 after raising to %d = %+v, %v; want none", floor, got, err)
	}
	if n, err := db.NextCRLNumber(ctx, "ca1"); err != nil || n != floor+1 {
		t.Errorf("the online CA's next CRL number = %d, %v; want %d", n, err, floor+1)
	}
	got, err := db.LatestCRL(ctx, "off")
	must(t, err)
	if got == nil || got.Number != 3 || string(got.DER) != "crl 3" {
		t.Fatalf("the offline root's CRL after raising = %+v, want number 3 kept", got)
	}
	wantErr(t, db.ImportCRL(ctx, "off", crl(2), ev("ca.import_crl", "off")), store.ErrConflict)
	must(t, db.ImportCRL(ctx, "off", crl(4), ev("ca.import_crl", "off")))
	if n, err := db.NextCRLNumber(ctx, "off"); err != nil || n != 1 {
		t.Errorf("the offline root's CRL counter was raised: next %d, %v; want 1", n, err)
	}
}

func testOCSPResponder(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	_, err := db.GetOCSPResponder(ctx, "ca1")
	wantErr(t, err, store.ErrNotFound)

	check := func(got, want *revoke.Responder) {
		t.Helper()
		checkTime(t, "NotAfter", got.NotAfter, want.NotAfter)
		checkTime(t, "CreatedAt", got.CreatedAt, want.CreatedAt)
		g, w := *got, *want
		g.NotAfter, g.CreatedAt, w.NotAfter, w.CreatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		if !bytes.Equal(g.CertDER, w.CertDER) || !bytes.Equal(g.Key.Blob, w.Key.Blob) || (g.Key.Blob == nil) != (w.Key.Blob == nil) {
			t.Errorf("responder blobs: cert %q key %q, want %q %q", g.CertDER, g.Key.Blob, w.CertDER, w.Key.Blob)
		}
		g.CertDER, g.Key.Blob, w.CertDER, w.Key.Blob = nil, nil, nil, nil
		if !reflect.DeepEqual(g, w) {
			t.Errorf("responder = %+v, want %+v", g, w)
		}
	}
	r1 := &revoke.Responder{
		CAID:     "ca1",
		CertDER:  []byte("responder cert\x00"),
		Key:      keys.Ref{Provider: "software", ID: "ocsp-1", Algorithm: pki.ECDSAP256, Blob: []byte{0, 1, 0xff}},
		NotAfter: base().Add(7 * 24 * time.Hour), CreatedAt: base(),
	}
	must(t, db.PutOCSPResponder(ctx, r1, tev()))
	got, err := db.GetOCSPResponder(ctx, "ca1")
	must(t, err)
	check(got, r1)

	r2 := &revoke.Responder{
		CAID:     "ca1",
		CertDER:  []byte("renewed"),
		Key:      keys.Ref{Provider: "pkcs11", ID: "ocsp-2", Algorithm: pki.RSA3072}, // no blob
		NotAfter: base().Add(14 * 24 * time.Hour), CreatedAt: base().Add(24 * time.Hour),
	}
	must(t, db.PutOCSPResponder(ctx, r2, tev()))
	got, err = db.GetOCSPResponder(ctx, "ca1")
	must(t, err)
	check(got, r2)

	other := *r1
	other.CAID = "ca2"
	must(t, db.PutOCSPResponder(ctx, &other, tev()))
	got, err = db.GetOCSPResponder(ctx, "ca1")
	must(t, err)
	check(got, r2)
	got, err = db.GetOCSPResponder(ctx, "ca2")
	must(t, err)
	check(got, &other)

	if err := db.PutOCSPResponder(ctx, &revoke.Responder{}, tev()); err == nil {
		t.Error("PutOCSPResponder without a CA ID succeeded")
	}
}

// testRetiredKeys: a responder replaced by one with another key lists its
// key among the retired keys, in the same transaction, bound to the CA's
// responder purpose and retired when its successor was made; the same
// key stored again retires nothing; a deleted retired key's event is
// appended once, with the row.
func testRetiredKeys(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	list := func() []revoke.RetiredKey {
		t.Helper()
		got, err := db.RetiredKeys(ctx)
		must(t, err)
		return got
	}
	if got := list(); len(got) != 0 {
		t.Fatalf("retired keys of an empty store: %+v", got)
	}
	resp := func(caID string, key keys.Ref, created time.Time) *revoke.Responder {
		return &revoke.Responder{CAID: caID, CertDER: []byte("cert " + key.ID), Key: key, NotAfter: created.Add(7 * 24 * time.Hour), CreatedAt: created}
	}
	k1 := keys.Ref{Provider: "pkcs11", ID: "0a01", Algorithm: pki.ECDSAP256, Blob: []byte("ocsp:ca1/0a01")}
	k2 := keys.Ref{Provider: "pkcs11", ID: "0a02", Algorithm: pki.ECDSAP256, Blob: []byte("ocsp:ca1/0a02")}
	k3 := keys.Ref{Provider: "software", ID: "k3", Algorithm: pki.ECDSAP256, Blob: []byte{0, 1, 0xff}}
	must(t, db.PutOCSPResponder(ctx, resp("ca1", k1, base()), tev()))
	must(t, db.PutOCSPResponder(ctx, resp("ca2", k3, base()), tev()))
	must(t, db.PutOCSPResponder(ctx, resp("ca1", k1, base().Add(time.Hour)), tev())) // the same key: nothing retired
	if got := list(); len(got) != 0 {
		t.Fatalf("retired keys before any was replaced: %+v", got)
	}
	must(t, db.PutOCSPResponder(ctx, resp("ca1", k2, base().Add(2*time.Hour)), tev()))
	must(t, db.PutOCSPResponder(ctx, resp("ca2", keys.Ref{Provider: "software", ID: "k4", Algorithm: pki.ECDSAP256}, base().Add(3*time.Hour)), tev()))
	got := list()
	if len(got) != 2 {
		t.Fatalf("retired keys %+v, want k1 and k3", got)
	}
	for i, want := range []revoke.RetiredKey{
		{Key: k1, Purpose: keys.OCSPPurpose("ca1"), RetiredAt: base().Add(2 * time.Hour)},
		{Key: k3, Purpose: keys.OCSPPurpose("ca2"), RetiredAt: base().Add(3 * time.Hour)},
	} {
		checkTime(t, "RetiredAt", got[i].RetiredAt, want.RetiredAt)
		if !reflect.DeepEqual(got[i].Key, want.Key) || got[i].Purpose != want.Purpose {
			t.Errorf("retired key %d = %+v (blob %q), want %+v (blob %q)", i, got[i], got[i].Key.Blob, want, want.Key.Blob)
		}
	}

	log := newAuditLog(t, db)
	del := ev("key.destroy", "ocsp:ca1")
	must(t, db.DeleteRetiredKey(ctx, k1, &del))
	log.expect(t, "key.destroy ocsp:ca1")
	must(t, db.DeleteRetiredKey(ctx, k1, &del)) // gone: no second event
	must(t, db.DeleteRetiredKey(ctx, k3, nil))
	log.expect(t)
	if got := list(); len(got) != 0 {
		t.Errorf("retired keys after deleting both: %+v", got)
	}
}

func testSPKI(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	ka, kb := newKey(t), newKey(t)
	ha, hb := SPKISHA256(t, ka), SPKISHA256(t, kb)

	// Computed from the DER when not given.
	c1 := newCert("01", "ca1")
	c1.DER = NewCertDER(t, ka, 1)
	must(t, db.InsertCertificate(ctx, c1, tev()))
	// Given (as issuance does), normalised to lower case.
	c2 := newCert("02", "ca1")
	c2.DER, c2.SPKISHA256 = NewCertDER(t, ka, 2), strings.ToUpper(ha)
	must(t, db.InsertCertificate(ctx, c2, tev()))
	c3 := newCert("03", "ca2")
	c3.DER = NewCertDER(t, kb, 3)
	must(t, db.InsertCertificate(ctx, c3, tev()))
	// DER that does not parse leaves it empty.
	must(t, db.InsertCertificate(ctx, newCert("04", "ca1"), tev()))

	for serial, want := range map[string]string{"01": ha, "02": ha, "03": hb, "04": ""} {
		c, err := db.GetCertificate(ctx, serial)
		must(t, err)
		if c.SPKISHA256 != want {
			t.Errorf("certificate %s SPKISHA256 = %q, want %q", serial, c.SPKISHA256, want)
		}
	}
	for _, tc := range []struct {
		f    inventory.Filter
		want []string
	}{
		{inventory.Filter{SPKISHA256: ha}, []string{"01", "02"}},
		{inventory.Filter{SPKISHA256: strings.ToUpper(ha)}, []string{"01", "02"}},
		{inventory.Filter{SPKISHA256: hb}, []string{"03"}},
		{inventory.Filter{SPKISHA256: ha, CAID: "ca2"}, nil},
		{inventory.Filter{SPKISHA256: "00"}, nil},
	} {
		got, err := db.ListCertificates(ctx, tc.f)
		must(t, err)
		if s := serials(got); !slices.Equal(s, tc.want) && (len(s) != 0 || len(tc.want) != 0) {
			t.Errorf("ListCertificates(%+v) = %v, want %v", tc.f, s, tc.want)
		}
		for _, c := range got {
			if c.SPKISHA256 == "" {
				t.Errorf("listed certificate %s has no SPKISHA256", c.Serial)
			}
		}
	}
}

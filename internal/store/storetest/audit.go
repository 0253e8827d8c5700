package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/keys"
	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/revoke"
	"github.com/certwright/certwright/internal/store"
)

var auditTests = []struct {
	name string
	fn   func(*testing.T, func(*testing.T) *store.DB)
}{
	{"AuditChain", testAuditChain},
	{"AuditWithChange", testAuditWithChange},
	{"AuditInvalidEvent", testAuditInvalidEvent},
	{"AuditBatchConcurrent", testAuditBatchConcurrent},
	{"AuditConcurrentAppend", testAuditConcurrentAppend},
	{"AuditBetween", testAuditBetween},
	{"AuditCheckpoints", testAuditCheckpoints},
	{"AuditKeys", testAuditKeys},
	{"ReportIssued", testReportIssued},
	{"ReportRevoked", testReportRevoked},
}

// evAt returns a valid event for action on target at tm.
func evAt(action, target string, tm time.Time) audit.Event {
	return audit.Event{Time: tm, Principal: "test", Action: action, Target: target, Outcome: audit.Success}
}

// readLog returns every event, checking that seqs run 1, 2, ... and that
// each links to the one before.
func readLog(t *testing.T, db *store.DB) []audit.Event {
	t.Helper()
	var out []audit.Event
	prev := audit.Genesis()
	err := db.EachAuditEvent(context.Background(), 1, func(e *audit.Event) error {
		if want := int64(len(out) + 1); e.Seq != want {
			return fmt.Errorf("seq %d, want %d", e.Seq, want)
		}
		if !bytes.Equal(e.PrevHash, prev) {
			return fmt.Errorf("event %d: prev hash %s, want %s", e.Seq, e.PrevHash, prev)
		}
		if h := e.ComputeHash(prev); !bytes.Equal(e.Hash, h) {
			return fmt.Errorf("event %d: hash %s, want %s", e.Seq, e.Hash, h)
		}
		c := *e
		c.Details, c.PrevHash, c.Hash = bytes.Clone(e.Details), bytes.Clone(e.PrevHash), bytes.Clone(e.Hash)
		out = append(out, c)
		prev = c.Hash
		return nil
	})
	must(t, err)
	seq, head, err := db.AuditHead(context.Background())
	must(t, err)
	if seq != int64(len(out)) || !bytes.Equal(head, prev) {
		t.Fatalf("AuditHead = %d %s, want %d %s", seq, head, len(out), prev)
	}
	return out
}

func actions(evs []audit.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Action + ":" + e.Target
	}
	return out
}

func testAuditChain(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)

	seq, head, err := db.AuditHead(ctx)
	must(t, err)
	if seq != 0 || !bytes.Equal(head, audit.Genesis()) {
		t.Fatalf("empty log head = %d %s", seq, head)
	}
	readLog(t, db)

	must(t, db.CreateCA(ctx, newCA("ca1", "One"), evAt("ca.create", "ca1", base())))
	c := newCA("ca1", "Uno")
	must(t, db.UpdateCA(ctx, c, evAt("ca.update", "ca1", base())))
	must(t, db.CreateProfile(ctx, "web", []byte(`{}`), evAt("profile.create", "web", base())))
	must(t, db.UpdateProfile(ctx, "web", []byte(`{"a":1}`), evAt("profile.update", "web", base())))
	must(t, db.DeleteProfile(ctx, "web", evAt("profile.delete", "web", base())))
	must(t, db.InsertCertificate(ctx, newCert("01", "ca1"), evAt("cert.issue", "01", base())))
	_, _, err = db.RevokeCertificate(ctx, newRev("01"), evAt("cert.revoke", "01", base()))
	must(t, err)
	must(t, db.PutOCSPResponder(ctx, &revoke.Responder{CAID: "ca1", CertDER: []byte{1}, NotAfter: base(), CreatedAt: base()},
		evAt("ocsp.responder", "ca1", base())))

	// Every field round-trips, details byte for byte (not re-encoded).
	details := json.RawMessage(`{"z": 1,  "a":"\u00e9"}`)
	full := audit.Event{
		Time: base(), Principal: "alice", Source: "192.0.2.1", Action: "crl.sign", Target: "ca1",
		Outcome: audit.Failed, RequestID: "req-1", Details: details,
	}
	must(t, db.AppendAudit(ctx, full, evAt("export", "", base().Add(time.Second))))
	must(t, db.AppendAudit(ctx)) // nothing to append

	evs := readLog(t, db)
	want := []string{"ca.create:ca1", "ca.update:ca1", "profile.create:web", "profile.update:web", "profile.delete:web",
		"cert.issue:01", "cert.revoke:01", "ocsp.responder:ca1", "crl.sign:ca1", "export:"}
	if got := actions(evs); !slices.Equal(got, want) {
		t.Fatalf("log = %v\nwant %v", got, want)
	}
	got := evs[8]
	checkTime(t, "event time", got.Time, full.Time)
	if got.Principal != "alice" || got.Source != "192.0.2.1" || got.Outcome != audit.Failed || got.RequestID != "req-1" ||
		!bytes.Equal(got.Details, details) {
		t.Errorf("event = %+v, want %+v", got, full)
	}
	if string(evs[9].Details) != "{}" {
		t.Errorf("empty details read back as %q, want {}", evs[9].Details)
	}

	// Reading from the middle.
	var from []int64
	must(t, db.EachAuditEvent(ctx, 9, func(e *audit.Event) error { from = append(from, e.Seq); return nil }))
	if !slices.Equal(from, []int64{9, 10}) {
		t.Errorf("EachAuditEvent(9) = %v", from)
	}
	// fn's error stops the scan and comes back as is.
	stop := errors.New("stop")
	n := 0
	err = db.EachAuditEvent(ctx, 1, func(*audit.Event) error { n++; return stop })
	if err != stop || n != 1 {
		t.Errorf("EachAuditEvent with failing fn: %v after %d calls", err, n)
	}
}

// testAuditWithChange checks that a change's events commit with it and
// that a change that fails or does nothing appends none.
func testAuditWithChange(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	count := func() int64 {
		t.Helper()
		seq, _, err := db.AuditHead(ctx)
		must(t, err)
		return seq
	}

	must(t, db.CreateCA(ctx, newCA("ca1", "One"), tev()))
	must(t, db.CreateCA(ctx, newCA("ca2", "Two"), tev()))
	must(t, db.CreateProfile(ctx, "web", nil, tev()))
	must(t, db.InsertCertificate(ctx, newCert("01", "ca1"), tev()))
	n := count()
	if n != 4 {
		t.Fatalf("%d events after 4 changes", n)
	}

	wantErr(t, db.CreateCA(ctx, newCA("ca3", "One"), tev()), store.ErrConflict)
	wantErr(t, db.UpdateCA(ctx, newCA("ghost", "Ghost"), tev()), store.ErrNotFound)
	wantErr(t, db.UpdateCA(ctx, newCA("ca2", "One"), tev()), store.ErrConflict)
	wantErr(t, db.CreateProfile(ctx, "web", nil, tev()), store.ErrConflict)
	wantErr(t, db.UpdateProfile(ctx, "ghost", nil, tev()), store.ErrNotFound)
	wantErr(t, db.DeleteProfile(ctx, "ghost", tev()), store.ErrNotFound)
	wantErr(t, db.InsertCertificate(ctx, newCert("01", "ca1"), tev()), store.ErrConflict)
	_, _, err := db.RevokeCertificate(ctx, newRev("ghost"), tev())
	wantErr(t, err, store.ErrNotFound)
	if got := count(); got != n {
		t.Fatalf("failed changes appended %d events", got-n)
	}

	_, created, err := db.RevokeCertificate(ctx, newRev("01"), evAt("cert.revoke", "01", base()))
	must(t, err)
	_, again, err := db.RevokeCertificate(ctx, newRev("01"), evAt("cert.revoke", "01", base()))
	must(t, err)
	if !created || again {
		t.Fatalf("created %v, again %v", created, again)
	}
	if got := count(); got != n+1 {
		t.Fatalf("revoking twice appended %d events, want 1", got-n)
	}
	n++

	// Bulk revocation: one event per certificate, in serial order; none
	// on a dry run.
	for _, s := range []string{"0b", "0a", "0c"} {
		c := newCert(s, "ca1")
		c.SPKISHA256 = "aa"
		must(t, db.InsertCertificate(ctx, c, tev()))
	}
	n += 3
	now := base()
	sel := inventory.Selector{SPKISHA256: "aa"}
	tmpl := inventory.Revocation{RevokedAt: now, Reason: pki.ReasonKeyCompromise, RevokedBy: "test"}
	recs, err := db.RevokeMatching(ctx, sel, now, tmpl, true, evAt("cert.revoke", "", now))
	must(t, err)
	if len(recs) != 3 || count() != n {
		t.Fatalf("dry run: %d records, %d events", len(recs), count()-n)
	}
	recs, err = db.RevokeMatching(ctx, sel, now, tmpl, false, evAt("cert.revoke", "", now))
	must(t, err)
	if len(recs) != 3 {
		t.Fatalf("RevokeMatching: %d records", len(recs))
	}
	evs := readLog(t, db)[n:]
	if got := actions(evs); !slices.Equal(got, []string{"cert.revoke:0a", "cert.revoke:0b", "cert.revoke:0c"}) {
		t.Errorf("bulk revocation events = %v", got)
	}
	n += 3

	// Purge: one event per CA purged.
	for _, id := range []string{"ca2", "ca1"} {
		c, err := db.GetCA(ctx, id)
		must(t, err)
		must(t, c.Disable(base()))
		must(t, c.Delete(base(), time.Hour))
		must(t, db.UpdateCA(ctx, c, tev()))
		n++
	}
	ids, err := db.PurgeCAs(ctx, base().Add(2*time.Hour), evAt("ca.purge", "", base()))
	must(t, err)
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"ca1", "ca2"}) {
		t.Fatalf("purged %v", ids)
	}
	evs = readLog(t, db)[n:]
	if got := actions(evs); !slices.Equal(got, []string{"ca.purge:ca1", "ca.purge:ca2"}) {
		t.Errorf("purge events = %v", got)
	}
	n += 2
	ids, err = db.PurgeCAs(ctx, base().Add(2*time.Hour), evAt("ca.purge", "", base()))
	must(t, err)
	if len(ids) != 0 || count() != n {
		t.Errorf("empty purge: %v, %d events", ids, count()-n)
	}
}

// testAuditInvalidEvent checks that every mutating method refuses an event
// without an action and writes nothing.
func testAuditInvalidEvent(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	must(t, db.CreateCA(ctx, newCA("ca1", "One"), tev()))
	must(t, db.CreateProfile(ctx, "web", []byte("v1"), tev()))
	must(t, db.InsertCertificate(ctx, newCert("01", "ca1"), tev()))
	deleted := newCA("old", "Old")
	must(t, deleted.Disable(base()))
	must(t, deleted.Delete(base(), time.Hour))
	must(t, db.CreateCA(ctx, deleted, tev()))
	sub := newCA("sub", "Sub")
	must(t, db.CreateCA(ctx, sub, tev()))
	seq0, _, err := db.AuditHead(ctx)
	must(t, err)

	bad := audit.Event{Time: base(), Principal: "test", Outcome: audit.Success}
	noTime := audit.Event{Principal: "test", Action: "x", Outcome: audit.Success}
	for _, tc := range []struct {
		name  string
		call  func(ev audit.Event) error
		wrote func() bool
	}{
		{"CreateCA", func(ev audit.Event) error { return db.CreateCA(ctx, newCA("ca2", "Two"), ev) },
			func() bool { _, err := db.GetCA(ctx, "ca2"); return err == nil }},
		{"UpdateCA", func(ev audit.Event) error { return db.UpdateCA(ctx, newCA("ca1", "Renamed"), ev) },
			func() bool { c, _ := db.GetCA(ctx, "ca1"); return c.Name != "One" }},
		{"PurgeCAs", func(ev audit.Event) error { _, err := db.PurgeCAs(ctx, base().Add(2*time.Hour), ev); return err },
			func() bool { _, err := db.GetCA(ctx, "old"); return err != nil }},
		{"InsertCertificate", func(ev audit.Event) error { return db.InsertCertificate(ctx, newCert("02", "ca1"), ev) },
			func() bool { _, err := db.GetCertificate(ctx, "02"); return err == nil }},
		{"CreateProfile", func(ev audit.Event) error { return db.CreateProfile(ctx, "api", nil, ev) },
			func() bool { _, err := db.GetProfile(ctx, "api"); return err == nil }},
		{"UpdateProfile", func(ev audit.Event) error { return db.UpdateProfile(ctx, "web", []byte("v2"), ev) },
			func() bool { d, _ := db.GetProfile(ctx, "web"); return string(d) != "v1" }},
		{"DeleteProfile", func(ev audit.Event) error { return db.DeleteProfile(ctx, "web", ev) },
			func() bool { _, err := db.GetProfile(ctx, "web"); return err != nil }},
		{"PutOCSPResponder", func(ev audit.Event) error {
			return db.PutOCSPResponder(ctx, &revoke.Responder{CAID: "ca1", CertDER: []byte{1}, NotAfter: base(), CreatedAt: base()}, ev)
		}, func() bool { _, err := db.GetOCSPResponder(ctx, "ca1"); return err == nil }},
		{"RevokeCertificate", func(ev audit.Event) error { _, _, err := db.RevokeCertificate(ctx, newRev("01"), ev); return err },
			func() bool { _, err := db.GetRevocation(ctx, "01"); return err == nil }},
		{"RevokeCA", func(ev audit.Event) error {
			r := &inventory.Revocation{Serial: "5ab", CAID: "ca1", RevokedAt: base(), NotAfter: base()}
			_, _, err := db.RevokeCA(ctx, r, sub, ev)
			return err
		}, func() bool { _, err := db.GetRevocation(ctx, "5ab"); return err == nil }},
		{"RevokeMatching", func(ev audit.Event) error {
			_, err := db.RevokeMatching(ctx, inventory.Selector{CAID: "ca1"}, base(), inventory.Revocation{RevokedAt: base()}, false, ev)
			return err
		}, func() bool { _, err := db.GetRevocation(ctx, "01"); return err == nil }},
		{"AppendAudit", func(ev audit.Event) error { return db.AppendAudit(ctx, tev(), ev) }, func() bool { return false }},
	} {
		for _, ev := range []audit.Event{bad, noTime} {
			if err := tc.call(ev); !errors.Is(err, audit.ErrInvalid) {
				t.Errorf("%s with event %+v: err = %v, want audit.ErrInvalid", tc.name, ev, err)
			}
			if tc.wrote() {
				t.Errorf("%s with an invalid event wrote its change", tc.name)
			}
		}
	}
	if seq, _, err := db.AuditHead(ctx); err != nil || seq != seq0 {
		t.Errorf("AuditHead = %d, %v; want %d", seq, err, seq0)
	}
	readLog(t, db)
}

// testAuditBatchConcurrent inserts certificates from many goroutines (the
// SQLite group-commit path), some serials twice, and checks that each
// certificate written has exactly one event and the chain holds.
func testAuditBatchConcurrent(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	const n = 300
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			serial := fmt.Sprintf("%04x", i%(n*2/3)) // the last third repeats serials
			errs[i] = db.InsertCertificate(ctx, newCert(serial, "ca1"), evAt("cert.issue", serial, base()))
		})
	}
	close(start)
	wg.Wait()
	ok := 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, store.ErrConflict):
			t.Errorf("insert %d: %v", i, err)
		}
	}
	if ok != n*2/3 {
		t.Errorf("%d inserts succeeded, want %d", ok, n*2/3)
	}
	evs := readLog(t, db)
	if len(evs) != ok {
		t.Fatalf("%d events for %d certificates", len(evs), ok)
	}
	seen := map[string]bool{}
	for _, e := range evs {
		if seen[e.Target] {
			t.Errorf("two events for %s", e.Target)
		}
		seen[e.Target] = true
		if _, err := db.GetCertificate(ctx, e.Target); err != nil {
			t.Errorf("event for %s: %v", e.Target, err)
		}
	}
}

// testAuditConcurrentAppend appends from many goroutines, standalone and
// with changes; the seqs must stay contiguous and the chain intact.
func testAuditConcurrentAppend(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	const workers, each = 8, 15
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				name := fmt.Sprintf("w%d-%d", w, i)
				var err error
				if i%2 == 0 {
					err = db.AppendAudit(ctx, evAt("a", name, base()), evAt("b", name, base()))
				} else {
					err = db.CreateProfile(ctx, name, nil, evAt("profile.create", name, base()))
				}
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	evs := readLog(t, db)
	want := workers * (each/2*1 + (each+1)/2*2)
	if len(evs) != want {
		t.Errorf("%d events, want %d", len(evs), want)
	}
	// The two events of one AppendAudit call are adjacent.
	for i, e := range evs {
		if e.Action == "a" && (i+1 == len(evs) || evs[i+1].Action != "b" || evs[i+1].Target != e.Target) {
			t.Errorf("event %d (%s) not followed by its pair", e.Seq, e.Target)
		}
	}
}

func testAuditBetween(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	t0 := base()
	// Seq order differs from time order: the results follow seq.
	offsets := []int{0, 3, 1, 2, 4}
	for _, o := range offsets {
		must(t, db.AppendAudit(ctx, evAt("x", fmt.Sprint(o), t0.Add(time.Duration(o)*time.Second))))
	}
	between := func(since, until time.Time) []string {
		t.Helper()
		var out []string
		must(t, db.EachAuditEventBetween(ctx, since, until, func(e *audit.Event) error {
			out = append(out, e.Target)
			return nil
		}))
		return out
	}
	for _, tc := range []struct {
		since, until time.Time
		want         []string
	}{
		{t0.Add(time.Second), t0.Add(3 * time.Second), []string{"1", "2"}},
		{t0.Add(time.Second), time.Time{}, []string{"3", "1", "2", "4"}},
		{t0, t0.Add(time.Second), []string{"0"}},
		{t0.Add(time.Hour), time.Time{}, nil},
		{t0.Add(time.Second + time.Microsecond), t0.Add(2*time.Second + time.Microsecond), []string{"2"}},
	} {
		if got := between(tc.since, tc.until); !slices.Equal(got, tc.want) {
			t.Errorf("between %v and %v: %v, want %v", tc.since, tc.until, got, tc.want)
		}
	}
}

func testAuditCheckpoints(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	_, err := db.LastCheckpoint(ctx)
	wantErr(t, err, store.ErrNotFound)
	if cps, err := db.ListCheckpoints(ctx); err != nil || cps == nil || len(cps) != 0 {
		t.Fatalf("ListCheckpoints = %v, %v; want empty", cps, err)
	}
	mk := func(seq int64) *audit.Checkpoint {
		return &audit.Checkpoint{Seq: seq, Hash: bytes.Repeat([]byte{byte(seq)}, audit.HashSize),
			Time: base().Add(time.Duration(seq) * time.Minute), KeyID: "k1", Signature: []byte{0, byte(seq), 0xff}}
	}
	for _, s := range []int64{10, 5, 20} {
		must(t, db.InsertCheckpoint(ctx, mk(s)))
	}
	wantErr(t, db.InsertCheckpoint(ctx, mk(10)), store.ErrConflict)
	cps, err := db.ListCheckpoints(ctx)
	must(t, err)
	if len(cps) != 3 {
		t.Fatalf("%d checkpoints", len(cps))
	}
	for i, s := range []int64{5, 10, 20} {
		checkCheckpoint(t, cps[i], mk(s))
	}
	last, err := db.LastCheckpoint(ctx)
	must(t, err)
	checkCheckpoint(t, last, mk(20))
}

func checkCheckpoint(t *testing.T, got, want *audit.Checkpoint) {
	t.Helper()
	checkTime(t, "checkpoint time", got.Time, want.Time)
	if got.Seq != want.Seq || !bytes.Equal(got.Hash, want.Hash) || got.KeyID != want.KeyID || !bytes.Equal(got.Signature, want.Signature) {
		t.Errorf("checkpoint = %+v, want %+v", got, want)
	}
}

func testAuditKeys(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	if ks, err := db.ListAuditKeys(ctx); err != nil || ks == nil || len(ks) != 0 {
		t.Fatalf("ListAuditKeys = %v, %v; want empty", ks, err)
	}
	mk := func(id string, created time.Time, blob []byte) *audit.Key {
		return &audit.Key{ID: id, Key: keys.Ref{Provider: "software", ID: "kid-" + id, Algorithm: pki.ECDSAP256, Blob: blob},
			PublicKey: []byte("spki of " + id), CreatedAt: created}
	}
	k2 := mk("k2", base().Add(time.Hour), []byte("wrapped\x00"))
	k1 := mk("k1", base(), nil)
	must(t, db.CreateAuditKey(ctx, k2))
	must(t, db.CreateAuditKey(ctx, k1))
	wantErr(t, db.CreateAuditKey(ctx, mk("k1", base(), nil)), store.ErrConflict)
	ks, err := db.ListAuditKeys(ctx)
	must(t, err)
	if len(ks) != 2 {
		t.Fatalf("%d keys", len(ks))
	}
	for i, want := range []*audit.Key{k1, k2} {
		got := ks[i]
		checkTime(t, "key CreatedAt", got.CreatedAt, want.CreatedAt)
		if got.ID != want.ID || got.Key.Provider != want.Key.Provider || got.Key.ID != want.Key.ID ||
			got.Key.Algorithm != want.Key.Algorithm || !bytes.Equal(got.Key.Blob, want.Key.Blob) ||
			(got.Key.Blob == nil) != (want.Key.Blob == nil) || !bytes.Equal(got.PublicKey, want.PublicKey) {
			t.Errorf("key %d = %+v, want %+v", i, got, want)
		}
	}
}

func testReportIssued(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	t0 := base()
	for _, f := range []struct {
		serial string
		at     time.Duration
	}{{"05", 0}, {"04", time.Hour}, {"03", time.Hour}, {"02", 2 * time.Hour}, {"01", 3 * time.Hour}} {
		c := newCert(f.serial, "ca1")
		c.CreatedAt = t0.Add(f.at)
		must(t, db.InsertCertificate(ctx, c, tev()))
	}
	_, _, err := db.RevokeCertificate(ctx, newRev("03"), tev())
	must(t, err)
	issued := func(since, until time.Time) []string {
		t.Helper()
		var out []string
		must(t, db.EachIssued(ctx, since, until, func(c *inventory.Certificate) error {
			if (c.Serial == "03") != (c.Revocation != nil) {
				t.Errorf("certificate %s: Revocation %v", c.Serial, c.Revocation)
			}
			out = append(out, c.Serial)
			return nil
		}))
		return out
	}
	for _, tc := range []struct {
		since, until time.Time
		want         []string
	}{
		{t0, t0.Add(3 * time.Hour), []string{"05", "03", "04", "02"}},
		{t0.Add(time.Hour), t0.Add(2 * time.Hour), []string{"03", "04"}},
		{t0.Add(time.Microsecond), time.Time{}, []string{"03", "04", "02", "01"}},
		{t0.Add(4 * time.Hour), time.Time{}, nil},
	} {
		if got := issued(tc.since, tc.until); !slices.Equal(got, tc.want) {
			t.Errorf("issued in [%v, %v) = %v, want %v", tc.since, tc.until, got, tc.want)
		}
	}
	stop := errors.New("stop")
	if err := db.EachIssued(ctx, t0, time.Time{}, func(*inventory.Certificate) error { return stop }); err != stop {
		t.Errorf("EachIssued with failing fn: %v", err)
	}
}

func testReportRevoked(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	t0 := base()
	for _, s := range []string{"01", "02", "03", "04"} {
		must(t, db.InsertCertificate(ctx, newCert(s, "ca1"), tev()))
	}
	revokeAt := func(serial string, at time.Duration) {
		r := newRev(serial)
		r.RevokedAt = t0.Add(at)
		_, _, err := db.RevokeCertificate(ctx, r, tev())
		must(t, err)
	}
	revokeAt("04", 0)
	revokeAt("02", time.Hour)
	revokeAt("01", time.Hour)
	revokeAt("03", 3*time.Hour)
	sub := newCA("sub", "Sub")
	must(t, db.CreateCA(ctx, sub, tev()))
	_, _, err := db.RevokeCA(ctx, &inventory.Revocation{Serial: "0c", CAID: "root", RevokedAt: t0.Add(2 * time.Hour),
		Reason: pki.ReasonCACompromise, RevokedBy: "admin", NotAfter: t0.Add(time.Hour)}, sub, tev())
	must(t, err)

	revoked := func(since, until time.Time) []string {
		t.Helper()
		var out []string
		must(t, db.EachRevokedBetween(ctx, since, until, func(r *inventory.Revocation, c *inventory.Certificate) error {
			if r.CA != (c == nil) {
				t.Errorf("revocation %s (CA %v): certificate %v", r.Serial, r.CA, c)
			}
			if c != nil {
				if c.Serial != r.Serial || c.Revocation == nil || c.Revocation.Serial != r.Serial || c.Status != inventory.StatusRevoked {
					t.Errorf("revocation %s: certificate %+v", r.Serial, c)
				}
				want := newCert(c.Serial, "ca1")
				want.Status, want.Revocation, want.SPKISHA256 = inventory.StatusRevoked, c.Revocation, c.SPKISHA256
				checkCert(t, c, want)
			}
			out = append(out, r.Serial)
			return nil
		}))
		return out
	}
	for _, tc := range []struct {
		since, until time.Time
		want         []string
	}{
		{t0, time.Time{}, []string{"04", "01", "02", "0c", "03"}},
		{t0.Add(time.Hour), t0.Add(3 * time.Hour), []string{"01", "02", "0c"}},
		{t0.Add(time.Microsecond), t0.Add(time.Hour), nil},
	} {
		if got := revoked(tc.since, tc.until); !slices.Equal(got, tc.want) {
			t.Errorf("revoked in [%v, %v) = %v, want %v", tc.since, tc.until, got, tc.want)
		}
	}
}

package discovery

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/inventory"
)

func TestParseTargets(t *testing.T) {
	t.Parallel()
	tests := []struct {
		spec string
		want []string
	}{
		{"db.example.com:5432", []string{"db.example.com:5432"}},
		{"Web.Example.com", []string{"web.example.com:443"}},
		{"web.example.com:443,8443", []string{"web.example.com:443", "web.example.com:8443"}},
		{"192.0.2.7", []string{"192.0.2.7:443"}},
		{"[2001:db8::1]:8443", []string{"[2001:db8::1]:8443"}},
		{"2001:db8::1", []string{"[2001:db8::1]:443"}},
		{"192.0.2.0/30:443,25", []string{"192.0.2.1:443", "192.0.2.1:25", "192.0.2.2:443", "192.0.2.2:25"}},
		{"192.0.2.8/31", []string{"192.0.2.8:443", "192.0.2.9:443"}},
		{"[2001:db8::/127]:443", []string{"[2001:db8::]:443", "[2001:db8::1]:443"}},
		{"::ffff:192.0.2.1", []string{"192.0.2.1:443"}},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			ts, err := ParseTargets([]string{tc.spec}, nil)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, x := range ts {
				got = append(got, x.String())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	for _, bad := range []string{"", "10.0.0.0/8", "[2001:db8::/64]:443", "host:0", "host:70000", "bad_host!:443", "[::1", "10.0.0.0/33", "fe80::1%eth0"} {
		if _, err := ParseTargets([]string{bad}, nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseTargets(%q) = %v, want ErrInvalid", bad, err)
		}
	}
	// The largest range allowed expands to MaxCIDRAddresses less the
	// network and broadcast addresses.
	ts, err := ParseTargets([]string{"10.0.0.0/20"}, nil)
	if err != nil || len(ts) != MaxCIDRAddresses-2 {
		t.Errorf("a /20 expands to %d targets (%v), want %d", len(ts), err, MaxCIDRAddresses-2)
	}
	if ts, err := ParseTargets([]string{"a.example:443", "A.example:443"}, nil); err != nil || len(ts) != 1 {
		t.Errorf("duplicates: %d targets (%v), want 1", len(ts), err)
	}
}

func TestAllowList(t *testing.T) {
	t.Parallel()
	a, err := ParseAllowList([]string{"10.1.0.0/16", "192.0.2.9", "db.example.com", "*.web.example.com", "2001:db8::/64"})
	if err != nil {
		t.Fatal(err)
	}
	target := func(s string) Target {
		ts, err := ParseTargets([]string{s}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return ts[0]
	}
	for _, ok := range []string{"10.1.2.3:443", "192.0.2.9:25", "db.example.com:5432", "a.web.example.com:443", "[2001:db8::5]:443", "other.example.org:443"} {
		if err := a.Check(target(ok)); err != nil {
			t.Errorf("Check(%s) = %v, want allowed", ok, err)
		}
	}
	for _, no := range []string{"10.2.0.1:443", "192.0.2.10:443", "[2001:db8:1::1]:443"} {
		if err := a.Check(target(no)); !errors.Is(err, ErrNotAllowed) || !strings.Contains(err.Error(), "scan.allow") {
			t.Errorf("Check(%s) = %v, want ErrNotAllowed naming scan.allow", no, err)
		}
	}
	// A hostname not listed by name is admitted only to be checked by
	// address at dial time.
	other := target("other.example.org:443")
	if err := a.CheckDial(other, netip.MustParseAddr("169.254.169.254")); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("CheckDial(other → 169.254.169.254) = %v, want ErrNotAllowed", err)
	}
	if err := a.CheckDial(other, netip.MustParseAddr("10.1.9.9")); err != nil {
		t.Errorf("CheckDial(other → 10.1.9.9) = %v, want allowed", err)
	}
	if err := a.CheckDial(target("db.example.com:5432"), netip.MustParseAddr("203.0.113.5")); err != nil {
		t.Errorf("a name listed by name is trusted wherever it points: %v", err)
	}
	if err := a.CheckDial(target("db.example.com:5432"), netip.IPv4Unspecified()); err == nil {
		t.Error("the unspecified address was allowed")
	}
	names, err := ParseAllowList([]string{"db.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if err := names.Check(target("other.example.org:443")); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("names only: another name = %v, want ErrNotAllowed", err)
	}
	var none AllowList
	if err := none.Check(target("10.1.2.3:443")); !errors.Is(err, ErrNotAllowed) || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty list: %v, want ErrNotAllowed saying it is empty", err)
	}
	if _, err := ParseAllowList([]string{"not a host"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad entry: %v", err)
	}
}

func TestQuietHours(t *testing.T) {
	t.Parallel()
	q, err := ParseQuietHours("22:00-06:00", "")
	if err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	for h, want := range map[int]bool{21: false, 22: true, 23: true, 0: true, 5: true, 6: false, 12: false} {
		if got := q.Contains(day.Add(time.Duration(h) * time.Hour)); got != want {
			t.Errorf("%02d:00 quiet = %v, want %v", h, got, want)
		}
	}
	d, err := ParseQuietHours("01:30-02:00", "Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	// 23:45 UTC is 01:45 in Paris in May.
	if !d.Contains(time.Date(2026, 5, 1, 23, 45, 0, 0, time.UTC)) || d.Contains(time.Date(2026, 5, 1, 1, 45, 0, 0, time.UTC)) {
		t.Error("the window is not read in its time zone")
	}
	if (QuietHours{}).Contains(day) {
		t.Error("the zero window contains a time")
	}
	for _, bad := range []string{"22:00", "25:00-01:00", "10:00-10:00"} {
		if _, err := ParseQuietHours(bad, ""); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseQuietHours(%q) = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	cert := func(mod func(*inventory.Certificate)) *inventory.Certificate {
		c := &inventory.Certificate{Status: inventory.StatusValid, Source: inventory.SourceIssued, NotAfter: now.Add(time.Hour)}
		mod(c)
		return c
	}
	tests := []struct {
		name string
		c    *inventory.Certificate
		want Status
	}{
		{"current", cert(func(*inventory.Certificate) {}), StatusManaged},
		{"imported", cert(func(c *inventory.Certificate) { c.Source = inventory.SourceImported }), StatusManaged},
		{"discovered", cert(func(c *inventory.Certificate) { c.Source = inventory.SourceDiscovered }), StatusUnmanaged},
		{"renewed", cert(func(c *inventory.Certificate) { c.RenewedBy = "02" }), StatusStale},
		{"expired and renewed", cert(func(c *inventory.Certificate) { c.RenewedBy, c.NotAfter = "02", now }), StatusExpired},
		{"revoked and expired", cert(func(c *inventory.Certificate) { c.Status, c.NotAfter = inventory.StatusRevoked, now }), StatusRevoked},
	}
	for _, tc := range tests {
		if got := Classify(tc.c, now); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

func obs(at time.Time, enc Encryption, fp byte, grade string) Observation {
	o := Observation{Address: "192.0.2.1:443", ObservedAt: at, Reachable: true, Encryption: enc}
	if fp != 0 {
		o.Chain = [][]byte{{fp}}
	}
	if grade != "" {
		o.Grade = &Grade{Letter: grade}
	}
	return o
}

func kinds(evs []Event) []EventKind {
	var out []EventKind
	for _, e := range evs {
		out = append(out, e.Kind)
	}
	return out
}

func TestAdvance(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }

	ep, evs := Advance(nil, obs(at(0), EncNone, 0, ""), 2)
	if want := []EventKind{EventAppeared, EventExposed}; !slices.Equal(kinds(evs), want) {
		t.Fatalf("first sight: %v, want %v", kinds(evs), want)
	}
	if !ep.ExposedSince.Equal(at(0)) || !ep.FirstSeen.Equal(at(0)) {
		t.Errorf("exposed since %v, first seen %v", ep.ExposedSince, ep.FirstSeen)
	}
	ep, evs = Advance(ep, obs(at(5), EncImplicitTLS, 1, "A"), 2)
	if want := []EventKind{EventCertChanged, EventGradeChanged, EventEncryptionChanged, EventRemediated}; !slices.Equal(kinds(evs), want) {
		t.Fatalf("fixed: %v, want %v", kinds(evs), want)
	}
	if rem := evs[3]; !rem.Since.Equal(at(0)) || !rem.At.Equal(at(5)) {
		t.Errorf("remediated %+v, want since %v at %v", rem, at(0), at(5))
	}
	if _, evs = Advance(ep, obs(at(6), EncImplicitTLS, 1, "A"), 2); len(evs) != 0 {
		t.Errorf("unchanged: %v", kinds(evs))
	}
	down := Observation{Address: "192.0.2.1:443", ObservedAt: at(7), Error: "connection refused"}
	ep, evs = Advance(ep, down, 2)
	if len(evs) != 0 || ep.Misses != 1 || ep.Gone || ep.LastError != "connection refused" || ep.Latest.Fingerprint() == "" {
		t.Fatalf("one miss: events %v, endpoint %+v", kinds(evs), ep)
	}
	ep, evs = Advance(ep, down, 2)
	if want := []EventKind{EventDisappeared}; !slices.Equal(kinds(evs), want) || !ep.Gone {
		t.Fatalf("second miss: %v gone=%v, want %v", kinds(evs), ep.Gone, want)
	}
	if _, evs = Advance(ep, down, 2); len(evs) != 0 {
		t.Errorf("a gone endpoint missed again: %v", kinds(evs))
	}
	ep, evs = Advance(ep, obs(at(9), EncImplicitTLS, 2, "A"), 2)
	if want := []EventKind{EventAppeared, EventCertChanged}; !slices.Equal(kinds(evs), want) || ep.Gone || ep.Misses != 0 {
		t.Errorf("back: %v, want %v (endpoint %+v)", kinds(evs), want, ep)
	}
	if ep, evs := Advance(nil, down, 2); ep != nil || evs != nil {
		t.Errorf("an unreachable endpoint never seen was recorded: %+v %v", ep, evs)
	}
	// An exposed endpoint that disappears counts as remediated.
	ep, _ = Advance(nil, obs(at(0), EncOptional, 0, ""), 1)
	if _, evs = Miss(ep, at(3), "gone", 1); !slices.Equal(kinds(evs), []EventKind{EventDisappeared, EventRemediated}) {
		t.Errorf("exposed and gone: %v", kinds(evs))
	}
}

func TestKPIs(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	modern := obs(now, EncImplicitTLS, 1, "A")
	modern.Versions, modern.VersionsComplete, modern.SuitesComplete = []string{VersionTLS12, VersionTLS13}, true, true
	legacy := obs(now, EncImplicitTLS, 2, "B")
	legacy.Versions, legacy.VersionsComplete, legacy.WeakSuites = []string{VersionTLS10, VersionTLS12}, true, true
	basic := obs(now, EncSTARTTLS, 3, "")
	basic.Negotiated = VersionTLS13 // only what one handshake tells
	eps := []*Endpoint{
		{Address: "a", Latest: modern, Match: &Match{Status: StatusManaged, Fingerprint: "f1", Source: inventory.SourceIssued}},
		{Address: "b", Latest: legacy, Match: &Match{Status: StatusUnmanaged, Fingerprint: "f2", Source: inventory.SourceDiscovered}, ExposedSince: now},
		{Address: "c", Latest: basic, Match: &Match{Status: StatusExpired, Fingerprint: "f2", Source: inventory.SourceDiscovered}},
		{Address: "d", Latest: obs(now, EncNone, 0, ""), ExposedSince: now},
		{Address: "e", Latest: obs(now, EncUnknown, 0, "")},
		{Address: "f", Latest: modern, Gone: true},
	}
	evs := []Event{
		{Kind: EventRemediated, Since: now.Add(-4 * time.Hour), At: now.Add(-2 * time.Hour)},
		{Kind: EventRemediated, Since: now.Add(-6 * time.Hour), At: now},
		{Kind: EventExposed, At: now},
	}
	k := ComputeKPIs(eps, evs, now)
	checks := []struct {
		name      string
		got, want any
	}{
		{"endpoints", k.Endpoints, 5},
		{"gone", k.Gone, 1},
		{"encrypted", k.Encrypted, 3},
		{"encryption known", k.EncryptionKnown, 4},
		{"encrypted share", k.EncryptedShare, 0.75},
		{"tls12 only", k.TLS12Only, 1},
		{"tls12 known", k.TLS12Known, 2},
		{"tls12 share", k.TLS12OnlyShare, 0.5},
		{"strong only", k.StrongOnly, 1},
		{"strong known", k.StrongKnown, 2},
		{"grade A", k.Grades["A"], 1},
		{"grade B", k.Grades["B"], 1},
		{"by none", k.ByEncryption[EncNone], 1},
		{"by optional (present, zero)", k.ByEncryption[EncOptional], 0},
		{"exposed", k.Exposed, 2},
		{"remediated", k.Remediated, 2},
		{"mean time to remediate", k.MeanTimeToRemediate, (4 * time.Hour).Seconds()},
		{"unmanaged (distinct)", k.Unmanaged, 1},
		{"expired served", k.ByStatus[StatusExpired], 1},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if z := ComputeKPIs(nil, nil, now); z.EncryptedShare != 0 || z.ByEncryption[EncNone] != 0 {
		t.Errorf("empty KPIs: %+v", z)
	}
}

// TestAdvanceIncompleteObservation: a scan that reached an endpoint but
// could not tell what it is (timed out, detection failed) does not
// replace what a complete scan saw: no certificate, encryption or grade
// change, and above all no remediation of an exposed endpoint.
func TestAdvanceIncompleteObservation(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	plain := Observation{Address: "10.0.0.5:5432", Reachable: true, Encryption: EncNone, ObservedAt: t0, Chain: [][]byte{[]byte("x")}}
	ep, _ := Advance(nil, plain, 3)
	timedOut := Observation{Address: "10.0.0.5:5432", Reachable: true, Encryption: EncUnknown, ObservedAt: t0.Add(time.Hour),
		Error: "the scan of this target timed out after 2m0s; what is shown was seen before"}
	unknown := Observation{Address: "10.0.0.5:5432", Reachable: true, Encryption: EncUnknown, ObservedAt: t0.Add(2 * time.Hour)}
	failedTLS := Observation{Address: "10.0.0.5:5432", Reachable: true, Encryption: EncImplicitTLS, ObservedAt: t0.Add(3 * time.Hour),
		Error: "grade: no suite"}
	for _, o := range []Observation{timedOut, unknown, failedTLS} {
		next, evs := Advance(ep, o, 3)
		if len(evs) != 0 {
			t.Errorf("%q: events %v, want none", o.Error, kinds(evs))
		}
		if next.Latest.Encryption != EncNone || next.Latest.Fingerprint() != plain.Fingerprint() || !next.ExposedSince.Equal(t0) {
			t.Errorf("%q: latest %s %s, exposed since %v: the last complete observation was replaced", o.Error, next.Latest.Encryption, next.Latest.Fingerprint(), next.ExposedSince)
		}
		if !next.LastSeen.Equal(o.ObservedAt) || next.Misses != 0 || next.LastError == "" {
			t.Errorf("%q: last seen %v, misses %d, last error %q", o.Error, next.LastSeen, next.Misses, next.LastError)
		}
		ep = next
	}
	// A complete observation afterwards is compared with the last
	// complete one.
	fixed := Observation{Address: "10.0.0.5:5432", Reachable: true, Encryption: EncSTARTTLS, ObservedAt: t0.Add(4 * time.Hour), Chain: [][]byte{[]byte("x")}}
	next, evs := Advance(ep, fixed, 3)
	if want := []EventKind{EventEncryptionChanged, EventRemediated}; !slices.Equal(kinds(evs), want) || next.LastError != "" {
		t.Errorf("complete again: %v (last error %q), want %v", kinds(evs), next.LastError, want)
	}
	// Never seen before, an incomplete observation is all there is.
	if first, evs := Advance(nil, timedOut, 3); first == nil || first.Latest.Encryption != EncUnknown || !slices.Equal(kinds(evs), []EventKind{EventAppeared}) {
		t.Errorf("first sight, incomplete: %+v %v", first, kinds(evs))
	}
}

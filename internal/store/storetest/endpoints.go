package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/discovery"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/store"
)

// endpointTests cover the scans' storage (discovery.Store).
var endpointTests = []struct {
	name string
	fn   func(*testing.T, func(*testing.T) *store.DB)
}{
	{"Endpoints", testEndpoints},
	{"EndpointEvents", testEndpointEvents},
	{"EndpointRetention", testEndpointRetention},
	{"DiscoveredSource", testDiscoveredSource},
}

func endpoint(addr string, enc discovery.Encryption, at time.Time) *discovery.Endpoint {
	return &discovery.Endpoint{
		Address:  addr,
		Latest:   discovery.Observation{Address: addr, ObservedAt: at, Reachable: true, Encryption: enc, Chain: [][]byte{[]byte("leaf of " + addr)}},
		LastSeen: at, LastScanned: at, FirstSeen: at,
	}
}

func testEndpoints(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	t0 := base()
	a := endpoint("a.example:443", discovery.EncImplicitTLS, t0)
	a.Match = &discovery.Match{Status: discovery.StatusManaged, Serial: "01", Fingerprint: "f1", Source: inventory.SourceIssued}
	a.Latest.Grade = &discovery.Grade{Letter: "A", Score: 92, Reasons: []discovery.Reason{{Code: "ok", Message: "fine"}}, RulesVersion: "2009q"}
	b := endpoint("b.example:25", discovery.EncNone, t0)
	b.ExposedSince = t0
	c := endpoint("[2001:db8::1]:443", discovery.EncImplicitTLS, t0)
	c.Match = &discovery.Match{Status: discovery.StatusRevoked, Serial: "02", Fingerprint: "f2", Source: inventory.SourceIssued}
	c.Gone = true
	must(t, db.SaveScan(ctx, discovery.ScanRecord{Endpoints: []*discovery.Endpoint{a, b, c}}))

	got, err := db.GetEndpoint(ctx, "a.example:443")
	must(t, err)
	if got.Match == nil || got.Match.Serial != "01" || got.Latest.Grade == nil || got.Latest.Grade.Reasons[0].Message != "fine" ||
		got.Latest.Fingerprint() != a.Latest.Fingerprint() || !got.LastSeen.Equal(stored(t0)) {
		t.Errorf("GetEndpoint read back %+v, want %+v", got, a)
	}
	if _, err := db.GetEndpoint(ctx, "nowhere:1"); !errors.Is(err, store.ErrNotFound) || !errors.Is(err, discovery.ErrNotFound) {
		t.Errorf("GetEndpoint(unknown) = %v, want store.ErrNotFound and discovery.ErrNotFound", err)
	}
	addrs := func(q discovery.EndpointQuery) []string {
		t.Helper()
		eps, err := db.ListEndpoints(ctx, q)
		must(t, err)
		var out []string
		for _, ep := range eps {
			out = append(out, ep.Address)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		q    discovery.EndpointQuery
		want []string
	}{
		{"current", discovery.EndpointQuery{}, []string{"a.example:443", "b.example:25"}},
		{"with gone", discovery.EndpointQuery{Gone: true}, []string{"[2001:db8::1]:443", "a.example:443", "b.example:25"}},
		{"plaintext", discovery.EndpointQuery{Encryption: discovery.EncNone}, []string{"b.example:25"}},
		{"revoked", discovery.EndpointQuery{Status: discovery.StatusRevoked, Gone: true}, []string{"[2001:db8::1]:443"}},
		{"page", discovery.EndpointQuery{Gone: true, After: "[2001:db8::1]:443", Limit: 1}, []string{"a.example:443"}},
	} {
		if got := addrs(tc.q); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	// A later scan replaces the row and its indexed columns.
	b2 := endpoint("b.example:25", discovery.EncSTARTTLS, t0.Add(time.Hour))
	must(t, db.SaveScan(ctx, discovery.ScanRecord{Endpoints: []*discovery.Endpoint{b2}}))
	if got := addrs(discovery.EndpointQuery{Encryption: discovery.EncNone}); len(got) != 0 {
		t.Errorf("plaintext after the upgrade: %q, want none", got)
	}
	if got := addrs(discovery.EndpointQuery{Encryption: discovery.EncSTARTTLS}); !slices.Equal(got, []string{"b.example:25"}) {
		t.Errorf("starttls after the upgrade: %q", got)
	}
}

func testEndpointEvents(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	t0 := base()
	evs := []discovery.Event{
		{Address: "a:443", Kind: discovery.EventAppeared, At: t0, To: "implicit-tls"},
		{Address: "b:25", Kind: discovery.EventExposed, At: t0, To: "plaintext"},
		{Address: "a:443", Kind: discovery.EventCertChanged, At: t0.Add(time.Hour), From: "f1", To: "f2"},
		{Address: "b:25", Kind: discovery.EventRemediated, At: t0.Add(2 * time.Hour), Since: t0, To: "starttls"},
	}
	must(t, db.SaveScan(ctx, discovery.ScanRecord{Events: evs[:2]}))
	must(t, db.SaveScan(ctx, discovery.ScanRecord{Events: evs[2:]}))
	list := func(q discovery.EventQuery) []discovery.Event {
		t.Helper()
		got, err := db.ListEndpointEvents(ctx, q)
		must(t, err)
		return got
	}
	if got := list(discovery.EventQuery{Address: "a:443"}); len(got) != 2 || got[0].Kind != discovery.EventCertChanged || got[0].From != "f1" {
		t.Errorf("events of a:443 = %+v, want the certificate change first", got)
	}
	rem := list(discovery.EventQuery{Kind: discovery.EventRemediated, Since: t0.Add(time.Hour)})
	if len(rem) != 1 || !rem[0].Since.Equal(stored(t0)) || !rem[0].At.Equal(stored(t0.Add(2*time.Hour))) {
		t.Errorf("remediated since t0+1h = %+v", rem)
	}
	if got := list(discovery.EventQuery{Limit: 3}); len(got) != 3 || got[0].Kind != discovery.EventRemediated {
		t.Errorf("newest 3 = %+v", got)
	}
	// Sightings keep the first time seen and move the last.
	must(t, db.SaveScan(ctx, discovery.ScanRecord{Sightings: []discovery.Sighting{
		{Fingerprint: "f2", Serial: "02", Endpoint: "a:443", FirstSeen: t0, LastSeen: t0},
		{Fingerprint: "f2", Serial: "02", Endpoint: "c:443", FirstSeen: t0, LastSeen: t0},
	}}))
	must(t, db.SaveScan(ctx, discovery.ScanRecord{Sightings: []discovery.Sighting{
		{Fingerprint: "f2", Serial: "02", Endpoint: "a:443", FirstSeen: t0.Add(time.Hour), LastSeen: t0.Add(time.Hour)},
	}}))
	ss, err := db.CertificateSightings(ctx, "f2")
	must(t, err)
	if len(ss) != 2 || ss[0].Endpoint != "a:443" || !ss[0].FirstSeen.Equal(stored(t0)) || !ss[0].LastSeen.Equal(stored(t0.Add(time.Hour))) {
		t.Errorf("sightings = %+v, want a:443 first seen %v, last seen an hour later", ss, stored(t0))
	}
}

func testEndpointRetention(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	t0 := base()
	old := endpoint("old:443", discovery.EncImplicitTLS, t0)
	old.Gone = true
	recent := endpoint("recent:443", discovery.EncImplicitTLS, t0)
	recent.Gone = true
	recent.LastScanned = t0.Add(48 * time.Hour)
	live := endpoint("live:443", discovery.EncImplicitTLS, t0)
	must(t, db.SaveScan(ctx, discovery.ScanRecord{
		Endpoints: []*discovery.Endpoint{old, recent, live},
		Events: []discovery.Event{
			{Address: "old:443", Kind: discovery.EventDisappeared, At: t0},
			{Address: "live:443", Kind: discovery.EventAppeared, At: t0.Add(48 * time.Hour)},
		},
		Sightings: []discovery.Sighting{{Fingerprint: "f", Serial: "01", Endpoint: "old:443", FirstSeen: t0, LastSeen: t0}},
	}))
	must(t, db.SaveScan(ctx, discovery.ScanRecord{PruneBefore: t0.Add(24 * time.Hour)}))
	eps, err := db.ListEndpoints(ctx, discovery.EndpointQuery{Gone: true})
	must(t, err)
	var got []string
	for _, ep := range eps {
		got = append(got, ep.Address)
	}
	// A live endpoint stays however old its last scan: only the gone go.
	if want := []string{"live:443", "recent:443"}; !slices.Equal(got, want) {
		t.Errorf("after pruning: %q, want %q", got, want)
	}
	evs, err := db.ListEndpointEvents(ctx, discovery.EventQuery{})
	must(t, err)
	if len(evs) != 1 || evs[0].Address != "live:443" {
		t.Errorf("events after pruning: %+v, want only the recent one", evs)
	}
	ss, err := db.CertificateSightings(ctx, "f")
	must(t, err)
	if len(ss) != 0 {
		t.Errorf("sightings after pruning: %+v", ss)
	}
}

func testDiscoveredSource(t *testing.T, open func(*testing.T) *store.DB) {
	ctx := context.Background()
	db := open(t)
	d := importedCert("d1")
	d.Source = inventory.SourceDiscovered
	ev := audit.Event{Time: base(), Principal: "system", Action: "certificate.discover", Target: "d1", Outcome: audit.Success}
	ins, err := db.ImportCertificates(ctx, []*inventory.Certificate{d, importedCert("i1")}, []audit.Event{ev, importEvent("i1")})
	must(t, err)
	if !slices.Equal(ins, []bool{true, true}) {
		t.Fatalf("inserted %v", ins)
	}
	must(t, db.InsertCertificate(ctx, newCert("c1", ""), tev()))
	for src, want := range map[inventory.Source][]string{
		inventory.SourceDiscovered: {"d1"},
		inventory.SourceImported:   {"i1"},
		inventory.SourceIssued:     {"c1"},
	} {
		got, err := db.ListCertificates(ctx, inventory.Filter{Source: src})
		must(t, err)
		var serials []string
		for _, c := range got {
			serials = append(serials, c.Serial)
		}
		if !slices.Equal(serials, want) {
			t.Errorf("source %s: %q, want %q", src, serials, want)
		}
	}
	got, err := db.GetCertificate(ctx, "d1")
	must(t, err)
	if got.Source != inventory.SourceDiscovered {
		t.Errorf("source read back %q", got.Source)
	}
}

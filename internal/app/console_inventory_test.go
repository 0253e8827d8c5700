package app

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// tSeedInventory records n certificates straight into the store, their
// fields spread so that every search, filter and order of the inventory
// has ties and gaps: names in another order than serials, expiries in
// groups of equal days, three owners, two requesters, ACME ones and
// imported ones, a tag on every fourth, every seventh revoked.
func tSeedInventory(t *testing.T, in *tInstance, n int) {
	t.Helper()
	ctx := context.Background()
	ca, err := in.app.store.GetCA(ctx, in.app.cfg.DefaultCA)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().UTC().Truncate(time.Hour)
	for i := range n {
		serial := fmt.Sprintf("5e%016x", int64(1e17)+int64(i)) // as pki.SerialHex writes it
		fp := sha256.Sum256([]byte(serial))
		c := &inventory.Certificate{
			Serial: serial, CAID: ca.ID, Profile: "web_server", Requester: "alice", Subject: "CN=inventory",
			SANs:      []string{"h" + strconv.Itoa(100+(i*37)%n) + ".inv.example"},
			NotBefore: base.Add(-time.Duration((i*11)%n) * time.Hour), NotAfter: base.Add(time.Duration(1+i%40) * 24 * time.Hour),
			KeyAlgorithm: "ECDSA", KeyBits: 256, SignatureAlgorithm: "ECDSA-SHA256", Status: inventory.StatusValid,
			Fingerprint: hex.EncodeToString(fp[:]), Owner: []string{"team-a", "team-b", ""}[i%3], CreatedAt: base,
			Tags: []string{},
		}
		if i%2 == 1 {
			c.Profile, c.Requester = "internal_service", "bob"
		}
		if i%4 == 0 {
			c.Tags = append(c.Tags, "tier-1")
		}
		switch i % 10 {
		case 0:
			c.Requester, c.Tags = "acme:prov/acct1", append(c.Tags, "acme", "acme:prov")
		case 5:
			c.Source, c.Issuer = inventory.SourceImported, "CN=Elsewhere"
		case 9:
			// Tagged "acme" by hand: not an ACME certificate.
			c.Tags = append(c.Tags, "acme")
		}
		if i%7 == 0 {
			c.Status = inventory.StatusRevoked
		}
		if i%13 == 0 {
			c.SANs = nil // named by its subject
			c.Subject = "CN=subject-" + strconv.Itoa(i)
		}
		if err := in.app.store.InsertCertificate(ctx, c, audit.New(authz.System(), base, "cert.issue", serial, nil)); err != nil {
			t.Fatal(err)
		}
	}
}

// tAllCertificates is the whole inventory, straight from the store.
func tAllCertificates(t *testing.T, in *tInstance) []*inventory.Certificate {
	t.Helper()
	all, err := in.app.store.ListCertificates(context.Background(), inventory.Filter{Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	return all
}

// tWantSerials is the serials of all that keep says, in order o (desc: reversed),
// as the inventory should list them.
func tWantSerials(all []*inventory.Certificate, o inventory.Order, desc bool, keep func(*inventory.Certificate) bool) []string {
	var rows []*inventory.Certificate
	for _, c := range all {
		if keep == nil || keep(c) {
			rows = append(rows, c)
		}
	}
	slices.SortFunc(rows, func(a, b *inventory.Certificate) int {
		ak, at := o.Key(a)
		bk, bt := o.Key(b)
		r := cmp.Or(at.Compare(bt), strings.Compare(ak, bk), strings.Compare(a.Serial, b.Serial))
		if desc {
			return -r
		}
		return r
	})
	out := make([]string, len(rows))
	for i, c := range rows {
		out[i] = c.Serial
	}
	return out
}

var (
	tRowSerial = regexp.MustCompile(`<td class="mono"><a href="/certificates/([0-9a-f]+)">`)
	tNextLink  = regexp.MustCompile(`<a class="next" href="([^"]+)">`)
)

// tPages follows the inventory's Next links from path and returns the
// serials of every page, and how many pages there were.
func tPages(t *testing.T, b *tBrowser, path string) (serials []string, pages int) {
	t.Helper()
	for path != "" {
		r := b.do("GET", path, nil)
		if r.status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, r.status, tTrim(r.body))
		}
		pages++
		for _, m := range tRowSerial.FindAllSubmatch(r.body, -1) {
			serials = append(serials, string(m[1]))
		}
		path = ""
		if m := tNextLink.FindSubmatch(r.body); m != nil {
			path = html.UnescapeString(string(m[1]))
		}
		if pages > 10 {
			t.Fatalf("more than 10 pages from %s", path)
		}
	}
	return serials, pages
}

// TestConsoleInventory: every order of the inventory, either way, lists
// exactly the certificates in that order across its page boundary; each
// search and filter (owner, tag, requester, source, name, fingerprint)
// keeps exactly the right ones, with any order; the export follows the
// view; bad input is a 400 naming the problem.
func TestConsoleInventory(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			in := tNewServer(t, be.dbURL(t))
			tSeedInventory(t, in, 130)
			all := tAllCertificates(t, in)
			if len(all) <= pageSizeForTest {
				t.Fatalf("%d certificates: the test needs more than a page", len(all))
			}
			b := in.browser(t)
			b.signIn(in.token)
			now := time.Now()

			for _, o := range []inventory.Order{inventory.OrderSerial, inventory.OrderName, inventory.OrderExpiry, inventory.OrderIssued,
				inventory.OrderCA, inventory.OrderProfile, inventory.OrderStatus, inventory.OrderSource} {
				for _, desc := range []bool{false, true} {
					q := url.Values{"sort": {o.Name()}}
					if desc {
						q.Set("dir", "desc")
					}
					got, pages := tPages(t, b, "/certificates?"+q.Encode())
					if want := tWantSerials(all, o, desc, nil); !slices.Equal(got, want) || pages != 2 {
						t.Errorf("%s: %d rows on %d pages, want %d on 2; first difference at %d", q.Encode(), len(got), pages, len(want), tFirstDiff(got, want))
					}
				}
			}

			acme := func(c *inventory.Certificate) bool {
				return c.Source == inventory.SourceIssued && strings.HasPrefix(c.Requester, "acme:") && slices.Contains(c.Tags, "acme")
			}
			for _, tc := range []struct {
				query string
				keep  func(*inventory.Certificate) bool
			}{
				{"owner=team-a", func(c *inventory.Certificate) bool { return c.Owner == "team-a" }},
				{"tag=tier-1&sort=expiry&dir=desc", func(c *inventory.Certificate) bool { return slices.Contains(c.Tags, "tier-1") }},
				{"requester=bob&sort=name", func(c *inventory.Certificate) bool { return c.Requester == "bob" }},
				{"source=acme&sort=issued", acme},
				{"source=imported", func(c *inventory.Certificate) bool { return c.Source == inventory.SourceImported }},
				{"source=issued&sort=name&dir=desc", func(c *inventory.Certificate) bool { return c.Source == inventory.SourceIssued && !acme(c) }},
				{"name=H112.inv.example", func(c *inventory.Certificate) bool { return slices.Contains(c.SANs, "h112.inv.example") }},
				{"owner=team-b&status=valid&sort=status", func(c *inventory.Certificate) bool {
					return c.Owner == "team-b" && c.Status == inventory.StatusValid && c.NotAfter.After(now)
				}},
				{"owner=team-b&status=revoked&source=issued&requester=alice&sort=profile", func(c *inventory.Certificate) bool {
					return c.Owner == "team-b" && c.Status == inventory.StatusRevoked && c.Requester == "alice" && c.Source == inventory.SourceIssued && !acme(c)
				}},
				{"owner=nobody", func(*inventory.Certificate) bool { return false }},
			} {
				q, _ := url.ParseQuery(tc.query)
				o, _ := inventory.ParseOrder(cmp.Or(q.Get("sort"), "serial"))
				want := tWantSerials(all, o, q.Get("dir") == "desc", tc.keep)
				if got, _ := tPages(t, b, "/certificates?"+tc.query); !slices.Equal(got, want) {
					t.Errorf("%s: %d rows, want %d; first difference at %d", tc.query, len(got), len(want), tFirstDiff(got, want))
				}
				if tc.query != "owner=nobody" && len(want) == 0 {
					t.Errorf("%s: the seed has no certificate for it", tc.query)
				}
				// The export is the whole view, in the view's order.
				var rows []struct{ Serial string }
				r := b.do("GET", "/certificates/export?format=json&"+tc.query, nil)
				if err := json.Unmarshal(r.body, &rows); err != nil || r.header.Get("X-Certwright-Export") != "complete" {
					t.Fatalf("export %s: %d %v %s", tc.query, r.status, err, tTrim(r.body))
				}
				got := make([]string, len(rows))
				for i, x := range rows {
					got[i] = x.Serial
				}
				if !slices.Equal(got, want) {
					t.Errorf("export %s: %d rows, want %d; first difference at %d", tc.query, len(got), len(want), tFirstDiff(got, want))
				}
			}
			// Every page of the export, in a reversed order.
			r := b.do("GET", "/certificates/export?format=csv&sort=name&dir=desc", nil)
			lines := strings.Split(strings.TrimSpace(string(r.body)), "\n")
			if want := tWantSerials(all, inventory.OrderName, true, nil); len(lines) != len(want)+1 || !strings.HasPrefix(lines[1], want[0]+",") ||
				!strings.HasPrefix(lines[len(lines)-1], want[len(want)-1]+",") {
				t.Errorf("CSV export by name, descending: %d lines, want %d from %s to %s", len(lines), len(want)+1, want[0], want[len(want)-1])
			}

			// A SHA-256 fingerprint, as openssl prints it, opens its
			// certificate, as a serial does.
			target := all[17]
			colons := strings.ToUpper(regexp.MustCompile(`(..)`).ReplaceAllString(target.Fingerprint, "$1:"))
			colons = strings.TrimSuffix(colons, ":")
			if r := b.do("GET", "/certificates?"+url.Values{"name": {colons}}.Encode(), nil); r.status != http.StatusSeeOther || r.header.Get("Location") != "/certificates/"+target.Serial {
				t.Errorf("fingerprint search: %d to %q, want /certificates/%s", r.status, r.header.Get("Location"), target.Serial)
			}
			if r := b.do("GET", "/certificates?name="+strings.Repeat("ab", 32), nil); r.status != http.StatusOK || !strings.Contains(string(r.body), "No certificate matches") {
				t.Errorf("an unknown fingerprint: %d", r.status)
			}

			// The headers sort: the current one says which way, and
			// links to the other way.
			page := string(b.do("GET", "/certificates?sort=expiry&dir=desc&owner=team-a", nil).body)
			if !strings.Contains(page, `<th scope="col" aria-sort="descending"><a class="sort" href="/certificates?owner=team-a&amp;sort=expiry">Expires`) ||
				!strings.Contains(page, `<th scope="col"><a class="sort" href="/certificates?owner=team-a&amp;sort=name">Name`) ||
				strings.Count(page, "aria-sort") != 1 {
				t.Errorf("sort headers: %s", tTrim([]byte(page[strings.Index(page, "<thead>"):])))
			}
			if page := string(b.do("GET", "/certificates", nil).body); !strings.Contains(page, `aria-sort="ascending"><a class="sort" href="/certificates?dir=desc&amp;sort=serial">Serial`) {
				t.Error("the default order (serial) is not marked ascending")
			}

			for _, tc := range []struct{ query, want string }{
				{"sort=size", "sort \"size\": choose serial, expiry, issued, name, ca, profile, status, source"},
				{"dir=up", "dir \"up\": choose asc or desc"},
				{"source=web", "source \"web\": choose issued, acme or imported"},
				{"owner=" + strings.Repeat("x", 257), "owner: at most 256 characters"},
				{"sort=name&after=nounderscore", "is not a position in name order"},
				{"sort=issued&after=soon_0a", "is not a position in issued order"},
			} {
				r := b.do("GET", "/certificates?"+tc.query, nil)
				if r.status != http.StatusBadRequest || !strings.Contains(html.UnescapeString(string(r.body)), tc.want) {
					t.Errorf("%s: %d, want 400 saying %q: %s", tc.query, r.status, tc.want, tTrim(r.body))
				}
				if r := b.do("GET", "/certificates/export?format=csv&"+tc.query, nil); r.status != http.StatusBadRequest {
					t.Errorf("export %s: %d, want 400", tc.query, r.status)
				}
			}
		})
	}
}

// pageSizeForTest is the console's page size (console.pageSize).
const pageSizeForTest = 100

func tFirstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

var tViewLink = regexp.MustCompile(`<a href="/certificate-views/([0-9a-f]+)">([^<]*)</a>`)

// TestConsoleSavedViews: a saved view is its principal's alone: saved
// from the inventory's filter (checked first, the page position left
// out), listed and opened by it, audited; another principal neither sees,
// opens nor deletes it (404); bad names and filters are a 400 and save
// nothing; at most 50 a principal.
func TestConsoleSavedViews(t *testing.T) {
	t.Parallel()
	for _, be := range tBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			in := tNewServer(t, be.dbURL(t))
			b := in.browser(t)
			b.signIn(in.token)
			csrf := b.csrf()
			head := tAuditHead(t, in)

			save := func(b *tBrowser, csrf, name, query string) tResp {
				return b.do("POST", "/certificate-views", url.Values{"csrf": {csrf}, "name": {name}, "query": {query}})
			}
			r := save(b, csrf, "Team A, soonest", "owner=team-a&sort=expiry&after=123_0a&format=csv&bogus=1")
			if r.status != http.StatusSeeOther || r.header.Get("Location") != "/certificates?owner=team-a&sort=expiry" {
				t.Fatalf("save: %d to %q %s", r.status, r.header.Get("Location"), tTrim(r.body))
			}
			page := b.do("GET", "/certificates", nil).body
			m := tViewLink.FindSubmatch(page)
			if m == nil || string(m[2]) != "Team A, soonest" {
				t.Fatalf("the inventory does not list the saved view: %s", tTrim(page))
			}
			id := string(m[1])
			if r := b.do("GET", "/certificate-views/"+id, nil); r.status != http.StatusSeeOther || r.header.Get("Location") != "/certificates?owner=team-a&sort=expiry" {
				t.Errorf("open: %d to %q", r.status, r.header.Get("Location"))
			}

			for _, tc := range []struct{ name, query, want string }{
				{"", "owner=x", "Give the view a name"},
				{strings.Repeat("n", 65), "owner=x", "give at most 64"},
				{"tab\there", "owner=x", "control character"},
				{"bad", "status=bogus", "status \"bogus\": choose valid, expired or revoked"},
				{"bad", "sort=name&dir=sideways", "dir \"sideways\""},
				{"bad", strings.Repeat("owner=x&", 300), "longer than 2000 bytes"},
				{"bad", "owner=%zz", "not a query string"},
			} {
				r := save(b, csrf, tc.name, tc.query)
				if r.status != http.StatusBadRequest || !strings.Contains(html.UnescapeString(string(r.body)), tc.want) {
					t.Errorf("save %q %q: %d, want 400 saying %q: %s", tc.name, tc.query, r.status, tc.want, tTrim(r.body))
				}
			}
			if r := save(b, csrf, "Team A, soonest", "owner=team-b"); r.status != http.StatusConflict {
				t.Errorf("a second view of the same name: %d, want 409", r.status)
			}
			if got := tViewLink.FindAll(b.do("GET", "/certificates", nil).body, -1); len(got) != 1 {
				t.Errorf("after refused saves %d views are listed, want 1", len(got))
			}

			// Another principal, even one that may read every certificate.
			var other apitypes.CreatePrincipalResult
			in.must(http.StatusCreated, "POST", "/api/v1/principals", apitypes.CreatePrincipalRequest{
				Name: "olga", Kind: "human", Role: "viewer", Token: true}, &other)
			ob := in.browser(t)
			ob.signIn(other.Token.Token)
			ocsrf := ob.csrf()
			if page := ob.do("GET", "/certificates", nil).body; tViewLink.Match(page) || strings.Contains(string(page), "Team A") {
				t.Error("another principal sees the saved view")
			}
			if r := ob.do("GET", "/certificate-views/"+id, nil); r.status != http.StatusNotFound {
				t.Errorf("another principal opens the view: %d, want 404", r.status)
			}
			if r := ob.do("POST", "/certificate-views/"+id+"/delete", url.Values{"csrf": {ocsrf}, "confirm": {"yes"}}); r.status != http.StatusNotFound {
				t.Errorf("another principal deletes the view: %d, want 404", r.status)
			}
			// Its own view of the same name is its own.
			if r := save(ob, ocsrf, "Team A, soonest", "owner=team-a"); r.status != http.StatusSeeOther {
				t.Errorf("another principal's view of the same name: %d", r.status)
			}
			// No deletion without the confirmation, nor the CSRF token.
			if r := b.do("POST", "/certificate-views/"+id+"/delete", url.Values{"csrf": {csrf}}); r.status != http.StatusBadRequest {
				t.Errorf("delete without confirmation: %d, want 400", r.status)
			}
			if r := b.do("POST", "/certificate-views/"+id+"/delete", url.Values{"confirm": {"yes"}}); r.status != http.StatusForbidden {
				t.Errorf("delete without the CSRF token: %d, want 403", r.status)
			}
			if r := b.do("POST", "/certificate-views/"+id+"/delete", url.Values{"csrf": {csrf}, "confirm": {"yes"}}); r.status != http.StatusSeeOther {
				t.Errorf("delete: %d", r.status)
			}
			if r := b.do("GET", "/certificate-views/"+id, nil); r.status != http.StatusNotFound {
				t.Errorf("a deleted view opens: %d", r.status)
			}
			if got := tViewLink.FindAll(ob.do("GET", "/certificates", nil).body, -1); len(got) != 1 {
				t.Errorf("the other principal's own view went with the first's: %d listed", len(got))
			}
			var saved, deleted int
			for _, ev := range tAuditEvents(t, in, head) {
				switch ev.Action {
				case "console.view_save":
					saved++
				case "console.view_delete":
					deleted++
				}
			}
			if saved != 2 || deleted != 1 {
				t.Errorf("audit: %d saves, %d deletions, want 2 and 1", saved, deleted)
			}

			// At most 50 a principal: the 51st is refused, saying why.
			for i := range 49 {
				if r := save(ob, ocsrf, "view "+strconv.Itoa(i), "tag=t"+strconv.Itoa(i)); r.status != http.StatusSeeOther {
					t.Fatalf("view %d: %d %s", i, r.status, tTrim(r.body))
				}
			}
			if r := save(ob, ocsrf, "one more", "owner=x"); r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "50 saved views") {
				t.Errorf("a 51st view: %d %s", r.status, tTrim(r.body))
			}
			if page := string(ob.do("GET", "/certificates", nil).body); strings.Contains(page, `action="/certificate-views"`) {
				t.Error("the save form is offered past the bound")
			}
		})
	}
}

package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/inventory"
	"github.com/certwright/certwright/internal/web/apitypes"
)

// tInventory is an in-memory inventory ordered by serial that counts the
// reads a listing makes.
type tInventory struct {
	Inventory
	certs  []*inventory.Certificate
	limits []int // f.Limit of every ListCertificates call
}

func (v *tInventory) ListCertificates(_ context.Context, f inventory.Filter) ([]*inventory.Certificate, error) {
	v.limits = append(v.limits, f.Limit)
	i := sort.Search(len(v.certs), func(i int) bool { return v.certs[i].Serial > f.After })
	n := min(f.Limit, 10000) // the store's cap
	return v.certs[i:min(i+n, len(v.certs))], nil
}

type tCAs struct{ CAs }

func (tCAs) Get(_ context.Context, id string) (*ca.CA, error) {
	return &ca.CA{ID: id, Name: "issuing"}, nil
}

// tGapInventory holds out-of-scope rows (*.out.test), then in, then more
// out-of-scope rows.
func tGapInventory(gap int, in []int, tail int) (*tInventory, []string) {
	v := &tInventory{}
	var inside []string
	add := func(san string) string {
		s := fmt.Sprintf("01%032x", len(v.certs)+1)
		v.certs = append(v.certs, &inventory.Certificate{Serial: s, CAID: "ca_1", Profile: "internal_service", SANs: []string{san}})
		return s
	}
	for range gap {
		add("svc.out.test")
	}
	for _, n := range in {
		inside = append(inside, add("svc.in.test"))
		for range n {
			add("svc.out.test")
		}
	}
	for range tail {
		add("svc.out.test")
	}
	return v, inside
}

func tListHandler(t *testing.T, inv *tInventory) *Handler {
	t.Helper()
	return tListHandlerKey(t, inv, nil)
}

// tListHandlerKey is tListHandler sealing cursors under key (nil: random).
func tListHandlerKey(t *testing.T, inv *tInventory, key []byte) *Handler {
	t.Helper()
	cur, err := newCursorSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	return &Handler{d: Deps{Inventory: inv, CAs: tCAs{}}, cursors: cur, scan: inventory.ScanLimits{Page: inventory.ScanPage, Max: inventory.ScanMax}}
}

// tList runs GET /api/v1/certificates?query as who.
func tList(t *testing.T, h *Handler, who authz.Principal, query url.Values) (apitypes.CertificateList, error) {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/api/v1/certificates?"+query.Encode(), nil)
	w := httptest.NewRecorder()
	var out apitypes.CertificateList
	if err := h.listCerts(w, r, who); err != nil {
		return out, err
	}
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	return out, nil
}

// TestListScanBoundsQueriesAndCrossesGaps: a caller whose scope covers
// only *.in.test lists with limit=1 across 45,000 rows outside its scope.
// Each request reads the store at most 21 times (the first read at the
// caller's limit, then pages of 1,000: never row by row) and at most
// 20,000 rows; a request whose rows hold nothing in scope answers 200 with
// an empty page and an opaque cursor that names no serial, and following
// the cursors reaches the in-scope certificates, each shown once, with
// next = the last certificate shown whenever a page is full.
func TestListScanBoundsQueriesAndCrossesGaps(t *testing.T) {
	t.Parallel()
	inv, inside := tGapInventory(45000, []int{25000, 0}, 100)
	h := tListHandler(t, inv)
	who := authz.WithRole("team", authz.KindMachine, authz.RoleViewer, authz.Scope{Names: []string{"*.in.test"}})
	serials := map[string]bool{}
	for _, c := range inv.certs {
		serials[c.Serial] = true
	}

	var seen []string
	after, empty := "", 0
	for page := 0; ; page++ {
		if page == 20 {
			t.Fatalf("still paging after %d requests; saw %v", page, seen)
		}
		q := url.Values{"limit": {"1"}}
		if after != "" {
			q.Set("after", after)
		}
		inv.limits = nil
		l, err := tList(t, h, who, q)
		rows := 0
		for _, n := range inv.limits {
			rows += n
		}
		for i, n := range inv.limits {
			if i > 0 && n < 500 && i < len(inv.limits)-1 {
				t.Errorf("page %d: store read %d asked for %d rows, want at least 500", page, i, n)
				break
			}
		}
		if len(inv.limits) > 21 || rows > inventory.ScanMax+1 {
			t.Errorf("page %d: %d store reads for %d rows, want at most 21 reads of at most %d rows", page, len(inv.limits), rows, inventory.ScanMax)
		}
		if err != nil {
			t.Fatalf("page %d: %v (a scoped caller must be able to page past rows outside its scope)", page, err)
		}
		for _, c := range l.Certificates {
			seen = append(seen, c.Serial)
		}
		if l.Next == "" {
			break
		}
		if len(l.Certificates) == 0 {
			empty++
		}
		if len(l.Certificates) == 1 {
			if l.Next != l.Certificates[0].Serial {
				t.Fatalf("page %d: full page, next %q is not the certificate shown %s", page, l.Next, l.Certificates[0].Serial)
			}
		} else {
			if !strings.HasPrefix(l.Next, cursorPrefix) {
				t.Fatalf("page %d: %d shown, next %q is not an opaque cursor", page, len(l.Certificates), l.Next)
			}
			for s := range serials {
				if strings.Contains(strings.ToLower(l.Next), s[len(s)-12:]) {
					t.Fatalf("page %d: cursor %q carries serial %s", page, l.Next, s)
				}
			}
		}
		after = l.Next
	}
	if strings.Join(seen, ",") != strings.Join(inside, ",") {
		t.Errorf("pages held %v, want exactly the in-scope %v", seen, inside)
	}
	if empty < 3 {
		t.Errorf("%d empty pages with a cursor, want at least 3 (45,000 and 25,000 rows out of scope)", empty)
	}

	// A caller that sees everything is served by one read of its limit.
	inv.limits = nil
	all := authz.WithRole("root", authz.KindMachine, authz.RoleViewer, authz.Scope{})
	if l, err := tList(t, h, all, url.Values{"limit": {"5"}}); err != nil || len(l.Certificates) != 5 || l.Next != inv.certs[4].Serial {
		t.Fatalf("unscoped list: %d certificates, next %q, %v", len(l.Certificates), l.Next, err)
	}
	if len(inv.limits) != 1 || inv.limits[0] != 5 {
		t.Errorf("unscoped list read the store %v, want once for 5 rows", inv.limits)
	}
}

// TestListCursorBoundToCallerAndFilters: the opaque cursor opens only for
// the principal it was given to and with the same filters; a forged or
// altered one is refused with 400, never followed.
func TestListCursorBoundToCallerAndFilters(t *testing.T) {
	t.Parallel()
	inv, _ := tGapInventory(30, []int{0}, 0)
	h := tListHandler(t, inv)
	h.scan = inventory.ScanLimits{Page: 10, Max: 20} // the handler's bounds, lowered
	who := authz.WithRole("team", authz.KindMachine, authz.RoleViewer, authz.Scope{Names: []string{"*.in.test"}})
	l, err := tList(t, h, who, url.Values{"limit": {"1"}})
	if err != nil || len(l.Certificates) != 0 || !strings.HasPrefix(l.Next, cursorPrefix) {
		t.Fatalf("first page: %+v, %v; want empty with a cursor", l, err)
	}
	if got := len(inv.limits); got != 3 { // 1 (the caller's limit) + 10 + 9
		t.Errorf("store reads %v, want 3 with bounds page 10, max 20", inv.limits)
	}
	if l2, err := tList(t, h, who, url.Values{"limit": {"1"}, "after": {l.Next}}); err != nil || len(l2.Certificates) != 1 {
		t.Fatalf("following the cursor: %+v, %v", l2, err)
	}
	other := authz.WithRole("other", authz.KindMachine, authz.RoleViewer, authz.Scope{Names: []string{"*.in.test"}})
	tampered := []byte(l.Next)
	tampered[len(tampered)-3] ^= 1
	for name, tc := range map[string]struct {
		who authz.Principal
		q   url.Values
	}{
		"another principal":  {other, url.Values{"after": {l.Next}}},
		"another filter":     {who, url.Values{"after": {l.Next}, "profile": {"internal_service"}}},
		"altered":            {who, url.Values{"after": {string(tampered)}}},
		"forged":             {who, url.Values{"after": {cursorPrefix + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}},
		"another server run": {who, url.Values{"after": {tListHandler(t, inv).cursors.seal(who.ID, listFilters(inventory.Filter{}, "", ""), inv.certs[0].Serial)}}},
	} {
		if _, err := tList(t, h, tc.who, tc.q); !errors.Is(err, errBadInput) {
			t.Errorf("%s: %v, want a bad-input error", name, err)
		}
	}
}

// TestListPositionInExpiryOrder: in expiry order "next" carries the
// NotAfter with the serial, parses back to the same position, and a sealed
// cursor holds it too; a serial-order position is refused in expiry order.
func TestListPositionInExpiryOrder(t *testing.T) {
	t.Parallel()
	c := &inventory.Certificate{Serial: "0a1b", NotAfter: time.Date(2027, 3, 4, 5, 6, 7, 891011000, time.UTC)}
	pos := inventory.Position(inventory.OrderExpiry, c)
	if pos != fmt.Sprint(c.NotAfter.UnixMicro())+"_0a1b" {
		t.Errorf("position %q", pos)
	}
	f := inventory.Filter{Order: inventory.OrderExpiry}
	if err := f.SetPosition(pos); err != nil || f.After != "0a1b" || !f.AfterTime.Equal(c.NotAfter) {
		t.Errorf("SetPosition(%q) = %v, %+v", pos, err, f)
	}
	if err := (&inventory.Filter{Order: inventory.OrderExpiry}).SetPosition("0a1b"); err == nil {
		t.Error("a serial was taken as a position in expiry order")
	}
	if err := (&inventory.Filter{}).SetPosition(pos); err == nil {
		t.Error("an expiry position was taken as a serial")
	}

	// A scoped caller across a gap gets a sealed cursor that resumes in
	// expiry order.
	inv, inside := tGapInventory(30, []int{0}, 0)
	h := tListHandler(t, inv)
	h.scan = inventory.ScanLimits{Page: 10, Max: 20}
	who := authz.WithRole("team", authz.KindMachine, authz.RoleViewer, authz.Scope{Names: []string{"*.in.test"}})
	l, err := tList(t, h, who, url.Values{"limit": {"1"}, "sort": {"expiry"}})
	if err != nil || len(l.Certificates) != 0 || !strings.HasPrefix(l.Next, cursorPrefix) {
		t.Fatalf("first page %+v, %v", l, err)
	}
	l, err = tList(t, h, who, url.Values{"limit": {"1"}, "sort": {"expiry"}, "after": {l.Next}})
	if err != nil || len(l.Certificates) != 1 || l.Certificates[0].Serial != inside[0] {
		t.Fatalf("after the cursor %+v, %v", l, err)
	}
	// The cursor is bound to the order.
	if _, err := tList(t, h, who, url.Values{"limit": {"1"}, "after": {h.cursors.seal(who.ID, listFilters(inventory.Filter{Order: inventory.OrderExpiry}, "", ""), pos)}}); err == nil {
		t.Error("a cursor sealed for expiry order opened in serial order")
	}
}

// TestListCursorAcrossReplicas: a cursor one replica hands out continues
// the listing on another that seals under the same key (every replica
// derives it from the shared KEK), and not on one with another key.
func TestListCursorAcrossReplicas(t *testing.T) {
	t.Parallel()
	inv, _ := tGapInventory(30, []int{0}, 0)
	key := bytes.Repeat([]byte{7}, 32)
	a, b := tListHandlerKey(t, inv, key), tListHandlerKey(t, inv, bytes.Clone(key))
	other := tListHandlerKey(t, inv, bytes.Repeat([]byte{8}, 32))
	for _, h := range []*Handler{a, b, other} {
		h.scan = inventory.ScanLimits{Page: 10, Max: 20}
	}
	who := authz.WithRole("team", authz.KindMachine, authz.RoleViewer, authz.Scope{Names: []string{"*.in.test"}})
	l, err := tList(t, a, who, url.Values{"limit": {"1"}})
	if err != nil || len(l.Certificates) != 0 || !strings.HasPrefix(l.Next, cursorPrefix) {
		t.Fatalf("first page on A: %+v, %v; want empty with a cursor", l, err)
	}
	if l2, err := tList(t, b, who, url.Values{"limit": {"1"}, "after": {l.Next}}); err != nil || len(l2.Certificates) != 1 {
		t.Fatalf("A's cursor on B: %+v, %v; want the next certificate", l2, err)
	}
	if _, err := tList(t, other, who, url.Values{"limit": {"1"}, "after": {l.Next}}); !errors.Is(err, errBadInput) {
		t.Fatalf("A's cursor under another key: %v, want a bad-input error", err)
	}
	if _, err := newCursorSealer(key[:16]); err == nil {
		t.Error("a 16-byte cursor key was accepted")
	}
}

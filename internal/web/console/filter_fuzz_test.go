package console

import (
	"net/url"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/inventory"
)

// FuzzCertFilter: whatever query a browser sends the inventory page, the
// filter is built or refused with a message, never a panic, and a filter
// built from it stays within the page size and the names it was given.
func FuzzCertFilter(f *testing.F) {
	for _, s := range []string{"", "status=valid&within=30&sort=expiry", "name=a.example&ca=issuing&current=1",
		"after=01a2_03", "sort=expiry&after=123_0a", "within=-1", "within=99999999999999999999", "status=%00", "ca=nope",
		"sort=name&dir=desc&after=a_b_0a", "sort=issued&after=_0a", "owner=team&tag=pci&requester=acme:p/a&source=acme",
		"source=ACME", "dir=DESC", "sort=ca&dir=asc&after=ca_1_01"} {
		f.Add(s)
	}
	cas := map[string]string{"ca_1": "issuing", "ca_2": "root"}
	now := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		flt, err := certFilter(q, cas, now)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an empty error message")
			}
			return
		}
		if flt.Limit != pageSize || len(flt.SAN) > 253 || (flt.CAID != "" && cas[flt.CAID] == "") ||
			len(flt.Owner) > maxText || len(flt.Tag) > maxText || len(flt.Requester) > maxText {
			t.Fatalf("filter %+v from %q", flt, raw)
		}
		// Only orders and sources the store knows, and a position only
		// with a serial to continue after.
		if _, err := inventory.ParseOrder(flt.Order.Name()); err != nil {
			t.Fatalf("order %q from %q", flt.Order, raw)
		}
		if _, err := inventory.ParseSource(string(flt.Source)); flt.Source != "" && err != nil {
			t.Fatalf("source %q from %q", flt.Source, raw)
		}
		if (flt.AfterKey != "" || !flt.AfterTime.IsZero()) && flt.After == "" {
			t.Fatalf("a position without a serial from %q", raw)
		}
		// A position read back is the position written.
		if flt.After != "" {
			c := &inventory.Certificate{Serial: flt.After, NotAfter: flt.AfterTime, NotBefore: flt.AfterTime}
			switch flt.Order {
			case inventory.OrderName:
				c.SANs = []string{flt.AfterKey}
			case inventory.OrderCA:
				c.CAID = flt.AfterKey
			case inventory.OrderProfile:
				c.Profile = flt.AfterKey
			case inventory.OrderStatus:
				c.Status = inventory.Status(flt.AfterKey)
			case inventory.OrderSource:
				c.Source = inventory.Source(flt.AfterKey)
			}
			back := inventory.Filter{Order: flt.Order}
			if err := back.SetPosition(inventory.Position(flt.Order, c)); err != nil || back.After != flt.After ||
				back.AfterKey != flt.AfterKey || !back.AfterTime.Equal(flt.AfterTime) {
				t.Fatalf("position %+v does not read back (%v, %+v) from %q", flt, err, back, raw)
			}
		}
	})
}

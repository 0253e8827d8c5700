package console

import (
	"net/url"
	"testing"
	"time"
)

// FuzzCertFilter: whatever query a browser sends the inventory page, the
// filter is built or refused with a message, never a panic, and a filter
// built from it stays within the page size and the names it was given.
func FuzzCertFilter(f *testing.F) {
	for _, s := range []string{"", "status=valid&within=30&sort=expiry", "name=a.example&ca=issuing&current=1",
		"after=01a2_03", "sort=expiry&after=123_0a", "within=-1", "within=99999999999999999999", "status=%00", "ca=nope"} {
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
		if flt.Limit != pageSize || len(flt.SAN) > 253 || (flt.CAID != "" && cas[flt.CAID] == "") {
			t.Fatalf("filter %+v from %q", flt, raw)
		}
	})
}

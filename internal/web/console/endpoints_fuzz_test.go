package console

import (
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/certwright/certwright/internal/discovery"
)

// FuzzEndpointFilter: whatever query a browser sends the endpoints page,
// its filter is built or refused with a message, never a panic; a filter
// built names only encryptions and statuses the store knows, and the
// page's own link to it (its Next link) reads back as the same filter.
func FuzzEndpointFilter(f *testing.F) {
	for _, s := range []string{"", "encryption=none", "status=unmanaged&gone=1", "encryption=optional&status=stale&after=10.0.0.9:443",
		"encryption=NONE", "status=bogus", "gone=true", "after=%00", "after=[::1]:443&gone=1", "encryption=none&encryption=starttls"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		var ev endpointsView
		eq, err := endpointFilter(q, &ev)
		if err != nil {
			if strings.TrimSpace(err.Error()) == "" {
				t.Fatal("an empty error message")
			}
			return
		}
		if eq.Limit != endpointRows+1 || (eq.Encryption != "" && !slices.Contains(discovery.Encryptions(), eq.Encryption)) ||
			(eq.Status != "" && !slices.ContainsFunc(servedStatuses, func(s servedStatus) bool { return s.status == eq.Status })) {
			t.Fatalf("query %+v from %q", eq, raw)
		}
		link := endpointsLink(&ev, eq.After)
		u, err := url.Parse(link)
		if err != nil || u.Path != "/endpoints" {
			t.Fatalf("link %q from %q: %v", link, raw, err)
		}
		var back endpointsView
		again, err := endpointFilter(u.Query(), &back)
		if err != nil || again != eq {
			t.Fatalf("link %q reads back as %+v (%v), want %+v", link, again, err, eq)
		}
	})
}

package pki

import (
	"strings"
	"testing"
)

func TestParseNames(t *testing.T) {
	t.Parallel()
	got, err := ParseNames([]string{"App.Example.Internal", "dns:app.example.internal", "10.0.0.5", "ip:10.0.0.5", "::1",
		"alice@example.internal", "email:alice@example.internal", "spiffe://example.internal/app", "uri:urn:x:y"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got.DNS, ",") != "app.example.internal" || len(got.IPs) != 2 || len(got.Emails) != 1 || len(got.URIs) != 2 {
		t.Errorf("names %+v", got)
	}
	for _, bad := range []string{"", "ip:example", "uri:no-scheme", "email:not an address", "dns:a b", "a/b"} {
		if _, err := ParseNames([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

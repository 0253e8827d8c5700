package validate

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestHostsLookup(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "hosts")
	content := "# comment\n127.0.0.1 localhost app.test # trailing\n::1 localhost ip6-localhost\n10.0.0.9 other.test\nbad line\n"
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	got := hostsLookup(path, "LOCALHOST.")
	want := []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")}
	if !slices.Equal(got, want) {
		t.Fatalf("localhost = %v, want %v", got, want)
	}
	if got := hostsLookup(path, "app.test"); !slices.Equal(got, want[:1]) {
		t.Fatalf("app.test = %v", got)
	}
	if got := hostsLookup(path, "missing.test"); len(got) != 0 {
		t.Fatalf("missing.test = %v", got)
	}
	if got := hostsLookup(filepath.Join(t.TempDir(), "none"), "localhost"); len(got) != 0 {
		t.Fatalf("missing file = %v", got)
	}
}

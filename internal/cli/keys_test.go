package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestKeysEscrowCommands runs the escrow commands as a user types them on
// an initialised (stopped) instance: keys backup writes the set and prints
// the drill to run, the drill passes with 3 shares, and fewer shares or a
// damaged share are refused with exit 1, the file named and a hint.
func TestKeysEscrowCommands(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	if code, out, errOut := run(t, nil, "init", "--data-dir", dir, "--https-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"); code != 0 {
		t.Fatalf("init: exit %d\n%s%s", code, out, errOut)
	}
	esc := filepath.Join(t.TempDir(), "escrow")
	code, out, errOut := run(t, nil, "keys", "backup", "--data-dir", dir, "--shares", "5", "--threshold", "3", "--out", esc, "--json")
	if code != 0 {
		t.Fatalf("keys backup: exit %d\n%s%s", code, out, errOut)
	}
	var res keysBackupJSON
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Shares) != 5 || res.Header.Threshold != 3 || res.Bundle != filepath.Join(esc, "keys.escrow") {
		t.Fatalf("keys backup --json: %s", out)
	}

	// The text output names the drill to run, and it passes.
	esc2 := filepath.Join(t.TempDir(), "escrow")
	code, out, errOut = run(t, nil, "keys", "backup", "--data-dir", dir, "--shares", "3", "--threshold", "2", "--out", esc2)
	if code != 0 || !strings.Contains(out, "2 of these 3 recover it") {
		t.Fatalf("keys backup: exit %d\n%s%s", code, out, errOut)
	}
	i := strings.Index(out, "certwright keys backup verify ")
	if i < 0 {
		t.Fatalf("keys backup prints no drill:\n%s", out)
	}
	drill := strings.Fields(strings.SplitN(out[i:], "\n", 2)[0])[1:]
	if code, out, errOut := run(t, nil, drill...); code != 0 || !strings.Contains(out, "Drill passed") {
		t.Fatalf("%s: exit %d\n%s%s", strings.Join(drill, " "), code, out, errOut)
	}

	share := func(i int) string { return res.Shares[i-1] }
	damaged := filepath.Join(t.TempDir(), "share-from-custodian-b.txt")
	b, err := os.ReadFile(share(2))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	lines[5] = strings.ToLower(lines[5])
	if err := os.WriteFile(damaged, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		shares []string
		want   []string
	}{
		{"three shares", []string{share(1), share(3), share(4)}, nil},
		{"two shares", []string{share(1), share(3)}, []string{"not enough shares: 2 of the 3", "hint: pass --share once for each share file"}},
		{"damaged share", []string{share(1), damaged, share(4)}, []string{"share-from-custodian-b.txt", "damaged", "hint: that share file is damaged"}},
		{"shares of two sets", []string{share(1), share(3), filepath.Join(esc2, "share-1-of-3.txt")}, []string{"another escrow set", "hint: use the shares made together with this bundle"}},
	} {
		args := []string{"keys", "backup", "verify", "--data-dir", dir, "--bundle", res.Bundle}
		for _, s := range tc.shares {
			args = append(args, "--share", s)
		}
		code, out, errOut := run(t, nil, args...)
		if tc.want == nil {
			if code != 0 || !strings.Contains(out, "Drill passed") {
				t.Errorf("%s: exit %d\n%s%s", tc.name, code, out, errOut)
			}
			continue
		}
		if code != 1 {
			t.Errorf("%s: exit %d, want 1\n%s%s", tc.name, code, out, errOut)
		}
		for _, w := range tc.want {
			if !strings.Contains(errOut, w) {
				t.Errorf("%s: stderr lacks %q:\n%s", tc.name, w, errOut)
			}
		}
	}

	// The drill's help, reached through keys backup.
	code, out, _ = run(t, nil, "keys", "backup", "verify", "--help")
	if code != 0 || !strings.Contains(out, "Usage: certwright keys backup verify --bundle FILE") || !strings.Contains(out, "-share FILE") {
		t.Errorf("keys backup verify --help: exit %d\n%s", code, out)
	}
	for _, args := range [][]string{
		{"keys", "backup", "--data-dir", dir, "--out", t.TempDir() + "/x"},
		{"keys", "backup", "--data-dir", dir, "--shares", "3", "--threshold", "4", "--out", t.TempDir() + "/x"},
		{"keys", "recover", "--bundle", res.Bundle, "--share", share(1), "--data-dir", t.TempDir() + "/x"},
	} {
		if code, _, errOut := run(t, nil, args...); code != 2 {
			t.Errorf("%s: exit %d, want 2 (usage)\n%s", strings.Join(args, " "), code, errOut)
		}
	}
}

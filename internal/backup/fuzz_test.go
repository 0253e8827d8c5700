package backup

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzVerify feeds arbitrary bytes to the bundle reader: it must never
// panic, and what it accepts must extract, into the directory only.
func FuzzVerify(f *testing.F) {
	dir := f.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(filepath.Join(src, "certs"), 0o700); err != nil {
		f.Fatal(err)
	}
	for name, body := range map[string]string{"db": strings.Repeat("x", 300), "certs/ca-root.pem": "pem"} {
		if err := os.WriteFile(filepath.Join(src, filepath.FromSlash(name)), []byte(body), 0o600); err != nil {
			f.Fatal(err)
		}
	}
	good := filepath.Join(dir, "good.tar.gz")
	if err := Write(context.Background(), good, tManifest(), src, []string{"db", "certs/ca-root.pem"}, tKEK()); err != nil {
		f.Fatal(err)
	}
	b, err := os.ReadFile(good)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:len(b)/2])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx := context.Background()
		tmp := t.TempDir()
		p := filepath.Join(tmp, "in.tar.gz")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		m, err := Verify(ctx, p, tKEK())
		if err != nil {
			return
		}
		out := filepath.Join(tmp, "out")
		if err := os.Mkdir(out, 0o700); err != nil {
			t.Fatal(err)
		}
		if _, err := Extract(ctx, p, out, func(string) bool { return true }, tKEK()); err != nil {
			t.Fatalf("Verify accepted what Extract refuses: %v", err)
		}
		for _, e := range m.Entries {
			fi, err := os.Stat(filepath.Join(out, filepath.FromSlash(e.Name)))
			if err != nil || fi.Size() != e.Size {
				t.Fatalf("entry %s: %v, %v", e.Name, fi, err)
			}
		}
		ents, _ := os.ReadDir(tmp)
		if len(ents) != 2 {
			t.Fatalf("Extract wrote outside its directory: %d entries beside it", len(ents))
		}
	})
}

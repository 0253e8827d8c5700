package backup

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tFiles writes files into a new directory and returns it with their names.
func tFiles(t *testing.T, files map[string]string) (string, []string) {
	t.Helper()
	dir := t.TempDir()
	var names []string
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o600)
		if strings.HasSuffix(name, ".pem") {
			mode = 0o644
		}
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	return dir, names
}

func tManifest() *Manifest {
	return &Manifest{CertwrightVersion: "test", Created: time.Now().UTC(), Dialect: "sqlite", SchemaVersion: 3, DatabaseIncluded: true}
}

// tBundle writes a bundle of files and returns its path.
func tBundle(t *testing.T, files map[string]string) string {
	t.Helper()
	dir, names := tFiles(t, files)
	out := filepath.Join(t.TempDir(), "b.tar.gz")
	if err := Write(context.Background(), out, tManifest(), dir, names, tKEK()); err != nil {
		t.Fatalf("Write: %v", err)
	}
	return out
}

// tRaw writes a gzip'd tar of the entries as given (name, body pairs),
// with no checking: a bundle made by hand.
func tRaw(t *testing.T, entries ...[2]string) string {
	t.Helper()
	return tRawTrailer(t, 0, entries...)
}

// tRawTrailer is tRaw with trailer zero bytes after the tar end.
func tRawTrailer(t *testing.T, trailer int, entries ...[2]string) string {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		if err := tw.WriteHeader(&tar.Header{Name: e[0], Mode: 0o600, Size: int64(len(e[1])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e[1]))
	}
	tw.Close()
	gz.Write(make([]byte, trailer))
	gz.Close()
	p := filepath.Join(t.TempDir(), "raw.tar.gz")
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// tKEK is the key-encryption key the test bundles are authenticated with.
func tKEK() []byte { return bytes.Repeat([]byte{7}, 32) }

// tManifestJSON is m, authenticated with tKEK, as JSON.
func tManifestJSON(t *testing.T, m *Manifest) string {
	t.Helper()
	return tSealedJSON(t, m, tKEK())
}

func TestWriteVerifyExtract(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	files := map[string]string{"db": strings.Repeat("rows ", 10000), "root.pem": "cert", "certs/ca-x.pem": "ca", "empty": ""}
	out := tBundle(t, files)
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("bundle %v, %v; want mode 0600", fi, err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(out)); len(ents) != 1 {
		t.Errorf("%d files beside the bundle, want none (temporary file left?)", len(ents)-1)
	}
	m, err := Verify(ctx, out, tKEK())
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if m.Format != FormatVersion || len(m.Entries) != len(files) || m.SchemaVersion != 3 {
		t.Errorf("manifest %+v", m)
	}
	dst := t.TempDir()
	if _, err := Extract(ctx, out, dst, func(n string) bool { return !strings.HasPrefix(n, "certs/") }, tKEK()); err != nil {
		t.Fatalf("Extract: %v", err)
	}
	for name, body := range files {
		b, err := os.ReadFile(filepath.Join(dst, name))
		if strings.HasPrefix(name, "certs/") {
			if err == nil {
				t.Errorf("%s extracted though keep refused it", name)
			}
			continue
		}
		if err != nil || string(b) != body {
			t.Errorf("%s: %q, %v", name, b, err)
		}
		fi, _ := os.Stat(filepath.Join(dst, name))
		want := os.FileMode(0o600)
		if name == "root.pem" {
			want = 0o644
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s mode %v, want %v", name, fi.Mode().Perm(), want)
		}
	}
	if err := Write(ctx, out, tManifest(), dst, nil, tKEK()); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("Write over an existing bundle: %v", err)
	}
}

func TestVerifyRefusesBadBundles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	good := tBundle(t, map[string]string{"db": strings.Repeat("0123456789abcdef", 4096), "root.pem": "cert"})
	whole, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	write := func(b []byte) string {
		p := filepath.Join(t.TempDir(), "bad.tar.gz")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	m := tManifest()
	m.Format = FormatVersion
	m.Entries = []Entry{{Name: "db", Size: 3, SHA256: strings.Repeat("0", 64), Mode: "0600"}}
	wrongSum := tRaw(t, [2]string{ManifestName, tManifestJSON(t, m)}, [2]string{"db", "abc"})
	right := *m
	right.Entries = []Entry{{Name: "db", Size: 3, SHA256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", Mode: "0600"}} // SHA-256("abc")
	if _, err := Verify(ctx, tRaw(t, [2]string{ManifestName, tManifestJSON(t, &right)}, [2]string{"db", "abc"}), tKEK()); err != nil {
		t.Fatalf("a hand-made bundle with the right checksum: %v", err)
	}
	extra := tRaw(t, [2]string{ManifestName, tManifestJSON(t, &right)}, [2]string{"db", "abc"}, [2]string{"kek", "secret"})
	if _, err := Verify(ctx, tRawTrailer(t, 9216, [2]string{ManifestName, tManifestJSON(t, &right)}, [2]string{"db", "abc"}), tKEK()); err != nil {
		t.Fatalf("a bundle padded to a 10 KiB tar record: %v", err)
	}
	bomb := tRawTrailer(t, 64<<20, [2]string{ManifestName, tManifestJSON(t, &right)}, [2]string{"db", "abc"})
	newer := *m
	newer.Format = FormatVersion + 1
	traversal := *m
	traversal.Entries = []Entry{{Name: "../kek", Size: 3, SHA256: strings.Repeat("0", 64)}}

	for _, tc := range []struct {
		name string
		path string
		want error
	}{
		{"truncated in half", write(whole[:len(whole)/2]), ErrTruncated},
		{"truncated by one byte", write(whole[:len(whole)-1]), ErrTruncated},
		{"wrong checksum", wrongSum, ErrChecksum},
		{"gzip damage", write(append(append([]byte{}, whole[:len(whole)-8]...), 0, 0, 0, 0, 0, 0, 0, 0)), ErrChecksum},
		{"entry not in the manifest", extra, ErrCorrupt},
		{"megabytes after the tar end", bomb, ErrCorrupt},
		{"newer format", tRaw(t, [2]string{ManifestName, tManifestJSON(t, &newer)}), ErrNewerFormat},
		{"path traversal", tRaw(t, [2]string{ManifestName, tManifestJSON(t, &traversal)}), ErrCorrupt},
		{"manifest not first", tRaw(t, [2]string{"db", "abc"}, [2]string{ManifestName, tManifestJSON(t, m)}), ErrCorrupt},
		{"missing entry", tRaw(t, [2]string{ManifestName, tManifestJSON(t, m)}), ErrTruncated},
		{"manifest without a MAC", tRaw(t, [2]string{ManifestName, tUnsealedJSON(t, &right)}, [2]string{"db", "abc"}), ErrUnauthenticated},
		{"manifest sealed with another KEK", tRaw(t, [2]string{ManifestName, tSealedJSON(t, &right, bytes.Repeat([]byte{8}, 32))}, [2]string{"db", "abc"}), ErrUnauthenticated},
		{"not gzip", write([]byte("hello, world")), ErrCorrupt},
		{"empty file", write(nil), ErrTruncated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := Verify(ctx, tc.path, tKEK()); !errors.Is(err, tc.want) {
				t.Errorf("Verify = %v, want %v", err, tc.want)
			}
			dst := t.TempDir()
			if _, err := Extract(ctx, tc.path, dst, func(string) bool { return true }, tKEK()); !errors.Is(err, tc.want) {
				t.Errorf("Extract = %v, want %v", err, tc.want)
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(dst), "kek")); err == nil {
				t.Error("an entry was written outside the directory")
			}
		})
	}
}

func TestCheckSchema(t *testing.T) {
	t.Parallel()
	m := tManifest()
	if err := m.CheckSchema(3); err != nil {
		t.Errorf("same version: %v", err)
	}
	if err := m.CheckSchema(2); !errors.Is(err, ErrNewerSchema) || !strings.Contains(err.Error(), "schema version 3") {
		t.Errorf("newer schema: %v", err)
	}
}

// tUnsealedJSON is m as JSON with no MAC: a manifest made without the KEK.
func tUnsealedJSON(t *testing.T, m *Manifest) string {
	t.Helper()
	c := *m
	c.MAC = ""
	b, err := json.Marshal(&c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// tSealedJSON is m authenticated with kek, as JSON.
func tSealedJSON(t *testing.T, m *Manifest, kek []byte) string {
	t.Helper()
	c := *m
	mac, err := macOf(&c, kek)
	if err != nil {
		t.Fatal(err)
	}
	c.MAC = mac
	b, err := json.Marshal(&c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

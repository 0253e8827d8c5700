package pkcs11

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// copyModule copies the SoftHSM2 module to dir/name with mode perm.
func copyModule(t *testing.T, st *softToken, dir, name string, perm os.FileMode) string {
	t.Helper()
	src, err := os.Open(st.Module)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	path := filepath.Join(dir, name)
	dst, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
	return path
}

// chownNobody gives path to uid 65534 (nobody), which needs root: the
// test is skipped otherwise.
func chownNobody(t *testing.T, path string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("changing a file's owner needs root")
	}
	if err := os.Chown(path, 65534, 65534); err != nil {
		t.Fatal(err)
	}
}

// TestOpenRefusesUnsafeModule checks that Open refuses, before loading
// it, a module that whoever is not root could replace: copies of the real
// SoftHSM2 library (which would load and log in) that are writable by
// others or owned by another user, or that sit in such a directory, and a
// module reached through a symbolic link into one. Each refusal names the
// file or directory at fault and how to fix it.
func TestOpenRefusesUnsafeModule(t *testing.T) {
	st := newSoftToken(t, "unsafe")
	ctx := context.Background()
	// A directory as safe as t.TempDir() gets: the checks name the
	// first problem from the file upwards, so /tmp (writable by all)
	// comes last.
	safeDir := func(t *testing.T) string {
		d := filepath.Join(t.TempDir(), "lib")
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	for _, tt := range []struct {
		name string
		// make returns the module path and the file or directory at fault.
		make func(t *testing.T) (module, fault string)
		want []string
	}{
		{"file writable by others", func(t *testing.T) (string, string) {
			p := copyModule(t, st, safeDir(t), "libsofthsm2.so", 0o646)
			return p, p
		}, []string{"writable by group or others", "chmod go-w"}},
		{"file writable by group", func(t *testing.T) (string, string) {
			p := copyModule(t, st, safeDir(t), "libsofthsm2.so", 0o664)
			return p, p
		}, []string{"writable by group or others", "chmod go-w"}},
		{"file owned by another user", func(t *testing.T) (string, string) {
			p := copyModule(t, st, safeDir(t), "libsofthsm2.so", 0o644)
			chownNobody(t, p)
			return p, p
		}, []string{"owned by uid 65534", "chown root:"}},
		{"directory writable by others", func(t *testing.T) (string, string) {
			d := safeDir(t)
			p := copyModule(t, st, d, "libsofthsm2.so", 0o644)
			if err := os.Chmod(d, 0o757); err != nil {
				t.Fatal(err)
			}
			return p, d
		}, []string{"writable by group or others", "chmod go-w DIR"}},
		{"directory owned by another user", func(t *testing.T) (string, string) {
			d := safeDir(t)
			p := copyModule(t, st, d, "libsofthsm2.so", 0o644)
			chownNobody(t, d)
			return p, d
		}, []string{"owned by uid 65534", "chown root: DIR"}},
		{"directory under /tmp", func(t *testing.T) (string, string) {
			return copyModule(t, st, safeDir(t), "libsofthsm2.so", 0o644), "/tmp"
		}, []string{"writable by group or others"}},
		{"symbolic link into a directory writable by others", func(t *testing.T) (string, string) {
			d := safeDir(t)
			p := copyModule(t, st, d, "libsofthsm2.so", 0o644)
			if err := os.Chmod(d, 0o777); err != nil {
				t.Fatal(err)
			}
			link := filepath.Join(safeDir(t), "link.so")
			if err := os.Symlink(p, link); err != nil {
				t.Fatal(err)
			}
			return link, d
		}, []string{"writable by group or others"}},
		{"not a regular file", func(t *testing.T) (string, string) {
			p := filepath.Join(safeDir(t), "dir.so")
			if err := os.Mkdir(p, 0o755); err != nil {
				t.Fatal(err)
			}
			return p, p
		}, []string{"not a regular file"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			module, fault := tt.make(t)
			if fault == "/tmp" && os.TempDir() != "/tmp" {
				t.Skip("the temporary directory is not /tmp")
			}
			cfg := st.config(t)
			cfg.Module = module
			p, err := Open(ctx, cfg, testLogger(t))
			if err == nil {
				p.Close()
				t.Fatalf("Open loaded %s", module)
			}
			want := []string{fault}
			for _, w := range tt.want {
				want = append(want, strings.ReplaceAll(w, "DIR", fault))
			}
			wantErr(t, err, ErrUnsafeModule, want...)
		})
	}
}

// TestCheckModule checks that the installed SoftHSM2 library, root-owned
// in root-owned directories, passes, and that the file checked and
// hashed is the one the symbolic link leads to.
func TestCheckModule(t *testing.T) {
	st := newSoftToken(t, "check")
	m, err := CheckModule(st.Module)
	if err != nil {
		t.Fatalf("CheckModule(%s): %v", st.Module, err)
	}
	real, err := filepath.EvalSymlinks(st.Module)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(real)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	if m.Path != st.Module || m.File != real || m.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("CheckModule = %+v, want file %s, SHA-256 %x", m, real, sum)
	}
}

package pkcs11

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Module is a PKCS#11 library that passed CheckModule.
type Module struct {
	// Path is the path configured; File the file it leads to through any
	// symbolic links, which is the one checked, hashed and loaded.
	Path, File string
	// SHA256 is the hex SHA-256 of File.
	SHA256 string
}

// CheckModule checks the PKCS#11 library at path before it is loaded: the
// library runs inside the process that holds the token's PIN and, for the
// server, the instance KEK, so only root may be able to change it. With
// its symbolic links resolved, the file must be a regular file owned by
// root and not writable by group or others, and so must every directory
// above it, up to /: whoever may write one of them may put another
// library in its place. The first problem found, from the file upwards,
// is an error wrapping ErrUnsafeModule that says how to fix it; a module
// that does not exist wraps ErrModule.
//
// The checks are made whichever user the process runs as: a library
// owned by the user serve runs as could be replaced by anyone who can
// write that user's files, the data directory among them.
func CheckModule(path string) (Module, error) {
	m := Module{Path: path}
	if !filepath.IsAbs(path) {
		return m, fmt.Errorf("%w: module %q is not an absolute path", ErrConfig, path)
	}
	file, err := filepath.EvalSymlinks(path)
	if err != nil {
		return m, fmt.Errorf("%w %s: %w", ErrModule, path, err)
	}
	m.File = file
	if err := checkModuleFile(path, file); err != nil {
		return m, err
	}
	for dir := filepath.Dir(file); ; dir = filepath.Dir(dir) {
		if err := checkModuleDir(path, dir); err != nil {
			return m, err
		}
		if parent := filepath.Dir(dir); parent == dir {
			break
		}
	}
	// The hash is of the file checked, opened once its directories are
	// known to be root's: nothing but root can replace it from here on.
	f, err := os.Open(file)
	if err != nil {
		return m, fmt.Errorf("%w %s: %w", ErrModule, path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return m, fmt.Errorf("%w %s: %w", ErrModule, path, err)
	}
	if err := checkOwner(path, file, fi, "module"); err != nil {
		return m, err
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return m, fmt.Errorf("%w %s: read: %w", ErrModule, path, err)
	}
	m.SHA256 = hex.EncodeToString(h.Sum(nil))
	return m, nil
}

// checkModuleFile checks the library file itself, without opening it (a
// FIFO would block the open).
func checkModuleFile(path, file string) error {
	fi, err := os.Lstat(file)
	if err != nil {
		return fmt.Errorf("%w %s: %w", ErrModule, path, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: %s (module %s) is not a regular file (mode %s)", ErrUnsafeModule, file, path, fi.Mode())
	}
	return checkOwner(path, file, fi, "module")
}

// checkModuleDir checks one directory above the library.
func checkModuleDir(path, dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("%w %s: %w", ErrModule, path, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%w: %s, above the module %s, is not a directory (mode %s)", ErrUnsafeModule, dir, path, fi.Mode())
	}
	return checkOwner(path, dir, fi, "directory")
}

// checkOwner refuses a file or directory (what) at name that is not
// root's or that group or others may write.
func checkOwner(path, name string, fi os.FileInfo, what string) error {
	where := name
	if what == "directory" {
		where = "the directory " + name + " above the module " + path
	} else if name != path {
		where = name + " (module " + path + ")"
	}
	fix := "chown root: " + name + "; chmod go-w " + name
	if what == "directory" {
		fix += ", or install the module under a directory only root can write, such as /usr/lib"
	}
	if uid, ok := fileOwner(fi); ok && uid != 0 {
		return fmt.Errorf("%w: %s is owned by uid %d, not root: that user could replace the library with code that runs in this process with the token's PIN (%s)",
			ErrUnsafeModule, where, uid, fix)
	}
	if checkModes && fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%w: %s has mode %#o, writable by group or others: any of them could replace the library with code that runs in this process with the token's PIN (%s)",
			ErrUnsafeModule, where, fi.Mode().Perm(), fix)
	}
	return nil
}

// ModuleInside reports whether the module path names a file inside dir,
// as written or with symbolic links resolved (in both). A module inside
// a directory that holds data others may write to (the server's data
// directory, a ceremony directory) is to be refused whoever owns it.
func ModuleInside(module, dir string) bool {
	if within(dir, module) {
		return true
	}
	d, derr := filepath.EvalSymlinks(dir)
	m, merr := filepath.EvalSymlinks(module)
	return derr == nil && merr == nil && within(d, m)
}

// within reports whether path names something inside dir, lexically.
func within(dir, path string) bool {
	d, derr := filepath.Abs(dir)
	p, perr := filepath.Abs(path)
	if derr != nil || perr != nil {
		return false
	}
	rel, err := filepath.Rel(d, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

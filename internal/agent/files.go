package agent

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// fileOps is what the atomic writer does to the file system; tests wrap
// it to inject failures (a full disk, a refused rename) that permissions
// cannot produce when running as root.
type fileOps interface {
	// CreateExcl creates a new file that must not exist yet.
	CreateExcl(path string, perm os.FileMode) (tempFile, error)
	Lstat(path string) (os.FileInfo, error)
	Link(oldpath, newpath string) error
	Rename(oldpath, newpath string) error
	Remove(path string) error
	// SyncDir makes the directory's entries (renames) durable.
	SyncDir(dir string) error
	Glob(pattern string) ([]string, error)
}

// tempFile is an open file being written.
type tempFile interface {
	Write(p []byte) (int, error)
	Chmod(mode os.FileMode) error
	Chown(uid, gid int) error
	Sync() error
	Close() error
}

// osFiles is fileOps on the real file system.
type osFiles struct{}

func (osFiles) CreateExcl(path string, perm os.FileMode) (tempFile, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
}
func (osFiles) Lstat(path string) (os.FileInfo, error) { return os.Lstat(path) }
func (osFiles) Link(oldpath, newpath string) error     { return os.Link(oldpath, newpath) }
func (osFiles) Rename(oldpath, newpath string) error   { return os.Rename(oldpath, newpath) }
func (osFiles) Remove(path string) error               { return os.Remove(path) }
func (osFiles) Glob(pattern string) ([]string, error)  { return filepath.Glob(pattern) }

func (osFiles) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// fileSpec is one file to put in place.
type fileSpec struct {
	path     string
	data     []byte
	mode     os.FileMode
	uid, gid int // -1: leave as created
}

// scratchMarker names the writer's temporary and backup files, so that
// leftovers of an interrupted write can be recognised and removed.
const scratchMarker = ".certwright-"

func scratchName(path, kind string) string {
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+scratchMarker+strings.ToLower(rand.Text())+"."+kind)
}

// writeFiles puts every file in place atomically, in order: each is
// written to a temporary file in its directory, created exclusively with
// owner-only permissions before any byte is written, synced, chowned, given
// its mode, and then renamed over the target. Until every rename has
// succeeded the previous files are kept as hard-linked backups; if any
// step fails, the renames done are undone, so readers see either all the
// old files or all the new ones, and no temporary file is left behind.
func writeFiles(fsys fileOps, specs []fileSpec) (err error) {
	type staged struct {
		fileSpec
		tmp, backup string
		renamed     bool
	}
	files := make([]*staged, 0, len(specs))
	defer func() {
		if err == nil {
			return
		}
		// Undo in reverse: a renamed file gets its backup back (or is
		// removed if there was no old file); every scratch file goes.
		var undo []error
		for i := len(files) - 1; i >= 0; i-- {
			f := files[i]
			switch {
			case f.renamed && f.backup != "":
				if rerr := fsys.Rename(f.backup, f.path); rerr != nil {
					undo = append(undo, fmt.Errorf("restore %s from %s: %w", f.path, f.backup, rerr))
				}
			case f.renamed:
				if rerr := fsys.Remove(f.path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
					undo = append(undo, fmt.Errorf("remove new %s: %w", f.path, rerr))
				}
			default:
				if f.backup != "" {
					if rerr := fsys.Remove(f.backup); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
						undo = append(undo, fmt.Errorf("remove backup %s: %w", f.backup, rerr))
					}
				}
				if f.tmp != "" {
					if rerr := fsys.Remove(f.tmp); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
						undo = append(undo, fmt.Errorf("remove temporary %s: %w", f.tmp, rerr))
					}
				}
			}
		}
		if len(undo) > 0 {
			err = fmt.Errorf("%w; and rolling back failed: %w", err, errors.Join(undo...))
		}
	}()

	for _, s := range specs {
		removeScratch(fsys, s.path)
		f := &staged{fileSpec: s}
		files = append(files, f)
		tmp, werr := writeTemp(fsys, s)
		if werr != nil {
			return fmt.Errorf("agent: write %s: %w", s.path, werr)
		}
		f.tmp = tmp
	}
	for _, f := range files {
		fi, lerr := fsys.Lstat(f.path)
		switch {
		case errors.Is(lerr, fs.ErrNotExist):
			continue
		case lerr != nil:
			return fmt.Errorf("agent: %s: %w", f.path, lerr)
		case fi.IsDir():
			// Nothing to back up; the rename below fails and says why.
			continue
		}
		bak := scratchName(f.path, "bak")
		if lerr := fsys.Link(f.path, bak); lerr != nil {
			return fmt.Errorf("agent: keep a backup of %s: %w", f.path, lerr)
		}
		f.backup = bak
	}
	for _, f := range files {
		if rerr := fsys.Rename(f.tmp, f.path); rerr != nil {
			return fmt.Errorf("agent: put %s in place: %w", f.path, rerr)
		}
		f.renamed = true
	}
	// Every rename succeeded: make them durable, then drop the backups.
	dirs := map[string]bool{}
	var errs []error
	for _, f := range files {
		dir := filepath.Dir(f.path)
		if !dirs[dir] {
			dirs[dir] = true
			if serr := fsys.SyncDir(dir); serr != nil {
				errs = append(errs, fmt.Errorf("agent: sync directory %s: %w", dir, serr))
			}
		}
	}
	for _, f := range files {
		if f.backup != "" {
			if rerr := fsys.Remove(f.backup); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("agent: remove backup %s: %w", f.backup, rerr))
			}
		}
	}
	// The new files are in place: a failure here is reported but not undone.
	return errors.Join(errs...)
}

// writeTemp writes s to a new scratch file beside its target and returns
// its name. The file is created with no permission for group and others
// and only widened to s.mode after it has its owner.
func writeTemp(fsys fileOps, s fileSpec) (name string, err error) {
	name = scratchName(s.path, "tmp")
	f, err := fsys.CreateExcl(name, 0o600)
	if err != nil {
		return "", err
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = cerr
		}
		if err != nil {
			_ = fsys.Remove(name)
			name = ""
		}
	}()
	// An umask cannot have widened 0600, but a pre-set ACL or an odd
	// file system might: set the mode explicitly before writing.
	if err := f.Chmod(s.mode & 0o700); err != nil {
		return name, err
	}
	if _, err := f.Write(s.data); err != nil {
		return name, err
	}
	if err := f.Sync(); err != nil {
		return name, err
	}
	if s.uid >= 0 || s.gid >= 0 {
		if err := f.Chown(s.uid, s.gid); err != nil {
			return name, fmt.Errorf("chown to %d:%d: %w", s.uid, s.gid, err)
		}
	}
	if s.mode != s.mode&0o700 {
		if err := f.Chmod(s.mode); err != nil {
			return name, err
		}
	}
	return name, nil
}

// removeScratch removes what an interrupted earlier write left beside path.
func removeScratch(fsys fileOps, path string) {
	pattern := filepath.Join(filepath.Dir(path), "."+escapeGlob(filepath.Base(path))+scratchMarker+"*")
	matches, err := fsys.Glob(pattern)
	if err != nil {
		return
	}
	for _, m := range matches {
		if strings.HasSuffix(m, ".tmp") || strings.HasSuffix(m, ".bak") {
			_ = fsys.Remove(m)
		}
	}
}

func escapeGlob(s string) string {
	return strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`).Replace(s)
}

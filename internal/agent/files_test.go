package agent

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// faultFS is the real file system with injectable failures and an
// observer of every write.
type faultFS struct {
	osFiles
	mu sync.Mutex
	// failWrite fails the write of the temporary file for this target.
	failWrite func(target string) error
	// failRename fails the rename onto this target.
	failRename func(target string) error
	// failLink fails the backup link of this target.
	failLink func(target string) error
	// onWrite sees the temporary file's path just before each write.
	onWrite func(tmp string)
	renames []string
}

// targetOf maps a scratch name back to the file it stands for.
func targetOf(scratch string) string {
	dir, base := filepath.Split(scratch)
	base = strings.TrimPrefix(base, ".")
	if i := strings.Index(base, scratchMarker); i >= 0 {
		base = base[:i]
	}
	return filepath.Join(dir, base)
}

type faultFile struct {
	tempFile
	fs   *faultFS
	path string
}

func (f *faultFile) Write(p []byte) (int, error) {
	if f.fs.onWrite != nil {
		f.fs.onWrite(f.path)
	}
	if f.fs.failWrite != nil {
		if err := f.fs.failWrite(targetOf(f.path)); err != nil {
			return 0, err
		}
	}
	return f.tempFile.Write(p)
}

func (f *faultFS) CreateExcl(path string, perm os.FileMode) (tempFile, error) {
	tf, err := f.osFiles.CreateExcl(path, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{tempFile: tf, fs: f, path: path}, nil
}

func (f *faultFS) Rename(oldpath, newpath string) error {
	// Rollback renames a backup over its target: never fail those.
	if f.failRename != nil && strings.HasSuffix(oldpath, ".tmp") {
		if err := f.failRename(newpath); err != nil {
			return err
		}
	}
	f.mu.Lock()
	f.renames = append(f.renames, filepath.Base(newpath))
	f.mu.Unlock()
	return f.osFiles.Rename(oldpath, newpath)
}

func (f *faultFS) Link(oldpath, newpath string) error {
	if f.failLink != nil {
		if err := f.failLink(oldpath); err != nil {
			return err
		}
	}
	return f.osFiles.Link(oldpath, newpath)
}

// fileSet is four files of one entry in a directory.
type fileSet struct {
	dir                    string
	key, cert, chain, bund string
}

func newFileSet(t *testing.T) fileSet {
	dir := t.TempDir()
	return fileSet{dir: dir, key: filepath.Join(dir, "key.pem"), cert: filepath.Join(dir, "cert.pem"),
		chain: filepath.Join(dir, "chain.pem"), bund: filepath.Join(dir, "bundle.pem")}
}

func (s fileSet) specs(tag string) []fileSpec {
	return []fileSpec{
		{path: s.key, data: []byte("key " + tag), mode: 0o600, uid: -1, gid: -1},
		{path: s.cert, data: []byte("cert " + tag), mode: 0o644, uid: -1, gid: -1},
		{path: s.chain, data: []byte("chain " + tag), mode: 0o644, uid: -1, gid: -1},
		{path: s.bund, data: []byte("bundle " + tag), mode: 0o600, uid: -1, gid: -1},
	}
}

// assertFiles checks every file holds the spec's data and mode.
func assertFiles(t *testing.T, specs []fileSpec) {
	t.Helper()
	for _, s := range specs {
		b, err := os.ReadFile(s.path)
		if err != nil {
			t.Errorf("%s: %v", s.path, err)
			continue
		}
		if !bytes.Equal(b, s.data) {
			t.Errorf("%s holds %q, want %q", filepath.Base(s.path), b, s.data)
		}
		fi, err := os.Stat(s.path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != s.mode {
			t.Errorf("%s has mode %04o, want %04o", filepath.Base(s.path), fi.Mode().Perm(), s.mode)
		}
	}
}

// assertNoScratch fails when a temporary or backup file is left in dir.
func assertNoScratch(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.Contains(e.Name(), scratchMarker) {
			t.Errorf("scratch file %s left behind", e.Name())
		}
	}
}

func TestWriteFilesReplacesInOrder(t *testing.T) {
	t.Parallel()
	s := newFileSet(t)
	if err := writeFiles(osFiles{}, s.specs("old")); err != nil {
		t.Fatal(err)
	}
	fsys := &faultFS{}
	newSpecs := s.specs("new")
	newSpecs[0].mode = 0o640
	if err := writeFiles(fsys, newSpecs); err != nil {
		t.Fatal(err)
	}
	assertFiles(t, newSpecs)
	assertNoScratch(t, s.dir)
	if got := strings.Join(fsys.renames, " "); got != "key.pem cert.pem chain.pem bundle.pem" {
		t.Errorf("renamed in order %s, want key, cert, chain, bundle", got)
	}
}

// TestWriteFilesKeyModeFromCreation watches every temporary file as the
// first byte is written: none may be open to group or others yet, so a
// key file is never readable by others, even briefly.
func TestWriteFilesKeyModeFromCreation(t *testing.T) {
	// Not parallel: it changes the process umask.
	s := newFileSet(t)
	var seen []string
	fsys := &faultFS{onWrite: func(tmp string) {
		fi, err := os.Stat(tmp)
		if err != nil {
			t.Errorf("stat %s: %v", tmp, err)
			return
		}
		seen = append(seen, filepath.Base(targetOf(tmp)))
		if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s had mode %04o when its content was written, want 0600", filepath.Base(tmp), perm)
		}
	}}
	specs := s.specs("new")
	specs[0].mode = 0o640 // widened only after the write and chown
	// Make the process umask irrelevant either way: 0 would widen a
	// plain create, 077 would narrow it.
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	if err := writeFiles(fsys, specs); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 4 {
		t.Errorf("observed %d writes, want 4", len(seen))
	}
	assertFiles(t, specs)
}

// TestWriteFilesFailureKeepsOldFiles injects a failure at each step: the
// previous files must stay intact, with their modes, and nothing may be
// left behind.
func TestWriteFilesFailureKeepsOldFiles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		fault   func(s fileSet) *faultFS
		wantErr error
	}{
		{"disk full writing the cert", func(s fileSet) *faultFS {
			return &faultFS{failWrite: func(p string) error {
				if p == s.cert {
					return syscall.ENOSPC
				}
				return nil
			}}
		}, syscall.ENOSPC},
		{"disk full writing the key", func(s fileSet) *faultFS {
			return &faultFS{failWrite: func(p string) error {
				if p == s.key {
					return syscall.ENOSPC
				}
				return nil
			}}
		}, syscall.ENOSPC},
		{"rename of the chain refused", func(s fileSet) *faultFS {
			return &faultFS{failRename: func(p string) error {
				if p == s.chain {
					return syscall.EACCES
				}
				return nil
			}}
		}, syscall.EACCES},
		{"rename of the last file refused", func(s fileSet) *faultFS {
			return &faultFS{failRename: func(p string) error {
				if p == s.bund {
					return syscall.EROFS
				}
				return nil
			}}
		}, syscall.EROFS},
		{"backup link refused", func(s fileSet) *faultFS {
			return &faultFS{failLink: func(p string) error {
				if p == s.chain {
					return syscall.EPERM
				}
				return nil
			}}
		}, syscall.EPERM},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newFileSet(t)
			old := s.specs("old")
			old[0].mode = 0o640
			if err := writeFiles(osFiles{}, old); err != nil {
				t.Fatal(err)
			}
			err := writeFiles(tt.fault(s), s.specs("new"))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("writeFiles: %v, want %v", err, tt.wantErr)
			}
			assertFiles(t, old)
			assertNoScratch(t, s.dir)
		})
	}
}

// TestWriteFilesFailureWithoutOldFiles: a failed first deployment leaves
// no half set behind (in particular no lone key).
func TestWriteFilesFailureWithoutOldFiles(t *testing.T) {
	t.Parallel()
	s := newFileSet(t)
	fsys := &faultFS{failRename: func(p string) error {
		if p == s.chain {
			return syscall.ENOSPC
		}
		return nil
	}}
	if err := writeFiles(fsys, s.specs("new")); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("writeFiles: %v, want ENOSPC", err)
	}
	ents, _ := os.ReadDir(s.dir)
	if len(ents) != 0 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("left %v after a failed first write, want nothing", names)
	}
}

// TestWriteFilesTargetIsDirectory makes a real rename fail: the chain's
// path is a directory. The key and cert, already renamed, are rolled back.
func TestWriteFilesTargetIsDirectory(t *testing.T) {
	t.Parallel()
	s := newFileSet(t)
	old := s.specs("old")
	if err := writeFiles(osFiles{}, []fileSpec{old[0], old[1], old[3]}); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(s.chain, "inside"), 0o755); err != nil {
		t.Fatal(err)
	}
	fsys := &faultFS{}
	err := writeFiles(fsys, s.specs("new"))
	if err == nil {
		t.Fatal("writeFiles succeeded with a directory in place of the chain")
	}
	if !strings.Contains(err.Error(), s.chain) {
		t.Errorf("error %q does not name %s", err, s.chain)
	}
	if len(fsys.renames) < 2 {
		t.Errorf("renames %v: the key and cert should have been renamed before the chain failed", fsys.renames)
	}
	assertFiles(t, []fileSpec{old[0], old[1], old[3]})
	if fi, err := os.Stat(s.chain); err != nil || !fi.IsDir() {
		t.Errorf("the chain directory was disturbed: %v", err)
	}
	assertNoScratch(t, s.dir)
}

// TestWriteFilesRemovesLeftovers: scratch files of an interrupted write
// are removed by the next one.
func TestWriteFilesRemovesLeftovers(t *testing.T) {
	t.Parallel()
	s := newFileSet(t)
	stale := scratchName(s.key, "tmp")
	if err := os.WriteFile(stale, []byte("half a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := writeFiles(osFiles{}, s.specs("new")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale %s still there (%v)", stale, err)
	}
	assertNoScratch(t, s.dir)
}

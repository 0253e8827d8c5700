// Package backup owns the backup bundle: one gzip-compressed tar file whose
// first entry, manifest.json, lists every other entry with its size and
// SHA-256. Write makes a bundle atomically (mode 0600, never over an
// existing file); Verify reads one through, checking everything, without
// writing anything; Extract unpacks one into a directory, checking again.
//
// What goes into a bundle, and how a data directory is rebuilt from one,
// is the app package's business: this package knows files, not Certwright.
package backup

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/atomicfile"
	"github.com/certwright/certwright/internal/keys"
)

// FormatVersion is the version of the bundle format this build writes and
// the newest it reads.
const FormatVersion = 1

// ManifestName is the bundle's first entry.
const ManifestName = "manifest.json"

// Limits on a bundle read from disk, which may come from anywhere.
const (
	maxManifest = 1 << 20
	maxEntries  = 1000
	// maxTrailer bounds the padding after the tar end (tar tools pad to
	// a 10 KiB record).
	maxTrailer = 64 << 10
	// MaxSize bounds the sum of a bundle's uncompressed entries.
	MaxSize int64 = 64 << 30
)

// Errors Verify and Extract return, wrapped with the details; each says the
// bundle cannot be used.
var (
	ErrCorrupt     = errors.New("backup: the bundle is corrupt or not a Certwright backup")
	ErrTruncated   = errors.New("backup: the bundle is truncated")
	ErrChecksum    = errors.New("backup: an entry does not match its checksum")
	ErrNewerFormat = errors.New("backup: the bundle was written by a newer Certwright")
	ErrNewerSchema = errors.New("backup: the bundle's database schema is newer than this build knows")
)

// Manifest describes a bundle.
type Manifest struct {
	Format            int       `json:"format"`
	CertwrightVersion string    `json:"certwright_version"`
	Created           time.Time `json:"created"`
	// Dialect is the database the instance ran on: "sqlite" or "postgres".
	Dialect string `json:"dialect"`
	// SchemaVersion is the database schema version at the time of the
	// backup (the newest applied migration).
	SchemaVersion int `json:"schema_version"`
	// DatabaseIncluded is false when the database is backed up by other
	// means (pg_dump for PostgreSQL).
	DatabaseIncluded bool    `json:"database_included"`
	Entries          []Entry `json:"entries"`
	// MAC is the manifest's HMAC-SHA256 (hex) under a key derived from the
	// instance's KEK: restore, which needs that KEK anyway, refuses a
	// bundle whose manifest (and so whose files) someone without the KEK
	// changed or made up.
	MAC string `json:"mac,omitempty"`
}

// ErrUnauthenticated is returned for a manifest whose MAC does not match
// the KEK given: another instance's KEK, or a bundle changed after it was
// made.
var ErrUnauthenticated = errors.New("backup: the bundle's manifest does not authenticate with this KEK")

// macKeyInfo separates the MAC key from every other use of the KEK: the
// name keys.Derivations lists for it (restore derives it from the KEK
// file itself, without a key provider).
const macKeyInfo = string(keys.DeriveBackupManifest)

// macOf is the HMAC-SHA256 of m's canonical JSON (without its MAC) under
// a key derived from kek with HKDF-SHA256.
func macOf(m *Manifest, kek []byte) (string, error) {
	if len(kek) == 0 {
		return "", errors.New("backup: no key-encryption key to authenticate the manifest with")
	}
	key, err := hkdf.Key(sha256.New, kek, nil, macKeyInfo, 32)
	if err != nil {
		return "", fmt.Errorf("backup: %w", err)
	}
	defer clear(key)
	c := *m
	c.MAC = ""
	b, err := json.Marshal(&c)
	if err != nil {
		return "", fmt.Errorf("backup: manifest: %w", err)
	}
	h := hmac.New(sha256.New, key)
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// authenticate checks m's MAC under kek, in constant time.
func (m *Manifest) authenticate(kek []byte) error {
	want, err := macOf(m, kek)
	if err != nil {
		return err
	}
	if !hmac.Equal([]byte(want), []byte(m.MAC)) {
		return ErrUnauthenticated
	}
	return nil
}

// Entry is one file of a bundle.
type Entry struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// Mode is "0600", or "0644" for a file others may read (root.pem).
	Mode string `json:"mode"`
}

// File modes a bundle records.
const (
	modePrivate = "0600"
	modePublic  = "0644"
)

// perm is the mode a restored file gets.
func (e *Entry) perm() fs.FileMode {
	if e.Mode == modePublic {
		return 0o644
	}
	return 0o600
}

// CheckSchema refuses a bundle whose schema version is above known, the
// newest this build's migrations reach.
func (m *Manifest) CheckSchema(known int) error {
	if m.SchemaVersion > known {
		return fmt.Errorf("%w: it holds schema version %d, this build knows up to %d; restore it with a Certwright at least as new as the one that made it (%s)",
			ErrNewerSchema, m.SchemaVersion, known, m.CertwrightVersion)
	}
	return nil
}

// namePattern admits plain names and one level of subdirectory; no name
// starts with a dot, so none is "..".
var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}(/[A-Za-z0-9][A-Za-z0-9._-]{0,127})?$`)

// ValidName reports whether name can be a bundle entry: a plain file name
// or one level of subdirectory, of letters, digits, '.', '_' and '-', not
// starting with a dot.
func ValidName(name string) error {
	if !namePattern.MatchString(name) || name == ManifestName {
		return fmt.Errorf("%w: entry name %q is not allowed", ErrCorrupt, name)
	}
	return nil
}

// Write makes the bundle out from manifest m (whose Format and Entries it
// fills in) and the files names, relative to dir. The files must not
// change while Write runs: copy them into dir first. out must not exist;
// it is written to a temporary file beside it, synced, and linked into
// place with mode 0600, so out is either absent or complete.
func Write(ctx context.Context, out string, m *Manifest, dir string, names []string, kek []byte) (err error) {
	if _, err := os.Lstat(out); err == nil {
		return fmt.Errorf("backup: %s already exists (a backup never overwrites a file; choose another name)", out)
	}
	m.Format = FormatVersion
	m.Entries = m.Entries[:0]
	for _, name := range names {
		if err := ValidName(name); err != nil {
			return err
		}
		sum, size, mode, err := hashFile(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil {
			return err
		}
		m.Entries = append(m.Entries, Entry{Name: name, Size: size, SHA256: sum, Mode: mode})
	}
	if m.MAC, err = macOf(m, kek); err != nil {
		return err
	}
	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("backup: manifest: %w", err)
	}
	mb = append(mb, '\n')

	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".tmp-*")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	gz := gzip.NewWriter(tmp)
	tw := tar.NewWriter(gz)
	if err := writeEntry(tw, ManifestName, modePrivate, m.Created, int64(len(mb)), strings.NewReader(string(mb)), ""); err != nil {
		return err
	}
	for _, e := range m.Entries {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		f, err := os.Open(filepath.Join(dir, filepath.FromSlash(e.Name)))
		if err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		err = writeEntry(tw, e.Name, e.Mode, m.Created, e.Size, f, e.SHA256)
		f.Close()
		if err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := gz.Close(); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	// A link, unlike a rename, fails if out appeared meanwhile.
	if err := os.Link(tmp.Name(), out); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return atomicfile.SyncDir(filepath.Dir(out))
}

// writeEntry writes one tar entry of size bytes from r; when sum is set,
// the bytes written must hash to it (the file did not change since it was
// hashed).
func writeEntry(tw *tar.Writer, name, mode string, mtime time.Time, size int64, r io.Reader, sum string) error {
	perm := (&Entry{Mode: mode}).perm()
	hdr := &tar.Header{Name: name, Mode: int64(perm), Size: size, ModTime: mtime, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("backup: %s: %w", name, err)
	}
	h := sha256.New()
	n, err := io.Copy(tw, io.TeeReader(io.LimitReader(r, size), h))
	if err != nil {
		return fmt.Errorf("backup: %s: %w", name, err)
	}
	if n != size || (sum != "" && hex.EncodeToString(h.Sum(nil)) != sum) {
		return fmt.Errorf("backup: %s changed while the bundle was written", name)
	}
	return nil
}

// hashFile returns the SHA-256, size and bundle mode of the file at path.
// Nothing in a bundle is executable or writable by others.
func hashFile(path string) (sum string, size int64, mode string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, "", fmt.Errorf("backup: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", 0, "", fmt.Errorf("backup: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return "", 0, "", fmt.Errorf("backup: %s is not a regular file", path)
	}
	h := sha256.New()
	if size, err = io.Copy(h, f); err != nil {
		return "", 0, "", fmt.Errorf("backup: %s: %w", path, err)
	}
	mode = modePrivate
	if fi.Mode().Perm()&0o044 != 0 {
		mode = modePublic
	}
	return hex.EncodeToString(h.Sum(nil)), size, mode, nil
}

// Verify reads the bundle at path through and returns its manifest if
// every entry is listed, present once and matches its size and checksum,
// and the file is complete. It writes nothing.
func Verify(ctx context.Context, path string, kek []byte) (*Manifest, error) {
	return walk(ctx, path, kek, func(_ *Entry, r io.Reader) error {
		_, err := io.Copy(io.Discard, r)
		return err
	})
}

// Extract verifies the bundle at path as Verify does while writing each
// entry for which keep returns true into dir (an existing, empty
// directory; subdirectories are made 0700, files 0600 or, if the bundle
// says others could read them, 0644). On error dir holds part of the
// bundle: extract into a new directory and remove it on failure.
func Extract(ctx context.Context, path, dir string, keep func(name string) bool, kek []byte) (*Manifest, error) {
	return walk(ctx, path, kek, func(e *Entry, r io.Reader) error {
		if !keep(e.Name) {
			_, err := io.Copy(io.Discard, r)
			return err
		}
		dst := filepath.Join(dir, filepath.FromSlash(e.Name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return err
		}
		f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, e.perm())
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, r); err != nil {
			f.Close()
			return err
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	})
}

// walk reads the bundle, handing each entry's contents to fn, and checks
// it as Verify documents.
func walk(ctx context.Context, path string, kek []byte, fn func(e *Entry, r io.Reader) error) (*Manifest, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return nil, readError(path, "", err)
	}
	gz.Multistream(false)
	tr := tar.NewReader(gz)
	hdr, err := tr.Next()
	if err != nil {
		return nil, readError(path, "", err)
	}
	if hdr.Name != ManifestName || hdr.Typeflag != tar.TypeReg || hdr.Size > maxManifest {
		return nil, fmt.Errorf("%w: %s does not start with a %s", ErrCorrupt, path, ManifestName)
	}
	mb, err := io.ReadAll(tr)
	if err != nil {
		return nil, readError(path, ManifestName, err)
	}
	m, err := parseManifest(mb)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	// Nothing the manifest says is used before it authenticates.
	if err := m.authenticate(kek); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	byName := make(map[string]*Entry, len(m.Entries))
	for i := range m.Entries {
		byName[m.Entries[i].Name] = &m.Entries[i]
	}
	seen := make(map[string]bool, len(m.Entries))
	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("backup: %w", err)
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, readError(path, "", err)
		}
		e, ok := byName[hdr.Name]
		switch {
		case !ok:
			return nil, fmt.Errorf("%w: %s holds %q, which its manifest does not list", ErrCorrupt, path, hdr.Name)
		case seen[hdr.Name]:
			return nil, fmt.Errorf("%w: %s holds %q twice", ErrCorrupt, path, hdr.Name)
		case hdr.Typeflag != tar.TypeReg || hdr.Size != e.Size:
			return nil, fmt.Errorf("%w: %s: %q is not the %d-byte file the manifest lists", ErrCorrupt, path, hdr.Name, e.Size)
		}
		seen[hdr.Name] = true
		h := sha256.New()
		r := io.TeeReader(tr, h)
		if err := fn(e, r); err != nil {
			return nil, readError(path, e.Name, err)
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			return nil, readError(path, e.Name, err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != e.SHA256 {
			return nil, fmt.Errorf("%w: %s: %q has SHA-256 %s, the manifest says %s; the bundle was damaged: use another copy",
				ErrChecksum, path, e.Name, got, e.SHA256)
		}
	}
	for _, e := range m.Entries {
		if !seen[e.Name] {
			return nil, fmt.Errorf("%w: %s lacks %q, which its manifest lists; copy the whole file again", ErrTruncated, path, e.Name)
		}
	}
	// The gzip trailer's CRC and length catch damage the tar end missed.
	// Past the tar end there is only padding: a bounded amount.
	n, err := io.Copy(io.Discard, io.LimitReader(gz, maxTrailer+1))
	if err != nil {
		return nil, readError(path, "", err)
	}
	if n > maxTrailer {
		return nil, fmt.Errorf("%w: %s has more than %d bytes after its last entry", ErrCorrupt, path, maxTrailer)
	}
	return m, nil
}

// readError names what a failed read means for the bundle.
func readError(path, entry string, err error) error {
	where := ""
	if entry != "" {
		where = " (in " + entry + ")"
	}
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return fmt.Errorf("%w: %s ends too early%s; copy the whole file again: %w", ErrTruncated, path, where, err)
	case errors.Is(err, gzip.ErrChecksum):
		return fmt.Errorf("%w: %s fails its gzip checksum%s; the bundle was damaged: use another copy: %w", ErrChecksum, path, where, err)
	case errors.Is(err, gzip.ErrHeader) || errors.Is(err, tar.ErrHeader):
		return fmt.Errorf("%w: %s%s: %w", ErrCorrupt, path, where, err)
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("backup: %w", err)
	}
	return fmt.Errorf("%w: %s%s: %w", ErrCorrupt, path, where, err)
}

// parseManifest decodes and checks a manifest.
func parseManifest(b []byte) (*Manifest, error) {
	var head struct {
		Format int `json:"format"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, ManifestName, err)
	}
	if head.Format > FormatVersion {
		return nil, fmt.Errorf("%w: bundle format %d, this build reads up to %d; restore it with a newer Certwright", ErrNewerFormat, head.Format, FormatVersion)
	}
	if head.Format < 1 {
		return nil, fmt.Errorf("%w: %s has no format version", ErrCorrupt, ManifestName)
	}
	var m Manifest
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, ManifestName, err)
	}
	if m.Dialect != "sqlite" && m.Dialect != "postgres" {
		return nil, fmt.Errorf("%w: %s: unknown dialect %q", ErrCorrupt, ManifestName, m.Dialect)
	}
	if m.SchemaVersion < 1 {
		return nil, fmt.Errorf("%w: %s: schema version %d", ErrCorrupt, ManifestName, m.SchemaVersion)
	}
	if len(m.Entries) > maxEntries {
		return nil, fmt.Errorf("%w: %s lists %d entries, more than %d", ErrCorrupt, ManifestName, len(m.Entries), maxEntries)
	}
	var total int64
	names := make(map[string]bool, len(m.Entries))
	for _, e := range m.Entries {
		if err := ValidName(e.Name); err != nil {
			return nil, err
		}
		if names[e.Name] {
			return nil, fmt.Errorf("%w: %s lists %q twice", ErrCorrupt, ManifestName, e.Name)
		}
		names[e.Name] = true
		if e.Mode != modePrivate && e.Mode != modePublic {
			return nil, fmt.Errorf("%w: %s: %q has mode %q (want %s or %s)", ErrCorrupt, ManifestName, e.Name, e.Mode, modePrivate, modePublic)
		}
		if _, err := hex.DecodeString(e.SHA256); err != nil || len(e.SHA256) != 2*sha256.Size || e.SHA256 != strings.ToLower(e.SHA256) {
			return nil, fmt.Errorf("%w: %s: %q has no valid SHA-256", ErrCorrupt, ManifestName, e.Name)
		}
		if e.Size < 0 || e.Size > MaxSize-total {
			return nil, fmt.Errorf("%w: %s: the entries add up to more than %d bytes", ErrCorrupt, ManifestName, MaxSize)
		}
		total += e.Size
	}
	return &m, nil
}

package app

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/certwright/certwright/internal/atomicfile"
	"github.com/certwright/certwright/internal/config"
	"github.com/certwright/certwright/internal/keys/software"
)

// The instance KEK at rest (README "The KEK in the token"). The KEK is
// always a random 32-byte key that the software provider holds in memory
// (it wraps the software keys, seals secrets and derives the instance's
// other keys). With keys.kek_provider file it is stored as those 32 bytes
// in kek_file; with keys.kek_provider pkcs11 the file (DATA/kek.p11)
// holds it only sealed, with AES-256-GCM inside the token, by the token's
// AES key keys.pkcs11.kek_label, which never leaves the token: the data
// directory alone opens nothing. Every command that needs the KEK loads it
// through a kekStore, and the files a rotation keeps beside it (.new,
// .old-*) are in the same form as the KEK file.

// SealedKEKFile is the sealed KEK's file in the data directory.
const SealedKEKFile = config.SealedKEKFileName

// The sealed KEK file: JSON naming the token key that sealed it.
const (
	sealedKEKFormat  = "certwright-sealed-kek"
	sealedKEKVersion = 1
	maxSealedKEKFile = 4 << 10
)

type sealedKEKFile struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
	// TokenKEK is the CKA_LABEL of the token key that sealed it.
	TokenKEK string `json:"token_kek_label"`
	// Sealed is pkcs11.KEK.Seal's output (base64 in the JSON).
	Sealed []byte `json:"sealed"`
	// SealedFrom is, for a KEK keys seal-kek moved into the token, the
	// plain file it was in: where serve and seal-kek look for a plain
	// copy left behind. It is not authenticated, and only ever names a
	// file to check: one is removed only if it holds the sealed key.
	SealedFrom string `json:"sealed_from,omitempty"`
}

// sealedKEKAAD binds a sealed KEK to its purpose and to the token key
// that sealed it: the token KEK opens nothing else sealed as a KEK.
func sealedKEKAAD(label string) []byte {
	return []byte("certwright instance KEK v1\x00" + label)
}

// kekStore reads and writes the instance KEK at rest as cfg keeps it: tk
// nil, as a plain file; otherwise sealed by tk, the token's KEK label.
type kekStore struct {
	label string
	tk    tokenKEK
}

// openKEKStore returns how cfg keeps its KEK at rest. With the KEK in the
// token it opens the token, returned for the caller to close or hand on
// (the module is opened once per process), and finds the token's KEK, or,
// with create, generates it (refused when the label is taken).
func openKEKStore(ctx context.Context, cfg *config.Config, log *slog.Logger, create bool) (*kekStore, *hsmToken, error) {
	if !cfg.Keys.KEKInToken() {
		return &kekStore{}, nil, nil
	}
	tok, err := openHSM(ctx, cfg, log)
	if err != nil {
		return nil, nil, err
	}
	ks, err := tokenKEKStore(ctx, tok, cfg.Keys.PKCS11.KEKLabelOrDefault(), create)
	if err != nil {
		tok.close()
		return nil, nil, err
	}
	return ks, tok, nil
}

// tokenKEKStore is the kekStore sealing under tok's KEK label.
func tokenKEKStore(ctx context.Context, tok *hsmToken, label string, create bool) (*kekStore, error) {
	tk, err := tok.kek(ctx, label, create)
	switch {
	case errors.Is(err, ErrTokenKEKMissing):
		return nil, fmt.Errorf("app: the token holds no KEK labelled %q (keys.pkcs11.kek_label): check that keys.pkcs11 names the token the KEK was sealed by, and kek_label the key's label (pkcs11-tool --list-objects --login); a KEK file is put into a token with certwright keys seal-kek: %w", label, err)
	case errors.Is(err, ErrTokenKEKExists):
		return nil, fmt.Errorf("app: the token already holds an object labelled %q, so no new KEK is generated under that label: choose another label (--pkcs11-kek-label), or, if it is an AES-256 KEK meant to seal this instance's KEK, adopt it (--pkcs11-kek-adopt): %w", label, err)
	case err != nil:
		return nil, fmt.Errorf("app: the token's KEK %q: %w", label, err)
	}
	return &kekStore{label: label, tk: tk}, nil
}

// inToken reports whether the KEK is kept sealed by the token.
func (s *kekStore) inToken() bool { return s.tk != nil }

// load reads the KEK at path. The caller clears it.
func (s *kekStore) load(ctx context.Context, path string) ([]byte, error) {
	if !s.inToken() {
		return software.LoadKEK(path)
	}
	raw, err := readPrivateFile(path, maxSealedKEKFile)
	if err != nil {
		return nil, err
	}
	var f sealedKEKFile
	if err := json.Unmarshal(raw, &f); err != nil || f.Format != sealedKEKFormat {
		return nil, fmt.Errorf("%s is not a sealed KEK file (a file KEK is put into the token with certwright keys seal-kek)", path)
	}
	if f.Version != sealedKEKVersion {
		return nil, fmt.Errorf("%s is a sealed KEK file of version %d; this build reads version %d", path, f.Version, sealedKEKVersion)
	}
	if f.TokenKEK != s.label {
		return nil, fmt.Errorf("%w: %s was sealed by the token key %q, but keys.pkcs11.kek_label is %q: set kek_label to %q", ErrSealedKEK, path, f.TokenKEK, s.label, f.TokenKEK)
	}
	kek, err := s.tk.Open(ctx, f.Sealed, sealedKEKAAD(s.label))
	if errors.Is(err, ErrSealedKEK) {
		return nil, fmt.Errorf("%s does not open under the token key %q: it was sealed by another key (another token, or a key generated again under the same label) or the file was altered; use this instance's sealed KEK file with the token that sealed it: %w", path, s.label, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open the sealed KEK %s in the token: %w", path, err)
	}
	if len(kek) != software.KEKSize {
		clear(kek)
		return nil, fmt.Errorf("the sealed KEK %s opened to %d bytes, want %d", path, len(kek), software.KEKSize)
	}
	return kek, nil
}

// seal returns the sealed KEK file's contents for kek, sealed from the
// plain file from (none: "").
func (s *kekStore) seal(ctx context.Context, kek []byte, from string) ([]byte, error) {
	sealed, err := s.tk.Seal(ctx, kek, sealedKEKAAD(s.label))
	if err != nil {
		return nil, fmt.Errorf("seal the KEK in the token: %w", err)
	}
	b, err := json.MarshalIndent(sealedKEKFile{Format: sealedKEKFormat, Version: sealedKEKVersion, TokenKEK: s.label, Sealed: sealed, SealedFrom: from}, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// create writes a new random KEK to path (mode 0600), never over an
// existing file (an error wrapping fs.ErrExist).
func (s *kekStore) create(ctx context.Context, path string) error {
	if !s.inToken() {
		return software.GenerateKEK(path)
	}
	kek := make([]byte, software.KEKSize)
	defer clear(kek)
	if _, err := io.ReadFull(rand.Reader, kek); err != nil {
		return fmt.Errorf("KEK randomness: %w", err)
	}
	return s.writeNew(ctx, path, kek)
}

// writeNew writes kek to path (mode 0600) as this store keeps it, never
// over an existing file, and checks a sealed KEK opens again.
func (s *kekStore) writeNew(ctx context.Context, path string, kek []byte) error {
	return s.writeNewFrom(ctx, path, kek, "")
}

// writeNewFrom is writeNew for a KEK moved from the plain file from.
func (s *kekStore) writeNewFrom(ctx context.Context, path string, kek []byte, from string) error {
	if !s.inToken() {
		return atomicfile.WriteNew(path, kek, 0o600)
	}
	b, err := s.seal(ctx, kek, from)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteNew(path, b, 0o600); err != nil {
		return err
	}
	back, err := s.load(ctx, path)
	if err != nil {
		return errors.Join(fmt.Errorf("the KEK just sealed to %s does not open again: %w", path, err), os.Remove(path))
	}
	same := bytes.Equal(back, kek)
	clear(back)
	if !same {
		return errors.Join(fmt.Errorf("the KEK just sealed to %s opens to another key", path), os.Remove(path))
	}
	return nil
}

// readPrivateFile reads a regular file of at most limit bytes that group
// and others cannot access.
func readPrivateFile(path string, limit int64) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("KEK file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("KEK file %s is not a regular file (mode %s)", path, fi.Mode())
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %#o, want 0600 (chmod 600 %s)", software.ErrKEKPermissions, path, fi.Mode().Perm(), path)
	}
	b, err := readLimited(path, limit)
	if err != nil {
		return nil, fmt.Errorf("KEK file: %w", err)
	}
	return b, nil
}

// isSealedKEK reports whether the file at path is a sealed KEK file (and
// not a plain one), by its contents.
func isSealedKEK(path string) bool {
	_, ok := readSealedKEKFile(path)
	return ok
}

// readSealedKEKFile reads the sealed KEK file at path, unchecked: false
// when it is not one.
func readSealedKEKFile(path string) (sealedKEKFile, bool) {
	var f sealedKEKFile
	b, err := readLimited(path, maxSealedKEKFile)
	if err != nil {
		return f, false
	}
	return f, json.Unmarshal(b, &f) == nil && f.Format == sealedKEKFormat
}

// plainKEK is a plain KEK file left beside a sealed KEK, and the sealed
// file that holds the same key when it is the one seal-kek moved.
type plainKEK struct{ plain, sealed string }

// plainKEKsLeft lists the plain KEK files that a configuration keeping
// its KEK sealed by the token (cfg) should no longer have: DATA/kek, the
// file seal-kek moved the KEK from (recorded in the sealed file), and the
// old KEKs a rotation kept beside either; each with the sealed file that
// should hold its key. A seal-kek interrupted after it switched the
// configuration leaves them.
func plainKEKsLeft(cfg *config.Config) []plainKEK {
	sealedPath := cfg.KEKPath()
	bases := []string{filepath.Join(cfg.DataDir, KEKFile)}
	if f, ok := readSealedKEKFile(sealedPath); ok && f.SealedFrom != "" && filepath.IsAbs(f.SealedFrom) && filepath.Clean(f.SealedFrom) != bases[0] {
		bases = append(bases, filepath.Clean(f.SealedFrom))
	}
	var out []plainKEK
	for _, base := range bases {
		if base == sealedPath {
			continue
		}
		if isPlainFile(base) {
			out = append(out, plainKEK{plain: base, sealed: sealedPath})
		}
		old, _ := filepath.Glob(globEscape(base) + kekOldInfix + "*")
		for _, p := range old {
			if isPlainFile(p) {
				out = append(out, plainKEK{plain: p, sealed: sealedPath + kekOldInfix + strings.TrimPrefix(filepath.Base(p), filepath.Base(base)+kekOldInfix)})
			}
		}
	}
	return out
}

// isPlainFile reports whether path is a regular file that is not a
// sealed KEK file.
func isPlainFile(path string) bool {
	fi, err := os.Lstat(path)
	return err == nil && fi.Mode().IsRegular() && !isSealedKEK(path)
}

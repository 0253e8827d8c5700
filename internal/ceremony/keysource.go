package ceremony

import (
	"context"
	"crypto"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/certwright/certwright/internal/atomicfile"
	"github.com/certwright/certwright/internal/pki"
)

// KeySource holds the root's private key for the ceremony: FileKey keeps
// it in a passphrase-encrypted PKCS#8 file, a PKCS#11 token (NewPKCS11Key)
// inside the token.
type KeySource interface {
	// Generate creates a new key of alg, keeps it, and returns its signer.
	// It fails when the source already holds a key. (A source made to
	// adopt a key already in a token returns that key instead, refusing
	// one that is not of alg.)
	Generate(ctx context.Context, alg pki.KeyAlgorithm) (crypto.Signer, error)
	// Open returns the signer of the key the source holds.
	Open(ctx context.Context) (crypto.Signer, error)
	// Ref says where the key is, for the state file and the transcript. It
	// holds nothing secret.
	Ref() KeyRef
	// Discard undoes Generate when the root could not be made with the
	// key: a key file is removed, a key pair generated in a token is
	// destroyed; an adopted key is left as it was.
	Discard(ctx context.Context) error
	// Close releases what Open or Generate took (a token session; for a
	// file, the key in memory).
	Close() error
}

// KeyRef names a key source in the ceremony state and transcript.
type KeyRef struct {
	// Source is the kind of key source: "file" or "pkcs11".
	Source string `json:"source"`
	// Location is where the source keeps the key: for a file, its name
	// inside the ceremony directory; for a token, an RFC 7512 PKCS#11 URI
	// of the private key.
	Location string `json:"location"`
	// PKCS11 says, for a key in a token, which module, token and key.
	PKCS11 *PKCS11Ref `json:"pkcs11,omitempty"`
}

// SourceFile is KeyRef.Source for a FileKey.
const SourceFile = "file"

// KeyFileName is the root key's file in a ceremony directory.
const KeyFileName = "root-key.pem"

// PassphraseFunc returns the passphrase of the key file; confirm is true
// when a new key is being written (a prompt asks twice).
type PassphraseFunc func(confirm bool) ([]byte, error)

// FileKey is a KeySource holding the key in an encrypted PKCS#8 file (see
// pkcs8.go) with mode 0600.
type FileKey struct {
	Path       string
	Passphrase PassphraseFunc
	// Iterations is the PBKDF2 count for a new file; zero means
	// DefaultIterations. Only tests set it.
	Iterations int
	// Rand is the randomness for the key, salt and IV; nil means crypto/rand.
	Rand io.Reader

	signer    crypto.Signer
	generated bool
}

var _ KeySource = (*FileKey)(nil)

func (k *FileKey) random() io.Reader {
	if k.Rand != nil {
		return k.Rand
	}
	return rand.Reader
}

// Generate implements KeySource: the file is created (never replaced) with
// mode 0600 and synced before the key is used.
func (k *FileKey) Generate(_ context.Context, alg pki.KeyAlgorithm) (crypto.Signer, error) {
	if _, err := os.Lstat(k.Path); err == nil {
		return nil, fmt.Errorf("ceremony: key file %s exists already; a root key is never overwritten", k.Path)
	}
	pass, err := k.Passphrase(true)
	if err != nil {
		return nil, fmt.Errorf("ceremony: passphrase: %w", err)
	}
	if n := len([]rune(string(pass))); n < MinPassphrase {
		return nil, fmt.Errorf("ceremony: the passphrase has %d characters; a root key needs at least %d", n, MinPassphrase)
	}
	key, err := alg.Generate(k.random())
	if err != nil {
		return nil, fmt.Errorf("ceremony: generate %s key: %w", alg, err)
	}
	iter := k.Iterations
	if iter == 0 {
		iter = DefaultIterations
	}
	data, err := encryptKey(k.random(), key, pass, iter)
	if err != nil {
		return nil, err
	}
	if err := atomicfile.WriteNew(k.Path, data, 0o600); err != nil {
		return nil, err
	}
	k.signer, k.generated = key, true
	return key, nil
}

// Discard implements KeySource: the key file Generate wrote is removed.
func (k *FileKey) Discard(context.Context) error {
	if !k.generated {
		return nil
	}
	k.signer, k.generated = nil, false
	if err := os.Remove(k.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("ceremony: remove key file: %w", err)
	}
	return nil
}

// Open implements KeySource. A key file that group or others may read is
// refused, as the agent refuses its token file.
func (k *FileKey) Open(context.Context) (crypto.Signer, error) {
	if k.signer != nil {
		return k.signer, nil
	}
	st, err := os.Stat(k.Path)
	if err != nil {
		return nil, fmt.Errorf("ceremony: key file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("ceremony: key file %s has mode %04o: group and others must have no access (chmod 600 %s)", k.Path, st.Mode().Perm(), k.Path)
	}
	data, err := readLimited(k.Path, maxKeyFile)
	if err != nil {
		return nil, err
	}
	// The file's form is checked before a passphrase is asked for.
	if _, _, _, err := kdfParams(data); err != nil {
		return nil, fmt.Errorf("%s: %w", k.Path, err)
	}
	pass, err := k.Passphrase(false)
	if err != nil {
		return nil, fmt.Errorf("ceremony: passphrase: %w", err)
	}
	sg, err := decryptKey(data, pass)
	if err != nil {
		return nil, err
	}
	k.signer = sg
	return sg, nil
}

// Ref implements KeySource.
func (k *FileKey) Ref() KeyRef { return KeyRef{Source: SourceFile, Location: filepath.Base(k.Path)} }

// Close implements KeySource: the key is dropped (Go cannot promise to
// wipe it from memory; the process ends with the ceremony step).
func (k *FileKey) Close() error {
	k.signer = nil
	return nil
}

// Unlock is what opening the root key needs from the operators: the key
// file's passphrase, or where the token's PIN is (and, optionally, another
// module path or token than the ones recorded).
type Unlock struct {
	Passphrase PassphraseFunc
	PKCS11     PKCS11Unlock
}

// PKCS11Unlock opens a root key kept in a token.
type PKCS11Unlock struct {
	// PINFile (mode 0600) or PINEnv, the name of an environment variable
	// (exactly one), holds the token's user PIN.
	PINFile, PINEnv string
	// Module, when set, is the PKCS#11 library to load instead of the one
	// recorded (the library may be installed elsewhere on this machine).
	Module string
	// TokenLabel or TokenSerial, when set, selects the token instead of
	// the one recorded (a backup token holding the same key). The key is
	// found by its recorded label and CKA_ID and checked against the root
	// certificate all the same.
	TokenLabel, TokenSerial string
}

func (u PKCS11Unlock) set() bool { return u != PKCS11Unlock{} }

// OpenKeySource returns the key source a ceremony directory's state names.
func OpenKeySource(dir string, ref KeyRef, u Unlock) (KeySource, error) {
	switch ref.Source {
	case SourceFile:
		if ref.Location == "" || ref.Location != filepath.Base(ref.Location) || strings.HasPrefix(ref.Location, ".") {
			return nil, fmt.Errorf("%w: key file %q must be a file name inside the ceremony directory", ErrState, ref.Location)
		}
		if ref.PKCS11 != nil {
			return nil, fmt.Errorf("%w: the key source is a file, but the state names a PKCS#11 token too", ErrState)
		}
		if u.PKCS11.set() {
			return nil, fmt.Errorf("%w: the root key is the key file %s, not in a PKCS#11 token: leave out the PKCS#11 options", ErrInvalid, ref.Location)
		}
		if u.Passphrase == nil {
			return nil, fmt.Errorf("%w: the root key is the key file %s: its passphrase is needed", ErrInvalid, ref.Location)
		}
		return &FileKey{Path: filepath.Join(dir, ref.Location), Passphrase: u.Passphrase}, nil
	case SourcePKCS11:
		return reopenPKCS11Key(dir, ref, u.PKCS11)
	}
	return nil, fmt.Errorf("%w: key source %q is not supported by this build (supported: %s, %s)", ErrState, ref.Source, SourceFile, SourcePKCS11)
}

// readLimited reads a file of at most max bytes.
func readLimited(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("ceremony: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("ceremony: read %s: %w", path, err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("ceremony: %s is larger than %d bytes", path, max)
	}
	return data, nil
}

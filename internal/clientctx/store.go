// Package clientctx owns the client's saved logins ("contexts"): trusting a
// server by the SHA-256 fingerprint of its root CA (FetchRoot), and keeping,
// per user under $XDG_CONFIG_HOME/certwright, each named server's URL,
// pinned root and credential, one of them current (Store).
package clientctx

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/certwright/certwright/internal/atomicfile"
	"github.com/certwright/certwright/internal/pki"
)

// Files of a context directory, and of the configuration directory.
const (
	contextsDir = "contexts"
	metaFile    = "context.json"
	RootFile    = "root.pem"
	TokenFile   = "token"
	configFile  = "config.json"
	// maxMeta bounds every JSON file read from the directory.
	maxMeta = 64 << 10
)

// Context is one saved login.
type Context struct {
	Name            string `json:"name"`
	Server          string `json:"server"`
	RootFingerprint string `json:"root_fingerprint"`
	// ClientCert and ClientKey are absolute paths of a TLS client
	// certificate and its key, recorded as given; the files stay where
	// they are.
	ClientCert string    `json:"client_cert,omitempty"`
	ClientKey  string    `json:"client_key,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	// Principal is who the credential authenticated as at login.
	Principal string `json:"principal,omitempty"`
}

// Saved is a context as found on disk, with the paths of its files.
type Saved struct {
	Context
	// RootPath holds the pinned root certificate (PEM).
	RootPath string
	// TokenPath holds the API token; empty when the context has none.
	TokenPath string
}

// NotFoundError is a context name that is not saved.
type NotFoundError struct {
	Name  string
	Known []string
}

func (e *NotFoundError) Error() string {
	if len(e.Known) == 0 {
		return fmt.Sprintf("clientctx: no context %q: none is saved", e.Name)
	}
	return fmt.Sprintf("clientctx: no context %q (saved: %s)", e.Name, strings.Join(e.Known, ", "))
}

// ErrNoHome means neither $XDG_CONFIG_HOME nor $HOME says where contexts live.
var ErrNoHome = errors.New("clientctx: neither $XDG_CONFIG_HOME nor $HOME is set")

// Dir is the configuration directory: $XDG_CONFIG_HOME/certwright, or
// ~/.config/certwright. A relative $XDG_CONFIG_HOME is ignored, as the
// XDG base directory specification asks.
func Dir(getenv func(string) string) (string, error) {
	if x := getenv("XDG_CONFIG_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "certwright"), nil
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".config", "certwright"), nil
	}
	return "", ErrNoHome
}

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// ValidName checks a context name: letters, digits, ".", "_" and "-",
// starting with a letter or digit, at most 63 characters.
func ValidName(name string) error {
	if !namePattern.MatchString(name) {
		return fmt.Errorf("clientctx: context name %q: use letters, digits, '.', '_' and '-' (at most 63, starting with a letter or digit)", name)
	}
	return nil
}

// Store is the configuration directory.
type Store struct{ dir string }

// Open returns the store rooted at dir (see Dir); nothing is created
// until something is saved.
func Open(dir string) *Store { return &Store{dir: dir} }

// Path is the store's directory.
func (s *Store) Path() string { return s.dir }

// ContextDir is the directory a context named name is saved in.
func (s *Store) ContextDir(name string) string { return filepath.Join(s.dir, contextsDir, name) }

// Save writes a context with its root certificate and token (empty: none)
// and, with makeCurrent, makes it the current one. It replaces a context
// of the same name as a whole: the new files are written to a staging
// directory (0700, the token 0600) that is renamed into place, so a reader
// sees the old context or the new, and a failure leaves the old one.
func (s *Store) Save(c Context, rootDER []byte, token string, makeCurrent bool) error {
	if err := ValidName(c.Name); err != nil {
		return err
	}
	parent := filepath.Join(s.dir, contextsDir)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return fmt.Errorf("clientctx: %w", err)
	}
	// The directory may predate us with a looser mode; it holds tokens.
	for _, d := range []string{s.dir, parent} {
		if err := os.Chmod(d, 0o700); err != nil {
			return fmt.Errorf("clientctx: %w", err)
		}
	}
	stage, err := os.MkdirTemp(parent, ".new-"+c.Name+"-")
	if err != nil {
		return fmt.Errorf("clientctx: %w", err)
	}
	defer os.RemoveAll(stage) // a no-op once renamed into place
	meta, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("clientctx: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(stage, metaFile), append(meta, '\n'), 0o600); err != nil {
		return fmt.Errorf("clientctx: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(stage, RootFile), pki.CertPEM(rootDER), 0o644); err != nil {
		return fmt.Errorf("clientctx: %w", err)
	}
	if token != "" {
		if err := atomicfile.WriteFile(filepath.Join(stage, TokenFile), []byte(token+"\n"), 0o600); err != nil {
			return fmt.Errorf("clientctx: %w", err)
		}
	}
	final := s.ContextDir(c.Name)
	var old string
	if _, err := os.Lstat(final); err == nil {
		if old, err = os.MkdirTemp(parent, ".old-"+c.Name+"-"); err != nil {
			return fmt.Errorf("clientctx: %w", err)
		}
		old = filepath.Join(old, c.Name)
		if err := os.Rename(final, old); err != nil {
			os.Remove(filepath.Dir(old))
			return fmt.Errorf("clientctx: replace context %s: %w", c.Name, err)
		}
	}
	if err := os.Rename(stage, final); err != nil {
		if old != "" {
			_ = os.Rename(old, final)
			os.RemoveAll(filepath.Dir(old))
		}
		return fmt.Errorf("clientctx: save context %s: %w", c.Name, err)
	}
	if old != "" {
		os.RemoveAll(filepath.Dir(old))
	}
	if err := atomicfile.SyncDir(parent); err != nil {
		return fmt.Errorf("clientctx: %w", err)
	}
	if makeCurrent {
		return s.setCurrent(c.Name)
	}
	return nil
}

// Load reads a saved context.
func (s *Store) Load(name string) (*Saved, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	dir := s.ContextDir(name)
	data, err := readLimited(filepath.Join(dir, metaFile))
	if errors.Is(err, fs.ErrNotExist) {
		known, _ := s.Names()
		return nil, &NotFoundError{Name: name, Known: known}
	}
	if err != nil {
		return nil, fmt.Errorf("clientctx: read context %s: %w", name, err)
	}
	sv := &Saved{RootPath: filepath.Join(dir, RootFile)}
	if err := json.Unmarshal(data, &sv.Context); err != nil {
		return nil, fmt.Errorf("clientctx: context %s: %s is not valid JSON: %w", name, filepath.Join(dir, metaFile), err)
	}
	if sv.Name != name || sv.Server == "" {
		return nil, fmt.Errorf("clientctx: context %s: %s does not describe it; log in again", name, filepath.Join(dir, metaFile))
	}
	if _, err := os.Stat(filepath.Join(dir, TokenFile)); err == nil {
		sv.TokenPath = filepath.Join(dir, TokenFile)
	}
	return sv, nil
}

// Names lists the saved contexts, sorted.
func (s *Store) Names() ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(s.dir, contextsDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("clientctx: %w", err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() && ValidName(e.Name()) == nil {
			if _, err := os.Stat(filepath.Join(s.dir, contextsDir, e.Name(), metaFile)); err == nil {
				names = append(names, e.Name())
			}
		}
	}
	slices.Sort(names)
	return names, nil
}

// List loads every saved context.
func (s *Store) List() ([]*Saved, error) {
	names, err := s.Names()
	if err != nil {
		return nil, err
	}
	out := make([]*Saved, 0, len(names))
	for _, n := range names {
		sv, err := s.Load(n)
		if err != nil {
			return nil, err
		}
		out = append(out, sv)
	}
	return out, nil
}

type config struct {
	CurrentContext string `json:"current_context,omitempty"`
}

// Current is the name of the current context, "" when there is none.
func (s *Store) Current() (string, error) {
	data, err := readLimited(filepath.Join(s.dir, configFile))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("clientctx: %w", err)
	}
	var c config
	if err := json.Unmarshal(data, &c); err != nil {
		return "", fmt.Errorf("clientctx: %s is not valid JSON: %w", filepath.Join(s.dir, configFile), err)
	}
	return c.CurrentContext, nil
}

// Use makes a saved context the current one.
func (s *Store) Use(name string) error {
	if _, err := s.Load(name); err != nil {
		return err
	}
	return s.setCurrent(name)
}

func (s *Store) setCurrent(name string) error {
	data, err := json.MarshalIndent(config{CurrentContext: name}, "", "  ")
	if err != nil {
		return fmt.Errorf("clientctx: %w", err)
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("clientctx: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(s.dir, configFile), append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("clientctx: %w", err)
	}
	return nil
}

// Remove deletes a saved context and its token; when it was the current
// one, no context is current afterwards.
func (s *Store) Remove(name string) error {
	if _, err := s.Load(name); err != nil {
		return err
	}
	cur, err := s.Current()
	if err != nil {
		return err
	}
	if cur == name {
		if err := s.setCurrent(""); err != nil {
			return err
		}
	}
	if err := os.RemoveAll(s.ContextDir(name)); err != nil {
		return fmt.Errorf("clientctx: remove context %s: %w", name, err)
	}
	return atomicfile.SyncDir(filepath.Join(s.dir, contextsDir))
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > maxMeta {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxMeta)
	}
	data := make([]byte, st.Size())
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, err
	}
	return data, nil
}

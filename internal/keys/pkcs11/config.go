package pkcs11

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// Config says which module and token to use and where the user PIN is. The
// PIN itself is never a configuration value: it is read from a file or an
// environment variable, so it does not show in a process listing or a
// config file that is backed up with the data directory.
type Config struct {
	// Module is the path of the PKCS#11 library (for SoftHSM2 on Debian,
	// /usr/lib/softhsm/libsofthsm2.so).
	Module string
	// TokenLabel or TokenSerial (exactly one) selects the token.
	TokenLabel  string
	TokenSerial string
	// PINFile (mode 0600, one trailing newline ignored) or PINEnv, the
	// name of an environment variable (exactly one), holds the user PIN.
	PINFile string
	PINEnv  string
	// MaxSessions bounds the sessions open at once; 0 means
	// min(DefaultMaxSessions, what the token allows).
	MaxSessions int
	// Retries bounds the reconnections one call makes after the token
	// was lost before it gives up; 0 means DefaultRetries.
	Retries int
	// RetryBackoff is the wait before the first reconnection, doubled
	// before each further one; 0 means DefaultRetryBackoff.
	RetryBackoff time.Duration
}

// Defaults for the zero values of Config.
const (
	DefaultMaxSessions  = 32
	DefaultRetries      = 3
	DefaultRetryBackoff = 100 * time.Millisecond
)

// maxPINFileSize bounds what is read from a PIN file: a PIN is short, and a
// PIN file pointed at something large is a mistake, not a PIN.
const maxPINFileSize = 1024

// ErrConfig is wrapped by every error about the configuration itself.
var ErrConfig = errors.New("pkcs11: invalid configuration")

// ErrPINFileMode is returned for a PIN file that group or others can access.
var ErrPINFileMode = errors.New("pkcs11: PIN file is accessible by group or others")

// Validate reports the first problem with c, wrapping ErrConfig.
func (c Config) Validate() error {
	switch {
	case c.Module == "":
		return fmt.Errorf("%w: module: the path of the PKCS#11 library is required", ErrConfig)
	case !filepath.IsAbs(c.Module):
		// dlopen searches the library path for a bare name: the
		// module that holds the keys is named exactly.
		return fmt.Errorf("%w: module %q is not an absolute path", ErrConfig, c.Module)
	case (c.TokenLabel == "") == (c.TokenSerial == ""):
		return fmt.Errorf("%w: give exactly one of token label and token serial", ErrConfig)
	case (c.PINFile == "") == (c.PINEnv == ""):
		return fmt.Errorf("%w: give exactly one of PIN file and PIN environment variable", ErrConfig)
	case c.MaxSessions < 0:
		return fmt.Errorf("%w: max sessions %d is negative", ErrConfig, c.MaxSessions)
	case c.Retries < 0:
		return fmt.Errorf("%w: retries %d is negative", ErrConfig, c.Retries)
	case c.RetryBackoff < 0:
		return fmt.Errorf("%w: retry backoff %s is negative", ErrConfig, c.RetryBackoff)
	}
	return nil
}

// token names the configured token in messages.
func (c Config) token() string {
	if c.TokenLabel != "" {
		return fmt.Sprintf("token %q", c.TokenLabel)
	}
	return fmt.Sprintf("token with serial %q", c.TokenSerial)
}

func (c Config) retries() int {
	if c.Retries == 0 {
		return DefaultRetries
	}
	return c.Retries
}

func (c Config) backoff() time.Duration {
	if c.RetryBackoff == 0 {
		return DefaultRetryBackoff
	}
	return c.RetryBackoff
}

// readPIN returns the user PIN from the file or environment variable c names.
func (c Config) readPIN() (string, error) {
	var pin string
	if c.PINEnv != "" {
		v, ok := os.LookupEnv(c.PINEnv)
		if !ok {
			return "", fmt.Errorf("%w: PIN environment variable %s is not set", ErrConfig, c.PINEnv)
		}
		pin = v
		// Read once: child processes (a hook, an editor) do not inherit it.
		_ = os.Unsetenv(c.PINEnv)
	} else {
		v, err := readPINFile(c.PINFile)
		if err != nil {
			return "", err
		}
		pin = v
	}
	if pin == "" {
		return "", fmt.Errorf("%w: the PIN is empty", ErrConfig)
	}
	return pin, nil
}

// readPINFile reads path, refusing one that group or others can access:
// the permission is checked on the opened file, so it is the file read.
func readPINFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("pkcs11: open PIN file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("pkcs11: stat PIN file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%w: PIN file %s is not a regular file (mode %s)", ErrConfig, path, fi.Mode())
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("%w: %s has mode %#o, want 0600 (chmod 600 %s)", ErrPINFileMode, path, fi.Mode().Perm(), path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxPINFileSize+1))
	if err != nil {
		return "", fmt.Errorf("pkcs11: read PIN file %s: %w", path, err)
	}
	if len(b) > maxPINFileSize {
		return "", fmt.Errorf("%w: PIN file %s is over %d bytes", ErrConfig, path, maxPINFileSize)
	}
	s := string(b)
	s = strings.TrimSuffix(s, "\n")
	s = strings.TrimSuffix(s, "\r")
	return s, nil
}

package pkcs11

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/certwright/certwright/internal/keys/pkcs11/softhsmtest"
)

// How the tests get a token of their own: see package softhsmtest. Each
// test makes its token with newSoftToken, which sets SOFTHSM2_CONF, and
// only then calls Open; the tests therefore run one at a time, each
// against a token no other test touches, through the real Open path.

const testPIN = softhsmtest.PIN

// softToken is a SoftHSM2 token in a test's temporary directory.
type softToken struct{ *softhsmtest.Token }

// newSoftToken creates token label in a fresh token directory and points
// SOFTHSM2_CONF at it. It skips the test without SoftHSM2.
func newSoftToken(t testing.TB, label string) *softToken {
	t.Helper()
	return &softToken{softhsmtest.New(t, label)}
}

// writePIN writes pin to a file of mode perm and returns its path.
func writePIN(t testing.TB, pin string, perm os.FileMode) string {
	t.Helper()
	return softhsmtest.WritePIN(t, pin, perm)
}

// config is a Config for the token with the right PIN in a 0600 file.
func (st *softToken) config(t testing.TB) Config {
	t.Helper()
	return Config{Module: st.Module, TokenLabel: st.Label, PINFile: st.PINFile(t)}
}

// open opens cfg and closes the provider when the test ends.
func open(t testing.TB, cfg Config) *Provider {
	t.Helper()
	p, err := Open(context.Background(), cfg, testLogger(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return p
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func wantErr(t testing.TB, err, target error, contains ...string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v, want one wrapping %v", err, target)
	}
	for _, c := range contains {
		if !strings.Contains(err.Error(), c) {
			t.Errorf("error %q does not say %q", err, c)
		}
	}
}

package pkcs11

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/keys/pkcs11/softhsmtest"
	"github.com/certwright/certwright/internal/pki"
)

// signAndVerify signs msg with sg and checks the signature.
func signAndVerify(ctx context.Context, sg *Signer, msg string) error {
	d := digest(crypto.SHA256, msg)
	sig, err := sg.SignContext(ctx, d, crypto.SHA256)
	if err != nil {
		return err
	}
	if !ecdsa.VerifyASN1(sg.Public().(*ecdsa.PublicKey), d, sig) {
		return fmt.Errorf("signature over %q does not verify", msg)
	}
	return nil
}

// TestTokenRemovedAndRestored takes the token away from under a running
// provider, as pulling an HSM's cable or a network HSM going down would:
// SoftHSM2 keeps a token as a directory of object files, and moving that
// directory out of the token directory makes the module answer
// CKR_OBJECT_HANDLE_INVALID for its keys and lose the token from its
// slot list. Calls must fail with a clear error while it is gone, and the
// same provider, signer and KEK must work again once the directory is
// back, without being reopened.
func TestTokenRemovedAndRestored(t *testing.T) {
	st := newSoftToken(t, "removable")
	cfg := st.config(t)
	cfg.Retries = 2
	cfg.RetryBackoff = 20 * time.Millisecond
	p := open(t, cfg)
	ctx := context.Background()
	sg, err := p.GenerateKey(ctx, pki.ECDSAP256, "ca-1", []byte{1})
	if err != nil {
		t.Fatal(err)
	}
	kek, err := p.GenerateKEK(ctx, "kek")
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := kek.Seal(ctx, []byte("secret"), []byte("aad"))
	if err != nil {
		t.Fatal(err)
	}
	if err := signAndVerify(ctx, sg, "before"); err != nil {
		t.Fatal(err)
	}

	// Signers keep signing through the whole test, as the server's
	// issuers would: each call either succeeds with a good signature or
	// fails with ErrTokenUnavailable.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ok, unavailable int
	var bad []error
	for g := range 8 {
		wg.Go(func() {
			for i := 0; i < 2000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				err := signAndVerify(ctx, sg, fmt.Sprintf("%d/%d", g, i))
				mu.Lock()
				switch {
				case err == nil:
					ok++
				case errors.Is(err, ErrTokenUnavailable):
					unavailable++
				default:
					bad = append(bad, err)
				}
				mu.Unlock()
			}
		})
	}
	stopSigners := sync.OnceFunc(func() { close(stop); wg.Wait() })
	t.Cleanup(stopSigners)

	dir := st.TokenDir(t)
	away := filepath.Join(st.Dir, "away")
	if err := os.Rename(dir, away); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	err = signAndVerify(ctx, sg, "while gone")
	wantErr(t, err, ErrTokenUnavailable, `token "removable"`)
	if !errors.Is(err, ErrTokenNotFound) {
		t.Errorf("error %q does not say the token is not found", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the failing call took %v", d)
	}
	_, err = kek.Seal(ctx, []byte("x"), nil)
	wantErr(t, err, ErrTokenUnavailable)
	_, err = kek.Open(ctx, sealed, []byte("aad"))
	wantErr(t, err, ErrTokenUnavailable)
	_, err = p.GenerateKey(ctx, pki.ECDSAP256, "ca-2", []byte{2})
	wantErr(t, err, ErrTokenUnavailable)
	if s := p.Sessions(); s != (SessionStats{}) {
		t.Errorf("sessions %+v while the token is gone", s)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	err = signAndVerify(cancelled, sg, "cancelled")
	wantErr(t, err, context.Canceled)

	if err := os.Rename(away, dir); err != nil {
		t.Fatal(err)
	}
	// Each call reconnects at most Retries times, so the first call after
	// the token's return may still fail if it started just before.
	var after error
	for range 3 {
		if after = signAndVerify(ctx, sg, "after"); after == nil {
			break
		}
	}
	if after != nil {
		t.Fatalf("signing after the token came back: %v", after)
	}
	if got, err := kek.Open(ctx, sealed, []byte("aad")); err != nil || !bytes.Equal(got, []byte("secret")) {
		t.Fatalf("Open after the token came back = %q, %v", got, err)
	}
	if _, err := p.GenerateKey(ctx, pki.ECDSAP256, "ca-2", []byte{2}); err != nil {
		t.Fatalf("GenerateKey after the token came back: %v", err)
	}

	stopSigners()
	if len(bad) > 0 {
		t.Fatalf("%d calls failed otherwise than with ErrTokenUnavailable, first: %v", len(bad), bad[0])
	}
	t.Logf("background signatures: %d made, %d refused while the token was gone", ok, unavailable)
	if err := signAndVerify(ctx, sg, "end"); err != nil {
		t.Fatal(err)
	}
}

// TestSessionsClosedUnderneath closes every session of the token while
// goroutines sign, which also logs the user out: the provider must notice
// (CKR_SESSION_HANDLE_INVALID, CKR_USER_NOT_LOGGED_IN), reconnect and
// log in again, and no signature may fail.
func TestSessionsClosedUnderneath(t *testing.T) {
	st := newSoftToken(t, "closed")
	p := open(t, st.config(t))
	ctx := context.Background()
	sg, err := p.GenerateKey(ctx, pki.ECDSAP256, "ca-1", []byte{1})
	if err != nil {
		t.Fatal(err)
	}
	if err := signAndVerify(ctx, sg, "first"); err != nil {
		t.Fatal(err)
	}
	before := p.generation()
	if err := p.closeAllSessions(); err != nil {
		t.Fatal(err)
	}
	if err := signAndVerify(ctx, sg, "after close"); err != nil {
		t.Fatalf("signing after every session was closed: %v", err)
	}
	if p.generation() == before {
		t.Fatal("the provider did not reconnect")
	}

	const goroutines, each = 16, 40
	errs := make(chan error, goroutines)
	for g := range goroutines {
		go func() {
			for i := range each {
				if err := signAndVerify(ctx, sg, fmt.Sprintf("%d/%d", g, i)); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 3 {
		time.Sleep(20 * time.Millisecond)
		if err := p.closeAllSessions(); err != nil && !errors.Is(err, errLost) {
			t.Fatal(err)
		}
	}
	for range goroutines {
		if err := <-errs; err != nil {
			t.Fatalf("a signature failed while sessions were closed under it: %v", err)
		}
	}
}

// TestPINChangedUnderneath: a token whose user PIN was changed while the
// provider ran refuses the PIN when the provider reconnects. The provider
// must not log in again with that PIN (each refusal counts towards locking
// the user PIN, which a real HSM does after a few): every later call fails
// with ErrPIN at once, even once the PIN is back, until a restart.
func TestPINChangedUnderneath(t *testing.T) {
	st := newSoftToken(t, "pin-changed")
	cfg := st.config(t)
	cfg.Retries = 3
	cfg.RetryBackoff = 10 * time.Millisecond
	p := open(t, cfg)
	ctx := context.Background()
	sg, err := p.GenerateKey(ctx, pki.ECDSAP256, "ca-pin", []byte{7})
	if err != nil {
		t.Fatal(err)
	}
	const newPIN = "4321"
	st.Tool(t, "--change-pin", "--new-pin", newPIN)
	if err := p.closeAllSessions(); err != nil {
		t.Fatal(err)
	}
	err = signAndVerify(ctx, sg, "after the PIN changed")
	wantErr(t, err, ErrPIN)
	gen := p.generation()
	// The PIN is put back: a provider that kept logging in would now get
	// in, and that is what must not happen.
	st.Run(t, "pkcs11-tool", "--module", st.Module, "--token-label", st.Label, "--login", "--pin", newPIN, "--change-pin", "--new-pin", softhsmtest.PIN)
	for range 5 {
		err := signAndVerify(ctx, sg, "again")
		wantErr(t, err, ErrPIN)
	}
	if g := p.generation(); g != gen {
		t.Errorf("the provider reconnected %d more times after the token refused its PIN", g-gen)
	}
}

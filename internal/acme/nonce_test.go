package acme_test

import (
	"context"
	"encoding/base64"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/acme"
)

func TestNonceSingleUse(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	n, err := e.svc.NewNonce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.UseNonce(ctx, n); err != nil {
		t.Fatalf("fresh nonce: %v", err)
	}
	wantProblem(t, e.svc.UseNonce(ctx, n), acme.ErrBadNonce)

	// Nonces are independent of each other.
	n1, _ := e.svc.NewNonce(ctx)
	n2, _ := e.svc.NewNonce(ctx)
	if n1 == n2 {
		t.Fatal("two nonces are equal")
	}
	if err := e.svc.UseNonce(ctx, n2); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.UseNonce(ctx, n1); err != nil {
		t.Fatal(err)
	}
}

func TestNonceExpired(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *acme.Config) { c.NonceLifetime = 10 * time.Minute })
	ctx := context.Background()
	if got := e.svc.NonceLifetime(); got != 10*time.Minute {
		t.Fatalf("NonceLifetime = %s", got)
	}
	n, err := e.svc.NewNonce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	keep, err := e.svc.NewNonce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(10*time.Minute - time.Second)
	if err := e.svc.UseNonce(ctx, keep); err != nil {
		t.Fatalf("nonce just before its expiry: %v", err)
	}
	e.clk.Advance(time.Second)
	wantProblem(t, e.svc.UseNonce(ctx, n), acme.ErrBadNonce)
}

func TestNonceRejectsForgeries(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	n, err := e.svc.NewNonce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.RawURLEncoding.DecodeString(n)
	if err != nil {
		t.Fatalf("nonce %q is not base64url: %v", n, err)
	}
	flip := func(i int) string {
		b := append([]byte(nil), raw...)
		b[i] ^= 0x01
		return base64.RawURLEncoding.EncodeToString(b)
	}
	for _, tc := range []struct{ name, nonce string }{
		{"empty", ""},
		{"garbage", "not-a-nonce"},
		{"not base64", "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"},
		{"truncated", n[:len(n)-2]},
		{"extended", n + "AA"},
		{"tampered tag", flip(len(raw) - 1)},
		{"tampered random", flip(10)},
		// Moving the expiry forward is what a forger would want.
		{"tampered expiry", flip(7)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantProblem(t, e.svc.UseNonce(ctx, tc.nonce), acme.ErrBadNonce)
		})
	}
	// None of the forgeries spent the real nonce.
	if err := e.svc.UseNonce(ctx, n); err != nil {
		t.Fatalf("the untampered nonce: %v", err)
	}
}

func TestNonceAcrossReplicas(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	replica := e.service(t, nil)
	ctx := context.Background()

	n, err := e.svc.NewNonce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := replica.UseNonce(ctx, n); err != nil {
		t.Fatalf("replica rejects a nonce the first service minted: %v", err)
	}
	wantProblem(t, e.svc.UseNonce(ctx, n), acme.ErrBadNonce)

	m, err := replica.NewNonce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.UseNonce(ctx, m); err != nil {
		t.Fatalf("first service rejects a nonce the replica minted: %v", err)
	}
	wantProblem(t, replica.UseNonce(ctx, m), acme.ErrBadNonce)
}

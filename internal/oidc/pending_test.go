package oidc_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/oidc"
)

// TestSealerLongNext: a next path of the largest size the console takes
// seals however many characters JSON would escape for HTML, within
// MaxSealed.
func TestSealerLongNext(t *testing.T) {
	t.Parallel()
	s, err := oidc.NewSealer(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	next := "/?" + strings.Repeat("&<>", 340) // 1022 bytes
	p := &oidc.Pending{Provider: "corp", State: strings.Repeat("s", 43), Nonce: strings.Repeat("n", 43),
		Verifier: strings.Repeat("v", 43), Next: next, CreatedAt: time.Now()}
	v, err := s.Seal(p)
	if err != nil {
		t.Fatalf("Seal with a %d-byte next: %v", len(next), err)
	}
	got, err := s.Open(v)
	if err != nil || got.Next != next {
		t.Fatalf("Open: next %q, %v", got.Next, err)
	}
}

// TestSealerNextTooLong: a next path that would not fit the seal is
// replaced by "/" rather than failing the sign-in.
func TestSealerNextTooLong(t *testing.T) {
	t.Parallel()
	s, err := oidc.NewSealer(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.Seal(&oidc.Pending{Provider: "corp", State: "s", Nonce: "n", Verifier: "v", Next: "/" + strings.Repeat("a", oidc.MaxSealed), CreatedAt: time.Now()})
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	if got, err := s.Open(v); err != nil || got.Next != "/" {
		t.Fatalf("Open: %+v, %v", got, err)
	}
}

package oidc

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"
)

// A console sign-in between Begin and Finish is kept by the browser, not
// the server: sealed (AES-256-GCM) into its cookie under a key derived
// from the server's key-encryption key, which every replica shares. The
// server keeps nothing per sign-in begun, so no number of sign-ins begun
// elsewhere can push a person's out, and the answer may reach any replica.

const (
	// sealAD is the additional data of every seal: the purpose and the
	// format's version, so a value sealed for anything else never opens.
	sealAD = "certwright console sso pending v1"
	// MaxSealed bounds a sealed sign-in (a cookie value); longer ones are
	// refused unopened.
	MaxSealed = 2048
)

// Sealer seals pending console sign-ins. Safe for concurrent use.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer seals under key: the instance's keys.DeriveSSOState secret,
// 32 bytes, derived from the KEK every replica shares.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("oidc: the sealing key is %d bytes, want 32", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("oidc: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("oidc: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// sealed is the plaintext of a seal.
type sealed struct {
	Provider string `json:"p"`
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Next     string `json:"x"`
	Created  int64  `json:"t"` // Unix seconds
}

// Seal returns p (all but its AuthURL) sealed, base64url without padding.
// When the seal with p.Next would be longer than MaxSealed, it seals "/"
// as Next instead: a sign-in that lands on the console's start page is
// better than none.
func (s *Sealer) Seal(p *Pending) (string, error) {
	x := sealed{Provider: p.Provider, State: p.State, Nonce: p.Nonce, Verifier: p.Verifier, Next: p.Next, Created: p.CreatedAt.Unix()}
	out, err := s.seal(x)
	if err == nil && len(out) > MaxSealed && x.Next != "/" {
		x.Next = "/"
		out, err = s.seal(x)
	}
	if err != nil {
		return "", err
	}
	if len(out) > MaxSealed {
		return "", fmt.Errorf("oidc: the sealed sign-in is %d bytes, more than %d (a provider name too long?)", len(out), MaxSealed)
	}
	return out, nil
}

func (s *Sealer) seal(x sealed) (string, error) {
	// No HTML escaping: it would make each & < > of a next path six bytes.
	var pt bytes.Buffer
	enc := json.NewEncoder(&pt)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(x); err != nil {
		return "", fmt.Errorf("oidc: seal: %w", err)
	}
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(s.aead.Seal(nonce, nonce, bytes.TrimSuffix(pt.Bytes(), []byte("\n")), []byte(sealAD))), nil
}

// Open returns the sign-in v seals. Anything this server did not seal
// (altered, cut short, sealed under another key, too long) is ErrState,
// with no more said.
func (s *Sealer) Open(v string) (*Pending, error) {
	notBegun := fail(ErrState, "", nil, "the sign-in was not begun in this browser")
	if v == "" || len(v) > MaxSealed {
		return nil, notBegun
	}
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil || len(b) < s.aead.NonceSize()+s.aead.Overhead() {
		return nil, notBegun
	}
	n := s.aead.NonceSize()
	pt, err := s.aead.Open(nil, b[:n], b[n:], []byte(sealAD))
	if err != nil {
		return nil, notBegun
	}
	var x sealed
	if err := json.Unmarshal(pt, &x); err != nil || x.Provider == "" || x.State == "" || x.Nonce == "" || x.Verifier == "" {
		return nil, notBegun
	}
	return &Pending{Provider: x.Provider, State: x.State, Nonce: x.Nonce, Verifier: x.Verifier, Next: x.Next,
		CreatedAt: time.Unix(x.Created, 0)}, nil
}

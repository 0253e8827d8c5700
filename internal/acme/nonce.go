package acme

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"time"
)

// Nonces are self-authenticating: 8 bytes of expiry (Unix seconds), 12
// random bytes and a 16-byte HMAC-SHA256 tag over both, under a key kept
// in the store so every replica mints and checks the same nonces. Issuing
// one writes nothing; using one records it in the store's used set, so a
// nonce is accepted once, on any replica, until it expires.
const (
	nonceRandLen = 12
	nonceTagLen  = 16
	nonceLen     = 8 + nonceRandLen + nonceTagLen
)

func (s *Service) macKey(ctx context.Context) ([]byte, error) {
	s.nonceMu.Lock()
	defer s.nonceMu.Unlock()
	if s.nonceKey != nil {
		return s.nonceKey, nil
	}
	cand := make([]byte, 32)
	if _, err := io.ReadFull(s.cfg.Rand, cand); err != nil {
		return nil, fmt.Errorf("acme: nonce key: %w", err)
	}
	k, err := s.store.EnsureNonceKey(ctx, cand)
	if err != nil {
		return nil, fmt.Errorf("acme: nonce key: %w", err)
	}
	if len(k) < 32 {
		return nil, fmt.Errorf("acme: stored nonce key is %d bytes, want 32", len(k))
	}
	s.nonceKey = k
	return k, nil
}

func nonceTag(key, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return m.Sum(nil)[:nonceTagLen]
}

// NewNonce mints a fresh nonce.
func (s *Service) NewNonce(ctx context.Context) (string, error) {
	key, err := s.macKey(ctx)
	if err != nil {
		return "", err
	}
	var b [nonceLen]byte
	binary.BigEndian.PutUint64(b[:8], uint64(s.cfg.Clock.Now().Add(s.cfg.NonceLifetime).Unix()))
	if _, err := io.ReadFull(s.cfg.Rand, b[8:8+nonceRandLen]); err != nil {
		return "", fmt.Errorf("acme: nonce: %w", err)
	}
	copy(b[8+nonceRandLen:], nonceTag(key, b[:8+nonceRandLen]))
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// UseNonce accepts a nonce once: it must be one this service minted, not
// expired, and not used before (on any replica).
func (s *Service) UseNonce(ctx context.Context, nonce string) error {
	bad := func(why string) error {
		return NewProblem(ErrBadNonce, "nonce %s; get a fresh one from the Replay-Nonce header", why)
	}
	if nonce == "" {
		return bad("missing")
	}
	if len(nonce) != base64.RawURLEncoding.EncodedLen(nonceLen) {
		return bad("malformed")
	}
	b, err := base64.RawURLEncoding.DecodeString(nonce)
	if err != nil {
		return bad("malformed")
	}
	key, err := s.macKey(ctx)
	if err != nil {
		return err
	}
	if !hmac.Equal(b[8+nonceRandLen:], nonceTag(key, b[:8+nonceRandLen])) {
		return bad("not issued by this server")
	}
	exp := time.Unix(int64(binary.BigEndian.Uint64(b[:8])), 0)
	if !s.cfg.Clock.Now().Before(exp) {
		return bad("expired")
	}
	fresh, err := s.store.UseNonce(ctx, base64.RawURLEncoding.EncodeToString(b[8:8+nonceRandLen]), exp)
	if err != nil {
		return fmt.Errorf("acme: use nonce: %w", err)
	}
	if !fresh {
		return bad("already used")
	}
	return nil
}

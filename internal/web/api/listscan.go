package api

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/certwright/certwright/internal/inventory"
)

// cursorPrefix marks a sealed scan position in "after"/"next"; serials
// are hex and never contain it.
const cursorPrefix = "scan."

// cursorSealer turns a scan position (a serial the caller may not be
// allowed to see) into an opaque cursor and back: AES-256-GCM under a key
// every replica derives from the shared KEK (Deps.CursorKey), bound to
// the caller and to the listing's filters. The cursor reveals nothing
// about the serial, cannot be forged or moved to another caller or
// filter, and works on any replica until the KEK changes.
type cursorSealer struct{ aead cipher.AEAD }

// newCursorSealer seals under key (32 bytes), or under a random key of
// this process when key is nil.
func newCursorSealer(key []byte) (*cursorSealer, error) {
	if key == nil {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("api: list cursor key: %w", err)
		}
		defer clear(key)
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("api: list cursor key: %d bytes, want 32", len(key))
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("api: list cursor key: %w", err)
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		return nil, fmt.Errorf("api: list cursor key: %w", err)
	}
	return &cursorSealer{aead: g}, nil
}

// errCursor marks a sealed cursor that does not open here.
var errCursor = errors.New("api: list cursor not valid")

func cursorAAD(principalID, filters string) []byte {
	return []byte("certwright certificate list cursor v1\x00" + principalID + "\x00" + filters)
}

// seal returns the cursor for continuing after position (listPosition).
func (s *cursorSealer) seal(principalID, filters, position string) string {
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce) // crypto/rand.Read never fails (Go 1.24+)
	out := s.aead.Seal(nonce, nonce, []byte(position), cursorAAD(principalID, filters))
	return cursorPrefix + base64.RawURLEncoding.EncodeToString(out)
}

// open returns the position sealed in cursor for this caller and filters.
func (s *cursorSealer) open(principalID, filters, cursor string) (string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(cursor, cursorPrefix))
	if err != nil || len(raw) < s.aead.NonceSize() {
		return "", errCursor
	}
	n := s.aead.NonceSize()
	pt, err := s.aead.Open(nil, raw[:n], raw[n:], cursorAAD(principalID, filters))
	if err != nil {
		return "", errCursor
	}
	return string(pt), nil
}

// listFilters is the part of a listing's query a cursor is bound to:
// everything but the position and the page size.
func listFilters(f inventory.Filter, status, expiringWithin string) string {
	return strings.Join([]string{f.CAID, f.Profile, status, f.SAN, f.Tag, f.SPKISHA256, expiringWithin,
		string(f.Order), strconv.FormatBool(f.Current), string(f.Source)}, "\x00")
}

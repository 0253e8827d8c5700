package escrow

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"maps"
	"strconv"
)

// A share file is one PEM block of type shareBlockType, readable by a
// custodian, whose headers repeat what the body says:
//
//	-----BEGIN CERTWRIGHT KEY SHARE-----
//	Set: 5f0c…(32 hex digits)
//	Share: 2 of 5
//	Threshold: 3
//
//	AT9f… (base64 of the body)
//	-----END CERTWRIGHT KEY SHARE-----
//
// The body is, in bytes:
//
//	[0]        shareVersion
//	[1:17]     set ID
//	[17]       index (1..total)
//	[18]       threshold
//	[19]       total
//	[20]       value length L (1..maxShareValue)
//	[21:21+L]  the share's value
//	[21+L:+8]  checksum: the first 8 bytes of SHA-256 over shareDomain and
//	           every byte before it
//
// The checksum catches a typo or a damaged copy; a share made for another
// bundle, or altered with its checksum recomputed, is caught by the
// SHA-256 of every share the bundle records (Bundle.Open).
const (
	shareBlockType = "CERTWRIGHT KEY SHARE"
	shareVersion   = 1
	shareDomain    = "certwright key share v1\x00"
	shareHeaderLen = 21
	checksumLen    = 8
	// maxShareValue bounds a share's value: the backup key is 32 bytes.
	maxShareValue = 64
	// MaxShareFile bounds a share file read from disk.
	MaxShareFile = 4 << 10
)

// SetIDSize is the length of a set ID: random, shared by a bundle and its
// shares.
const SetIDSize = 16

// Share is one custodian's share of a bundle's backup key.
type Share struct {
	// Name says where the share was read from (a file name), for errors;
	// it is not part of the share.
	Name      string
	SetID     [SetIDSize]byte
	Index     int
	Threshold int
	Total     int
	Value     []byte
}

// body is the share's binary encoding, checksum included.
func (s *Share) body() []byte {
	b := make([]byte, 0, shareHeaderLen+len(s.Value)+checksumLen)
	b = append(b, shareVersion)
	b = append(b, s.SetID[:]...)
	b = append(b, byte(s.Index), byte(s.Threshold), byte(s.Total), byte(len(s.Value)))
	b = append(b, s.Value...)
	sum := shareChecksum(b)
	return append(b, sum[:]...)
}

func shareChecksum(b []byte) [checksumLen]byte {
	h := sha256.New()
	h.Write([]byte(shareDomain))
	h.Write(b)
	var out [checksumLen]byte
	copy(out[:], h.Sum(nil))
	return out
}

// digest is the SHA-256 of the share's body, as a bundle records it.
func (s *Share) digest() string {
	sum := sha256.Sum256(s.body())
	return hex.EncodeToString(sum[:])
}

// headers are the share file's informative headers.
func (s *Share) headers() map[string]string {
	return map[string]string{
		"Set":       hex.EncodeToString(s.SetID[:]),
		"Share":     strconv.Itoa(s.Index) + " of " + strconv.Itoa(s.Total),
		"Threshold": strconv.Itoa(s.Threshold),
	}
}

// Encode returns the share file's contents.
func (s *Share) Encode() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: shareBlockType, Headers: s.headers(), Bytes: s.body()})
}

// ParseShare reads a share file's contents; name (the file) is kept for
// errors. A damaged, truncated or edited share is an error wrapping
// ErrShare that names it.
func ParseShare(name string, b []byte) (*Share, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrShare, name, fmt.Sprintf(format, a...))
	}
	if len(b) > MaxShareFile {
		return nil, bad("%d bytes, more than a share file holds (%d)", len(b), MaxShareFile)
	}
	block, rest := pem.Decode(b)
	if block == nil {
		return nil, bad("no %q block, or its base64 is damaged (a typo in the file?)", shareBlockType)
	}
	if block.Type != shareBlockType {
		return nil, bad("a %q block, not a %q", block.Type, shareBlockType)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, bad("text after the share block")
	}
	body := block.Bytes
	if len(body) < shareHeaderLen+1+checksumLen {
		return nil, bad("the share is %d bytes, too short (truncated?)", len(body))
	}
	// The checksum first: a damaged byte anywhere, the version's
	// included, is named as damage.
	n := int(body[20])
	if n == 0 || n > maxShareValue || len(body) != shareHeaderLen+n+checksumLen {
		return nil, bad("the share's length does not match its contents: it was mistyped, damaged or truncated; use another copy of it")
	}
	want := shareChecksum(body[:shareHeaderLen+n])
	if subtle.ConstantTimeCompare(want[:], body[shareHeaderLen+n:]) != 1 {
		return nil, bad("checksum mismatch: the share was mistyped or damaged; use another copy of it")
	}
	if body[0] != shareVersion {
		return nil, bad("share format version %d; this build reads version %d", body[0], shareVersion)
	}
	s := &Share{Name: name, Index: int(body[17]), Threshold: int(body[18]), Total: int(body[19]),
		Value: bytes.Clone(body[shareHeaderLen : shareHeaderLen+n])}
	copy(s.SetID[:], body[1:17])
	if err := checkCounts(s.Total, s.Threshold); err != nil {
		return nil, bad("%v", err)
	}
	if s.Index < 1 || s.Index > s.Total {
		return nil, bad("share %d of %d", s.Index, s.Total)
	}
	if !maps.Equal(block.Headers, s.headers()) {
		return nil, bad("its headers (Set, Share, Threshold) do not say what its contents do: the file was edited")
	}
	return s, nil
}

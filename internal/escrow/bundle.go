// Package escrow owns key escrow: a bundle holding the key-encryption key
// and every software-wrapped key, encrypted under a fresh random backup
// key, and that backup key split into Shamir shares (M of N reconstruct
// it, fewer say nothing about it). Seal makes a bundle and its shares;
// ParseBundle, ParseShare and Bundle.Open read them back, refusing a
// damaged, altered, mixed-up or insufficient set with an error naming the
// file.
//
// Where the keys come from and what is done with them is the app
// package's business: this package knows bytes, not Certwright instances.
package escrow

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"time"
)

// FormatVersion is the bundle format this build writes and the newest it
// reads.
const FormatVersion = 1

// A bundle file is:
//
//	bundleMagic                           one line
//	header JSON                           one line, then "\n"
//	nonce (12 bytes) || AES-256-GCM ciphertext of the contents JSON
//
// The two lines (magic and header, exactly as written) are the
// ciphertext's associated data: no header field can change without the
// bundle failing to open. `head -2 FILE` shows the header.
const bundleMagic = "certwright key escrow bundle v1\n"

// Limits on a bundle read from disk, which may come from anywhere.
const (
	maxHeader = 64 << 20
	// MaxBundle bounds a whole bundle file.
	MaxBundle = 1 << 30
	maxKeys   = 4 << 20
	keySize   = 32
)

// Errors, wrapped with the details (which file, what is wrong).
var (
	// ErrCounts is a threshold or share count out of range.
	ErrCounts = errors.New("escrow: invalid share counts")
	// ErrBundle is a file that is not an escrow bundle, or a damaged one.
	ErrBundle = errors.New("escrow: not a key escrow bundle, or a damaged one")
	// ErrNewerFormat is a bundle written by a newer Certwright.
	ErrNewerFormat = errors.New("escrow: the bundle was written by a newer Certwright")
	// ErrShare is a share file that is damaged, mistyped or edited.
	ErrShare = errors.New("escrow: damaged share")
	// ErrWrongSet is a share of another escrow set than the bundle's, or
	// one whose threshold or count differ from the bundle's.
	ErrWrongSet = errors.New("escrow: share of another escrow set")
	// ErrDuplicateShare is the same share given twice.
	ErrDuplicateShare = errors.New("escrow: the same share given twice")
	// ErrShareMismatch is a share with a valid checksum that is not the
	// share made with the bundle (altered, checksum recomputed).
	ErrShareMismatch = errors.New("escrow: share does not match the one made with this bundle")
	// ErrTooFewShares is fewer shares than the threshold.
	ErrTooFewShares = errors.New("escrow: not enough shares")
	// ErrOpen is a bundle the shares' key does not open: the bundle (its
	// header or its encrypted contents) was changed after it was made.
	ErrOpen = errors.New("escrow: the bundle does not open with the key the shares reconstruct: it was altered")
)

// Key describes one escrowed key (never its material).
type Key struct {
	// Purpose is what the key is for and whose ("ca:<id>", ...).
	Purpose   string `json:"purpose"`
	Provider  string `json:"provider"`
	ID        string `json:"id"`
	Algorithm string `json:"algorithm"`
}

// Header is a bundle's cleartext, authenticated metadata.
type Header struct {
	Format            int       `json:"format"`
	SetID             string    `json:"set_id"`
	Created           time.Time `json:"created"`
	CertwrightVersion string    `json:"certwright_version,omitempty"`
	InstanceID        string    `json:"instance_id,omitempty"`
	Threshold         int       `json:"threshold"`
	Shares            int       `json:"shares"`
	// ShareSHA256 is the SHA-256 of each share's body, share 1 first.
	ShareSHA256 []string `json:"share_sha256"`
	// Keys lists the wrapped keys in the contents, in the same order.
	Keys []Key `json:"keys"`
	// ContentsSHA256 is the SHA-256 of the decrypted contents JSON.
	ContentsSHA256 string `json:"contents_sha256"`
}

// Contents is what a bundle encrypts.
type Contents struct {
	// KEK is the key-encryption key.
	KEK []byte `json:"kek"`
	// Blobs are the wrapped keys, in the order of Header.Keys.
	Blobs [][]byte `json:"blobs"`
}

// Clear zeroes the key material in c.
func (c *Contents) Clear() {
	clear(c.KEK)
	for _, b := range c.Blobs {
		clear(b)
	}
}

// Bundle is a parsed bundle, not yet opened.
type Bundle struct {
	Header Header
	aad    []byte
	nonce  []byte
	sealed []byte
}

var hex32 = regexp.MustCompile(`^[0-9a-f]{32}$`)
var hex64 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Seal makes a new escrow set: h (whose Created, CertwrightVersion,
// InstanceID and Keys the caller fills in; the rest is set here) and c
// encrypted under a fresh backup key, and that key split into n shares of
// which threshold open the bundle. c.Blobs must match h.Keys. The key,
// set ID, nonce and the shares' coefficients come from random (nil:
// crypto/rand).
func Seal(h Header, c *Contents, n, threshold int, random io.Reader) (bundle []byte, shares []*Share, err error) {
	if random == nil {
		random = rand.Reader
	}
	if err := checkCounts(n, threshold); err != nil {
		return nil, nil, err
	}
	if len(c.Blobs) != len(h.Keys) || len(h.Keys) > maxKeys {
		return nil, nil, fmt.Errorf("escrow: %d keys listed, %d blobs (at most %d)", len(h.Keys), len(c.Blobs), maxKeys)
	}
	key := make([]byte, keySize)
	defer clear(key)
	var setID [SetIDSize]byte
	nonce := make([]byte, 12)
	for _, b := range [][]byte{key, setID[:], nonce} {
		if _, err := io.ReadFull(random, b); err != nil {
			return nil, nil, fmt.Errorf("escrow: randomness: %w", err)
		}
	}
	values, err := split(key, n, threshold, random)
	if err != nil {
		return nil, nil, err
	}
	plain, err := json.Marshal(c)
	if err != nil {
		return nil, nil, fmt.Errorf("escrow: encode the contents: %w", err)
	}
	defer clear(plain)
	sum := sha256.Sum256(plain)
	h.Format, h.SetID, h.Threshold, h.Shares = FormatVersion, hex.EncodeToString(setID[:]), threshold, n
	h.ContentsSHA256 = hex.EncodeToString(sum[:])
	h.Created = h.Created.UTC()
	h.ShareSHA256 = nil
	for i, v := range values {
		s := &Share{SetID: setID, Index: i + 1, Threshold: threshold, Total: n, Value: v}
		shares = append(shares, s)
		h.ShareSHA256 = append(h.ShareSHA256, s.digest())
	}
	hb, err := json.Marshal(&h)
	if err != nil {
		return nil, nil, fmt.Errorf("escrow: encode the header: %w", err)
	}
	if len(hb) > maxHeader {
		return nil, nil, fmt.Errorf("escrow: the header is %d bytes, over %d: too many keys for one bundle", len(hb), maxHeader)
	}
	aad := slices.Concat([]byte(bundleMagic), hb, []byte("\n"))
	aead, err := newGCM(key)
	if err != nil {
		return nil, nil, err
	}
	out := aead.Seal(slices.Concat(aad, nonce), nonce, plain, aad)
	if len(out) > MaxBundle {
		return nil, nil, fmt.Errorf("escrow: the bundle would be %d bytes, over %d: too many keys for one bundle", len(out), MaxBundle)
	}
	return out, shares, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("escrow: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("escrow: %w", err)
	}
	return aead, nil
}

// ParseBundle reads a bundle file's contents and checks its header; it
// does not decrypt anything (Open does).
func ParseBundle(b []byte) (*Bundle, error) {
	if len(b) > MaxBundle {
		return nil, fmt.Errorf("%w: %d bytes, over %d", ErrBundle, len(b), MaxBundle)
	}
	rest, ok := bytes.CutPrefix(b, []byte(bundleMagic))
	if !ok {
		if bytes.HasPrefix(b, []byte("certwright key escrow bundle v")) {
			return nil, fmt.Errorf("%w: the bundle's first line is %q", ErrNewerFormat, firstLine(b))
		}
		return nil, fmt.Errorf("%w: it does not start with %q", ErrBundle, bundleMagic[:len(bundleMagic)-1])
	}
	end := bytes.IndexByte(rest[:min(len(rest), maxHeader+1)], '\n')
	if end < 0 {
		return nil, fmt.Errorf("%w: no header line within %d bytes (truncated?)", ErrBundle, maxHeader)
	}
	hb := rest[:end]
	var h Header
	dec := json.NewDecoder(bytes.NewReader(hb))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		return nil, fmt.Errorf("%w: header: %w", ErrBundle, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: header: more than one JSON value", ErrBundle)
	}
	if err := h.check(); err != nil {
		return nil, err
	}
	aadLen := len(bundleMagic) + end + 1
	body := b[aadLen:]
	if len(body) < 12+16 {
		return nil, fmt.Errorf("%w: the encrypted contents are missing (truncated?)", ErrBundle)
	}
	return &Bundle{Header: h, aad: b[:aadLen], nonce: body[:12], sealed: body[12:]}, nil
}

func firstLine(b []byte) string {
	b = b[:min(len(b), 80)]
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// check validates a parsed header.
func (h *Header) check() error {
	if h.Format > FormatVersion {
		return fmt.Errorf("%w: format %d, this build reads up to %d", ErrNewerFormat, h.Format, FormatVersion)
	}
	if h.Format != FormatVersion {
		return fmt.Errorf("%w: header: format %d", ErrBundle, h.Format)
	}
	if !hex32.MatchString(h.SetID) {
		return fmt.Errorf("%w: header: set ID %q is not 32 hex digits", ErrBundle, h.SetID)
	}
	if err := checkCounts(h.Shares, h.Threshold); err != nil {
		return fmt.Errorf("%w: header: %w", ErrBundle, err)
	}
	if len(h.ShareSHA256) != h.Shares {
		return fmt.Errorf("%w: header: %d share digests for %d shares", ErrBundle, len(h.ShareSHA256), h.Shares)
	}
	for _, d := range append([]string{h.ContentsSHA256}, h.ShareSHA256...) {
		if !hex64.MatchString(d) {
			return fmt.Errorf("%w: header: %q is not a SHA-256 in hex", ErrBundle, d)
		}
	}
	if len(h.Keys) > maxKeys {
		return fmt.Errorf("%w: header: %d keys, over %d", ErrBundle, len(h.Keys), maxKeys)
	}
	return nil
}

// setID returns the header's set ID as bytes (checked by ParseBundle).
func (h *Header) setID() [SetIDSize]byte {
	var id [SetIDSize]byte
	hex.Decode(id[:], []byte(h.SetID))
	return id
}

// checkShares checks that shares are of this bundle's set, distinct, the
// ones made with it, and at least the threshold; it returns the first
// threshold of them.
func (b *Bundle) checkShares(shares []*Share) ([]*Share, error) {
	h := &b.Header
	id := h.setID()
	seen := make(map[int]string, len(shares))
	for _, s := range shares {
		if s.SetID != id {
			return nil, fmt.Errorf("%w: %s is a share of set %x, not of this bundle's set %s: it belongs to another escrow set (another `keys backup` run)",
				ErrWrongSet, s.Name, s.SetID, h.SetID)
		}
		if s.Threshold != h.Threshold || s.Total != h.Shares {
			return nil, fmt.Errorf("%w: %s says %d of %d shares are needed, the bundle says %d of %d: its header was altered",
				ErrWrongSet, s.Name, s.Threshold, s.Total, h.Threshold, h.Shares)
		}
		if other, dup := seen[s.Index]; dup {
			return nil, fmt.Errorf("%w: %s and %s are both share %d of %d", ErrDuplicateShare, other, s.Name, s.Index, s.Total)
		}
		seen[s.Index] = s.Name
		if subtle.ConstantTimeCompare([]byte(s.digest()), []byte(h.ShareSHA256[s.Index-1])) != 1 {
			return nil, fmt.Errorf("%w: %s (share %d of %d) is not the share made with this bundle: it was altered (its checksum recomputed), or the bundle's header was",
				ErrShareMismatch, s.Name, s.Index, s.Total)
		}
	}
	if len(shares) < h.Threshold {
		return nil, fmt.Errorf("%w: %d of the %d shares needed (of %d made) were given: %d more needed",
			ErrTooFewShares, len(shares), h.Threshold, h.Shares, h.Threshold-len(shares))
	}
	return shares[:h.Threshold], nil
}

// Open checks shares against the bundle, reconstructs the backup key and
// decrypts the contents. The caller clears them when done (Clear).
func (b *Bundle) Open(shares []*Share) (*Contents, error) {
	use, err := b.checkShares(shares)
	if err != nil {
		return nil, err
	}
	xs := make([]byte, len(use))
	ys := make([][]byte, len(use))
	for i, s := range use {
		xs[i], ys[i] = byte(s.Index), s.Value
	}
	key, err := combine(xs, ys)
	if err != nil {
		return nil, err
	}
	defer clear(key)
	if len(key) != keySize {
		return nil, fmt.Errorf("%w: the shares hold a %d-byte key, want %d", ErrShareMismatch, len(key), keySize)
	}
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	plain, err := aead.Open(nil, b.nonce, b.sealed, b.aad)
	if err != nil {
		return nil, ErrOpen
	}
	defer clear(plain)
	sum := sha256.Sum256(plain)
	if hex.EncodeToString(sum[:]) != b.Header.ContentsSHA256 {
		return nil, fmt.Errorf("%w: the contents do not match their SHA-256", ErrOpen)
	}
	c := &Contents{}
	dec := json.NewDecoder(bytes.NewReader(plain))
	dec.DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		return nil, fmt.Errorf("%w: contents: %w", ErrBundle, err)
	}
	if len(c.Blobs) != len(b.Header.Keys) {
		c.Clear()
		return nil, fmt.Errorf("%w: %d wrapped keys, the header lists %d", ErrBundle, len(c.Blobs), len(b.Header.Keys))
	}
	return c, nil
}

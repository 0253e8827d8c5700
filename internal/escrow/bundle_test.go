package escrow

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// tSet is a sealed 3-of-5 set of two keys, with its share files.
type tSet struct {
	bundle   []byte
	shares   []*Share
	files    [][]byte
	contents *Contents
}

func tSeal(t testing.TB, n, m int) *tSet {
	t.Helper()
	c := &Contents{KEK: make([]byte, 32), Blobs: [][]byte{[]byte("wrapped CA key"), []byte("wrapped audit key")}}
	rand.Read(c.KEK)
	h := Header{Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), InstanceID: "0123abcd", CertwrightVersion: "test",
		Keys: []Key{{Purpose: "ca:ca_1", Provider: "software", ID: "k1", Algorithm: "ecdsa-p256"}, {Purpose: "audit:a1", Provider: "software", ID: "k2", Algorithm: "ed25519"}}}
	want := &Contents{KEK: bytes.Clone(c.KEK), Blobs: [][]byte{bytes.Clone(c.Blobs[0]), bytes.Clone(c.Blobs[1])}}
	b, shares, err := Seal(h, c, n, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &tSet{bundle: b, shares: shares, contents: want}
	for _, sh := range shares {
		s.files = append(s.files, sh.Encode())
	}
	return s
}

// tParse reads share files i (0-based) of s as share-N.txt.
func (s *tSet) tParse(t *testing.T, idx ...int) []*Share {
	t.Helper()
	var out []*Share
	for _, i := range idx {
		sh, err := ParseShare(fmt.Sprintf("share-%d.txt", i+1), s.files[i])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, sh)
	}
	return out
}

func tOpen(t *testing.T, bundle []byte, shares []*Share) (*Contents, error) {
	t.Helper()
	b, err := ParseBundle(bundle)
	if err != nil {
		return nil, err
	}
	return b.Open(shares)
}

func TestSealOpen(t *testing.T) {
	t.Parallel()
	s := tSeal(t, 5, 3)
	if !bytes.HasPrefix(s.bundle, []byte(bundleMagic)) {
		t.Fatalf("bundle starts %q", s.bundle[:40])
	}
	if bytes.Contains(s.bundle, s.contents.KEK) || bytes.Contains(s.bundle, []byte("wrapped CA key")) {
		t.Fatal("the bundle holds the contents in the clear")
	}
	subsets(5, 3, 100, func(idx []int) {
		c, err := tOpen(t, s.bundle, s.tParse(t, idx...))
		if err != nil {
			t.Fatalf("shares %v: %v", idx, err)
		}
		if !bytes.Equal(c.KEK, s.contents.KEK) || len(c.Blobs) != 2 || !bytes.Equal(c.Blobs[1], s.contents.Blobs[1]) {
			t.Fatalf("shares %v: contents differ", idx)
		}
	})
	// All five, in any order.
	if _, err := tOpen(t, s.bundle, s.tParse(t, 4, 0, 3, 2, 1)); err != nil {
		t.Fatal(err)
	}
	b, err := ParseBundle(s.bundle)
	if err != nil {
		t.Fatal(err)
	}
	h := b.Header
	if h.Threshold != 3 || h.Shares != 5 || len(h.ShareSHA256) != 5 || h.InstanceID != "0123abcd" || len(h.Keys) != 2 || h.Keys[0].Purpose != "ca:ca_1" {
		t.Fatalf("header %+v", h)
	}
	sh := s.tParse(t, 1)[0]
	if fmt.Sprintf("%x", sh.SetID) != h.SetID || sh.Index != 2 || sh.Threshold != 3 || sh.Total != 5 {
		t.Fatalf("share 2: %+v, header set %s", sh, h.SetID)
	}
	for _, want := range []string{"Set: " + h.SetID, "Share: 2 of 5", "Threshold: 3", "BEGIN CERTWRIGHT KEY SHARE"} {
		if !strings.Contains(string(s.files[1]), want) {
			t.Errorf("share file lacks %q:\n%s", want, s.files[1])
		}
	}
}

// tEditShare re-encodes share i of s after edit, checksum recomputed.
func (s *tSet) tEditShare(t *testing.T, i int, edit func(*Share)) *Share {
	t.Helper()
	sh := s.tParse(t, i)[0]
	edit(sh)
	back, err := ParseShare("edited.txt", sh.Encode())
	if err != nil {
		t.Fatal(err)
	}
	return back
}

// tEditHeader rewrites the bundle's header line (its ciphertext as it was).
func tEditHeader(t *testing.T, bundle []byte, edit func(*Header)) []byte {
	t.Helper()
	b, err := ParseBundle(bundle)
	if err != nil {
		t.Fatal(err)
	}
	h := b.Header
	edit(&h)
	hb, err := json.Marshal(&h)
	if err != nil {
		t.Fatal(err)
	}
	out := append([]byte(bundleMagic), hb...)
	out = append(out, '\n')
	out = append(out, b.nonce...)
	return append(out, b.sealed...)
}

func TestOpenRefuses(t *testing.T) {
	t.Parallel()
	s := tSeal(t, 5, 3)
	other := tSeal(t, 5, 3)
	corrupt := bytes.Clone(s.files[2])
	// Change one base64 character of the body into another valid one.
	body := bytes.Index(corrupt, []byte("\n\n")) + 5
	if corrupt[body] == 'A' {
		corrupt[body] = 'B'
	} else {
		corrupt[body] = 'A'
	}
	headerEdited := bytes.Replace(s.files[2], []byte("Threshold: 3"), []byte("Threshold: 2"), 1)
	flipped := bytes.Clone(s.bundle)
	flipped[len(flipped)-20] ^= 1
	altered := s.tEditShare(t, 2, func(sh *Share) { sh.Value[0] ^= 1 })

	for _, tc := range []struct {
		name   string
		bundle []byte
		shares func(t *testing.T) []*Share
		// file is a share file that must fail to parse, instead.
		file []byte
		want error
		msg  string
	}{
		{name: "two shares of three", shares: func(t *testing.T) []*Share { return s.tParse(t, 0, 1) }, want: ErrTooFewShares, msg: "2 of the 3 shares"},
		{name: "no shares", shares: func(t *testing.T) []*Share { return nil }, want: ErrTooFewShares, msg: "0 of the 3"},
		{name: "corrupted share", file: corrupt, want: ErrShare, msg: "share-3.txt"},
		{name: "truncated share", file: s.files[2][:len(s.files[2])/2], want: ErrShare, msg: "share-3.txt"},
		{name: "header edited", file: headerEdited, want: ErrShare, msg: "edited"},
		{name: "share of another set", shares: func(t *testing.T) []*Share { return append(s.tParse(t, 0, 1), other.tParse(t, 2)...) }, want: ErrWrongSet, msg: "another escrow set"},
		{name: "threshold mixed up", shares: func(t *testing.T) []*Share {
			return append(s.tParse(t, 0, 1), s.tEditShare(t, 2, func(sh *Share) { sh.Threshold = 2 }))
		}, want: ErrWrongSet, msg: "2 of 5"},
		{name: "total mixed up", shares: func(t *testing.T) []*Share {
			return append(s.tParse(t, 0, 1), s.tEditShare(t, 2, func(sh *Share) { sh.Total = 4 }))
		}, want: ErrWrongSet, msg: "3 of 4"},
		{name: "same share twice", shares: func(t *testing.T) []*Share { return s.tParse(t, 0, 1, 1) }, want: ErrDuplicateShare, msg: "share-2.txt and share-2.txt"},
		{name: "share altered, checksum recomputed", shares: func(t *testing.T) []*Share { return append(s.tParse(t, 0, 1), altered) }, want: ErrShareMismatch, msg: "edited.txt"},
		{name: "ciphertext flipped", bundle: flipped, shares: func(t *testing.T) []*Share { return s.tParse(t, 0, 1, 2) }, want: ErrOpen},
		{name: "header changed", bundle: tEditHeader(t, s.bundle, func(h *Header) { h.InstanceID = "ffff" }), shares: func(t *testing.T) []*Share { return s.tParse(t, 0, 1, 2) }, want: ErrOpen},
		{name: "keys listed changed", bundle: tEditHeader(t, s.bundle, func(h *Header) { h.Keys[0].Purpose = "ca:other" }), shares: func(t *testing.T) []*Share { return s.tParse(t, 0, 1, 2) }, want: ErrOpen},
		// Someone who alters a share and the bundle's record of it still
		// cannot make the bundle open.
		{name: "share and its digest altered", bundle: tEditHeader(t, s.bundle, func(h *Header) { h.ShareSHA256[2] = altered.digest() }), shares: func(t *testing.T) []*Share { return append(s.tParse(t, 0, 1), altered) }, want: ErrOpen},
		{name: "truncated bundle", bundle: s.bundle[:len(s.bundle)-5], shares: func(t *testing.T) []*Share { return s.tParse(t, 0, 1, 2) }, want: ErrOpen},
		{name: "header only", bundle: s.bundle[:bytes.IndexByte(s.bundle[len(bundleMagic):], '\n')+len(bundleMagic)+1], want: ErrBundle, msg: "missing"},
		{name: "not a bundle", bundle: []byte("PK\x03\x04 a zip file"), want: ErrBundle},
		{name: "newer format", bundle: append([]byte("certwright key escrow bundle v2\n"), s.bundle[len(bundleMagic):]...), want: ErrNewerFormat},
		{name: "newer format in header", bundle: tEditHeader(t, s.bundle, func(h *Header) { h.Format = 2 }), want: ErrNewerFormat},
		{name: "bad counts in header", bundle: tEditHeader(t, s.bundle, func(h *Header) { h.Threshold = 1 }), want: ErrBundle},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var err error
			if tc.file != nil {
				_, err = ParseShare("share-3.txt", tc.file)
			} else {
				bundle := tc.bundle
				if bundle == nil {
					bundle = s.bundle
				}
				var shares []*Share
				if tc.shares != nil {
					shares = tc.shares(t)
				}
				_, err = tOpen(t, bundle, shares)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not say %q", err, tc.msg)
			}
		})
	}
}

func TestSealRefuses(t *testing.T) {
	t.Parallel()
	c := &Contents{KEK: make([]byte, 32)}
	for _, tc := range []struct{ n, m int }{{5, 1}, {2, 3}, {256, 3}} {
		if _, _, err := Seal(Header{}, c, tc.n, tc.m, nil); !errors.Is(err, ErrCounts) {
			t.Errorf("Seal %d of %d: %v", tc.m, tc.n, err)
		}
	}
	if _, _, err := Seal(Header{Keys: []Key{{ID: "x"}}}, c, 3, 2, nil); err == nil {
		t.Error("Seal with a key listed but no blob succeeded")
	}
}

func FuzzParseShare(f *testing.F) {
	s := tSeal(f, 5, 3)
	for _, b := range s.files {
		f.Add(b)
	}
	f.Add([]byte("-----BEGIN CERTWRIGHT KEY SHARE-----\n\nAQ==\n-----END CERTWRIGHT KEY SHARE-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		sh, err := ParseShare("f", b)
		if err != nil {
			if !errors.Is(err, ErrShare) {
				t.Fatalf("error not wrapping ErrShare: %v", err)
			}
			return
		}
		// What parses re-encodes to a share that parses the same.
		back, err := ParseShare("f", sh.Encode())
		if err != nil || back.SetID != sh.SetID || back.Index != sh.Index || !bytes.Equal(back.Value, sh.Value) {
			t.Fatalf("round trip: %+v, %v", back, err)
		}
	})
}

func FuzzParseBundle(f *testing.F) {
	s := tSeal(f, 3, 2)
	f.Add(s.bundle)
	f.Add([]byte(bundleMagic + "{}\n"))
	f.Add([]byte(bundleMagic + `{"format":1}` + "\n0123456789abcdef0123456789abcdef"))
	shares := make([]*Share, 0, 2)
	for i := range 2 {
		sh, err := ParseShare("s", s.files[i])
		if err != nil {
			f.Fatal(err)
		}
		shares = append(shares, sh)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		bun, err := ParseBundle(b)
		if err != nil {
			return
		}
		c, err := bun.Open(shares)
		if err == nil && !bytes.Equal(b, s.bundle) {
			t.Fatalf("a changed bundle opened: %d keys", len(c.Blobs))
		}
	})
}

package ocsp_test

import (
	"bytes"
	"crypto"
	"crypto/sha1"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
	xocsp "golang.org/x/crypto/ocsp"

	"github.com/certwright/certwright/internal/pki"
	"github.com/certwright/certwright/internal/revoke/ocsp"
)

func TestParseRequestFromXCrypto(t *testing.T) {
	t.Parallel()
	p := newPKI(t, time.Now(), pki.ECDSAP256)
	iss, err := ocsp.NewIssuer(p.inter)
	if err != nil {
		t.Fatal(err)
	}
	other, err := ocsp.NewIssuer(p.root)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512} {
		t.Run(h.String(), func(t *testing.T) {
			t.Parallel()
			der, err := xocsp.CreateRequest(p.leaf, p.inter, &xocsp.RequestOptions{Hash: h})
			if err != nil {
				t.Fatal(err)
			}
			req, err := ocsp.ParseRequest(der)
			if err != nil {
				t.Fatalf("ParseRequest: %v", err)
			}
			if req.Hash != h || req.Serial.Cmp(p.leaf.SerialNumber) != 0 || req.Signed || req.Nonce != nil {
				t.Errorf("got hash %v serial %x signed %v nonce %x; want %v %x", req.Hash, req.Serial, req.Signed, req.Nonce, h, p.leaf.SerialNumber)
			}
			if !iss.Matches(req.CertID) {
				t.Error("issuer does not match its own request")
			}
			if other.Matches(req.CertID) {
				t.Error("root matches a request about the intermediate's certificate")
			}
			want, err := iss.CertID(h, p.leaf.SerialNumber)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(want.NameHash, req.NameHash) || !bytes.Equal(want.KeyHash, req.KeyHash) {
				t.Error("Issuer.CertID hashes differ from x/crypto's")
			}
		})
	}
}

func TestParseRequestFromOpenSSL(t *testing.T) {
	t.Parallel()
	p := newPKI(t, time.Now(), pki.ECDSAP256)
	f := p.files(t)
	iss, err := ocsp.NewIssuer(p.inter)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		args   []string
		hash   crypto.Hash
		nonce  bool
		signed bool
	}{
		{"sha1 nonce", []string{"-cert", f["leaf.pem"]}, crypto.SHA1, true, false},
		{"sha1 no_nonce", []string{"-no_nonce", "-cert", f["leaf.pem"]}, crypto.SHA1, false, false},
		{"sha256 nonce", []string{"-sha256", "-cert", f["leaf.pem"]}, crypto.SHA256, true, false},
		{"sha256 no_nonce", []string{"-no_nonce", "-sha256", "-cert", f["leaf.pem"]}, crypto.SHA256, false, false},
		{"sha512 no_nonce", []string{"-no_nonce", "-sha512", "-cert", f["leaf.pem"]}, crypto.SHA512, false, false},
		{"signed", []string{"-cert", f["leaf.pem"], "-signer", f["leaf.pem"], "-signkey", f["leaf.key"]}, crypto.SHA1, true, true},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(f["dir"], "req"+string(rune('a'+i))+".der")
			args := append([]string{"ocsp", "-issuer", f["ca.pem"]}, c.args...)
			openssl(t, append(args, "-reqout", out)...)
			der, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			req, err := ocsp.ParseRequest(der)
			if err != nil {
				t.Fatalf("ParseRequest(% x): %v", der, err)
			}
			if req.Hash != c.hash || req.Serial.Cmp(p.leaf.SerialNumber) != 0 || !iss.Matches(req.CertID) {
				t.Errorf("got hash %v serial %x matches %v", req.Hash, req.Serial, iss.Matches(req.CertID))
			}
			if (len(req.Nonce) > 0) != c.nonce || req.Signed != c.signed {
				t.Errorf("nonce %x signed %v; want nonce %v signed %v", req.Nonce, req.Signed, c.nonce, c.signed)
			}
			if c.nonce && len(req.Nonce) != 16 {
				t.Errorf("openssl sends a 16-octet nonce, got %d", len(req.Nonce))
			}
		})
	}
}

// reqSpec builds OCSP requests field by field, so each bad case changes one
// thing from a valid request.
type reqSpec struct {
	hashOID  []byte // OID content octets
	params   []byte // raw element(s) after the OID; nil: NULL
	noParams bool
	nameHash []byte
	keyHash  []byte
	serial   []byte // INTEGER content octets
	count    int    // Request entries; 0 means 1
	version  []byte // raw element before requestList
	exts     []byte // raw content of [2]
	sig      []byte // raw element after tbsRequest
	trailing []byte
}

var sha1OID = []byte{0x2b, 0x0e, 0x03, 0x02, 0x1a}

func goodSpec() reqSpec {
	return reqSpec{
		hashOID:  sha1OID,
		nameHash: bytes.Repeat([]byte{0xaa}, 20),
		keyHash:  bytes.Repeat([]byte{0xbb}, 20),
		serial:   []byte{0x01, 0x02, 0x03},
	}
}

func (s reqSpec) der() []byte {
	b := cryptobyte.NewBuilder(nil)
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddBytes(s.version)
			b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
				n := max(s.count, 1)
				for range n {
					b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
							b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
								b.AddASN1(asn1.OBJECT_IDENTIFIER, func(b *cryptobyte.Builder) { b.AddBytes(s.hashOID) })
								switch {
								case s.params != nil:
									b.AddBytes(s.params)
								case !s.noParams:
									b.AddASN1NULL()
								}
							})
							b.AddASN1OctetString(s.nameHash)
							b.AddASN1OctetString(s.keyHash)
							b.AddASN1(asn1.INTEGER, func(b *cryptobyte.Builder) { b.AddBytes(s.serial) })
						})
					})
				}
			})
			if s.exts != nil {
				b.AddASN1(asn1.Tag(2).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) { b.AddBytes(s.exts) })
			}
		})
		b.AddBytes(s.sig)
	})
	return append(b.BytesOrPanic(), s.trailing...)
}

// ext encodes one Extension.
func ext(oid []byte, critical bool, value []byte) []byte {
	b := cryptobyte.NewBuilder(nil)
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(asn1.OBJECT_IDENTIFIER, func(b *cryptobyte.Builder) { b.AddBytes(oid) })
		if critical {
			b.AddASN1Boolean(true)
		}
		b.AddASN1OctetString(value)
	})
	return b.BytesOrPanic()
}

func seqOf(elems ...[]byte) []byte {
	b := cryptobyte.NewBuilder(nil)
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for _, e := range elems {
			b.AddBytes(e)
		}
	})
	return b.BytesOrPanic()
}

var (
	oidNonce   = []byte{0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x02}
	oidMadeUp  = []byte{0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x7f}
	nonceValue = []byte{0x04, 0x04, 1, 2, 3, 4}
)

func TestParseRequestAccepts(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		spec  func(*reqSpec)
		check func(*testing.T, *ocsp.Request)
	}{
		{"NULL params", func(*reqSpec) {}, nil},
		{"absent params", func(s *reqSpec) { s.noParams = true }, nil},
		{"explicit version v1", func(s *reqSpec) { s.version = []byte{0xa0, 0x03, 0x02, 0x01, 0x00} }, nil},
		{"zero serial", func(s *reqSpec) { s.serial = []byte{0x00} }, nil},
		{"nonce", func(s *reqSpec) { s.exts = seqOf(ext(oidNonce, false, nonceValue)) }, func(t *testing.T, r *ocsp.Request) {
			if !bytes.Equal(r.Nonce, []byte{1, 2, 3, 4}) {
				t.Errorf("nonce %x", r.Nonce)
			}
		}},
		{"unwrapped nonce", func(s *reqSpec) { s.exts = seqOf(ext(oidNonce, false, []byte{9, 9})) }, func(t *testing.T, r *ocsp.Request) {
			if !bytes.Equal(r.Nonce, []byte{9, 9}) {
				t.Errorf("nonce %x", r.Nonce)
			}
		}},
		{"critical nonce", func(s *reqSpec) { s.exts = seqOf(ext(oidNonce, true, nonceValue)) }, nil},
		{"unknown non-critical extension", func(s *reqSpec) { s.exts = seqOf(ext(oidMadeUp, false, []byte{5, 0})) }, nil},
		{"signature without certs", func(s *reqSpec) {
			s.sig = []byte{0xa0, 0x10, 0x30, 0x0e, 0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02, 0x03, 0x00}
		}, func(t *testing.T, r *ocsp.Request) {
			if !r.Signed {
				t.Error("Signed is false")
			}
		}},
		{"sha256", func(s *reqSpec) {
			s.hashOID = []byte{0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01}
			s.nameHash, s.keyHash = make([]byte, 32), make([]byte, 32)
		}, func(t *testing.T, r *ocsp.Request) {
			if r.Hash != crypto.SHA256 {
				t.Errorf("hash %v", r.Hash)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := goodSpec()
			c.spec(&s)
			r, err := ocsp.ParseRequest(s.der())
			if err != nil {
				t.Fatalf("ParseRequest: %v", err)
			}
			if c.check != nil {
				c.check(t, r)
			}
		})
	}
}

func TestParseRequestRejects(t *testing.T) {
	t.Parallel()
	valid := goodSpec().der()
	md5 := []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x05}
	cases := []struct {
		name   string
		der    func() []byte
		err    error
		status ocsp.ResponseStatus
	}{
		{"empty", func() []byte { return nil }, ocsp.ErrMalformed, ocsp.StatusMalformed},
		{"garbage", func() []byte { return []byte("GET / HTTP/1.1\r\n\r\n") }, ocsp.ErrMalformed, ocsp.StatusMalformed},
		{"truncated", func() []byte { return valid[:len(valid)-1] }, ocsp.ErrMalformed, ocsp.StatusMalformed},
		{"truncated header", func() []byte { return valid[:1] }, ocsp.ErrMalformed, ocsp.StatusMalformed},
		{"trailing bytes", func() []byte { return append(append([]byte{}, valid...), 0x00) }, ocsp.ErrMalformed, ocsp.StatusMalformed},
		{"empty extensions element", func() []byte { s := goodSpec(); s.exts = []byte{}; return s.der() }, ocsp.ErrMalformed, ocsp.StatusMalformed},
		{"oversize", func() []byte {
			s := goodSpec()
			s.exts = seqOf(ext(oidMadeUp, false, make([]byte, ocsp.MaxRequestBytes)))
			return s.der()
		}, ocsp.ErrMalformed, ocsp.StatusMalformed},
		{"indefinite length", func() []byte { d := append([]byte{}, valid...); d[1] = 0x80; return append(d, 0, 0) }, ocsp.ErrMalformed, ocsp.StatusMalformed},
		{"non-minimal length", func() []byte {
			return append([]byte{0x30, 0x81, byte(len(valid) - 2)}, valid[2:]...)
		}, ocsp.ErrMalformed, ocsp.StatusMalformed},
		{"two requests", func() []byte { s := goodSpec(); s.count = 2; return s.der() }, ocsp.ErrMultipleRequests, ocsp.StatusMalformed},
		{"no requests", func() []byte {
			return []byte{0x30, 0x04, 0x30, 0x02, 0x30, 0x00}
		}, ocsp.ErrMalformed, ocsp.StatusMalformed},
		{"MD5", func() []byte {
			s := goodSpec()
			s.hashOID, s.nameHash, s.keyHash = md5, make([]byte, 16), make([]byte, 16)
			return s.der()
		}, ocsp.ErrUnsupportedHash, ocsp.StatusUnauthorized},
		{"made-up hash OID", func() []byte { s := goodSpec(); s.hashOID = oidMadeUp; return s.der() }, ocsp.ErrUnsupportedHash, ocsp.StatusUnauthorized},
		{"invalid OID encoding", func() []byte { s := goodSpec(); s.hashOID = []byte{0x2b, 0x80, 0x01}; return s.der() }, ocsp.ErrMalformed, ocsp.StatusMalformed},
		{"empty OID", func() []byte { s := goodSpec(); s.hashOID = []byte{}; return s.der() }, ocsp.ErrMalformed, ocsp.StatusMalformed},
		{"non-NULL params", func() []byte { s := goodSpec(); s.params = []byte{0x04, 0x00}; return s.der() }, ocsp.ErrMalformed, ocsp.StatusMalformed},
		{"short name hash", func() []byte { s := goodSpec(); s.nameHash = s.nameHash[:19]; return s.der() }, ocsp.ErrMalformed, ocsp.StatusMalformed},
		{"SHA-256 length under SHA-1", func() []byte {
			s := goodSpec()
			s.nameHash, s.keyHash = make([]byte, 32), make([]byte, 32)
			return s.der()
		}, ocsp.ErrMalformed, ocsp.StatusMalformed},
		{"long key hash", func() []byte { s := goodSpec(); s.keyHash = make([]byte, 21); return s.der() }, ocsp.ErrMalformed, ocsp.StatusMalformed},
		{"negative serial", func() []byte { s := goodSpec(); s.serial = []byte{0xff, 0x01}; return s.der() }, ocsp.ErrMalformed, ocsp.StatusMalformed},
		{"zero-length serial", func() []byte { s := goodSpec(); s.serial = []byte{}; return s.der() }, ocsp.ErrMalformed, ocsp.StatusMalformed},
		{"non-minimal serial", func() []byte { s := goodSpec(); s.serial = []byte{0x00, 0x01}; return s.der() }, ocsp.ErrMalformed, ocsp.StatusMalformed},
		{"version v2", func() []byte { s := goodSpec(); s.version = []byte{0xa0, 0x03, 0x02, 0x01, 0x01}; return s.der() }, ocsp.ErrMalformed, ocsp.StatusMalformed},
		{"empty extensions", func() []byte { s := goodSpec(); s.exts = seqOf(); return s.der() }, ocsp.ErrMalformed, ocsp.StatusMalformed},
		{"unknown critical extension", func() []byte {
			s := goodSpec()
			s.exts = seqOf(ext(oidMadeUp, true, []byte{5, 0}))
			return s.der()
		}, ocsp.ErrMalformed, ocsp.StatusMalformed},
		{"signature not a SEQUENCE", func() []byte { s := goodSpec(); s.sig = []byte{0xa0, 0x02, 0x05, 0x00}; return s.der() }, ocsp.ErrMalformed, ocsp.StatusMalformed},
		{"high tag number", func() []byte { return []byte{0x1f, 0x81, 0x00, 0x00} }, ocsp.ErrMalformed, ocsp.StatusMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r, err := ocsp.ParseRequest(c.der())
			if !errors.Is(err, c.err) {
				t.Fatalf("ParseRequest = %v, %v; want %v", r, err, c.err)
			}
			if r != nil {
				t.Error("non-nil request with an error")
			}
			if got := ocsp.StatusFor(err); got != c.status {
				t.Errorf("StatusFor = %v, want %v", got, c.status)
			}
			if !strings.HasPrefix(err.Error(), "ocsp: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestIssuerCertIDAndMatches(t *testing.T) { // not parallel: AllocsPerRun
	p := newPKI(t, time.Now(), pki.ECDSAP256)
	iss, err := ocsp.NewIssuer(p.inter)
	if err != nil {
		t.Fatal(err)
	}
	id, err := iss.CertID(crypto.SHA1, p.leaf.SerialNumber)
	if err != nil {
		t.Fatal(err)
	}
	want := sha1.Sum(p.inter.RawSubject)
	if !bytes.Equal(id.NameHash, want[:]) {
		t.Errorf("name hash %x, want %x", id.NameHash, want)
	}
	if !iss.Matches(id) {
		t.Fatal("no match")
	}
	bad := id
	bad.KeyHash = append([]byte{}, id.KeyHash...)
	bad.KeyHash[0] ^= 1
	if iss.Matches(bad) {
		t.Error("matches a different key hash")
	}
	bad = id
	bad.Hash = crypto.SHA256
	if iss.Matches(bad) {
		t.Error("matches SHA-1 hashes labelled SHA-256")
	}
	bad = id
	bad.Hash = crypto.MD5
	if iss.Matches(bad) {
		t.Error("matches an unsupported hash")
	}
	if _, err := iss.CertID(crypto.MD5, p.leaf.SerialNumber); !errors.Is(err, ocsp.ErrUnsupportedHash) {
		t.Errorf("CertID(MD5) = %v", err)
	}
	if n := testing.AllocsPerRun(100, func() { iss.Matches(id) }); n != 0 {
		t.Errorf("Matches allocates %v times", n)
	}
}

func TestErrorResponse(t *testing.T) {
	t.Parallel()
	for _, s := range []ocsp.ResponseStatus{ocsp.StatusMalformed, ocsp.StatusInternalError, ocsp.StatusTryLater, ocsp.StatusSigRequired, ocsp.StatusUnauthorized} {
		der := ocsp.ErrorResponse(s)
		_, err := xocsp.ParseResponse(der, nil)
		var re xocsp.ResponseError
		if !errors.As(err, &re) || int(re.Status) != int(s) {
			t.Errorf("%v: x/crypto reads %v", s, err)
		}
		der[4] = 0xff
		if again := ocsp.ErrorResponse(s); again[4] != byte(s) {
			t.Errorf("%v: ErrorResponse shares its slice", s)
		}
	}
	if got := ocsp.ErrorResponse(ocsp.StatusSuccessful); got[4] != byte(ocsp.StatusInternalError) {
		t.Errorf("ErrorResponse(Successful) = % x, want internalError", got)
	}
	if got := ocsp.StatusFor(errors.New("other")); got != ocsp.StatusInternalError {
		t.Errorf("StatusFor(other) = %v", got)
	}
}

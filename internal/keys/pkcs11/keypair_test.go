package pkcs11

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/keys/pkcs11/softhsmtest"
	"github.com/certwright/certwright/internal/pki"
)

// digest hashes msg with h.
func digest(h crypto.Hash, msg string) []byte {
	w := h.New()
	w.Write([]byte(msg))
	return w.Sum(nil)
}

func TestGenerateSignVerify(t *testing.T) {
	st := newSoftToken(t, "gen")
	p := open(t, st.config(t))
	ctx := context.Background()
	hashes := []crypto.Hash{crypto.SHA256, crypto.SHA384, crypto.SHA512}
	for i, alg := range []pki.KeyAlgorithm{pki.ECDSAP256, pki.ECDSAP384, pki.RSA2048, pki.RSA3072, pki.RSA4096} {
		t.Run(string(alg), func(t *testing.T) {
			id := []byte{0xca, byte(i)}
			sg, err := p.GenerateKey(ctx, alg, "ca-"+string(alg), id)
			if err != nil {
				t.Fatalf("GenerateKey: %v", err)
			}
			if sg.Algorithm() != alg || sg.Label() != "ca-"+string(alg) || !bytes.Equal(sg.ID(), id) {
				t.Fatalf("signer is %s %q %x", sg.Algorithm(), sg.Label(), sg.ID())
			}
			if got, err := pki.AlgorithmOf(sg.Public()); err != nil || got != alg {
				t.Fatalf("public key is %v (%v), want %s", got, err, alg)
			}
			for _, h := range hashes {
				d := digest(h, "to be signed")
				switch pub := sg.Public().(type) {
				case *ecdsa.PublicKey:
					sig, err := sg.Sign(rand.Reader, d, h)
					if err != nil {
						t.Fatalf("Sign %v: %v", h, err)
					}
					if !ecdsa.VerifyASN1(pub, d, sig) {
						t.Fatalf("ECDSA signature with %v does not verify", h)
					}
					if ecdsa.VerifyASN1(pub, digest(h, "something else"), sig) {
						t.Fatal("ECDSA signature verifies another digest")
					}
				case *rsa.PublicKey:
					sig, err := sg.Sign(rand.Reader, d, h)
					if err != nil {
						t.Fatalf("Sign PKCS #1 v1.5 %v: %v", h, err)
					}
					if err := rsa.VerifyPKCS1v15(pub, h, d, sig); err != nil {
						t.Fatalf("PKCS #1 v1.5 signature with %v: %v", h, err)
					}
					for _, salt := range []int{rsa.PSSSaltLengthEqualsHash, rsa.PSSSaltLengthAuto, 20} {
						opts := &rsa.PSSOptions{SaltLength: salt, Hash: h}
						sig, err := sg.Sign(rand.Reader, d, opts)
						if err != nil {
							t.Fatalf("Sign PSS %v salt %d: %v", h, salt, err)
						}
						// Verify with the salt length asked for, so a
						// token using another one fails here.
						want := salt
						switch salt {
						case rsa.PSSSaltLengthEqualsHash:
							want = h.Size()
						case rsa.PSSSaltLengthAuto:
							want = (pub.N.BitLen()-1+7)/8 - 2 - h.Size()
						}
						if err := rsa.VerifyPSS(pub, h, d, sig, &rsa.PSSOptions{SaltLength: want, Hash: h}); err != nil {
							t.Fatalf("PSS signature with %v salt %d: %v", h, salt, err)
						}
					}
				}
			}
			selfSigned(t, sg)
		})
	}

	t.Run("refused", func(t *testing.T) {
		sg, err := p.GenerateKey(ctx, pki.ECDSAP256, "refusals", []byte{0xee})
		if err != nil {
			t.Fatal(err)
		}
		_, err = sg.Sign(rand.Reader, digest(crypto.SHA1, "x"), crypto.SHA1)
		wantErr(t, err, ErrUnsupported, "SHA-1")
		_, err = sg.Sign(rand.Reader, digest(crypto.SHA256, "x")[:20], crypto.SHA256)
		if err == nil || !strings.Contains(err.Error(), "digest is 20 bytes") {
			t.Fatalf("short digest: %v", err)
		}
		_, err = sg.Sign(rand.Reader, digest(crypto.SHA256, "x"), &rsa.PSSOptions{Hash: crypto.SHA256})
		wantErr(t, err, ErrUnsupported, "PSS")
		_, err = p.GenerateKey(ctx, pki.Ed25519, "ed", []byte{0xed})
		wantErr(t, err, ErrUnsupported, "ed25519")
		_, err = p.GenerateKey(ctx, pki.ECDSAP256, "", []byte{1})
		wantErr(t, err, ErrConfig, "label")
		_, err = p.GenerateKey(ctx, pki.ECDSAP256, "no id", nil)
		wantErr(t, err, ErrConfig, "CKA_ID")
	})

	t.Run("existing label or ID", func(t *testing.T) {
		if _, err := p.GenerateKey(ctx, pki.ECDSAP256, "taken", []byte{0x70}); err != nil {
			t.Fatal(err)
		}
		_, err := p.GenerateKey(ctx, pki.ECDSAP384, "taken", []byte{0x71})
		wantErr(t, err, ErrExists, `label "taken"`)
		_, err = p.GenerateKey(ctx, pki.ECDSAP384, "free", []byte{0x70})
		wantErr(t, err, ErrExists, "CKA_ID 70")
		_, err = p.GenerateKEK(ctx, "taken")
		wantErr(t, err, ErrExists, `label "taken"`)
		// Nothing was made under the refused names.
		_, err = p.AdoptKey(ctx, KeySelector{ID: []byte{0x71}})
		wantErr(t, err, ErrNotFound)
	})
}

// selfSigned makes a certificate with sg as crypto/x509 would for a CA and
// checks its signature, so the signer works where the server uses it.
func selfSigned(t *testing.T, sg *Signer) {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "pkcs11 test " + sg.Label()},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, sg.Public(), sg)
	if err != nil {
		t.Fatalf("CreateCertificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := cert.CheckSignatureFrom(cert); err != nil {
		t.Fatalf("self-signed certificate: %v", err)
	}
}

func TestAdoptKey(t *testing.T) {
	st := newSoftToken(t, "adopt")
	ctx := context.Background()
	p := open(t, st.config(t))
	made, err := p.GenerateKey(ctx, pki.ECDSAP384, "ca-1", []byte{0x01, 0x02})
	if err != nil {
		t.Fatal(err)
	}
	rsaMade, err := p.GenerateKey(ctx, pki.RSA2048, "ca-2", []byte{0x03})
	if err != nil {
		t.Fatal(err)
	}
	// A key made by another tool: pkcs11-tool makes EC private keys
	// sensitive and never extractable.
	st.Tool(t, "--keypairgen", "--key-type", "EC:prime256v1", "--label", "tool-ec", "--id", "0a0b", "--usage-sign")
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}

	// A new provider, as after a restart, finds the keys again.
	p = open(t, st.config(t))
	id, err := ParseID("0102")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		sel  KeySelector
		want crypto.PublicKey
	}{
		{KeySelector{Label: "ca-1"}, made.Public()},
		{KeySelector{ID: id}, made.Public()},
		{KeySelector{Label: "ca-2"}, rsaMade.Public()},
		{KeySelector{ID: []byte{0x0a, 0x0b}}, nil},
	} {
		t.Run(tt.sel.String(), func(t *testing.T) {
			sg, err := p.AdoptKey(ctx, tt.sel)
			if err != nil {
				t.Fatalf("AdoptKey: %v", err)
			}
			if tt.want != nil && !sg.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(tt.want) {
				t.Fatal("adopted key's public key differs from the one generated")
			}
			selfSigned(t, sg)
		})
	}

	t.Run("refused", func(t *testing.T) {
		for _, tt := range []struct {
			label string
			flags keyFlags
			want  string
		}{
			{"extractable", keyFlags{extractable: true, sensitive: true, sign: true}, "extractable (CKA_EXTRACTABLE=true)"},
			{"not-sensitive", keyFlags{sensitive: false, sign: true}, "not sensitive (CKA_SENSITIVE=false)"},
			{"no-sign", keyFlags{sensitive: true}, "may not sign"},
			{"public", keyFlags{sensitive: true, sign: true, public: true}, "usable without logging in (CKA_PRIVATE=false)"},
			{"was-extractable", keyFlags{sensitive: true, sign: true, wasExtractable: true}, "was extractable once (CKA_NEVER_EXTRACTABLE=false)"},
			{"derive", keyFlags{sensitive: true, sign: true, derive: true}, "may also derive keys"},
		} {
			id := []byte("id-" + tt.label)
			if err := p.makeECKeyPair(ctx, tt.label, id, tt.flags); err != nil {
				t.Fatal(err)
			}
			_, err := p.AdoptKey(ctx, KeySelector{Label: tt.label})
			wantErr(t, err, ErrUnsafeKey, tt.want, tt.label)
			_, err = p.AdoptKey(ctx, KeySelector{ID: id})
			wantErr(t, err, ErrUnsafeKey, tt.want)
		}

		// A public key object that belongs to another key.
		good := keyFlags{sensitive: true, sign: true}
		for _, l := range []string{"mine", "other"} {
			if err := p.makeECKeyPair(ctx, l, []byte(l), good); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := p.AdoptKey(ctx, KeySelector{Label: "mine"}); err != nil {
			t.Fatalf("adopting a good key before the swap: %v", err)
		}
		if err := p.destroyPublic(ctx, []byte("mine")); err != nil {
			t.Fatal(err)
		}
		_, err := p.AdoptKey(ctx, KeySelector{Label: "mine"})
		wantErr(t, err, ErrUnsafeKey, "no public key object")
		if err := p.setPublicID(ctx, []byte("other"), []byte("mine")); err != nil {
			t.Fatal(err)
		}
		_, err = p.AdoptKey(ctx, KeySelector{Label: "mine"})
		wantErr(t, err, ErrUnsafeKey, "does not match the private key")

		_, err = p.AdoptKey(ctx, KeySelector{Label: "absent"})
		wantErr(t, err, ErrNotFound, `label "absent"`)
		if err := p.makeECKeyPair(ctx, "ca-1", []byte("dup"), good); err != nil {
			t.Fatal(err)
		}
		_, err = p.AdoptKey(ctx, KeySelector{Label: "ca-1"})
		wantErr(t, err, ErrAmbiguous, `label "ca-1"`)
		_, err = p.AdoptKey(ctx, KeySelector{Label: "ca-1", ID: id})
		wantErr(t, err, ErrConfig, "exactly one")
		_, err = ParseID("xyz")
		wantErr(t, err, ErrConfig, "not hex")
	})
}

// TestTokenToolSeesNonExtractable reads the token with OpenSC's
// pkcs11-tool, independently of this package, and checks that the keys
// the provider made are sensitive and were never extractable.
func TestTokenToolSeesNonExtractable(t *testing.T) {
	st := newSoftToken(t, "tool")
	ctx := context.Background()
	p := open(t, st.config(t))
	if _, err := p.GenerateKey(ctx, pki.ECDSAP256, "ca-ec", []byte{0x01}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.GenerateKey(ctx, pki.RSA2048, "ca-rsa", []byte{0x02}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.GenerateKEK(ctx, "kek"); err != nil {
		t.Fatal(err)
	}
	// A key made extractable, so the parsing is shown to tell them apart.
	if err := p.makeECKeyPair(ctx, "loose", []byte{0x03}, keyFlags{extractable: true, sensitive: true, sign: true}); err != nil {
		t.Fatal(err)
	}
	objs := st.Objects(t)
	for _, tt := range []struct {
		kind, label string
		safe        bool
	}{
		{"Private Key Object", "ca-ec", true},
		{"Private Key Object", "ca-rsa", true},
		{"Secret Key Object", "kek", true},
		{"Private Key Object", "loose", false},
	} {
		access, ok := objs[tt.kind+"/"+tt.label]
		if !ok {
			t.Fatalf("pkcs11-tool lists no %s %q; it lists %v", tt.kind, tt.label, objs)
		}
		safe := softhsmtest.Safe(access)
		if safe != tt.safe {
			t.Errorf("%s %q: Access %v; want sensitive and never extractable: %v", tt.kind, tt.label, access, tt.safe)
		}
	}
}

func TestConcurrentSigning(t *testing.T) {
	st := newSoftToken(t, "concurrent")
	ctx := context.Background()
	for _, tt := range []struct {
		maxSessions, wantMax int
	}{
		{0, DefaultMaxSessions},
		{4, 4},
	} {
		t.Run(fmt.Sprintf("max %d", tt.maxSessions), func(t *testing.T) {
			cfg := st.config(t)
			cfg.MaxSessions = tt.maxSessions
			p := open(t, cfg)
			label := fmt.Sprintf("conc-%d", tt.maxSessions)
			sg, err := p.GenerateKey(ctx, pki.ECDSAP256, label, []byte(label))
			if err != nil {
				t.Fatal(err)
			}
			const goroutines, each = 32, 20
			errs := make(chan error, goroutines)
			for g := range goroutines {
				go func() {
					for i := range each {
						d := digest(crypto.SHA256, fmt.Sprintf("%d/%d", g, i))
						sig, err := sg.Sign(rand.Reader, d, crypto.SHA256)
						if err != nil {
							errs <- err
							return
						}
						if !ecdsa.VerifyASN1(sg.Public().(*ecdsa.PublicKey), d, sig) {
							errs <- fmt.Errorf("signature %d/%d does not verify", g, i)
							return
						}
					}
					errs <- nil
				}()
			}
			for range goroutines {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
			s := p.Sessions()
			if s.Max != tt.wantMax {
				t.Errorf("pool bound %d, want %d", s.Max, tt.wantMax)
			}
			if s.Peak > s.Max || s.Opened != s.Peak || s.Open != s.Peak {
				t.Errorf("sessions %+v: more than the bound open, or sessions not reused", s)
			}
		})
	}
}

func TestPublicKeyIsTheTokens(t *testing.T) {
	st := newSoftToken(t, "pub")
	p := open(t, st.config(t))
	sg, err := p.GenerateKey(context.Background(), pki.ECDSAP256, "k", []byte{1})
	if err != nil {
		t.Fatal(err)
	}
	// pkcs11-tool prints the public point the token holds; it must be
	// the one Public returns.
	out := st.Tool(t, "--list-objects", "--type", "pubkey")
	point := sg.Public().(*ecdsa.PublicKey)
	raw, err := point.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, hex.EncodeToString(raw)) {
		t.Fatalf("pkcs11-tool does not show the public point %x:\n%s", raw, out)
	}
}

// TestDestroyAndToken: Token names the token logged in to (label and the
// serial pkcs11-tool shows), and Destroy removes a generated key pair,
// private and public objects, leaving other keys alone.
func TestDestroyAndToken(t *testing.T) {
	st := newSoftToken(t, "destroy")
	p := open(t, st.config(t))
	ctx := context.Background()
	tok := p.Token()
	if tok.Label != "destroy" || tok.Serial == "" || !strings.Contains(st.Run(t, "softhsm2-util", "--show-slots"), tok.Serial) {
		t.Fatalf("Token() = %+v", tok)
	}
	gone, err := p.GenerateKey(ctx, pki.ECDSAP256, "gone", []byte{1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.GenerateKey(ctx, pki.ECDSAP256, "kept", []byte{2}); err != nil {
		t.Fatal(err)
	}
	if err := gone.Destroy(ctx); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	objs := st.Objects(t)
	if _, ok := objs["Private Key Object/gone"]; ok {
		t.Error("the destroyed private key is still in the token")
	}
	if _, ok := objs["Public Key Object/gone"]; ok {
		t.Error("the destroyed public key is still in the token")
	}
	if _, ok := objs["Private Key Object/kept"]; !ok {
		t.Errorf("the other key went too: %v", objs)
	}
	if _, err := p.AdoptKey(ctx, KeySelector{Label: "gone"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("AdoptKey of the destroyed key: %v", err)
	}
	if _, err := p.GenerateKey(ctx, pki.ECDSAP256, "gone", []byte{1}); err != nil {
		t.Errorf("the label and ID are not free again: %v", err)
	}
}

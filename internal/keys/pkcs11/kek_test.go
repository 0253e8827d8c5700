package pkcs11

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/miekg/pkcs11"
)

func TestKEK(t *testing.T) {
	st := newSoftToken(t, "kek")
	ctx := context.Background()
	p := open(t, st.config(t))
	kek, err := p.GenerateKEK(ctx, "certwright-kek")
	if err != nil {
		t.Fatalf("GenerateKEK: %v", err)
	}
	plaintext := []byte("a wrapped CA key would go here")
	aad := []byte("ca:0123")
	sealed, err := kek.Seal(ctx, plaintext, aad)
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	if len(sealed) != len(plaintext)+sealOverhead || sealed[0] != sealVersion1 {
		t.Fatalf("sealed is %d bytes, version %d", len(sealed), sealed[0])
	}
	if bytes.Contains(sealed, plaintext) {
		t.Fatal("the plaintext is in the sealed data")
	}
	again, err := kek.Seal(ctx, plaintext, aad)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(again[1:1+ivSize], sealed[1:1+ivSize]) {
		t.Fatal("two seals used the same IV")
	}
	got, err := kek.Open(ctx, sealed, aad)
	if err != nil || !bytes.Equal(got, plaintext) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	empty, err := kek.Seal(ctx, nil, nil)
	if err != nil {
		t.Fatalf("Seal of nothing: %v", err)
	}
	if got, err := kek.Open(ctx, empty, nil); err != nil || len(got) != 0 {
		t.Fatalf("Open of nothing = %q, %v", got, err)
	}

	t.Run("tampered", func(t *testing.T) {
		flip := func(i int) []byte {
			b := bytes.Clone(sealed)
			b[i] ^= 0x01
			return b
		}
		for _, tt := range []struct {
			name   string
			sealed []byte
			aad    []byte
		}{
			{"IV", flip(1), aad},
			{"last IV byte", flip(ivSize), aad},
			{"ciphertext", flip(1 + ivSize), aad},
			{"tag", flip(len(sealed) - 1), aad},
			{"additional data", sealed, []byte("ca:0124")},
			{"no additional data", sealed, nil},
		} {
			t.Run(tt.name, func(t *testing.T) {
				got, err := kek.Open(ctx, tt.sealed, tt.aad)
				wantErr(t, err, ErrOpen, "does not authenticate")
				if got != nil {
					t.Fatalf("Open returned %q with its error", got)
				}
			})
		}
		_, err := kek.Open(ctx, flip(0), aad)
		wantErr(t, err, ErrMalformed, "version 0")
		_, err = kek.Open(ctx, sealed[:sealOverhead-1], aad)
		wantErr(t, err, ErrMalformed, "at least")
		// A failed Open leaves the KEK usable.
		if _, err := kek.Open(ctx, sealed, aad); err != nil {
			t.Fatalf("Open after refusals: %v", err)
		}
	})

	t.Run("another KEK", func(t *testing.T) {
		other, err := p.GenerateKEK(ctx, "other-kek")
		if err != nil {
			t.Fatal(err)
		}
		_, err = other.Open(ctx, sealed, aad)
		wantErr(t, err, ErrOpen)
		_, err = p.GenerateKEK(ctx, "other-kek")
		wantErr(t, err, ErrExists)
		if err := other.Destroy(ctx); err != nil {
			t.Fatalf("Destroy: %v", err)
		}
		_, err = p.AdoptKEK(ctx, "other-kek")
		wantErr(t, err, ErrNotFound)
		if _, err := kek.Open(ctx, sealed, aad); err != nil {
			t.Fatalf("Open under the KEK left: %v", err)
		}
	})

	t.Run("adopt after restart", func(t *testing.T) {
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		p := open(t, st.config(t))
		kek, err := p.AdoptKEK(ctx, "certwright-kek")
		if err != nil {
			t.Fatalf("AdoptKEK: %v", err)
		}
		if got, err := kek.Open(ctx, sealed, aad); err != nil || !bytes.Equal(got, plaintext) {
			t.Fatalf("Open after restart = %q, %v", got, err)
		}
		_, err = p.AdoptKEK(ctx, "absent")
		wantErr(t, err, ErrNotFound, `"absent"`)
		for _, tt := range []struct {
			label                  string
			n                      int
			extractable, sensitive bool
			want                   string
		}{
			{"extractable", 32, true, true, "extractable"},
			{"not-sensitive", 32, false, false, "not sensitive"},
			{"aes-128", 16, false, true, "not an AES-256 key"},
		} {
			if err := p.makeAESKey(ctx, tt.label, tt.n, tt.extractable, tt.sensitive); err != nil {
				t.Fatal(err)
			}
			_, err := p.AdoptKEK(ctx, tt.label)
			wantErr(t, err, ErrUnsafeKey, tt.want, tt.label)
		}
		// pkcs11-tool makes AES keys that are not sensitive: refused.
		st.Tool(t, "--keygen", "--key-type", "AES:32", "--label", "tool-aes")
		_, err = p.AdoptKEK(ctx, "tool-aes")
		wantErr(t, err, ErrUnsafeKey, "not sensitive")
	})
}

// TestGenerateKEKChecked: a KEK the token made other than asked (here,
// asked so: SoftHSM2 honours templates, so a token that ignores one is
// played by a weakened template) is refused as an adopted one would be,
// and destroyed, leaving the label free.
func TestGenerateKEKChecked(t *testing.T) {
	st := newSoftToken(t, "kek-checked")
	ctx := context.Background()
	p := open(t, st.config(t))
	for _, tt := range []struct {
		attr uint
		val  bool
		want string
	}{
		{pkcs11.CKA_SENSITIVE, false, "not sensitive"},
		{pkcs11.CKA_EXTRACTABLE, true, "extractable"},
		{pkcs11.CKA_WRAP, true, "may also wrap"},
	} {
		tmpl := kekTemplate("weak")
		for i, a := range tmpl {
			if a.Type == tt.attr {
				tmpl[i] = pkcs11.NewAttribute(tt.attr, tt.val)
			}
		}
		k, err := p.generateKEK(ctx, "weak", tmpl)
		wantErr(t, err, ErrUnsafeKey, tt.want)
		if k != nil {
			t.Fatalf("generateKEK returned a key with its error")
		}
		if _, err := p.AdoptKEK(ctx, "weak"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("the refused KEK was left in the token: AdoptKEK = %v", err)
		}
	}
	if _, err := p.GenerateKEK(ctx, "weak"); err != nil {
		t.Fatalf("GenerateKEK after refusals: %v", err)
	}
}

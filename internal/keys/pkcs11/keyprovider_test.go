package pkcs11

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/certwright/certwright/internal/keys"
	"github.com/certwright/certwright/internal/keys/pkcs11/softhsmtest"
	"github.com/certwright/certwright/internal/pki"
)

func TestKeyProvider(t *testing.T) {
	st := newSoftToken(t, "keyprovider")
	p := open(t, st.config(t))
	ctx := context.Background()
	kp := NewKeyProvider(p)
	if kp.Capabilities().Exportable {
		t.Fatal("token keys reported exportable")
	}
	purpose := keys.CAPurpose("ca_a")
	ref, sg, err := kp.Generate(ctx, pki.ECDSAP256, purpose)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	id, err := hex.DecodeString(ref.ID)
	if ref.Provider != Name || err != nil || len(id) != idBytes || ref.Algorithm != pki.ECDSAP256 || string(ref.Blob) != "ca:ca_a" {
		t.Fatalf("Ref %+v (blob %q)", ref, ref.Blob)
	}
	if ts := sg.(*Signer); ts.Label() != "ca:ca_a" || hex.EncodeToString(ts.ID()) != ref.ID {
		t.Fatalf("token key labelled %q with CKA_ID %x, want %q and %s", ts.Label(), ts.ID(), "ca:ca_a", ref.ID)
	}
	other, _, err := kp.Generate(ctx, pki.ECDSAP256, keys.CAPurpose("ca_b"))
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	if other.ID == ref.ID {
		t.Fatal("two keys got one CKA_ID")
	}

	t.Run("other purposes refused", func(t *testing.T) {
		for _, pp := range []keys.Purpose{keys.ManagedPurpose("01"), keys.AuditPurpose("a1"), keys.ServerTLSPurpose("02"), "ca:", "ocsp:", "nonsense"} {
			if _, _, err := kp.Generate(ctx, pki.ECDSAP256, pp); err == nil {
				t.Errorf("Generate for %q succeeded", pp)
			}
		}
		_, _, err := kp.Generate(ctx, pki.ECDSAP256, keys.ManagedPurpose("01"))
		wantErr(t, err, ErrPurposeRefused, "managed:01")
	})

	t.Run("CA keys are never destroyed", func(t *testing.T) {
		wantErr(t, kp.Destroy(ctx, ref, purpose), ErrPurposeRefused, "never destroys")
		if _, err := NewKeyProvider(p).Signer(ctx, ref, purpose); err != nil {
			t.Fatalf("the CA key is gone: %v", err)
		}
	})

	// A fresh provider over the same token is a restarted server: the key
	// is found by its CKA_ID, nothing cached.
	for name, kp := range map[string]*KeyProvider{"cached": kp, "fresh": NewKeyProvider(p)} {
		t.Run(name, func(t *testing.T) {
			got, err := kp.Signer(ctx, ref, purpose)
			if err != nil {
				t.Fatalf("Signer: %v", err)
			}
			d := sha256.Sum256([]byte("tbs"))
			sig, err := got.Sign(nil, d[:], crypto.SHA256)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			if err := verify(sg.Public(), d[:], sig, crypto.SHA256); err != nil {
				t.Fatalf("signature: %v", err)
			}
			// The Ref copied onto CA ca_b's record, as is and with its
			// label rewritten to ca_b's purpose; another provider's Ref;
			// an ID that is not hex; a wrong algorithm.
			moved := ref
			relabelled := ref
			relabelled.Blob = []byte(keys.CAPurpose("ca_b"))
			soft := ref
			soft.Provider = "software"
			badID := ref
			badID.ID = "not-hex"
			wrongAlg := ref
			wrongAlg.Algorithm = pki.RSA2048
			for _, tt := range []struct {
				name    string
				ref     keys.Ref
				purpose keys.Purpose
				says    string
			}{
				{"copied", moved, keys.CAPurpose("ca_b"), `labelled "ca:ca_a"`},
				{"relabelled", relabelled, keys.CAPurpose("ca_b"), `the token's key with CKA_ID ` + ref.ID + ` is labelled "ca:ca_a"`},
				{"other provider", soft, purpose, `"software" key`},
				{"bad ID", badID, purpose, "not a CKA_ID"},
				{"wrong algorithm", wrongAlg, purpose, "the record says rsa-2048"},
			} {
				_, err := kp.Signer(ctx, tt.ref, tt.purpose)
				if err == nil {
					t.Fatalf("%s: Signer succeeded", tt.name)
				}
				wantErr(t, err, ErrNotBound, tt.says)
			}
			_, err = kp.Signer(ctx, ref, keys.ManagedPurpose("01"))
			wantErr(t, err, ErrPurposeRefused)
		})
	}
}

// TestKeyProviderResponderKeys: OCSP responder keys are made in the token,
// several per CA (a new one at each rotation while the old one is
// retired), each labelled "ocsp:<CA id>/<CKA_ID>"; a retired one is
// destroyed, private and public key objects both, and only the one its
// record names.
func TestKeyProviderResponderKeys(t *testing.T) {
	st := newSoftToken(t, "responders")
	p := open(t, st.config(t))
	ctx := context.Background()
	kp := NewKeyProvider(p)
	purpose := keys.OCSPPurpose("ca_a")
	old, _, err := kp.Generate(ctx, pki.ECDSAP256, purpose)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	cur, sg, err := kp.Generate(ctx, pki.ECDSAP256, purpose)
	if err != nil {
		t.Fatalf("a second key for one responder purpose: %v", err)
	}
	for _, r := range []keys.Ref{old, cur} {
		if want := "ocsp:ca_a/" + r.ID; r.Provider != Name || string(r.Blob) != want {
			t.Fatalf("Ref %+v labelled %q, want %q", r, r.Blob, want)
		}
	}
	caRef, _, err := kp.Generate(ctx, pki.ECDSAP256, keys.CAPurpose("ca_a"))
	if err != nil {
		t.Fatal(err)
	}
	objs := st.Objects(t)
	for _, label := range []string{string(old.Blob), string(cur.Blob)} {
		if access := objs["Private Key Object/"+label]; !softhsmtest.Safe(access) {
			t.Errorf("token key %q: Access %v, want sensitive, never extractable", label, access)
		}
		if _, ok := objs["Public Key Object/"+label]; !ok {
			t.Errorf("no public key object %q", label)
		}
	}
	got, err := NewKeyProvider(p).Signer(ctx, cur, purpose)
	if err != nil || !got.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(sg.Public()) {
		t.Fatalf("Signer of the current key: %v", err)
	}

	// Refused, destroying nothing: another responder's purpose, a
	// label rewritten to match, the CA key's CKA_ID under a responder
	// label, another provider's Ref.
	other := cur
	other.Blob = []byte("ocsp:ca_b/" + cur.ID)
	caAsOCSP := caRef
	caAsOCSP.Blob = []byte(string(purpose) + "/" + caRef.ID)
	soft := old
	soft.Provider = "software"
	for _, tt := range []struct {
		name    string
		ref     keys.Ref
		purpose keys.Purpose
		says    string
	}{
		{"other responder", cur, keys.OCSPPurpose("ca_b"), `this record's is "ocsp:ca_b/` + cur.ID},
		{"relabelled", other, keys.OCSPPurpose("ca_b"), "is labelled \"ocsp:ca_a/" + cur.ID},
		{"CA key", caAsOCSP, purpose, `labelled "ca:ca_a"`},
		{"other provider", soft, purpose, `"software" key`},
	} {
		err := kp.Destroy(ctx, tt.ref, tt.purpose)
		if err == nil {
			t.Fatalf("%s: Destroy succeeded", tt.name)
		}
		wantErr(t, err, ErrNotBound, tt.says)
	}
	if n := len(st.Objects(t)); n != 6 {
		t.Fatalf("%d objects after refused destructions, want the 3 key pairs", n)
	}

	if err := kp.Destroy(ctx, old, purpose); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	objs = st.Objects(t)
	for _, kind := range []string{"Private Key Object/", "Public Key Object/"} {
		if _, ok := objs[kind+string(old.Blob)]; ok {
			t.Errorf("%s%s still in the token", kind, old.Blob)
		}
		for _, label := range []string{string(cur.Blob), "ca:ca_a"} {
			if _, ok := objs[kind+label]; !ok {
				t.Errorf("%s%s was destroyed with the retired key", kind, label)
			}
		}
	}
	if _, err := NewKeyProvider(p).Signer(ctx, old, purpose); !errors.Is(err, ErrNotFound) {
		t.Errorf("Signer of the destroyed key: %v, want ErrNotFound", err)
	}
	// Again: it is gone, which is what was asked.
	if err := kp.Destroy(ctx, old, purpose); err != nil {
		t.Errorf("Destroy of a destroyed key: %v", err)
	}
	if _, err := kp.Signer(ctx, cur, purpose); err != nil {
		t.Errorf("the current key: %v", err)
	}
}

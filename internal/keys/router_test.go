package keys_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/certwright/certwright/internal/keys"
	"github.com/certwright/certwright/internal/keys/software"
	"github.com/certwright/certwright/internal/pki"
)

// hsmLike is a provider under another name whose keys cannot leave it: a
// software provider whose Refs say "hsm".
type hsmLike struct{ p *software.Provider }

func (h hsmLike) Generate(ctx context.Context, alg pki.KeyAlgorithm, purpose keys.Purpose) (keys.Ref, crypto.Signer, error) {
	ref, sg, err := h.p.Generate(ctx, alg, purpose)
	ref.Provider = "hsm"
	return ref, sg, err
}

func (h hsmLike) Signer(ctx context.Context, ref keys.Ref, purpose keys.Purpose) (crypto.Signer, error) {
	if ref.Provider != "hsm" {
		return nil, errors.New("not an hsm key")
	}
	ref.Provider = software.Name
	return h.p.Signer(ctx, ref, purpose)
}

func (hsmLike) Capabilities() keys.Capabilities { return keys.Capabilities{Exportable: false} }

func newSoftware(t *testing.T) *software.Provider {
	t.Helper()
	kek := make([]byte, software.KEKSize)
	if _, err := rand.Read(kek); err != nil {
		t.Fatal(err)
	}
	p, err := software.New(kek, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRouterRoutesByProvider(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	soft := newSoftware(t)
	r, err := keys.NewRouter(software.Name, map[string]keys.Provider{software.Name: soft, "hsm": hsmLike{newSoftware(t)}})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(r.Names(), ","); got != "hsm,software" || r.Default() != software.Name {
		t.Fatalf("names %s, default %s", got, r.Default())
	}
	caKey := keys.CAPurpose("ca1")
	hsmRef, hsmSigner, err := r.GenerateIn(ctx, "hsm", pki.ECDSAP256, caKey)
	if err != nil || hsmRef.Provider != "hsm" {
		t.Fatalf("GenerateIn hsm: %+v, %v", hsmRef, err)
	}
	softRef, _, err := r.Generate(ctx, pki.ECDSAP256, keys.ManagedPurpose("01"))
	if err != nil || softRef.Provider != software.Name {
		t.Fatalf("Generate: %+v, %v", softRef, err)
	}
	sg, err := r.Signer(ctx, hsmRef, caKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.CheckPublic(sg, hsmSigner.Public()); err != nil {
		t.Errorf("the hsm key's signer: %v", err)
	}
	if _, err := r.Signer(ctx, keys.Ref{Provider: "pkcs11", ID: "x", Algorithm: pki.ECDSAP256}, caKey); !errors.Is(err, keys.ErrUnknownProvider) ||
		!strings.Contains(err.Error(), "hsm, software") {
		t.Errorf("a key of an unconfigured provider: %v, want ErrUnknownProvider naming the configured ones", err)
	}
	if _, _, err := r.GenerateIn(ctx, "pkcs11", pki.ECDSAP256, caKey); !errors.Is(err, keys.ErrUnknownProvider) {
		t.Errorf("GenerateIn an unconfigured provider: %v", err)
	}
	if c, err := r.CapabilitiesOf(hsmRef); err != nil || c.Exportable {
		t.Errorf("hsm capabilities %+v, %v; want not exportable", c, err)
	}
	if c, err := r.CapabilitiesOf(softRef); err != nil || !c.Exportable {
		t.Errorf("software capabilities %+v, %v; want exportable", c, err)
	}
}

func TestRouterExportsOnlyExportableKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, err := keys.NewRouter(software.Name, map[string]keys.Provider{software.Name: newSoftware(t), "hsm": hsmLike{newSoftware(t)}})
	if err != nil {
		t.Fatal(err)
	}
	managed := keys.ManagedPurpose("02")
	softRef, _, err := r.Generate(ctx, pki.ECDSAP256, managed)
	if err != nil {
		t.Fatal(err)
	}
	if der, err := r.ExportPKCS8(ctx, softRef, managed); err != nil || len(der) == 0 {
		t.Errorf("export of a software key: %d bytes, %v", len(der), err)
	}
	hsmRef, _, err := r.GenerateIn(ctx, "hsm", pki.ECDSAP256, managed)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.ExportPKCS8(ctx, hsmRef, managed); !errors.Is(err, keys.ErrNotExportable) {
		t.Errorf("export of an hsm key: %v, want ErrNotExportable", err)
	}
	// With a default that cannot export, a key to keep is refused.
	h, err := keys.NewRouter("hsm", map[string]keys.Provider{software.Name: newSoftware(t), "hsm": hsmLike{newSoftware(t)}})
	if err != nil {
		t.Fatal(err)
	}
	_, sg, err := r.Generate(ctx, pki.ECDSAP256, managed)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Wrap(ctx, managed, sg); !errors.Is(err, keys.ErrNotExportable) {
		t.Errorf("Wrap into a non-exporting default: %v, want ErrNotExportable", err)
	}
}

func TestNewRouterNeedsItsDefault(t *testing.T) {
	t.Parallel()
	if _, err := keys.NewRouter("pkcs11", map[string]keys.Provider{software.Name: newSoftware(t)}); !errors.Is(err, keys.ErrUnknownProvider) {
		t.Errorf("a default that is not configured: %v", err)
	}
}

// destroyingHSM is hsmLike that destroys keys: it records their IDs.
type destroyingHSM struct {
	hsmLike
	destroyed *[]string
}

func (d destroyingHSM) Destroy(_ context.Context, ref keys.Ref, _ keys.Purpose) error {
	*d.destroyed = append(*d.destroyed, ref.ID)
	return nil
}

// TestRouterDestroy: a key is destroyed by the provider holding it when
// that provider destroys keys; a software key is not (it ends with its
// record); a key of an unconfigured provider is an error.
func TestRouterDestroy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var destroyed []string
	r, err := keys.NewRouter(software.Name, map[string]keys.Provider{
		software.Name: newSoftware(t), "hsm": destroyingHSM{hsmLike{newSoftware(t)}, &destroyed},
	})
	if err != nil {
		t.Fatal(err)
	}
	purpose := keys.OCSPPurpose("ca1")
	hsmRef, _, err := r.GenerateIn(ctx, "hsm", pki.ECDSAP256, purpose)
	if err != nil {
		t.Fatal(err)
	}
	softRef, _, err := r.Generate(ctx, pki.ECDSAP256, purpose)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := r.Destroy(ctx, hsmRef, purpose); !ok || err != nil || len(destroyed) != 1 || destroyed[0] != hsmRef.ID {
		t.Errorf("Destroy of the hsm key: %v, %v; destroyed %v", ok, err, destroyed)
	}
	if ok, err := r.Destroy(ctx, softRef, purpose); ok || err != nil || len(destroyed) != 1 {
		t.Errorf("Destroy of a software key: %v, %v; destroyed %v; want nothing done", ok, err, destroyed)
	}
	if _, err := r.Destroy(ctx, keys.Ref{Provider: "pkcs11", ID: "x"}, purpose); !errors.Is(err, keys.ErrUnknownProvider) {
		t.Errorf("Destroy of an unconfigured provider's key: %v", err)
	}
}

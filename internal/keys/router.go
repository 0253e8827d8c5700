package keys

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/certwright/certwright/internal/pki"
)

// Capabilities says what a provider's keys allow.
type Capabilities struct {
	// Exportable is true when a key may leave the provider (wrapped or as
	// PKCS#8): software keys are, keys in a hardware token never are.
	Exportable bool
}

// Capable is implemented by providers that report their capabilities. A
// provider that does not is taken to hold non-exportable keys.
type Capable interface {
	Capabilities() Capabilities
}

// ErrUnknownProvider is returned for a provider name the router does not
// hold: a key created by a provider this server is not configured with.
var ErrUnknownProvider = errors.New("keys: unknown key provider")

// ErrNotExportable is returned when a key's provider cannot export it.
var ErrNotExportable = errors.New("keys: the key's provider does not export keys")

// Router is the key provider the server uses: it holds every configured
// provider by name, creates keys in the default provider unless the caller
// names another (GenerateIn), and sends each Ref to the provider that made
// it (Ref.Provider), so CA keys in a hardware token and software-wrapped
// end-entity keys coexist. Exports go to the exporting provider (the
// software one) only.
type Router struct {
	def       string
	providers map[string]Provider
}

// NewRouter returns a router whose default provider is providers[def].
func NewRouter(def string, providers map[string]Provider) (*Router, error) {
	if _, ok := providers[def]; !ok {
		return nil, fmt.Errorf("%w %q: the default provider must be one of %s", ErrUnknownProvider, def, strings.Join(sortedNames(providers), ", "))
	}
	for name, p := range providers {
		if name == "" || p == nil {
			return nil, errors.New("keys: every provider needs a name and an implementation")
		}
	}
	return &Router{def: def, providers: providers}, nil
}

func sortedNames(m map[string]Provider) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Names lists the providers, sorted.
func (r *Router) Names() []string { return sortedNames(r.providers) }

// Default names the provider Generate uses.
func (r *Router) Default() string { return r.def }

func (r *Router) provider(name string) (Provider, error) {
	p, ok := r.providers[name]
	if !ok {
		return nil, fmt.Errorf("%w %q: this server holds %s; configure that provider to use its keys", ErrUnknownProvider, name, strings.Join(r.Names(), ", "))
	}
	return p, nil
}

// Generate creates a key in the default provider.
func (r *Router) Generate(ctx context.Context, alg pki.KeyAlgorithm, purpose Purpose) (Ref, crypto.Signer, error) {
	return r.providers[r.def].Generate(ctx, alg, purpose)
}

// GenerateIn creates a key in the provider named name ("" for the default).
func (r *Router) GenerateIn(ctx context.Context, name string, alg pki.KeyAlgorithm, purpose Purpose) (Ref, crypto.Signer, error) {
	if name == "" {
		name = r.def
	}
	p, err := r.provider(name)
	if err != nil {
		return Ref{}, nil, err
	}
	return p.Generate(ctx, alg, purpose)
}

// Signer returns the signer of ref from the provider that holds it.
func (r *Router) Signer(ctx context.Context, ref Ref, purpose Purpose) (crypto.Signer, error) {
	p, err := r.provider(ref.Provider)
	if err != nil {
		return nil, fmt.Errorf("keys: key %s: %w", ref.ID, err)
	}
	return p.Signer(ctx, ref, purpose)
}

// CapabilitiesOf reports what the provider holding ref allows.
func (r *Router) CapabilitiesOf(ref Ref) (Capabilities, error) {
	p, err := r.provider(ref.Provider)
	if err != nil {
		return Capabilities{}, err
	}
	if c, ok := p.(Capable); ok {
		return c.Capabilities(), nil
	}
	return Capabilities{}, nil
}

// Destroy destroys ref through the provider that holds it. It returns
// destroyed false, and does nothing, when that provider does not destroy
// keys (keys.Destroyer): a software key ends with its record.
func (r *Router) Destroy(ctx context.Context, ref Ref, purpose Purpose) (destroyed bool, err error) {
	p, err := r.provider(ref.Provider)
	if err != nil {
		return false, fmt.Errorf("keys: key %s: %w", ref.ID, err)
	}
	d, ok := p.(Destroyer)
	if !ok {
		return false, nil
	}
	if err := d.Destroy(ctx, ref, purpose); err != nil {
		return false, err
	}
	return true, nil
}

// exporter returns the provider named name as an Exporter when it exports.
func (r *Router) exporter(name string) (Exporter, error) {
	p, err := r.provider(name)
	if err != nil {
		return nil, err
	}
	e, ok := p.(Exporter)
	c, capable := p.(Capable)
	if !ok || !capable || !c.Capabilities().Exportable {
		return nil, fmt.Errorf("%w: %q", ErrNotExportable, name)
	}
	return e, nil
}

// Wrap stores an existing private key in the default provider, which must
// export (managed end-entity keys are software keys).
func (r *Router) Wrap(ctx context.Context, purpose Purpose, key crypto.Signer) (Ref, error) {
	e, err := r.exporter(r.def)
	if err != nil {
		return Ref{}, err
	}
	return e.Wrap(ctx, purpose, key)
}

// ExportPKCS8 exports ref through the provider that holds it, which must
// export.
func (r *Router) ExportPKCS8(ctx context.Context, ref Ref, purpose Purpose) ([]byte, error) {
	e, err := r.exporter(ref.Provider)
	if err != nil {
		return nil, fmt.Errorf("keys: key %s: %w", ref.ID, err)
	}
	return e.ExportPKCS8(ctx, ref, purpose)
}

package issue_test

import (
	"context"
	"crypto/x509/pkix"
	"errors"
	"log/slog"
	"testing"

	"github.com/certwright/certwright/internal/ca"
	"github.com/certwright/certwright/internal/issue"
	"github.com/certwright/certwright/internal/keys"
	"github.com/certwright/certwright/internal/keys/software"
	"github.com/certwright/certwright/internal/pki"
)

// TestCAKeyProvider: a CA's key is generated in the provider its spec
// names, else in Config.CAKeyProvider; a provider the server does not hold
// is refused as invalid input, before anything is stored. (A key made in
// a PKCS#11 token is tested in internal/app, against SoftHSM2.)
func TestCAKeyProvider(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	router, err := keys.NewRouter(software.Name, map[string]keys.Provider{software.Name: e.kp})
	if err != nil {
		t.Fatal(err)
	}
	service := func(def string) *issue.Service {
		svc, err := issue.New(issue.Config{PublicHTTPBase: base, Clock: e.clk, Log: slog.New(slog.DiscardHandler), CAKeyProvider: def}, e.db, e.profiles, router, e.linter)
		if err != nil {
			t.Fatal(err)
		}
		return svc
	}
	spec := func(name, provider string) *ca.Spec {
		return &ca.Spec{Name: name, Subject: pkix.Name{CommonName: name}, KeyAlg: pki.ECDSAP256, Validity: 365 * day, MaxPathLen: 0, KeyProvider: provider}
	}
	for _, tt := range []struct {
		name, def, spec string
		wantErr         bool
	}{
		{"named", "", "software", false},
		{"default", "software", "", false},
		{"named, not held", "software", "pkcs11", true},
		{"default, not held", "pkcs11", "", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			svc := service(tt.def)
			name := "kp-" + map[bool]string{true: "bad", false: "ok"}[tt.wantErr] + "-" + map[string]string{"": "def", "software": "sw", "pkcs11": "hsm"}[tt.spec]
			for _, create := range []func() (*ca.CA, error){
				func() (*ca.CA, error) { return svc.CreateRoot(ctx, admin, spec(name+"-r", tt.spec)) },
				func() (*ca.CA, error) { return svc.CreateIntermediate(ctx, admin, "root", spec(name+"-i", tt.spec)) },
				func() (*ca.CA, error) { return svc.CreateExternal(ctx, admin, spec(name+"-x", tt.spec)) },
			} {
				c, err := create()
				if tt.wantErr {
					if !errors.Is(err, issue.ErrInvalid) || !errors.Is(err, keys.ErrUnknownProvider) {
						t.Fatalf("error %v, want ErrInvalid wrapping ErrUnknownProvider", err)
					}
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				if c.Key.Provider != software.Name {
					t.Fatalf("key provider %q", c.Key.Provider)
				}
			}
		})
	}
	cas, err := e.db.ListCAs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cas {
		if len(c.Name) > 6 && c.Name[:6] == "kp-bad" {
			t.Errorf("refused CA %s was stored", c.Name)
		}
	}
}

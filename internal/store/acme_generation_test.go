package store_test

import (
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/acme"
	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/store"
)

// acmeWrite matches a write to the tables ACME account resolution reads.
var acmeWrite = regexp.MustCompile(`(?is)\b(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+(acme_provisioners|acme_accounts|acme_eab_keys)\b`)

// TestACMEWritesUseACMETx guards the invalidation of the ACME account
// cache against future write paths: any function of this package whose
// SQL writes a provisioner, an account or an external account key must
// run it through acmeTx.
func TestACMEWritesUseACMETx(t *testing.T) {
	t.Parallel()
	writesUseTx(t, acmeWrite, nil, "acmeTx", 8, "the ACME account cache")
}

// TestACMEWritesMoveGeneration: the store methods that change what ACME
// account resolution reads move ACMEGeneration; orders and nonces do not.
func TestACMEWritesMoveGeneration(t *testing.T) {
	t.Parallel()
	onBackends(t, acmeWritesMoveGeneration)
}

func acmeWritesMoveGeneration(t *testing.T, db *store.DB) {
	ctx := context.Background()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ev := audit.Event{Time: at, Principal: "test", Action: "acme.test", Outcome: audit.Success}
	evCounts := func(acme.DeleteCounts) audit.Event { return ev }
	evRevoke := func(string, bool) audit.Event { return ev }
	if err := db.CreatePrincipal(ctx, &authz.PrincipalRecord{ID: "p_acmegen", Name: "acmegen", Kind: authz.KindMachine, CreatedAt: at}, ev); err != nil {
		t.Fatal(err)
	}
	prov := &acme.Provisioner{ID: "prov_gen", Name: "gen", CAID: "ca_none", Profile: "tls-server", Challenges: []string{acme.ChallengeHTTP01}, CreatedAt: at, CreatedBy: "test"}
	acct := &acme.Account{ID: "acct_gen", ProvisionerID: prov.ID, KeyThumbprint: "tp1", KeyJWK: []byte(`{}`), Status: acme.StatusValid, CreatedAt: at, CreatedIP: "127.0.0.1"}
	steps := []struct {
		name string
		do   func() error
		move bool
	}{
		{"CreateProvisioner", func() error { return db.CreateProvisioner(ctx, prov, ev) }, true},
		{"CreateAccount", func() error { return db.CreateAccount(ctx, acct, ev) }, true},
		{"GetAccount", func() error { _, err := db.GetAccount(ctx, acct.ID); return err }, false},
		{"UseNonce", func() error { _, err := db.UseNonce(ctx, "n_gen", at.Add(time.Hour)); return err }, false},
		{"UpdateAccount key", func() error {
			upd := *acct
			upd.KeyThumbprint = "tp2"
			return db.UpdateAccount(ctx, &upd, acct.KeyThumbprint, ev)
		}, true},
		{"CreateEABKey", func() error {
			return db.CreateEABKey(ctx, &acme.EABKey{ID: "eab_gen", ProvisionerID: prov.ID, PrincipalID: "p_acmegen", Sealed: []byte("x"), CreatedAt: at, CreatedBy: "test"}, ev)
		}, true},
		{"RevokeEABKey", func() error { _, _, err := db.RevokeEABKey(ctx, "eab_gen", at, "test", evRevoke); return err }, true},
		{"UpdateProvisioner", func() error { return db.UpdateProvisioner(ctx, prov, ev) }, true},
		{"SetProvisionerDisabled", func() error { return db.SetProvisionerDisabled(ctx, prov.ID, at, "test", ev) }, true},
		{"DeleteProvisioner", func() error { _, err := db.DeleteProvisioner(ctx, prov.ID, at, "test", nil, evCounts); return err }, true},
		// A write that fails moves it too: what it did is not known for sure.
		{"UpdateAccount refused", func() error {
			_ = db.UpdateAccount(ctx, &acme.Account{ID: "nobody"}, "", ev)
			return nil
		}, true},
	}
	for _, s := range steps {
		before := db.ACMEGeneration()
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if moved := db.ACMEGeneration() != before; moved != s.move {
			t.Errorf("%s: generation moved = %v, want %v", s.name, moved, s.move)
		}
	}
}

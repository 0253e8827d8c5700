package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/audit"
	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/issue"
	"github.com/certwright/certwright/internal/scep"
	"github.com/certwright/certwright/internal/store"
)

// TestSCEPTransactions: a held transaction is read back, a second one
// with the same ID is a conflict, storing one prunes those older than
// the cutoff, and a closed one is gone.
func TestSCEPTransactions(t *testing.T) {
	t.Parallel()
	onBackends(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		old := &scep.Transaction{ProvisionerID: "scep_p", ID: "tx-old", RequestID: "r1", KeyHash: []byte{1}, CreatedAt: at.Add(-100 * 24 * time.Hour)}
		if err := db.PutSCEPTransaction(ctx, old, old.CreatedAt.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := db.PutSCEPTransaction(ctx, old, old.CreatedAt.Add(-time.Hour)); !errors.Is(err, scep.ErrConflict) {
			t.Fatalf("the same transaction again: %v, want ErrConflict", err)
		}
		cur := &scep.Transaction{ProvisionerID: "scep_p", ID: "tx-new", RequestID: "r2", KeyHash: []byte{2}, CreatedAt: at}
		if err := db.PutSCEPTransaction(ctx, cur, at.Add(-90*24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if _, err := db.GetSCEPTransaction(ctx, "scep_p", "tx-old"); !errors.Is(err, scep.ErrNotFound) {
			t.Errorf("a transaction older than the cutoff: %v, want pruned", err)
		}
		got, err := db.GetSCEPTransaction(ctx, "scep_p", "tx-new")
		if err != nil || got.RequestID != "r2" || !got.CreatedAt.Equal(at) {
			t.Fatalf("read back: %+v %v", got, err)
		}
		if err := db.DeleteSCEPTransaction(ctx, "scep_p", "tx-new"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.GetSCEPTransaction(ctx, "scep_p", "tx-new"); !errors.Is(err, scep.ErrNotFound) {
			t.Errorf("a closed transaction: %v, want not found", err)
		}
	})
}

// TestSCEPUpdateGuardsRA: an update applies only while the provisioner's
// RA is the one it was read with; a stale one is ErrConflict naming the
// current RA and writes nothing, an unknown provisioner is not found.
func TestSCEPUpdateGuardsRA(t *testing.T) {
	t.Parallel()
	onBackends(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		ev := func(action string) audit.Event { return audit.New(authz.System(), at, action, "mdm", nil) }
		role, _ := authz.BuiltinRole(authz.RoleIssuer)
		p := &scep.Provisioner{ID: "scep_g", Name: "mdm", CAID: "ca_x", Profile: "client_auth", Challenge: scep.ChallengeDynamic,
			PrincipalID: "scep_pg", RASerial: "01", RASHA256: "aa", CreatedAt: at, CreatedBy: "test"}
		err := db.CreateSCEPProvisioner(ctx, p, &authz.PrincipalRecord{ID: p.PrincipalID, Name: "scep:mdm", Kind: authz.KindMachine, CreatedAt: at},
			&authz.Binding{ID: "bg", PrincipalID: p.PrincipalID, Role: role, CreatedAt: at, CreatedBy: "test", Source: "scep:" + p.ID}, ev("scep.provisioner.create"))
		if err != nil {
			t.Fatal(err)
		}
		won := *p
		won.RASerial, won.RASHA256 = "02", "bb"
		if err := db.UpdateSCEPProvisioner(ctx, &won, "01", ev("scep.ra.rotate")); err != nil {
			t.Fatalf("rotation from the current RA: %v", err)
		}
		lost := *p
		lost.RASerial, lost.RASHA256 = "03", "cc"
		err = db.UpdateSCEPProvisioner(ctx, &lost, "01", ev("scep.ra.rotate"))
		if !errors.Is(err, scep.ErrConflict) || !strings.Contains(err.Error(), "it is 02 now") {
			t.Fatalf("rotation from a replaced RA: %v, want ErrConflict naming RA 02", err)
		}
		if got, err := db.GetSCEPProvisioner(ctx, "mdm"); err != nil || got.RASerial != "02" || got.RASHA256 != "bb" {
			t.Fatalf("after the refused rotation: %+v %v, want RA 02", got, err)
		}
		gone := won
		gone.ID = "scep_none"
		if err := db.UpdateSCEPProvisioner(ctx, &gone, "02", ev("scep.provisioner.update")); !errors.Is(err, scep.ErrNotFound) {
			t.Errorf("an unknown provisioner: %v, want ErrNotFound", err)
		}
	})
}

// TestSCEPLegacyCryptoStored: the legacy crypto switch is written by
// create and update and read back by get and list; off unless set.
func TestSCEPLegacyCryptoStored(t *testing.T) {
	t.Parallel()
	onBackends(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		ev := func(action, name string) audit.Event { return audit.New(authz.System(), at, action, name, nil) }
		role, _ := authz.BuiltinRole(authz.RoleIssuer)
		create := func(name string, legacy bool) *scep.Provisioner {
			p := &scep.Provisioner{ID: "scep_" + name, Name: name, CAID: "ca_x", Profile: "client_auth", Challenge: scep.ChallengeDynamic,
				PrincipalID: "scep_p" + name, RASerial: "01" + name, RASHA256: "aa", CreatedAt: at, CreatedBy: "test", AllowLegacyCrypto: legacy}
			err := db.CreateSCEPProvisioner(ctx, p, &authz.PrincipalRecord{ID: p.PrincipalID, Name: "scep:" + name, Kind: authz.KindMachine, CreatedAt: at},
				&authz.Binding{ID: "b" + name, PrincipalID: p.PrincipalID, Role: role, CreatedAt: at, CreatedBy: "test", Source: "scep:" + p.ID},
				ev("scep.provisioner.create", name))
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
		strict, old := create("strict", false), create("old", true)
		legacy := func(name string) bool {
			t.Helper()
			got, err := db.GetSCEPProvisioner(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			return got.AllowLegacyCrypto
		}
		if legacy("strict") || !legacy("old") {
			t.Fatalf("after create: strict %v, old %v; want false, true", legacy("strict"), legacy("old"))
		}
		strict.AllowLegacyCrypto, old.AllowLegacyCrypto = true, false
		for _, p := range []*scep.Provisioner{strict, old} {
			if err := db.UpdateSCEPProvisioner(ctx, p, p.RASerial, ev("scep.provisioner.update", p.Name)); err != nil {
				t.Fatal(err)
			}
		}
		all, err := db.ListSCEPProvisioners(ctx)
		if err != nil || len(all) != 2 {
			t.Fatalf("list: %d, %v", len(all), err)
		}
		for _, p := range all {
			if p.AllowLegacyCrypto != (p.Name == "strict") {
				t.Errorf("after update: %s allows legacy crypto %v", p.Name, p.AllowLegacyCrypto)
			}
		}
	})
}

// TestSCEPPendingRenewal: a pending request of the requester that
// renews the serial is found (and reads back its Replaces); one of
// another requester, for another serial, or decided, is not.
func TestSCEPPendingRenewal(t *testing.T) {
	t.Parallel()
	onBackends(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Now().UTC().Truncate(time.Second)
		ev := audit.New(authz.System(), now, "request.create", "req", nil)
		for _, r := range []*issue.ApprovalRequest{
			{ID: "req_a", RequesterID: "prin_scep", Requester: "scep:mdm", Replaces: "0a", Status: issue.StatusPending},
			{ID: "req_b", RequesterID: "prin_other", Requester: "other", Replaces: "0b", Status: issue.StatusPending},
			{ID: "req_c", RequesterID: "prin_scep", Requester: "scep:mdm", Replaces: "0c", Status: issue.StatusRejected},
		} {
			r.CA, r.Profile, r.CreatedAt, r.ExpiresAt = "issuing", "client_auth", now, now.Add(time.Hour)
			if err := db.CreateApprovalRequest(ctx, r, ev); err != nil {
				t.Fatal(err)
			}
		}
		if r, err := db.GetApprovalRequest(ctx, "req_a"); err != nil || r.Replaces != "0a" {
			t.Fatalf("read back: %+v, %v", r, err)
		}
		for _, c := range []struct{ requester, serial, want string }{
			{"prin_scep", "0a", "req_a"}, {"prin_scep", "0b", ""}, {"prin_scep", "0c", ""}, {"prin_other", "0a", ""},
		} {
			if id, err := db.PendingRenewal(ctx, c.requester, c.serial); err != nil || id != c.want {
				t.Errorf("PendingRenewal(%s, %s) = %q, %v, want %q", c.requester, c.serial, id, err, c.want)
			}
		}
	})
}

package profile_test

import (
	"context"
	"testing"
	"time"

	"github.com/certwright/certwright/internal/authz"
	"github.com/certwright/certwright/internal/profile"
	"github.com/certwright/certwright/internal/store/storetest"
)

// TestCatalogCustomProfileFresh: a custom profile is parsed once per
// stored definition, yet every Get sees the definition as it is stored now
// — changed through this catalog or another one on the same database (a
// replica) — and hands out a copy the caller may change freely.
func TestCatalogCustomProfileFresh(t *testing.T) {
	// Not parallel: AllocsPerRun counts the whole process's allocations.
	ctx := context.Background()
	db := storetest.OpenSQLite(t)
	admin, _ := authz.BuiltinRole(authz.RoleAdmin)
	who := authz.Principal{ID: "admin", Name: "admin", Kind: authz.KindHuman,
		Bindings: []authz.Binding{{ID: "b", PrincipalID: "admin", Principal: "admin", Role: admin}}}
	here, other := profile.NewCatalog(db, time.Now), profile.NewCatalog(db, time.Now)

	p := profile.Builtins()[0].Clone()
	p.Name, p.MaxValidityDays, p.RenewBeforeDays = "svc", 30, 5
	if err := here.Create(ctx, who, p); err != nil {
		t.Fatal(err)
	}
	get := func(c *profile.Catalog) *profile.Profile {
		t.Helper()
		got, err := c.Get(ctx, "svc")
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := get(here); got.MaxValidityDays != 30 {
		t.Fatalf("max validity %d, want 30", got.MaxValidityDays)
	}
	// The caller's copy is its own.
	mine := get(here)
	mine.MaxValidityDays, mine.KeyUsage = 9999, nil
	if got := get(here); got.MaxValidityDays != 30 || len(got.KeyUsage) == 0 {
		t.Fatalf("a change to a returned profile leaked into the catalog: %+v", got)
	}
	// Parsed once: a Get of an unchanged definition allocates a fraction of
	// a parse (about 600 allocations).
	if n := testing.AllocsPerRun(20, func() { get(here) }); n > 150 {
		t.Errorf("Get of an unchanged custom profile: %.0f allocations, want it served from the parse already made", n)
	}
	// Changed through another catalog (another replica): seen at once.
	p.MaxValidityDays, p.RenewBeforeDays = 7, 2
	if err := other.Update(ctx, who, p); err != nil {
		t.Fatal(err)
	}
	if got := get(here); got.MaxValidityDays != 7 {
		t.Fatalf("after another replica's update: max validity %d, want 7", got.MaxValidityDays)
	}
	// Deleted: unknown at once.
	if err := other.Delete(ctx, who, "svc"); err != nil {
		t.Fatal(err)
	}
	if _, err := here.Get(ctx, "svc"); err == nil {
		t.Fatal("a deleted profile is still served")
	}
}

package acme_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/certwright/certwright/internal/acme"
)

// TestSetSettingsWhileRunning: limits replaced on a running service (a
// configuration reload) judge the next order; concurrency above the
// running workers is refused and the running limits kept.
func TestSetSettingsWhileRunning(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *acme.Config) { c.Limits.OrdersPerHour = 5 })
	ctx := context.Background()
	prov := e.provisioner(t, acme.ProvisionerSpec{Name: "reload"})
	acct := e.account(t, e.svc, prov)
	order := func(i int) error {
		_, err := e.svc.NewOrder(ctx, prov, acct, acme.OrderRequest{Identifiers: dnsIDs(fmt.Sprintf("r%d.example.test", i))})
		return err
	}
	for i := range 2 {
		if err := order(i); err != nil {
			t.Fatalf("order %d: %v", i, err)
		}
	}
	if err := e.svc.SetSettings(acme.Settings{Limits: acme.Limits{OrdersPerHour: 2}}); err != nil {
		t.Fatal(err)
	}
	wantProblem(t, order(2), acme.ErrRateLimited)
	if err := e.svc.SetSettings(acme.Settings{Limits: acme.Limits{OrdersPerHour: 3, ConcurrentValidations: 1000}}); err == nil {
		t.Fatal("concurrent validations above the workers were accepted")
	}
	wantProblem(t, order(2), acme.ErrRateLimited)
	if err := e.svc.SetSettings(acme.Settings{Limits: acme.Limits{OrdersPerHour: 3}}); err != nil {
		t.Fatal(err)
	}
	if err := order(2); err != nil {
		t.Errorf("after raising the limit to 3: %v", err)
	}
}
